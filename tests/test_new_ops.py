"""sin, cos, maximum, minimum, logsumexp, min, argmax, argmin, builtin abs, reductions of 0-d
tensors and item(): values and gradients against PyTorch 2.13 (float64), finite differences
over hypothesis-drawn shapes, second order where the op is smooth, and bad arguments."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigrad as mg
from conftest import FAST, axes, distinct, shapes, values
from test_vs_torch import compare  # values, gradients and (order=2) Hessian-vector products

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)


def signed(*shape):
    return RNG.uniform(0.5, 1.5, shape) * RNG.choice([-1.0, 1.0], shape)


# -- against PyTorch ----------------------------------------------------------------------------

CASES = {
    "sin": (lambda x: x.sin(), torch.sin, [signed(3, 4) * 3], 2),
    "cos": (lambda x: mg.cos(x), torch.cos, [signed(3, 4) * 3], 2),
    "logsumexp axis 1": (lambda x: x.logsumexp(axis=1), lambda x: x.logsumexp(1),
                         [signed(3, 4)], 2),
    "logsumexp all, keepdims": (lambda x: mg.logsumexp(x, keepdims=True),
                                lambda x: x.logsumexp((0, 1), keepdim=True), [signed(3, 4)], 2),
    "logsumexp axes (0, 2)": (lambda x: x.logsumexp((0, -1)), lambda x: x.logsumexp((0, 2)),
                              [signed(2, 3, 4)], 2),
    "logsumexp large": (lambda x: x.logsumexp(0), lambda x: x.logsumexp(0),
                        [np.array([1000.0, 1001.0, -1000.0])], 2),
    "maximum broadcast": (lambda a, b: mg.maximum(a, b), torch.maximum,
                          [signed(2, 3), signed(3)], 1),
    "minimum broadcast": (lambda a, b: a.minimum(b), torch.minimum,
                          [signed(2, 1), signed(1, 3)], 1),
    "maximum ties": (mg.maximum, torch.maximum,
                     [np.array([1.0, 2.0, 3.0, -1.0]), np.array([1.0, 1.0, 4.0, -1.0])], 1),
    "minimum ties": (mg.minimum, torch.minimum,
                     [np.array([1.0, 2.0, 3.0, -1.0]), np.array([1.0, 1.0, 4.0, -1.0])], 1),
    "min axis 1 ties (amin)": (lambda x: x.min(axis=1), lambda x: x.amin(1),
                               [np.array([[1.0, 3.0, 1.0], [2.0, 0.5, 0.7]])], 1),
    "min all ties": (lambda x: x.min(), torch.min, [np.array([[1.0, 3.0, 1.0], [1.0, 2, 5]])], 1),
    "min keepdims": (lambda x: x.min(axis=0, keepdims=True), lambda x: x.amin(0, keepdim=True),
                     [signed(3, 4)], 1),
}


@pytest.mark.parametrize("name", CASES)
def test_values_and_gradients_match_torch(name):
    mg_fn, torch_fn, arrays, order = CASES[name]
    compare(mg_fn, torch_fn, *arrays, order=order)


def test_maximum_and_minimum_with_a_number_and_with_nan_match_torch():
    x = signed(5)
    compare(lambda a: mg.maximum(a, 0.7), lambda a: torch.clamp_min(a, 0.7), x)
    compare(lambda a: mg.minimum(0.7, a), lambda a: torch.clamp_max(a, 0.7), x)
    compare(mg.maximum, torch.maximum, np.array([np.nan, 1.0]), np.array([2.0, np.nan]))


def test_logsumexp_of_infinities_and_of_no_values_matches_torch():
    for array in (np.array([-np.inf, -np.inf]), np.array([np.inf, 1.0]),
                  np.array([-np.inf, 2.0])):
        np.testing.assert_array_equal(mg.tensor(array).logsumexp(0).data,
                                      torch.tensor(array).logsumexp(0).numpy())
    np.testing.assert_array_equal(mg.zeros(0, 3).logsumexp(0).data, [-np.inf] * 3)
    compare(lambda x: x.logsumexp(0), lambda x: x.logsumexp(0), np.array([-np.inf, 2.0]))


def test_logsumexp_of_integers_is_the_default_float_and_float32_stays_float32(default_float32):
    ints = mg.tensor([1, 2, 3])
    out = ints.logsumexp(0)
    assert out.dtype == np.float32 and not out.requires_grad
    np.testing.assert_allclose(out.data, torch.tensor([1, 2, 3]).logsumexp(0).numpy())
    x = mg.tensor(np.float32([1.0, 2.0]), requires_grad=True)
    for out in (x.sin(), x.cos(), x.logsumexp(), x.min(), mg.maximum(x, 1.5), x.minimum(1.5)):
        assert out.dtype == np.float32
        out.sum().backward()
        assert x.grad.dtype == np.float32


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_and_argmin_match_torch(name):
    x = np.array([[1.0, 3.0, 3.0], [2.0, -1.0, -1.0], [np.nan, 0.0, 5.0]])
    mine, theirs = mg.tensor(x, requires_grad=True), torch.tensor(x)
    for kwargs, torch_kwargs in (({}, {}), ({"axis": 1}, {"dim": 1}),
                                 ({"axis": -2, "keepdims": True}, {"dim": -2, "keepdim": True}),
                                 ({"keepdims": True}, {"keepdim": True})):
        out = getattr(mine, name)(**kwargs)
        expected = getattr(torch, name)(theirs, **torch_kwargs)
        assert out.dtype == np.int64 and not out.requires_grad and out.grad_fn is None
        assert out.shape == tuple(expected.shape)
        np.testing.assert_array_equal(out.data, expected.numpy())
        np.testing.assert_array_equal(getattr(mg, name)(mine, **kwargs).data, out.data)


def test_module_functions_take_numbers_lists_and_arrays_as_constants():
    out = mg.maximum([1.0, 5.0], np.array([2.0, 3.0]))
    assert out.tolist() == [2.0, 5.0] and not out.requires_grad
    np.testing.assert_allclose(mg.sin([0.0, np.pi / 2]).data, [0.0, 1.0], atol=1e-15)
    assert mg.argmax([3, 1, 4]).item() == 2 and mg.logsumexp(0.0).item() == 0.0


def test_builtin_abs_and_item():
    x = mg.tensor([-2.0, 3.0], requires_grad=True)
    abs(x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [-1.0, 1.0])
    assert mg.tensor([[2.5]]).item() == 2.5 and isinstance(mg.tensor(3).item(), int)
    with pytest.raises(RuntimeError, match="item: only a one-element tensor"):
        x.item()


def test_gradcheck_warns_at_ties_of_min_maximum_and_minimum():
    x = mg.tensor([1.0, 1.0, 2.0], requires_grad=True)
    y = mg.tensor([1.0, 0.0, 3.0], requires_grad=True)
    for fn, inputs, says in ((lambda t: t.min(), (x,), "Min: 1 of 1 minima"),
                             (mg.maximum, (x, y), "Maximum: 1 of 3 elements"),
                             (lambda t: mg.minimum(2.0, t), (x,), "Minimum: 1 of 3 elements")):
        with pytest.warns(UserWarning, match=says):
            mg.gradcheck(fn, inputs, raise_exception=False)


# -- 0-d tensors: axis 0 and -1 are allowed, as in PyTorch -------------------------------------

REDUCTIONS = {
    "sum": lambda t, axis: t.sum(axis), "mean": lambda t, axis: t.mean(axis),
    "max": lambda t, axis: t.max(axis), "min": lambda t, axis: t.min(axis),
    "logsumexp": lambda t, axis: t.logsumexp(axis),
    "argmax": lambda t, axis: t.argmax(axis), "argmin": lambda t, axis: t.argmin(axis),
}
TORCH_REDUCTIONS = {"max": "amax", "min": "amin"}


@pytest.mark.parametrize("name", REDUCTIONS)
def test_reductions_of_a_0d_tensor_along_axis_0_and_minus_1_match_torch(name):
    for axis in (0, -1, None):
        mine = REDUCTIONS[name](mg.tensor(2.5), axis)
        torch_name = TORCH_REDUCTIONS.get(name, name)
        theirs = (getattr(torch.tensor(2.5), torch_name)() if axis is None and name not in
                  ("logsumexp",) else getattr(torch.tensor(2.5), torch_name)(axis or 0))
        assert mine.shape == tuple(theirs.shape) == ()
        np.testing.assert_allclose(mine.data, theirs.numpy())
    with pytest.raises(IndexError, match=name):
        REDUCTIONS[name](mg.tensor(2.5), 1)


def test_var_of_a_0d_tensor_along_axis_0():
    assert mg.tensor(2.0).var(0).item() == torch.tensor(2.0).var(0, correction=0).item()


# -- finite differences over shapes (hypothesis) -------------------------------------------------

@FAST
@given(st.data())
def test_smooth_ops_pass_gradcheck_and_gradgradcheck_over_shapes(data):
    shape = data.draw(shapes())
    axis = data.draw(axes(len(shape)))
    x = mg.Tensor(data.draw(values(shape)), requires_grad=True)
    for fn in (mg.sin, mg.cos, lambda t: t.logsumexp(axis)):
        assert mg.gradcheck(fn, (x,))
        assert mg.gradgradcheck(fn, (x,))


@FAST
@given(st.data())
def test_min_matches_numpy_and_passes_gradcheck_over_shapes_and_axes(data):
    shape = data.draw(shapes())
    axis = data.draw(axes(len(shape)))
    array = data.draw(distinct(shape))
    x = mg.Tensor(array, requires_grad=True)
    normalized = None if axis is None else tuple(np.atleast_1d(axis)) if shape else None
    np.testing.assert_array_equal(x.min(axis).data, array.min(axis=normalized))
    assert mg.gradcheck(lambda t: t.min(axis), (x,))


@FAST
@given(st.data())
def test_maximum_and_minimum_pass_gradcheck_over_broadcast_shapes(data):
    shape = data.draw(shapes(min_dims=1))
    other = tuple(data.draw(st.sampled_from([n, 1])) for n in shape)
    array = data.draw(distinct(shape))
    a, b = (mg.Tensor(v, requires_grad=True) for v in (array, data.draw(distinct(other)) + 0.1))
    for fn in (mg.maximum, mg.minimum):
        assert mg.gradcheck(fn, (a, b))
    np.testing.assert_array_equal(mg.maximum(a, b).data, np.maximum(a.data, b.data))


# -- bad arguments -------------------------------------------------------------------------------

BAD = [
    (lambda: mg.zeros(0).min(), RuntimeError, "min: the input must be non-empty"),
    (lambda: mg.zeros(2, 0).min(axis=1), IndexError, "min: dim 1 of the input"),
    (lambda: mg.zeros(0).argmax(), IndexError, "argmax: the input must be non-empty"),
    (lambda: mg.zeros(2, 0).argmin(axis=1), IndexError, "argmin: dim 1"),
    (lambda: mg.zeros(2, 3).argmax(axis=(0, 1)), TypeError, "argmax: axis must be None or an"),
    (lambda: mg.zeros(2, 3).argmax(axis=2), IndexError, "argmax: axis 2 is out of range"),
    (lambda: mg.zeros(2, 3).argmax(keepdims=1), TypeError, "argmax: keepdims"),
    (lambda: mg.zeros(2, 3).logsumexp(axis=5), IndexError, "logsumexp: axis 5"),
    (lambda: mg.zeros(2, 3).logsumexp(keepdims="yes"), TypeError, "logsumexp: keepdims"),
    (lambda: mg.zeros(2, 3).min(axis="0"), TypeError, "min: axis"),
    (lambda: mg.maximum(mg.zeros(2), mg.zeros(3)), RuntimeError, "maximum: shapes"),
    (lambda: mg.minimum(mg.zeros(2), "a"), TypeError, "minimum"),
    (lambda: mg.sin("a"), TypeError, "sin"),
    (lambda: mg.cos(object()), TypeError, "cos"),
    (lambda: mg.argmax(None), TypeError, "argmax"),
]


@pytest.mark.parametrize("call, error, message", BAD)
def test_bad_arguments_raise_pytorchs_class_naming_the_op(call, error, message):
    with pytest.raises(error, match=message):
        call()
