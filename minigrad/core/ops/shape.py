"""Movement ops: shape changes that do no arithmetic. Their backward moves the gradient back."""
from __future__ import annotations

import itertools
import math
import numbers

import numpy as np

from ..dtypes import to_array
from ..errors import ShapeError
from ..function import Function
from ..tensor import Tensor, as_array
from ..checks import ArgumentTypeError, bad_argument, integer
from .args import as_index, as_shape, broadcast_shape, normalize_axis, operand


class Reshape(Function):
    category, runs_on_arrays = "movement", True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.input_shape)


class Transpose(Function):
    category, runs_on_arrays = "movement", True

    @staticmethod
    def forward(ctx, x, axes):
        return np.transpose(x, axes)

    @staticmethod
    def backward(ctx, grad):
        return grad.transpose(tuple(np.argsort(ctx.attrs["axes"])))


class BroadcastTo(Function):
    """Repeat along new leading axes and along axes of length 1. Its backward sums the
    gradient over those axes: the one place a broadcast gradient is reduced."""

    category, runs_on_arrays = "broadcast", True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return np.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, grad):
        shape = ctx.input_shape
        leading = grad.ndim - len(shape)
        repeated = tuple(range(leading)) + tuple(
            leading + i for i, n in enumerate(shape) if n == 1 and grad.shape[leading + i] != 1)
        summed = grad.sum(axis=repeated, keepdims=True) if repeated else grad
        return summed.reshape(shape)


def _is_basic_index(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, numbers.Integral))
               for p in parts)


class GetItem(Function):
    """``x[index]``: a view for basic indices (slices, ints), a copy for integer arrays and
    masks, as in NumPy and PyTorch."""

    category, runs_on_arrays = "movement", True

    @staticmethod
    def forward(ctx, x, index):
        ctx.input_shape = x.shape
        return x[index]

    @staticmethod
    def backward(ctx, grad):
        return ScatterAdd.apply(grad, index=ctx.attrs["index"], shape=ctx.input_shape)


class ScatterAdd(Function):
    """Zeros of ``shape`` with ``values`` added at ``index``; repeated indices accumulate. The
    backward of indexing, and indexing is in turn its backward."""

    category, runs_on_arrays = "movement", True

    @staticmethod
    def forward(ctx, values, index, shape):
        out = np.zeros(shape, dtype=values.dtype)
        if _is_basic_index(index):  # basic indices never repeat: plain assignment is enough
            out[index] = values
        else:
            np.add.at(out, index, values)
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.attrs["index"]]


class SetItem(Function):
    """A copy of ``x`` with ``x[index] = value`` (``value`` already of the region's shape):
    what ``t[index] = value`` records. The region's gradient goes to ``value``, the rest to x."""

    category, runs_on_arrays = "movement", True

    @staticmethod
    def forward(ctx, x, value, index):
        out = x.copy()
        out[index] = value
        ctx.kept = np.ones(x.shape, dtype=bool)
        ctx.kept[index] = False
        return out

    @staticmethod
    def backward(ctx, grad):
        need_x, need_value = ctx.needs_input_grad
        return (grad * ctx.kept if need_x else None,
                grad[ctx.attrs["index"]] if need_value else None)


class Concatenate(Function):
    category, runs_on_arrays = "movement", True

    @staticmethod
    def forward(ctx, *arrays, axis):
        ctx.ends = tuple(itertools.accumulate(a.shape[axis] for a in arrays))
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        lead = (slice(None),) * ctx.attrs["axis"]
        starts = (0,) + ctx.ends[:-1]
        return tuple(grad[lead + (slice(start, end),)] if need else None
                     for start, end, need in zip(starts, ctx.ends, ctx.needs_input_grad))


# ----------------------------------------------------------------------------------------------
# What the Tensor methods call: argument checks where the user called.
# ----------------------------------------------------------------------------------------------

def broadcast_to(x: Tensor, shape) -> Tensor:
    shape = as_shape("broadcast_to", shape)
    source = x.data.shape
    if source == shape:
        return x
    lead = len(shape) - len(source)
    if lead < 0 or any(n != 1 and n != shape[lead + i] for i, n in enumerate(source)):
        raise ShapeError(f"broadcast_to: cannot broadcast shape {source} to {shape} (NumPy "
                         f"rules: each dim of the source must be 1 or equal the target's)")
    return BroadcastTo.apply(x, shape=shape)


def reshape(x: Tensor, shape) -> Tensor:
    shape = as_shape("reshape", shape)
    if shape == x.shape:
        return x
    target = _resolve_shape(shape, x.size)
    if target is None:
        raise ShapeError(f"reshape: cannot reshape a tensor of shape {x.shape} "
                         f"({x.size} elements) into shape {shape}")
    return Reshape.apply(x, shape=target)


