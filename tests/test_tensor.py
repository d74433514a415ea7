"""The Tensor: construction, attributes, conversions, repr, and dtype preservation end to end."""
import numpy as np
import pytest

import minigrad as mg

# ----------------------------------------------------------------------------------------------
# Construction
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data, dtype, shape", [
    ([[1.0, 2.0], [3.0, 4.0]], np.float64, (2, 2)),
    ([1.5, 2], np.float64, (2,)),
    (2.5, np.float64, ()),
    ([1, 2, 3], np.int64, (3,)),
    (7, np.int64, ()),
    ([True, False], np.bool_, (2,)),
    (np.arange(6, dtype=np.float32).reshape(2, 3), np.float32, (2, 3)),
    (np.float32(1.5), np.float32, ()),
    (np.arange(4, dtype=np.int32), np.int32, (4,)),
])
@pytest.mark.parametrize("make", [mg.Tensor, mg.tensor])
def test_construction_and_dtype(make, data, dtype, shape):
    t = make(data)
    assert isinstance(t.data, np.ndarray)
    assert t.dtype == dtype and t.shape == shape and t.ndim == len(shape)
    np.testing.assert_array_equal(t.data, np.asarray(data))
    assert t.grad is None and t.grad_fn is None and not t.requires_grad


def test_explicit_dtype_wins():
    assert mg.Tensor([1, 2], dtype=np.float32).dtype == np.float32
    assert mg.tensor(np.ones(2), dtype=np.float32).dtype == np.float32
    assert mg.Tensor(np.ones(2, np.float32), dtype=np.float64).dtype == np.float64


def test_tensor_wraps_without_copying_and_mg_tensor_copies():
    array = np.arange(3.0)
    wrapped, copied = mg.Tensor(array), mg.tensor(array)
    array[0] = 42.0
    assert wrapped.data[0] == 42.0 and copied.data[0] == 0.0


def test_construction_from_a_tensor():
    source = mg.Tensor([1.0, 2.0], requires_grad=True)
    wrapped, copied = mg.Tensor(source), mg.tensor(source)
    assert not wrapped.requires_grad and not copied.requires_grad
    source.data[0] = 5.0
    assert wrapped.data[0] == 5.0 and copied.data[0] == 1.0
    assert mg.tensor(source, requires_grad=True).requires_grad


@pytest.mark.parametrize("data", [None, {"a": 1}, "text", [object()]])
def test_construction_from_something_that_is_not_numbers(data):
    with pytest.raises(TypeError, match="Tensor"):
        mg.Tensor(data)


@pytest.mark.parametrize("data", [[1, 2], 3, [True]])
def test_integer_and_bool_tensors_cannot_require_grad(data):
    with pytest.raises(TypeError, match="floating"):
        mg.Tensor(data, requires_grad=True)
    with pytest.raises(TypeError, match="floating"):
        mg.tensor(data, requires_grad=True)
    with pytest.raises(TypeError, match="floating"):
        mg.Tensor(data).requires_grad_()


def test_integer_tensors_still_compute():
    labels = mg.Tensor([2, 0, 1])
    assert (labels * 2).dtype == np.int64
    assert (labels + 1).sum().item() == 6
    np.testing.assert_array_equal((labels == 0).data, [False, True, False])


# ----------------------------------------------------------------------------------------------
# Attributes and conversions
# ----------------------------------------------------------------------------------------------

def test_numpy_item_and_array_protocol():
    t = mg.Tensor([[1.0, 2.0], [3.0, 4.0]])
    assert t.numpy() is t.data
    assert np.asarray(t) is t.data
    assert np.asarray(t, dtype=np.float32).dtype == np.float32
    assert mg.Tensor(3.5).item() == 3.5 and type(mg.Tensor(3.5).item()) is float
    assert type(mg.Tensor(3).item()) is int
    assert float(mg.Tensor([2.5])) == 2.5 and int(mg.Tensor(4)) == 4 and len(t) == 2
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_np_array_of_a_tensor_is_a_copy():
    t = mg.Tensor([1.0, 2.0])
    copy = np.array(t)
    copy[0] = 99.0
    assert t.data[0] == 1.0


def test_truth_value():
    assert bool(mg.Tensor([1.0])) and not bool(mg.Tensor(0.0))
    with pytest.raises(RuntimeError, match=r"\(2,\)"):  # PyTorch's class; also a ValueError
        bool(mg.Tensor([1.0, 2.0]))


