"""``minigrad exercise``: write BatchNorm's backward pass by hand, and have it graded.

``minigrad exercise batchnorm [-o FILE]`` writes a stub (the forward given, the backward to
write with NumPy); ``minigrad exercise check FILE`` runs the learner's file in this process and
grades ``batchnorm_backward`` three ways:

1. against central finite differences of the given forward (a gradcheck);
2. against the closed form (``minigrad.viz.batchnorm_paths`` for dx; sums over the batch for
   dgamma and dbeta);
3. when dx is wrong, a diagnosis: dx is projected onto BatchNorm's three routes (direct,
   through the mean, through the variance) by least squares. If a combination
   ``a*direct + b*mean + c*variance`` reproduces it, each coefficient names what happened to
   its route (1: right, 0: missing, -1: wrong sign, N/(N-1): the unbiased variance, ...).
   Otherwise dx is compared with a catalogue of common mistakes (eps outside the square root,
   the variance used as the standard deviation, gamma forgotten), each computed the way a
   learner writes it.

The exit status is 0 only when dx, dgamma and dbeta are all right; 1 otherwise (including a
file that does not run); 2 for a bad command line (a stub that would overwrite a file).
"""
from __future__ import annotations

import importlib.util
import sys
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..viz.batchnorm_paths import batchnorm_paths
from .arguments import UsageError, make_parent_dir, writable_file

__all__ = ["add_arguments", "run", "write_stub", "check_file", "Grade", "Verdict",
           "diagnose_dx", "STUB_PATH"]

STUB_PATH = Path(__file__).with_name("exercise_template.py")
DEFAULT_STUB = "batchnorm_exercise.py"

# The grading problem. eps is larger than BatchNorm's default so that a misplaced eps (outside
# the square root) changes dx by about a percent, far above the tolerance; the features have
# different scales and gamma different values so that per-feature mistakes show.
N, D = 6, 3
EPS = 1e-2
CLOSED_FORM_RTOL = 1e-6     # float64 round-off of a right formula is ~1e-15
FINITE_DIFFERENCE_RTOL = 1e-5
FINITE_DIFFERENCE_STEP = 1e-6
MATCH_RTOL = 1e-6           # how closely dx must follow a route combination or a mistake


def add_arguments(parser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    stub = actions.add_parser("batchnorm", help="write the BatchNorm backward exercise (a stub)",
                              description="write the BatchNorm backward exercise (a stub)")
    stub.add_argument("-o", "--output", metavar="FILE", type=writable_file,
                      default=Path(DEFAULT_STUB),
                      help=f"where to write it (default: {DEFAULT_STUB}); never overwritten")
    check = actions.add_parser("check", help="grade a solution of the exercise",
                               description="grade a solution of the exercise")
    check.add_argument("file", metavar="FILE", help="the exercise file you edited")
    for sub in (stub, check):  # a usage error shows this action's usage, not the command's
        sub.set_defaults(command_parser=sub)


def run(args) -> int:
    if args.action == "batchnorm":
        path = write_stub(args.output)
        print(f"wrote {path}: write batchnorm_backward in it, then run\n"
              f"    minigrad exercise check {path}")
        return 0
    path = Path(args.file)
    if not path.is_file():
        raise UsageError("FILE", f"must be an exercise file, got {args.file!r} "
                                 f"({'a directory' if path.is_dir() else 'no such file'})")
    grade = check_file(path)
    print(grade.report())
    return 0 if grade.passed else 1


def write_stub(path) -> Path:
    """Write the exercise stub at ``path``; an existing file is never overwritten (UsageError,
    exit status 2), since it may hold the learner's work."""
    path = Path(path)
    if path.exists():
        raise UsageError("-o/--output", f"{str(path)!r} already exists; not overwriting it "
                                        f"(it may be your solution): choose another -o FILE")
    make_parent_dir(path, "-o/--output")
    with open(path, "x") as stream:  # "x": fails rather than overwrite, even in a race
        stream.write(STUB_PATH.read_text())
    return path


# ----------------------------------------------------------------------------------------------
# The reference: forward, closed forms, finite differences
# ----------------------------------------------------------------------------------------------

def problem(seed: int = 0) -> dict:
    """The inputs the solution is graded on."""
    rng = np.random.default_rng(seed)
    scale = np.array([0.3, 0.5, 0.2])
    return {"x": rng.normal(size=(N, D)) * scale + np.array([1.0, -2.0, 0.5]),
            "gamma": np.array([1.5, 0.7, 2.5]), "beta": np.array([0.1, -0.3, 0.2]),
            "dout": rng.normal(size=(N, D)), "eps": EPS}


def reference_forward(x, gamma, beta, eps):
    x_hat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps)
    return gamma * x_hat + beta, x_hat


