"""The public checks for functions of tensors: ``gradcheck``, ``gradgradcheck`` (PyTorch's
signatures and defaults) and ``check_gradients`` (the same, returning the full result)."""
from __future__ import annotations

import sys
import warnings

from ..core.checks import boolean, integer, one_of
from .core import (as_inputs, check_function, check_settings, checked_indices, float64_copies,
                   run_check)
from .locate import check_ops
from .report import GradcheckError, GradcheckResult, GradcheckWarning
from .state import preserved_modules

__all__ = ["gradcheck", "gradgradcheck", "check_gradients", "finish"]


def check_gradients(fn, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                    nondet_tol: float = 0.0, fast_mode: bool = False, order: int = 1,
                    locate: bool = False, raise_exception: bool = False) -> GradcheckResult:
    """Check ``fn``'s gradients (``order=1``) or second derivatives (``order=2``) by central
    finite differences and return a ``GradcheckResult`` (true when the check passed).

    ``fn(*inputs)`` returns a Tensor or a tuple of Tensors. Every input that requires grad is
    checked against every output. Floating inputs are checked in float64 copies. An element fails
    when ``|analytic - numeric| > atol + rtol * |numeric|`` (PyTorch's rule). ``fast_mode``
    compares one random directional derivative per input instead of every element. ``locate``
    checks every op of the graph on its own when the check fails, to name the guilty one.
    Warnings (float32 arithmetic, inputs on a kink) are issued as ``GradcheckWarning``;
    ``raise_exception=True`` raises ``GradcheckError`` on failure instead of returning.

    As PyTorch's gradcheck, it also fails (``result.problems``) when a backward is not linear
    in its output gradient (a zero output gradient must give zero, -2v must give -2 times the
    answer for v), when two backward passes with the same output gradient differ by more than
    ``nondet_tol`` (reentrancy), or when an output changes shape or dtype under perturbation.
    A function with no floating-point output passes. Modules that ``fn`` reaches (a closure, a
    global it names, a bound method's self, the inputs) are left as they were: their
    parameters and buffers -- a training-mode BatchNorm's running statistics and
    ``num_batches_tracked`` -- are saved before the first call and restored afterwards.

    The arguments are checked before any work: ``fn`` callable, ``inputs`` a Tensor or a tuple
    or list (other values in it are passed to ``fn`` unchanged), ``eps`` a positive finite
    number, ``atol`` and ``rtol`` finite and >= 0, ``nondet_tol`` >= 0 (inf: no reentrancy
    check), the flags True or False. A NaN or inf in an
    input that requires grad, or in ``fn``'s output at the inputs, is a ValueError that says
    where.
    """
    return _check("check_gradients", fn, inputs, eps=eps, atol=atol, rtol=rtol,
                  nondet_tol=nondet_tol, fast_mode=fast_mode, order=order, locate=locate,
                  raise_exception=raise_exception)


def _check(owner, fn, inputs, *, eps, atol, rtol, nondet_tol, fast_mode, order, locate,
           raise_exception) -> GradcheckResult:
    """Every argument checked first (errors name ``owner``, the function the user called),
    then the check itself."""
    check_function(owner, fn)
    inputs = as_inputs(inputs, owner)
    settings = check_settings(owner, eps=eps, atol=atol, rtol=rtol, fast_mode=fast_mode,
                              nondet_tol=nondet_tol)
    order = one_of(owner, "order", integer(owner, "order", order), (1, 2))
    locate = boolean(owner, "locate", locate)
    raise_exception = boolean(owner, "raise_exception", raise_exception)
    checked = checked_indices(inputs, owner)
    copies = float64_copies(inputs)
    with preserved_modules(fn, inputs) as modules:
        result = run_check(fn, copies, checked, order=order, owner=owner, **settings)
        if locate and not result.ok:
            result.op_checks = check_ops(fn, copies, order=order, **settings)
    lowered = [i for i in checked if inputs[i].dtype.itemsize < 8]
    if lowered:
        result.notes.append(f"input(s) {lowered} are {inputs[lowered[0]].dtype}: checked in "
                            f"float64 copies, where finite differences are accurate")
    stateful = [m for m in modules if any(True for _ in m.named_buffers(recurse=False))]
    if stateful:
        names = ", ".join(sorted({type(m).__name__ for m in stateful}))
        result.notes.append(f"the buffers of the modules fn uses ({names}) restored afterwards")
    if not locate and any("backward" in problem for problem in result.problems):
        result.notes.append("locate=True checks every op on its own and names the one whose "
                            "backward fails")
    return finish(result, raise_exception)


def finish(result: GradcheckResult, raise_exception: bool) -> GradcheckResult:
    """Issue the result's warnings; raise ``GradcheckError`` for a failure if asked to."""
    for message in result.warnings:
        warnings.warn(GradcheckWarning(message), stacklevel=_caller_level())
    if raise_exception and not result.ok:
        raise GradcheckError(result)
    return result


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside this package."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith(__package__):
        frame, level = frame.f_back, level + 1
    return level


def gradcheck(fn, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, nondet_tol: float = 0.0, fast_mode: bool = False,
              locate: bool = False) -> bool:
    """True when autograd's gradients of ``fn(*inputs)`` match central finite differences.

    On a mismatch it raises ``GradcheckError`` (or returns False with
    ``raise_exception=False``); the error's message is the report -- which output and input, the
    worst elements, a guess at the mistake -- and ``error.result`` the ``GradcheckResult``.
    See ``check_gradients`` for the arguments.
    """
    return _check("gradcheck", fn, inputs, eps=eps, atol=atol, rtol=rtol,
                  nondet_tol=nondet_tol, fast_mode=fast_mode, order=1, locate=locate,
                  raise_exception=raise_exception).ok


def gradgradcheck(fn, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  raise_exception: bool = True, nondet_tol: float = 0.0, fast_mode: bool = False,
                  locate: bool = False) -> bool:
    """True when second derivatives match: the gradients ``d<w, fn(inputs)>/d inputs`` (for fixed
    random ``w``, computed with ``create_graph=True``) are themselves checked by finite
    differences. Catches a backward that is right but not differentiable, or whose own backward
    is wrong."""
    return _check("gradgradcheck", fn, inputs, eps=eps, atol=atol, rtol=rtol,
                  nondet_tol=nondet_tol, fast_mode=fast_mode, order=2, locate=locate,
                  raise_exception=raise_exception).ok
