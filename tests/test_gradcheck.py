"""The gradient checker: right gradients pass, wrong ones fail with a report that points at the
wrong input, element and op; warnings for float32 and kinks; clear errors for misuse."""
import contextlib
import io
import pathlib
import re
import time
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
import minigrad.functional as F
from minigrad import nn
from minigrad.gradcheck import GradcheckWarning, locate_bad_gradient

RNG = np.random.default_rng(0)
X = RNG.standard_normal((4, 4))
BIAS = RNG.standard_normal((4, 1))


def leaf(array):
    return mg.tensor(array, requires_grad=True)


# -- custom Functions with a deliberately wrong backward ------------------------------------------

class ScaleByTwo(mg.Function):
    """2x, whose backward doubles twice."""
    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, grad):
        return grad * 4.0


class Square(mg.Function):
    """x^2 whose backward has the wrong sign."""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return -(grad * 2 * x)


class RowScale(mg.Function):
    """x * row (row broadcast over axis 0), whose backward returns the transposed gradient for
    x: right shape for a square x, wrong values."""
    @staticmethod
    def forward(ctx, x, row):
        ctx.save_for_backward(x, row)
        return x * row

    @staticmethod
    def backward(ctx, grad):
        x, row = ctx.saved_tensors
        return (grad * row).T, (grad * x).sum(axis=0, keepdims=True)


class AddBias(mg.Function):
    """x + bias, bias (4, 1) broadcast over axes 0 and 2 of a (3, 4, 2) x, whose backward sums
    over axis 0 but takes only the first entry along axis 2 instead of summing it."""
    @staticmethod
    def forward(ctx, x, bias):
        return x + bias

    @staticmethod
    def backward(ctx, grad):
        return grad, grad.sum(axis=0)[:, :1]


class OneWrongElement(mg.Function):
    """tanh whose gradient is wrong at exactly one element."""
    BAD = (2, 1)

    @staticmethod
    def forward(ctx, x):
        out = np.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        mask = np.ones(out.shape)
        mask[OneWrongElement.BAD] = 3.0
        return grad * (1 - out * out) * mask


def correct_scale(x):
    return 2 * x


def correct_square(x):
    return x * x


def correct_row_scale(x, row):
    return x * row


def correct_add_bias(x, bias):
    return x + bias


# name: (wrong op, its correct twin from built-in ops, inputs, index of the wrong input,
#        the diagnosis the report should give or None)
CASES = {
    "factor": (ScaleByTwo.apply, correct_scale, [X], 0, "constant factor: analytic = 2 x"),
    "sign": (Square.apply, correct_square, [X], 0, "sign is flipped"),
    "transposed": (RowScale.apply, correct_row_scale, [X, X[:1]], 0, "transposed"),
    "one broadcast axis": (AddBias.apply, correct_add_bias,
                           [RNG.standard_normal((3, 4, 2)), BIAS], 1, None),
}


def scalar_of(op):
    """A scalar function of the op's output, so the check's one random output weight w scales
    every gradient element the same way."""
    return lambda *xs: (op(*xs).tanh() * 1.5).sum()


def true_and_wrong_gradients(case):
    wrong_op, right_op, arrays, bad_input, _ = CASES[case]
    grads = []
    for op in (right_op, wrong_op):
        tensors = [leaf(a) for a in arrays]
        grads.append(mg.grad(scalar_of(op)(*tensors), tensors)[bad_input].data)
    return grads


