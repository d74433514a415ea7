"""Reductions. ``axis`` is None or a sorted tuple of non-negative axes (see normalize_axis).

Each backward puts the reduced axes back and broadcasts the gradient to the input's shape."""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from ..checks import ArgumentTypeError, bad_argument, boolean
from ..dtypes import get_default_dtype
from ..function import Function
from ..tensor import Tensor
from .args import normalize_axis
from .elementwise import Exp, as_input


def _reduced_count(shape, axis) -> int:
    return math.prod(shape) if axis is None else math.prod(shape[a] for a in axis)


def _accumulator(dtype):
    """The dtype a sum of ``dtype`` values runs in: float64 (complex128), so float32 data far
    from zero (1e8 + noise) keeps its digits; PyTorch accumulates float32 in double too."""
    return np.complex128 if dtype.kind == "c" else np.float64


def _result_dtype(dtype):
    """A mean or variance keeps a floating dtype; integers give float64, as in NumPy."""
    return dtype if dtype.kind in "fc" else np.dtype(np.float64)


def _expand(grad, shape, axis, keepdims):
    """The reduction's output gradient spread back over the input's shape (a Tensor, or an
    array in a first-order backward)."""
    if not keepdims and axis is not None:  # (a full reduction's 0-d grad broadcasts as it is)
        grad = grad.reshape(tuple(1 if i in axis else n for i, n in enumerate(shape)))
    if isinstance(grad, Tensor):
        return grad.broadcast_to(shape)
    return np.broadcast_to(grad, shape)  # (a 0-d array's arithmetic gives a NumPy scalar)


