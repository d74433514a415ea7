# %% [markdown]
# # Claim 4: at test time BatchNorm uses averaged training statistics
#
# A test image often arrives alone, and a batch of one has no variance to normalise by. So in
# eval mode BatchNorm uses estimates of the population statistics: an exponential average of
# the training batches' (`momentum=0.1`), their cumulative average over the whole, changing
# trajectory (`momentum=None`), or Ioffe & Szegedy's Algorithm 2 -- statistics recomputed with
# the final weights (`nn.utils.update_bn`). We compare the three over five seeds, with the
# exact population statistics and with train mode (each test batch normalised by its own
# statistics) as references. Run as a script (`--quick` for a short
# version) or cell by cell.

# %%
import sys

from minigrad.app import experiments

QUICK = "--quick" in sys.argv
result = experiments.run("inference", "out/experiments", quick=QUICK)
print(result.table())
print(result.verdict)
print("figure:", result.paths["png"])

# %% [markdown]
# ## A batch of one in train mode
# Exactly PyTorch's behaviour: one value per channel has no variance, so training refuses.

# %%
import numpy as np

import minigrad as mg
from minigrad import nn

layer = nn.BatchNorm1d(4)
try:
    layer(mg.tensor(np.ones((1, 4))))
except ValueError as error:
    print("train mode:", error)
layer.eval()
print("eval mode: ", layer(mg.tensor(np.ones((1, 4)))).data)
