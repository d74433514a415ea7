"""Every primitive op: forward value against NumPy, gradient against finite differences, over
random shapes, broadcasts, axes and keepdims drawn by hypothesis."""
import operator

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from conftest import FAST, axes, check_op, distinct, leaves, shapes, values

# ----------------------------------------------------------------------------------------------
# Elementwise binary ops, with NumPy broadcasting
# ----------------------------------------------------------------------------------------------

BINARY = {"add": operator.add, "sub": operator.sub, "mul": operator.mul,
          "div": operator.truediv, "pow": operator.pow}


def _binary_values(name, shape_a, shape_b):
    """pow needs a positive base (a tensor exponent differentiates through log(base))."""
    return values(shape_a, positive=name == "pow"), values(shape_b)


@FAST
@given(data=st.data(), name=st.sampled_from(sorted(BINARY)))
def test_binary_op_with_broadcasting(data, name):
    shape_a, shape_b = data.draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3)).input_shapes
    a_values, b_values = _binary_values(name, shape_a, shape_b)
    op = BINARY[name]
    check_op(op, op, data.draw(a_values), data.draw(b_values))


# The kinds of broadcast hypothesis may or may not draw in one run, named so they always run.
BROADCASTS = [((3, 1), (1, 4)),     # size-1 dims on both sides
              ((2, 3), (3,)),       # a missing leading dim
              ((), (2, 3)),         # a 0-d operand
              ((4, 1, 3), (2, 1)),  # both at once
              ((2, 3), (2, 3))]     # no broadcast


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shape_a, shape_b", BROADCASTS)
def test_binary_op_named_broadcasts(name, shape_a, shape_b):
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 2.0, shape_a)
    b = rng.uniform(0.5, 2.0, shape_b) * rng.choice([-1, 1], shape_b)
    op = BINARY[name]
    check_op(op, op, a, b)
    check_op(op, op, b if name != "pow" else a, a)  # operands swapped: broadcast on the left


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_op_with_a_constant_operand(name):
    """Only the operand that requires grad gets a gradient; the constant one is broadcast by
    NumPy alone."""
    rng = np.random.default_rng(1)
    constant = mg.Tensor(rng.uniform(0.5, 2.0, (3, 1)))
    op = BINARY[name]
    check_op(lambda x: op(x, constant), lambda x: op(x, constant.data), rng.uniform(0.5, 2, (4,)))
    check_op(lambda x: op(constant, x), lambda x: op(constant.data, x), rng.uniform(0.5, 2, (4,)))
    assert constant.grad is None


def test_broadcast_is_an_explicit_node_in_the_graph():
    a, b = leaves(np.ones((2, 3)), np.ones(3))
    out = a + b
    names = [node.name for node in mg.autograd.topological_order(out.grad_fn)]
    assert names == ["Add", "BroadcastTo"]


# ----------------------------------------------------------------------------------------------
# Reflected operators, unary minus, pow in all its forms
# ----------------------------------------------------------------------------------------------

REFLECTED = {
    "2 + x": (lambda x: 2 + x), "2 - x": (lambda x: 2 - x), "2 * x": (lambda x: 2 * x),
    "2 / x": (lambda x: 2 / x), "2 ** x": (lambda x: 2 ** x), "0.5 ** x": (lambda x: 0.5 ** x),
    "x + 2.5": (lambda x: x + 2.5), "x - 2": (lambda x: x - 2), "x / 4": (lambda x: x / 4),
    "-x": (lambda x: -x), "--x": (lambda x: -(-x)), "+x": (lambda x: +x),
    "array + x": (lambda x: np.array([1.0, -2.0, 3.0]) + x),
    "array - x": (lambda x: np.array([1.0, -2.0, 3.0]) - x),
    "array * x": (lambda x: np.array([[1.0], [-2.0]]) * x),
    "array / x": (lambda x: np.array([1.0, -2.0, 3.0]) / x),
    "array ** x": (lambda x: np.array([1.5, 2.0, 3.0]) ** x),
    "x * array": (lambda x: x * np.array([[1.0], [-2.0]])),
    "x ** array": (lambda x: x ** np.array([2.0, 3.0, -1.0])),
}