class Sum(Function):
    category, runs_on_arrays = "reduction", True

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.input_shape = x.shape
        return x.sum(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        return _expand(grad, ctx.input_shape, ctx.attrs["axis"], ctx.attrs["keepdims"])


class Mean(Function):
    category, runs_on_arrays = "reduction", True

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.input_shape = x.shape
        total = x.sum(axis=axis, keepdims=keepdims, dtype=_accumulator(x.dtype))
        with np.errstate(invalid="ignore"):  # the mean of no values is nan, as in PyTorch
            return (total / _reduced_count(x.shape, axis)).astype(_result_dtype(x.dtype))

    @staticmethod
    def backward(ctx, grad):
        axis = ctx.attrs["axis"]
        count = _reduced_count(ctx.input_shape, axis)
        return _expand(grad / count, ctx.input_shape, axis, ctx.attrs["keepdims"])


class Var(Function):
    """Variance, as the corrected two-pass formula with float64 sums:

        mean = sum(x) / n;  d = x - mean;  var = (sum(d**2) - sum(d)**2 / n) / (n - ddof)

    ``d`` is computed in the input's dtype: where x and its mean are close, float32 subtracts
    them exactly. The mean itself is rounded to float32 there (to a multiple of 8 at 1e8), and
    ``sum(d)**2 / n`` removes exactly what that rounding adds to ``sum(d**2)``."""

    category, runs_on_arrays = "reduction", True

    @staticmethod
    def forward(ctx, x, axis, keepdims, ddof):
        ctx.save_for_backward(x)
        count = _reduced_count(x.shape, axis)
        if count - ddof <= 0:  # NumPy and PyTorch warn too
            warnings.warn(f"var: degrees of freedom <= 0 (ddof={ddof} with {count} values per "
                          f"result): the variance is inf or nan", RuntimeWarning, stacklevel=3)
        dtype, accumulator = _result_dtype(x.dtype), _accumulator(x.dtype)
        # n - ddof <= 0 gives inf (or nan for 0 / 0), as in PyTorch: no exception
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = x.sum(axis=axis, keepdims=True, dtype=accumulator) / count
            centred = x - mean.astype(dtype)
            shift = centred.sum(axis=axis, keepdims=keepdims, dtype=accumulator)
            squares = np.abs(centred) ** 2 if x.dtype.kind == "c" else centred * centred
            sum_sq = squares.sum(axis=axis, keepdims=keepdims, dtype=accumulator)
            var = (sum_sq - np.abs(shift) ** 2 / count) / max(count - ddof, 0)
        return np.maximum(var, 0.0).astype(dtype)  # (rounding must not make it negative)

    @staticmethod
    def backward(ctx, grad):
        # d var / dx = 2 (x - mean) / (n - ddof)
        (x,) = ctx.saved_tensors
        axis, keepdims, ddof = ctx.attrs["axis"], ctx.attrs["keepdims"], ctx.attrs["ddof"]
        centred = x - Mean.apply(x, axis=axis, keepdims=True)
        # Far from zero the mean rounds to the dtype's spacing (8 at 1e8 in float32), an error
        # as large as the spread; the centred values' own mean is that error, known exactly.
        centred = centred - Mean.apply(centred, axis=axis, keepdims=True)
        dof = _reduced_count(x.shape, axis) - ddof
        scale = 2.0 / dof if dof > 0 else math.nan  # no degrees of freedom: nan, not an error
        return centred * _expand(grad * scale, x.shape, axis, keepdims)


class _Extremum(Function):
    """What Max and Min share. Ties split the gradient equally among the tied elements (like
    ``torch.amax`` and ``torch.amin``), so the gradient is the same whichever of them one calls
    "the" maximum."""

    category, runs_on_arrays = "reduction", True
    reduce = "max"  # the ndarray method that reduces

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        op_name = ctx.reduce
        if x.size == 0:  # no maximum to take: PyTorch's error classes for the two cases
            _check_not_empty(op_name, x, axis)
        out = getattr(x, op_name)(axis=axis, keepdims=True)
        if ctx.recording:
            is_extremum = (x == out).astype(x.dtype)
            ctx.save_for_backward(is_extremum / is_extremum.sum(axis=axis, keepdims=True))
        return out if keepdims else np.squeeze(out, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        (share,) = ctx.saved_tensors
        return _expand(grad, share.shape, ctx.attrs["axis"], ctx.attrs["keepdims"]) * share


class Max(_Extremum):
    """Maximum over ``axis``; tied maxima share the gradient equally."""

    kink = ("maxima", "a tie with the runner-up")

    @staticmethod
    def distance_to_kink(x, *, axis, keepdims):
        """For each group the max reduces: the largest value minus the second largest."""
        axes = tuple(range(x.ndim)) if axis is None else axis
        moved = np.moveaxis(x, axes, tuple(range(-len(axes), 0)))
        groups = moved.reshape(moved.shape[:moved.ndim - len(axes)] + (-1,))
        if groups.shape[-1] < 2:
            return np.full(groups.shape[:-1], np.inf)
        top_two = -np.partition(-groups, 1, axis=-1)[..., :2]
        return top_two[..., 0] - top_two[..., 1]


class Min(_Extremum):
    """Minimum over ``axis``; tied minima share the gradient equally."""

    reduce = "min"
    kink = ("minima", "a tie with the runner-up")

    @staticmethod
    def distance_to_kink(x, *, axis, keepdims):
        """For each group the min reduces: the second smallest value minus the smallest."""
        return Max.distance_to_kink(-np.asarray(x), axis=axis, keepdims=keepdims)


class LogSumExp(Function):
    """log(sum(exp(x))) over ``axis``, computed as m + log(sum(exp(x - m))) with m the
    maximum, so large inputs do not overflow. Its derivative is the softmax, exp(x - out)."""

    category, runs_on_arrays = "reduction", True

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        if x.dtype.kind not in "f":  # integers give the default float dtype, as in PyTorch
            x = x.astype(get_default_dtype())
        shift = np.max(x, axis=axis, keepdims=True, initial=-np.inf)  # (-inf if empty)
        # An infinite maximum would make x - m nan; the sum of exps is right without a shift.
        shift = np.where(np.isfinite(shift), shift, 0.0).astype(x.dtype)
        with np.errstate(divide="ignore"):  # log(0) = -inf: every input -inf, or none at all
            out = np.log(np.exp(x - shift).sum(axis=axis, keepdims=True)) + shift
        out = out if keepdims else np.squeeze(out, axis=axis)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        # d logsumexp / dx = exp(x) / sum(exp(x)) = exp(x - out)
        x, out = ctx.saved_tensors
        axis, keepdims = ctx.attrs["axis"], ctx.attrs["keepdims"]
        softmax = Exp.apply(x - _expand(out, x.shape, axis, keepdims))
        return _expand(grad, x.shape, axis, keepdims) * softmax


def _check_not_empty(op_name: str, x, axis) -> None:
    """A maximum (minimum, arg-) of no values does not exist: PyTorch's error classes."""
    if axis is None:
        bad_argument(op_name, "the input", "non-empty, or reduced along a dim of non-zero "
                     "size (give axis)", x, IndexError if op_name.startswith("arg")
                     else RuntimeError)
    for a in axis:
        if x.shape[a] == 0:
            bad_argument(op_name, f"dim {a} of the input", "of non-zero size to reduce "
                         "along it", x, IndexError)


# ----------------------------------------------------------------------------------------------
# What the Tensor methods and mg.* functions call: argument checks, and the arg-reductions,
# which are not differentiable (their int64 results never require grad).
# ----------------------------------------------------------------------------------------------

def arg_extremum(op_name: str, x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """``argmax``/``argmin`` of ``x``: the index of the first largest (smallest) value along
    ``axis`` (one int, or None: of the flattened tensor, as in PyTorch), as int64."""
    boolean(op_name, "keepdims", keepdims)
    if axis is not None and not isinstance(axis, numbers.Integral):
        bad_argument(op_name, "axis", "None or an int (one dim)", axis, ArgumentTypeError)
    axes = normalize_axis(axis, x.ndim, op_name)
    data = x.data
    if data.size == 0:
        _check_not_empty(op_name, data, axes)
    if axes == ():  # a 0-d tensor along its dim 0 or -1: its one index
        index = np.zeros((), dtype=np.int64)
    else:
        index = getattr(np, op_name)(data, axis=None if axes is None else axes[0],
                                     keepdims=keepdims).astype(np.int64, copy=False)
    return Tensor._make(np.asarray(index), False, None)


def logsumexp(x, axis=None, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) over ``axis`` (None: every element), computed stably, like
    ``torch.logsumexp``."""
    return as_input("logsumexp", x).logsumexp(axis, keepdims)


def argmax(x, axis=None, keepdims: bool = False) -> Tensor:
    """The index of the (first) largest value along ``axis``, like ``torch.argmax``; axis None
    gives the index into the flattened tensor. An int64 tensor that never requires grad."""
    return arg_extremum("argmax", as_input("argmax", x), axis, keepdims)


def argmin(x, axis=None, keepdims: bool = False) -> Tensor:
    """The index of the (first) smallest value along ``axis``, like ``torch.argmin``."""
    return arg_extremum("argmin", as_input("argmin", x), axis, keepdims)
