"""The check itself: autograd's gradients against finite differences, for any function whose
inputs are tensors that the check may perturb in place (see ``numeric.py``)."""
from __future__ import annotations

import math

import numpy as np

from .. import autograd
from ..autograd import enable_grad, graph_nodes
from ..core.checks import bad_argument, boolean, is_real, positive_real
from ..core.errors import ArgumentTypeError
from ..core.tensor import Tensor
from .compare import compare_directional, compare_elementwise
from .guards import kink_warnings, precision_warnings
from .numeric import OutputsChanged, Projection, as_outputs, project, signature
from .report import GradcheckArgumentError, GradcheckResult

__all__ = ["run_check", "first_derivatives", "float64_copies", "checked_indices", "as_inputs",
           "check_settings", "check_function", "require_finite_inputs"]

# Seeds of the check's random weights and directions: fixed, so a check is reproducible, and
# unusual, so the weights are not the very numbers a user drew with ``default_rng(0)`` (weights
# equal to the data can make a wrong gradient vanish from the comparison).
SEED = 0x5EED_C0DE


def checked_indices(inputs, caller: str) -> list[int]:
    """Positions of the inputs that require grad, or a ValueError when there are none."""
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        kinds = ", ".join(f"a Tensor of shape {t.shape} without requires_grad"
                          if isinstance(t, Tensor) else type(t).__name__ for t in inputs)
        raise ValueError(f"{caller}: none of the inputs requires grad, so there is nothing to "
                         f"check (got {kinds or 'no inputs'}); create the inputs to check with "
                         f"requires_grad=True")
    return checked


def as_inputs(inputs, owner: str = "gradcheck") -> tuple:
    """The inputs as a tuple: a single Tensor is one input, as in PyTorch. A tuple or list may
    hold other values too (an int, a flag), which ``fn`` receives unchanged, as in PyTorch; any
    other container or value is an ArgumentTypeError (TypeError and ValueError: PyTorch says
    ValueError, "no input requires grad", for the same mistake)."""
    if isinstance(inputs, Tensor):
        return (inputs,)
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs)
    bad_argument(owner, "inputs", "a Tensor or a tuple or list of Tensors", inputs,
                 ArgumentTypeError)


def check_function(owner: str, fn) -> None:
    """``fn`` must be callable: checked before any work, so the error names the argument."""
    if not callable(fn):
        bad_argument(owner, "fn", "a callable returning a Tensor or a tuple of Tensors", fn,
                     ArgumentTypeError)


def check_settings(owner: str, *, eps, atol, rtol, fast_mode, nondet_tol=0.0) -> dict:
    """The check's numeric settings in canonical form, or a clear error before any work.

    ``eps`` must be a positive finite step (0 divides by zero and makes every element look
    wrong). ``atol`` and ``rtol`` must be finite and >= 0: a negative tolerance fails every
    element; PyTorch raises RuntimeError for it, hence ``GradcheckArgumentError`` (RuntimeError
    and ValueError). ``nondet_tol`` must be >= 0 (inf switches the reentrancy check off).
    ``fast_mode`` is True or False."""
    eps = positive_real(owner, "eps", eps)
    atol, rtol = (tolerance(owner, name, value) for name, value in (("atol", atol),
                                                                     ("rtol", rtol)))
    nondet_tol = tolerance(owner, "nondet_tol", nondet_tol, allow_inf=True)
    fast_mode = boolean(owner, "fast_mode", fast_mode)
    return dict(eps=eps, atol=atol, rtol=rtol, fast_mode=fast_mode, nondet_tol=nondet_tol)


def tolerance(owner: str, name: str, value, allow_inf: bool = False) -> float:
    """A tolerance: a finite number >= 0 (wrong kind: ArgumentTypeError; out of range:
    GradcheckArgumentError, which PyTorch's RuntimeError and Python's ValueError both catch).
    ``allow_inf``: +inf is accepted too (a tolerance that switches its check off)."""
    if not is_real(value):
        bad_argument(owner, name, "a non-negative number", value, ArgumentTypeError)
    if allow_inf:
        if not value >= 0:  # (NaN too)
            bad_argument(owner, name, "a number >= 0 (inf: no check)", value,
                         GradcheckArgumentError)
        return float(value) if _finite(value) else math.inf  # (an int too large for a float)
    elif not (value >= 0 and _finite(value)):
        bad_argument(owner, name, "a finite number >= 0", value, GradcheckArgumentError)
    return float(value)