@pytest.mark.parametrize("name", sorted(REFLECTED))
def test_reflected_operators(name):
    fn = REFLECTED[name]
    check_op(fn, fn, np.array([0.7, 1.3, 1.9]))
    assert isinstance(fn(mg.Tensor([1.0, 2.0, 3.0])), mg.Tensor)


@FAST
@given(data=st.data(), exponent=st.sampled_from([2, 3, -1, 0.5, -1.5, 1 / 3, 0, 1]))
def test_pow_scalar_exponent_positive_base(data, exponent):
    x = data.draw(values(data.draw(shapes()), positive=True))
    check_op(lambda t: t ** exponent, lambda t: t ** exponent, x)


@FAST
@given(data=st.data(), exponent=st.sampled_from([2, 3, -1, -2]))
def test_pow_integer_exponent_negative_base(data, exponent):
    x = -data.draw(values(data.draw(shapes()), positive=True))
    check_op(lambda t: t ** exponent, lambda t: t ** exponent, x)


@FAST
@given(data=st.data())
def test_pow_tensor_exponent(data):
    """Both base and exponent require grad: d/db a**b = a**b log a."""
    shape_a, shape_b = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2)).input_shapes
    base = data.draw(values(shape_a, positive=True))
    check_op(operator.pow, operator.pow, base, data.draw(values(shape_b)))


# ----------------------------------------------------------------------------------------------
# Elementwise unary functions
# ----------------------------------------------------------------------------------------------

UNARY = {  # name: (NumPy reference, inputs must be positive)
    "exp": (np.exp, False), "log": (np.log, True), "sqrt": (np.sqrt, True),
    "abs": (np.abs, False), "tanh": (np.tanh, False),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), False), "relu": (lambda x: np.maximum(x, 0), False),
}


@FAST
@given(data=st.data(), name=st.sampled_from(sorted(UNARY)))
def test_unary_op(data, name):
    reference, positive = UNARY[name]
    x = data.draw(values(data.draw(shapes()), positive=positive))
    check_op(lambda t: getattr(t, name)(), reference, x, rtol=1e-10)


def test_sigmoid_is_precise_and_finite_for_large_inputs():
    x = np.array([-800.0, -40.0, -30.0, -10.0, 0.0, 10.0, 40.0, 800.0])
    t = mg.Tensor(x, requires_grad=True)
    y = t.sigmoid()
    y.sum().backward()
    assert np.all(np.isfinite(t.grad.data))
    # e^x / (1 + e^x) is exact in floating point for x <= 0, 1 / (1 + e^-x) for x >= 0.
    with np.errstate(over="ignore", invalid="ignore"):
        expected = np.where(x < 0, np.exp(x) / (1 + np.exp(x)), 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(y.data, expected, rtol=1e-14, atol=0)


@pytest.mark.parametrize("name, expected", [("abs", [-1.0, 0.0, 1.0]), ("relu", [0.0, 0.0, 1.0])])
def test_kink_gradient_at_zero_is_zero(name, expected):
    """The documented subgradient at 0 (finite differences cannot check a kink)."""
    x = mg.Tensor([-2.0, 0.0, 3.0], requires_grad=True)
    getattr(x, name)().sum().backward()
    np.testing.assert_array_equal(x.grad.data, expected)


# ----------------------------------------------------------------------------------------------
# Reductions
# ----------------------------------------------------------------------------------------------

def _reduction_case(data, elements=values):
    shape = data.draw(shapes())
    axis = data.draw(axes(len(shape)))
    keepdims = data.draw(st.booleans())
    return data.draw(elements(shape)), axis, keepdims


@FAST
@given(data=st.data(), name=st.sampled_from(["sum", "mean"]))
def test_sum_and_mean(data, name):
    x, axis, keepdims = _reduction_case(data)
    check_op(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims),
             lambda a: getattr(np, name)(a, axis=axis, keepdims=keepdims), x)


