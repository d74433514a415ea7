"""Primitive ops: each forward (on NumPy arrays) sits next to its backward (in Tensor ops).

Because every backward is written with Tensor ops, backpropagating with ``create_graph=True``
records the backward itself, which is how second derivatives work. The ops fall into four
groups: elementwise, reductions, movement (shape) ops and matmul. The functions at the bottom
(``binary``, ``matmul``, ``getitem``, ...) validate arguments where the user called and insert
explicit ``BroadcastTo`` nodes, so ``_sum_to`` (BroadcastTo's backward) is the one place where
a broadcast gradient is summed back to its operand's shape. In a first-order backward, Add, Sub
and Mul call it themselves and pass the sum past the BroadcastTo node (Function.broadcast_source):
a product's sum then needs no full-size array.
"""
from __future__ import annotations

import functools
import itertools
import math
import numbers

import numpy as np

from . import autograd
from .autograd import Function, PastBroadcast
from .tensor import Tensor, _raw

__all__ = ["concatenate", "stack", "where"]

_SMALL = 4096  # elements; below this, copying beats NumPy's Python-level view machinery


# ----------------------------------------------------------------------------------------------
# Elementwise
# ----------------------------------------------------------------------------------------------

class Add(Function):
    runs_on_arrays = True

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        if not ctx.broadcast_inputs:
            return grad, grad
        need_a, need_b = ctx.needs_input_grad
        return (_passed_on(ctx, 0, grad) if need_a else None,
                _passed_on(ctx, 1, grad) if need_b else None)


class Sub(Function):
    runs_on_arrays = writes_into_grad = True

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad):
        need_a, need_b = ctx.needs_input_grad
        if not ctx.broadcast_inputs:
            return grad, (-grad if need_b else None)
        grad_a = _passed_on(ctx, 0, grad) if need_a else None
        if not need_b:
            return grad_a, None
        source = ctx.broadcast_source(1)
        if source is not None:  # negate after summing: a reduction-sized array, not a full one
            return grad_a, PastBroadcast(-_sum_to(source, grad))
        if grad_a is not grad and ctx.owns_grad:
            return grad_a, np.negative(grad, out=grad)
        return grad_a, -grad


class Mul(Function):
    runs_on_arrays = writes_into_grad = True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        grad_b = _times(ctx, 1, grad, a, last_use=not need_a) if need_b else None
        grad_a = _times(ctx, 0, grad, b, last_use=True) if need_a else None
        return grad_a, grad_b


def _scaled(ctx, grad, factor):
    """``grad * factor`` for an elementwise op of one input, whose factor has grad's shape and
    dtype (or is a bool mask): written into ``grad`` when the backward owns it."""
    return np.multiply(grad, factor, out=grad) if ctx.owns_grad else grad * factor


def _passed_on(ctx, index, grad):
    """``grad`` as the gradient of input ``index`` of a sum: summed down to the input's shape
    before broadcasting when the pass may skip its BroadcastTo node (Function.broadcast_source)."""
    source = ctx.broadcast_source(index)
    return grad if source is None else PastBroadcast(_sum_to(source, grad))


def _times(ctx, index, grad, factor, last_use: bool):
    """``grad * factor``, the gradient of input ``index`` of a product, made as cheaply as the
    pass allows: summed straight down to the input's shape before broadcasting by one einsum,
    with no full-size product (Function.broadcast_source); else written into ``grad`` if the
    backward owns it and does not read it again; else a new array."""
    source = ctx.broadcast_source(index) if ctx.broadcast_inputs else None
    if source is not None:
        return PastBroadcast(_sum_to(source, grad, factor))
    if last_use and ctx.owns_grad and getattr(factor, "dtype", grad.dtype) == grad.dtype:
        return np.multiply(grad, factor, out=grad)
    return grad * factor


class Div(Function):
    runs_on_arrays = True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        grad_a = grad / b if need_a else None
        grad_b = -grad * a / (b * b) if need_b else None
        return grad_a, grad_b


