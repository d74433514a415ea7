"""The one argument-check helper: every check of a user's argument, anywhere in minigrad, raises
through ``bad_argument``, so every message has the same shape:

    "<owner>: <name> must be <what was expected>, got <what was given>"

``owner`` is what the user called (``"BatchNorm1d"``, ``"sum"``, ``"mg.load"``), ``name`` the
argument. The checks return the value in its canonical type, so a caller writes
``eps = positive_real("LayerNorm", "eps", eps)`` and uses ``eps`` afterwards."""
from __future__ import annotations

import math
import numbers

import numpy as np

from .errors import ArgumentTypeError, DTypeError


def bad_argument(owner: str, name: str, expected: str, got, error=ValueError, detail=""):
    """Raise ``error`` saying what ``name`` of ``owner`` must be and what it was. ValueError
    for a bad value; the checks below raise ArgumentTypeError (TypeError and ValueError) for a
    value of the wrong kind. ``detail`` adds what went wrong when the value alone does not
    show it."""
    raise error(f"{owner}: {name} must be {expected}, got {describe(got)}"
                + (f" ({detail})" if detail else ""))


def describe(value) -> str:
    """A short, safe rendering of a bad value for a message (a huge array is not printed)."""
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, (bool, int, float, complex, str, bytes, type(None))):
        text = repr(value)
        return text if len(text) <= 80 else text[:77] + "..."
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        return f"{type(value).__name__} of shape {shape}"
    if isinstance(value, (list, tuple)) and len(value) <= 8:
        text = repr(value)
        if len(text) <= 80:
            return text
    kind = type(value).__name__
    return f"{'an' if kind[0] in 'aeiouAEIOU' else 'a'} {kind}"


def is_real(value) -> bool:
    """A real number and not a bool (float and int first: ``isinstance`` against the ABC costs
    a microsecond, which a BatchNorm call pays twice)."""
    return type(value) in (float, int) or (isinstance(value, numbers.Real)
                                           and not isinstance(value, bool))


def is_integer(value) -> bool:
    """An integer and not a bool (``True`` as a size is almost always a mistake)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def integer(owner: str, name: str, value) -> int:
    """Any int (negative allowed, as for an axis or a seed offset)."""
    if not is_integer(value):
        bad_argument(owner, name, "an integer", value, ArgumentTypeError)
    return int(value)


def positive_int(owner: str, name: str, value) -> int:
    """An integer of at least 1."""
    if not is_integer(value) or value < 1:
        bad_argument(owner, name, "a positive integer", value,
                     ValueError if is_integer(value) else ArgumentTypeError)
    return int(value)


def non_negative_int(owner: str, name: str, value) -> int:
    """An integer of at least 0."""
    if not is_integer(value) or value < 0:
        bad_argument(owner, name, "a non-negative integer", value,
                     ValueError if is_integer(value) else ArgumentTypeError)
    return int(value)


def real(owner: str, name: str, value) -> float:
    """A finite real number."""
    if not is_real(value):
        bad_argument(owner, name, "a real number", value, ArgumentTypeError)
    if not math.isfinite(value):
        bad_argument(owner, name, "a finite number", value)
    return float(value)


def positive_real(owner: str, name: str, value) -> float:
    """A finite real number above 0 (a step size, an eps)."""
    value = real(owner, name, value)
    if value <= 0:
        bad_argument(owner, name, "a positive number", value)
    return value


def non_negative_real(owner: str, name: str, value) -> float:
    """A finite real number of at least 0 (a tolerance, a weight decay)."""
    value = real(owner, name, value)
    if value < 0:
        bad_argument(owner, name, "a non-negative number", value)
    return value


def probability(owner: str, name: str, value) -> float:
    """A real number in [0, 1]."""
    value = real(owner, name, value)
    if not 0.0 <= value <= 1.0:
        bad_argument(owner, name, "a probability in [0, 1]", value)
    return value


def boolean(owner: str, name: str, value) -> bool:
    """True or False (NumPy's bool too); not 0, 1 or a string."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        bad_argument(owner, name, "True or False", value, ArgumentTypeError)
    return bool(value)


def one_of(owner: str, name: str, value, choices) -> object:
    """One of ``choices`` (strings, usually)."""
    try:
        if value in choices:
            return value
    except TypeError:  # an unhashable value tested against a set
        pass
    listed = ", ".join(repr(c) for c in choices)
    bad_argument(owner, name, f"one of {listed}", value)


def dtype(owner: str, name: str, value, kinds: str = "biufc"):
    """A NumPy dtype of one of ``kinds`` ("f": floating point; the default: any number)."""
    try:
        result = np.dtype(value) if value is not None else None
    except (TypeError, ValueError):
        result = None
    if result is None or result.kind not in kinds:
        expected = ("a floating-point dtype (np.float32 or np.float64)" if kinds == "f"
                    else "a numeric dtype (np.float64, np.float32, np.int64, ...)")
        # A real dtype of the wrong kind is what PyTorch calls a RuntimeError ("Only Tensors of
        # floating point dtype can require gradients"); DTypeError is that and a TypeError.
        bad_argument(owner, name, expected, value,
                     ArgumentTypeError if result is None else DTypeError)
    return result
