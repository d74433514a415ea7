"""Forward values and gradients against PyTorch (float64), op by op and for a composed BatchNorm.
Skipped when PyTorch is not installed."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from conftest import FAST, values

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)


def _signed(*shape):
    return RNG.uniform(0.5, 1.5, shape) * RNG.choice([-1.0, 1.0], shape)


def _positive(*shape):
    return RNG.uniform(0.5, 1.5, shape)


def compare(mg_fn, torch_fn, *arrays, rtol=1e-12, order=1):
    """Same outputs, and the same gradients for a random upstream gradient; with ``order=2``
    also the same gradient of <gradients, random weights> (a Hessian-vector product)."""
    mg_inputs = [mg.Tensor(a.copy(), requires_grad=True) for a in arrays]
    torch_inputs = [torch.tensor(a, requires_grad=True) for a in arrays]
    mg_out, torch_out = mg_fn(*mg_inputs), torch_fn(*torch_inputs)
    np.testing.assert_allclose(mg_out.data, torch_out.detach().numpy(), rtol=rtol, atol=1e-14)
    upstream = RNG.standard_normal(mg_out.shape)
    mg_grads = mg.grad(mg_out, mg_inputs, mg.Tensor(upstream), create_graph=order > 1)
    torch_grads = torch.autograd.grad(torch_out, torch_inputs, torch.tensor(upstream),
                                      create_graph=order > 1)
    for mine, theirs in zip(mg_grads, torch_grads):
        np.testing.assert_allclose(mine.data, theirs.detach().numpy(), rtol=rtol, atol=1e-13)
    if order > 1:
        weights = [RNG.standard_normal(a.shape) for a in arrays]
        mine = mg.grad(sum((g * mg.Tensor(w)).sum() for g, w in zip(mg_grads, weights)),
                       mg_inputs)
        theirs = torch.autograd.grad(
            sum((g * torch.tensor(w)).sum() for g, w in zip(torch_grads, weights)), torch_inputs,
            allow_unused=True)
        for m, t in zip(mine, theirs):
            expected = np.zeros_like(m.data) if t is None else t.numpy()
            got = np.zeros_like(expected) if m is None else m.data
            np.testing.assert_allclose(got, expected, rtol=rtol, atol=1e-13)


# ----------------------------------------------------------------------------------------------
# Op by op
# ----------------------------------------------------------------------------------------------

MASK = np.array([[True, False, True], [False, False, True]])
TORCH_MASK = torch.tensor(MASK)

# name: (minigrad function, torch function, input arrays)
CASES = {
    "add broadcast": (lambda a, b: a + b, lambda a, b: a + b, [_signed(2, 1, 3), _signed(4, 1)]),
    "sub broadcast": (lambda a, b: a - b, lambda a, b: a - b, [_signed(3), _signed(2, 3)]),
    "mul broadcast": (lambda a, b: a * b, lambda a, b: a * b, [_signed(2, 3), _signed(1, 3)]),
    "div broadcast": (lambda a, b: a / b, lambda a, b: a / b, [_signed(2, 3), _signed(2, 1)]),
    "neg": (lambda a: -a, lambda a: -a, [_signed(2, 3)]),
    "pow scalar": (lambda a: a ** 3, lambda a: a ** 3, [_signed(2, 3)]),
    "pow fractional": (lambda a: a ** -1.5, lambda a: a ** -1.5, [_positive(2, 3)]),
    "pow tensor": (lambda a, b: a ** b, lambda a, b: a ** b, [_positive(2, 3), _signed(3)]),
    "reflected": (lambda a: 2 ** a - 3 / a + 1.5 * a - 2,
                  lambda a: 2 ** a - 3 / a + 1.5 * a - 2, [_signed(4)]),
    "matmul 2-D": (lambda a, b: a @ b, lambda a, b: a @ b, [_signed(2, 3), _signed(3, 4)]),
    "matmul 1-D": (lambda a, b: a @ b, lambda a, b: a @ b, [_signed(3), _signed(3)]),
    "matmul matrix-vector": (lambda a, b: a @ b, lambda a, b: a @ b, [_signed(2, 3), _signed(3)]),
    "matmul vector-batched": (lambda a, b: a @ b, lambda a, b: a @ b,
                              [_signed(3), _signed(2, 3, 4)]),
    "matmul batched broadcast": (lambda a, b: a @ b, lambda a, b: a @ b,
                                 [_signed(2, 1, 2, 3), _signed(3, 3, 2)]),
    "exp": (lambda a: a.exp(), torch.exp, [_signed(2, 3)]),
    "log": (lambda a: a.log(), torch.log, [_positive(2, 3)]),
    "sqrt": (lambda a: a.sqrt(), torch.sqrt, [_positive(2, 3)]),
    "abs": (lambda a: a.abs(), torch.abs, [_signed(2, 3)]),
    "tanh": (lambda a: a.tanh(), torch.tanh, [_signed(2, 3)]),
    "sigmoid": (lambda a: a.sigmoid(), torch.sigmoid, [_signed(2, 3) * 20]),
    "relu": (lambda a: a.relu(), torch.relu, [_signed(2, 3)]),
    "sum": (lambda a: a.sum(axis=(0, 2)), lambda a: a.sum(dim=(0, 2)), [_signed(2, 3, 2)]),
    "sum keepdims": (lambda a: a.sum(axis=-1, keepdims=True),
                     lambda a: a.sum(dim=-1, keepdim=True), [_signed(2, 3)]),
    "mean": (lambda a: a.mean(axis=1), lambda a: a.mean(dim=1), [_signed(2, 3)]),
    "mean all": (lambda a: a.mean(), lambda a: a.mean(), [_signed(2, 3)]),
    "var": (lambda a: a.var(axis=0), lambda a: a.var(dim=0, correction=0), [_signed(4, 3)]),
    "var ddof=1": (lambda a: a.var(axis=(0, 2), keepdims=True, ddof=1),
                   lambda a: a.var(dim=(0, 2), keepdim=True, correction=1), [_signed(3, 2, 2)]),
    "max": (lambda a: a.max(axis=1), lambda a: torch.amax(a, dim=1), [_signed(3, 4)]),
    "max with ties": (lambda a: a.max(axis=1, keepdims=True),
                      lambda a: torch.amax(a, dim=1, keepdim=True),
                      [np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])]),
    "max all with ties": (lambda a: a.max(), torch.amax, [np.array([[4.0, 1.0], [4.0, 4.0]])]),
    "reshape": (lambda a: a.reshape(3, -1), lambda a: a.reshape(3, -1), [_signed(2, 3, 2)]),
    "transpose": (lambda a: a.transpose(2, 0, 1), lambda a: a.permute(2, 0, 1),
                  [_signed(2, 3, 4)]),
    "T": (lambda a: a.T, lambda a: a.T, [_signed(2, 3)]),
    "broadcast_to": (lambda a: a.broadcast_to((2, 4, 3)), lambda a: a.expand(2, 4, 3),
                     [_signed(4, 1)]),
    "slices": (lambda a: a[1:, ::2], lambda a: a[1:, ::2], [_signed(3, 4)]),
    "negative step": (lambda a: a[::-1], lambda a: a.flip(0), [_signed(4, 2)]),
    "repeated indices": (lambda a: a[[0, 2, 0, 0]], lambda a: a[[0, 2, 0, 0]], [_signed(3, 2)]),
    "two index arrays": (lambda a: a[[0, 1, 1], [2, 2, 0]], lambda a: a[[0, 1, 1], [2, 2, 0]],
                         [_signed(2, 3)]),
    "bool mask": (lambda a: a[MASK], lambda a: a[TORCH_MASK], [_signed(2, 3)]),
    "concatenate": (lambda a, b: mg.concatenate([a, b, a], axis=1),
                    lambda a, b: torch.cat([a, b, a], dim=1), [_signed(2, 3), _signed(2, 1)]),
    "stack": (lambda a, b: mg.stack([a, b], axis=-1), lambda a, b: torch.stack([a, b], dim=-1),
              [_signed(2, 3), _signed(2, 3)]),
    "where": (lambda a, b: mg.where(MASK, a, b), lambda a, b: torch.where(TORCH_MASK, a, b),
              [_signed(2, 3), _signed(3)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_matches_torch(name):
    mg_fn, torch_fn, arrays = CASES[name]
    compare(mg_fn, torch_fn, *arrays)


SECOND_ORDER = ["pow tensor", "div broadcast", "tanh", "sigmoid", "exp", "log", "sqrt", "var",
                "var ddof=1", "mean", "matmul batched broadcast", "reflected", "where"]


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_order_matches_torch(name):
    mg_fn, torch_fn, arrays = CASES[name]
    compare(lambda *a: mg_fn(*a) ** 2, lambda *a: torch_fn(*a) ** 2, *arrays, order=2)


@FAST
@given(data=st.data(), op=st.sampled_from(["add", "sub", "mul", "div"]))
def test_broadcast_binary_ops_match_torch(data, op):
    shape_a, shape_b = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2)).input_shapes
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / b}[op]
    compare(fn, fn, data.draw(values(shape_a)), data.draw(values(shape_b)))


# ----------------------------------------------------------------------------------------------
# A composed BatchNorm expression (training mode: batch statistics, biased variance)
# ----------------------------------------------------------------------------------------------

EPS = 1e-5


def _mg_batch_norm(x, weight, bias):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mean) / (var + EPS).sqrt() * weight.reshape(shape) + bias.reshape(shape)


def _torch_batch_norm(x, weight, bias):
    return torch.nn.functional.batch_norm(x, None, None, weight, bias, training=True, eps=EPS)


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5), (3, 2, 2, 3)])
def test_composed_batch_norm_matches_torch(shape):
    x = RNG.standard_normal(shape) * 3 + 2
    weight, bias = _signed(shape[1]), _signed(shape[1])
    compare(_mg_batch_norm, _torch_batch_norm, x, weight, bias, rtol=1e-10)


def test_composed_batch_norm_second_order_matches_torch():
    x = RNG.standard_normal((6, 3))
    compare(lambda *a: _mg_batch_norm(*a).tanh(), lambda *a: _torch_batch_norm(*a).tanh(),
            x, _signed(3), _signed(3), rtol=1e-9, order=2)


def test_float32_matches_torch_float32():
    x = RNG.standard_normal((16, 4)).astype(np.float32)
    weight, bias = np.ones(4, np.float32), np.zeros(4, np.float32)
    mine = mg.Tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    out = _mg_batch_norm(mine, mg.Tensor(weight), mg.Tensor(bias))
    expected = _torch_batch_norm(theirs, torch.tensor(weight), torch.tensor(bias))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-4, atol=1e-5)
    (out.tanh()).sum().backward()
    (expected.tanh()).sum().backward()
    assert mine.grad.dtype == np.float32
    np.testing.assert_allclose(mine.grad.data, theirs.grad.numpy(), rtol=1e-3, atol=1e-5)