def test_ndarray_on_the_left_gives_a_tensor():
    """NumPy must hand ``array * tensor`` to the tensor, not turn the tensor into an array."""
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    for result in (np.ones(2) * x, np.ones(2) + x, np.ones(2) - x, np.ones(2) / x,
                   np.float64(2.0) * x, np.ones((2, 2)) @ x):
        assert isinstance(result, mg.Tensor) and result.grad_fn is not None


def test_comparisons_give_bool_masks_outside_the_graph():
    x = mg.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    for mask, expected in [(x < 2, [1, 0, 0]), (x <= 2, [1, 1, 0]), (x > 2, [0, 0, 1]),
                           (x >= 2, [0, 1, 1]), (x == 2, [0, 1, 0]), (x != 2, [1, 0, 1]),
                           (x > mg.Tensor([0.0, 5.0, 1.0]), [1, 0, 1])]:
        assert mask.dtype == np.bool_ and not mask.requires_grad and mask.grad_fn is None
        np.testing.assert_array_equal(mask.data, np.array(expected, dtype=bool))


def test_tensors_hash_by_identity():
    a, b = mg.Tensor([1.0]), mg.Tensor([1.0])
    assert len({a: 1, b: 2}) == 2


def test_requires_grad_and_grad_fn_of_op_results():
    leaf = mg.Tensor([1.0, 2.0], requires_grad=True)
    constant = mg.Tensor([3.0, 4.0])
    assert leaf.is_leaf and leaf.grad_fn is None
    assert (constant * 2).grad_fn is None and not (constant * 2).requires_grad
    product = leaf * constant
    assert product.requires_grad and product.grad_fn.name == "Mul" and not product.is_leaf
    assert product.grad_fn.inputs == (leaf, constant)


def test_detach_shares_data_and_cuts_the_graph():
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    d = y.detach()
    assert d.data is y.data and d.grad_fn is None and not d.requires_grad
    (x * d).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 6.0])  # d counted as a constant


