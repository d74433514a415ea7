# %% [markdown]
# # Claim 5b: BatchNorm regularizes
#
# A batch's mean and variance depend on which samples share the batch, so BatchNorm adds noise
# to every sample's activations -- a little like dropout. Does that make the network overfit
# less? We train one wide ReLU MLP three ways (no normalisation, BatchNorm, dropout) and follow
# the gap between training and test accuracy and the test loss. Run as a script (`--quick` for a
# short version) or cell by cell.

# %%
import sys

from minigrad.app import experiments

QUICK = "--quick" in sys.argv
result = experiments.run("regularization", "out/experiments", quick=QUICK)
print(result.table())
print(result.verdict)
print("figure:", result.paths["png"])

# %% [markdown]
# ## When is the test loss lowest?
# Overfitting shows as a test loss that turns back up while the training loss keeps falling.

# %%
for kind, history in result.numbers["series"].items():
    test_loss = history["test_loss"]
    best = min(range(len(test_loss)), key=test_loss.__getitem__)
    print(f"{kind:>10}: lowest test loss {test_loss[best]:.4f} at epoch {best}, "
          f"{test_loss[-1]:.4f} at the end (train loss {history['train_loss'][-1]:.5f})")
