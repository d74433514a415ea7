"""Bad arguments to the public API: every one gets a clear error from minigrad itself.

A clear error here means: an exception of a class a user catches (TypeError, ValueError,
IndexError, RuntimeError, or a minigrad class subclassing them), raised by minigrad's own code
(not a NumPy or Python internal deep in a traceback), whose message names what the user called.
Values that are garbage for every argument (strings where numbers go, arbitrary objects) must
raise; other values (0, -1, NaN, a wrong shape) may be valid for some arguments, and then the
call must simply work.

Each entry point is listed once with arguments that work; the tests replace one (or, with
hypothesis, two) of them with bad values."""
from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import minigrad as mg
import minigrad.functional as F
import minigrad.nn as nn
from minigrad import data, optim

MINIGRAD_DIR = os.path.dirname(mg.__file__)
CLEAR_CLASSES = (TypeError, ValueError, IndexError, RuntimeError)


def _x(*shape, dtype=np.float64, grad=False):
    rng = np.random.default_rng(0)
    return mg.tensor(rng.normal(size=shape).astype(dtype), requires_grad=grad)


class _Opaque:
    """An object that is nothing minigrad knows."""

    def __repr__(self):
        return "<opaque>"


# Garbage for every argument that is not text: each must raise.
GARBAGE = ["banana", _Opaque(), {"a": 1}, b"bytes", {1, 2}]
# Values that are wrong for most arguments but valid for some (so: an error or a result).
SUSPECT = [None, 0, -1, -3, 2.5, 10 ** 12, float("nan"), float("inf"), -float("inf"), True,
           1 + 2j, [], [[1.0, 2.0], [3.0]], ["a", "b"], (1, 2, 3), np.zeros((7, 5)),
           np.array(["x", "y"]), np.ones((2, 3), dtype=np.int64), np.float64("nan")]
TEXT_GARBAGE = [_Opaque(), {"a": 1}, 3.5, None]  # for arguments that take text


@dataclass
class Entry:
    """One public callable: ``call(**args)`` with ``args`` that work. ``names``: what the
    error message must mention (any one of them, case-insensitive). ``text``: arguments that
    take strings. ``optional``: arguments for which None is a valid value."""
    name: str
    call: object
    args: dict
    names: tuple = ()
    text: tuple = ()
    optional: tuple = ()
    skip: tuple = field(default_factory=tuple)  # arguments not to perturb

    def mentions(self) -> tuple:
        return self.names or (self.name,)


def _params():
    return [nn.Parameter(np.zeros(3))]


def _sgd():
    return optim.SGD(_params(), lr=0.1)


def _method(name):
    def call(self_tensor, **kwargs):
        return getattr(self_tensor, name)(**kwargs)
    return call


def _binary(op):
    def call(a, b):
        return op(a, b)
    return call