@FAST
@given(data=st.data(), ddof=st.sampled_from([0, 1]))
def test_var(data, ddof):
    x, axis, keepdims = _reduction_case(data)
    count = x.size if axis is None else int(np.prod([x.shape[a] for a in np.atleast_1d(axis)]))
    assume(count > ddof)
    check_op(lambda t: t.var(axis=axis, keepdims=keepdims, ddof=ddof),
             lambda a: np.var(a, axis=axis, keepdims=keepdims, ddof=ddof), x)


def test_var_with_too_few_values_for_ddof_is_nan_not_an_error():
    """Like NumPy and PyTorch: nan value and nan gradient, and no exception from backward."""
    x = mg.Tensor([[1.0], [2.0]], requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"), pytest.warns(RuntimeWarning):
        v = x.var(axis=1, ddof=1)
    assert np.isnan(v.data).all()
    with np.errstate(invalid="ignore"):
        v.sum().backward()
    assert np.isnan(x.grad.data).all()


@FAST
@given(data=st.data())
def test_max_without_ties(data):
    x, axis, keepdims = _reduction_case(data, elements=distinct)
    check_op(lambda t: t.max(axis=axis, keepdims=keepdims),
             lambda a: np.max(a, axis=axis, keepdims=keepdims), x)


def test_max_splits_the_gradient_equally_among_ties():
    x = mg.Tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [5.0, 0.0, 4.0]], requires_grad=True)
    upstream = mg.Tensor([10.0, 30.0, 7.0])
    (x.max(axis=1) * upstream).sum().backward()
    np.testing.assert_allclose(x.grad.data, [[0, 5, 5], [10, 10, 10], [7, 0, 0]], rtol=1e-15)

    x.grad = None
    x.max().backward()  # one maximum over the whole tensor: no split
    assert x.grad.data.sum() == 1.0 and x.grad.data[2, 0] == 1.0

    tied = mg.Tensor([4.0, -1.0, 4.0, 4.0], requires_grad=True)
    tied.max(axis=0, keepdims=True).backward(mg.Tensor([6.0]))
    np.testing.assert_allclose(tied.grad.data, [2, 0, 2, 2], rtol=1e-15)


# ----------------------------------------------------------------------------------------------
# Movement ops
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("source, target", [
    ((2, 3), (3, 2)), ((2, 3), (-1,)), ((2, 3, 2), (4, -1)), ((6,), (1, 2, 1, 3)),
    ((), (1, 1)), ((1,), ()), ((2, 3), (2, -1, 1)),
])
def test_reshape(source, target):
    x = np.random.default_rng(2).standard_normal(source)
    check_op(lambda t: t.reshape(target), lambda a: a.reshape(target), x)
    check_op(lambda t: t.reshape(*target), lambda a: a.reshape(target), x)


@FAST
@given(data=st.data())
def test_reshape_round_trip(data):
    x = data.draw(values(data.draw(shapes(max_dims=4))))
    check_op(lambda t: (t.reshape(-1) * 2).reshape(x.shape), lambda a: 2 * a, x)


@FAST
@given(data=st.data())
def test_transpose(data):
    shape = data.draw(shapes(max_dims=4))
    order = data.draw(st.permutations(range(len(shape))))
    negative = data.draw(st.booleans())  # the same permutation written with negative axes
    axes_ = tuple(a - len(shape) for a in order) if negative else tuple(order)
    x = data.draw(values(shape))
    check_op(lambda t: t.transpose(axes_), lambda a: np.transpose(a, axes_), x)
    if len(axes_) != 2:  # two separate ints are PyTorch's swap, tested below
        check_op(lambda t: t.transpose(*axes_), lambda a: np.transpose(a, axes_), x)


