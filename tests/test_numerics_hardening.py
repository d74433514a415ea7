"""Exact numerics of the statistics (var, mean, BatchNorm, LayerNorm, GroupNorm) in float32 far
from zero, pow's gradient at zeros, and the argument checks of where, the reductions and the
normalization layers and functions."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad import nn
from minigrad.core.errors import AxisError, ShapeError

FAST = settings(max_examples=25, deadline=None)
OFFSETS = st.sampled_from([0.0, 1.0, 1e3, 1e4, 1e6, 1e8, -1e8])


def _data(seed, shape, offset, scale=100.0):
    """float32 data ``offset + scale * N(0, 1)``, and the same values in float64 (the
    reference computes with the float32 values exactly)."""
    x = (offset + scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)
    return x, x.astype(np.float64)


def _standardized(x64, axes, eps=1e-5):
    mean = x64.mean(axis=axes, keepdims=True)
    return (x64 - mean) / np.sqrt(x64.var(axis=axes, keepdims=True) + eps)


def _rel(got, want):
    """Largest relative error; where the exact value is 0 (constant data), the absolute one."""
    want = np.asarray(want, np.float64)
    scale = np.where(want == 0, 1.0, np.abs(want))
    return np.max(np.abs(np.asarray(got, np.float64) - want) / scale)


# ----------------------------------------------------------------------------------------------
# var and mean in float32 far from zero
# ----------------------------------------------------------------------------------------------

@FAST
@given(seed=st.integers(0, 2**16), offset=OFFSETS, n=st.integers(2, 3000),
       ddof=st.integers(0, 1))
def test_var_of_float32_matches_float64_across_offsets(seed, offset, n, ddof):
    x, x64 = _data(seed, (n, 3), offset)
    want = x64.var(axis=0, ddof=ddof)
    got = mg.Tensor(x).var(axis=0, ddof=ddof)
    assert got.dtype == np.float32
    # float32 rounding of the result is 6e-8; PyTorch reaches ~5e-8
    assert _rel(got.data, want) < 2.5e-7
    assert _rel(mg.Tensor(x).var(ddof=ddof).data, x64.var(ddof=ddof)) < 2.5e-7


def test_var_of_a_hundred_values_at_1e8():
    x, x64 = _data(1, 100, 1e8)
    assert _rel(mg.Tensor(x).var().data, x64.var()) < 1e-7  # was 1.5% off


@FAST
@given(seed=st.integers(0, 2**16), offset=OFFSETS, n=st.integers(1, 3000))
def test_mean_of_float32_is_the_rounded_float64_mean(seed, offset, n):
    x, x64 = _data(seed, (n, 2), offset)
    want = x64.mean(axis=0)
    got = mg.Tensor(x).mean(axis=0).data
    assert got.dtype == np.float32
    np.testing.assert_array_less(np.abs(got - want), np.spacing(np.abs(want).astype(np.float32)))


def test_var_and_its_gradient_are_no_worse_than_torch():
    torch = pytest.importorskip("torch")
    for offset in (0.0, 1e4, 1e8):
        x, x64 = _data(2, (1000, 4), offset)
        want = x64.var(axis=0)
        t = torch.tensor(x)
        torch_error = _rel(t.var(0, unbiased=False).numpy(), want)
        assert _rel(mg.Tensor(x).var(axis=0).data, want) <= max(2 * torch_error, 1e-7)
        # gradient 2 (x - mean) / n: compare with the float64 one
        grad_want = 2 * (x64 - x64.mean(axis=0)) / 1000
        tx = torch.tensor(x, requires_grad=True)
        tx.var(0, unbiased=False).sum().backward()
        mx = mg.Tensor(x, requires_grad=True)
        mx.var(axis=0).sum().backward()
        scale = np.abs(grad_want).max()
        torch_grad_error = np.abs(tx.grad.numpy() - grad_want).max() / scale
        assert np.abs(mx.grad.data - grad_want).max() / scale <= max(2 * torch_grad_error, 1e-6)


def test_var_with_no_degrees_of_freedom_is_inf_or_nan_as_in_torch():
    torch = pytest.importorskip("torch")
    cases = [([1.0, 2.0], 2), ([1.0, 2.0], 3), ([1.0], 1), ([], 0), ([3.0, 3.0], 2)]
    for values, ddof in cases:
        with pytest.warns(RuntimeWarning, match="var: degrees of freedom <= 0"):
            got = mg.Tensor(np.array(values)).var(ddof=ddof).data
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = torch.tensor(values, dtype=torch.float64).var(correction=ddof).numpy()
        np.testing.assert_array_equal(got, want, err_msg=f"{values} ddof={ddof}")


def test_mean_of_nothing_is_nan_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(mg.Tensor(np.zeros((0, 3))).mean().data)
        np.testing.assert_array_equal(mg.Tensor(np.zeros((0, 3))).mean(axis=0).data,
                                      np.full(3, np.nan))


# ----------------------------------------------------------------------------------------------
# The normalization layers far from zero: both BatchNorm paths, LayerNorm, GroupNorm
# ----------------------------------------------------------------------------------------------

def _batch_norm_reference(x64, grad64, weight64):
    """Output, running_var after one step from 1, and the gradients, in float64."""
    axes = (0,) + tuple(range(2, x64.ndim))
    n = x64.size // x64.shape[1]
    shape = (-1,) + (1,) * (x64.ndim - 2)
    x_hat = _standardized(x64, axes)
    invstd = 1 / np.sqrt(x64.var(axis=axes, keepdims=True) + 1e-5)
    out = x_hat * weight64.reshape(shape)
    running_var = 0.9 + 0.1 * x64.var(axis=axes) * n / (n - 1)
    d_hat = grad64 * weight64.reshape(shape)
    dx = invstd * (d_hat - d_hat.mean(axis=axes, keepdims=True)
                   - x_hat * (d_hat * x_hat).mean(axis=axes, keepdims=True))
    return out, running_var, dx, (grad64 * x_hat).sum(axis=axes)


@FAST
@given(seed=st.integers(0, 2**16), offset=OFFSETS, fused=st.booleans(),
       shape=st.sampled_from([(64, 3), (300, 2), (8, 3, 5), (5, 2, 3, 4)]))
def test_batch_norm_matches_float64_across_offsets(seed, offset, fused, shape):
    x, x64 = _data(seed, shape, offset)
    grad, grad64 = _data(seed + 1, shape, 0.0, scale=1.0)
    weight64 = 1 + np.random.default_rng(seed).random(shape[1])
    layer = (nn.BatchNorm1d if len(shape) < 4 else nn.BatchNorm2d)(shape[1], fused=fused)
    layer = layer.to(np.float32)
    layer.weight.data[...] = weight64
    weight64 = layer.weight.data.astype(np.float64)
    out_want, running_var_want, dx_want, dweight_want = _batch_norm_reference(x64, grad64,
                                                                             weight64)
    inputs = mg.Tensor(x, requires_grad=True)
    out = layer(inputs)
    out.backward(mg.Tensor(grad))
    assert _rel(layer.running_var.data, running_var_want) < 1e-6  # a few float32 roundings
    if fused:  # fully centred: as accurate as float32 holds the values
        out_bound, dx_bound = 2e-6, 2e-5
    else:  # the composed graph's x - mean holds the mean rounded to float32
        std = x64.std(axis=(0,) + tuple(range(2, x64.ndim))).min()
        out_bound = 2e-6 + np.spacing(np.float32(np.abs(x64).max())) / (2 * std)
        dx_bound = 2e-5 + 4 * out_bound
    assert np.abs(out.data - out_want).max() < out_bound * weight64.max()
    assert np.abs(inputs.grad.data - dx_want).max() < dx_bound * np.abs(dx_want).max() * 10
    axes = (0,) + tuple(range(2, x64.ndim))
    assert np.abs(layer.weight.grad.data - dweight_want).max() < (
        out_bound * np.abs(grad64).sum(axis=axes).max() + 1e-5 * np.abs(dweight_want).max())


def test_batch_norm_at_1e8_is_as_accurate_as_float32_allows():
    """The numbers of the report: running_var was 37% off, the output's std 15% off."""
    x, x64 = _data(0, (256, 8), 1e8)
    want = 0.9 + 0.1 * x64.var(axis=0) * 256 / 255
    for fused in (False, True):
        layer = nn.BatchNorm1d(8, fused=fused).to(np.float32)
        out = layer(mg.Tensor(x))
        assert _rel(layer.running_var.data, want) < 1e-7
        np.testing.assert_allclose(out.data.astype(np.float64).std(axis=0), 1.0, rtol=1e-5)