def finite_differences(p: dict) -> dict:
    """dL/dx, dL/dgamma, dL/dbeta of L = sum(out * dout) by central differences."""
    def loss(x, gamma, beta):
        return float(np.sum(reference_forward(x, gamma, beta, p["eps"])[0] * p["dout"]))

    inputs = {"dx": p["x"], "dgamma": p["gamma"], "dbeta": p["beta"]}
    grads = {}
    for name, value in inputs.items():
        grad = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            shifted = {k: v.copy() for k, v in inputs.items()}
            shifted[name][index] += FINITE_DIFFERENCE_STEP
            up = loss(shifted["dx"], shifted["dgamma"], shifted["dbeta"])
            shifted[name][index] -= 2 * FINITE_DIFFERENCE_STEP
            down = loss(shifted["dx"], shifted["dgamma"], shifted["dbeta"])
            grad[index] = (up - down) / (2 * FINITE_DIFFERENCE_STEP)
        grads[name] = grad
    return grads


def closed_form(p: dict) -> dict:
    _, x_hat = reference_forward(p["x"], p["gamma"], p["beta"], p["eps"])
    paths = batchnorm_paths(p["x"], p["dout"], p["gamma"], eps=p["eps"], axis=0)
    return {"dx": paths.total, "dgamma": (p["dout"] * x_hat).sum(axis=0),
            "dbeta": p["dout"].sum(axis=0), "paths": paths, "x_hat": x_hat}


def relative_error(value, reference) -> float:
    """max |value - reference| / max |reference| (shapes must agree)."""
    return float(np.max(np.abs(value - reference)) / max(np.max(np.abs(reference)), 1e-300))


def _close(value, reference, rtol=MATCH_RTOL) -> bool:
    return value.shape == reference.shape and relative_error(value, reference) < rtol


# ----------------------------------------------------------------------------------------------
# Diagnosis of dx: the three routes, then a catalogue of mistakes
# ----------------------------------------------------------------------------------------------

ROUTES = ("direct path", "mean path", "variance path")


def _describe_coefficient(route: str, c: float, n: int) -> str | None:
    """What a coefficient of ``c`` on ``route`` means, or None when it is right (1)."""
    def near(target):
        return abs(c - target) < 1e-4 * max(1.0, abs(target))
    if near(1):
        return None
    if near(0):
        return f"the {route} is missing"
    if near(-1):
        return f"the {route} has the wrong sign"
    if route == "variance path" and near(n / (n - 1)):
        return (f"the variance path is N/(N-1) = {n}/{n - 1} times too large: you used the "
                f"unbiased variance (dividing by N-1); BatchNorm's batch variance divides by N")
    if route == "variance path" and near((n - 1) / n):
        return (f"the variance path is (N-1)/N = {n - 1}/{n} of what it should be: the "
                f"derivative of the variance divides by N, not N-1")
    if near(2) or near(0.5):
        return f"the {route} is {c:g} times what it should be (a lost or extra factor 2?)"
    return f"the {route} is {c:.4g} times what it should be"


def _route_fit(dx, paths) -> tuple:
    """Least-squares coefficients of dx on the three route parts, and the relative residual."""
    basis = np.stack([paths.direct.ravel(), paths.through_mean.ravel(),
                      paths.through_variance.ravel()], axis=1)
    coefficients, *_ = np.linalg.lstsq(basis, dx.ravel(), rcond=None)
    residual = dx.ravel() - basis @ coefficients
    return coefficients, float(np.max(np.abs(residual)) / max(np.max(np.abs(dx)), 1e-300))


