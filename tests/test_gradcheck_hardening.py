"""gradcheck and its relatives check their own arguments before any work, and say what is wrong
with the inputs: NaN/inf in an input, a function that is not finite at the inputs."""
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
from minigrad.gradcheck import GradcheckArgumentError, gradcheck_module, locate_bad_gradient
from minigrad.gradcheck.suite import check_all, display_name


def leaf(values):
    return mg.tensor(np.array(values, dtype=np.float64), requires_grad=True)


class Counting:
    """``fn`` that counts its calls: an argument error must come before any evaluation."""

    def __init__(self, fn=lambda x, *rest: (x * x).sum()):
        self.fn, self.calls = fn, 0
        self.__name__ = "counted"

    def __call__(self, *args):
        self.calls += 1
        return self.fn(*args)


# Entry points taking fn, inputs and the shared settings; each name is what messages start with.
CHECKS = {"gradcheck": mg.gradcheck, "gradgradcheck": mg.gradgradcheck,
          "check_gradients": mg.check_gradients, "locate_bad_gradient": locate_bad_gradient}

# (argument, bad value, exception class, message fragment after "<owner>: <argument> must be")
BAD_SETTINGS = [
    ("eps", 0, ValueError, "a positive number"),
    ("eps", 0.0, ValueError, "a positive number"),
    ("eps", -1e-6, ValueError, "a positive number"),
    ("eps", float("nan"), ValueError, "a finite number"),
    ("eps", float("inf"), ValueError, "a finite number"),
    ("eps", "1e-6", TypeError, "a real number"),
    ("eps", None, TypeError, "a real number"),
    ("eps", True, TypeError, "a real number"),
    ("atol", -1, RuntimeError, "a finite number >= 0"),
    ("atol", -1e-12, RuntimeError, "a finite number >= 0"),
    ("atol", float("nan"), RuntimeError, "a finite number >= 0"),
    ("atol", float("inf"), RuntimeError, "a finite number >= 0"),
    ("atol", "0.1", TypeError, "a non-negative number"),
    ("atol", [1e-5], TypeError, "a non-negative number"),
    ("rtol", -1e-3, RuntimeError, "a finite number >= 0"),
    ("rtol", float("nan"), RuntimeError, "a finite number >= 0"),
    ("rtol", None, TypeError, "a non-negative number"),
    ("fast_mode", "yes", TypeError, "True or False"),
    ("fast_mode", 1, TypeError, "True or False"),
    ("fast_mode", None, TypeError, "True or False"),
]
FLAG_SETTINGS = [("raise_exception", 1), ("raise_exception", "no"), ("raise_exception", None),
                 ("locate", 0), ("locate", "yes")]


@pytest.mark.parametrize("owner", CHECKS)
@pytest.mark.parametrize("name, value, error, expected", BAD_SETTINGS)
def test_bad_settings_are_clear_errors_before_any_work(owner, name, value, error, expected):
    fn = Counting()
    with pytest.raises(error, match=f"^{owner}: {name} must be {expected}, got ") as raised:
        CHECKS[owner](fn, (leaf([1.0, 2.0]),), **{name: value})
    assert not isinstance(raised.value, mg.GradcheckError)
    assert fn.calls == 0


@pytest.mark.parametrize("owner", ["gradcheck", "gradgradcheck", "check_gradients"])
@pytest.mark.parametrize("name, value", FLAG_SETTINGS)
def test_flags_must_be_true_or_false(owner, name, value):
    fn = Counting()
    with pytest.raises(TypeError, match=f"^{owner}: {name} must be True or False, got "):
        CHECKS[owner](fn, (leaf([1.0, 2.0]),), **{name: value})
    assert fn.calls == 0


def test_a_negative_tolerance_is_both_runtime_error_and_value_error():
    # PyTorch raises RuntimeError; Python code expects ValueError: either except catches it.
    with pytest.raises(GradcheckArgumentError) as raised:
        mg.gradcheck(Counting(), leaf([1.0]), atol=-1)
    assert isinstance(raised.value, RuntimeError) and isinstance(raised.value, ValueError)


