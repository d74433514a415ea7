"""Central finite differences of the scalars a check compares.

Each output ``k`` of ``fn`` is reduced to a scalar ``F_k(x) = <v_k, fn(x)[k]>`` with fixed random
weights ``v_k``. Its gradient is one backward pass for autograd, and two forward passes per
input element (or per direction, in fast mode) for finite differences; a random ``v_k`` makes a
wrong Jacobian entry show up in ``F_k``'s gradient unless the weights cancel it exactly, which
has probability zero.

Inputs are perturbed in place (their ``.data`` arrays are owned, contiguous float64 copies), so
``fn`` may read them however it likes -- as arguments or, for a module, as its parameters.
"""
from __future__ import annotations

import numpy as np

from ..autograd import no_grad
from ..core.tensor import Tensor

__all__ = ["as_outputs", "Projection", "OutputsChanged", "signature"]


class OutputsChanged(Exception):
    """``fn``'s outputs changed number, shape or dtype between evaluations: finite differences
    subtract outputs, which must match. Caught by the check and reported as a failure."""


def signature(outputs) -> list:
    """What must not change between evaluations: each output's shape and dtype."""
    return [(tuple(out.shape), out.dtype) for out in outputs]


def as_outputs(value, fn, owner: str = "gradcheck") -> tuple:
    """``fn``'s result as a tuple of Tensors, or a TypeError that says what it returned."""
    outputs = value if isinstance(value, (tuple, list)) else (value,)
    for out in outputs:
        if not isinstance(out, Tensor):
            raise TypeError(f"{owner}: {getattr(fn, '__name__', fn)} must return a Tensor or a "
                            f"tuple of Tensors, got {type(out).__name__}"
                            + (" inside a tuple" if outputs is value else ""))
    return tuple(outputs)


class Projection:
    """``F(x) = [<v_k, fn(*inputs)[k]> for every output k]`` and its finite differences."""

    def __init__(self, fn, inputs, weights, expected=None, output_names=None, input_names=None):
        self.fn, self.inputs, self.weights = fn, inputs, weights
        # The outputs' shapes and dtypes at the inputs themselves (``signature``): every
        # evaluation must give the same, or the differences compare unlike things.
        self.expected = expected
        self.output_names = output_names
        self.input_names = input_names
        self.perturbing = None  # (input index, what the step is), for the message

    def values(self) -> np.ndarray:
        with no_grad():
            outputs = as_outputs(self.fn(*self.inputs), self.fn)
        if self.expected is not None:
            self._require_same_signature(outputs)
        return project(outputs, self.weights)

    def _require_same_signature(self, outputs) -> None:
        got = signature(outputs)
        if got == self.expected:
            return
        fn_name = getattr(self.fn, "__name__", repr(self.fn))
        if self.perturbing is None:
            when = "when evaluated again at the same inputs"
        else:
            index, step = self.perturbing
            name = self.input_names[index] if self.input_names else f"input {index}"
            when = f"when {name} is perturbed {step}"
        if len(got) != len(self.expected):
            change = f"returned {len(got)} outputs instead of {len(self.expected)}"
        else:
            k = next(k for k, (a, b) in enumerate(zip(got, self.expected)) if a != b)
            name = self.output_names[k] if self.output_names else f"output {k}"
            (shape, dtype), (shape0, dtype0) = got[k], self.expected[k]
            change = (f"{name} changed shape from {shape0} to {shape}" if shape != shape0 else
                      f"{name} changed dtype from {dtype0} to {dtype}")
        raise OutputsChanged(
            f"{fn_name} {change} {when}: finite differences subtract outputs at nearby inputs, "
            f"so every output must keep its shape and dtype (a shape that depends on the "
            f"values, such as a boolean mask's, or a dtype chosen by value, cannot be checked)")

    def partials(self, index: int, eps: float) -> np.ndarray:
        """dF_k/dx for every element of input ``index``: shape ``(outputs, *input shape)``."""
        data = self.inputs[index].data
        result = np.empty((len(self.weights),) + data.shape)
        for element in np.ndindex(data.shape):  # indexing writes into any memory layout
            self.perturbing = (index, f"at index {element} by eps={eps:g}")
            original = data[element]
            try:
                data[element] = original + eps
                plus = self.values()
                data[element] = original - eps
                minus = self.values()
            finally:
                data[element] = original
            result[(slice(None),) + element] = (plus - minus) / (2 * eps)
        self.perturbing = None
        return result

    def along(self, index: int, direction: np.ndarray, eps: float) -> np.ndarray:
        """<dF_k/dx, direction> for input ``index``, one value per output. The step has length
        ``eps`` whatever the direction's length, so tiny directions lose no precision."""
        data = self.inputs[index].data
        step = eps / max(float(np.linalg.norm(direction)), 1e-300)
        original = data.copy()
        self.perturbing = (index, f"along a direction by eps={eps:g}")
        try:
            np.copyto(data, original + step * direction)
            plus = self.values()
            np.copyto(data, original - step * direction)
            minus = self.values()
        finally:
            np.copyto(data, original)
            self.perturbing = None
        return (plus - minus) / (2 * step)


def project(outputs, weights) -> np.ndarray:
    """``[<v_k, output_k>]``; outputs without weights (integer outputs) count as 0."""
    return np.array([0.0 if w is None else float(np.vdot(w, out.data))
                     for out, w in zip(outputs, weights)])
