"""Finite-difference gradient checking.

``gradcheck(fn, inputs)`` compares the gradient autograd computes with central differences
``(f(x + eps) - f(x - eps)) / (2 eps)``, element by element, in float64.
"""
from __future__ import annotations

import numpy as np

from . import autograd
from .autograd import enable_grad, no_grad
from .tensor import Tensor

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(RuntimeError):
    """Raised by ``gradcheck`` when analytic and numeric gradients disagree."""


def _as_outputs(value, fn) -> tuple:
    outputs = value if isinstance(value, (tuple, list)) else (value,)
    for out in outputs:
        if not isinstance(out, Tensor):
            raise TypeError(f"gradcheck: {getattr(fn, '__name__', fn)} must return a Tensor or "
                            f"a tuple of Tensors, got {type(out).__name__}")
    return tuple(outputs)


def _float64_copies(inputs):
    return tuple(Tensor(t.data.astype(np.float64), requires_grad=t.requires_grad)
                 if isinstance(t, Tensor) and t.dtype.kind == "f" else t for t in inputs)


def numerical_jacobian_row(fn, inputs, index, out_index, weights, eps):
    """d <weights, fn(inputs)[out_index]> / d inputs[index] by central differences."""
    x = inputs[index].data
    grad = np.zeros_like(x)
    flat = x.reshape(-1)  # a view: writes perturb the input in place
    with no_grad():
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + eps
            plus = np.sum(_as_outputs(fn(*inputs), fn)[out_index].data * weights)
            flat[i] = original - eps
            minus = np.sum(_as_outputs(fn(*inputs), fn)[out_index].data * weights)
            flat[i] = original
            grad.reshape(-1)[i] = (plus - minus) / (2 * eps)
    return grad


def gradcheck(fn, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, fast_mode: bool = False) -> bool:
    """Check autograd's gradients of ``fn(*inputs)`` against central finite differences.

    Every input that requires grad is checked against every output (each output is reduced with
    random weights, so one backward per output checks all of its elements). An element fails
    when ``|analytic - numeric| > atol + rtol * |numeric|`` (PyTorch's rule). Returns True, or
    False / raises ``GradcheckError`` naming the output, the input and the worst element.
    """
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: none of the inputs requires grad, so there is nothing to "
                         "check (create them with requires_grad=True)")
    inputs = _float64_copies(inputs)
    rng = np.random.default_rng(0)
    outputs = _as_outputs(fn(*inputs), fn)
    for out_index, out in enumerate(outputs):
        if not out.requires_grad:
            continue
        weights = rng.standard_normal(out.shape)
        grads = autograd.grad(out, [inputs[i] for i in checked], Tensor(weights))
        for index, analytic in zip(checked, grads):
            analytic = np.zeros(inputs[index].shape) if analytic is None else analytic.data
            numeric = numerical_jacobian_row(fn, inputs, index, out_index, weights, eps)
            error = np.abs(analytic - numeric)
            bad = error > atol + rtol * np.abs(numeric)
            if bad.any():
                worst = np.unravel_index(np.argmax(error - rtol * np.abs(numeric)), error.shape)
                message = (f"gradcheck: gradient of output {out_index} with respect to input "
                           f"{index} (shape {inputs[index].shape}) is wrong at {bad.sum()} of "
                           f"{bad.size} elements; worst at index {tuple(map(int, worst))}: "
                           f"analytic {analytic[worst]:.6g}, numeric {numeric[worst]:.6g}")
                if raise_exception:
                    raise GradcheckError(message)
                return False
    return True


def gradgradcheck(fn, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  raise_exception: bool = True, fast_mode: bool = False) -> bool:
    """Check second derivatives: gradcheck of the function ``inputs -> d<w, fn(inputs)>/dinputs``
    whose value is computed with ``backward(create_graph=True)``."""
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradgradcheck: none of the inputs requires grad")
    rng = np.random.default_rng(1)
    weights = [rng.standard_normal(out.shape)
               for out in _as_outputs(fn(*_float64_copies(inputs)), fn)]

    def first_derivatives(*xs):
        with enable_grad():  # also when gradcheck evaluates this under no_grad
            return _weighted_gradients(xs)

    def _weighted_gradients(xs):
        outs = _as_outputs(fn(*xs), fn)
        total = sum((out * Tensor(w)).sum() for out, w in zip(outs, weights) if out.requires_grad)
        grads = autograd.grad(total, [xs[i] for i in checked], create_graph=True)
        return tuple(xs[i] * 0 if g is None else g for i, g in zip(checked, grads))

    return gradcheck(first_derivatives, inputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, fast_mode=fast_mode)