@pytest.mark.parametrize("owner", ["check_gradients", "locate_bad_gradient"])
@pytest.mark.parametrize("order, error", [(3, ValueError), (0, ValueError), ("2", TypeError),
                                          (True, TypeError), (1.0, TypeError)])
def test_order_is_one_or_two(owner, order, error):
    with pytest.raises(error, match=f"^{owner}: order must be "):
        CHECKS[owner](Counting(), leaf([1.0]), order=order)


@pytest.mark.parametrize("owner", CHECKS)
@pytest.mark.parametrize("inputs", [None, "abc", {"x": 1.0}, 3, 2.5, np.ones(3), {1, 2}],
                         ids=["None", "str", "dict", "int", "float", "ndarray", "set"])
def test_inputs_must_be_a_tensor_or_a_tuple_or_list(owner, inputs):
    fn = Counting()
    with pytest.raises(TypeError, match=f"^{owner}: inputs must be a Tensor or a tuple or list"):
        CHECKS[owner](fn, inputs)
    assert fn.calls == 0


@pytest.mark.parametrize("owner", CHECKS)
@pytest.mark.parametrize("fn", [None, 3, "sin", (lambda x: x,)], ids=["None", "int", "str", "tuple"])
def test_fn_must_be_callable(owner, fn):
    with pytest.raises(TypeError, match=f"^{owner}: fn must be a callable"):
        CHECKS[owner](fn, (leaf([1.0, 2.0]),))


def test_a_tuple_may_still_hold_other_values_for_fn():
    # As in PyTorch: an int, a flag, a string in the tuple reach fn unchanged.
    assert mg.gradcheck(lambda x, n, how: (x ** n).sum() if how == "sum" else x,
                        (leaf([1.0, 2.0]), 3, "sum"))


# -- NaN and inf -----------------------------------------------------------------------------------