@FAST
@given(data=st.data())
def test_transpose_of_two_dims_swaps_them_as_in_pytorch(data):
    shape = data.draw(shapes(min_dims=1, max_dims=4))
    first, second = (data.draw(st.integers(-len(shape), len(shape) - 1)) for _ in range(2))
    x = data.draw(values(shape))
    check_op(lambda t: t.transpose(first, second), lambda a: np.swapaxes(a, first, second), x)


@FAST
@given(data=st.data())
def test_T_and_transpose_without_axes_reverse_the_dims(data):
    x = data.draw(values(data.draw(shapes(max_dims=4))))
    check_op(lambda t: t.T, lambda a: a.T, x)
    check_op(lambda t: t.transpose(), lambda a: a.T, x)


@FAST
@given(data=st.data())
def test_broadcast_to(data):
    shapes_ = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
    target = shapes_.result_shape
    x = data.draw(values(shapes_.input_shapes[0]))
    check_op(lambda t: t.broadcast_to(target), lambda a: np.broadcast_to(a, target), x)


# ----------------------------------------------------------------------------------------------
# Indexing
# ----------------------------------------------------------------------------------------------

INDICES = {
    "int": 1, "negative int": -1, "slice": slice(1, 3), "negative step": slice(None, None, -1),
    "step -2 then int": (slice(None, None, -2), 0), "None and Ellipsis": (None, Ellipsis, 1),
    "trailing None": (Ellipsis, None), "all ints": (2, 1, 0), "empty slice": slice(3, 1),
    "int array, repeated": np.array([0, 0, 2, 0]), "list, repeated": [3, 1, 1, 3],
    "two int arrays": (np.array([0, 1, 1]), np.array([2, 0, 0])),
    "slice then int array": (slice(None), [0, 0, 2]), "None then list": (None, [0, 0]),
    "negative int array": np.array([-1, -4, -1]),
    "2-D int array": np.array([[0, 1], [1, 1]]), "int tensor": mg.Tensor([1, 1]),
    "bool mask, leading axis": np.array([True, False, True, True]),
    "bool mask, all axes": np.arange(24).reshape(4, 3, 2) % 3 == 0,
    "bool mask tensor": mg.Tensor(np.array([False, True, True, False])),
}


@pytest.mark.parametrize("name", sorted(INDICES))
def test_indexing(name):
    index = INDICES[name]
    numpy_index = index.data if isinstance(index, mg.Tensor) else index
    x = np.random.default_rng(3).standard_normal((4, 3, 2))
    check_op(lambda t: t[index], lambda a: a[numpy_index], x)


