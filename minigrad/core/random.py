"""The one shared random generator: what ``mg.rand``, ``mg.randn``, ``mg.randint``, the
``*_like`` samplers, layer initialisation and dropout draw from when given no ``rng``.

``mg.manual_seed(0)`` (also spelled ``nn.manual_seed``) restarts it, so a script that seeds
once at the top makes its random tensors, initial weights and dropout masks reproducible.
"""
from __future__ import annotations

import numpy as np

from .checks import ArgumentTypeError, bad_argument, is_integer, non_negative_int

__all__ = ["manual_seed", "generator"]

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Restart the shared generator from ``seed`` (an int >= 0); returns it, as
    ``torch.manual_seed`` returns its generator."""
    global _generator
    _generator = np.random.default_rng(non_negative_int("manual_seed", "seed", seed))
    return _generator


def generator(rng=None, owner: str = "init") -> np.random.Generator:
    """``rng`` if it is a Generator, a new one seeded with it if it is an int, else (None) the
    shared one. ``owner`` is what the user called, for the error."""
    if rng is None:
        return _generator
    if isinstance(rng, np.random.Generator):
        return rng
    if is_integer(rng):
        return np.random.default_rng(non_negative_int(owner, "rng", rng))
    bad_argument(owner, "rng", "a numpy.random.Generator, an int seed >= 0 or None", rng,
                 ArgumentTypeError)
