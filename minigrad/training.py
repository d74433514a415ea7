"""Training on real data: small functions meant to be reused (the examples, the experiments and
the ``minigrad train`` command, in ``minigrad/app/train.py``, call them):

- ``build_model``: an MLP or a small CNN (with or without pooling) with BatchNorm (or
  LayerNorm, GroupNorm, nothing) after each hidden layer;
- ``train_step`` / ``train_epoch`` / ``evaluate``: one SGD step, one pass over a loader, loss
  and accuracy without a graph;
- ``fit``: epochs of training with a per-epoch record of train and test loss and accuracy;
  it stops with ``LossNotFiniteError`` (epoch and step) when the loss becomes NaN or inf.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from . import functional as F
from . import nn, optim
from .autograd import no_grad
from .core.checks import bad_argument, positive_int
from .data import DataLoader, Dataset

__all__ = ["MODELS", "takes_images", "build_model", "make_optimizer", "train_step", "train_epoch", "evaluate", "eval_loader",
           "fit", "EpochRecord", "LossNotFiniteError"]

NORMS = ("batch", "layer", "group", "none")
MODELS = ("mlp", "cnn", "cnn-pool")


def takes_images(kind: str) -> bool:
    """Whether the model ``kind`` (one of ``MODELS``) takes images rather than flat vectors."""
    return kind != "mlp"


class LossNotFiniteError(RuntimeError):
    """Training diverged: the loss became NaN or inf. ``epoch`` (from 1, None outside ``fit``)
    and ``step`` (the batch within the epoch, from 1; None when it was the test loss after the
    epoch) say where; ``loss`` is the value."""

    def __init__(self, loss: float, epoch: int | None, step: int | None):
        self.loss, self.epoch, self.step = loss, epoch, step
        value = "NaN" if math.isnan(loss) else "inf" if loss > 0 else "-inf"
        if step is None:
            where = f"the test loss became {value} after epoch {epoch}"
        elif epoch is None:
            where = f"the training loss became {value} at step {step}"
        else:
            where = f"the training loss became {value} at epoch {epoch}, step {step}"
        super().__init__(f"{where}; training diverged (a smaller learning rate may help)")


def _norm_layer(norm: str, channels: int, images: bool, fused: bool):
    """The normalisation after a hidden layer of ``channels`` units (or feature maps)."""
    if norm == "batch":
        return (nn.BatchNorm2d if images else nn.BatchNorm1d)(channels, fused=fused)
    if norm == "layer":
        # Over all of a sample's features; on feature maps that is GroupNorm with one group.
        return nn.GroupNorm(1, channels) if images else nn.LayerNorm(channels)
    if norm == "group":
        return nn.GroupNorm(max(1, channels // 8), channels)
    return None


def build_model(kind: str = "mlp", *, input_shape=(64,), n_classes: int = 10, hidden: int = 256,
                norm: str = "batch", fused: bool = False, dtype=np.float32):
    """A classifier for inputs of ``input_shape`` (one sample's shape).

    ``kind="mlp"``: Linear(d, hidden) -> norm -> ReLU -> Linear(hidden, hidden) -> norm -> ReLU
    -> Linear(hidden, n_classes), on flat inputs (d,).
    ``kind="cnn"``: Conv 3x3 (16 maps) -> norm -> ReLU -> Conv 3x3 stride 2 (32 maps) -> norm
    -> ReLU -> Flatten -> Linear, on images (channels, height, width).
    ``kind="cnn-pool"``: Conv 3x3 (16 maps) -> norm -> ReLU -> MaxPool 2x2 -> Conv 3x3 (32 maps)
    -> norm -> ReLU -> AvgPool 2x2 -> Flatten -> Linear: the resolution halves in the pools
    instead of in a strided convolution.
    ``norm`` is one of ``NORMS``; ``fused`` picks BatchNorm's fused op over the composed graph.
    A layer followed by BatchNorm has no bias: BatchNorm subtracts each unit's batch mean,
    which cancels any bias, and its shift (beta) takes the bias's place.
    """
    if norm not in NORMS:
        raise ValueError(f"build_model: norm must be one of {NORMS}, got {norm!r}")
    input_shape = tuple(input_shape)
    bias = norm != "batch"
    if kind == "mlp":
        if len(input_shape) != 1:
            raise ValueError(f"build_model: an MLP takes flat inputs (features,), got input "
                             f"shape {input_shape}")
        widths = [input_shape[0], hidden, hidden]
        blocks = [(nn.Linear(a, b, bias=bias), b) for a, b in zip(widths, widths[1:])]
        head = [nn.Linear(hidden, n_classes)]
        images = False
    elif kind in ("cnn", "cnn-pool"):
        if len(input_shape) != 3:
            raise ValueError(f"build_model: a CNN takes images (channels, height, width), got "
                             f"input shape {input_shape}")
        channels, height, width = input_shape
        if kind == "cnn":
            blocks = [(nn.Conv2d(channels, 16, 3, padding=1, bias=bias), 16),
                      (nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=bias), 32)]
            flat = 32 * ((height + 1) // 2) * ((width + 1) // 2)
        else:
            if min(height, width) < 4:
                raise ValueError(f"build_model: a CNN with two 2x2 pools takes images of at "
                                 f"least 4x4, got input shape {input_shape}")
            blocks = [(nn.Conv2d(channels, 16, 3, padding=1, bias=bias), 16, nn.MaxPool2d(2)),
                      (nn.Conv2d(16, 32, 3, padding=1, bias=bias), 32, nn.AvgPool2d(2))]
            flat = 32 * (height // 4) * (width // 4)
        head = [nn.Flatten(), nn.Linear(flat, n_classes)]
        images = True
    else:
        raise ValueError(f"build_model: kind must be one of {', '.join(map(repr, MODELS))}, got "
                         f"{kind!r}")
    layers = []
    for layer, channels, *pool in blocks:
        normalization = _norm_layer(norm, channels, images, fused)
        layers += [layer] + ([normalization] if normalization else []) + [nn.ReLU()] + pool
    return nn.Sequential(*layers, *head).to(dtype)


# name -> (class, default learning rate, other settings). Both settings reach >= 97% test
# accuracy on digits in 10 epochs with the MLP; Adam does so more evenly across seeds.
OPTIMIZERS = {
    "adam": (optim.Adam, 3e-3, dict(weight_decay=1e-4)),
    "sgd": (optim.SGD, 0.1, dict(momentum=0.9, nesterov=True, weight_decay=1e-4)),
}


def make_optimizer(name: str, params, lr: float | None = None):
    """The optimizer called ``name`` (a key of ``OPTIMIZERS``) with the settings the training
    command uses; ``lr`` None means that optimizer's default."""
    if name not in OPTIMIZERS:
        raise ValueError(f"make_optimizer: expected one of {tuple(OPTIMIZERS)}, got {name!r}")
    cls, default_lr, settings = OPTIMIZERS[name]
    return cls(params, lr=default_lr if lr is None else lr, **settings)


def train_step(model, optimizer, features, labels) -> tuple[float, int]:
    """One optimizer step on a batch; returns (mean loss, number classified correctly)."""
    logits = model(features)
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item(), count_correct(logits, labels)


def count_correct(logits, labels) -> int:
    """How many rows of ``logits`` have their largest value at the label."""
    return int(np.count_nonzero(logits.data.argmax(axis=1) == labels.data))


def train_epoch(model, optimizer, loader, progress=None, *, epoch=None) -> tuple[float, float]:
    """One pass over ``loader`` in training mode; returns (mean loss, accuracy).

    ``progress``, if given, is a tqdm bar advanced once per batch. A loss that becomes NaN or
    inf raises ``LossNotFiniteError`` naming ``epoch`` (if given) and the step: going on would
    only carry NaN into every parameter and report a meaningless mean."""
    model.train()
    total_loss = correct = count = 0
    for step, (features, labels) in enumerate(loader, start=1):
        loss, right = train_step(model, optimizer, features, labels)
        if not math.isfinite(loss):
            raise LossNotFiniteError(loss, epoch, step)
        total_loss += loss * len(labels)
        correct += right
        count += len(labels)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{loss:.3f}")
    if count == 0:
        bad_argument("train_epoch", "loader", "a loader that yields at least one batch",
                     loader)
    return total_loss / count, correct / count


def evaluate(model, loader) -> tuple[float, float]:
    """(mean loss, accuracy) of ``model`` in eval mode over ``loader``, without a graph."""
    model.eval()
    total_loss = correct = count = 0
    with no_grad():
        for features, labels in loader:
            logits = model(features)
            total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += count_correct(logits, labels)
            count += len(labels)
    return total_loss / count, correct / count


def dtype_of(model):
    """The dtype of ``model``'s parameters (the first one's)."""
    return next(iter(model.parameters())).dtype


def train_loader(data: Dataset, batch_size: int, seed, dtype) -> DataLoader:
    """The training part of ``data``, reshuffled each epoch from ``seed``; a last batch short
    of ``batch_size`` is dropped, since it may hold one sample, on which BatchNorm cannot
    train."""
    return DataLoader((data.x_train, data.y_train), batch_size, shuffle=True, seed=seed,
                      drop_last=True, dtype=dtype)


def eval_loader(data: Dataset, dtype) -> DataLoader:
    """The test part of ``data`` in fixed order, in large batches (evaluation keeps no graph)."""
    return DataLoader((data.x_test, data.y_test), batch_size=512, dtype=dtype)


@dataclass(frozen=True)
class EpochRecord:
    """What ``fit`` measured in one epoch; ``row()`` prints it under ``HEADER``."""
    epoch: int
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    seconds: float

    HEADER = "epoch  train loss  train acc  test loss  test acc  seconds"

    def row(self) -> str:
        return (f"{self.epoch:>5}  {self.train_loss:>10.4f}  {self.train_accuracy:>9.2%}  "
                f"{self.test_loss:>9.4f}  {self.test_accuracy:>8.2%}  {self.seconds:>7.2f}")


def fit(model, data: Dataset, optimizer, *, epochs: int, batch_size: int = 64, seed: int = 0,
        scheduler=None, progress: bool = True, log=None) -> list[EpochRecord]:
    """Train ``model`` on ``data.x_train`` for ``epochs`` passes, evaluating on the test part
    after each; returns one ``EpochRecord`` per epoch.

    Batches are shuffled with ``seed`` and the last incomplete batch is dropped (BatchNorm
    cannot train on a single sample). ``scheduler.step()`` runs after each epoch.
    ``log(record)`` is called after each epoch; ``progress`` shows a tqdm bar per epoch.
    A training or test loss that becomes NaN or inf stops the run with
    ``LossNotFiniteError`` (its ``epoch`` and ``step`` say where).
    """
    from tqdm.auto import tqdm

    epochs = positive_int("fit", "epochs", epochs)
    batch_size = positive_int("fit", "batch_size", batch_size)
    if batch_size > len(data.x_train):
        # Short last batches are dropped, so a larger batch would leave no batch at all.
        bad_argument("fit", "batch_size",
                     f"at most the {len(data.x_train)} training samples", batch_size)
    dtype = dtype_of(model)
    train = train_loader(data, batch_size, seed, dtype)
    test = eval_loader(data, dtype)
    history = []
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        # disable=None: no bar when output is not a terminal (logs, pipes, tests).
        with tqdm(total=len(train), desc=f"epoch {epoch}/{epochs}", leave=False,
                  disable=None if progress else True) as bar:
            train_loss, train_accuracy = train_epoch(model, optimizer, train, bar, epoch=epoch)
        test_loss, test_accuracy = evaluate(model, test)
        if not math.isfinite(test_loss):
            raise LossNotFiniteError(test_loss, epoch, None)
        if scheduler is not None:
            scheduler.step()
        record = EpochRecord(epoch, train_loss, train_accuracy, test_loss, test_accuracy,
                             time.perf_counter() - started)
        history.append(record)
        if log is not None:
            log(record)
    return history
