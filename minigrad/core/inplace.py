"""In-place changes of a tensor (``add_``, ``+=``, ``t[i] = v``, ...): how they keep backward
honest.

Outside a graph the new values are written straight into the tensor's memory. Inside one the
new value is computed with ordinary ops from a copy of the old value, written into the memory,
and that computation becomes the tensor's history (its ``grad_fn``), as in PyTorch. Either way
the version counter moves on, so a node that saved the old value refuses to backpropagate
with the new one.
"""
from __future__ import annotations

import numpy as np

from . import engine, ops
from .errors import DTypeError, ShapeError
from .tensor import Tensor, as_array


def update(target: Tensor, name: str, recorded, direct, *operands) -> Tensor:
    """Change ``target`` in place: ``direct(array)`` writes into the memory outside a graph;
    ``recorded(old)`` computes the new value from the old one when a graph is being recorded
    (``target`` or one of ``operands`` requires grad). A failed change leaves it as it was."""
    recording = engine.is_grad_enabled() and (target.requires_grad or any(
        isinstance(t, Tensor) and t.requires_grad for t in operands))
    if recording and target.requires_grad and target.grad_fn is None:
        raise RuntimeError(f"{name}: a leaf tensor that requires grad cannot be changed in place "
                           f"while grad mode is on (backward needs the value it had); change it "
                           f"under mg.no_grad(), as optimizers do, or work on a copy (x * 1)")
    try:
        if recording:
            _record(target, name, recorded)
        elif not target.data.flags.writeable:
            raise RuntimeError(f"{name}: this tensor's memory is read-only (a broadcast view); "
                               f"change a copy instead")
        else:
            direct(target.data)
    except RuntimeError:
        raise
    except IndexError as error:  # NumPy's words, given the op and the tensor
        raise IndexError(f"{name}: {error} (a tensor of shape {target.shape})") from None
    except (TypeError, ValueError) as error:
        if "broadcast" in str(error):
            raise ShapeError(f"{name}: the value does not fit the tensor's shape "
                             f"{target.shape} ({error})") from None
        raise DTypeError(f"{name}: cannot write the value into a tensor of dtype "
                         f"{target.dtype} ({error})") from None
    target._versions()[0] += 1
    return target


def arithmetic(target: Tensor, name: str, operation, ufunc, other) -> Tensor:
    """``target = operation(target, other)`` in place; ``ufunc`` is the same operation in
    NumPy (np.add for operator.add, ...), which writes into the memory."""
    return update(target, name, lambda old: operation(old, other),
                  lambda a: ufunc(a, as_array(other), out=a, casting="same_kind"), other)


def replace(target: Tensor, name: str, value) -> Tensor:
    """Every element of ``target`` becomes ``value`` (broadcast, cast to its dtype)."""
    return update(target, name, lambda old: ops.replaced(old, value),
                  lambda a: np.copyto(a, as_array(value), casting="unsafe"), value)


def _record(target: Tensor, name: str, recorded) -> None:
    if target.data.base is not None:
        raise RuntimeError(f"{name}: this tensor views another tensor's memory (a reshape, "
                           f"transpose or slice); minigrad does not record in-place changes of "
                           f"views inside a graph. Use the out-of-place op instead")
    old = Tensor._make(target.data.copy(), target.requires_grad, target.grad_fn)
    new = recorded(old)
    if new.shape != target.shape:
        raise ShapeError(f"{name}: the result has shape {new.shape}, which does not fit the "
                         f"tensor's shape {target.shape}")
    np.copyto(target.data, new.data, casting="same_kind")
    if new.grad_fn is not None:
        target.grad_fn, target.requires_grad = new.grad_fn, True
        target._retains_grad = False