def _routes_message(coefficients, n: int) -> str:
    a = np.asarray(coefficients)
    if np.allclose(a, a[0], rtol=1e-4) and abs(a[0]) > 1e-6:
        k = a[0]
        if abs(k - n) < 1e-4 * n:
            return (f"dx is N = {n} times too large (all three paths): a sum where a mean "
                    f"belongs, or a 1/N dropped")
        if abs(k - 1 / n) < 1e-4:
            return f"dx is N = {n} times too small (all three paths): an extra 1/N"
        if abs(k + 1) < 1e-4:
            return "dx has the wrong sign (all three paths)"
        return f"dx is {k:.4g} times the right one (all three paths)"
    have = [route for route, c in zip(ROUTES, a) if abs(c - 1) < 1e-4]
    problems = [m for route, c in zip(ROUTES, a) if (m := _describe_coefficient(route, c, n))]
    missing = [route for route, c in zip(ROUTES, a) if abs(c) < 1e-4]
    if missing and len(problems) == len(missing) and have:
        return (f"your dx has the {' and the '.join(have)} but not the "
                f"{' or the '.join(missing)}")
    text = "; ".join(problems)
    return f"your dx has the {' and the '.join(have)} right, but {text}" if have else text


def _learner_style(x, gamma, dout, eps, std="sqrt", ddof=0, with_gamma=True, compact=False,
                   true_x_hat=False):
    """dx as a learner computes it, step by step through the graph, with one mistake switched
    on: ``std`` is how the standard deviation is formed ("sqrt": sqrt(var+eps), right;
    "eps_outside": sqrt(var)+eps; "variance": var+eps), ``ddof`` 1 for the unbiased variance,
    ``with_gamma`` False when gamma is left out of dx. ``compact`` uses the one-line formula
    (with the cache's x_hat when ``true_x_hat``) instead of the staged chain rule."""
    n = x.shape[0]
    mu = x.mean(axis=0)
    var = x.var(axis=0, ddof=ddof)
    xm = x - mu
    s, ds_dvar = {"sqrt": (np.sqrt(var + eps), 0.5 / np.sqrt(var + eps)),
                  "eps_outside": (np.sqrt(var) + eps, 0.5 / np.sqrt(var)),
                  "variance": (var + eps, np.ones_like(var))}[std]
    g = dout * gamma if with_gamma else dout
    if compact:
        x_hat = xm / np.sqrt(x.var(axis=0) + eps) if true_x_hat else xm / s
        return (g - g.mean(axis=0) - x_hat * (g * x_hat).mean(axis=0)) / s
    dxm = g / s
    dvar = np.sum(-g * xm / s ** 2, axis=0) * ds_dvar
    dxm = dxm + dvar * 2 * xm / (n - ddof)
    return dxm - dxm.sum(axis=0) / n


def _mistakes(p: dict) -> list:
    """(message, [dx candidates]) for the common mistakes the route fit cannot express."""
    x, gamma, dout, eps = p["x"], p["gamma"], p["dout"], p["eps"]

    def variants(**kw):
        return [_learner_style(x, gamma, dout, eps, **kw),
                _learner_style(x, gamma, dout, eps, compact=True, **kw),
                _learner_style(x, gamma, dout, eps, compact=True, true_x_hat=True, **kw)]

    return [
        ("eps is outside the square root: the standard deviation is sqrt(var + eps), "
         "not sqrt(var) + eps", variants(std="eps_outside")),
        ("you used the variance where the standard deviation belongs: divide by "
         "sqrt(var + eps), not by var + eps", variants(std="variance")),
        ("you forgot gamma in dx: dL/dx_hat = dout * gamma", variants(with_gamma=False)),
        ("you used the unbiased variance (dividing by N-1); BatchNorm's batch variance "
         "divides by N", variants(ddof=1)),
    ]


def diagnose_dx(dx, p: dict, reference: dict) -> str:
    """Why ``dx`` (same shape as x, not right) is wrong, in one sentence."""
    n = p["x"].shape[0]
    coefficients, residual = _route_fit(dx, reference["paths"])
    if residual < MATCH_RTOL:
        return _routes_message(coefficients, n)
    for message, candidates in _mistakes(p):
        if any(_close(dx, candidate) for candidate in candidates):
            return message
    sums = np.abs(dx.sum(axis=0))
    hint = ("; it does not sum to zero over the batch, as dx must (shifting the whole batch "
            "does not change the output): look at the mean path" if
            np.max(sums) > 1e-6 * np.max(np.abs(dx)) * n else "")
    a, b, c = coefficients
    return (f"dx matches no combination of the three paths and none of the common mistakes "
            f"(closest: {a:.3g}*direct + {b:.3g}*mean + {c:.3g}*variance, leaving "
            f"{residual:.1%} unexplained){hint}")


