"""Argument handling every op shares: operands, broadcast shapes, axes, indices."""
from __future__ import annotations

import functools
import itertools
import numbers

import numpy as np

from ..checks import ArgumentTypeError, bad_argument, boolean
from ..dtypes import to_array
from ..errors import AxisError, DTypeError, ShapeError
from ..tensor import Tensor, as_array


def operand(value, like, op_name: str = "op"):
    """Make ``value`` an operand for the op ``op_name`` with ``like``, without changing
    ``like``'s dtype.

    Python and NumPy scalars become Python numbers (NumPy keeps an array's dtype for those).
    Constants -- arrays, lists, integer tensors -- take ``like``'s float dtype, as in PyTorch:
    a float32 tensor times an int64 tensor is float32, not NumPy's float64."""
    if isinstance(value, np.generic):  # before Number: np.float64 is a float subclass
        value = value.item()
    if isinstance(value, numbers.Number):
        if isinstance(value, complex) and not np.iscomplexobj(as_array(like)):
            raise DTypeError(f"{op_name}: cannot combine a real tensor with a complex number "
                             f"({value!r})")
        return value
    if isinstance(value, Tensor) and (value.requires_grad or value.dtype.kind not in "iub"):
        return value
    array = to_array(as_array(value), None, op_name)  # a clear error for strings, ragged lists
    if isinstance(like, Tensor) and like.dtype.kind == "f" and array.dtype.kind in "biuf":
        array = array.astype(like.dtype, copy=False)
    return Tensor._make(array, False, None)


@functools.lru_cache(maxsize=4096)
def broadcast_shape(op_name: str, *shapes) -> tuple:
    """NumPy's broadcast result shape, or a ShapeError naming the op and the shapes."""
    result = []
    for dims in itertools.zip_longest(*(reversed(s) for s in shapes), fillvalue=1):
        sizes = {n for n in dims if n != 1}
        if len(sizes) > 1:
            listed = " and ".join(str(tuple(s)) for s in shapes)
            raise ShapeError(f"{op_name}: shapes {listed} cannot be broadcast together "
                             f"(NumPy rules: trailing dims must be equal or 1)")
        result.append(sizes.pop() if sizes else 1)
    return tuple(reversed(result))


def normalize_axis(axis, ndim: int, op_name: str):
    """None stays None (reduce everything); an int or tuple becomes a sorted tuple of
    non-negative axes. A 0-d tensor accepts axis 0 and -1, as in PyTorch."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, numbers.Integral) else axis
    if not isinstance(axes, (tuple, list)) or not all(
            isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in axes):
        raise TypeError(f"{op_name}: axis must be None, an int or a tuple of ints, got "
                        f"{axis!r}")
    normalized = []
    for a in axes:
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise AxisError(f"{op_name}: axis {a} is out of range for a tensor with {ndim} "
                            f"dims (expected -{max(ndim, 1)} <= axis < {max(ndim, 1)})")
        normalized.append(int(a) % max(ndim, 1))
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{op_name}: repeated axis in {axis}")
    return tuple(sorted(a for a in normalized if a < ndim)) if ndim else ()


def reduction_args(op_name: str, axis, ndim: int, keepdims) -> tuple:
    """A reduction's ``axis`` (see ``normalize_axis``) and ``keepdims`` (True or False),
    checked where the user called, so the ops' forwards need not check them."""
    axis = normalize_axis(axis, ndim, op_name)
    return axis, boolean(op_name, "keepdims", keepdims)


def as_shape(op_name: str, shape) -> tuple:
    """A shape as a tuple of ints: an int or a sequence of ints (NumPy integers too)."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        return (int(shape),)
    if isinstance(shape, (tuple, list)) and all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in shape):
        return tuple(int(n) for n in shape)
    bad_argument(op_name, "shape", "a tuple of ints", shape, ArgumentTypeError)


def as_index(index):
    """An index into a tensor as NumPy takes it: Tensors and lists become arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else
                     np.asarray(i) if isinstance(i, list) else i for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index
