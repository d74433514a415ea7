# %% [markdown]
# # Claim 3: training keeps the batch's outputs, so BatchNorm costs memory and time
#
# Backward needs values from the forward pass, so the autograd graph keeps them alive until
# the gradients are computed. We walk the graph of one training step's loss and add up the
# bytes it holds, per layer, for an MLP without normalisation, with BatchNorm composed from
# mean/var/sqrt (every intermediate is a node that keeps its output) and with the fused
# BatchNorm op (one node keeping x̂). Run as a script (`--quick` for a short version) or cell by
# cell.

# %%
import sys

from minigrad.app import experiments

QUICK = "--quick" in sys.argv
result = experiments.run("memory", "out/experiments", quick=QUICK)
print(result.table())
print(result.verdict)
print("figure:", result.paths["png"])

# %% [markdown]
# ## Your own network
# `held_for_backward(loss, network)` works on any `nn.Sequential`: here a BatchNorm layer on a
# batch of 512 x 100 float64 values (400 KiB each). The input requires grad, as it does inside
# a network (it comes from a Linear layer); otherwise x - mean would need no node at all.

# %%
import numpy as np

import minigrad as mg
from minigrad import nn
from minigrad.app.experiments.memory import held_for_backward

for fused in (False, True):
    network = nn.Sequential(nn.BatchNorm1d(100, fused=fused))
    x = mg.tensor(np.random.default_rng(0).normal(size=(512, 100)), requires_grad=True)
    loss = (network(x) ** 2).mean()
    held = held_for_backward(loss, network)
    print(f"fused={fused!s:5}: " + ", ".join(f"{k} {v / 1024:.0f} KiB" for k, v in held.items()))