def _diagnose_sum(name, value, p, reference, formula, alternatives) -> str:
    """Why dgamma or dbeta (not right) is wrong: the axis it was summed over, or a formula of
    the other parameter."""
    terms = formula  # the (N, D) array summed over the batch to give the right answer
    shape = p["gamma"].shape
    if value.shape == terms.shape and _close(value, terms):
        return f"{name} is not summed: sum it over the batch (axis=0), one value per feature"
    if value.shape == (terms.shape[0],) and _close(value, terms.sum(axis=1)):
        return (f"{name} is summed over the wrong axis (axis=1, across the features); sum over "
                f"axis 0, the batch")
    if value.size == 1 and _close(value.reshape(()), terms.sum().reshape(())):
        return f"{name} is summed over every axis; sum over axis 0 (the batch) only"
    if value.shape != shape:
        if value.size == shape[0] and _close(value.reshape(shape), reference[name]):
            return f"{name} has the right values but shape {value.shape}; expected {shape}"
        return f"{name} has shape {value.shape}; expected gamma's shape {shape}"
    for message, candidate in alternatives:
        if _close(value, candidate):
            return message
    n = p["x"].shape[0]
    if _close(value, reference[name] * n):
        return f"{name} is N = {n} times too large"
    if _close(value, reference[name] / n):
        return f"{name} is N = {n} times too small: it is a sum over the batch, not a mean"
    if _close(value, -reference[name]):
        return f"{name} has the wrong sign"
    return f"{name} is wrong (it matches none of the common mistakes)"


# ----------------------------------------------------------------------------------------------
# Running the learner's file and grading it
# ----------------------------------------------------------------------------------------------

@dataclass
class Verdict:
    name: str
    ok: bool
    message: str
    vs_finite_differences: float | None = None
    vs_closed_form: float | None = None


@dataclass
class Grade:
    path: Path
    verdicts: list
    problem: str | None = None  # the file did not run, or is not implemented: one message
    not_implemented: bool = False

    @property
    def passed(self) -> bool:
        return self.problem is None and all(v.ok for v in self.verdicts)

    def report(self) -> str:
        lines = [f"minigrad exercise check: {self.path}"]
        if self.problem:
            label = "not implemented" if self.not_implemented else "error"
            lines.append(f"{label}: {self.problem}")
            return "\n".join(lines)
        lines.append(f"batchnorm_backward on x of shape ({N}, {D}), eps={EPS:g}: against "
                     f"finite differences and the closed form\n")
        for v in self.verdicts:
            errors = ("" if v.vs_closed_form is None else
                      f"  (rel. error {v.vs_finite_differences:.1e} vs finite differences, "
                      f"{v.vs_closed_form:.1e} vs closed form)")
            lines.append(f"{v.name:<7} {'right' if v.ok else 'WRONG':<6}{errors}")
            if v.message:
                lines.append(f"        {v.message}")
        right = sum(v.ok for v in self.verdicts)
        lines.append(f"\n{right} of {len(self.verdicts)} right"
                     + (": well done." if self.passed else "."))
        return "\n".join(lines)


class _LearnerError(Exception):
    """The learner's code failed; the message names the line."""


def _where(error: BaseException, path: Path) -> str:
    """``error`` as one line naming the line of the learner's file it came from."""
    if isinstance(error, SyntaxError) and error.lineno is not None:
        return f"line {error.lineno}: SyntaxError: {error.msg}"
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if Path(f.filename).resolve() == path.resolve()]
    where = f"line {frames[-1].lineno} ({frames[-1].line}): " if frames else ""
    return f"{where}{type(error).__name__}: {error}"


def _load(path: Path):
    name = f"minigrad_exercise_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as error:  # the learner's code: reported, never escapes
        raise _LearnerError(f"{path} does not run: {_where(error, path)}") from None
    finally:
        sys.modules.pop(name, None)
    return module


