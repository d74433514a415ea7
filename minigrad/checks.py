"""Argument checks that the library's modules share (functional, nn, optim, data), so each kind
of bad number gets one wording."""
from __future__ import annotations

import numbers


def is_real(value) -> bool:
    """A real number (float and int first: ``isinstance`` against the ABC costs a microsecond,
    which a BatchNorm call pays twice)."""
    return type(value) in (float, int) or isinstance(value, numbers.Real)


def positive_int(owner: str, name: str, value) -> int:
    """``value`` as an int; a ValueError naming ``owner`` and ``name`` unless it is an integer
    of at least 1 (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def probability(owner: str, name: str, value) -> float:
    """``value`` as a float; a ValueError naming ``owner`` and ``name`` unless it is in
    [0, 1]."""
    if not (is_real(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{owner}: {name} must be a probability in [0, 1], got {value!r}")
    return float(value)
