"""Matrix products."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..function import Function
from ..tensor import Tensor
from .args import operand
from .shape import broadcast_to


class MatMul(Function):
    """Matrix product of operands with at least 2 dims and equal batch dims (``matmul`` below
    handles 1-D operands and batch broadcasting with explicit reshape/broadcast nodes)."""

    category, runs_on_arrays = "linalg", True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        # d(a @ b) = grad @ b^T for a, a^T @ grad for b
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return (grad @ _swap_last(b) if need_a else None,
                _swap_last(a) @ grad if need_b else None)


def _swap_last(x):
    axes = list(range(x.ndim))
    axes[-2:] = axes[-1], axes[-2]
    return x.transpose(tuple(axes))


def matmul(a, b) -> Tensor:
    a, b = operand(a, b, "matmul"), operand(b, a, "matmul")
    if np.ndim(a) == 0 or np.ndim(b) == 0:  # (operand leaves Python numbers as they are)
        raise ShapeError(f"matmul: both operands need at least 1 dim, got shapes "
                         f"{np.shape(a)} and {np.shape(b)} (use * to multiply by a scalar)")
    inner_b = b.shape[-2 if b.ndim > 1 else 0]
    if a.shape[-1] != inner_b:
        raise ShapeError(f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied: "
                         f"{a.shape[-1]} (last dim of a) != {inner_b} "
                         f"({'second-to-' if b.ndim > 1 else ''}last dim of b)")
    a2 = a.reshape(1, a.shape[0]) if a.ndim == 1 else a
    b2 = b.reshape(b.shape[0], 1) if b.ndim == 1 else b
    batch = a2.shape[:-2]
    if a2.shape[:-2] != b2.shape[:-2]:
        try:
            batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        except ValueError:
            raise ShapeError(f"matmul: the batch dims of shapes {a.shape} and {b.shape} cannot "
                             f"be broadcast together (all but the last two dims)") from None
        a2, b2 = (broadcast_to(t, batch + t.shape[-2:]) if t.requires_grad else t
                  for t in (a2, b2))
    out = MatMul.apply(a2, b2)
    if a.ndim == 1 or b.ndim == 1:
        shape = out.shape[:-2] + (() if a.ndim == 1 else out.shape[-2:-1]) + (
            () if b.ndim == 1 else out.shape[-1:])
        out = out.reshape(shape)
    return out