@pytest.mark.parametrize("fast_mode", [False, True], ids=["full", "fast"])
@pytest.mark.parametrize("case", list(CASES))
def test_wrong_backward_fails_and_the_report_points_at_it(case, fast_mode):
    wrong_op, _, arrays, bad_input, diagnosis = CASES[case]
    with pytest.raises(mg.GradcheckError) as raised:
        mg.gradcheck(scalar_of(wrong_op), [leaf(a) for a in arrays], fast_mode=fast_mode)
    result = raised.value.result
    assert str(result) == str(raised.value)
    (failure,) = result.failures
    assert failure.input == f"input {bad_input}"
    assert failure.shape == arrays[bad_input].shape
    if diagnosis:
        assert diagnosis in failure.diagnosis
    true, wrong = true_and_wrong_gradients(case)
    element = failure.worst[0]
    weight = element.numeric / true[element.index]  # the check's random output weight
    assert element.analytic == pytest.approx(weight * wrong[element.index], rel=1e-9)
    assert wrong[element.index] != pytest.approx(true[element.index], rel=1e-3)
    if not fast_mode:  # full mode names the element furthest outside its tolerance
        excess = np.abs(weight * (wrong - true)) / (1e-5 + 1e-3 * np.abs(weight * true))
        assert element.index == np.unravel_index(np.argmax(excess), excess.shape)
        assert failure.failing == int(np.sum(excess > 1))


@pytest.mark.parametrize("fast_mode", [False, True], ids=["full", "fast"])
def test_fast_mode_bisection_finds_the_single_wrong_element(fast_mode):
    x = leaf(RNG.standard_normal((5, 7)))
    result = mg.check_gradients(lambda x: OneWrongElement.apply(x), [x], fast_mode=fast_mode)
    assert not result.ok
    assert result.failures[0].worst[0].index == OneWrongElement.BAD
    if not fast_mode:
        assert result.failures[0].failing == 1


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_bisection_finds_any_single_wrong_element(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=6), label="shape")
    bad = data.draw(st.tuples(*[st.integers(0, n - 1) for n in shape]), label="bad element")
    factor = data.draw(st.sampled_from([0.0, -1.0, 1.5, 10.0]), label="factor there")

    class WrongAtOneElement(mg.Function):
        @staticmethod
        def forward(ctx, x):
            return np.sin(x)

        @staticmethod
        def backward(ctx, grad):
            mask = np.ones(shape)
            mask[bad] = factor
            return grad * mg.Tensor(np.cos(ctx.inputs[0].data) * mask)

    x = leaf(np.random.default_rng(len(shape)).uniform(0.2, 1.2, shape))
    full = mg.check_gradients(WrongAtOneElement.apply, [x])
    assert [e.index for e in full.failures[0].worst] == [bad]
    # One random direction dilutes a single wrong element by about 1/sqrt(size): fast mode may
    # pass a small error (as PyTorch's does). When it does see the error, bisection must find it.
    fast = mg.check_gradients(WrongAtOneElement.apply, [x], fast_mode=True)
    if not fast.ok:
        assert [e.index for e in fast.failures[0].worst] == [bad]


@pytest.mark.parametrize("fast_mode", [False, True], ids=["full", "fast"])
def test_locate_names_the_custom_op_buried_in_a_composite(fast_mode):
    weight, x = leaf(RNG.standard_normal((4, 3))), leaf(RNG.standard_normal((5, 4)))

    def model(weight, x):
        hidden = (x @ weight).tanh()
        normalized = (hidden - hidden.mean(axis=0)) / (hidden.var(axis=0) + 1e-5).sqrt()
        return (Square.apply(normalized) * 0.5 + normalized).sigmoid().mean()

    with pytest.raises(mg.GradcheckError) as raised:
        mg.gradcheck(model, [weight, x], fast_mode=fast_mode, locate=True)
    result = raised.value.result
    assert {f.input for f in result.failures} == {"input 0", "input 1"}
    assert result.culprit.op == "Square"
    assert len(result.culprits) == 1
    assert "custom Function from test_gradcheck" in result.culprit.where
    assert "guilty op: Square" in str(result)
    # The op-level report is about the op's own input, at the values it saw.
    assert result.culprit.result.failures[0].shape == (5, 3)
    assert [c.op for c in locate_bad_gradient(model, [weight, x])] == ["Square"]


def test_inputs_in_any_memory_layout_are_perturbed():
    x = leaf(RNG.standard_normal((5, 4)))
    # the op after the transpose sees a Fortran-ordered view of the weight
    assert locate_bad_gradient(lambda x, w: (x @ w.T).tanh().sum(), [x, leaf(X)]) == []
    fortran_ordered = mg.Tensor(X.T, requires_grad=True)
    assert not fortran_ordered.data.flags.c_contiguous
    assert mg.gradcheck(lambda w: (x @ w).tanh().sum(), [fortran_ordered])


