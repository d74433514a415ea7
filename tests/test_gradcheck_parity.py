"""gradcheck's sub-checks, as PyTorch's gradcheck has them: a backward linear in its output
gradient, a reentrant backward (``nondet_tol``), outputs that keep shape and dtype under
perturbation, functions with no differentiable output, the check's own arguments, and modules
left as the check found them. Each planted bug is a custom Function, checked here and (where
torch is installed) by ``torch.autograd.gradcheck`` on the same bug, for the same verdict."""
import functools
import importlib
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
from minigrad import nn
from minigrad.gradcheck import (GradcheckArgumentError, check_gradients, gradcheck_module,
                                locate_bad_gradient)

README = Path(__file__).resolve().parents[1] / "README.md"
X = np.array([0.7, -1.3, 0.4, 1.1])


def leaf(values=X):
    return mg.tensor(np.array(values, dtype=np.float64), requires_grad=True)


def torch_leaf(values=X):
    torch = pytest.importorskip("torch")
    return torch.tensor(np.array(values, dtype=np.float64), requires_grad=True)


# -- planted backward bugs, in minigrad and in torch -------------------------------------------
# Each forward is x * x; each backward is 2 x grad with one mistake.

def square_backward(mistake):
    """The backward ``mistake(grad, x)`` of x * x, as a minigrad Function."""
    class Planted(mg.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return mistake(grad, x)

    Planted.__name__ = Planted.__qualname__ = mistake.__name__
    return Planted


def torch_square_backward(mistake):
    torch = pytest.importorskip("torch")

    class Planted(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return mistake(grad, x)

    return Planted


def IgnoresGrad(grad, x):  # noqa: N802 -- named as the op it plants
    return 2 * x


def OffsetGrad(grad, x):  # noqa: N802
    return grad * 2 * x + 1


def TinyOffset(grad, x):  # noqa: N802 -- within the comparison's tolerance, still not linear
    return grad * 2 * x + 1e-9


def Correct(grad, x):  # noqa: N802
    return grad * 2 * x


_noise = np.random.default_rng(7)


def Noisy(grad, x):  # noqa: N802 -- right to 1e-10, but different on every backward
    return grad * 2 * x * (1 + 1e-10 * float(_noise.standard_normal()))


def torch_gradcheck_error():
    pytest.importorskip("torch")
    # (torch.autograd.gradcheck is the function; its module holds the error class)
    return importlib.import_module("torch.autograd.gradcheck").GradcheckError


def torch_verdict(mistake, reduce, **settings):
    """(passed, message) of torch's gradcheck on the same planted bug."""
    torch = pytest.importorskip("torch")
    op = torch_square_backward(mistake)
    fn = (lambda x: op.apply(x).sum()) if reduce else op.apply
    try:
        return torch.autograd.gradcheck(fn, (torch_leaf(),), **settings), ""
    except torch_gradcheck_error() as error:
        return False, str(error)


def minigrad_verdict(mistake, reduce, **settings):
    op = square_backward(mistake)
    fn = (lambda x: op.apply(x).sum()) if reduce else op.apply
    result = check_gradients(fn, (leaf(),), **settings)
    return bool(result), result


# -- 1. backward linear in the output gradient --------------------------------------------------

@pytest.mark.parametrize("fast_mode", [False, True])
@pytest.mark.parametrize("mistake", [IgnoresGrad, OffsetGrad, TinyOffset])
@pytest.mark.parametrize("reduce", [True, False], ids=["sum", "elementwise"])
def test_a_backward_that_ignores_or_offsets_grad_fails_as_in_torch(mistake, reduce, fast_mode):
    passed, result = minigrad_verdict(mistake, reduce, fast_mode=fast_mode)
    assert not passed
    assert any("backward not multiplied by grad_output" in p for p in result.problems)
    with pytest.raises(mg.GradcheckError, match="backward not multiplied by grad_output"):
        mg.gradcheck(square_backward(mistake).apply, (leaf(),), fast_mode=fast_mode)
    torch_passed, message = torch_verdict(mistake, reduce, fast_mode=fast_mode)
    assert torch_passed == passed
    if mistake is TinyOffset or (reduce and mistake is IgnoresGrad):
        # (the others fail torch's Jacobian comparison first, which stops its check)
        assert "backward not multiplied by grad_output" in message


def test_a_tiny_offset_passes_the_comparison_but_not_the_linearity_check():
    _, result = minigrad_verdict(TinyOffset, reduce=False)
    assert all(c.ok for c in result.comparisons)
    assert len(result.problems) == 1 and "1e-09" in result.problems[0]
    assert "locate=True" in str(result)


def test_a_backward_not_linear_in_grad_is_caught():
    # abs(grad): zero in gives zero out, but -2v does not give -2 x the answer for v.
    # (torch 2.13's gradcheck passes it, in both modes: it only checks a zero grad_output.)
    def AbsGrad(grad, x):  # noqa: N802
        return abs(grad) * 2 * x

    passed, result = minigrad_verdict(AbsGrad, reduce=False)
    assert not passed
    assert any("backward not linear in grad_output" in p for p in result.problems)


@pytest.mark.parametrize("mistake", [IgnoresGrad, OffsetGrad, Noisy])
def test_localisation_names_the_op_whose_backward_fails_a_sub_check(mistake):
    op = square_backward(mistake)
    with pytest.raises(mg.GradcheckError) as raised:
        mg.gradcheck(lambda x: (op.apply(x.tanh()) * 3).sum(), (leaf(),), locate=True)
    report = str(raised.value)
    assert f"guilty op: {mistake.__name__}," in report
    assert raised.value.result.culprit.op == mistake.__name__
    culprits = locate_bad_gradient(lambda x: (op.apply(x.tanh()) * 3).sum(), (leaf(),))
    assert [c.op for c in culprits] == [mistake.__name__]


def test_a_correct_backward_passes_every_sub_check_as_in_torch():
    for fast_mode in (False, True):
        passed, result = minigrad_verdict(Correct, reduce=False, fast_mode=fast_mode)
        assert passed and result.problems == []
        assert torch_verdict(Correct, reduce=False, fast_mode=fast_mode)[0]
    assert mg.gradgradcheck(lambda x: (x.tanh() * x).sum(), (leaf(),))


@settings(max_examples=15, deadline=None)
@given(offset=st.floats(1e-12, 1e3) | st.floats(-1e3, -1e-12),
       shape=st.sampled_from([(), (3,), (2, 3)]))
def test_any_offset_is_caught_and_no_offset_passes(offset, shape):
    values = np.random.default_rng(3).uniform(0.5, 1.5, shape)

    def Shifted(grad, x):  # noqa: N802
        return grad * 2 * x + offset

    assert not check_gradients(square_backward(Shifted).apply, (leaf(values),))
    assert check_gradients(square_backward(Correct).apply, (leaf(values),))


# -- 2. reentrant backward: nondet_tol -------------------------------------------------------

@pytest.mark.parametrize("fast_mode", [False, True])
def test_a_nondeterministic_backward_fails_at_nondet_tol_zero_as_in_torch(fast_mode):
    passed, result = minigrad_verdict(Noisy, reduce=False, fast_mode=fast_mode)
    assert not passed
    assert all(c.ok for c in result.comparisons)  # the gradient itself is right
    assert any("backward is not reentrant" in p and "nondet_tol=0" in p for p in result.problems)
    torch_passed, message = torch_verdict(Noisy, reduce=False, fast_mode=fast_mode)
    assert not torch_passed and "not reentrant" in message


@pytest.mark.parametrize("fast_mode", [False, True])
def test_nondet_tol_tolerates_a_small_nondeterminism_as_in_torch(fast_mode):
    assert mg.gradcheck(square_backward(Noisy).apply, (leaf(),), nondet_tol=1e-6,
                        fast_mode=fast_mode)
    assert mg.gradcheck(square_backward(Noisy).apply, (leaf(),), nondet_tol=float("inf"))
    assert torch_verdict(Noisy, reduce=False, nondet_tol=1e-6, fast_mode=fast_mode)[0]


def test_gradgradcheck_and_gradcheck_module_take_nondet_tol():
    # Noisy's first derivatives are not reentrant: gradgradcheck sees that they differ from
    # one evaluation to the next (a random function), or tolerates it with nondet_tol.
    op = square_backward(Noisy)
    assert mg.gradgradcheck(op.apply, (leaf(),), nondet_tol=1e-6)
    model = nn.Linear(4, 2, rng=0)
    assert gradcheck_module(model, None, mg.tensor(X[None]), nondet_tol=0.0)


# -- 3. outputs that change shape or dtype under perturbation ---------------------------------

def changes_when_perturbed(change):
    """fn returning x at the given inputs and ``change(x)`` anywhere else."""
    at = X.copy()
    return lambda x: x * 1.0 if np.array_equal(x.data, at) else change(x)


CHANGES = {
    "shape": (lambda x: x[:2], r"output 0 changed shape from \(4,\) to \(2,\)"),
    "same size": (lambda x: x.reshape(2, 2), r"changed shape from \(4,\) to \(2, 2\)"),
    "dtype": (lambda x: x.astype(np.float32), "changed dtype from float64 to float32"),
    "count": (lambda x: (x, x), "returned 2 outputs instead of 1"),
}


@pytest.mark.parametrize("fast_mode", [False, True])
@pytest.mark.parametrize("kind", CHANGES)
def test_an_output_that_changes_under_perturbation_is_a_clear_gradcheck_error(kind, fast_mode):
    change, message = CHANGES[kind]
    x = leaf()
    with pytest.raises(mg.GradcheckError, match=message + ".* when input 0 is perturbed") as e:
        mg.gradcheck(changes_when_perturbed(change), (x,), fast_mode=fast_mode)
    assert "keep its shape and dtype" in str(e.value)
    assert not mg.gradcheck(changes_when_perturbed(change), (x,), fast_mode=fast_mode,
                            raise_exception=False)
    assert np.array_equal(x.data, X)  # the caller's input untouched


def test_torch_does_not_pass_an_output_whose_size_changes():
    torch = pytest.importorskip("torch")
    at = torch.tensor(X)

    def fn(x):
        return x * 1.0 if torch.equal(x.detach(), at) else x[:2]

    with pytest.raises(RuntimeError):  # torch: a raw size mismatch, minigrad: the message above
        torch.autograd.gradcheck(fn, (torch_leaf(),))


def test_an_output_that_changes_between_two_evaluations_says_so():
    calls = []

    def fn(x):
        calls.append(1)
        return x * 1.0 if len(calls) == 1 else x[:2]

    with pytest.raises(mg.GradcheckError, match="when evaluated again at the same inputs"):
        mg.gradcheck(fn, (leaf(),))


# -- 4. no differentiable output ----------------------------------------------------------------

NOT_DIFFERENTIABLE = {
    "argmax": (lambda x: x.argmax(), lambda x: x.argmax()),
    "comparison": (lambda x: x > 0, lambda x: x > 0),
    "rounded to integers": (lambda x: (x * 1e7).astype(np.int64),
                            lambda x: (x * 1e7).round().long()),
    "no outputs": (lambda x: (), lambda x: ()),
    "a constant": (lambda x: mg.zeros(3), lambda x: __import__("torch").zeros(3, dtype=x.dtype)),
    "a differentiable output beside an integer one": (
        lambda x: (x * 2, x.argmax()), lambda x: (x * 2, x.argmax())),
}


@pytest.mark.parametrize("case", NOT_DIFFERENTIABLE)
def test_a_function_with_no_differentiable_output_passes_as_in_torch(case):
    fn, torch_fn = NOT_DIFFERENTIABLE[case]
    for fast_mode in (False, True):
        assert mg.gradcheck(fn, (leaf(),), fast_mode=fast_mode)
    if case != "rounded to integers":  # torch's fast mode fails that one, its full mode passes
        assert mg.gradgradcheck(fn, (leaf(),))
    torch = pytest.importorskip("torch")
    if case != "comparison":  # torch cannot subtract booleans: a raw RuntimeError
        assert torch.autograd.gradcheck(torch_fn, (torch_leaf(),))


def test_the_result_says_there_was_nothing_to_differentiate():
    result = check_gradients(lambda x: x > 0, (leaf(),))
    assert result and result.comparisons == []
    assert "no floating-point output (dtypes ['bool'])" in str(result)


def test_a_float_output_cut_from_the_graph_fails_as_in_torch():
    # Its gradient is zero for autograd; the numeric one is not: PyTorch's "numerical gradient
    # for function expected to be zero".
    assert not mg.gradcheck(lambda x: x.detach() * 2, (leaf(),), raise_exception=False)
    torch = pytest.importorskip("torch")
    with pytest.raises(torch_gradcheck_error(), match="expected to be zero"):
        torch.autograd.gradcheck(lambda x: x.detach() * 2, (torch_leaf(),))


# -- 5. the new keyword is checked before any work ------------------------------------------

class Counting:
    def __init__(self):
        self.calls = 0
        self.__name__ = "counted"

    def __call__(self, x, *rest):
        self.calls += 1
        return (x * x).sum()


CHECKS = {"gradcheck": mg.gradcheck, "gradgradcheck": mg.gradgradcheck,
          "check_gradients": check_gradients, "locate_bad_gradient": locate_bad_gradient,
          "gradcheck_module": lambda fn, inputs, **kw: gradcheck_module(
              nn.Linear(2, 1, rng=0), None, mg.tensor([[1.0, 2.0]]), **kw)}


@pytest.mark.parametrize("owner", CHECKS)
@pytest.mark.parametrize("value, error, expected", [
    (-1e-9, GradcheckArgumentError, r"a number >= 0 \(inf: no check\)"),
    (float("nan"), GradcheckArgumentError, r"a number >= 0 \(inf: no check\)"),
    ("0", TypeError, "a non-negative number"),
    (None, TypeError, "a non-negative number"),
    (True, TypeError, "a non-negative number")])
def test_nondet_tol_is_checked_before_any_work(owner, value, error, expected):
    fn = Counting()
    with pytest.raises(error, match=f"^{owner}: nondet_tol must be {expected}, got ") as raised:
        CHECKS[owner](fn, (leaf([1.0, 2.0]),), nondet_tol=value)
    if error is GradcheckArgumentError:  # PyTorch's RuntimeError, Python's ValueError
        assert isinstance(raised.value, RuntimeError) and isinstance(raised.value, ValueError)
    assert not isinstance(raised.value, mg.GradcheckError)
    assert fn.calls == 0


@pytest.mark.parametrize("owner", CHECKS)
@pytest.mark.parametrize("value", [0, 0.0, 1e-6, float("inf"), np.float32(1e-3)])
def test_nondet_tol_accepts_numbers_from_zero_to_inf(owner, value):
    assert CHECKS[owner](Counting(), (leaf([1.0, 2.0]),), nondet_tol=value) is not None


@settings(max_examples=40, deadline=None)
@given(value=st.floats(max_value=-1e-300) | st.integers(max_value=-1) | st.just(-10 ** 400))
def test_any_negative_nondet_tol_is_a_clear_error(value):
    fn = Counting()
    with pytest.raises(GradcheckArgumentError, match="^gradcheck: nondet_tol must be a number"):
        mg.gradcheck(fn, (leaf([1.0, 2.0]),), nondet_tol=value)
    assert fn.calls == 0


def test_an_int_too_large_for_a_float_is_an_infinite_nondet_tol():
    assert mg.gradcheck(square_backward(Noisy).apply, (leaf(),), nondet_tol=10 ** 400)


# -- 6. modules are left as the check found them ----------------------------------------------

def readme_snippet():
    """The README's first code block, split at its gradcheck line."""
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    lines = block.splitlines()
    at = next(i for i, line in enumerate(lines) if "mg.gradcheck(" in line)
    return "\n".join(lines[:at]), lines[at]


def test_the_readme_gradcheck_leaves_the_batchnorm_as_it_was():
    before, check = readme_snippet()
    assert "nn.BatchNorm1d" in before and "bn(x)" in check
    namespace = {}
    exec(compile(before, str(README), "exec"), namespace)
    bn = namespace["bn"]
    assert bn.training and int(bn.num_batches_tracked.data) == 1
    state, buffers = bn.state_dict(), [bn.running_mean, bn.running_var, bn.num_batches_tracked]
    arrays = [b.data for b in buffers]
    grad = namespace["x"].grad.data.copy()
    exec(compile(check.replace("print(", "result = (", 1), str(README), "exec"), namespace)
    assert namespace["result"] is True
    assert int(bn.num_batches_tracked.data) == 1  # not 15
    assert all(np.array_equal(v, state[k]) for k, v in bn.state_dict().items())
    assert [bn.running_mean, bn.running_var, bn.num_batches_tracked] == buffers
    assert all(b.data is a for b, a in zip(buffers, arrays))
    assert np.array_equal(namespace["x"].grad.data, grad)


def training_model():
    return nn.Sequential(nn.Linear(3, 4, rng=0), nn.BatchNorm1d(4), nn.ReLU(),
                         nn.Linear(4, 2, rng=1), nn.BatchNorm1d(2))


BATCH = np.random.default_rng(5).standard_normal((6, 3))


class Holder:
    def __init__(self, model):
        self.layers = [model]

    def loss(self, x):
        return (self.layers[0](x) ** 2).sum()


SHARED = training_model()


def global_loss(x):
    return (SHARED(x) ** 2).sum()


def ways_to_reach(model):
    """fn reaching ``model`` through a closure, a bound method's self (holding it in a list),
    a partial's argument, a default, the model itself, and an input."""
    def closure(x):
        return (model(x) ** 2).sum()

    def default(x, m=model):
        return (m(x) ** 2).sum()

    return {"closure": (closure, ()), "bound method": (Holder(model).loss, ()),
            "partial": (functools.partial(lambda m, x: (m(x) ** 2).sum(), model), ()),
            "default": (default, ()), "the model": (lambda x: model(x), ()),
            "an input": (lambda x, m: (m(x) ** 2).sum(), (model,))}


@pytest.mark.parametrize("way", list(ways_to_reach(None)) + ["a global"])
def test_every_module_fn_reaches_keeps_its_buffers(way):
    if way == "a global":
        model, (fn, rest) = SHARED, (global_loss, ())
    else:
        model = training_model()
        fn, rest = ways_to_reach(model)[way]
    model(mg.tensor(BATCH))  # one batch seen
    state = model.state_dict()
    for check in (lambda: mg.gradcheck(fn, (leaf(BATCH), *rest)),
                  lambda: mg.gradcheck(fn, (leaf(BATCH), *rest), fast_mode=True),
                  lambda: locate_bad_gradient(fn, (leaf(BATCH), *rest))):
        check()
        after = model.state_dict()
        assert all(np.array_equal(after[k], state[k]) for k in state), way
    assert int(model[1].num_batches_tracked.data) == 1


def test_modules_are_restored_after_a_failed_check_and_after_gradgradcheck():
    bn = nn.BatchNorm1d(4)
    op = square_backward(OffsetGrad)
    state = bn.state_dict()
    with pytest.raises(mg.GradcheckError, match="guilty op: OffsetGrad"):
        mg.gradcheck(lambda x: bn(op.apply(x)), (leaf(BATCH[:, :3] @ np.ones((3, 4))),),
                     locate=True)
    assert mg.gradgradcheck(lambda x: (bn(x) ** 3).sum(),
                            (leaf(np.random.default_rng(1).standard_normal((5, 4))),))
    assert all(np.array_equal(bn.state_dict()[k], state[k]) for k in state)
    assert int(bn.num_batches_tracked.data) == 0


def test_gradcheck_module_leaves_the_model_and_the_loss_modules_as_they_were():
    model, head = training_model(), nn.BatchNorm1d(2)
    x = mg.tensor(BATCH)
    states = model.state_dict(), head.state_dict()
    assert gradcheck_module(model, lambda out: (head(out) ** 2).sum(), x)
    assert gradcheck_module(model, None, x, fast_mode=True)
    for module, state in zip((model, head), states):
        assert all(np.array_equal(module.state_dict()[k], state[k]) for k in state)
    assert int(model[1].num_batches_tracked.data) == 0 and int(head.num_batches_tracked.data) == 0


def test_the_report_says_the_buffers_were_restored():
    bn = nn.BatchNorm1d(3)
    result = check_gradients(lambda x: (bn(x) ** 3).sum(), (leaf(BATCH),))
    assert result and "buffers of the modules fn uses (BatchNorm1d) restored" in str(result)
