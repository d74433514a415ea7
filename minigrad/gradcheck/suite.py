"""The library's self-test (what ``minigrad gradcheck`` runs and prints): every op, layer and
functional function checked against central finite differences -- ops and functions to second
order too -- one ``Row`` per sample case. ``check_all`` runs them.

What is checked is not a hand-kept list. The registry is the library itself: every ``Function``
subclass and every ``nn.Module`` subclass defined in ``minigrad`` (outside ``minigrad.app``), and
every public function of ``minigrad.functional``. Each needs a sample case in ``CASES`` -- keyed
by the class or function, which the case receives and calls, so it cannot check something else
by mistake. An entry without a case is a failure, so a new op cannot go unchecked unnoticed. (A
private class with subclasses, such as ``_BatchNorm``, is an abstract base: its subclasses are
checked instead.)
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import time
import traceback
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

import minigrad
from .. import functional as F
from .. import nn
from ..autograd import Function
from ..core import ops
from ..core.checks import bad_argument, boolean, one_of
from ..core.errors import ArgumentTypeError
from ..core.tensor import Tensor
from .check import check_gradients
from .module import gradcheck_module

__all__ = ["CASES", "registry", "check_all"]


# ----------------------------------------------------------------------------------------------
# Sample cases
# ----------------------------------------------------------------------------------------------

@dataclass
class Case:
    """One sample check: ``run(fast_mode)`` gives the first-order result and the second-order
    one (or None when the case is checked to first order only)."""
    label: str
    shapes: str
    run: Callable


def signed(*shape, seed=0):
    """A leaf tensor whose values have magnitudes in [0.5, 1.5] and random signs: away from the
    kinks of relu/abs and from 0."""
    rng = np.random.default_rng(seed)
    return Tensor(rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape),
                  requires_grad=True)


def positive(*shape, seed=1):
    """A leaf tensor with values in [0.5, 1.5]: inside the domain of log and sqrt."""
    return Tensor(np.random.default_rng(seed).uniform(0.5, 1.5, shape), requires_grad=True)


def distinct(*shape):
    """A leaf tensor whose values are all different by at least 0.1: no ties for max."""
    values = np.random.default_rng(2).permutation(int(np.prod(shape))) * 0.1 - 1.0
    return Tensor(values.reshape(shape), requires_grad=True)


def constant(tensor: Tensor) -> Tensor:
    return Tensor(np.array(tensor.data))


def function_case(fn, *inputs, label: str = "", second_order: bool = True) -> Case:
    """``fn(*inputs)`` checked with respect to the inputs that require grad."""
    shapes = ", ".join(str(t.shape) for t in inputs if isinstance(t, Tensor) and t.requires_grad)

    def run(fast_mode):
        first = check_gradients(fn, inputs, fast_mode=fast_mode)
        second = check_gradients(fn, inputs, fast_mode=fast_mode, order=2) if second_order \
            else None
        return first, second

    return Case(label, shapes, run)


def module_case(model, x, *rest, loss_fn=None, label: str = "") -> Case:
    """Every parameter of ``model`` and its input ``x`` (a leaf that requires grad), through
    ``loss_fn`` (or every output)."""
    return Case(label, f"input {x.shape}",
                lambda fast_mode: (gradcheck_module(model, loss_fn, x, *rest, fast_mode=fast_mode,
                                                    raise_exception=False), None))


def _unary(op, make=signed):
    return [function_case(op.apply, make(3, 4))]


def _binary(op, make_b=signed):
    return [function_case(op.apply, signed(3, 4), make_b(3, 4, seed=5))]


def _reduction(op, make=signed, **attrs):
    return [function_case(lambda x: op.apply(x, axis=(0, 2), keepdims=False, **attrs),
                          make(2, 3, 4), label="axis=(0, 2)"),
            function_case(lambda x: op.apply(x, axis=None, keepdims=True, **attrs), make(3, 4),
                          label="all, keepdims")]


def _pow(op):
    return [function_case(op.apply, positive(3, 4), signed(3, 4), label="tensor ** tensor"),
            function_case(lambda x: op.apply(x, 3.0), signed(3, 4), label="tensor ** 3")]


def _fused_batch_norm(op):
    x, weight, bias = signed(6, 3, 2), positive(3), signed(3, seed=3)
    running_mean, running_var = Tensor(np.full(3, 0.2)), Tensor(np.full(3, 1.3))
    return [function_case(lambda x, w, b, training=training: op.apply(
        x, w, b, running_mean, running_var, training=training, momentum=0.1, eps=1e-5),
        x, weight, bias, label="train" if training else "eval") for training in (True, False)]


CONV = dict(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))

# Function subclasses: each op called through ``apply`` itself, so the row checks that class.
OP_CASES = {
    ops.Add: _binary, ops.Sub: _binary, ops.Mul: _binary,
    ops.Div: lambda op: _binary(op, make_b=positive),
    ops.Neg: _unary, ops.Exp: _unary, ops.Tanh: _unary, ops.Sigmoid: _unary, ops.Abs: _unary,
    ops.Relu: _unary,
    ops.Log: lambda op: _unary(op, positive), ops.Sqrt: lambda op: _unary(op, positive),
    ops.Pow: _pow,
    ops.Where: lambda op: [function_case(
        lambda a, b: op.apply(np.array([[True, False, True, False]] * 3), a, b),
        signed(3, 4), signed(3, 4, seed=5))],
    ops.Cast: lambda op: [function_case(lambda x: op.apply(x, dtype=np.dtype(np.float64)) * x,
                                        signed(3, 4), label="float64")],
    # (bounds at +-0.25 and 1.0, away from every value: signed() keeps |x| in [0.5, 1.5])
    ops.Clamp: lambda op: [function_case(lambda x: op.apply(x, low=-0.25, high=1.0),
                                         signed(3, 4), label="min=-0.25, max=1")],
    ops.SetItem: lambda op: [function_case(
        lambda x, v: op.apply(x, v, index=(slice(0, 2), 1)), signed(3, 4), signed(2, seed=4),
        label="x[0:2, 1] = v")],
    ops.Sum: _reduction, ops.Mean: _reduction,
    ops.Var: lambda op: _reduction(op, ddof=1),
    ops.Max: lambda op: _reduction(op, make=distinct),
    ops.Min: lambda op: _reduction(op, make=distinct),
    ops.LogSumExp: _reduction,
    ops.Sin: _unary, ops.Cos: _unary, ops.Maximum: _binary, ops.Minimum: _binary,
    ops.Reshape: lambda op: [function_case(lambda x: op.apply(x, shape=(4, 3)), signed(2, 6))],
    ops.Transpose: lambda op: [function_case(lambda x: op.apply(x, axes=(2, 0, 1)),
                                             signed(2, 3, 4))],
    ops.BroadcastTo: lambda op: [function_case(lambda x: op.apply(x, shape=(2, 3, 4)),
                                               signed(3, 1))],
    ops.GetItem: lambda op: [
        function_case(lambda x: op.apply(x, index=(slice(1, None), 2)), signed(3, 4),
                      label="basic"),
        function_case(lambda x: op.apply(x, index=np.array([0, 2, 2])), signed(3, 4),
                      label="repeated integer array")],
    ops.ScatterAdd: lambda op: [function_case(
        lambda v: op.apply(v, index=np.array([0, 2, 2]), shape=(4, 4)), signed(3, 4),
        label="repeated integer array")],
    ops.Concatenate: lambda op: [function_case(lambda a, b: op.apply(a, b, axis=1),
                                               signed(3, 2), signed(3, 4, seed=5))],
    ops.MatMul: lambda op: [function_case(op.apply, signed(2, 3, 4), signed(2, 4, 5, seed=5))],
    F.Im2Col: lambda op: [function_case(lambda x: op.apply(x, **CONV), signed(2, 3, 5, 5))],
    F.LeakyRelu: lambda op: [function_case(lambda x: op.apply(x, negative_slope=0.1),
                                           signed(3, 4))],
    F.Erf: _unary,
    # (beta * x > 2 where x > 1: both sides, no value within eps of the switch)
    F.Softplus: lambda op: [function_case(lambda x: op.apply(x, beta=2.0, threshold=2.0),
                                          signed(3, 4), label="beta=2, threshold=2")],
    F.Col2Im: lambda op: [function_case(
        lambda cols: op.apply(cols, image_shape=(2, 3, 5, 5), **CONV), signed(18, 27))],
    F.FusedBatchNorm: _fused_batch_norm,
    F.LogSoftmax: lambda op: [function_case(lambda x, axis=axis: op.apply(x, axis=axis),
                                            signed(3, 4), label=f"axis={axis}")
                              for axis in (0, 1)],
    F.Linear: lambda op: [function_case(op.apply, signed(2, 5, 4), signed(3, 4, seed=5),
                                        signed(3, seed=6), label="batch dims (2, 5)")],
    F.NLLLoss: lambda op: [function_case(
        lambda x, reduction=reduction: op.apply(x, Tensor(np.array([0, 3, 1])),
                                                reduction=reduction),
        signed(3, 4), label=reduction) for reduction in ("mean", "sum", "none")],
}


def _batch_norm_function(fn):
    x, weight, bias = signed(6, 3), positive(3), signed(3, seed=3)
    cases = []
    for training, fused in ((True, False), (False, False), (True, True)):
        running_mean, running_var = Tensor(np.full(3, 0.2)), Tensor(np.full(3, 1.3))
        cases.append(function_case(
            lambda x, w, b, training=training, fused=fused, mean=running_mean, var=running_var:
            fn(x, mean, var, w, b, training=training, fused=fused), x, weight, bias,
            label=("train" if training else "eval") + (", fused" if fused else "")))
    return cases


# Public functions of minigrad.functional, each called with sample arguments.
FUNCTION_CASES = {
    F.linear: lambda f: [function_case(f, signed(5, 4), signed(3, 4, seed=5), signed(3, seed=6))],
    F.relu: lambda f: [function_case(f, signed(3, 4))],
    F.sigmoid: lambda f: [function_case(f, signed(3, 4))],
    F.tanh: lambda f: [function_case(f, signed(3, 4))],
    F.softmax: lambda f: [function_case(lambda x: f(x, axis=1), signed(3, 4))],
    F.log_softmax: lambda f: [function_case(lambda x: f(x, axis=1), signed(3, 4))],
    F.cross_entropy: lambda f: [function_case(lambda x: f(x, np.array([0, 3, 1])),
                                              signed(3, 4))],
    F.mse_loss: lambda f: [function_case(lambda x: f(x, constant(signed(3, 4, seed=5))),
                                         signed(3, 4))],
    # A fresh generator on every call: the same mask each time, as finite differences need.
    F.dropout: lambda f: [function_case(
        lambda x: f(x, 0.3, True, np.random.default_rng(0)), signed(3, 4), label="train")],
    F.leaky_relu: lambda f: [function_case(lambda x: f(x, 0.2), signed(3, 4))],
    F.gelu: lambda f: [function_case(lambda x, form=form: f(x, approximate=form), signed(3, 4),
                                     label=f"approximate={form!r}") for form in ("none", "tanh")],
    F.softplus: lambda f: [function_case(lambda x: f(x, beta=2.0, threshold=2.0), signed(3, 4))],
    # (distinct values: no two elements of a window tie for the maximum)
    F.max_pool2d: lambda f: [
        function_case(lambda x: f(x, 2), distinct(2, 3, 4, 4), label="2x2"),
        function_case(lambda x: f(x, 3, stride=2, padding=1, ceil_mode=True),
                      distinct(2, 2, 6, 5), label="3x3, stride 2, padding 1, ceil_mode")],
    F.avg_pool2d: lambda f: [
        function_case(lambda x, include=include: f(x, 3, stride=2, padding=1, ceil_mode=True,
                                                   count_include_pad=include),
                      signed(2, 2, 6, 5), label=f"3x3, stride 2, padding 1, ceil_mode, "
                                                f"count_include_pad={include}")
        for include in (True, False)],
    F.conv2d: lambda f: [function_case(lambda x, w, b: f(x, w, b, stride=2, padding=1),
                                       signed(2, 3, 5, 5), signed(4, 3, 3, 3, seed=5),
                                       signed(4, seed=6))],
    F.batch_norm: _batch_norm_function,
    F.layer_norm: lambda f: [function_case(lambda x, w, b: f(x, (3, 2), w, b), signed(4, 3, 2),
                                           positive(3, 2), signed(3, 2, seed=3))],
    F.group_norm: lambda f: [function_case(lambda x, w, b: f(x, 2, w, b), signed(3, 4, 2),
                                           positive(4), signed(4, seed=3))],
}


def _batch_norm_layer(layer, shape):
    cases = []
    for fused in (False, True):
        for training in (True, False):
            model = layer(shape[1], fused=fused)
            model(signed(*shape, seed=7))  # running statistics away from their initial values
            with_weight = positive(shape[1])
            model.weight.data[:] = with_weight.data
            model.train(training)
            label = ("train" if training else "eval") + (", fused" if fused else "")
            cases.append(module_case(model, signed(*shape), label=label))
    return cases


def _dropout_layer(layer):
    model = layer(0.3)

    def same_mask_every_call(x):  # a fresh generator per call: finite differences need it
        model.rng = np.random.default_rng(0)
        return model(x)

    return [function_case(same_mask_every_call, signed(3, 4), label="train"),
            module_case(layer(0.3).eval(), signed(3, 4), label="eval")]


# nn.Module subclasses: every parameter and the input, through every output.
LAYER_CASES = {
    nn.Linear: lambda cls: [module_case(cls(4, 3, rng=0), signed(5, 4))],
    nn.Conv2d: lambda cls: [module_case(cls(3, 4, 3, stride=2, padding=1, rng=0),
                                        signed(2, 3, 5, 5))],
    nn.ReLU: lambda cls: [module_case(cls(), signed(3, 4))],
    nn.Sigmoid: lambda cls: [module_case(cls(), signed(3, 4))],
    nn.Tanh: lambda cls: [module_case(cls(), signed(3, 4))],
    nn.Dropout: _dropout_layer,
    nn.Flatten: lambda cls: [module_case(cls(), signed(2, 3, 2))],
    nn.LeakyReLU: lambda cls: [module_case(cls(0.2), signed(3, 4))],
    nn.GELU: lambda cls: [module_case(cls(), signed(3, 4))],
    nn.Softplus: lambda cls: [module_case(cls(), signed(3, 4))],
    nn.Identity: lambda cls: [module_case(cls(), signed(3, 4))],
    nn.MaxPool2d: lambda cls: [module_case(cls(3, stride=2, padding=1), distinct(2, 2, 5, 5))],
    nn.AvgPool2d: lambda cls: [module_case(cls(3, stride=2, padding=1), signed(2, 2, 5, 5))],
    # Containers have no forward: their modules, in a Sequential, are the model.
    nn.ModuleList: lambda cls: [module_case(
        nn.Sequential(*cls([nn.Linear(4, 5, rng=0), nn.Tanh(), nn.Linear(5, 3, rng=1)])),
        signed(6, 4), label="its modules in a Sequential")],
    nn.ModuleDict: lambda cls: [module_case(
        nn.Sequential(*cls({"hidden": nn.Linear(4, 5, rng=0), "act": nn.GELU(),
                            "out": nn.Linear(5, 3, rng=1)}).values()),
        signed(6, 4), label="its modules in a Sequential")],
    nn.Sequential: lambda cls: [module_case(
        cls(nn.Linear(4, 6, rng=0), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3, rng=1)),
        signed(8, 4), np.array([0, 1, 2, 0, 1, 2, 0, 1]), loss_fn=F.cross_entropy,
        label="BN MLP, cross-entropy")],
    nn.BatchNorm1d: lambda cls: _batch_norm_layer(cls, (6, 3)) + _batch_norm_layer(cls, (4, 3, 2)),
    nn.BatchNorm2d: lambda cls: _batch_norm_layer(cls, (3, 2, 2, 2)) + [
        module_case(cls(2, bias=False), signed(3, 2, 2, 2), label="train, bias=False")],
    nn.LayerNorm: lambda cls: [module_case(cls((3, 2)), signed(4, 3, 2)),
                               module_case(cls((3, 2), bias=False), signed(4, 3, 2),
                                           label="bias=False")],
    nn.GroupNorm: lambda cls: [module_case(cls(2, 4), signed(3, 4, 2)),
                               module_case(cls(2, 4, bias=False), signed(3, 4, 2),
                                           label="bias=False")],
}

CASES = {**OP_CASES, **FUNCTION_CASES, **LAYER_CASES}


# ----------------------------------------------------------------------------------------------
# The registry: what the library defines
# ----------------------------------------------------------------------------------------------

# What is not the library: the command's entry point and the application (the cli, the demo,
# the experiments), which the library never imports. The compiled kernels' modules define no
# ops (the ops call them) and import Numba, which is optional: their package is not walked.
_NOT_LIBRARY = ("minigrad.__main__", "minigrad.app", "minigrad.kernels")


def _import_library(package=minigrad) -> None:
    """Import every module of the library, so every op and layer class it defines exists."""
    for module in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if module.name not in _NOT_LIBRARY:
            imported = importlib.import_module(module.name)
            if module.ispkg:
                _import_library(imported)


def _defined_subclasses(base) -> list:
    """Subclasses of ``base`` defined in the library (minigrad outside ``minigrad.app``), in
    definition order, without abstract bases (private classes that have subclasses)."""
    found, stack = [], list(reversed(base.__subclasses__()))
    while stack:
        cls = stack.pop()
        children = cls.__subclasses__()
        stack.extend(reversed(children))
        abstract = cls.__name__.startswith("_") and children
        library = cls.__module__.startswith("minigrad.") and not cls.__module__.startswith(
            tuple(name + "." for name in _NOT_LIBRARY))
        if library and not abstract:
            found.append(cls)
    return found


def registry() -> list[tuple[str, object]]:
    """(kind, target) for every op, layer and functional function the library defines."""
    _import_library()
    functions = [getattr(F, name) for name in F.__all__ if inspect.isfunction(getattr(F, name))]
    return ([("op", cls) for cls in _defined_subclasses(Function)]
            + [("function", f) for f in functions]
            + [("layer", cls) for cls in _defined_subclasses(nn.Module)])


_PREFIXES = {"op": "", "function": "F.", "layer": "nn."}


def display_name(kind: str, target) -> str:
    """How a registry entry is named in the table: ``Add``, ``F.relu``, ``nn.Linear``."""
    prefix = _PREFIXES[one_of("display_name", "kind", kind, tuple(_PREFIXES))]
    name = getattr(target, "__name__", None)
    if not isinstance(name, str):
        bad_argument("display_name", "target", "a class or function", target, ArgumentTypeError)
    return prefix + name


# ----------------------------------------------------------------------------------------------
# Running the checks
# ----------------------------------------------------------------------------------------------

@dataclass
class Row:
    kind: str
    name: str
    shapes: str = ""
    first: object = None     # GradcheckResult
    second: object = None    # GradcheckResult, or None when not checked to second order
    problem: str = ""        # no case, or the case raised
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        results = [r for r in (self.first, self.second) if r is not None]
        return not self.problem and all(r.ok and not r.warnings for r in results)


def check_all(pattern: str | None = None, fast_mode: bool = False) -> list[Row]:
    """Run every case of every registry entry whose name contains ``pattern`` (any case; None
    or "": every entry). A pattern that matches nothing gives no rows."""
    if pattern is not None and not isinstance(pattern, str):
        bad_argument("check_all", "pattern", "None or a string (part of a name)", pattern,
                     ArgumentTypeError)
    fast_mode = boolean("check_all", "fast_mode", fast_mode)
    rows = []
    for kind, target in registry():
        name = display_name(kind, target)
        if pattern and pattern.lower() not in name.lower():
            continue
        make_cases = CASES.get(target)
        if make_cases is None:
            rows.append(Row(kind, name, problem="no sample case: add one to CASES in "
                                                "minigrad/gradcheck/suite.py"))
            continue
        rows += _run_cases(kind, name, make_cases, target, fast_mode)
    return rows


def _run_cases(kind, name, make_cases, target, fast_mode) -> list[Row]:
    try:
        cases = make_cases(target)
    except Exception:  # noqa: BLE001 -- report the broken case, check everything else
        return [Row(kind, name, problem=traceback.format_exc(limit=-1).strip())]
    rows = []
    for case in cases:
        row = Row(kind, f"{name} ({case.label})" if case.label else name, case.shapes)
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a result keeps its warnings; the row shows them
                row.first, row.second = case.run(fast_mode)
        except Exception:  # noqa: BLE001
            row.problem = traceback.format_exc(limit=-1).strip()
        row.seconds = time.perf_counter() - start
        rows.append(row)
    return rows


def format_error(result) -> str:
    """A check's max relative error for a table; "-" where that check was not run."""
    return "-" if result is None else f"{result.max_rel_error:.1e}"
