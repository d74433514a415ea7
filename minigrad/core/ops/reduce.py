"""Reductions. ``axis`` is None or a sorted tuple of non-negative axes (see normalize_axis).

Each backward puts the reduced axes back and broadcasts the gradient to the input's shape."""
from __future__ import annotations

import math

import numpy as np

from ..function import Function
from ..tensor import Tensor


def _reduced_count(shape, axis) -> int:
    return math.prod(shape) if axis is None else math.prod(shape[a] for a in axis)


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
        return x.mean(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        axis = ctx.attrs["axis"]
        count = _reduced_count(ctx.input_shape, axis)
        return _expand(grad / count, ctx.input_shape, axis, ctx.attrs["keepdims"])


class Var(Function):
    """Variance, two-pass (mean first, then squared deviations) as in ``np.var``, so data far
    from zero (1e8 + noise) keeps its precision."""

    category, runs_on_arrays = "reduction", True

    @staticmethod
    def forward(ctx, x, axis, keepdims, ddof):
        ctx.save_for_backward(x)
        return x.var(axis=axis, keepdims=keepdims, ddof=ddof)

    @staticmethod
    def backward(ctx, grad):
        # d var / dx = 2 (x - mean) / (n - ddof)
        (x,) = ctx.saved_tensors
        axis, keepdims, ddof = ctx.attrs["axis"], ctx.attrs["keepdims"], ctx.attrs["ddof"]
        centered = x - x.mean(axis=axis, keepdims=True)
        dof = _reduced_count(x.shape, axis) - ddof
        scale = 2.0 / dof if dof > 0 else math.nan  # as NumPy's forward: nan, not an exception
        return centered * _expand(grad * scale, x.shape, axis, keepdims)


class Max(Function):
    """Maximum. Ties split the gradient equally among the tied elements (like ``torch.amax``),
    so the gradient is the same whichever of them one calls "the" maximum."""

    category, runs_on_arrays = "reduction", True
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
        return _expand(grad, share.shape, ctx.attrs["axis"], ctx.attrs["keepdims"]) * share
