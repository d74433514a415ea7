"""leaky_relu, gelu, softplus, max_pool2d, avg_pool2d and their layers: values, gradients and
second derivatives against PyTorch in float64 (skipped without torch), pooling over random
shapes, kernels, strides and paddings against PyTorch and against a plain NumPy loop, finite
differences, PyTorch's choices at ties and kinks, bad arguments (PyTorch's exception classes),
and the pooled CNN learning the digits in one epoch."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad import nn
from minigrad.training import build_model

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # the NumPy reference still runs
    torch = TF = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
TIGHT = dict(rtol=1e-12, atol=1e-14)
POOLING = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def _values(*shape, seed=0, scale=3.0):
    return np.random.default_rng(seed).normal(scale=scale, size=shape)


def _both(array, requires_grad=True):
    return (mg.tensor(array, requires_grad=requires_grad),
            torch.tensor(array, requires_grad=requires_grad))


def _check_against_torch(ours_fn, torch_fn, array, second_order=False):
    """Output, gradient (for a random output gradient) and, optionally, the gradient of that
    gradient's sum, ours against PyTorch's."""
    ours_x, torch_x = _both(array)
    ours, theirs = ours_fn(ours_x), torch_fn(torch_x)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), **TIGHT)
    seed = np.random.default_rng(1).normal(size=ours.shape)
    (ours_grad,) = mg.grad(ours, ours_x, mg.tensor(seed), create_graph=second_order)
    (torch_grad,) = torch.autograd.grad(theirs, torch_x, torch.tensor(seed),
                                        create_graph=second_order)
    np.testing.assert_allclose(ours_grad.data, torch_grad.detach().numpy(), **TIGHT)
    if second_order:
        (torch_second,) = torch.autograd.grad(torch_grad.sum(), torch_x, allow_unused=True)
        torch_second = 0.0 if torch_second is None else torch_second.numpy()
        if not ours_grad.requires_grad:  # a gradient that does not depend on x (leaky_relu)
            np.testing.assert_array_equal(torch_second, 0.0)
            return
        (ours_second,) = mg.grad(ours_grad.sum(), ours_x)
        np.testing.assert_allclose(ours_second.data, torch_second, rtol=1e-10, atol=1e-12)


# -- activations ------------------------------------------------------------------------------

ACTIVATIONS = {
    "leaky_relu": (lambda x: F.leaky_relu(x), lambda x: TF.leaky_relu(x)),
    "leaky_relu 0.2": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    "leaky_relu -1.5": (lambda x: F.leaky_relu(x, -1.5), lambda x: TF.leaky_relu(x, -1.5)),
    "gelu": (lambda x: F.gelu(x), lambda x: TF.gelu(x)),
    "gelu tanh": (lambda x: F.gelu(x, approximate="tanh"),
                  lambda x: TF.gelu(x, approximate="tanh")),
    "softplus": (lambda x: F.softplus(x), lambda x: TF.softplus(x)),
    "softplus beta 2 threshold 3": (lambda x: F.softplus(x, 2.0, 3.0),
                                    lambda x: TF.softplus(x, 2.0, 3.0)),
    "softplus beta -0.5": (lambda x: F.softplus(x, beta=-0.5), lambda x: TF.softplus(x, -0.5)),
}


@needs_torch
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activations_match_pytorch_to_second_order(name):
    ours, theirs = ACTIVATIONS[name]
    # wide values (|x| up to ~15: gelu's tails, softplus on both sides of its threshold), and
    # the kink of leaky_relu itself, where PyTorch's gradient is the slope
    array = np.concatenate([_values(40, scale=5.0), [0.0, -0.0, 30.0, -30.0, 1e-300]])
    _check_against_torch(ours, theirs, array, second_order=True)


@needs_torch
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activations_keep_float32_and_agree_with_pytorch_there(name):
    ours, theirs = ACTIVATIONS[name]
    array = _values(3, 5).astype(np.float32)
    ours_x, torch_x = _both(array)
    out, expected = ours(ours_x), theirs(torch_x)
    out.sum().backward()
    expected.sum().backward()
    assert out.dtype == np.float32 and ours_x.grad.dtype == np.float32
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours_x.grad.data, torch_x.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_activation_formulas_without_torch():
    x = np.linspace(-6, 6, 25)
    erf = np.array([math.erf(v / math.sqrt(2)) for v in x])
    np.testing.assert_allclose(F.gelu(x).data, 0.5 * x * (1 + erf), **TIGHT)
    np.testing.assert_allclose(F.leaky_relu(x, 0.3).data, np.where(x > 0, x, 0.3 * x), **TIGHT)
    np.testing.assert_allclose(F.softplus(x).data, np.log1p(np.exp(x)), **TIGHT)
    # beyond the threshold, x itself; far below 0 no underflow to 0 (log1p, not log(1 + .))
    assert F.softplus(np.array([25.0])).item() == 25.0
    assert F.softplus(np.array([-40.0])).item() == pytest.approx(math.exp(-40.0), rel=1e-12)
    t = mg.tensor([0.0, 0.0], requires_grad=True)
    F.leaky_relu(t, 0.25).sum().backward()
    np.testing.assert_array_equal(t.grad.data, [0.25, 0.25])  # PyTorch: x > 0 ? 1 : slope


@pytest.mark.parametrize("fn", [lambda x: F.leaky_relu(x, 0.1), F.gelu,
                                lambda x: F.gelu(x, "tanh"), lambda x: F.softplus(x, 2.0, 2.0)])
def test_activations_pass_gradcheck_and_gradgradcheck(fn):
    x = mg.tensor(np.random.default_rng(3).uniform(0.3, 1.7, (3, 4))
                  * np.random.default_rng(4).choice([-1.0, 1.0], (3, 4)), requires_grad=True)
    assert mg.gradcheck(fn, (x,))
    assert mg.gradgradcheck(fn, (x,))


@needs_torch
@pytest.mark.parametrize("ours, theirs", [
    (lambda: nn.LeakyReLU(0.3), lambda: torch.nn.LeakyReLU(0.3)),
    (lambda: nn.GELU(), lambda: torch.nn.GELU()),
    (lambda: nn.GELU("tanh"), lambda: torch.nn.GELU("tanh")),
    (lambda: nn.Softplus(1.5, 4.0), lambda: torch.nn.Softplus(1.5, 4.0)),
], ids=["LeakyReLU", "GELU", "GELU tanh", "Softplus"])
def test_activation_layers_match_pytorch_and_print_like_it(ours, theirs):
    ours, theirs = ours(), theirs()
    _check_against_torch(ours, theirs, _values(4, 6))
    assert repr(ours) == repr(theirs)
    assert list(ours.parameters()) == [] and ours.state_dict() == {}


def test_identity_returns_its_input_and_ignores_its_arguments():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    layer = nn.Identity(54, unused_argument=0.1)
    assert layer(x) is x and repr(layer) == "Identity()"
    assert layer("anything") == "anything"  # like PyTorch's, whatever it is given


# -- pooling: a NumPy loop as the reference ---------------------------------------------------

def _out_size(size, kernel, stride, padding, ceil_mode):
    out = (size + 2 * padding - kernel + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def reference_pool(x, kernel, stride, padding, ceil_mode=False, mode="max",
                   count_include_pad=True):
    """Pooling of (N, C, H, W) ``x`` and d(sum of outputs * seed)/dx, written as the loops of
    PyTorch's CPU kernels (pad cells skipped, first maximum wins, PyTorch's divisor)."""
    n, c, h, w = x.shape
    oh, ow = (_out_size(s, k, st, p, ceil_mode)
              for s, k, st, p in zip((h, w), kernel, stride, padding))
    out = np.zeros((n, c, oh, ow))
    picks = {}  # (n, c, i, j) -> list of ((row, col), weight)
    for b, ch, i, j in itertools.product(range(n), range(c), range(oh), range(ow)):
        top, left = i * stride[0] - padding[0], j * stride[1] - padding[1]
        bottom, right = top + kernel[0], left + kernel[1]
        cells = [(r, q) for r in range(max(top, 0), min(bottom, h))
                 for q in range(max(left, 0), min(right, w))]
        if mode == "max":
            best = cells[0]
            for cell in cells:
                if x[b, ch][cell] > x[b, ch][best]:
                    best = cell
            out[b, ch, i, j] = x[b, ch][best]
            picks[b, ch, i, j] = [(best, 1.0)]
        else:
            if count_include_pad:
                divisor = ((min(bottom, h + padding[0]) - top)
                           * (min(right, w + padding[1]) - left))
            else:
                divisor = len(cells)
            out[b, ch, i, j] = sum(x[b, ch][cell] for cell in cells) / divisor
            picks[b, ch, i, j] = [(cell, 1.0 / divisor) for cell in cells]
    return out, picks


def reference_grad(x_shape, picks, seed):
    grad = np.zeros(x_shape)
    for (b, ch, i, j), cells in picks.items():
        for (r, q), weight in cells:
            grad[b, ch, r, q] += weight * seed[b, ch, i, j]
    return grad


@st.composite
def pooling_settings(draw):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    ceil_mode = draw(st.booleans())
    size = tuple(draw(st.integers(max(1, k - 2 * p), 9)) for k, p in zip(kernel, padding))
    shape = (draw(st.integers(0, 2)), draw(st.integers(1, 3))) + size
    # integers in a small range: plenty of ties, which the first maximum must win
    values = np.random.default_rng(draw(st.integers(0, 2 ** 16))).integers(-3, 4, shape)
    return values.astype(np.float64), kernel, stride, padding, ceil_mode


def _ours(mode, x, kernel, stride, padding, ceil_mode, count_include_pad):
    if mode == "max":
        return F.max_pool2d(x, kernel, stride, padding, ceil_mode)
    return F.avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad)


def _theirs(mode, x, kernel, stride, padding, ceil_mode, count_include_pad):
    if mode == "max":
        return TF.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode)
    return TF.avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad)


@POOLING
@given(pooling_settings(), st.sampled_from(["max", "avg"]), st.booleans())
def test_pooling_matches_a_numpy_loop(setting, mode, count_include_pad):
    x, kernel, stride, padding, ceil_mode = setting
    expected, picks = reference_pool(x, kernel, stride, padding, ceil_mode, mode,
                                     count_include_pad)
    t = mg.tensor(x, requires_grad=True)
    out = _ours(mode, t, kernel, stride, padding, ceil_mode, count_include_pad)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, **TIGHT)
    seed = np.random.default_rng(5).normal(size=out.shape)
    out.backward(mg.tensor(seed))
    np.testing.assert_allclose(t.grad.data, reference_grad(x.shape, picks, seed), **TIGHT)


@needs_torch
@POOLING
@given(pooling_settings(), st.sampled_from(["max", "avg"]), st.booleans())
def test_pooling_matches_pytorch_values_and_gradients_ties_included(setting, mode,
                                                                     count_include_pad):
    x, kernel, stride, padding, ceil_mode = setting
    ours_x, torch_x = _both(x)
    ours = _ours(mode, ours_x, kernel, stride, padding, ceil_mode, count_include_pad)
    theirs = _theirs(mode, torch_x, kernel, stride, padding, ceil_mode, count_include_pad)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), **TIGHT)
    seed = np.random.default_rng(6).normal(size=ours.shape)
    ours.backward(mg.tensor(seed))
    theirs.backward(torch.tensor(seed))
    np.testing.assert_allclose(ours_x.grad.data, torch_x.grad.numpy(), **TIGHT)


@needs_torch
def test_pooling_second_order_and_special_inputs_match_pytorch():
    x = _values(2, 3, 7, 6)
    for fn, tfn in [(lambda t: F.max_pool2d(t, 3, 2, 1) ** 2,
                     lambda t: TF.max_pool2d(t, 3, 2, 1) ** 2),
                    (lambda t: F.avg_pool2d(t, (3, 2), (1, 2), (1, 0), True, False) ** 2,
                     lambda t: TF.avg_pool2d(t, (3, 2), (1, 2), (1, 0), True, False) ** 2)]:
        _check_against_torch(fn, tfn, x, second_order=True)
    # every input element of a window -inf: PyTorch picks the window's first input element
    minus_inf = np.full((1, 1, 3, 3), -np.inf)
    _check_against_torch(lambda t: F.max_pool2d(t, 2, 1, 1), lambda t: TF.max_pool2d(t, 2, 1, 1),
                         minus_inf)
    # unbatched (C, H, W), an empty batch, integers and float32
    _check_against_torch(lambda t: F.max_pool2d(t, 2), lambda t: TF.max_pool2d(t, 2), x[0])
    assert F.avg_pool2d(np.zeros((0, 2, 4, 4)), 2).shape == (0, 2, 2, 2)
    integers = np.random.default_rng(0).integers(-50, 50, (2, 2, 5, 5))
    out = F.max_pool2d(integers, 2, 1)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out.data, TF.max_pool2d(torch.tensor(integers), 2, 1).numpy())
    single = mg.tensor(x.astype(np.float32), requires_grad=True)
    pooled = F.avg_pool2d(single, 2)
    pooled.sum().backward()
    assert pooled.dtype == np.float32 and single.grad.dtype == np.float32


def test_a_nan_wins_its_window():
    x = np.array([[[[1.0, np.nan], [3.0, 2.0]]]])
    assert np.isnan(F.max_pool2d(x, 2).item())


@pytest.mark.parametrize("fn", [
    lambda x: F.max_pool2d(x, 2),
    lambda x: F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
    lambda x: F.max_pool2d(x, (2, 3), stride=(1, 2), padding=(1, 0)),
    lambda x: F.avg_pool2d(x, 2, ceil_mode=True),
    lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False),
], ids=["max 2", "max ceil", "max rect", "avg ceil", "avg no pad count"])
def test_pooling_passes_gradcheck_and_gradgradcheck(fn):
    # distinct values, apart by far more than eps: no ties for the maximum
    values = np.random.default_rng(7).permutation(2 * 2 * 5 * 5) * 0.1
    x = mg.tensor(values.reshape(2, 2, 5, 5), requires_grad=True)
    assert mg.gradcheck(fn, (x,))
    assert mg.gradgradcheck(fn, (x,))


@needs_torch
@pytest.mark.parametrize("ours, theirs", [
    (lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2)),
    (lambda: nn.MaxPool2d(3, 2, 1, ceil_mode=True),
     lambda: torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
    (lambda: nn.AvgPool2d((3, 2), padding=(1, 1)),
     lambda: torch.nn.AvgPool2d((3, 2), padding=(1, 1))),
    (lambda: nn.AvgPool2d(3, 1, 1, False, False),
     lambda: torch.nn.AvgPool2d(3, 1, 1, False, False)),
], ids=["max", "max ceil", "avg rect", "avg no pad count"])
def test_pooling_layers_match_pytorch(ours, theirs):
    ours, theirs = ours(), theirs()
    _check_against_torch(ours, theirs, _values(2, 3, 6, 7))
    assert (ours.kernel_size, ours.stride, ours.padding) == \
        (theirs.kernel_size, theirs.stride, theirs.padding)
    assert list(ours.parameters()) == [] and ours.state_dict() == {}


def test_pooling_layers_print_their_settings():
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0)"
    assert repr(nn.AvgPool2d(3, 1, 1, ceil_mode=True, count_include_pad=False)) == \
        "AvgPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True, count_include_pad=False)"


# -- bad arguments: PyTorch's exception classes -----------------------------------------------

X = np.zeros((1, 1, 5, 5))
BAD_CALLS = {
    "kernel 0": (lambda m: m.max_pool2d(X, 0, 1), "kernel_size"),
    "kernel 0 avg": (lambda m: m.avg_pool2d(X, (2, 0), 1), "kernel_size"),
    "stride 0": (lambda m: m.max_pool2d(X, 2, 0), "stride"),
    "stride 0 avg": (lambda m: m.avg_pool2d(X, 2, (1, 0)), "stride"),
    "padding beyond half the kernel": (lambda m: m.max_pool2d(X, 3, 1, 2), "half"),
    "padding beyond half the kernel avg": (lambda m: m.avg_pool2d(X, 3, 1, (0, 2)), "half"),
    "negative padding": (lambda m: m.max_pool2d(X, 3, 1, -1), "padding"),
    "three kernel sizes": (lambda m: m.max_pool2d(X, (2, 2, 2)), "kernel_size"),
    "float kernel": (lambda m: m.max_pool2d(X, 2.5), "kernel_size"),
    "string kernel": (lambda m: m.avg_pool2d(X, "2"), "kernel_size"),
    "bool kernel": (lambda m: m.max_pool2d(X, True), "kernel_size"),
    "kernel larger than the input": (lambda m: m.max_pool2d(X, 6), "too small"),
    "2-D input": (lambda m: m.max_pool2d(X[0, 0], 2), "3-D"),
    "no channels": (lambda m: m.avg_pool2d(np.zeros((1, 0, 5, 5)), 2), "3-D"),
    "float ceil_mode": (lambda m: m.avg_pool2d(X, 2, ceil_mode=1.5), "ceil_mode"),
    "string negative_slope": (lambda m: m.leaky_relu(X, "a"), "negative_slope"),
    "None negative_slope": (lambda m: m.leaky_relu(X, None), "negative_slope"),
    "integer leaky_relu": (lambda m: m.leaky_relu(np.ones(3, dtype=np.int64)), "float"),
    "unknown gelu form": (lambda m: m.gelu(X, approximate="exact"), "approximate"),
    "non-string gelu form": (lambda m: m.gelu(X, approximate=1), "approximate"),
    "integer gelu": (lambda m: m.gelu(np.ones(3, dtype=np.int64)), "float"),
    "string beta": (lambda m: m.softplus(X, beta="a"), "beta"),
    "integer softplus": (lambda m: m.softplus(np.ones(3, dtype=np.int64)), "float"),
}


class _TorchCalls:
    """``F``'s spelling of PyTorch's functions on float64 tensors (arguments as given)."""

    def __getattr__(self, name):
        def call(x, *args, **kwargs):
            return getattr(TF, name)(torch.as_tensor(np.asarray(x)), *args, **kwargs)
        return call


@pytest.mark.parametrize("name", BAD_CALLS)
def test_bad_arguments_raise_pytorchs_class_with_a_clear_message(name):
    call, mentioned = BAD_CALLS[name]
    with pytest.raises((TypeError, ValueError, RuntimeError, IndexError)) as ours:
        call(F)
    assert mentioned in str(ours.value)
    if torch is not None:
        with pytest.raises(Exception) as theirs:
            call(_TorchCalls())
        expected = type(theirs.value)
        # PyTorch's NotImplementedError ("not implemented for 'Long'") is a RuntimeError
        expected = RuntimeError if expected is NotImplementedError else expected
        assert isinstance(ours.value, expected), (type(ours.value), expected)


def test_softplus_beta_zero_is_refused():
    # PyTorch divides by it (inf everywhere); a clear error is more useful
    with pytest.raises(ValueError, match="softplus: beta must be a non-zero number"):
        F.softplus(X, beta=0)


@pytest.mark.parametrize("make, error", [
    (lambda: nn.MaxPool2d(0), RuntimeError),
    (lambda: nn.AvgPool2d(2, padding=2), RuntimeError),
    (lambda: nn.MaxPool2d(2, ceil_mode="yes"), TypeError),
    (lambda: nn.AvgPool2d(2, count_include_pad=None), TypeError),
    (lambda: nn.LeakyReLU("0.1"), TypeError),
    (lambda: nn.GELU("exact"), RuntimeError),
    (lambda: nn.Softplus(threshold=math.inf), ValueError),
])
def test_layers_check_their_settings_when_built(make, error):
    with pytest.raises(error):
        make()


# -- the pooled CNN ------------------------------------------------------------------------------

def test_the_pooled_cnn_has_the_pools_and_maps_images_to_scores():
    model = build_model("cnn-pool", input_shape=(1, 8, 8))
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Conv2d", "BatchNorm2d",
                     "ReLU", "AvgPool2d", "Flatten", "Linear"]
    assert model(np.zeros((3, 1, 8, 8), dtype=np.float32)).shape == (3, 10)
    with pytest.raises(ValueError, match="at least 4x4"):
        build_model("cnn-pool", input_shape=(1, 3, 8))


def test_the_pooled_cnn_learns_the_digits_in_one_epoch_from_the_command(tmp_path, capsys):
    from minigrad.app.cli import main
    code = main(["train", "--model", "cnn-pool", "--epochs", "1", "--out", str(tmp_path),
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    trained = next(line for line in out.splitlines() if line.startswith("trained"))
    accuracy = float(trained.split("test accuracy ")[1].split("%")[0])
    assert accuracy > 50  # chance is 10%
    assert (tmp_path / "digits_cnn-pool_batch.npz").exists()