ENTRIES = [
    # -- tensors and their methods --------------------------------------------------------
    Entry("tensor", lambda data, dtype, requires_grad: mg.tensor(
        data, dtype=dtype, requires_grad=requires_grad),
        {"data": [1.0, 2.0], "dtype": np.float64, "requires_grad": False},
        names=("Tensor", "tensor"), optional=("dtype",)),
    Entry("sum", _method("sum"), {"self_tensor": _x(2, 3), "axis": 1, "keepdims": False},
          optional=("axis",), skip=("self_tensor",)),
    Entry("mean", _method("mean"), {"self_tensor": _x(2, 3), "axis": 0, "keepdims": True},
          optional=("axis",), skip=("self_tensor",)),
    Entry("var", _method("var"), {"self_tensor": _x(4, 3), "axis": 0, "ddof": 1},
          optional=("axis",), skip=("self_tensor",)),
    Entry("max", _method("max"), {"self_tensor": _x(2, 3), "axis": 1, "keepdims": False},
          optional=("axis",), skip=("self_tensor",)),
    Entry("min", _method("min"), {"self_tensor": _x(2, 3), "axis": 1, "keepdims": False},
          optional=("axis",), skip=("self_tensor",)),
    Entry("logsumexp", _method("logsumexp"), {"self_tensor": _x(2, 3), "axis": 1,
                                              "keepdims": True},
          optional=("axis",), skip=("self_tensor",)),
    Entry("argmax", _method("argmax"), {"self_tensor": _x(2, 3), "axis": 1, "keepdims": False},
          optional=("axis",), skip=("self_tensor",)),
    Entry("argmin", lambda x, axis, keepdims: mg.argmin(x, axis=axis, keepdims=keepdims),
          {"x": _x(2, 3), "axis": 0, "keepdims": True}, optional=("axis",)),
    Entry("sin", lambda x: mg.sin(x), {"x": _x(3)}),
    Entry("cos", lambda x: mg.cos(x), {"x": _x(3)}),
    Entry("maximum", lambda a, b: mg.maximum(a, b), {"a": _x(2, 3), "b": _x(3)}),
    Entry("minimum", lambda t, other: t.minimum(other), {"t": _x(2, 3), "other": 0.5},
          skip=("t",)),
    Entry("reshape", lambda t, shape: t.reshape(shape), {"t": _x(2, 3), "shape": (3, 2)},
          skip=("t",)),
    Entry("transpose", lambda t, a, b: t.transpose(a, b), {"t": _x(2, 3), "a": 1, "b": 0},
          skip=("t",)),
    Entry("broadcast_to", lambda t, shape: t.broadcast_to(shape),
          {"t": _x(1, 3), "shape": (2, 3)}, skip=("t",)),
    Entry("getitem", lambda t, index: t[index], {"t": _x(2, 3), "index": 1}, skip=("t",),
          names=("getitem", "index"), optional=("index",)),  # t[None] adds an axis
    Entry("astype", lambda t, dtype: t.astype(dtype), {"t": _x(2), "dtype": np.float32},
          skip=("t",)),
    Entry("clamp", lambda t, lo, hi: t.clamp(lo, hi), {"t": _x(3), "lo": -1.0, "hi": 1.0},
          skip=("t",), optional=("lo", "hi"), names=("clamp", "clip")),
    Entry("backward", lambda t, gradient: t.backward(gradient),
          {"t": None, "gradient": np.ones(3)}, skip=("t",), optional=("gradient",)),
    Entry("add", _binary(lambda a, b: a + b), {"a": _x(2, 3), "b": _x(3)}),
    Entry("mul", _binary(lambda a, b: a * b), {"a": _x(2, 3), "b": 2.0}, skip=("a",)),
    Entry("pow", _binary(lambda a, b: a ** b), {"a": _x(2, 3), "b": 2.0}, skip=("a",)),
    Entry("matmul", _binary(lambda a, b: a @ b), {"a": _x(2, 3), "b": _x(3, 4)}),
    Entry("concatenate", lambda tensors, axis: mg.concatenate(tensors, axis=axis),
          {"tensors": [_x(2, 3), _x(2, 3)], "axis": 0}),
    Entry("stack", lambda tensors, axis: mg.stack(tensors, axis=axis),
          {"tensors": [_x(2, 3), _x(2, 3)], "axis": 0}),
    Entry("where", lambda cond, a, b: mg.where(cond, a, b),
          {"cond": np.array([True, False, True]), "a": _x(3), "b": _x(3)}),
    # -- constructors ---------------------------------------------------------------------------
    Entry("zeros", lambda size, dtype, requires_grad: mg.zeros(
        size, dtype=dtype, requires_grad=requires_grad),
        {"size": (2, 3), "dtype": np.float32, "requires_grad": True}, optional=("dtype",)),
    Entry("ones", lambda a, b: mg.ones(a, b), {"a": 2, "b": 3}),
    Entry("empty", lambda size, dtype: mg.empty(size, dtype=dtype), {"size": 4,
                                                                     "dtype": np.int64},
          optional=("dtype",)),
    Entry("full", lambda size, fill_value, dtype: mg.full(size, fill_value, dtype=dtype),
          {"size": (2,), "fill_value": 1.5, "dtype": np.float64}, optional=("dtype",)),
    Entry("arange", lambda start, end, step, dtype: mg.arange(start, end, step, dtype=dtype),
          {"start": 0, "end": 5, "step": 2, "dtype": None}, optional=("end", "dtype")),
    Entry("linspace", lambda start, end, steps, requires_grad: mg.linspace(
        start, end, steps, requires_grad=requires_grad),
        {"start": 0.0, "end": 1.0, "steps": 5, "requires_grad": False}),
    Entry("eye", lambda n, m, dtype: mg.eye(n, m, dtype=dtype),
          {"n": 2, "m": 3, "dtype": np.float32}, optional=("m", "dtype")),
    Entry("rand", lambda a, b, dtype, generator: mg.rand(a, b, dtype=dtype,
                                                         generator=generator),
          {"a": 2, "b": 3, "dtype": np.float32, "generator": 0},
          optional=("dtype", "generator")),
    Entry("randn", lambda size, requires_grad: mg.randn(size, requires_grad=requires_grad),
          {"size": (2, 3), "requires_grad": True}),
    Entry("randint", lambda low, high, size, dtype: mg.randint(low, high, size, dtype=dtype),
          {"low": 0, "high": 5, "size": (3,), "dtype": np.int64}, optional=("dtype",),
          names=("randint", "rng")),
    Entry("zeros_like", lambda input, dtype: mg.zeros_like(input, dtype=dtype),
          {"input": _x(2, 3), "dtype": np.float32}, optional=("dtype",)),
    Entry("ones_like", lambda input, requires_grad: mg.ones_like(
        input, requires_grad=requires_grad), {"input": _x(2), "requires_grad": True}),
    Entry("full_like", lambda input, fill_value: mg.full_like(input, fill_value),
          {"input": _x(2), "fill_value": 3.0}),
    Entry("rand_like", lambda input, dtype: mg.rand_like(input, dtype=dtype),
          {"input": _x(2), "dtype": np.float64}, optional=("dtype",)),
    Entry("randn_like", lambda input, generator: mg.randn_like(input, generator=generator),
          {"input": _x(2), "generator": 1}, optional=("generator",),
          names=("randn_like", "rng")),
    Entry("mg.manual_seed", lambda seed: mg.manual_seed(seed), {"seed": 1},
          names=("manual_seed",)),
    Entry("grad", lambda outputs, inputs: mg.grad(outputs, inputs),
          {"outputs": None, "inputs": None}, skip=("outputs", "inputs")),
    Entry("set_default_dtype", lambda dtype: mg.set_default_dtype(dtype),
          {"dtype": np.float64}),
    # -- functional -------------------------------------------------------------------------
    Entry("linear", F.linear, {"x": _x(2, 3), "weight": _x(4, 3), "bias": _x(4)},
          optional=("bias",)),
    Entry("conv2d", F.conv2d, {"x": _x(1, 2, 5, 5), "weight": _x(3, 2, 3, 3), "bias": _x(3),
                               "stride": 1, "padding": 1}, optional=("bias",)),
    Entry("batch_norm", F.batch_norm,
          {"x": _x(4, 3), "running_mean": mg.tensor(np.zeros(3)),
           "running_var": mg.tensor(np.ones(3)), "weight": _x(3), "bias": _x(3),
           "training": True, "momentum": 0.1, "eps": 1e-5, "fused": False},
          optional=("running_mean", "running_var", "weight", "bias", "momentum")),
    Entry("layer_norm", F.layer_norm,
          {"x": _x(2, 3), "normalized_shape": (3,), "weight": _x(3), "bias": _x(3),
           "eps": 1e-5}, optional=("weight", "bias")),
    Entry("group_norm", F.group_norm,
          {"x": _x(2, 4, 3), "num_groups": 2, "weight": _x(4), "bias": _x(4), "eps": 1e-5},
          optional=("weight", "bias")),
    Entry("relu", F.relu, {"x": _x(3)}),
    Entry("leaky_relu", F.leaky_relu, {"x": _x(3), "negative_slope": 0.01}),
    Entry("gelu", F.gelu, {"x": _x(3), "approximate": "none"}, text=("approximate",)),
    Entry("softplus", F.softplus, {"x": _x(3), "beta": 1.0, "threshold": 20.0}),
    Entry("max_pool2d", F.max_pool2d, {"x": _x(1, 2, 5, 5), "kernel_size": 2, "stride": 2,
                                       "padding": 1, "ceil_mode": False}, optional=("stride",)),
    Entry("avg_pool2d", F.avg_pool2d, {"x": _x(1, 2, 5, 5), "kernel_size": 3, "stride": 2,
                                       "padding": 1, "ceil_mode": True,
                                       "count_include_pad": False}, optional=("stride",)),
    Entry("softmax", F.softmax, {"x": _x(2, 3), "axis": -1}, names=("softmax",)),
    Entry("log_softmax", F.log_softmax, {"x": _x(2, 3), "axis": -1}),
    Entry("cross_entropy", F.cross_entropy,
          {"logits": _x(2, 3), "labels": np.array([0, 2]), "reduction": "mean"},
          text=("reduction",)),
    Entry("mse_loss", F.mse_loss, {"input": _x(2, 3), "target": _x(2, 3),
                                   "reduction": "sum"}, text=("reduction",)),
    Entry("dropout", F.dropout, {"x": _x(2, 3), "p": 0.5, "training": True,
                                 "rng": np.random.default_rng(0)}, optional=("rng",)),
    # -- layers -------------------------------------------------------------------------------
    Entry("Linear", nn.Linear, {"in_features": 3, "out_features": 2, "bias": True,
                                "dtype": np.float32}, optional=("dtype",)),
    Entry("Conv2d", nn.Conv2d, {"in_channels": 2, "out_channels": 3, "kernel_size": 3,
                                "stride": 1, "padding": 0}),
    Entry("BatchNorm1d", nn.BatchNorm1d, {"num_features": 3, "eps": 1e-5, "momentum": 0.1,
                                          "affine": True, "track_running_stats": True,
                                          "device": "cpu", "dtype": np.float64, "bias": True},
          optional=("momentum", "device", "dtype")),
    Entry("BatchNorm2d", nn.BatchNorm2d, {"num_features": 3, "eps": 1e-5, "bias": False}),
    Entry("LayerNorm", nn.LayerNorm, {"normalized_shape": 3, "eps": 1e-5,
                                      "elementwise_affine": True, "bias": True,
                                      "device": None, "dtype": np.float32},
          optional=("device", "dtype")),
    Entry("GroupNorm", nn.GroupNorm, {"num_groups": 2, "num_channels": 4, "eps": 1e-5,
                                      "affine": True, "device": "cpu", "bias": False},
          optional=("device",)),
    Entry("fuse_linear_bn_eval", nn.utils.fuse_linear_bn_eval,
          {"linear": nn.Linear(3, 2).eval(), "bn": nn.BatchNorm1d(2).eval()}),
    Entry("fuse_conv_bn_eval", nn.utils.fuse_conv_bn_eval,
          {"conv": nn.Conv2d(1, 2, 3).eval(), "bn": nn.BatchNorm2d(2).eval(),
           "transpose": False}),
    # (a loader that yields garbage reaches the model, whose layers name themselves)
    Entry("update_bn", nn.utils.update_bn,
          {"loader": [_x(4, 3), (_x(3, 3), np.zeros(3))],
           "model": nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)), "device": None},
          names=("update_bn", "linear", "BatchNorm1d"), optional=("device",)),
    Entry("Dropout", nn.Dropout, {"p": 0.5}),
    Entry("LeakyReLU", nn.LeakyReLU, {"negative_slope": 0.1}),
    Entry("GELU", nn.GELU, {"approximate": "tanh"}, text=("approximate",)),
    Entry("Softplus", nn.Softplus, {"beta": 2.0, "threshold": 10.0}),
    Entry("MaxPool2d", nn.MaxPool2d, {"kernel_size": 3, "stride": 1, "padding": 1,
                                      "ceil_mode": True}, optional=("stride",)),
    Entry("AvgPool2d", nn.AvgPool2d, {"kernel_size": 2, "stride": 2, "padding": 0,
                                      "ceil_mode": False, "count_include_pad": True},
          optional=("stride",)),
    Entry("pooling forward", lambda layer, x: layer(x),
          {"layer": nn.MaxPool2d(2), "x": _x(1, 2, 4, 4)},
          names=("max_pool2d", "Tensor"), skip=("layer",)),
    Entry("ModuleList", nn.ModuleList, {"modules": [nn.ReLU()]}, optional=("modules",)),
    Entry("ModuleDict", nn.ModuleDict, {"modules": {"a": nn.ReLU()}}, optional=("modules",)),
    Entry("Flatten", lambda start_dim, end_dim, x: nn.Flatten(start_dim, end_dim)(x),
          {"start_dim": 1, "end_dim": -1, "x": _x(2, 3, 4)}),
    Entry("Sequential", lambda a, b: nn.Sequential(a, b), {"a": nn.ReLU(), "b": nn.Tanh()}),
    Entry("layer forward", lambda layer, x: layer(x), {"layer": nn.Linear(3, 2), "x": _x(2, 3)},
          names=("linear", "Linear", "Tensor"), skip=("layer",)),
    Entry("batchnorm forward", lambda layer, x: layer(x),
          {"layer": nn.BatchNorm1d(3), "x": _x(4, 3)},
          names=("batch_norm", "BatchNorm1d", "Tensor"), skip=("layer",)),
    Entry("manual_seed", nn.manual_seed, {"seed": 0}),
    # -- optimizers and data --------------------------------------------------------------------
    Entry("SGD", optim.SGD, {"params": _params(), "lr": 0.1, "momentum": 0.9,
                             "weight_decay": 0.0}),
    Entry("Adam", optim.Adam, {"params": _params(), "lr": 1e-3, "betas": (0.9, 0.999),
                               "eps": 1e-8, "weight_decay": 0.0}),
    Entry("StepLR", optim.StepLR, {"optimizer": _sgd(), "step_size": 2, "gamma": 0.5}),
    Entry("CosineAnnealingLR", optim.CosineAnnealingLR,
          {"optimizer": _sgd(), "T_max": 5, "eta_min": 0.0}),
    Entry("DataLoader", data.DataLoader,
          {"arrays": (np.zeros((6, 2)), np.zeros(6, dtype=np.int64)), "batch_size": 2,
           "shuffle": True, "seed": 0, "drop_last": False},
          optional=("seed",)),
    # -- checking -----------------------------------------------------------------------------
    Entry("gradcheck", lambda fn, inputs, eps, atol, rtol: mg.gradcheck(
        fn, inputs, eps=eps, atol=atol, rtol=rtol, raise_exception=False),
        {"fn": lambda t: (t * t).sum(), "inputs": (_x(3, grad=True),), "eps": 1e-6,
         "atol": 1e-5, "rtol": 1e-3}),
    Entry("draw_graph", lambda root, max_nodes, rankdir: mg.draw_graph(
        root, max_nodes=max_nodes, rankdir=rankdir),
        {"root": None, "max_nodes": 50, "rankdir": "LR"}, text=("rankdir",),
        optional=("max_nodes",), skip=("root",)),
]