def test_locate_reports_a_gradient_lost_between_ops():
    x = leaf(X)
    result = mg.check_gradients(lambda x: x.tanh() * mg.Tensor(x.data), [x], locate=True)
    assert not result.ok and result.culprit is None
    assert all(c.status == "ok" for c in result.op_checks)
    assert "lost between ops" in str(result)


def test_locate_does_not_blame_an_op_sitting_on_a_kink():
    x = leaf(np.array([[0.0, 1.0], [-1.0, 2.0]]))
    with pytest.warns(GradcheckWarning, match="Relu"):
        result = mg.check_gradients(lambda x: (x.relu() * 2).sum(), [x], locate=True)
    assert not result.ok
    assert result.culprit is None
    assert [c.status for c in result.op_checks if c.op == "Relu"] == ["kink"]


def test_correct_composites_pass_in_both_modes():
    x, weight, bias = leaf(RNG.standard_normal((6, 3))), leaf(RNG.uniform(0.5, 1.5, 3)), \
        leaf(RNG.standard_normal(3))

    def batch_norm(x, weight, bias):
        mean, var = x.mean(axis=0), x.var(axis=0)
        return (x - mean) / (var + 1e-5).sqrt() * weight + bias

    for fast_mode in (False, True):
        result = mg.check_gradients(batch_norm, [x, weight, bias], fast_mode=fast_mode)
        assert result.ok and result.max_rel_error < 1e-5
        assert len(result.comparisons) == 3
    assert mg.gradcheck(batch_norm, [x, weight, bias])
    assert mg.gradgradcheck(batch_norm, [x, weight, bias])


def test_every_output_and_only_inputs_that_require_grad_are_checked():
    a, b = leaf(X), mg.tensor(X)  # b is a constant
    result = mg.check_gradients(lambda a, b: (a * b, ScaleByTwo.apply(a), a.sum()), [a, b])
    assert [(c.output, c.input, c.ok) for c in result.comparisons] == [
        ("output 0", "input 0", True), ("output 1", "input 0", False),
        ("output 2", "input 0", True)]


def test_returns_false_or_raises_as_asked():
    x = leaf(X)
    assert mg.gradcheck(ScaleByTwo.apply, [x], raise_exception=False) is False
    assert mg.gradcheck(correct_scale, [x]) is True
    result = mg.check_gradients(ScaleByTwo.apply, [x])
    assert not result and result.failures and result.max_rel_error == pytest.approx(0.5)
    with pytest.raises(mg.GradcheckError):
        mg.check_gradients(ScaleByTwo.apply, [x], raise_exception=True)


def test_report_is_a_short_table():
    text = str(mg.check_gradients(Square.apply, [leaf(X)]))
    lines = text.splitlines()
    assert lines[0].startswith("gradcheck FAILED (full mode")
    assert "16 of 16 elements wrong" in lines[1]
    assert lines[4].split() == ["index", "analytic", "numeric", "abs", "error", "rel", "error"]
    assert len(lines) <= 12


@settings(max_examples=15, deadline=None)
@given(factor=st.floats(-4, 4).filter(lambda c: abs(c - 1) > 0.01 and abs(c) > 0.01),
       fast_mode=st.booleans())
def test_diagnosis_recovers_any_constant_factor(factor, fast_mode):
    class Scaled(mg.Function):
        @staticmethod
        def forward(ctx, x):
            return np.sin(x)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.inputs
            return grad * mg.Tensor(np.cos(x.data) * factor)

    result = mg.check_gradients(Scaled.apply, [leaf(X)], fast_mode=fast_mode)
    diagnosis = result.failures[0].diagnosis
    if abs(factor + 1) < 1e-3:
        assert "sign is flipped" in diagnosis
    else:
        shown = diagnosis.split("analytic = ")[1].split(" x ")[0]
        value = eval(shown) if "/" in shown else float(shown)  # "1/4" or "2.5"
        assert value == pytest.approx(factor, rel=1e-5)


