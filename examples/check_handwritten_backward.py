# %% [markdown]
# # Checking a hand-written backward
#
# The usual way to speed up BatchNorm is to write its backward by hand. Here is such a
# hand-written op with a classic slip, and how minigrad's gradient checker finds it: first on
# the op alone, then buried inside a model, where `locate=True` names the guilty op. Run it as a
# script (`python examples/check_handwritten_backward.py`) or cell by cell.

# %%
import numpy as np

import minigrad as mg
from minigrad import nn


class HandwrittenBatchNorm(mg.Function):
    """x̂ = (x − mean) / sqrt(var + eps) per column, with a backward written by hand."""

    @staticmethod
    def forward(ctx, x, eps=1e-5):
        invstd = 1.0 / np.sqrt(x.var(axis=0) + eps)
        x_hat = (x - x.mean(axis=0)) * invstd
        ctx.save_for_backward(x_hat, invstd)
        return x_hat

    @staticmethod
    def backward(ctx, grad):
        x_hat, invstd = ctx.saved_tensors
        n = grad.shape[0]
        # The slip: the last term needs sum(grad * x_hat), but this uses a mean.
        return invstd / n * (grad * n - grad.sum(axis=0) - x_hat * (grad * x_hat).mean(axis=0))


x = mg.tensor(np.random.default_rng(0).standard_normal((8, 3)), requires_grad=True)

# %% [markdown]
# ## 1. The op on its own
# The report names the input, the worst elements and how many are wrong.

# %%
alone = mg.check_gradients(lambda x: HandwrittenBatchNorm.apply(x), (x,))
print(alone)

# %% [markdown]
# ## 2. Inside a model
# With `locate=True` the checker re-checks every op of the graph on its own, at the values it
# saw, and names the first one whose backward disagrees with its forward.

# %%
linear = nn.Linear(5, 3)
inputs = mg.tensor(np.random.default_rng(1).standard_normal((8, 5)))


def model(weight):
    hidden = inputs @ weight.T
    return HandwrittenBatchNorm.apply(hidden).tanh().sum()


in_model = mg.check_gradients(model, (linear.weight,), locate=True)
print(in_model)
print("guilty op:", in_model.culprit.op)

# %% [markdown]
# ## 3. The fix
# Replace the mean by a sum and the check passes.

# %%
class FixedBatchNorm(HandwrittenBatchNorm):
    @staticmethod
    def backward(ctx, grad):
        x_hat, invstd = ctx.saved_tensors
        n = grad.shape[0]
        return invstd / n * (grad * n - grad.sum(axis=0) - x_hat * (grad * x_hat).sum(axis=0))


fixed = mg.check_gradients(lambda x: FixedBatchNorm.apply(x), (x,))
print(fixed)
