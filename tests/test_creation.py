"""Constructors (mg.zeros ... mg.randn_like) and the shared generator mg.manual_seed seeds:
shapes, dtypes and values against PyTorch 2.13, requires_grad, reproducibility, bad arguments."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigrad as mg
from minigrad import nn
from minigrad.core import random as shared_random
from conftest import FAST, shapes

torch = pytest.importorskip("torch")

TORCH_DTYPES = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32,
                np.dtype(np.int64): torch.int64, np.dtype(bool): torch.bool}


def same_as_torch(mine, theirs, exact=True):
    """Same shape and dtype; the same values (exactly, or to float rounding: PyTorch's
    vectorised kernels may round the last bit differently)."""
    assert mine.shape == tuple(theirs.shape)
    assert TORCH_DTYPES[mine.dtype] == theirs.dtype
    if exact:
        np.testing.assert_array_equal(mine.data, theirs.numpy())
    else:
        tolerance = 1e-6 if mine.dtype == np.float32 else 1e-13
        np.testing.assert_allclose(mine.data, theirs.numpy(), rtol=tolerance, atol=tolerance)


# -- from a shape ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["zeros", "ones", "empty", "rand", "randn"])
def test_sizes_as_ints_or_one_tuple_give_the_same_shape(name):
    make = getattr(mg, name)
    assert make(2, 3).shape == make((2, 3)).shape == make([2, 3]).shape == (2, 3)
    assert make(()).shape == () and make(0, 4).shape == (0, 4)
    assert make(np.int64(2)).shape == (2,)


@pytest.mark.parametrize("name", ["zeros", "ones"])
def test_zeros_and_ones_match_torch_with_every_dtype(name):
    for dtype in (None, np.float32, np.int64, bool):
        torch_dtype = None if dtype is None else TORCH_DTYPES[np.dtype(dtype)]
        same_as_torch(getattr(mg, name)(2, 3, dtype=dtype),
                      getattr(torch, name)(2, 3, dtype=torch_dtype or torch.float64))


def test_full_infers_its_dtype_from_the_fill_value_as_torch_does():
    for value in (3, 2.5, True, float("nan")):
        same_as_torch(mg.full((2, 2), value), torch.full((2, 2), value, dtype=None if not
                      isinstance(value, float) else torch.float64), exact=False)
    assert mg.full(3, 7).shape == (3,)  # an int size works too
    assert mg.full((2,), 2.7, dtype=np.int64).tolist() == [2, 2]  # truncated, as in PyTorch


def test_eye_matches_torch():
    same_as_torch(mg.eye(3), torch.eye(3, dtype=torch.float64))
    same_as_torch(mg.eye(2, 4, dtype=np.int64), torch.eye(2, 4, dtype=torch.int64))
    assert mg.eye(0).shape == (0, 0)


def test_the_default_float_dtype_is_the_default_for_every_float_constructor(default_float32):
    for t in (mg.zeros(2), mg.ones(2), mg.empty(2), mg.full((2,), 1.5), mg.eye(2),
              mg.arange(0.0, 2.0), mg.linspace(0, 1, 3), mg.rand(2), mg.randn(2)):
        assert t.dtype == np.float32, t
    assert mg.arange(3).dtype == np.int64 and mg.randint(3, (2,)).dtype == np.int64


# -- ranges ------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [(5,), (2, 7), (0, 1, 0.3), (1.5, -2, -0.5), (0, 10, 3),
                                  (3, 3), (0.0, 1.0, 0.1), (-3, 4, 2.5), (10, 0, -3)])
def test_arange_matches_torch(args):
    same_as_torch(mg.arange(*args), torch.arange(*args, dtype=None if all(
        isinstance(a, int) for a in args) else torch.float64), exact=False)


def test_arange_with_an_integer_dtype_truncates_the_bounds_first_as_torch_does():
    same_as_torch(mg.arange(0.5, 5.9, 1.5, dtype=np.int64),
                  torch.arange(0.5, 5.9, 1.5, dtype=torch.int64))
    with pytest.raises(RuntimeError, match="arange: step must be nonzero"):
        mg.arange(0, 5, 0.5, dtype=np.int64)  # the step truncates to 0 (PyTorch: an error)


@pytest.mark.parametrize("args", [(0, 1, 5), (-2.5, 7, 11), (3, -3, 4), (1, 2, 1), (0, 1, 0),
                                  (0, 1e10, 7), (-1, 1, 1000)])
def test_linspace_matches_torch(args):
    same_as_torch(mg.linspace(*args), torch.linspace(*args, dtype=torch.float64), exact=False)
    same_as_torch(mg.linspace(*args, dtype=np.float32),
                  torch.linspace(*args, dtype=torch.float32), exact=False)


def test_linspace_with_an_integer_dtype_and_non_finite_bounds():
    same_as_torch(mg.linspace(0, 10, 5, dtype=np.int64),
                  torch.linspace(0, 10, 5, dtype=torch.int64))
    assert np.isnan(mg.linspace(0, float("nan"), 3).data).all()
    with pytest.raises(RuntimeError, match="linspace"):
        mg.linspace(0, float("inf"), 3, dtype=np.int64)


@FAST
@given(st.integers(-20, 20), st.integers(-20, 20), st.integers(1, 7))
def test_arange_and_linspace_match_torch_over_random_bounds(start, end, step):
    if start <= end:
        same_as_torch(mg.arange(start, end, step), torch.arange(start, end, step))
        same_as_torch(mg.arange(start / 3, end / 3, step / 7),
                      torch.arange(start / 3, end / 3, step / 7, dtype=torch.float64),
                      exact=False)
    same_as_torch(mg.linspace(start / 3, end, step), torch.linspace(
        start / 3, end, step, dtype=torch.float64), exact=False)


@FAST
@given(shapes(min_dims=0, max_dims=4, max_side=4))
def test_every_shape_works_as_ints_and_as_a_tuple(shape):
    assert mg.zeros(shape).shape == mg.ones(tuple(shape)).shape == shape
    if shape:
        assert mg.empty(*shape).shape == mg.randn(*shape).shape == shape
    assert mg.full(shape, 2.0).shape == mg.zeros_like(mg.rand(shape)).shape == shape


# -- random --------------------------------------------------------------------------------------

def test_manual_seed_makes_every_random_constructor_reproducible():
    def draw():
        mg.manual_seed(7)
        like = mg.zeros(3, 2)
        return [mg.rand(4), mg.randn(2, 2), mg.randint(0, 10, (5,)), mg.rand_like(like),
                mg.randn_like(like), mg.rand(3, dtype=np.float32)]

    first, second = draw(), draw()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.data, b.data)
    mg.manual_seed(8)
    assert not np.array_equal(mg.rand(4).data, first[0].data)


def test_layer_initialisation_shares_the_generator_and_nn_manual_seed_is_the_same_function():
    assert nn.manual_seed is mg.manual_seed
    mg.manual_seed(3)
    first = nn.Linear(4, 3).weight.data.copy()
    nn.manual_seed(3)
    assert np.array_equal(nn.Linear(4, 3).weight.data, first)
    mg.manual_seed(3)
    mg.rand(1)  # one draw from the shared generator moves the layer's initialisation on
    assert not np.array_equal(nn.Linear(4, 3).weight.data, first)
    assert nn.init.generator() is shared_random.generator()


def test_generator_argument_gives_its_own_stream():
    a = mg.rand(5, generator=np.random.default_rng(1))
    b = mg.rand(5, generator=1)
    np.testing.assert_array_equal(a.data, b.data)


def test_random_values_lie_in_their_ranges():
    mg.manual_seed(0)
    uniform = mg.rand(10000)
    assert 0 <= uniform.data.min() and uniform.data.max() < 1
    assert abs(uniform.data.mean() - 0.5) < 0.02
    normal = mg.randn(10000)
    assert abs(normal.data.mean()) < 0.05 and abs(normal.data.std() - 1) < 0.05
    ints = mg.randint(-3, 4, (10000,))
    assert set(np.unique(ints.data)) == set(range(-3, 4))
    assert mg.randint(5, (3,)).data.max() < 5 and mg.randint(5, size=2).shape == (2,)
    assert mg.randint(2, 4, (3,), dtype=np.float32).dtype == np.float32
    half = mg.rand(1000, dtype=np.float16)
    assert half.dtype == np.float16 and half.data.max() < 1


# -- like another tensor --------------------------------------------------------------------------

def test_like_constructors_take_shape_and_dtype_of_their_input():
    floats, ints = mg.zeros(2, 3, dtype=np.float32), mg.arange(6).reshape(2, 3)
    for t in (mg.zeros_like(floats), mg.ones_like(floats), mg.full_like(floats, 2),
              mg.rand_like(floats), mg.randn_like(floats)):
        assert t.shape == (2, 3) and t.dtype == np.float32
    same_as_torch(mg.full_like(ints, 2.7), torch.full_like(torch.arange(6).reshape(2, 3), 2.7))
    assert mg.ones_like(ints, dtype=np.float64).dtype == np.float64
    assert mg.zeros_like(np.zeros((4, 1))).shape == (4, 1)
    with pytest.raises(RuntimeError, match="rand_like"):
        mg.rand_like(ints)  # PyTorch: not implemented for Long
    with pytest.raises(TypeError, match="zeros_like: input must be a Tensor"):
        mg.zeros_like([1, 2])


# -- requires_grad ------------------------------------------------------------------------------

def test_requires_grad_makes_a_leaf_that_backward_reaches():
    for t in (mg.zeros(3, requires_grad=True), mg.rand(3, requires_grad=True),
              mg.arange(3.0, requires_grad=True), mg.linspace(0, 1, 3, requires_grad=True),
              mg.full_like(mg.ones(3), 2.0, requires_grad=True), mg.eye(3, requires_grad=True)):
        assert t.requires_grad and t.is_leaf
        (t * t).sum().backward()
        np.testing.assert_allclose(t.grad.data, 2 * t.data)
    assert not mg.zeros(3).requires_grad


@pytest.mark.parametrize("make", [
    lambda: mg.zeros(2, dtype=np.int64, requires_grad=True),
    lambda: mg.arange(3, requires_grad=True),
    lambda: mg.full((2,), 3, requires_grad=True),
    lambda: mg.randint(0, 3, (2,), requires_grad=True),
    lambda: mg.ones_like(mg.arange(3), requires_grad=True),
])
def test_requires_grad_on_an_integer_dtype_is_a_runtime_error_as_in_torch(make):
    with pytest.raises(RuntimeError, match="only floating-point tensors can require"):
        make()


# -- bad arguments ------------------------------------------------------------------------------

# (call, PyTorch's class, what the message says)
BAD = [
    (lambda: mg.zeros(-1), RuntimeError, "zeros: size must be non-negative"),
    (lambda: mg.ones(2, -3), RuntimeError, "ones: size must be non-negative"),
    (lambda: mg.zeros(2.5), TypeError, "zeros: size must be ints"),
    (lambda: mg.zeros(True), TypeError, "zeros: size"),
    (lambda: mg.zeros(), TypeError, "zeros: size must be given"),
    (lambda: mg.empty("3"), TypeError, "empty: size"),
    (lambda: mg.zeros(2, dtype="banana"), TypeError, "zeros: dtype"),
    (lambda: mg.zeros(2, dtype=object), TypeError, "zeros: dtype"),
    (lambda: mg.zeros(2, requires_grad=1), TypeError, "zeros: requires_grad"),
    (lambda: mg.full((2,), "x"), TypeError, "full: fill_value must be a number"),
    (lambda: mg.full((2,), float("nan"), dtype=np.int64), RuntimeError, "full: fill_value"),
    (lambda: mg.full((2,), 300, dtype=np.uint8), RuntimeError, "range of uint8"),
    (lambda: mg.arange(0, 1, 0), RuntimeError, "arange: step must be nonzero"),
    (lambda: mg.arange(0, 1, -1), RuntimeError, "inconsistent with step sign"),
    (lambda: mg.arange(0, float("inf")), RuntimeError, "arange: end must be a finite"),
    (lambda: mg.arange("a"), TypeError, "arange: end must be a real number"),
    (lambda: mg.arange(3, dtype=bool), RuntimeError, "arange: dtype"),
    (lambda: mg.linspace(0, 1, -1), RuntimeError, "linspace: steps must be a non-negative"),
    (lambda: mg.linspace(0, 1, 2.5), TypeError, "linspace: steps"),
    (lambda: mg.linspace(0, "b", 3), TypeError, "linspace: end"),
    (lambda: mg.eye(-1), RuntimeError, "eye: n must be non-negative"),
    (lambda: mg.eye(2, -3), RuntimeError, "eye: m must be non-negative"),
    (lambda: mg.randint(3, 3, (2,)), RuntimeError, "randint: low must be less than high"),
    (lambda: mg.randint(5, 2), TypeError, "randint: size must be given"),
    (lambda: mg.randint(0, 5.5, (2,)), TypeError, "randint: high must be an integer"),
    (lambda: mg.randint(0, 300, (2,), dtype=np.uint8), RuntimeError, "range of uint8"),
    (lambda: mg.rand(2, dtype=np.int64), RuntimeError, "rand: dtype must be a floating"),
    (lambda: mg.randn(2, dtype=np.int64), RuntimeError, "randn: dtype must be a floating"),
    (lambda: mg.rand(2, generator="x"), TypeError, "rand: rng"),
    (lambda: mg.manual_seed(-1), ValueError, "manual_seed: seed"),
    (lambda: mg.manual_seed(1.5), TypeError, "manual_seed: seed"),
    (lambda: mg.zeros(10 ** 12), RuntimeError, "zeros: cannot allocate"),
    (lambda: mg.rand(10 ** 6, 10 ** 6), RuntimeError, "rand: cannot allocate"),
    (lambda: mg.eye(10 ** 12), MemoryError, "eye: cannot allocate"),
    (lambda: mg.arange(10 ** 15), MemoryError, "arange: cannot allocate"),
]


@pytest.mark.parametrize("call, error, message", BAD)
def test_bad_arguments_raise_pytorchs_class_with_a_message_naming_the_constructor(
        call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_a_complex_fill_value_gives_a_complex_tensor():
    assert mg.full((2,), 1j).dtype == np.complex128
    with pytest.raises(RuntimeError, match="full: fill_value must be a real number"):
        mg.full((2,), 1j, dtype=np.float64)