def _finite(value) -> bool:
    """math.isfinite, with an int too large for a float counted as not finite."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def require_finite_inputs(owner: str, inputs, checked, names=None) -> None:
    """A ValueError naming the first checked input that holds NaN or inf, and where: finite
    differences around a non-finite value are NaN, which would read as a wrong gradient."""
    for i in checked:
        found = _first_non_finite(inputs[i].data)
        if found:
            name = names[i] if names else f"input {i}"
            raise ValueError(f"{owner}: {name} contains {found}; finite differences need finite "
                             f"inputs")


def require_finite_outputs(owner: str, outputs, names, fn_name: str) -> None:
    """A ValueError when a floating output of ``fn`` is NaN or inf at the inputs themselves:
    the inputs lie outside fn's domain, and nothing can be compared there (two evaluations would
    also differ, NaN != NaN, which must not read as a random fn)."""
    for k, out in enumerate(outputs):
        found = _first_non_finite(out.data) if out.dtype.kind == "f" else None
        if found:
            raise ValueError(f"{owner}: {names[k]} of {fn_name} is not "
                             f"finite at the given inputs: it holds {found}; there is no "
                             f"gradient to compare there, move the inputs into fn's domain")


def _first_non_finite(data) -> str | None:
    """'NaN at index (1, 0) (2 of 6 elements are not finite)', or None when all are finite."""
    data = np.asarray(data)
    if data.dtype.kind != "f":
        return None
    bad = ~np.isfinite(data)
    if not bad.any():
        return None
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    value = data[first]
    what = "NaN" if np.isnan(value) else "inf" if value > 0 else "-inf"
    return f"{what} at index {first} ({int(bad.sum())} of {data.size} elements are not finite)"


def float64_copies(inputs) -> tuple:
    """Owned, contiguous float64 copies of the floating tensors (others pass through): the check
    perturbs them in place, and float64 keeps a finite difference's rounding error near 1e-10."""
    return tuple(Tensor(np.array(t.data, dtype=np.float64, order="C"),
                        requires_grad=t.requires_grad)
                 if isinstance(t, Tensor) and t.dtype.kind == "f" else t for t in inputs)


def run_check(fn, inputs, checked, *, eps, atol, rtol, fast_mode, nondet_tol=0.0, order=1,
              input_names=None, output_names=None, owner="gradcheck") -> GradcheckResult:
    """Compare d<v_k, fn(*inputs)[k]>/d inputs[i] from autograd with central differences, for
    every output k and every checked input i. ``inputs[i].data`` must be an owned float64 array.
    ``order=2`` checks the first derivatives of ``fn`` instead (see ``first_derivatives``).
    ``owner`` is the public function the user called, for error messages.

    Besides the comparison, as PyTorch's gradcheck: every backward must be linear in its output
    gradient (zero in, zero out; -2v in, -2 x the answer for v out), two backward passes with
    the same output gradient must agree within ``nondet_tol``, and the outputs must keep their
    shapes and dtypes under perturbation; a failure of these is one of ``result.problems``.
    Integer and boolean outputs are not differentiable and are not compared; a function with no
    floating-point output passes (there is nothing to differentiate).
    """
    require_finite_inputs(owner, inputs, checked, input_names)
    fn_name = getattr(fn, "__name__", repr(fn))
    if order == 2:
        fn = first_derivatives(fn, inputs, checked, owner)
        output_names = output_names or [f"gradient of input {i}" for i in checked]
    with enable_grad():  # a check inside no_grad still needs the graph
        outputs = as_outputs(fn(*inputs), fn, owner)
    output_names = output_names or [f"output {k}" for k in range(len(outputs))]
    require_finite_outputs(owner, outputs, output_names, fn_name)
    nodes = graph_nodes(outputs)
    warned = precision_warnings(nodes, outputs) + kink_warnings(nodes, eps)
    result = GradcheckResult("fast" if fast_mode else "full", eps, atol, rtol, order=order,
                             warnings=warned)
    rng = np.random.default_rng(SEED)
    weights = [rng.standard_normal(out.shape) if out.dtype.kind == "f" else None
               for out in outputs]
    if not _differentiable(weights):
        # PyTorch passes too: an integer or boolean output has no gradient, so there is nothing
        # to compare (a float output that does not require grad is compared: its numeric
        # gradient must then be zero).
        dtypes = [str(out.dtype) for out in outputs]
        result.notes.append(f"{fn_name} returned no floating-point output (dtypes {dtypes}): "
                            f"nothing is differentiable, so there is no gradient to check")
        return result
    input_names = input_names or [f"input {i}" for i in range(len(inputs))]
    projection = Projection(fn, inputs, weights, expected=signature(outputs),
                            output_names=output_names, input_names=input_names)
    tensors = [inputs[i] for i in checked]
    try:
        _require_deterministic(project(outputs, weights), projection.values(), fn, owner)
        analytic = [_analytic_gradients(out, w, tensors) for out, w in zip(outputs, weights)]
        names = (output_names, [input_names[i] for i in checked])
        result.problems += backward_problems(outputs, weights, tensors, analytic, names,
                                             atol=atol, rtol=rtol, nondet_tol=nondet_tol)
        per_input = []
        for j, i in enumerate(checked):
            labelled = [(output_names[k], analytic[k][j], k) for k in _differentiable(weights)]
            compare = _compare_along_direction if fast_mode else _compare_every_element
            per_input.append(compare(projection, i, input_names[i], labelled, eps=eps,
                                     atol=atol, rtol=rtol, rng=rng))
    except OutputsChanged as changed:
        result.problems.append(str(changed))
        return result
    # Report output by output, as the user reads fn's results.
    result.comparisons = [c for by_output in zip(*per_input) for c in by_output]
    return result


