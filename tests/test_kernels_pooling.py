"""The compiled choice of max pooling's winners (minigrad.kernels.pooling) against the NumPy code
it replaces: the same flat indices, ties, NaNs and all-lowest windows included, over shapes,
kernel sizes, strides, paddings, ceil_mode, dtypes (floats and integers) and both memory
layouts; max_pool2d's values and gradients on both paths, against PyTorch where installed;
second derivatives with the kernels on; and the switch turning the kernel off."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad import kernels
from minigrad.functional.pooling import _output_size, _window_argmax_numpy

from conftest import FAST, both_paths

pytestmark = pytest.mark.skipif(not kernels.available(), reason="Numba is not installed")

try:
    import torch
except ImportError:
    torch = None

DTYPES = [np.float32, np.float64, np.int64, np.int32, np.uint8]


@st.composite
def poolings(draw):
    """(array, kernel, stride, padding, ceil_mode): small integer values, so windows tie often;
    float arrays may hold NaNs and -infs; an array may be an (N, C, H, W) view of channels-last
    memory, as conv2d returns."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    size = tuple(draw(st.integers(max(1, k - 2 * p), 9)) for k, p in zip(kernel, padding))
    shape = (draw(st.integers(0, 3)), draw(st.integers(1, 5))) + size
    dtype = draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    x = rng.integers(0, 4, shape).astype(dtype)
    if x.dtype.kind == "f" and draw(st.booleans()):
        specials = rng.random(shape)
        x[specials < 0.1] = np.nan
        x[specials > 0.8] = -np.inf
    if draw(st.booleans()):
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return x, kernel, stride, padding, draw(st.booleans())


@FAST
@given(poolings())
def test_the_compiled_winners_are_the_numpy_ones(setting):
    from minigrad.kernels.pooling import window_argmax
    x, kernel, stride, padding, ceil_mode = setting
    out_size = _output_size("test", x.shape, kernel, stride, padding, ceil_mode)
    for channels_last in (False, True):
        data = np.ascontiguousarray(x.transpose(0, 2, 3, 1) if channels_last else x)
        compiled = window_argmax(data, kernel, stride, padding, out_size, channels_last)
        reference = _window_argmax_numpy(data, kernel, stride, padding, out_size,
                                         channels_last)
        assert compiled.dtype == reference.dtype == np.intp
        np.testing.assert_array_equal(compiled, reference)


@FAST
@given(poolings(), st.integers(0, 2**31 - 1))
def test_max_pool2d_values_and_gradients_match_on_both_paths(setting, seed):
    x, kernel, stride, padding, ceil_mode = setting
    args = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)

    def run():
        if x.dtype.kind != "f":  # integers: values only (no gradients)
            return [F.max_pool2d(mg.Tensor(x), **args).data]
        leaf = mg.Tensor(x.copy(), requires_grad=True)
        out = F.max_pool2d(leaf, **args)
        w = np.random.default_rng(seed).standard_normal(out.shape).astype(x.dtype)
        (out * mg.Tensor(w)).sum().backward()
        return [out.data, leaf.grad.data]

    on, off = both_paths(run)
    for a, b in zip(on, off):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)  # the same picks: the same sums, exactly


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
@FAST
@given(poolings(), st.booleans())
def test_max_pool2d_matches_pytorch_ties_included(setting, on):
    x, kernel, stride, padding, ceil_mode = setting
    x = x.astype(np.float64)
    x[np.isnan(x)] = 0.0  # PyTorch keeps a window's last NaN, this its first
    with kernels.use_kernels(on):
        ours_x = mg.tensor(x, requires_grad=True)
        ours = F.max_pool2d(ours_x, kernel, stride, padding, ceil_mode)
        seed = np.random.default_rng(0).standard_normal(ours.shape)
        ours.backward(mg.tensor(seed))
    theirs_x = torch.tensor(x, requires_grad=True)
    theirs = torch.nn.functional.max_pool2d(theirs_x, kernel, stride, padding,
                                            ceil_mode=ceil_mode)
    theirs.backward(torch.tensor(seed))
    np.testing.assert_array_equal(ours.data, theirs.detach().numpy())
    np.testing.assert_array_equal(ours_x.grad.data, theirs_x.grad.numpy())


@pytest.mark.parametrize("channels_last", [False, True])
def test_max_pool2d_second_derivatives_with_kernels_on(channels_last):
    values = np.random.default_rng(7).permutation(2 * 3 * 5 * 5).reshape(2, 3, 5, 5) * 0.1
    if channels_last:
        values = np.ascontiguousarray(values.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    x = mg.Tensor(values, requires_grad=True)
    with kernels.use_kernels(True):
        for args in [(2,), (3, 2, 1, True), ((2, 3), (1, 2), (1, 0))]:
            assert mg.gradcheck(lambda t: F.max_pool2d(t, *args) ** 2, (x,))
            assert mg.gradgradcheck(lambda t: F.max_pool2d(t, *args) ** 2, (x,))


def test_the_output_keeps_the_channels_last_layout():
    # conv2d returns channels-last memory; max pooling keeps it, so the next conv2d reads it
    # in memory order.
    x = np.ascontiguousarray(np.random.default_rng(0).standard_normal((2, 5, 5, 8)))
    image = mg.Tensor(x.transpose(0, 3, 1, 2))
    for on in (True, False):
        with kernels.use_kernels(on):
            out = F.max_pool2d(image, 2).data
        assert out.transpose(0, 2, 3, 1).flags.c_contiguous


def test_the_switch_turns_the_kernel_off(monkeypatch):
    from minigrad.kernels import pooling as compiled

    def refuse(*args, **kwargs):
        raise AssertionError("a kernel ran with the kernels switched off")

    monkeypatch.setattr(compiled, "window_argmax", refuse)
    x = mg.Tensor(np.ones((1, 2, 5, 5)), requires_grad=True)
    with kernels.use_kernels(False):
        F.max_pool2d(x, 2).sum().backward()
    with kernels.use_kernels(True), pytest.raises(AssertionError, match="switched off"):
        F.max_pool2d(x, 2)
