"""Second (and third) derivatives: backward(create_graph=True) records the backward, so its
gradients can be differentiated again. Checked by finite differences of the first derivative
(``mg.gradgradcheck``) and against closed forms."""
import operator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from conftest import FAST, leaves, shapes, values

RNG = np.random.default_rng(0)
SIGNED = RNG.uniform(0.5, 1.5, (2, 3)) * RNG.choice([-1, 1], (2, 3))
POSITIVE = RNG.uniform(0.5, 1.5, (2, 3))
ROW = RNG.uniform(0.5, 1.5, (3,))
SQUARE = RNG.standard_normal((3, 3))

# name: (function, its arguments). Every argument requires grad.
FUNCTIONS = {
    "pow x**3": (lambda x: x ** 3, [SIGNED]),
    "pow x**0.5": (lambda x: x ** 0.5, [POSITIVE]),
    "pow x**-2": (lambda x: x ** -2, [SIGNED]),
    "pow a**b": (operator.pow, [POSITIVE, SIGNED]),
    "pow 2**x": (lambda x: 2 ** x, [SIGNED]),
    "tanh": (lambda x: x.tanh(), [SIGNED]),
    "sigmoid": (lambda x: x.sigmoid(), [SIGNED]),
    "exp": (lambda x: x.exp(), [SIGNED]),
    "log": (lambda x: x.log(), [POSITIVE]),
    "sqrt": (lambda x: x.sqrt(), [POSITIVE]),
    "mul": (operator.mul, [SIGNED, SIGNED[::-1]]),
    "mul broadcast": (operator.mul, [SIGNED, ROW]),
    "div": (operator.truediv, [SIGNED, POSITIVE]),
    "div broadcast": (operator.truediv, [ROW, SIGNED]),
    "square via mul": (lambda x: x * x, [SIGNED]),
    "add, sub, neg": (lambda a, b: -(a - b) + a * b, [SIGNED, ROW]),
    "mean": (lambda x: x.mean(axis=0) ** 2, [SIGNED]),
    "mean all": (lambda x: x.mean() * x, [SIGNED]),
    "var ddof=0": (lambda x: x.var(axis=1), [SIGNED]),
    "var ddof=1": (lambda x: x.var(axis=0, keepdims=True, ddof=1), [SIGNED]),
    "var all": (lambda x: x.var(), [SIGNED]),
    "sum": (lambda x: x.sum(axis=1) ** 2, [SIGNED]),
    "max": (lambda x: x.max(axis=1) * x.max(), [SIGNED]),
    "abs": (lambda x: x.abs() * x, [SIGNED]),
    "relu": (lambda x: x.relu() * x, [SIGNED]),
    "matmul": (lambda a, b: (a @ b) ** 2, [SIGNED, SQUARE]),
    "matmul 1-D": (lambda a, b: (a @ b) ** 2, [ROW, SQUARE]),
    "reshape, transpose": (lambda x: x.reshape(3, 2).T * x, [SIGNED]),
    "indexing": (lambda x: x[[0, 0, 1], 1:] * x[0, 0], [SIGNED]),
    "broadcast_to": (lambda x: x.broadcast_to((2, 3)) * x.broadcast_to((2, 3)).T.sum(), [ROW]),
    "concatenate, stack": (lambda a, b: mg.concatenate([a, b * b]) * mg.stack([b, b]).sum(),
                           [SIGNED, SIGNED]),
    "where": (lambda a, b: mg.where(SIGNED > 0, a * b, b.exp()), [SIGNED, POSITIVE]),
    "batch norm": (lambda x: ((x - x.mean(axis=0)) / (x.var(axis=0) + 1e-5).sqrt()) ** 2,
                   [SIGNED]),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_gradgradcheck(name):
    fn, arrays = FUNCTIONS[name]
    assert mg.gradgradcheck(fn, leaves(*arrays))


@FAST
@given(data=st.data(), name=st.sampled_from(["mul", "div", "pow"]))
def test_second_derivatives_of_broadcast_binary_ops(data, name):
    shape_a, shape_b = data.draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3)).input_shapes
    a = data.draw(values(shape_a, positive=name == "pow"))
    b = data.draw(values(shape_b, positive=name == "div"))
    op = {"mul": operator.mul, "div": operator.truediv, "pow": operator.pow}[name]
    assert mg.gradgradcheck(op, leaves(a, b))


@FAST
@given(data=st.data(), ddof=st.sampled_from([0, 1]))
def test_second_derivatives_of_var_and_mean(data, ddof):
    shape = data.draw(shapes(min_dims=1))
    x = data.draw(values(tuple(n + 1 for n in shape)))  # every axis has more than ddof values
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    assert mg.gradgradcheck(lambda t: t.var(axis=axis, ddof=ddof) * t.mean(), leaves(x))


