"""Where layers get their random numbers: initial weights and dropout masks.

Every layer built without an explicit ``rng`` draws from minigrad's one shared NumPy Generator
(``minigrad.core.random``, which ``mg.rand`` and friends use too), so ``mg.manual_seed(0)`` --
or ``nn.manual_seed(0)``, the same function -- before building a model makes its initial
weights (and its dropout masks) reproducible.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.checks import dtype as check_dtype
from ..core.errors import OutOfMemoryError
from ..core.random import generator, manual_seed
from ..core.tensor import resolve_dtype

__all__ = ["manual_seed", "generator", "uniform"]


def uniform(shape, bound: float, rng=None, dtype=None, owner: str = "init") -> np.ndarray:
    """Samples of U(-bound, bound) -- PyTorch's default init for Linear and Conv2d, whose
    kaiming_uniform(a=sqrt(5)) works out to bound = 1/sqrt(fan_in) for weights and biases."""
    rng = generator(rng)
    return _allocate(owner, shape, dtype, lambda dtype: rng.uniform(-bound, bound, shape)
                     .astype(dtype))


def full(shape, value: float, dtype=None, owner: str = "init") -> np.ndarray:
    """An array of ``value`` everywhere: BatchNorm's initial weight (1), bias and running mean
    (0) and running variance (1)."""
    return _allocate(owner, shape, dtype, lambda dtype: np.full(shape, value, dtype=dtype))


def _allocate(owner: str, shape, dtype, make) -> np.ndarray:
    """``make(dtype)``, with a clear error when the array cannot exist. Weights are floating
    point: an integer dtype would round them (U(-bound, bound) to zeros)."""
    dtype = resolve_dtype(None if dtype is None else check_dtype(owner, "dtype", dtype, "f"))
    try:
        return make(dtype)
    except (MemoryError, ValueError) as error:  # NumPy: "array is too big" or out of memory
        raise OutOfMemoryError(f"{owner}: cannot allocate an array of shape {tuple(shape)} "
                               f"({math.prod(shape):,} values of {dtype}): {error}") from None
