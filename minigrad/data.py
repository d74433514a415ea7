"""Data: a mini-batch loader and small classification data sets that need no download.

``load_digits`` gives scikit-learn's bundled 8x8 handwritten digits (the default data set of the
examples), ``make_moons`` and ``make_spirals`` generate 2-D toy problems in pure NumPy. Data
sets come back as a ``Dataset`` (train and test arrays); ``DataLoader`` turns arrays into
batches of Tensors::

    digits = load_digits()
    for features, labels in DataLoader((digits.x_train, digits.y_train), batch_size=64,
                                       shuffle=True, seed=0):
        ...
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .core.checks import (bad_argument, boolean, dtype as check_dtype, non_negative_int,
                          non_negative_real, positive_int, real)
from .core.dtypes import to_array
from .core.tensor import Tensor, as_array, resolve_dtype

__all__ = ["DataLoader", "Dataset", "split", "load_digits", "make_moons", "make_spirals"]


class DataLoader:
    """Iterate over ``arrays`` (equal-length arrays, e.g. ``(features, labels)``) in batches.

    Each batch is a tuple of Tensors, one per array: floating arrays become tensors of
    ``dtype`` (the default dtype if None), integer arrays int64 tensors (class labels). With
    ``shuffle`` every pass visits the samples in a new order drawn from a generator seeded
    with ``seed``, so two loaders with the same seed give the same batches. ``drop_last``
    skips a final batch smaller than ``batch_size`` (BatchNorm cannot train on one sample).
    """

    def __init__(self, arrays, batch_size: int = 1, shuffle: bool = False, seed=None,
                 drop_last: bool = False, dtype=None):
        if isinstance(arrays, (np.ndarray, Tensor)) or not isinstance(arrays, (tuple, list)) \
                or not arrays:
            raise TypeError(f"DataLoader: expected a tuple of arrays such as (features, labels), "
                            f"got {type(arrays).__name__}")
        batch_size = positive_int("DataLoader", "batch_size", batch_size)
        shuffle = boolean("DataLoader", "shuffle", shuffle)
        drop_last = boolean("DataLoader", "drop_last", drop_last)
        if seed is not None and not isinstance(seed, np.random.Generator):
            seed = non_negative_int("DataLoader", "seed", seed)
        float_dtype = resolve_dtype(None if dtype is None else
                                    check_dtype("DataLoader", "dtype", dtype, kinds="f"))
        self.arrays = tuple(_batchable(index, a, float_dtype) for index, a in enumerate(arrays))
        lengths = [len(a) for a in self.arrays]
        if len(set(lengths)) > 1:
            raise ValueError(f"DataLoader: the arrays have different lengths {lengths}; each "
                             f"needs one entry per sample")
        self.batch_size = batch_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.generator = np.random.default_rng(seed)

    @property
    def num_samples(self) -> int:
        return len(self.arrays[0])

    def __len__(self) -> int:
        """Number of batches per pass."""
        whole, rest = divmod(self.num_samples, self.batch_size)
        return whole + (1 if rest and not self.drop_last else 0)

    def __iter__(self):
        order = self.generator.permutation(self.num_samples) if self.shuffle else None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            if order is None:  # slices are views: no copying when the order is fixed
                index = slice(start, start + self.batch_size)
            else:
                index = order[start:start + self.batch_size]
            yield tuple(Tensor(a[index]) for a in self.arrays)


def _batchable(index: int, array, float_dtype) -> np.ndarray:
    array = to_array(as_array(array), None, f"DataLoader (array {index})")
    if array.ndim == 0:
        raise ValueError(f"DataLoader: array {index} is a scalar; each array needs one entry "
                         f"per sample along its first axis")
    if array.dtype.kind == "f":
        return np.ascontiguousarray(array, dtype=float_dtype)
    if array.dtype.kind in "iu":
        return np.ascontiguousarray(array, dtype=np.int64)
    raise TypeError(f"DataLoader: array {index} has dtype {array.dtype}; expected floating "
                    f"features or integer labels")


# ----------------------------------------------------------------------------------------------
# Data sets
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Dataset:
    """A classification data set, split in two. Labels are int64 class indices 0..n_classes-1.

    ``x_train``/``x_test`` hold one sample per row: (N, features) for flat data, (N, 1, 8, 8)
    for digits loaded as images.
    """
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def input_shape(self) -> tuple:
        """Shape of one sample."""
        return self.x_train.shape[1:]

    def __repr__(self):
        return (f"Dataset({self.name!r}: {len(self.x_train)} train / {len(self.x_test)} test "
                f"samples of shape {self.input_shape}, {self.n_classes} classes)")


def split(name: str, features, labels, test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """Shuffle the samples with ``seed`` and hold out ``test_fraction`` of them for testing."""
    features, labels = to_array(features, None, "split"), to_array(labels, None, "split")
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or (labels < 0).any():
        raise ValueError(f"split: labels must be a 1-D array of class indices >= 0, got dtype "
                         f"{labels.dtype} and shape {labels.shape}")
    if features.ndim == 0 or len(features) != len(labels) or len(labels) < 2:
        raise ValueError(f"split: need one feature row per label and at least 2 samples, got "
                         f"features of shape {features.shape} and {len(labels)} labels")
    if not 0 < real("split", "test_fraction", test_fraction) < 1:
        bad_argument("split", "test_fraction", "between 0 and 1 (exclusive)", test_fraction)
    labels = labels.astype(np.int64)
    order = np.random.default_rng(non_negative_int("split", "seed", seed)).permutation(len(labels))
    n_test = max(1, round(test_fraction * len(labels)))
    test, train = order[:n_test], order[n_test:]
    return Dataset(name, features[train], labels[train], features[test], labels[test],
                   n_classes=int(labels.max()) + 1)


def load_digits(test_fraction: float = 0.25, seed: int = 0, images: bool = False) -> Dataset:
    """scikit-learn's bundled handwritten digits: 1797 8x8 images, 10 classes, no download.

    Features are standardised per pixel with the training part's mean and standard deviation
    (pixels that are constant in training, such as some corners, are only centred), so the
    test part tells nothing to the preprocessing. ``images=True`` shapes them (N, 1, 8, 8) for
    convolutions; otherwise (N, 64).
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ImportError('load_digits needs scikit-learn, which ships the digits data set; '
                          'install it with:  pip install "minigrad[examples]"') from None
    bunch = sklearn_digits()
    data = split("digits", bunch.data.astype(np.float64), bunch.target, test_fraction, seed)
    mean = data.x_train.mean(axis=0)
    std = data.x_train.std(axis=0)
    std[std == 0] = 1.0
    shape = (-1, 1, 8, 8) if images else (-1, 64)
    return Dataset("digits", ((data.x_train - mean) / std).reshape(shape), data.y_train,
                   ((data.x_test - mean) / std).reshape(shape), data.y_test, n_classes=10)


