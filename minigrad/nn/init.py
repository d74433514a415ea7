"""Where layers get their random numbers: initial weights and dropout masks.

One module-level NumPy Generator serves every layer built without an explicit ``rng``, so
``nn.manual_seed(0)`` before building a model makes its initial weights (and its dropout
masks) reproducible.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.checks import (ArgumentTypeError, bad_argument, dtype as check_dtype, is_integer,
                           non_negative_int)
from ..core.errors import OutOfMemoryError
from ..core.tensor import resolve_dtype

__all__ = ["manual_seed", "generator", "uniform"]

_generator = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Restart the shared generator from ``seed``."""
    global _generator
    _generator = np.random.default_rng(non_negative_int("manual_seed", "seed", seed))


def generator(rng=None) -> np.random.Generator:
    """``rng`` if it is a Generator, a new one seeded with it if it is an int, else the shared
    one."""
    if rng is None:
        return _generator
    if isinstance(rng, np.random.Generator):
        return rng
    if is_integer(rng):
        return np.random.default_rng(non_negative_int("init", "rng", rng))
    bad_argument("init", "rng", "a numpy.random.Generator, an int seed >= 0 or None", rng,
                 ArgumentTypeError)


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