def backward_problems(outputs, weights, tensors, analytic, names, *, atol, rtol,
                      nondet_tol) -> list[str]:
    """PyTorch's checks on the backward itself, for each output that requires grad.

    Linear in the output gradient: a zero output gradient must give exactly zero gradients
    (a backward that ignores ``grad``, or adds a term that does not multiply it, fails), and
    -2v must give exactly -2 times the gradient for v, within the check's tolerance (one that
    uses ``abs(grad)`` or ``grad ** 2`` fails). Reentrant: a second backward with the same
    output gradient must agree with the first within ``nondet_tol``."""
    output_names, input_names = names
    problems = []
    for k, (out, w) in enumerate(zip(outputs, weights)):
        if w is None or not out.requires_grad:
            continue
        zero = _analytic_gradients(out, np.zeros_like(w), tensors)
        scaled = _analytic_gradients(out, -2.0 * w, tensors)
        again = _analytic_gradients(out, w, tensors)
        for j, name in enumerate(input_names):
            first = analytic[k][j]
            where = f"{output_names[k]} w.r.t. {name}"
            if not np.isfinite(first).all():
                continue  # the comparison reports a gradient that is not finite
            if np.any(zero[j] != 0):
                index, value = _largest(zero[j])
                problems.append(
                    f"{where}: backward not multiplied by grad_output: a zero output gradient "
                    f"gave a gradient that is not zero ({value:.6g} at index {index}); a "
                    f"backward must scale with its grad argument, yet this one ignores it or "
                    f"adds a term that does not multiply it")
            elif not np.all(np.abs(scaled[j] + 2.0 * first) <= atol + rtol * 2.0 * np.abs(first)):
                index, _ = _largest(scaled[j] + 2.0 * first)
                problems.append(
                    f"{where}: backward not linear in grad_output: the output gradient -2v "
                    f"gave {float(scaled[j][index]):.6g} at index {index}, not -2 x "
                    f"{float(first[index]):.6g} (the gradient for v); a backward must be linear "
                    f"in its grad argument (no abs(grad), grad ** 2, ...)")
            difference = _difference(first, again[j])
            if difference.size and difference.max() > nondet_tol:
                index, value = _largest(difference)
                problems.append(
                    f"{where}: backward is not reentrant: two backward passes with the same "
                    f"output gradient differ by up to {value:.3g} (at index {index}), more than "
                    f"nondet_tol={nondet_tol:g}; a backward must compute the same gradient every "
                    f"time (for an op that is nondeterministic on purpose, pass nondet_tol)")
    return problems