@pytest.mark.parametrize("owner", CHECKS)
@pytest.mark.parametrize("bad, shown", [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_a_non_finite_input_is_named_with_its_index_before_any_evaluation(owner, bad, shown):
    values = np.arange(6.0).reshape(2, 3) + 1
    values[1, 2] = bad
    fn = Counting(lambda a, b: (a * b).sum())
    with pytest.raises(ValueError, match=rf"^{owner}: input 1 contains {shown} at index \(1, 2\) "
                                         rf"\(1 of 6 elements are not finite\)") as raised:
        CHECKS[owner](fn, (leaf(np.ones((2, 3))), leaf(values)))
    assert "deterministic" not in str(raised.value) and "Dropout" not in str(raised.value)
    assert fn.calls == 0


def test_an_inf_in_a_constant_input_is_fine_when_the_output_is_finite():
    # A mask of -inf added before exp is a legitimate constant: only checked inputs must be finite.
    mask = mg.tensor(np.array([0.0, -np.inf, 0.0]))
    assert mg.gradcheck(lambda x, m: (x + m).exp(), (leaf([0.1, 0.2, 0.3]), mask))


@pytest.mark.parametrize("owner", ["gradcheck", "gradgradcheck", "check_gradients"])
def test_a_function_not_finite_at_the_inputs_says_so_not_nondeterministic(owner):
    with pytest.raises(ValueError, match=rf"^{owner}: output 0 of log_of is not finite at the "
                                         rf"given inputs: it holds NaN at index \(0,\)") as raised:
        def log_of(x):
            return x.log()
        with np.errstate(invalid="ignore"):
            CHECKS[owner](log_of, leaf([-1.0, 2.0]))
    assert "deterministic" not in str(raised.value)


def test_a_second_output_that_is_inf_is_named():
    with pytest.raises(ValueError, match=r"output 1 of two is not finite.*inf at index \(1,\)"):
        def two(x):
            return x * 2, x / mg.tensor(np.array([1.0, 0.0]))
        with np.errstate(divide="ignore"):
            mg.gradcheck(two, leaf([1.0, 2.0]))


def test_gradgradcheck_names_a_first_derivative_that_is_not_finite():
    # sqrt is finite at 0, its derivative is not: the second-order check has nothing to compare.
    with np.errstate(divide="ignore", invalid="ignore"), \
            pytest.raises(ValueError, match=r"^gradgradcheck: gradient of input 0 of sqrt_of is "
                                            r"not finite.*at index \(0,\)"):
        def sqrt_of(x):
            return x.sqrt()
        mg.gradgradcheck(sqrt_of, leaf([0.0, 2.0]))


def test_a_random_function_is_still_called_nondeterministic():
    noise = np.random.default_rng(1)
    with pytest.raises(ValueError, match="^gradcheck: .* is not deterministic"):
        mg.gradcheck(lambda x: x * mg.Tensor(noise.standard_normal(x.shape)), leaf([1.0, 2.0]))


# -- gradcheck_module ------------------------------------------------------------------------------

def small_model():
    return mg.nn.Linear(3, 2, rng=0)


def batch():
    return mg.tensor(np.random.default_rng(0).standard_normal((4, 3)))


@pytest.mark.parametrize("name, value, error, expected", BAD_SETTINGS[:-1] + [
    ("fast_mode", "yes", TypeError, "True or False"), ("raise_exception", 1, TypeError,
                                                       "True or False"),
    ("locate", "no", TypeError, "True or False")])
def test_module_check_settings(name, value, error, expected):
    model = small_model()
    before = model.weight.data.copy()
    with pytest.raises(error, match=f"^gradcheck_module: {name} must be {expected}, got "):
        gradcheck_module(model, None, batch(), **{name: value})
    assert np.array_equal(model.weight.data, before)


@pytest.mark.parametrize("model", [None, 3, lambda x: x, "Linear"],
                         ids=["None", "int", "function", "str"])
def test_module_check_needs_a_module(model):
    with pytest.raises(TypeError, match="^gradcheck_module: model must be an nn.Module, got "):
        gradcheck_module(model, None, batch())


def test_module_check_loss_fn_and_batch():
    with pytest.raises(TypeError, match="^gradcheck_module: loss_fn must be None or a callable"):
        gradcheck_module(small_model(), "mse", batch())
    with pytest.raises(ValueError, match="^gradcheck_module: batch must be at least the model's "
                                         "input when loss_fn is given"):
        gradcheck_module(small_model(), mg.functional.mse_loss)


def test_module_check_names_a_parameter_holding_nan_and_restores_it():
    model = small_model()
    model.weight.data[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"^gradcheck_module: weight contains NaN at index "
                                         r"\(1, 0\)"):
        gradcheck_module(model, None, batch())
    assert model.weight.data.dtype == np.float64 and np.isnan(model.weight.data[1, 0])


def test_module_check_names_an_output_that_is_not_finite():
    x = batch()
    x.data[2, 1] = np.inf
    with pytest.raises(ValueError, match=r"^gradcheck_module: output 0 of Linear loss is not "
                                         r"finite at the given inputs"):
        gradcheck_module(small_model(), None, x)


# -- the suite -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, expected", [
    (dict(pattern=3), TypeError, "check_all: pattern must be None or a string"),
    (dict(pattern=b"Add"), TypeError, "check_all: pattern must be None or a string"),
    (dict(pattern=["Add"]), TypeError, "check_all: pattern must be None or a string"),
    (dict(pattern="Sqrt", fast_mode=None), TypeError, "check_all: fast_mode must be True or False"),
    (dict(pattern="Sqrt", fast_mode="fast"), TypeError, "check_all: fast_mode must be True or "
                                                        "False")])
def test_check_all_arguments(kwargs, error, expected):
    with pytest.raises(error, match=f"^{expected}"):
        check_all(**kwargs)


def test_check_all_with_an_unmatched_pattern_gives_no_rows_and_display_name_checks_kind():
    assert check_all("no such op") == []
    assert display_name("layer", mg.nn.Linear) == "nn.Linear"
    with pytest.raises(ValueError, match="^display_name: kind must be one of 'op', 'function', "
                                         "'layer', got 'class'"):
        display_name("class", mg.nn.Linear)
    with pytest.raises(TypeError, match="^display_name: target must be a class or function"):
        display_name("op", 3)


# -- PyTorch's exception classes where its gradcheck checks the same argument ---------------------

