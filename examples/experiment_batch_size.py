# %% [markdown]
# # Claim 6: BatchNorm struggles with small mini-batches
#
# Wu & He (2018, Fig. 1) showed BatchNorm's error growing quickly as the batch shrinks, while
# GroupNorm, which normalises each sample on its own, does not care. Here: the same MLP with
# BatchNorm, GroupNorm or LayerNorm, the same number of epochs at batch sizes 2 to 128, and the
# learning rate scaled linearly with the batch size. Run as a script (`--quick` for a short
# version) or cell by cell.

# %%
import sys

from minigrad.app import experiments

QUICK = "--quick" in sys.argv
result = experiments.run("batch-size", "out/experiments", quick=QUICK)
print(result.table())
print(result.verdict)
print("figure:", result.paths["png"])

# %% [markdown]
# ## Why batch 2 hurts BatchNorm
# With two samples per batch, x̂ = (x - μ) / σ is ±1 for every feature whatever the values
# are: the layer forwards only which sample is larger. Check it with minigrad's own op:

# %%
import numpy as np

import minigrad as mg
import minigrad.functional as F

x = mg.tensor(np.random.default_rng(0).normal(size=(2, 5)))
print(F.batch_norm(x, None, None, training=True).data.round(3))