def _derivatives(fn, x, order):
    """[fn(x), fn'(x), fn''(x), ...] elementwise, each by differentiating the one before."""
    t = mg.Tensor(x, requires_grad=True)
    results = [fn(t)]
    for _ in range(order):
        (derivative,) = mg.grad(results[-1].sum(), [t], create_graph=True)
        results.append(derivative)
    return [r.data for r in results]


def test_third_derivative_of_a_cube():
    x = np.array([-2.0, -0.5, 0.0, 1.0, 3.0])
    _, first, second, third = _derivatives(lambda t: t ** 3, x, order=3)
    np.testing.assert_allclose(first, 3 * x ** 2, rtol=1e-15)
    np.testing.assert_allclose(second, 6 * x, rtol=1e-15)
    np.testing.assert_allclose(third, np.full_like(x, 6.0), rtol=1e-15)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


CLOSED_FORM_SECOND_DERIVATIVES = {
    "tanh": (lambda t: t.tanh(), lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
    "sigmoid": (lambda t: t.sigmoid(),
                lambda x: _sigmoid(x) * (1 - _sigmoid(x)) * (1 - 2 * _sigmoid(x))),
    "exp": (lambda t: t.exp(), np.exp),
    "log": (lambda t: t.log(), lambda x: -1 / x ** 2),
    "sqrt": (lambda t: t.sqrt(), lambda x: -0.25 * x ** -1.5),
    "reciprocal": (lambda t: 1 / t, lambda x: 2 / x ** 3),
    "2**x": (lambda t: 2 ** t, lambda x: np.log(2) ** 2 * 2 ** x),
    "x**2.5": (lambda t: t ** 2.5, lambda x: 3.75 * x ** 0.5),
}


@pytest.mark.parametrize("name", sorted(CLOSED_FORM_SECOND_DERIVATIVES))
def test_second_derivative_closed_form(name):
    fn, expected = CLOSED_FORM_SECOND_DERIVATIVES[name]
    x = np.array([0.3, 0.9, 1.7, 2.5])
    second = _derivatives(fn, x, order=2)[2]
    np.testing.assert_allclose(second, expected(x), rtol=1e-12)


# NumPy returns a scalar, not an array, for 0-d computations: ops that save their output must
# still re-attach it to the graph, or the first derivative becomes a constant.
@pytest.mark.parametrize("name", sorted(CLOSED_FORM_SECOND_DERIVATIVES))
def test_second_derivative_of_0d_tensors(name):
    fn, expected = CLOSED_FORM_SECOND_DERIVATIVES[name]
    second = _derivatives(fn, np.array(0.9), order=2)[2]
    np.testing.assert_allclose(second, expected(0.9), rtol=1e-12)


def test_mixed_partial_derivative():
    """d/dy (d/dx x*y*y) = 2y, and it does not matter which one is differentiated first."""
    x, y = leaves([1.5, -2.0], [0.5, 3.0])
    (dx,) = mg.grad((x * y * y).sum(), [x], create_graph=True)
    (dxdy,) = mg.grad(dx.sum(), [y])
    np.testing.assert_allclose(dxdy.data, 2 * y.data, rtol=1e-15)
    (dy,) = mg.grad((x * y * y).sum(), [y], create_graph=True)
    (dydx,) = mg.grad(dy.sum(), [x])
    np.testing.assert_allclose(dydx.data, 2 * y.data, rtol=1e-15)


def test_hessian_vector_product_of_var():
    """var(x) = |x - mean|^2 / n has Hessian (2/n)(I - 11^T/n): H v = (2/n)(v - mean(v))."""
    x = mg.Tensor(RNG.standard_normal(5), requires_grad=True)
    v = RNG.standard_normal(5)
    (g,) = mg.grad(x.var(), [x], create_graph=True)
    (hv,) = mg.grad((g * mg.Tensor(v)).sum(), [x])
    np.testing.assert_allclose(hv.data, 2 / 5 * (v - v.mean()), rtol=1e-12)


def test_backward_with_create_graph_leaves_a_differentiable_grad():
    x = mg.Tensor([2.0, -1.0], requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.grad_fn is not None
    first = x.grad
    x.grad = None
    first.sum().backward()
    np.testing.assert_allclose(x.grad.data, [12.0, -6.0], rtol=1e-15)


def test_backward_without_create_graph_records_nothing():
    x = mg.Tensor([2.0, -1.0], requires_grad=True)
    (x ** 3).sum().backward()
    assert x.grad.grad_fn is None and not x.grad.requires_grad