def _call(path, function, *args):
    try:
        return function(*args)
    except NotImplementedError:
        raise
    except (Exception, SystemExit) as error:
        raise _LearnerError(f"{function.__name__} raised {_where(error, path)}") from None


def _as_array(name, value, path):
    if value is None:
        return None
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise _LearnerError(f"batchnorm_backward returned {name} = {type(value).__name__}, "
                            f"not an array of numbers") from None
    return array


def check_file(path) -> Grade:
    """Run the learner's file and grade its ``batchnorm_backward``."""
    path = Path(path)
    try:
        return _grade(path)
    except _LearnerError as error:
        return Grade(path, [], problem=str(error))


def _grade(path: Path) -> Grade:
    module = _load(path)
    for function in ("batchnorm_forward", "batchnorm_backward"):
        if not callable(getattr(module, function, None)):
            raise _LearnerError(f"{path} defines no function {function} (keep the names of "
                                f"the stub: minigrad exercise batchnorm writes a fresh one)")
    p = problem()
    forward = _call(path, module.batchnorm_forward, p["x"].copy(), p["gamma"].copy(),
                    p["beta"].copy(), p["eps"])
    if not (isinstance(forward, tuple) and len(forward) == 2):
        raise _LearnerError("batchnorm_forward must return (out, cache), as the stub's does")
    out, cache = forward
    expected_out, _ = reference_forward(p["x"], p["gamma"], p["beta"], p["eps"])
    if np.shape(out) != expected_out.shape or not np.allclose(out, expected_out):
        raise _LearnerError("batchnorm_forward no longer computes BatchNorm: keep the stub's "
                            "forward as it is and write only the backward")
    try:
        result = _call(path, module.batchnorm_backward, p["dout"].copy(), cache)
    except NotImplementedError:
        return Grade(path, [], problem="batchnorm_backward is not written yet (it raises "
                                       "NotImplementedError)", not_implemented=True)
    if not (isinstance(result, (tuple, list)) and len(result) == 3):
        got = f"a {type(result).__name__}" + (f" of {len(result)}" if isinstance(
            result, (tuple, list)) else "")
        raise _LearnerError(f"batchnorm_backward must return three values (dx, dgamma, "
                            f"dbeta); it returned {got}")
    names = ("dx", "dgamma", "dbeta")
    values = {n: _as_array(n, v, path) for n, v in zip(names, result)}
    if all(v is None for v in values.values()):
        return Grade(path, [], problem="batchnorm_backward returns None for dx, dgamma and "
                                       "dbeta: write your code where the stub says TODO",
                     not_implemented=True)
    reference = closed_form(p)
    numeric = finite_differences(p)
    x_hat = reference["x_hat"]
    verdicts = []
    for name in names:
        value, right = values[name], reference[name]
        if value is None:
            verdicts.append(Verdict(name, False, f"{name} is None: not written yet"))
            continue
        if value.shape == right.shape:
            if not np.all(np.isfinite(value)):
                verdicts.append(Verdict(name, False, f"{name} has nan or inf values"))
                continue
            closed, fd = relative_error(value, right), relative_error(value, numeric[name])
            if closed < CLOSED_FORM_RTOL and fd < FINITE_DIFFERENCE_RTOL:
                verdicts.append(Verdict(name, True, "", fd, closed))
                continue
        else:
            closed = fd = None
        if name == "dx":
            message = (diagnose_dx(value, p, reference) if value.shape == right.shape else
                       f"dx has shape {value.shape}; expected x's shape {right.shape}")
        elif name == "dgamma":
            message = _diagnose_sum(name, value, p, reference, p["dout"] * x_hat, [
                ("dgamma is dbeta's formula: dgamma = sum(dout * x_hat, axis=0)",
                 reference["dbeta"]),
                ("dgamma uses x where x_hat belongs: dgamma = sum(dout * x_hat, axis=0)",
                 (p["dout"] * p["x"]).sum(axis=0))])
        else:
            message = _diagnose_sum(name, value, p, reference, p["dout"], [
                ("dbeta is dgamma's formula: dbeta = sum(dout, axis=0)", reference["dgamma"]),
                ("dbeta should not involve gamma: dbeta = sum(dout, axis=0)",
                 reference["dbeta"] * p["gamma"])])
        verdicts.append(Verdict(name, False, message, fd, closed))
    return Grade(path, verdicts)
