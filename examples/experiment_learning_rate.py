# %% [markdown]
# # Claim 5a: with BatchNorm a large learning rate still trains
#
# The same ReLU MLP with and without BatchNorm, trained with plain SGD at learning rates from
# 0.01 to 10 (several seeds each). A run whose loss becomes NaN or infinite is stopped and
# counted as diverged. Does BatchNorm keep training where the plain network blows up? Run as a
# script (`--quick` for a short version) or cell by cell.

# %%
import sys

from minigrad.app import experiments

QUICK = "--quick" in sys.argv
result = experiments.run("learning-rate", "out/experiments", quick=QUICK)
print(result.table())
print(result.verdict)
print("figure:", result.paths["png"])

# %% [markdown]
# ## Accuracy at every learning rate
# Mean final test accuracy over the seeds, and how many seeds diverged.

# %%
numbers = result.numbers
print("learning rate  " + "  ".join(f"{kind:<22}" for kind in numbers["series"]))
for i, rate in enumerate(numbers["learning_rates"]):
    cells = [f"{100 * s['mean_accuracy'][i]:5.1f}% ({s['diverged_runs'][i]} diverged)"
             for s in numbers["series"].values()]
    print(f"{rate:>13.3g}  " + "  ".join(f"{c:<22}" for c in cells))