OPERATORS = {"add", "mul", "pow", "matmul"}


def _fresh_args(entry: Entry) -> dict:
    """The entry's valid arguments, with the few that must be fresh per call rebuilt."""
    args = dict(entry.args)
    if entry.name == "backward":
        args["t"] = _x(3, grad=True) * 2
    if entry.name == "grad":
        leaf = _x(3, grad=True)
        args["outputs"], args["inputs"] = (leaf * leaf).sum(), leaf
    if entry.name == "draw_graph":
        leaf = _x(3, grad=True)
        args["root"] = (leaf * leaf).sum()
    return args


def _raised_by_minigrad(error: BaseException) -> bool:
    """Whether the innermost frame of ``error``'s traceback is minigrad's own code."""
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and frames[-1].filename.startswith(MINIGRAD_DIR)


def _problem(entry: Entry, changed: dict) -> str | None:
    """None if calling ``entry`` with ``changed`` replacing its arguments works or raises a
    clear error; else what is wrong."""
    args = _fresh_args(entry)
    args.update(changed)
    must_raise = any(
        any(value is g for g in (TEXT_GARBAGE if name in entry.text else GARBAGE))
        or (value is None and name not in entry.optional and name not in entry.text
            and name not in ("gradient",))
        for name, value in changed.items())
    described = ", ".join(f"{k}={v!r:.40}" for k, v in changed.items())
    default_dtype = mg.get_default_dtype()
    try:
        with np.errstate(all="ignore"):
            entry.call(**args)
    except CLEAR_CLASSES as error:
        message = str(error).lower()
        if not _raised_by_minigrad(error):
            where = traceback.extract_tb(error.__traceback__)[-1]
            return (f"{entry.name}({described}): {type(error).__name__} from "
                    f"{where.filename}:{where.lineno}: {error}")
        if not any(n.lower() in message for n in entry.mentions()):
            return f"{entry.name}({described}): message does not name it: {error}"
        return None
    except Exception as error:  # noqa: BLE001 - the point is to catch what should not happen
        return f"{entry.name}({described}): {type(error).__name__}: {error}"
    finally:
        mg.set_default_dtype(default_dtype)
    if must_raise:
        return f"{entry.name}({described}): accepted garbage"
    return None


