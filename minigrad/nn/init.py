"""Where layers get their random numbers: initial weights and dropout masks.

One module-level NumPy Generator serves every layer built without an explicit ``rng``, so
``nn.manual_seed(0)`` before building a model makes its initial weights (and its dropout
masks) reproducible.
"""
from __future__ import annotations

import numpy as np

from ..core.tensor import resolve_dtype

__all__ = ["manual_seed", "generator", "uniform"]

_generator = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Restart the shared generator from ``seed``."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator(rng=None) -> np.random.Generator:
    """``rng`` if it is a Generator, a new one seeded with it if it is an int, else the shared
    one."""
    if rng is None:
        return _generator
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, got "
                    f"{type(rng).__name__}")


def uniform(shape, bound: float, rng=None, dtype=None) -> np.ndarray:
    """Samples of U(-bound, bound) -- PyTorch's default init for Linear and Conv2d, whose
    kaiming_uniform(a=sqrt(5)) works out to bound = 1/sqrt(fan_in) for weights and biases."""
    dtype = resolve_dtype(dtype)
    return generator(rng).uniform(-bound, bound, shape).astype(dtype)
