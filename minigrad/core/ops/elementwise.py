"""Elementwise ops: each backward is the local derivative times the incoming gradient."""
from __future__ import annotations

import numbers

import numpy as np

from .. import engine
from ..checks import bad_argument
from ..dtypes import to_array
from ..errors import ArgumentTypeError
from ..function import Function
from ..tensor import Tensor, as_array
from .args import broadcast_shape, operand
from .shape import broadcast_to


class Add(Function):
    category, runs_on_arrays = "elementwise", True

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    category, runs_on_arrays = "elementwise", True

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad):
        return grad, -grad


class Mul(Function):
    category, runs_on_arrays = "elementwise", True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return grad * b if need_a else None, grad * a if need_b else None


class Div(Function):
    category, runs_on_arrays = "elementwise", True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return grad / b if need_a else None, -grad * a / (b * b) if need_b else None


class Neg(Function):
    category, runs_on_arrays = "elementwise", True

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Pow(Function):
    """``base ** exponent``; either may be a tensor or a number."""

    category, runs_on_arrays = "elementwise", True

    @staticmethod
    def forward(ctx, base, exponent):
        out = np.power(base, exponent)
        ctx.save_for_backward(base, exponent, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        # PyTorch's pow backward, zeros included. Where a zero is chosen, the other branch is
        # computed on a harmless value (exponent 1, log of 1), so no inf or nan is made there
        # that a second derivative would multiply by zero into nan.
        base, exponent, out = ctx.saved_tensors
        need_base, need_exponent = ctx.needs_input_grad
        grad_base = grad_exponent = None
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 ** -1 is inf, as in PyTorch
            if need_base:
                # d/dbase = exponent * base^(exponent - 1), and 0 where exponent is 0: x**0 is
                # constant, even at x = 0 (where 0 * 0**-1 would be nan).
                if isinstance(exponent, numbers.Number):
                    grad_base = (grad * exponent * base ** (exponent - 1) if exponent != 0
                                 else grad * 0.0)
                else:
                    constant = as_array(exponent) == 0
                    power = Where.apply(constant, 1.0, exponent - 1)
                    grad_base = Where.apply(constant, 0.0, grad * exponent * base ** power)
            if need_exponent:
                # d/dexponent = base^exponent * log(base), and 0 where base is 0 and the
                # exponent >= 0 (PyTorch's convention: 0 ** y is 0 for every y > 0, flat in y)
                flat = (as_array(base) == 0) & (as_array(exponent) >= 0)
                grad_exponent = grad * out * Log.apply(Where.apply(flat, 1.0, base))
        return grad_base, grad_exponent


class Exp(Function):
    category, runs_on_arrays = "elementwise", True

    @staticmethod
    def forward(ctx, x):
        out = np.exp(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out


class Log(Function):
    category, runs_on_arrays = "elementwise", True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x


class Sqrt(Function):
    category, runs_on_arrays = "elementwise", True

    @staticmethod
    def forward(ctx, x):
        out = np.sqrt(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad / (out * 2)


class Sin(Function):
    category, runs_on_arrays = "elementwise", True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sin(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * Cos.apply(x)


class Cos(Function):
    category, runs_on_arrays = "elementwise", True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.cos(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return -grad * Sin.apply(x)


class Abs(Function):
    """|x|; the gradient at 0 is 0 (the subgradient NumPy's ``sign`` picks)."""

    category, runs_on_arrays = "elementwise", True
    kink = ("inputs", "abs's kink at 0")
    distance_to_kink = staticmethod(lambda x, **attrs: np.abs(x))  # the kink is at 0

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
    category, runs_on_arrays = "elementwise", True

    @staticmethod
    def forward(ctx, x):
        out = np.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (1 - out * out)


class Sigmoid(Function):
    category, runs_on_arrays = "elementwise", True

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
        return grad * (out * (1 - out))


class Relu(Function):
    """max(x, 0); the gradient at 0 is 0, as in PyTorch."""

    category, runs_on_arrays = "elementwise", True
    kink = ("inputs", "relu's kink at 0")
    distance_to_kink = staticmethod(Abs.distance_to_kink)

    @staticmethod
    def forward(ctx, x):
        if ctx.recording:
            ctx.save_for_backward(x > 0)
        return np.maximum(x, 0)

    @staticmethod
    def backward(ctx, grad):
        (positive,) = ctx.saved_tensors
        return grad * positive


class Maximum(Function):
    """The elementwise larger of ``a`` and ``b`` (NaN if either is NaN). The gradient goes to
    the larger operand; at a tie each gets half, as in PyTorch."""

    category, runs_on_arrays = "elementwise", True
    kink = ("elements", "a tie between the two operands")

    def distance_to_kink(self, x, **attrs):
        # A method, unlike other ops' (static) ones: the distance is |a - b|, and the node
        # holds both operands.
        a, b = (as_array(t) for t in self.inputs)
        return np.abs(np.asarray(a) - b)

    @staticmethod
    def forward(ctx, a, b):
        if ctx.recording:
            ctx.save_for_backward(*_tie_shares(a, b))
        return np.maximum(a, b)

    @staticmethod
    def backward(ctx, grad):
        share_a, share_b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return grad * share_a if need_a else None, grad * share_b if need_b else None


class Minimum(Maximum):
    """The elementwise smaller of ``a`` and ``b`` (NaN if either is NaN). The gradient goes to
    the smaller operand; at a tie each gets half, as in PyTorch."""

    @staticmethod
    def forward(ctx, a, b):
        if ctx.recording:
            # a is the smaller exactly where b is the larger: a's share is b's in maximum(b, a)
            ctx.save_for_backward(*_tie_shares(b, a))
        return np.minimum(a, b)


def _tie_shares(a, b):
    """The parts of maximum(a, b)'s gradient that go to a and to b: 1 to the larger, 0 to
    the other, 1/2 each at a tie (PyTorch's convention; with a NaN both get 1, as there)."""
    dtype = np.result_type(a, b)
    half_at_ties = np.where(a == b, 0.5, 1.0).astype(dtype, copy=False)
    return half_at_ties * (~(a < b)), half_at_ties * (~(a > b))


class Clamp(Function):
    """x limited to [min, max]; the gradient is 1 inside (bounds included) and 0 outside, as
    in PyTorch."""

    category, runs_on_arrays = "elementwise", True
    kink = ("inputs", "a clamp bound")

    @staticmethod
    def distance_to_kink(x, *, low, high):
        distance = np.full(np.shape(x), np.inf)
        for bound in (low, high):
            if bound is not None:
                distance = np.minimum(distance, np.abs(x - bound))
        return distance

    @staticmethod
    def forward(ctx, x, low, high):
        if ctx.recording:
            inside = np.ones(x.shape, dtype=bool)
            if low is not None:
                inside &= x >= low
            if high is not None:
                inside &= x <= high
            ctx.save_for_backward(inside)
        return np.clip(x, low, high)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside


class Where(Function):
    """``condition ? a : b``; the condition is a constant mask, not differentiated."""

    category, runs_on_arrays = "elementwise", True

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
    category, runs_on_arrays = "elementwise", True

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.input_dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.input_dtype)


# ----------------------------------------------------------------------------------------------
# What the Tensor methods call: explicit broadcasting, argument checks.
# ----------------------------------------------------------------------------------------------

def binary(op, a, b) -> Tensor:
    """``op`` applied to two operands, each broadcast explicitly (a BroadcastTo node) when it
    needs a gradient and has not the result's shape."""
    name = op.__name__.lower()
    if not isinstance(a, Tensor):
        a = operand(a, b, name)
    elif not isinstance(b, Tensor):
        b = operand(b, a, name)
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        if a.data.dtype is not b.data.dtype:
            a, b = operand(a, b, name), operand(b, a, name)
        if a.data.shape != b.data.shape:
            a, b = _broadcast_operands(name, a, b)
    return op.apply(a, b)


def _broadcast_operands(op_name: str, *operands):
    shape = broadcast_shape(op_name, *(t.shape for t in operands if isinstance(t, Tensor)))
    if not engine.is_grad_enabled():  # NumPy broadcasts by itself; no graph to show it in
        return operands
    return tuple(broadcast_to(t, shape) if isinstance(t, Tensor) and t.requires_grad else t
                 for t in operands)


def power(base, exponent) -> Tensor:
    if not isinstance(base, Tensor):  # number ** tensor: the number becomes a constant tensor
        base = Tensor._make(np.asarray(base, dtype=exponent.dtype), False, None)
    return binary(Pow, base, exponent)


def check_clamp_bounds(op_name: str, low, high) -> None:
    for name, bound in (("min", low), ("max", high)):
        if bound is not None and not isinstance(bound, numbers.Real):
            raise TypeError(f"{op_name}: {name} must be a number or None, got {bound!r}")
    if low is None and high is None:
        raise ValueError(f"{op_name}: at least one of min and max must be given")


def clamp(x: Tensor, min=None, max=None) -> Tensor:
    """x limited to [min, max] (either may be None), like ``torch.clamp``."""
    check_clamp_bounds("clamp", min, max)
    return Clamp.apply(x, low=None if min is None else float(min),
                       high=None if max is None else float(max))


def as_input(op_name: str, x) -> Tensor:
    """``x`` for a module-level function such as ``mg.sin``: a Tensor as it is; numbers, lists
    and arrays as a constant tensor (a clear error naming the op for anything else)."""
    return x if isinstance(x, Tensor) else Tensor._make(to_array(x, None, op_name), False, None)


def sin(x) -> Tensor:
    """Elementwise sine (radians), like ``torch.sin``."""
    return Sin.apply(as_input("sin", x))


def cos(x) -> Tensor:
    """Elementwise cosine (radians), like ``torch.cos``."""
    return Cos.apply(as_input("cos", x))


def maximum(a, b) -> Tensor:
    """The elementwise larger of ``a`` and ``b``, broadcast together (like ``torch.maximum``;
    either may be a number). At a tie each operand gets half the gradient."""
    return binary(Maximum, *_operands("maximum", a, b))


def minimum(a, b) -> Tensor:
    """The elementwise smaller of ``a`` and ``b``, broadcast together (like ``torch.minimum``;
    either may be a number). At a tie each operand gets half the gradient."""
    return binary(Minimum, *_operands("minimum", a, b))


def _operands(op_name: str, a, b) -> tuple:
    """At least one of ``a`` and ``b`` a Tensor (a pair of plain values becomes one)."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = as_input(op_name, a)
    return a, b


def _numbers(name: str, value, kinds: str, expected: str) -> np.ndarray:
    """``value`` as an array for ``where``'s argument ``name``, or an ArgumentTypeError naming
    it: strings, None, objects and ragged lists are not numbers."""
    try:
        array = np.asarray(as_array(value))
    except (TypeError, ValueError):  # a ragged list
        array = None
    if array is None or array.dtype.kind not in kinds:
        bad_argument("where", name, expected, value, ArgumentTypeError)
    return array


def where(condition, a, b) -> Tensor:
    """Elementwise ``a`` where ``condition`` holds, else ``b`` (like ``np.where``). The
    condition is booleans (numbers count as ``!= 0``); ``a`` and ``b`` are numbers, arrays or
    tensors; the three broadcast together."""
    condition = _numbers("condition", condition, "biuf",
                         "a boolean tensor or array (or numbers)").astype(bool, copy=False)
    for name, value in (("a", a), ("b", b)):
        if not isinstance(value, (Tensor, numbers.Number)):
            _numbers(name, value, "biufc", "a number, an array of numbers or a tensor")
    like = a if isinstance(a, Tensor) else b
    a, b = operand(a, like, "where"), operand(b, like, "where")
    shapes = [condition.shape] + [t.shape for t in (a, b) if isinstance(t, Tensor)]
    shape = broadcast_shape("where", *shapes)
    if engine.is_grad_enabled():
        a, b = (broadcast_to(t, shape) if isinstance(t, Tensor) and t.requires_grad else t
                for t in (a, b))
    return Where.apply(condition, a, b)


def replaced(old: Tensor, value) -> Tensor:
    """A tensor of ``old``'s shape and dtype holding ``value`` everywhere (broadcast): what
    ``fill_`` and ``copy_`` write. The gradient goes to ``value``, none to ``old``."""
    value = value if isinstance(value, Tensor) else Tensor._make(
        np.asarray(value, dtype=old.dtype), False, None)
    if value.dtype != old.dtype:
        value = value.astype(old.dtype)
    return where(np.zeros(old.shape, dtype=bool), old, value)
