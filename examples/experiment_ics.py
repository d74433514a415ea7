# %% [markdown]
# # Claim 1: BatchNorm reduces internal covariate shift
#
# Ioffe & Szegedy (2015, Fig. 1) trained a 3-hidden-layer, 100-unit sigmoid MLP with and
# without BatchNorm and watched the input of one sigmoid in the last hidden layer: without
# BatchNorm its distribution (15th, 50th and 85th percentiles) wanders as the layers below
# learn; with BatchNorm it stays put, and the network learns faster. This script repeats that
# on scikit-learn's digits. Run it as a script (`python examples/experiment_ics.py`, add
# `--quick` for a 10-second version) or cell by cell.

# %%
import sys

import numpy as np

from minigrad.app import experiments

QUICK = "--quick" in sys.argv
result = experiments.run("ics", "out/experiments", quick=QUICK)
print(result.table())
print(result.verdict)
print("figure:", result.paths["png"])

# %% [markdown]
# ## The numbers behind the figure
# Each record holds the step, the test accuracy and the unit's three percentiles. Print a few
# records side by side: the plain network's percentiles slide, the BatchNorm ones barely move.

# %%
series = result.numbers["series"]
steps = series["BatchNorm"]["step"]
for index in np.linspace(0, len(steps) - 1, 5).astype(int):
    row = [f"step {steps[index]:5d}"]
    for kind in ("no norm", "BatchNorm"):
        low, median, high = series[kind]["unit_percentiles"][index]
        row.append(f"{kind:>9}: {low:+.2f} {median:+.2f} {high:+.2f}")
    print("   ".join(row))