# -- second order ------------------------------------------------------------------------------

class CubeGrad(mg.Function):
    """3x^2 (Cube's derivative), whose own backward is wrong: 3x instead of 6x."""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return 3 * x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x


class Cube(mg.Function):
    @staticmethod
    def forward(ctx, x):
        return x ** 3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.inputs
        return grad * CubeGrad.apply(x)


@pytest.mark.parametrize("fast_mode", [False, True], ids=["full", "fast"])
def test_gradgradcheck_catches_a_wrong_double_backward(fast_mode):
    x = leaf(RNG.standard_normal((3, 2)))
    assert mg.gradcheck(Cube.apply, [x], fast_mode=fast_mode)
    with pytest.raises(mg.GradcheckError) as raised:
        mg.gradgradcheck(Cube.apply, [x], fast_mode=fast_mode, locate=True)
    result = raised.value.result
    assert str(result).startswith("gradgradcheck FAILED")
    assert result.failures[0].output == "gradient of input 0"
    assert "factor: analytic = 1/2 x" in result.failures[0].diagnosis
    assert result.culprit.op == "Cube"
    assert "double backward" in str(result)


# -- precision and kinks --------------------------------------------------------------------------

def test_float32_inputs_are_checked_in_float64_copies():
    x = mg.tensor(RNG.standard_normal(5), dtype=np.float32, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no precision warning: the computation runs in float64
        result = mg.check_gradients(lambda x: (x * x).tanh(), [x])
    assert result.ok and result.max_rel_error < 1e-6
    assert "float32: checked in float64 copies" in result.notes[0]
    assert x.dtype == np.float32  # the caller's tensor is untouched


def test_float32_inside_the_computation_is_warned_about():
    x = leaf(RNG.standard_normal(5))
    weight = mg.tensor(RNG.standard_normal(5), dtype=np.float32)
    with pytest.warns(GradcheckWarning, match=r"reduced precision \(Cast \(float32\)"):
        mg.check_gradients(lambda x: (x.astype(np.float32) * weight).tanh(), [x])


@pytest.mark.parametrize("fn, kink", [
    (lambda x: x.relu(), "relu's kink at 0"),
    (lambda x: x.abs(), "abs's kink at 0"),
    (lambda x: x.max(axis=1), "tie with the runner-up"),
])
def test_inputs_on_a_kink_are_warned_about(fn, kink):
    on_kink = leaf(np.array([[0.0, 1.5, 1.5], [2.0, -1.0, 0.5]]))
    with pytest.warns(GradcheckWarning, match=kink) as caught:
        mg.check_gradients(fn, [on_kink])
    assert "first at index (0" in str(caught[0].message)
    assert caught[0].filename == __file__  # the warning points at the caller
    away = leaf(np.array([[0.3, 1.5, -1.1], [2.0, -1.0, 0.5]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mg.gradcheck(fn, [away])


class Clip(mg.Function):
    """x clipped to [-1, 1]: kinks at -1 and 1."""
    @staticmethod
    def forward(ctx, x):
        return np.clip(x, -1.0, 1.0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.inputs
        return grad * mg.Tensor((np.abs(x.data) < 1).astype(x.dtype))


def test_a_custom_op_can_declare_its_kinks(monkeypatch):
    monkeypatch.setattr(Clip, "kink", ("values", "its kink"), raising=False)
    monkeypatch.setattr(Clip, "distance_to_kink",
                        staticmethod(lambda x, **attrs: np.abs(np.abs(x) - 1)), raising=False)
    with pytest.warns(GradcheckWarning, match=r"Clip: 1 of 3 values sit within 1e-05 of its "
                                              r"kink \(first at index \(2,\)\)"):
        mg.check_gradients(Clip.apply, [leaf(np.array([0.5, -2.0, 1.0]))])


# -- misuse ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("fn, returned", [
    (lambda x: x.data, "got ndarray"), (lambda x: 3.0, "got float"),
    (lambda x: (x * 2, "done"), "got str inside a tuple")])
def test_a_function_returning_a_non_tensor_is_a_clear_error(fn, returned):
    with pytest.raises(TypeError, match=f"must return a Tensor or a tuple of Tensors, {returned}"):
        mg.gradcheck(fn, [leaf(X)])


def test_a_function_without_floating_outputs_passes_as_in_pytorch():
    # No differentiable output: nothing to compare (torch.autograd.gradcheck passes it too).
    assert mg.gradcheck(lambda x: x > 0, [leaf(X)])


def test_inputs_none_of_which_requires_grad_are_a_clear_error():
    for check in (mg.gradcheck, mg.gradgradcheck):
        with pytest.raises(ValueError, match=r"none of the inputs requires grad.*a Tensor of shape "
                                             r"\(4, 4\) without requires_grad, int"):
            check(lambda x, n: x * n, [mg.tensor(X), 3])


def test_a_random_function_is_a_clear_error():
    noise = np.random.default_rng(1)
    with pytest.raises(ValueError, match="not deterministic"):
        mg.gradcheck(lambda x: x * mg.Tensor(noise.standard_normal(x.shape)), [leaf(X)])


def test_a_cut_graph_fails_with_zero_gradient_diagnosis():
    result = mg.check_gradients(lambda x: mg.Tensor(np.sin(x.data)), [leaf(X)])
    assert "all zeros" in result.failures[0].diagnosis


class Constant(mg.Function):
    """Ones, whatever x is, with a backward that claims a gradient."""
    @staticmethod
    def forward(ctx, x):
        return np.ones_like(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


def test_a_gradient_of_a_function_that_ignores_its_input_is_diagnosed():
    for fast_mode in (False, True):
        result = mg.check_gradients(Constant.apply, [leaf(X)], fast_mode=fast_mode)
        assert "numeric gradient is zero" in result.failures[0].diagnosis


def test_non_tensor_positional_inputs_pass_through():
    assert mg.gradcheck(lambda x, power, label: x ** power, [leaf(X), 3, "unused"])


# -- fast mode at scale --------------------------------------------------------------------------

def test_fast_mode_checks_100k_parameters_quickly():
    weight = leaf(RNG.standard_normal((320, 320)) / 18)
    x = mg.tensor(RNG.standard_normal((64, 320)))
    start = time.perf_counter()
    result = mg.check_gradients(lambda w: ((x @ w).tanh() @ w).sigmoid().mean(), [weight],
                                fast_mode=True)
    assert result.ok
    assert time.perf_counter() - start < 5  # about a second on one core; generous for CI


# -- models ---------------------------------------------------------------------------------------

def batch_norm_mlp(fused=False):
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8, fused=fused), nn.Tanh(),
                          nn.Linear(8, 3))
    model[1].weight.data[:] = RNG.uniform(0.5, 1.5, 8)
    return model


BATCH = (mg.tensor(RNG.standard_normal((16, 5))), RNG.integers(0, 3, 16))


class DoubleLayer(nn.Module):
    def forward(self, x):
        return ScaleByTwo.apply(x)


class CountingLayer(nn.Module):
    """Counts its calls by replacing its buffer tensor rather than updating it in place."""
    def __init__(self):
        super().__init__()
        self.register_buffer("calls", mg.Tensor(np.array(0.0)))

    def forward(self, x):
        self.calls = mg.Tensor(self.calls.data + 1)
        return x


@pytest.mark.parametrize("fused", [False, True], ids=["composed", "fused"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_module_check_passes_and_leaves_the_model_exactly_as_it_was(fused, mode):
    model = batch_norm_mlp(fused)
    model(BATCH[0])  # running statistics away from their initial values
    getattr(model, mode)()
    before = model.state_dict()
    arrays = [t.data for t in list(model.parameters()) + list(model.buffers())]
    result = mg.gradcheck_module(model, F.cross_entropy, *BATCH)
    assert result.ok and result.mode == "full"
    assert [c.input for c in result.comparisons] == [name for name, _ in model.named_parameters()]
    assert f"in {mode} mode" in result.notes[0] and "1.running_var" in result.notes[0]
    after = model.state_dict()
    for name in before:
        assert after[name].dtype == before[name].dtype
        np.testing.assert_array_equal(after[name], before[name])
    assert all(t.data is a for t, a in zip(list(model.parameters()) + list(model.buffers()),
                                            arrays))
    assert model.training == (mode == "train")


def test_module_check_runs_a_float32_model_in_float64_and_gives_it_back():
    model = batch_norm_mlp().to(np.float32)
    x = mg.tensor(BATCH[0].data, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no reduced-precision warning
        result = mg.gradcheck_module(model, F.cross_entropy, x, BATCH[1])
    assert result.ok and result.max_rel_error < 1e-4
    assert {p.dtype for p in model.parameters()} == {np.dtype(np.float32)}
    assert x.dtype == np.float32


def test_module_check_picks_fast_mode_for_large_models():
    small, large = nn.Linear(4, 3), nn.Linear(64, 64)
    assert mg.gradcheck_module(small, None, mg.tensor(RNG.standard_normal((2, 4)))).mode == "full"
    assert mg.gradcheck_module(large, None, mg.tensor(RNG.standard_normal((2, 64)))).mode == "fast"


def test_module_check_also_checks_batch_tensors_that_require_grad():
    x = leaf(RNG.standard_normal((3, 4)))
    result = mg.gradcheck_module(nn.Linear(4, 2), None, x)
    assert [c.input for c in result.comparisons] == ["weight", "bias", "batch[0]"]
    assert [c.output for c in result.comparisons] == ["output 0"] * 3


def test_module_check_restores_a_buffer_the_layer_replaced():
    model = nn.Sequential(CountingLayer(), nn.Linear(3, 2))
    assert mg.gradcheck_module(model, None, mg.tensor(RNG.standard_normal((2, 3))))
    assert model[0].calls.item() == 0.0


def test_module_check_refuses_dropout_in_training_mode():
    model = nn.Sequential(nn.Linear(5, 8), nn.Dropout(0.5), nn.Linear(8, 3))
    with pytest.raises(ValueError, match="not deterministic.*model.eval"):
        mg.gradcheck_module(model, F.cross_entropy, *BATCH)
    assert mg.gradcheck_module(model.eval(), F.cross_entropy, *BATCH)


def test_module_check_names_the_layer_holding_the_wrong_op():
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), DoubleLayer(), nn.Linear(8, 3))
    with pytest.raises(mg.GradcheckError) as raised:
        mg.gradcheck_module(model, F.cross_entropy, *BATCH, locate=True)
    result = raised.value.result
    assert {c.input for c in result.failures} == {"0.weight", "1.weight", "1.bias"}
    # the gradient of 3.weight does not pass through the wrong op: it is right
    assert [c.ok for c in result.comparisons if c.input.startswith("3.")] == [True, True]
    assert result.culprit.op == "ScaleByTwo"
    assert "inside 2 (DoubleLayer)" in result.culprit.where


def test_module_check_needs_something_to_check():
    with pytest.raises(ValueError, match="ReLU has no parameter that requires grad"):
        mg.gradcheck_module(nn.ReLU(), None, mg.tensor(X))


# -- the documentation's examples -----------------------------------------------------------------

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "gradcheck.md"
# A python block followed by a text block is an example and the output it prints.
EXAMPLE = re.compile(r"```python\n((?:(?!```).)*)```\s*```text\n((?:(?!```).)*)```", re.S)
# Round-off-sized numbers (1e-6 and below) may differ in their digits between machines, and a
# graph's node count changes with the library functions' internals.
TINY = re.compile(r"\d(\.\d+)?e-(0[6-9]|[1-9]\d)|node \d+ of \d+")


def test_the_examples_in_the_docs_print_what_the_docs_show():
    examples = EXAMPLE.findall(DOCS.read_text())
    assert len(examples) >= 5
    namespace = {"__name__": "docs_gradcheck"}
    for code, shown in examples:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, str(DOCS), "exec"), namespace)
        assert TINY.sub("tiny", printed.getvalue()) == TINY.sub("tiny", shown)
