"""The default dtype of new tensors, and turning user data into arrays of numbers."""
from __future__ import annotations

import numpy as np

_default_dtype = np.dtype(np.float64)


def set_default_dtype(dtype) -> None:
    """Set the dtype of new float tensors and parameters (float64 unless changed).

    float64 is the default because finite-difference gradient checks need it; switch to
    ``np.float32`` for speed."""
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: expected a floating dtype, got {dtype}")
    _default_dtype = dtype


def get_default_dtype() -> np.dtype:
    return _default_dtype


def resolve_dtype(dtype) -> np.dtype:
    """``dtype`` as a NumPy dtype; None means the default dtype (what new parameters,
    buffers and batches get)."""
    return _default_dtype if dtype is None else np.dtype(dtype)


def to_array(data, dtype) -> np.ndarray:
    """``data`` (a list, number or array) as an array of numbers: of ``dtype`` if given; else
    NumPy's own, except that Python floats become the default dtype."""
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    from_numpy = isinstance(data, (np.ndarray, np.generic))
    array = np.asarray(data)
    if not from_numpy and array.dtype.kind == "f" and array.dtype != _default_dtype:
        # Python floats become the default dtype; NumPy arrays keep theirs.
        array = array.astype(_default_dtype)
    if array.dtype.kind not in "biufc":  # objects, strings, dates: not numbers
        raise TypeError(f"Tensor: cannot make a tensor from {type(data).__name__} {data!r:.80}")
    return array