def test_repeated_indices_accumulate():
    x = mg.Tensor(np.zeros(5), requires_grad=True)
    x[[0, 3, 0, 0, 4]].backward(mg.Tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    np.testing.assert_array_equal(x.grad.data, [8.0, 0.0, 0.0, 2.0, 5.0])


def test_basic_indexing_views_and_integer_indexing_copies_as_in_numpy():
    """A slice shares memory and version counter with its tensor (as in PyTorch); an integer-
    array index copies."""
    x = mg.Tensor(np.arange(4.0))
    view, copy = x[1:3], x[np.array([1, 2])]
    x[1] = 100.0
    np.testing.assert_array_equal(view.data, [100.0, 2.0])
    np.testing.assert_array_equal(copy.data, [1.0, 2.0])
    assert view._version == x._version == 1 and copy._version == 0


# ----------------------------------------------------------------------------------------------
# concatenate, stack, where
# ----------------------------------------------------------------------------------------------

@FAST
@given(data=st.data())
def test_concatenate(data):
    shape = data.draw(shapes(min_dims=1))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    arrays = []
    for size in sizes:
        part = list(shape)
        part[axis] = size
        arrays.append(data.draw(values(tuple(part))))
    check_op(lambda *ts: mg.concatenate(ts, axis=axis),
             lambda *arrs: np.concatenate(arrs, axis=axis), *arrays)


@FAST
@given(data=st.data())
def test_stack(data):
    shape = data.draw(shapes())
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    arrays = [data.draw(values(shape)) for _ in range(data.draw(st.integers(1, 3)))]
    check_op(lambda *ts: mg.stack(ts, axis=axis), lambda *arrs: np.stack(arrs, axis=axis),
             *arrays)


def test_concatenate_with_a_constant_part():
    constant = mg.Tensor(np.ones((2, 2)))
    check_op(lambda t: mg.concatenate([constant, t, constant], axis=1),
             lambda a: np.concatenate([constant.data, a, constant.data], axis=1),
             np.arange(6.0).reshape(2, 3))
    assert constant.grad is None


@FAST
@given(data=st.data())
def test_where(data):
    shape_c, shape_a, shape_b = data.draw(
        hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3)).input_shapes
    condition = data.draw(hnp.arrays(bool, shape_c))
    a, b = data.draw(values(shape_a)), data.draw(values(shape_b))
    check_op(lambda s, t: mg.where(condition, s, t), lambda s, t: np.where(condition, s, t), a, b)


@pytest.mark.parametrize("condition_kind", ["ndarray", "list", "bool tensor", "comparison"])
def test_where_with_a_scalar_branch(condition_kind):
    x = np.array([[-1.0, 2.0], [0.5, -3.0]])
    condition = {"ndarray": x > 0, "list": (x > 0).tolist(), "bool tensor": mg.Tensor(x > 0),
                 "comparison": mg.Tensor(x) > 0}[condition_kind]
    check_op(lambda t: mg.where(condition, t, 0.0), lambda a: np.where(a > 0, a, 0.0), x)
    check_op(lambda t: mg.where(condition, -1.5, t), lambda a: np.where(a > 0, -1.5, a), x)


# ----------------------------------------------------------------------------------------------
# matmul
# ----------------------------------------------------------------------------------------------

MATMUL_SHAPES = [
    ((3,), (3,)),                # 1-D . 1-D -> scalar
    ((2, 3), (3,)),              # matrix . vector
    ((3,), (3, 2)),              # vector . matrix
    ((2, 3), (3, 4)),            # 2-D
    ((2, 2, 3), (2, 3, 4)),      # batched
    ((2, 2, 3), (3, 4)),         # batched . 2-D (broadcast)
    ((2, 3), (4, 3, 2)),         # 2-D . batched
    ((3,), (2, 3, 4)),           # 1-D . batched
    ((2, 4, 3), (3,)),           # batched . 1-D
    ((2, 1, 2, 3), (3, 3, 2)),   # batch dims broadcast both ways
]


@pytest.mark.parametrize("shape_a, shape_b", MATMUL_SHAPES)
def test_matmul(shape_a, shape_b):
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    check_op(operator.matmul, np.matmul, a, b)


@FAST
@given(data=st.data())
def test_matmul_random_shapes(data):
    shape_a, shape_b = data.draw(hnp.mutually_broadcastable_shapes(
        signature="(m?,n),(n,p?)->(m?,p?)", max_dims=4, max_side=3)).input_shapes
    check_op(operator.matmul, np.matmul, data.draw(values(shape_a)), data.draw(values(shape_b)))


@pytest.mark.parametrize("side", ["left", "right"])
def test_matmul_with_a_constant_operand(side):
    constant = np.random.default_rng(5).standard_normal((2, 3, 3))
    if side == "left":
        check_op(lambda t: constant @ t, lambda a: constant @ a, np.arange(6.0).reshape(3, 2))
    else:
        check_op(lambda t: t @ constant, lambda a: a @ constant, np.arange(3.0))