def test_requires_grad_false_on_a_result_is_refused():
    y = mg.Tensor([1.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad_(False)


def test_repr():
    assert repr(mg.Tensor([1.0, 2.5])) == "tensor([1. , 2.5])"
    assert repr(mg.Tensor([1, 2])) == "tensor([1, 2])"
    leaf = mg.Tensor([1.0], requires_grad=True)
    assert repr(leaf) == "tensor([1.], requires_grad=True)"
    assert repr(leaf * 2) == "tensor([2.], grad_fn=<Mul>)"
    assert repr(mg.Tensor([0.5], dtype=np.float32)) == "tensor([0.5], dtype=float32)"
    assert "\n" in repr(mg.Tensor(np.zeros((2, 2))))


# ----------------------------------------------------------------------------------------------
# dtype: float32 in, float32 out and float32 gradients -- whatever the operands are mixed with
# ----------------------------------------------------------------------------------------------

MASK = np.array([[True, False, True], [False, True, True]])

# name: function of x (2, 3) and y (3,), both float32 tensors that require grad.
FLOAT32_OPS = {
    "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
    "div": lambda x, y: x / y, "neg": lambda x, y: -x, "pow tensor": lambda x, y: x.abs() ** y,
    "pow int": lambda x, y: x ** 3, "pow float": lambda x, y: x.abs() ** 0.5,
    "2 ** x": lambda x, y: 2 ** x, "matmul": lambda x, y: x @ y,
    "matmul batched": lambda x, y: x.reshape(1, 2, 3) @ x.T,
    "exp": lambda x, y: x.exp(), "log": lambda x, y: x.abs().log(),
    "sqrt": lambda x, y: x.abs().sqrt(), "abs": lambda x, y: x.abs(),
    "tanh": lambda x, y: x.tanh(), "sigmoid": lambda x, y: x.sigmoid(),
    "relu": lambda x, y: x.relu(), "sum": lambda x, y: x.sum(axis=0),
    "mean": lambda x, y: x.mean(axis=1, keepdims=True), "mean all": lambda x, y: x.mean() * y,
    "var": lambda x, y: x.var(axis=0), "var ddof": lambda x, y: x.var(ddof=1),
    "max": lambda x, y: x.max(axis=1), "reshape": lambda x, y: x.reshape(-1),
    "transpose": lambda x, y: x.transpose(1, 0), "T": lambda x, y: x.T,
    "broadcast_to": lambda x, y: y.broadcast_to((4, 3)), "slice": lambda x, y: x[:, ::-1],
    "int index": lambda x, y: x[[0, 0, 1]], "mask": lambda x, y: x[MASK],
    "concatenate": lambda x, y: mg.concatenate([x, y.reshape(1, 3)]),
    "stack": lambda x, y: mg.stack([y, y * 2], axis=1),
    "where": lambda x, y: mg.where(MASK, x, y),
    # mixed with Python numbers, NumPy float64 scalars, 0-d float64 arrays, float64 arrays
    "x + python float": lambda x, y: x + 1e-5,
    "python float / x": lambda x, y: 2.5 / x,
    "x * np.float64": lambda x, y: x * np.float64(0.5),
    "np.float64 * x": lambda x, y: np.float64(0.5) * x,
    "np.float64 - x": lambda x, y: np.float64(0.5) - x,
    "x / np.float64": lambda x, y: x / np.float64(3.0),
    "x ** np.float64": lambda x, y: x ** np.float64(2.0),
    "np.float64 ** x": lambda x, y: np.float64(2.0) ** x,
    "x + 0-d float64": lambda x, y: x + np.array(0.5),
    "0-d float64 * x": lambda x, y: np.array(0.5) * x,
    "x ** 0-d float64": lambda x, y: x ** np.array(2.0),
    "0-d float64 ** x": lambda x, y: np.array(2.0) ** x,
    "x - float64 array": lambda x, y: x - np.ones(3),
    "float64 array / x": lambda x, y: np.ones((2, 3)) / x,
    "x @ float64 array": lambda x, y: x @ np.ones((3, 2)),
    "float64 array @ x": lambda x, y: np.ones(2) @ x,
    "x * int array": lambda x, y: x * np.arange(3),
    "x * python int": lambda x, y: x * 3,
    "where with np.float64": lambda x, y: mg.where(MASK, x, np.float64(0.0)),
    "where with 0-d float64": lambda x, y: mg.where(MASK, np.array(1.0), y),
    "batch norm": lambda x, y: (x - x.mean(axis=0)) / (x.var(axis=0) + 1e-5).sqrt() * y + y,
}


@pytest.mark.parametrize("name", sorted(FLOAT32_OPS))
def test_float32_in_float32_out_and_float32_gradients(name):
    rng = np.random.default_rng(0)
    x = mg.Tensor(rng.uniform(0.5, 1.5, (2, 3)).astype(np.float32), requires_grad=True)
    y = mg.Tensor(rng.uniform(0.5, 1.5, 3).astype(np.float32), requires_grad=True)
    out = FLOAT32_OPS[name](x, y)
    assert out.dtype == np.float32
    out.sum().backward()
    for leaf in (x, y):
        assert leaf.grad is None or leaf.grad.dtype == np.float32
    assert x.grad is not None or y.grad is not None


def test_float32_second_derivatives_stay_float32():
    x = mg.Tensor(np.array([0.5, 1.5], np.float32), requires_grad=True)
    (first,) = mg.grad((x.tanh() * np.float64(2.0)).sum(), [x], create_graph=True)
    (second,) = mg.grad(first.sum(), [x])
    assert first.dtype == np.float32 and second.dtype == np.float32


def test_float32_grad_argument_of_another_dtype():
    x = mg.Tensor(np.ones(2, np.float32), requires_grad=True)
    (x * 2).backward(np.ones(2))  # a float64 array as d(loss)/d(output)
    assert x.grad.dtype == np.float32


def test_lists_default_to_float64(default_float32):
    """The fixture switched the default to float32: Python numbers follow it, NumPy arrays
    keep their own dtype, and an explicit dtype wins."""
    assert mg.Tensor([1.0, 2.0]).dtype == np.float32
    assert mg.tensor(3.0).dtype == np.float32
    assert mg.get_default_dtype() == np.float32
    assert mg.Tensor(np.ones(2)).dtype == np.float64
    assert mg.Tensor([1.0], dtype=np.float64).dtype == np.float64
    assert mg.Tensor([1, 2]).dtype == np.int64  # integers are not floats
    assert (mg.Tensor([1.0]) * 2.0 + mg.tensor([0.5])).dtype == np.float32


def test_default_dtype_is_float64_and_restored():
    assert mg.get_default_dtype() == np.float64
    assert mg.Tensor([1.0]).dtype == np.float64


def test_default_dtype_must_be_floating():
    with pytest.raises(TypeError, match="floating"):
        mg.set_default_dtype(np.int32)
    assert mg.get_default_dtype() == np.float64
