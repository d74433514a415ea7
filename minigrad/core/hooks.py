"""Hooks on gradients: ``register_hook``'s functions, and ``retain_grad`` built from one.

A hook on a leaf sees the leaf's total gradient before it is added to ``.grad``; a hook on an
op's output sees that output's total gradient (summed over every path) before the op's
backward runs. A hook may return a replacement.
"""
from __future__ import annotations

import itertools
import weakref

import numpy as np

from .tensor import Tensor

__all__ = ["HookHandle", "retain_grad_of", "run_hooks"]


class HookHandle:
    """What ``register_hook`` returns: ``handle.remove()`` unregisters the hook."""

    _ids = itertools.count()

    def __init__(self, hooks: dict, hook):
        if not callable(hook):
            raise TypeError(f"register_hook: expected a function of the gradient, got "
                            f"{type(hook).__name__}")
        self.id = next(self._ids)
        self.hooks = hooks
        hooks[self.id] = hook

    @classmethod
    def add(cls, node, hook) -> "HookHandle":
        if node.hooks is None:
            node.hooks = {}
        return cls(node.hooks, hook)

    def remove(self) -> None:
        self.hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


def retain_grad_of(tensor: Tensor) -> None:
    """After its hooks, the gradient of ``tensor``'s node is also stored in ``tensor.grad``."""
    reference = weakref.ref(tensor)

    def retain(grad):
        kept = reference()
        if kept is not None:
            kept._grad = grad if kept._grad is None else kept._grad + grad
    retain.retains_grad = True  # run after the user's hooks, on the gradient they leave
    HookHandle.add(tensor.grad_fn, retain)


def run_hooks(hooks: dict, grad, keep_graph: bool):
    """``grad`` after every hook (a hook returning None keeps it); retain_grad's last."""
    ordered = sorted(hooks.values(), key=lambda h: getattr(h, "retains_grad", False))
    for hook in ordered:
        as_tensor = grad if isinstance(grad, Tensor) else Tensor._make(grad, False, None)
        if getattr(hook, "retains_grad", False):
            hook(as_tensor if keep_graph else Tensor._make(np.array(as_tensor.data), False, None))
            continue
        replaced = hook(as_tensor)
        if replaced is not None:
            if not isinstance(replaced, Tensor):
                replaced = Tensor(replaced, dtype=as_tensor.dtype)
            if replaced.shape != as_tensor.shape:
                raise RuntimeError(f"a hook returned a gradient of shape {replaced.shape} for a "
                                   f"tensor of shape {as_tensor.shape}")
            grad = replaced if keep_graph else replaced.data
    return grad
