# %% [markdown]
# # Handwritten digits with a BatchNorm MLP
#
# An MLP (64 -> 256 -> BN -> ReLU -> 256 -> BN -> ReLU -> 10) trained on scikit-learn's bundled
# 8x8 digits, then saved, reloaded into a fresh model and evaluated again. Run it as a script
# (`python examples/train_digits.py`) or cell by cell in an editor that understands `# %%`.
# The `minigrad train` command does the same with more options.

# %%
import os

import numpy as np

import minigrad as mg
from minigrad import nn, optim
from minigrad.data import load_digits
from minigrad.training import EpochRecord, build_model, eval_loader, evaluate, fit

EPOCHS = 10
OUT = "out"

# %% [markdown]
# ## Data
# 1797 images, 10 classes; pixels standardised with the training part's statistics.

# %%
data = load_digits(seed=0)
print(data)

# %% [markdown]
# ## Model and optimizer
# `fused=False` builds BatchNorm from mean, var, sqrt and broadcasting (the composed graph);
# `fused=True` would use the single op with the closed-form backward. Both train the same.
# Adam's learning rate follows half a cosine down to 0 over the epochs.

# %%
nn.manual_seed(0)
model = build_model("mlp", input_shape=data.input_shape, n_classes=data.n_classes, fused=False)
print(model)
optimizer = optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
scheduler = optim.CosineAnnealingLR(optimizer, T_max=EPOCHS)

# %% [markdown]
# ## Training
# One row per epoch; the progress bar shows while an epoch runs (in a terminal).

# %%
print(EpochRecord.HEADER)
history = fit(model, data, optimizer, epochs=EPOCHS, batch_size=64, scheduler=scheduler,
              log=lambda record: print(record.row()))

# %% [markdown]
# ## Checkpoint: save, reload into a fresh model, evaluate again

# %%
os.makedirs(OUT, exist_ok=True)
path = os.path.join(OUT, "train_digits.npz")
mg.save(model.state_dict(), path)
fresh = build_model("mlp", input_shape=data.input_shape, n_classes=data.n_classes)
fresh.load_state_dict(mg.load(path))
loss, accuracy = evaluate(fresh, eval_loader(data, np.float32))
print(f"reloaded from {path}: test accuracy {accuracy:.2%} (trained model: "
      f"{history[-1].test_accuracy:.2%})")

# %% [markdown]
# ## Learning curves (needs matplotlib)

# %%
try:
    import matplotlib
    matplotlib.use("Agg")  # write a file; no window needed
    import matplotlib.pyplot as plt
except ImportError:
    print('matplotlib is not installed (pip install "minigrad[examples]"): no plot')
else:
    epochs = [r.epoch for r in history]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [r.train_loss for r in history], label="train")
    left.plot(epochs, [r.test_loss for r in history], label="test")
    left.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="loss")
    right.plot(epochs, [r.train_accuracy for r in history], label="train")
    right.plot(epochs, [r.test_accuracy for r in history], label="test")
    right.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for axes in (left, right):
        axes.legend()
    figure.tight_layout()
    figure.savefig(os.path.join(OUT, "train_digits.png"), dpi=100)
    print(f"learning curves: {os.path.join(OUT, 'train_digits.png')}")
