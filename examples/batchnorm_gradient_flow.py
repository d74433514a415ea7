# %% [markdown]
# # How the gradient flows through BatchNorm
#
# A composed BatchNorm layer is a small graph of `mean`, `var`, `sqrt` and broadcasting. The loss
# reaches the input `x` along three paths: directly through x̂, through the batch mean and
# through the batch variance. This walk-through takes the gradient apart along those paths,
# checks each part against its closed form, and draws the graph. Run it as a script
# (`python examples/batchnorm_gradient_flow.py`) or cell by cell.

# %%
import numpy as np

import minigrad as mg
from minigrad import nn

rng = np.random.default_rng(0)
layer = nn.BatchNorm1d(3)                       # composed (fused=False), training mode
x = mg.tensor(rng.standard_normal((6, 3)) * 2 + 1, requires_grad=True)
upstream = rng.standard_normal((6, 3))          # dL/dy from "the layers above"
loss = (layer(x) * mg.tensor(upstream)).sum()

# %% [markdown]
# ## The three edges out of x
# `x` feeds three ops: `Sub` (x − mean), `Mean` and `Var`. `mg.grad` with those ops' inputs is
# awkward, so read the gradient on each edge with the graph drawer's helper.

# %%
from minigrad.viz import outgoing_gradients

parts = {node.name: grad for node, grad in outgoing_gradients(loss, x)}
for name, grad in parts.items():
    print(f"edge x -> {name:<4}  |grad| = {np.linalg.norm(grad):.4f}")

# %% [markdown]
# ## The closed forms
# With s = sqrt(var + eps) and ĝ = dL/dx̂ = weight · dL/dy:
# direct ĝ/s, through the mean −mean(ĝ)/s, through the variance −x̂·mean(ĝ·x̂)/s.

# %%
mean, var = x.data.mean(axis=0), x.data.var(axis=0)
s = np.sqrt(var + layer.eps)
x_hat = (x.data - mean) / s
g_hat = upstream * layer.weight.data
closed = {"Sub": g_hat / s,
          "Mean": np.broadcast_to(-g_hat.mean(axis=0) / s, x.shape),
          "Var": -x_hat * (g_hat * x_hat).mean(axis=0) / s}
for name in closed:
    print(f"{name:<4} max |autograd - closed form| = {np.abs(parts[name] - closed[name]).max():.1e}")

# %% [markdown]
# ## The sum is the gradient, and it sums to zero per channel
# Shifting every input of a channel by the same amount changes nothing after BatchNorm, so the
# gradient has no component along that direction — which is also why a `Linear` bias placed
# before BatchNorm receives a zero gradient (β replaces it).

# %%
loss.backward(retain_graph=True)  # keep the graph's saved values: the drawing below needs them
total = sum(parts.values())
print("max |sum of paths - x.grad| =", np.abs(total - x.grad.data).max())
print("per-channel sum of x.grad  =", x.grad.data.sum(axis=0))

# %% [markdown]
# ## Draw it
# Edge width and colour follow the gradient norm on a log scale. In Jupyter, `graph` alone shows
# the picture; here it is written to `out/batchnorm_walkthrough.svg` (and `.dot`).

# %%
from minigrad.viz import save_graph

graph = mg.draw_graph(loss, title="BatchNorm1d(3), composed, after backward")
print("wrote", save_graph(graph, "out/batchnorm_walkthrough.svg"))
graph  # the last expression of a cell: Jupyter shows the picture inline