def _largest(values) -> tuple:
    """(index, value) of the element of largest magnitude."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 0:
        return (), float(values)
    flat = int(np.argmax(np.nan_to_num(np.abs(values), nan=np.inf)))
    index = tuple(int(i) for i in np.unravel_index(flat, values.shape))
    return index, float(values[index])


def _difference(first, second):
    """|first - second|, with 0 where both hold the same non-finite value."""
    with np.errstate(invalid="ignore"):
        difference = np.abs(first - second)
    same = (first == second) | (np.isnan(first) & np.isnan(second))
    return np.where(same, 0.0, np.nan_to_num(difference, nan=np.inf))


def _compare_every_element(projection, index, name, labelled, *, eps, **tolerance) -> list:
    numeric = projection.partials(index, eps)
    return [compare_elementwise(analytic, numeric[k], output=output, input=name, **tolerance)
            for output, analytic, k in labelled]


def _compare_along_direction(projection, index, name, labelled, *, eps, **tolerance) -> list:
    direction = tolerance["rng"].standard_normal(projection.inputs[index].shape)
    direction /= max(float(np.linalg.norm(direction)), 1e-300)
    numeric = projection.along(index, direction, eps)
    return [compare_directional(analytic, lambda w, k=k: projection.along(index, w, eps)[k],
                                direction, numeric[k], output=output, input=name, **tolerance)
            for output, analytic, k in labelled]


def first_derivatives(fn, inputs, checked, owner="gradgradcheck"):
    """The function ``xs -> d<w, fn(xs)>/d xs[checked]`` for fixed random weights ``w``, built
    with ``create_graph=True`` so that checking it checks second derivatives."""
    rng = np.random.default_rng(SEED + 1)
    with enable_grad():
        outputs = as_outputs(fn(*inputs), fn, owner)
    require_finite_outputs(owner, outputs, [f"output {k}" for k in range(len(outputs))],
                           getattr(fn, "__name__", repr(fn)))
    weights = [rng.standard_normal(out.shape) if out.dtype.kind == "f" else None
               for out in outputs]

    def first_derivatives(*xs):
        with enable_grad():  # also when the check evaluates it under no_grad
            outputs = as_outputs(fn(*xs), fn)
            total = sum((out * Tensor(w)).sum() for out, w in zip(outputs, weights)
                        if out.requires_grad)
            if not isinstance(total, Tensor):
                # No output requires grad: the first derivatives are zero (and so are theirs)
                grads = [None] * len(checked)
            else:
                # (an input fn does not use has a zero gradient, which the check compares too)
                grads = autograd.grad(total, [xs[i] for i in checked], create_graph=True,
                                      allow_unused=True)
        return tuple(xs[i] * 0.0 if g is None else g for i, g in zip(checked, grads))

    first_derivatives.__name__ = f"gradient of {getattr(fn, '__name__', 'fn')}"
    return first_derivatives


def _differentiable(weights) -> list[int]:
    return [k for k, w in enumerate(weights) if w is not None]


def _analytic_gradients(out, weights, tensors) -> list:
    """d<weights, out>/d tensor for each tensor, as float64 arrays (zeros where no path)."""
    if weights is None:
        return [None] * len(tensors)
    if out.requires_grad:
        # (several outputs, and the first derivatives gradgradcheck checks, share one graph)
        grads = autograd.grad(out, tensors, Tensor(weights), retain_graph=True,
                              allow_unused=True)
    else:  # the graph was cut (.data, NumPy): autograd's answer is zero, let the numbers judge
        grads = [None] * len(tensors)
    return [np.zeros(t.shape) if g is None else np.asarray(g.data, dtype=np.float64)
            for g, t in zip(grads, tensors)]


def _require_deterministic(first, second, fn, owner) -> None:
    """Finite differences subtract two evaluations: if fn is random they measure noise. (The
    outputs are finite here; NaN where the first evaluation was finite is randomness too.)"""
    if not np.allclose(first, second, rtol=1e-10, atol=1e-12):
        raise ValueError(f"{owner}: {getattr(fn, '__name__', fn)} is not deterministic: two "
                         f"evaluations at the same inputs differ ({first} vs {second}), so "
                         f"finite differences would measure noise. Random ops such as Dropout "
                         f"need eval mode (model.eval()) or p=0 for the check.")