class Neg(Function):
    runs_on_arrays = True

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Pow(Function):
    """``base ** exponent``; either may be a tensor or a number."""

    runs_on_arrays = True

    @staticmethod
    def forward(ctx, base, exponent):
        out = np.power(base, exponent)
        ctx.save_for_backward(base, exponent, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        base, exponent, out = ctx.saved_tensors
        need_base, need_exponent = ctx.needs_input_grad
        grad_base = None
        if need_base and isinstance(exponent, numbers.Number) and exponent == 0:
            grad_base = grad * 0.0  # x**0 is constant, even at x = 0 (where 0 * 0**-1 is nan)
        elif need_base:
            grad_base = grad * exponent * base ** (exponent - 1)
            if not isinstance(exponent, numbers.Number):  # a tensor (or array) of exponents
                grad_base = Where.apply(_raw(exponent) != 0, grad_base, 0.0)
        grad_exponent = grad * out * Log.apply(base) if need_exponent else None
        return grad_base, grad_exponent


class Exp(Function):
    runs_on_arrays = writes_into_grad = True

    @staticmethod
    def forward(ctx, x):
        out = np.exp(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return _scaled(ctx, grad, out)


class Log(Function):
    runs_on_arrays = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x


class Sqrt(Function):
    runs_on_arrays = True

    @staticmethod
    def forward(ctx, x):
        out = np.sqrt(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad / (out * 2)


class Abs(Function):
    """|x|; the gradient at 0 is 0 (the subgradient NumPy's ``sign`` picks)."""

    runs_on_arrays = True

    @staticmethod
    def forward(ctx, x):
        if ctx.recording:
            ctx.save_for_backward(np.sign(x))
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (sign,) = ctx.saved_tensors
        return grad * sign


class Tanh(Function):
    runs_on_arrays = writes_into_grad = True

    @staticmethod
    def forward(ctx, x):
        out = np.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return _scaled(ctx, grad, 1 - out * out)


class Sigmoid(Function):
    runs_on_arrays = writes_into_grad = True

    @staticmethod
    def forward(ctx, x):
        # 1 / (1 + e^-x) = exp(-log(1 + e^-x)): logaddexp neither overflows for large |x| nor
        # cancels for very negative x, where 0.5 * (1 + tanh(x / 2)) keeps no significant digit.
        out = np.exp(-np.logaddexp(0.0, -x))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return _scaled(ctx, grad, out * (1 - out))


class Relu(Function):
    """max(x, 0); the gradient at 0 is 0, as in PyTorch."""

    runs_on_arrays = writes_into_grad = True

    @staticmethod
    def forward(ctx, x):
        if ctx.recording:
            ctx.save_for_backward(x > 0)
        return np.maximum(x, 0)

    @staticmethod
    def backward(ctx, grad):
        (positive,) = ctx.saved_tensors
        return _scaled(ctx, grad, positive)


class Where(Function):
    """``condition ? a : b``; the condition is a constant mask, not differentiated."""

    runs_on_arrays = True

    @staticmethod
    def forward(ctx, condition, a, b):
        ctx.save_for_backward(condition)
        return np.where(condition, a, b)

    @staticmethod
    def backward(ctx, grad):
        (condition,) = ctx.saved_tensors
        _, need_a, need_b = ctx.needs_input_grad
        grad_a = Where.apply(condition, grad, 0.0) if need_a else None
        grad_b = Where.apply(condition, 0.0, grad) if need_b else None
        return None, grad_a, grad_b


class Cast(Function):
    runs_on_arrays = True

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.save_for_backward(x.dtype)
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        (dtype,) = ctx.saved_tensors
        return grad.astype(dtype)


# ----------------------------------------------------------------------------------------------
# Reductions. ``axis`` is None or a sorted tuple of non-negative axes (see normalize_axis).
# ----------------------------------------------------------------------------------------------

def _reduced_count(shape, axis) -> int:
    return math.prod(shape) if axis is None else math.prod(shape[a] for a in axis)


def _expand_to_input(grad, shape, axis, keepdims):
    """Undo a reduction's shape change: put the reduced axes back, then broadcast. (A Tensor, or
    an array in a first-order backward: see Function.runs_on_arrays.)"""
    if not keepdims and axis is not None:  # (a full reduction's 0-d grad broadcasts as it is)
        grad = grad.reshape(tuple(1 if i in axis else n for i, n in enumerate(shape)))
    if isinstance(grad, (np.ndarray, np.generic)):
        return _broadcast_array(grad, shape)
    return broadcast_to(grad, shape)


def _broadcast_array(x, shape):
    """``np.broadcast_to(x, shape)`` without its ~5 us of Python: small results are copied
    (~0.4 us); large ones are read-only views with stride 0 along the broadcast axes, made by
    the ndarray constructor straight from the strides (~1.5 us; nothing writes into them)."""
    if math.prod(shape) <= _SMALL:
        out = np.empty(shape, dtype=x.dtype)
        out[...] = x
        return out
    if not x.flags.c_contiguous:  # the constructor needs x's memory as one buffer
        return np.broadcast_to(x, shape)
    leading = len(shape) - x.ndim
    strides = (0,) * leading + tuple(0 if n == 1 else stride for n, stride in
                                     zip(x.shape, x.strides))
    view = np.ndarray(shape, x.dtype, x, 0, strides)
    view.flags.writeable = False
    return view


class Sum(Function):
    runs_on_arrays = True

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.save_for_backward(x.shape)
        return x.sum(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        (shape,) = ctx.saved_tensors
        return _expand_to_input(grad, shape, ctx.attrs["axis"], ctx.attrs["keepdims"])


class Mean(Function):
    runs_on_arrays = True

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.save_for_backward(x.shape)
        return x.mean(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        (shape,) = ctx.saved_tensors
        axis = ctx.attrs["axis"]
        # Divide while the gradient is still reduction-sized: one full-size array fewer.
        return _expand_to_input(grad / _reduced_count(shape, axis), shape, axis,
                                ctx.attrs["keepdims"])


class Var(Function):
    """Variance, two-pass (mean first, then squared deviations) as in ``np.var``, so data far
    from zero (1e8 + noise) keeps its precision."""

    runs_on_arrays = True

    @staticmethod
    def forward(ctx, x, axis, keepdims, ddof):
        ctx.save_for_backward(x)
        return x.var(axis=axis, keepdims=keepdims, ddof=ddof)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        axis, keepdims, ddof = ctx.attrs["axis"], ctx.attrs["keepdims"], ctx.attrs["ddof"]
        centered = x - x.mean(axis=axis, keepdims=True)
        dof = _reduced_count(x.shape, axis) - ddof
        scale = 2.0 / dof if dof > 0 else math.nan  # as NumPy's forward: nan, not an exception
        # Scale while the gradient is still reduction-sized, and multiply into the fresh
        # ``centered`` (in place on arrays; a new node on Tensors): two full-size arrays fewer.
        centered *= _expand_to_input(grad * scale, x.shape, axis, keepdims)
        return centered


class Max(Function):
    """Maximum. Ties split the gradient equally among the tied elements (like ``torch.amax``),
    so the gradient is the same whichever of them one calls "the" maximum."""

    runs_on_arrays = True

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        out = x.max(axis=axis, keepdims=True)
        if ctx.recording:
            is_max = (x == out).astype(x.dtype)
            ctx.save_for_backward(is_max / is_max.sum(axis=axis, keepdims=True))
        return out if keepdims else np.squeeze(out, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        (share,) = ctx.saved_tensors
        return _expand_to_input(grad, share.shape, ctx.attrs["axis"], ctx.attrs["keepdims"]) * share


# ----------------------------------------------------------------------------------------------
# Movement: shape changes that copy no arithmetic.
# ----------------------------------------------------------------------------------------------

class Reshape(Function):
    runs_on_arrays = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.save_for_backward(x.shape)
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        (shape,) = ctx.saved_tensors
        return grad.reshape(shape)


class Transpose(Function):
    runs_on_arrays = True

    @staticmethod
    def forward(ctx, x, axes):
        return np.transpose(x, axes)

    @staticmethod
    def backward(ctx, grad):
        return grad.transpose(tuple(np.argsort(ctx.attrs["axes"])))


class BroadcastTo(Function):
    """Repeat along new leading axes and along axes of length 1. Its backward sums the gradient
    over those axes (``_sum_to``)."""

    runs_on_arrays = True
    is_broadcast = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.save_for_backward(x.shape)
        return _broadcast_array(x, shape)

    @staticmethod
    def backward(ctx, grad):
        (shape,) = ctx.saved_tensors
        return _sum_to(shape, grad)


def _sum_to(shape: tuple, grad, factor=None):
    """Sum ``grad`` -- or ``grad * factor``, without making that product (an einsum; arrays
    only) -- over the axes along which ``shape`` was broadcast to ``grad.shape``: the one
    place that un-broadcasts (BroadcastTo.backward, and the ops that skip it)."""
    leading = grad.ndim - len(shape)
    axes = tuple(range(leading)) + tuple(
        leading + i for i, n in enumerate(shape) if n == 1 and grad.shape[leading + i] != 1)
    if factor is not None:
        everything = list(range(grad.ndim))
        kept = [i for i in everything if i not in axes]
        factor_axes = everything[grad.ndim - np.ndim(factor):]
        summed = np.einsum(grad, everything, factor, factor_axes, kept)
    elif axes:
        summed = grad.sum(axis=axes, keepdims=True)
    else:
        summed = grad
    return summed if summed.shape == shape else summed.reshape(shape)


def _is_basic_index(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, numbers.Integral))
               for p in parts)


class GetItem(Function):
    runs_on_arrays = True

    @staticmethod
    def forward(ctx, x, index):
        ctx.save_for_backward(x.shape)
        return np.array(x[index])  # a copy, so later writes into x cannot change it

    @staticmethod
    def backward(ctx, grad):
        (shape,) = ctx.saved_tensors
        return ScatterAdd.apply(grad, index=ctx.attrs["index"], shape=shape)


class ScatterAdd(Function):
    """Zeros of ``shape`` with ``values`` added at ``index``; repeated indices accumulate. The
    backward of indexing, and indexing is in turn its backward."""

    runs_on_arrays = True

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


class Concatenate(Function):
    runs_on_arrays = True

    @staticmethod
    def forward(ctx, *arrays, axis):
        ctx.save_for_backward(tuple(itertools.accumulate(a.shape[axis] for a in arrays)))
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        (ends,) = ctx.saved_tensors
        axis = ctx.attrs["axis"]
        lead = (slice(None),) * axis
        starts = (0,) + ends[:-1]
        return tuple(grad[lead + (slice(start, end),)] if need else None
                     for start, end, need in zip(starts, ends, ctx.needs_input_grad))


class MatMul(Function):
    """Matrix product of operands with at least 2 dims and equal batch dims (``matmul`` below
    handles 1-D operands and batch broadcasting with explicit reshape/broadcast nodes)."""

    runs_on_arrays = True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        grad_a = grad @ _swap_last(b) if need_a else None
        grad_b = _swap_last(a) @ grad if need_b else None
        return grad_a, grad_b


def _swap_last(x):
    if x.ndim == 2:
        return x.T
    axes = list(range(x.ndim))
    axes[-2:] = axes[-1], axes[-2]
    return x.transpose(tuple(axes))


# ----------------------------------------------------------------------------------------------
# What the Tensor methods call: argument checks where the user called, explicit broadcasting.
# ----------------------------------------------------------------------------------------------

def _operand(value, like):
    """Make ``value`` an operand for an op with ``like``, without changing ``like``'s dtype.

    Python and NumPy scalars become Python numbers (NumPy keeps an array's dtype for those).
    Constants -- arrays, lists, integer tensors -- take ``like``'s float dtype, as in PyTorch:
    a float32 tensor times an int64 tensor is float32, not NumPy's float64."""
    if isinstance(value, np.generic):  # before Number: np.float64 is a float subclass
        return value.item()
    if isinstance(value, numbers.Number):
        return value
    if isinstance(value, Tensor) and (value.requires_grad or value.dtype.kind not in "iu"):
        return value
    array = np.asarray(_raw(value))
    if array.dtype == object:
        raise TypeError(f"cannot combine a tensor with {type(value).__name__}")
    if isinstance(like, Tensor) and like.dtype.kind == "f" and array.dtype.kind in "iuf":
        array = array.astype(like.dtype, copy=False)
    return Tensor._make(array, False, None)


@functools.lru_cache(maxsize=4096)
def broadcast_shape(op_name: str, *shapes) -> tuple:
    """NumPy's broadcast result shape (np.broadcast_shapes, minus its Python overhead). Cached:
    a training loop asks about the same few shapes on every step."""
    result = []
    for dims in itertools.zip_longest(*(reversed(s) for s in shapes), fillvalue=1):
        sizes = {n for n in dims if n != 1}
        if len(sizes) > 1:
            listed = " and ".join(str(tuple(s)) for s in shapes)
            raise ValueError(f"{op_name}: shapes {listed} cannot be broadcast together "
                             f"(NumPy rules: trailing dims must be equal or 1)")
        result.append(sizes.pop() if sizes else 1)
    return tuple(reversed(result))


def _broadcast_operands(op_name: str, *operands):
    """Give every operand that needs a gradient the output shape, via explicit BroadcastTo."""
    tensors = [t for t in operands if isinstance(t, Tensor)]
    shapes = [t.shape for t in tensors]
    if all(s == shapes[0] for s in shapes):
        return operands
    shape = broadcast_shape(op_name, *shapes)
    if not autograd._grad_enabled:  # NumPy broadcasts by itself; no graph to show it in
        return operands
    # (broadcast_shape has validated the shapes; BroadcastTo.apply skips broadcast_to's checks)
    return tuple(BroadcastTo.apply(t, shape=shape) if isinstance(t, Tensor) and t.requires_grad
                 and t.data.shape != shape else t for t in operands)


def binary(op, a, b) -> Tensor:
    if not isinstance(a, Tensor):
        a = _operand(a, b)
    elif not isinstance(b, Tensor):
        b = _operand(b, a)
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        if a.data.dtype is not b.data.dtype:
            a, b = _operand(a, b), _operand(b, a)
        if a.data.shape != b.data.shape:
            wide_a, wide_b = _broadcast_operands(op.__name__.lower(), a, b)
            if wide_a is not a or wide_b is not b:  # a BroadcastTo node was made
                out = op.apply(wide_a, wide_b)
                if out.grad_fn is not None:
                    out.grad_fn.broadcast_inputs = True
                return out
    return op.apply(a, b)


def power(base, exponent) -> Tensor:
    if not isinstance(base, Tensor):  # number ** tensor: the number becomes a constant tensor
        base = Tensor._make(np.asarray(base, dtype=exponent.dtype), False, None)
    return binary(Pow, base, exponent)


def broadcast_to(x: Tensor, shape) -> Tensor:
    shape = tuple(shape)
    source = x.data.shape
    if source == shape:
        return x
    lead = len(shape) - len(source)
    if lead < 0 or any(n != 1 and n != shape[lead + i] for i, n in enumerate(source)):
        raise ValueError(f"broadcast_to: cannot broadcast shape {source} to {shape} (NumPy "
                         f"rules: each dim of the source must be 1 or equal the target's)")
    return BroadcastTo.apply(x, shape=shape)


def reshape(x: Tensor, shape) -> Tensor:
    shape = tuple(shape)
    if shape == x.shape:
        return x
    target = _resolve_shape(shape, x.size)
    if target is None:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} "
                         f"({x.size} elements) into shape {shape}")
    return Reshape.apply(x, shape=target)


def _resolve_shape(shape, size):
    """``shape`` with a -1 filled in, or None if it cannot hold ``size`` elements."""
    if -1 not in shape:
        return shape if math.prod(shape) == size else None
    known = math.prod(n for n in shape if n != -1)
    if shape.count(-1) > 1 or any(n < -1 for n in shape) or known == 0 or size % known:
        return None
    unknown = shape.index(-1)
    return shape[:unknown] + (size // known,) + shape[unknown + 1:]


def transpose(x: Tensor, axes) -> Tensor:
    ndim = x.data.ndim
    if axes is None:
        return Transpose.apply(x, axes=tuple(range(ndim - 1, -1, -1))) if ndim > 1 else x
    if sorted(a % ndim if ndim else a for a in axes) != list(range(ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of the {ndim} dims "
                         f"of a tensor of shape {x.shape}")
    axes = tuple(a % ndim for a in axes)
    if axes == tuple(range(ndim)):
        return x
    return Transpose.apply(x, axes=axes)


def normalize_axis(axis, ndim: int, op_name: str):
    """None stays None (reduce everything); an int or tuple becomes a sorted tuple of
    non-negative axes."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    normalized = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"{op_name}: axis {a} is out of range for a tensor with {ndim} dims")
        normalized.append(int(a) % max(ndim, 1))
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{op_name}: repeated axis in {axis}")
    return tuple(sorted(normalized))


def matmul(a, b) -> Tensor:
    a, b = _operand(a, b), _operand(b, a)
    if np.ndim(a) == 0 or np.ndim(b) == 0:  # (_operand leaves Python numbers as they are)
        raise ValueError(f"matmul: both operands need at least 1 dim, got shapes {np.shape(a)} "
                         f"and {np.shape(b)} (use * to multiply by a scalar)")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned: "
                         f"{a.shape[-1]} (last dim of a) != "
                         f"{b.shape[-2 if b.ndim > 1 else 0]} ({'second-to-' if b.ndim > 1 else ''}"
                         f"last dim of b)")
    a2 = a.reshape(1, a.shape[0]) if a.ndim == 1 else a
    b2 = b.reshape(b.shape[0], 1) if b.ndim == 1 else b
    if a2.shape[:-2] == b2.shape[:-2]:  # the common case (2-D): nothing to broadcast
        batch = a2.shape[:-2]
    else:
        try:
            batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        except ValueError:
            raise ValueError(f"matmul: the batch dims of shapes {a.shape} and {b.shape} cannot "
                             f"be broadcast together (all but the last two dims)") from None
    if a2.shape[:-2] != batch or b2.shape[:-2] != batch:
        a2, b2 = (broadcast_to(t, batch + t.shape[-2:]) if t.requires_grad else t
                  for t in (a2, b2))
    out = MatMul.apply(a2, b2)
    if a.ndim == 1 or b.ndim == 1:
        shape = out.shape[:-2] + (() if a.ndim == 1 else out.shape[-2:-1]) + (
            () if b.ndim == 1 else out.shape[-1:])
        out = out.reshape(shape)
    return out


def getitem(x: Tensor, index) -> Tensor:
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(_raw(i) for i in index)
    elif isinstance(index, list):
        index = np.asarray(index)
    try:
        return GetItem.apply(x, index=index)
    except IndexError as error:  # raised by the forward's indexing, before anything is recorded
        raise IndexError(f"getitem: index {index!r:.60} is invalid for a tensor of shape "
                         f"{x.shape}: {error}") from None


def _join_operands(tensors) -> list:
    """Tensors to join, with constants (arrays, lists) in the first float tensor's dtype."""
    like = next((t for t in tensors if isinstance(t, Tensor) and t.dtype.kind == "f"), None)
    return [t if isinstance(t, Tensor) and t.dtype.kind == "f" else
            Tensor(_operand(np.asarray(_raw(t)), like))
            for t in tensors]


def concatenate(tensors, axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (like ``np.concatenate``)."""
    tensors = _join_operands(tensors)
    if not tensors:
        raise ValueError("concatenate: need at least one tensor")
    ndim = tensors[0].ndim
    (axis,) = normalize_axis(axis, ndim, "concatenate")
    for t in tensors:
        if t.ndim != ndim or t.shape[:axis] + t.shape[axis + 1:] != \
                tensors[0].shape[:axis] + tensors[0].shape[axis + 1:]:
            raise ValueError(f"concatenate: shapes {[t.shape for t in tensors]} differ outside "
                             f"axis {axis}")
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors, axis: int = 0) -> Tensor:
    """Join same-shape tensors along a new axis (like ``np.stack``)."""
    tensors = _join_operands(tensors)
    if not tensors:
        raise ValueError("stack: need at least one tensor")
    if any(t.shape != tensors[0].shape for t in tensors):
        raise ValueError(f"stack: all tensors need the same shape, got "
                         f"{[t.shape for t in tensors]}")
    (axis,) = normalize_axis(axis, tensors[0].ndim + 1, "stack")
    shape = tensors[0].shape[:axis] + (1,) + tensors[0].shape[axis:]
    # (concatenate's checks hold already: same shapes, a valid axis)
    return Concatenate.apply(*[t.reshape(shape) for t in tensors], axis=axis)


def where(condition, a, b) -> Tensor:
    """Elementwise ``a`` where ``condition`` holds, else ``b`` (like ``np.where``)."""
    condition = np.asarray(_raw(condition), dtype=bool)
    like = a if isinstance(a, Tensor) else b
    a, b = _operand(a, like), _operand(b, like)
    shapes = [condition.shape] + [t.shape for t in (a, b) if isinstance(t, Tensor)]
    shape = broadcast_shape("where", *shapes)
    if autograd._grad_enabled:
        a, b = (broadcast_to(t, shape) if isinstance(t, Tensor) and t.requires_grad else t
                for t in (a, b))
    return Where.apply(condition, a, b)