def test_fused_batch_norm_second_derivative_far_from_zero_matches_float64():
    """create_graph=True rebuilds x_hat from x with Tensor ops: centred twice, as forward."""
    x, x64 = _data(3, (40, 2), 1e8)

    def dx_of(values, fused):
        inputs = mg.Tensor(values, requires_grad=True)
        out = F.batch_norm(inputs, None, None, training=True, fused=fused)
        (dx,) = mg.grad((out * out * out).sum(), inputs, create_graph=True)
        (d2,) = mg.grad((dx * dx).sum(), inputs)
        return dx.data, d2.data

    want, want2 = dx_of(x64, False)
    got, got2 = dx_of(x, True)
    np.testing.assert_allclose(got, want, atol=1e-5 * np.abs(want).max())
    np.testing.assert_allclose(got2, want2, atol=1e-4 * np.abs(want2).max())


@FAST
@given(seed=st.integers(0, 2**16), offset=OFFSETS,
       case=st.sampled_from([("layer", (6, 40)), ("layer", (3, 4, 10)), ("group", (4, 6, 10)),
                             ("group", (3, 4, 2, 5))]))
def test_layer_and_group_norm_match_float64_across_offsets(seed, offset, case):
    kind, shape = case
    x, x64 = _data(seed, shape, offset)
    inputs = mg.Tensor(x, requires_grad=True)
    if kind == "layer":
        out = nn.LayerNorm(shape[-1]).to(np.float32)(inputs)
        want = _standardized(x64, (-1,))
    else:
        out = nn.GroupNorm(2, shape[1]).to(np.float32)(inputs)
        grouped = x64.reshape(shape[0], 2, -1)
        want = _standardized(grouped, (2,)).reshape(shape)
    # x - mean holds the mean rounded to float32: half a spacing there, over the group's std
    axes = (-1,) if kind == "layer" else (2,)
    grouped = x64 if kind == "layer" else x64.reshape(shape[0], 2, -1)
    std = grouped.std(axis=axes).min()
    spacing = np.spacing(np.float32(np.abs(grouped).max()))
    bound = 2e-6 + spacing / (2 * std)
    assert np.abs(out.data - want).max() < bound
    out.sum().backward()  # d sum(x_hat) / dx is 0: what is left is rounding, over the std
    assert np.abs(inputs.grad.data).max() < 4 * bound / std