TORCH_SAME_ARGUMENT = [
    dict(atol=-1), dict(rtol=-1), dict(atol=float("nan")), dict(atol="x"),
    dict(inputs=None), dict(inputs="abc"), dict(inputs=3), dict(fn=3), dict(fn=None),
]


@pytest.mark.parametrize("bad", TORCH_SAME_ARGUMENT, ids=lambda bad: repr(bad))
def test_exception_classes_match_pytorch(bad):
    torch = pytest.importorskip("torch")

    def call(check, x, tensor_type):
        settings = {k: v for k, v in bad.items() if k not in ("fn", "inputs")}
        fn = bad.get("fn", lambda t: (t * t).sum())
        inputs = bad.get("inputs", (x,))
        try:
            check(fn, inputs, **settings)
        except Exception as error:  # noqa: BLE001 -- the class is what is compared
            return error
        raise AssertionError(f"no error for {bad} from {check}")

    theirs = call(torch.autograd.gradcheck,
                  torch.ones(2, dtype=torch.float64, requires_grad=True), torch.Tensor)
    ours = call(mg.gradcheck, leaf([1.0, 1.0]), mg.Tensor)
    assert isinstance(ours, type(theirs)), (ours, theirs)
    assert str(ours).startswith("gradcheck: ")


# -- random bad arguments --------------------------------------------------------------------------

NOT_A_NUMBER = st.one_of(st.none(), st.text(max_size=5), st.booleans(),
                         st.lists(st.floats(), max_size=2), st.just(np.ones(2)))
BAD_VALUES = {
    "eps": st.one_of(NOT_A_NUMBER, st.floats(max_value=0.0), st.integers(max_value=0),
                     st.sampled_from([float("inf"), float("nan")])),
    "atol": st.one_of(NOT_A_NUMBER, st.floats(max_value=-1e-300), st.integers(max_value=-1),
                      st.sampled_from([float("inf"), float("nan")])),
    "rtol": st.one_of(NOT_A_NUMBER, st.floats(max_value=-1e-300),
                      st.sampled_from([float("inf"), float("nan")])),
    "raise_exception": st.one_of(st.none(), st.integers(), st.text(max_size=3)),
    "fast_mode": st.one_of(st.none(), st.integers(), st.text(max_size=3), st.floats()),
    "inputs": st.one_of(st.none(), st.text(max_size=5), st.integers(), st.floats(),
                        st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
                        st.just(np.ones(2))),
    "fn": st.one_of(st.none(), st.integers(), st.text(max_size=5), st.floats()),
}


@settings(max_examples=150, deadline=None)
@given(data=st.data(), check=st.sampled_from(["gradcheck", "gradgradcheck"]))
def test_random_bad_arguments_raise_only_clear_errors(data, check):
    names = data.draw(st.lists(st.sampled_from(sorted(BAD_VALUES)), min_size=1, max_size=3,
                               unique=True))
    bad = {name: data.draw(BAD_VALUES[name], label=name) for name in names}
    fn = Counting()
    call = dict(fn=fn, inputs=(leaf([1.0, -2.0]),))
    call.update(bad)
    with pytest.raises((TypeError, ValueError)) as raised:
        CHECKS[check](call.pop("fn"), call.pop("inputs"), **call)
    message = str(raised.value)
    assert not isinstance(raised.value, mg.GradcheckError)
    assert message.startswith(f"{check}: ")
    assert any(message.startswith(f"{check}: {name} must be ") for name in names), message
    assert fn.calls == 0


@pytest.mark.parametrize("fast_mode", [False, True])
def test_a_function_not_finite_within_eps_is_reported_at_that_element(fast_mode):
    # sqrt is finite at 1e-7 but not at 1e-7 - eps: the NaN element must head the report.
    with np.errstate(invalid="ignore"):
        result = mg.check_gradients(lambda t: t.sqrt(), leaf([2.0, 1e-7, 3.0]),
                                    fast_mode=fast_mode)
    (failure,) = result.failures
    assert failure.max_rel_error == np.inf
    where = "" if fast_mode else r" at index \(1,\)"
    assert re.search(rf"the numeric gradient is not finite{where}: fn is not finite within eps",
                     failure.diagnosis)
    if not fast_mode:
        assert failure.failing == 1 and failure.worst[0].index == (1,)