def make_moons(n_samples: int = 200, noise: float = 0.1, seed: int = 0):
    """Two interleaving half circles in 2-D: ``(features (n, 2), labels (n,))``.

    Not linearly separable, so a network needs a hidden layer to get it right."""
    n_samples = positive_int("make_moons", "n_samples", n_samples)
    noise = non_negative_real("make_moons", "noise", noise)
    rng = np.random.default_rng(non_negative_int("make_moons", "seed", seed))
    n_upper = n_samples // 2
    angles = np.concatenate([np.linspace(0, np.pi, n_upper),
                             np.linspace(0, np.pi, n_samples - n_upper)])
    upper = np.arange(n_samples) < n_upper
    x = np.where(upper, np.cos(angles), 1 - np.cos(angles))
    y = np.where(upper, np.sin(angles), 0.5 - np.sin(angles))
    features = np.stack([x, y], axis=1) + noise * rng.standard_normal((n_samples, 2))
    return features, (~upper).astype(np.int64)


def make_spirals(n_samples: int = 300, n_classes: int = 3, noise: float = 0.2, seed: int = 0):
    """``n_classes`` arms of a spiral winding out from the origin: ``(features (n, 2),
    labels (n,))``. ``noise`` jitters each point's angle (in radians)."""
    n_samples = positive_int("make_spirals", "n_samples", n_samples)
    if positive_int("make_spirals", "n_classes", n_classes) < 2:
        bad_argument("make_spirals", "n_classes", "at least 2", n_classes)
    noise = non_negative_real("make_spirals", "noise", noise)
    rng = np.random.default_rng(non_negative_int("make_spirals", "seed", seed))
    labels = np.arange(n_samples) % n_classes
    radius = rng.random(n_samples)
    # One and a half turns per arm; the arms start evenly spaced around the circle.
    angles = 3 * math.pi * radius + 2 * math.pi * labels / n_classes
    angles += noise * rng.standard_normal(n_samples)
    features = np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)
    return features, labels.astype(np.int64)