def test_norm_layers_far_from_zero_are_no_worse_than_torch():
    torch = pytest.importorskip("torch")
    x, x64 = _data(4, (8, 4, 16), 1e8)
    grad, grad64 = _data(5, (8, 4, 16), 0.0, scale=1.0)
    cases = [
        (lambda t: F.group_norm(t, 2), lambda t: torch.nn.functional.group_norm(t, 2),
         lambda a: _standardized(a.reshape(8, 2, 32), (2,)).reshape(8, 4, 16)),
        (lambda t: F.layer_norm(t, (16,)), lambda t: torch.nn.functional.layer_norm(t, (16,)),
         lambda a: _standardized(a, (-1,))),
        (lambda t: F.batch_norm(t, None, None, training=True, fused=True),
         lambda t: torch.nn.functional.batch_norm(t, None, None, training=True),
         lambda a: _standardized(a, (0, 2))),
        (lambda t: F.batch_norm(t, None, None, training=True),
         lambda t: torch.nn.functional.batch_norm(t, None, None, training=True),
         lambda a: _standardized(a, (0, 2))),
    ]
    for ours, theirs, reference in cases:
        want = reference(x64)
        # the float64 gradient of sum(out * grad), by the chain rule through float64 ops
        x_ref = torch.tensor(x64, requires_grad=True)
        t64 = theirs(x_ref)
        (t64 * torch.tensor(grad64)).sum().backward()
        dx_want = x_ref.grad.numpy()
        tx = torch.tensor(x, requires_grad=True)
        t_out = theirs(tx)
        (t_out * torch.tensor(grad)).sum().backward()
        mx = mg.Tensor(x, requires_grad=True)
        m_out = ours(mx)
        (m_out * mg.Tensor(grad)).sum().backward()
        torch_out_error = np.abs(t_out.detach().numpy() - want).max()
        torch_dx_error = np.abs(tx.grad.numpy() - dx_want).max()
        assert np.abs(m_out.data - want).max() <= max(2 * torch_out_error, 1e-5)
        assert np.abs(mx.grad.data - dx_want).max() <= max(2 * torch_dx_error, 1e-5)