def _resolve_shape(shape, size):
    """``shape`` with a -1 filled in, or None if it cannot hold ``size`` elements."""
    if any(n < -1 for n in shape) or shape.count(-1) > 1:
        return None
    if -1 not in shape:
        return shape if math.prod(shape) == size else None
    known = math.prod(n for n in shape if n != -1)
    if known == 0 or size % known:
        return None
    unknown = shape.index(-1)
    return shape[:unknown] + (size // known,) + shape[unknown + 1:]


def transpose(x: Tensor, axes) -> Tensor:
    """NumPy's transpose: ``axes`` None reverses the dims, else it is a permutation of them."""
    ndim = x.data.ndim
    if axes is None:
        return Transpose.apply(x, axes=tuple(range(ndim - 1, -1, -1))) if ndim > 1 else x
    if not isinstance(axes, (tuple, list)):
        bad_argument("transpose", "axes", "None or a permutation of the dims", axes,
                     ArgumentTypeError)
    axes = tuple(integer("transpose", "axes", a) for a in axes)
    normalized = [normalize_axis(a, ndim, "transpose")[0] for a in axes] if ndim else []
    if sorted(normalized) != list(range(ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of the {ndim} dims "
                         f"of a tensor of shape {x.shape}")
    if tuple(normalized) == tuple(range(ndim)):
        return x
    return Transpose.apply(x, axes=tuple(normalized))


def swapaxes(x: Tensor, first, second) -> Tensor:
    """PyTorch's ``transpose(dim0, dim1)``: exchange two dims (the same dim twice: no change)."""
    ndim = x.data.ndim
    first, second = (normalize_axis(integer("transpose", "dim", a), max(ndim, 1), "transpose")
                     for a in (first, second))
    order = list(range(ndim))
    if ndim:
        order[first[0]], order[second[0]] = order[second[0]], order[first[0]]
    return transpose(x, tuple(order))


def getitem(x: Tensor, index) -> Tensor:
    try:
        index = as_index(index)
        return GetItem.apply(x, index=index)
    except (IndexError, ValueError) as error:  # a ragged list; the forward's own indexing
        raise IndexError(f"getitem: index {index!r:.60} is invalid for a tensor of shape "
                         f"{x.shape}: {error}") from None


def setitem(x: Tensor, index, value) -> Tensor:
    """The out-of-place ``x[index] = value`` (see SetItem)."""
    region = np.empty(x.shape, dtype=bool)[index].shape
    value = operand(value, x, "setitem")
    if not isinstance(value, Tensor):
        value = Tensor._make(np.asarray(value, dtype=x.dtype), False, None)
    if value.dtype != x.dtype:
        value = value.astype(x.dtype)
    broadcast_shape("setitem", value.shape, region)
    if value.shape != region:
        if len(value.shape) > len(region):  # NumPy drops leading 1s when assigning
            value = value.reshape(value.shape[len(value.shape) - len(region):])
        value = broadcast_to(value, region)
    return SetItem.apply(x, value, index=index)


def _join_operands(op_name: str, tensors) -> list:
    """Tensors to join, with constants (arrays, lists) in the first float tensor's dtype."""
    if isinstance(tensors, (Tensor, str, bytes, dict, set)) or not hasattr(tensors, "__iter__"):
        raise TypeError(f"{op_name}: expected a sequence of tensors, got "
                        f"{type(tensors).__name__}")
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op_name}: need at least one tensor")
    like = next((t for t in tensors if isinstance(t, Tensor) and t.dtype.kind == "f"), None)
    return [t if isinstance(t, Tensor) and t.dtype.kind == "f" else
            operand(to_array(as_array(t), None, op_name), like, op_name) for t in tensors]


def concatenate(tensors, axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (like ``np.concatenate``)."""
    tensors = _join_operands("concatenate", tensors)
    ndim = tensors[0].ndim
    if ndim == 0:
        raise ValueError("concatenate: 0-d tensors have no axis to join along (use stack)")
    (axis,) = normalize_axis(integer("concatenate", "axis", axis), ndim, "concatenate")
    for t in tensors:
        if t.ndim != ndim or t.shape[:axis] + t.shape[axis + 1:] != \
                tensors[0].shape[:axis] + tensors[0].shape[axis + 1:]:
            raise ShapeError(f"concatenate: shapes {[t.shape for t in tensors]} differ outside "
                             f"axis {axis}")
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors, axis: int = 0) -> Tensor:
    """Join same-shape tensors along a new axis (like ``np.stack``)."""
    tensors = _join_operands("stack", tensors)
    if any(t.shape != tensors[0].shape for t in tensors):
        raise ShapeError(f"stack: all tensors need the same shape, got "
                         f"{[t.shape for t in tensors]}")
    (axis,) = normalize_axis(integer("stack", "axis", axis), tensors[0].ndim + 1, "stack")
    shape = tensors[0].shape[:axis] + (1,) + tensors[0].shape[axis:]
    return Concatenate.apply(*[t.reshape(shape) for t in tensors], axis=axis)