def _perturbable(entry: Entry) -> list:
    return [name for name in entry.args if name not in entry.skip]


def _bad_values(entry: Entry, name: str) -> list:
    return (TEXT_GARBAGE if name in entry.text else GARBAGE) + (
        [] if name in entry.text else SUSPECT)


def bad_input_count() -> int:
    """How many single bad arguments the exhaustive test tries (for the record)."""
    return sum(len(_bad_values(e, n)) for e in ENTRIES for n in _perturbable(e))


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_every_single_bad_argument_gets_a_clear_error(entry):
    problems = [p for name in _perturbable(entry) for value in _bad_values(entry, name)
                if (p := _problem(entry, {name: value})) is not None]
    assert not problems, "\n".join(problems)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_random_pairs_of_bad_arguments_get_clear_errors(draw):
    entry = draw.draw(st.sampled_from([e for e in ENTRIES if len(_perturbable(e)) >= 1]))
    names = draw.draw(st.lists(st.sampled_from(_perturbable(entry)), min_size=1, max_size=2,
                               unique=True))
    changed = {name: draw.draw(st.sampled_from(_bad_values(entry, name))) for name in names}
    # An operator with no tensor on either side is Python's business ('a' + 'a'), not ours.
    assume(entry.name not in OPERATORS or len(names) < 2)
    problem = _problem(entry, changed)
    assert problem is None, problem


def test_the_catalogue_covers_the_public_api_and_its_valid_calls_work():
    """Each entry's own arguments work (so the tests above start from a valid call), and
    every public function and layer class is in the catalogue."""
    for entry in ENTRIES:
        entry.call(**_fresh_args(entry))
    covered = {e.name for e in ENTRIES}
    public = set(F.__all__) - {"FusedBatchNorm", "LogSoftmax", "NLLLoss", "Im2Col", "Col2Im",
                               "sigmoid", "tanh", "LeakyRelu", "Erf", "Softplus"}
    layers = {"Linear", "Conv2d", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm",
              "Dropout", "Flatten", "Sequential"}
    assert public | layers <= covered, sorted((public | layers) - covered)
    assert bad_input_count() > 1000