# ----------------------------------------------------------------------------------------------
# pow at zeros: PyTorch's gradient
# ----------------------------------------------------------------------------------------------

BASES = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 3.0])
EXPONENTS = np.array([0.0, 1.0, 2.0, -1.0, 0.0, 1.5, 0.5, -2.0])


def test_pow_gradients_at_zeros_are_torchs():
    torch = pytest.importorskip("torch")
    base, exponent = mg.Tensor(BASES, requires_grad=True), mg.Tensor(EXPONENTS,
                                                                      requires_grad=True)
    with np.errstate(divide="ignore"):  # 0 ** -1 is inf in forward
        out = base ** exponent
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning from backward: the zeros are chosen
        out.sum().backward()
    tb, te = (torch.tensor(a, requires_grad=True) for a in (BASES, EXPONENTS))
    (tb ** te).sum().backward()
    np.testing.assert_array_equal(base.grad.data, tb.grad.numpy())
    np.testing.assert_array_equal(exponent.grad.data, te.grad.numpy())


@pytest.mark.parametrize("fn", [lambda t: 0.0 ** t, lambda t: t ** t, lambda t: t ** 0,
                                lambda t: t ** 2.0, lambda t: 2.0 ** t],
                         ids=["0**t", "t**t", "t**0", "t**2", "2**t"])
