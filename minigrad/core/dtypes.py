"""The default dtype of new tensors, and turning user data into arrays of numbers."""
from __future__ import annotations

import numpy as np

from . import checks

_default_dtype = np.dtype(np.float64)


def set_default_dtype(dtype) -> None:
    """Set the dtype of new float tensors and parameters (float64 unless changed).

    float64 is the default because finite-difference gradient checks need it; switch to
    ``np.float32`` for speed."""
    global _default_dtype
    _default_dtype = checks.dtype("set_default_dtype", "dtype", dtype, kinds="f")


def get_default_dtype() -> np.dtype:
    return _default_dtype


def resolve_dtype(dtype) -> np.dtype:
    """``dtype`` as a NumPy dtype; None means the default dtype (what new parameters,
    buffers and batches get)."""
    return _default_dtype if dtype is None else checks.dtype("Tensor", "dtype", dtype)


def to_array(data, dtype, owner: str = "Tensor") -> np.ndarray:
    """``data`` (a list, number or array) as an array of numbers: of ``dtype`` if given; else
    NumPy's own, except that Python floats become the default dtype. ``owner`` is what the
    user called, for the error when ``data`` is not numbers."""
    if dtype is not None:
        dtype = checks.dtype(owner, "dtype", dtype)
    from_numpy = isinstance(data, (np.ndarray, np.generic))
    try:
        # Without the dtype first: np.asarray([1, None], dtype=float) would make None a NaN.
        array = np.asarray(data)
    except (ValueError, TypeError) as error:  # ragged lists
        checks.bad_argument(owner, "data", "numbers in a regular (non-ragged) nested list, an "
                            "array or a number", data, checks.ArgumentTypeError,
                            detail=str(error).split(". ")[0])
    if array.dtype.kind not in "biufc":  # objects, strings, dates: not numbers
        checks.bad_argument(owner, "data", "numbers (a nested list, an array or a number)",
                            data, checks.ArgumentTypeError, detail=f"dtype {array.dtype}")
    if dtype is not None:
        if array.dtype.kind == "c" and dtype.kind != "c":
            checks.bad_argument(owner, "data", f"real numbers for dtype {dtype}", data,
                                checks.ArgumentTypeError)
        return array.astype(dtype, copy=False)
    if not from_numpy and array.dtype.kind == "f" and array.dtype != _default_dtype:
        # Python floats become the default dtype; NumPy arrays keep theirs.
        array = array.astype(_default_dtype)
    return array