def test_pow_gradient_at_zero_is_torchs_and_finite(fn):
    torch = pytest.importorskip("torch")
    values = np.array([0.0, 1.0, 0.0])
    t = mg.Tensor(values, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fn(t).sum().backward()
    tt = torch.tensor(values, requires_grad=True)
    fn(tt).sum().backward()
    np.testing.assert_array_equal(t.grad.data, tt.grad.numpy())
    assert np.isfinite(t.grad.data).all()


def test_pow_second_derivative_at_zero_is_finite():
    t = mg.Tensor([0.0, 1.0, 0.0], requires_grad=True)
    (g,) = mg.grad((t ** t).sum(), t, create_graph=True)
    (g2,) = mg.grad(g.sum(), t)
    assert np.isfinite(g2.data).all()
    np.testing.assert_allclose(g2.data[1], 2.0)  # d2/dt2 t**t = t**t ((1 + log t)^2 + 1/t)


@FAST
@given(base=st.floats(0.1, 4.0), exponent=st.floats(-3.0, 3.0))
def test_pow_gradients_match_finite_differences_away_from_zero(base, exponent):
    b, e = mg.Tensor([base], requires_grad=True), mg.Tensor([exponent], requires_grad=True)
    (b ** e).sum().backward()
    h = 1e-6
    np.testing.assert_allclose(b.grad.data[0], ((base + h) ** exponent
                                                - (base - h) ** exponent) / (2 * h), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(e.grad.data[0], (base ** (exponent + h)
                                                - base ** (exponent - h)) / (2 * h), rtol=1e-5,
                               atol=1e-6)


# ----------------------------------------------------------------------------------------------
# where
# ----------------------------------------------------------------------------------------------

X = mg.Tensor([1.0, 2.0], requires_grad=True)


@pytest.mark.parametrize("args, name", [
    (([True, False], "a", X), "a"),
    (([True, False], X, "b"), "b"),
    (([True, False], X, None), "b"),
    (([True, False], object(), X), "a"),
    (([True, False], [[1.0], [1.0, 2.0]], X), "a"),
    ((None, X, X), "condition"),
    (("yes", X, X), "condition"),
    ((["a", "b"], X, X), "condition"),
    (([[True], [True, False]], X, X), "condition"),
])
def test_where_rejects_what_is_not_numbers_naming_the_argument(args, name):
    with pytest.raises(TypeError, match=f"^where: {name} must be "):
        mg.where(*args)


def test_where_bad_arguments_raise_as_in_torch():
    torch = pytest.importorskip("torch")
    for args in ((torch.tensor([True]), "a", torch.ones(1)), (None, torch.ones(1), torch.ones(1))):
        with pytest.raises(TypeError):
            torch.where(*args)
    with pytest.raises(RuntimeError):
        torch.where(torch.tensor([True, False, True]), torch.ones(2), torch.ones(2))
    with pytest.raises(ShapeError, match=r"where: shapes \(3,\) and \(2,\)"):
        mg.where([True, False, True], X, X)


def test_where_accepts_numbers_arrays_and_tensors():
    np.testing.assert_array_equal(mg.where([1, 0], X, 5.0).data, [1.0, 5.0])
    np.testing.assert_array_equal(mg.where(np.array([False, True]), 0, X).data, [1.0, 0.0])
    np.testing.assert_array_equal(mg.where(X > 1, X, np.array([7.0, 7.0])).data, [7.0, 2.0])


# ----------------------------------------------------------------------------------------------
# Reductions: empty max, axis, keepdims and ddof
# ----------------------------------------------------------------------------------------------

def test_max_of_nothing_raises_torchs_classes():
    torch = pytest.importorskip("torch")
    empty = mg.Tensor(np.zeros((0, 3)))
    with pytest.raises(RuntimeError, match=r"^max: the input must be non-empty.*\(0, 3\)"):
        empty.max()
    with pytest.raises(RuntimeError):
        torch.empty(0, 3).max()
    for axis in (0, (0, 1), -2):
        with pytest.raises(IndexError, match=r"^max: dim 0 of the input must be of non-zero"):
            empty.max(axis=axis)
        with pytest.raises(IndexError):
            torch.empty(0, 3).amax(dim=axis)
    assert empty.max(axis=1).shape == (0,)
    assert tuple(torch.empty(0, 3).amax(dim=1).shape) == (0,)


REDUCTIONS = {"sum": lambda t, **kw: t.sum(**kw), "mean": lambda t, **kw: t.mean(**kw),
              "var": lambda t, **kw: t.var(**kw), "max": lambda t, **kw: t.max(**kw)}


@pytest.mark.parametrize("op", sorted(REDUCTIONS))
@pytest.mark.parametrize("kwargs, error, message", [
    ({"axis": 1.5}, TypeError, "axis must be None, an int or a tuple of ints, got 1.5"),
    ({"axis": "a"}, TypeError, "axis must be None, an int or a tuple of ints, got 'a'"),
    ({"axis": (0, "a")}, TypeError, "axis must be"),
    ({"axis": True}, TypeError, "axis must be"),
    ({"axis": 2}, AxisError, "axis 2 is out of range for a tensor with 2 dims"),
    ({"axis": -3}, AxisError, "axis -3 is out of range"),
    ({"axis": (0, 5)}, AxisError, "axis 5 is out of range"),
    ({"keepdims": "yes"}, TypeError, "keepdims must be True or False, got 'yes'"),
    ({"keepdims": 1}, TypeError, "keepdims must be True or False, got 1"),
    ({"keepdims": None}, TypeError, "keepdims must be True or False, got None"),
])
def test_reductions_check_axis_and_keepdims(op, kwargs, error, message):
    x = mg.Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(error, match=f"^{op}: {message}"):
        REDUCTIONS[op](x, **kwargs)


def test_axis_out_of_range_is_an_index_error_as_in_torch():
    torch = pytest.importorskip("torch")
    with pytest.raises(IndexError):
        torch.ones(2, 3).sum(dim=2)
    with pytest.raises(IndexError):
        mg.Tensor(np.ones((2, 3))).sum(axis=2)


@pytest.mark.parametrize("ddof, error", [(-1, ValueError), (1.5, TypeError), ("1", TypeError),
                                         (None, TypeError), (True, TypeError)])
def test_var_ddof_must_be_a_non_negative_int(ddof, error):
    with pytest.raises(error, match=f"^var: ddof must be a non-negative integer, got {ddof!r}"):
        mg.Tensor(np.ones(4)).var(ddof=ddof)
    assert float(mg.Tensor([1.0, 3.0]).var(ddof=np.int64(1)).data) == 2.0


# ----------------------------------------------------------------------------------------------
# The normalization layers' and functions' arguments
# ----------------------------------------------------------------------------------------------

BAD_EPS = [(0, ValueError, "a positive number"), (-1.0, ValueError, "a positive number"),
           (float("nan"), ValueError, "a finite number"), (float("inf"), ValueError, "a finite number"),
           ("1e-5", TypeError, "a real number"), (None, TypeError, "a real number")]


@pytest.mark.parametrize("eps, error, expected", BAD_EPS)
@pytest.mark.parametrize("make, owner", [
    (lambda eps: nn.BatchNorm1d(3, eps=eps), "BatchNorm1d"),
    (lambda eps: nn.BatchNorm2d(3, eps=eps), "BatchNorm2d"),
    (lambda eps: nn.LayerNorm(3, eps=eps), "LayerNorm"),
    (lambda eps: nn.GroupNorm(1, 3, eps=eps), "GroupNorm"),
    (lambda eps: F.batch_norm(np.ones((4, 3)), None, None, training=True, eps=eps), "batch_norm"),
    (lambda eps: F.layer_norm(np.ones((4, 3)), 3, eps=eps), "layer_norm"),
    (lambda eps: F.group_norm(np.ones((4, 3)), 1, eps=eps), "group_norm"),
], ids=["BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm", "batch_norm", "layer_norm",
        "group_norm"])
def test_eps_must_be_a_positive_finite_number(make, owner, eps, error, expected):
    with pytest.raises(error, match=f"^{owner}: eps must be {expected}"):
        make(eps)


def test_eps_zero_would_give_nans_on_a_constant_channel():
    """Why eps=0 is refused: a constant channel has variance 0 and 0 / sqrt(0) is nan."""
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.ones((4, 3))
        assert np.isnan((x - x.mean(0)) / np.sqrt(x.var(0))).all()
    out = nn.BatchNorm1d(3)(x)
    np.testing.assert_array_equal(out.data, 0.0)


@pytest.mark.parametrize("momentum, error, expected", [
    (-0.1, ValueError, r"a probability in \[0, 1\]"), (1.5, ValueError, r"a probability"),
    (float("nan"), ValueError, "a finite number"), ("0.1", TypeError, "a real number")])
def test_momentum_must_be_none_or_in_0_1(momentum, error, expected):
    with pytest.raises(error, match=f"^BatchNorm1d: momentum must be {expected}"):
        nn.BatchNorm1d(3, momentum=momentum)
    with pytest.raises(error, match=f"^batch_norm: momentum must be {expected}"):
        F.batch_norm(np.ones((4, 3)), None, None, training=True, momentum=momentum)
    assert nn.BatchNorm1d(3, momentum=None).momentum is None
    assert nn.BatchNorm1d(3, momentum=1).momentum == 1.0


def test_functional_batch_norm_momentum_none_says_it_is_a_layer_option():
    with pytest.raises(TypeError, match="^batch_norm: momentum must be a number in .* layer "
                                        "option"):
        F.batch_norm(np.ones((4, 3)), None, None, training=True, momentum=None)


@pytest.mark.parametrize("make, expected", [
    (lambda: nn.BatchNorm1d(0), r"^BatchNorm1d: num_features must be a positive integer, got 0"),
    (lambda: nn.BatchNorm2d(-2), r"^BatchNorm2d: num_features must be a positive integer"),
    (lambda: nn.BatchNorm1d(2.5), r"^BatchNorm1d: num_features must be a positive integer"),
    (lambda: nn.LayerNorm(-1), r"^LayerNorm: normalized_shape must be a positive integer, "
                               r"got -1"),
    (lambda: nn.LayerNorm((3, 0)), r"^LayerNorm: normalized_shape must be a positive integer"),
    (lambda: nn.LayerNorm(()), r"^LayerNorm: normalized_shape must be a positive int or a "
                               r"non-empty tuple"),
    (lambda: nn.LayerNorm("3"), r"^LayerNorm: normalized_shape must be a positive int or"),
    (lambda: nn.LayerNorm((3, 1.5)), r"^LayerNorm: normalized_shape must be a positive integer"),
    (lambda: nn.GroupNorm(0, 4), r"^GroupNorm: num_groups must be a positive integer, got 0"),
    (lambda: nn.GroupNorm(2, 0), r"^GroupNorm: num_channels must be a positive integer"),
    (lambda: nn.GroupNorm(2.0, 4), r"^GroupNorm: num_groups must be a positive integer"),
    (lambda: nn.GroupNorm(3, 4), r"^GroupNorm: num_channels must be divisible by "
                                 r"num_groups=3, got 4"),
    (lambda: F.layer_norm(np.ones((2, 3)), -3), r"^layer_norm: normalized_shape must be a "
                                                r"positive integer"),
    (lambda: F.layer_norm(np.ones((2, 3)), None), r"^layer_norm: normalized_shape must be"),
    (lambda: F.group_norm(np.ones((2, 4)), 0), r"^group_norm: num_groups must be a positive"),
    (lambda: F.group_norm(np.ones((2, 4)), "2"), r"^group_norm: num_groups must be a positive"),
])
def test_sizes_must_be_positive_ints(make, expected):
    with pytest.raises(ValueError, match=expected):
        make()


@pytest.mark.parametrize("call, error, expected", [
    (lambda: nn.BatchNorm1d(3)(np.ones((2, 3, 4, 5))), ValueError,
     r"^BatchNorm1d\(3\): the input must be of shape \(N, C\) or \(N, C, L\) with C=3, got "
     r"Tensor of shape \(2, 3, 4, 5\)"),
    (lambda: nn.BatchNorm1d(3)(np.ones((2, 4))), RuntimeError,
     r"^BatchNorm1d\(3\): the input must be .* with C=3, got Tensor of shape \(2, 4\)"),
    (lambda: nn.BatchNorm2d(3)(np.ones((2, 3, 4))), ValueError,
     r"^BatchNorm2d\(3\): the input must be of shape \(N, C, H, W\)"),
    (lambda: nn.BatchNorm2d(3)(np.ones((2, 2, 4, 4))), RuntimeError,
     r"^BatchNorm2d\(3\).*got Tensor of shape \(2, 2, 4, 4\)"),
    (lambda: nn.LayerNorm(4)(np.ones((2, 3))), RuntimeError,
     r"^layer_norm: the input must be of shape \(\*, 4\) .*got Tensor of shape \(2, 3\)"),
    (lambda: nn.LayerNorm((2, 3))(np.ones(3)), RuntimeError,
     r"^layer_norm: the input must be of shape \(\*, 2, 3\)"),
    (lambda: nn.GroupNorm(2, 4)(np.ones((3, 6))), RuntimeError,
     r"^GroupNorm\(2, 4\): the input must be of shape \(N, 4, ...\), got Tensor of shape "
     r"\(3, 6\)"),
    (lambda: nn.GroupNorm(2, 4)(np.ones(4)), RuntimeError, r"^GroupNorm\(2, 4\): the input"),
    (lambda: F.group_norm(np.ones((3, 4)), 3), RuntimeError,
     r"^group_norm: the input must be of shape \(N, C, ...\) with C divisible by num_groups=3"),
    (lambda: F.group_norm(np.ones(4), 2), RuntimeError, r"^group_norm: the input must be"),
    (lambda: F.batch_norm(np.ones(3), None, None, training=True), ValueError,
     r"^batch_norm: the input must be of shape \(N, C, ...\) with at least 2 dims"),
    (lambda: F.batch_norm(np.ones((2, 3)), np.zeros(4), np.ones(4)), RuntimeError,
     r"^batch_norm: running_mean has shape \(4,\), expected \(3,\)"),
])
def test_wrong_input_shapes_name_the_layer_and_both_shapes(call, error, expected):
    with pytest.raises(error, match=expected):
        call()


def test_wrong_input_shapes_raise_torchs_classes():
    torch = pytest.importorskip("torch")
    cases = [(lambda: torch.nn.BatchNorm1d(3)(torch.ones(2, 3, 4, 5)), ValueError),
             (lambda: torch.nn.BatchNorm1d(3)(torch.ones(2, 4)), RuntimeError),
             (lambda: torch.nn.LayerNorm(4)(torch.ones(2, 3)), RuntimeError),
             (lambda: torch.nn.GroupNorm(2, 4)(torch.ones(3, 6)), RuntimeError),
             (lambda: torch.nn.functional.group_norm(torch.ones(3, 4), 3), RuntimeError)]
    for call, error in cases:
        with pytest.raises(error):
            call()


def test_batch_norm_needs_more_than_one_value_per_channel_when_training():
    for fused in (False, True):
        with pytest.raises(ValueError, match="Expected more than 1 value per channel when "
                                             r"training, got input size \(1, 3\)"):
            nn.BatchNorm1d(3, fused=fused)(np.ones((1, 3)))


def test_group_norm_of_one_value_per_group_is_zero_as_in_torch():
    """PyTorch 2.13 raises nothing here (GroupNorm keeps no running variance to divide by
    n - 1): a group of one value normalizes to 0."""
    torch = pytest.importorskip("torch")
    x = np.arange(6.0).reshape(3, 2)
    out = nn.GroupNorm(2, 2)(x)
    np.testing.assert_array_equal(out.data, torch.nn.GroupNorm(2, 2).double()(
        torch.tensor(x)).detach().numpy())
    np.testing.assert_array_equal(out.data, 0.0)


def test_a_failed_call_leaves_the_running_statistics_as_they_were():
    layer = nn.BatchNorm1d(3)
    layer(np.random.default_rng(0).standard_normal((4, 3)))
    before = (layer.running_mean.data.copy(), layer.running_var.data.copy())
    for bad in (np.ones((4, 2)), np.ones((1, 3)), np.ones((4, 3, 2, 2))):
        with pytest.raises(ValueError):
            layer(bad)
    np.testing.assert_array_equal(layer.running_mean.data, before[0])
    np.testing.assert_array_equal(layer.running_var.data, before[1])
    assert int(layer.num_batches_tracked.data) == 1
