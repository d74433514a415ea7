"""The compiled im2col/col2im (minigrad.kernels.conv) against the NumPy code they replace: Im2Col,
Col2Im, conv2d and the average pooling built on them (and max pooling, which has its own
kernel: test_kernels_pooling.py), values and gradients, over shapes, kernel
sizes, strides, paddings and dtypes; second derivatives with the kernels on; and the switch
turning them off."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad import kernels
from minigrad.functional.conv import Col2Im, Im2Col

from conftest import FAST, both_paths

pytestmark = pytest.mark.skipif(not kernels.available(), reason="Numba is not installed")


@st.composite
def geometries(draw, pooling=False):
    """(image shape, kernel, stride, padding) with at least one output position. Pooling
    padding is at most half the kernel, as PyTorch requires."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2 if pooling else 2)) for k in kernel)
    size = tuple(draw(st.integers(max(1, k - 2 * p), 9)) for k, p in zip(kernel, padding))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4))) + size
    return shape, kernel, stride, padding


DTYPES = st.sampled_from([np.float32, np.float64])


def close(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


def value_and_grads(fn, arrays, seed=0):
    """fn(*leaves) and the gradients of <w, fn(*leaves)> for a fixed random w."""
    leaves = [mg.Tensor(a.copy(order="K"), requires_grad=True) for a in arrays]  # its layout
    out = fn(*leaves)
    w = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
    (out * mg.Tensor(w)).sum().backward()
    return [out.data] + [leaf.grad.data if hasattr(leaf.grad, "data") else leaf.grad
                         for leaf in leaves]


def assert_paths_agree(fn, arrays, dtype):
    on, off = both_paths(lambda: value_and_grads(fn, arrays))
    for a, b in zip(on, off):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, **close(dtype))


@FAST
@given(geometries(), DTYPES, st.booleans(), st.booleans(), st.integers(0, 2**31 - 1))
def test_im2col_and_col2im_match_numpy(geometry, dtype, channels_last, offset_major, seed):
    shape, kernel, stride, padding = geometry
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    if channels_last:  # an (N, C, H, W) view of (N, H, W, C) memory, as conv2d returns
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    # Im2Col is a copy: both paths equal exactly. Its gradient is Col2Im. ``offset_major``:
    # rows in (KH, KW, C) order.
    attrs = dict(kernel_size=kernel, stride=stride, padding=padding,
                 channels_last=offset_major)
    on, off = both_paths(lambda: value_and_grads(lambda t: Im2Col.apply(t, **attrs), [x]))
    np.testing.assert_array_equal(on[0], off[0])
    np.testing.assert_allclose(on[1], off[1], **close(dtype))
    # Col2Im on its own (its gradient is Im2Col), from rows of the right shape.
    cols = np.random.default_rng(seed + 1).standard_normal(off[0].shape).astype(dtype)
    assert_paths_agree(lambda c: Col2Im.apply(c, image_shape=shape, **attrs), [cols], dtype)


def test_offset_major_rows_are_the_channel_major_ones_reordered():
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 4))
    attrs = dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 1))
    for on in (True, False):
        with kernels.use_kernels(on):
            channel_major = Im2Col.apply(mg.Tensor(x), **attrs).data
            offset_major = Im2Col.apply(mg.Tensor(x), channels_last=True, **attrs).data
        rows = channel_major.shape[0]
        np.testing.assert_array_equal(
            offset_major, channel_major.reshape(rows, 3, 3, 2).transpose(0, 2, 3, 1)
            .reshape(rows, -1))


@FAST
@given(geometries(), DTYPES, st.integers(1, 5), st.booleans(), st.booleans(),
       st.integers(0, 2**31 - 1))
def test_conv2d_matches_numpy(geometry, dtype, out_channels, bias, channels_last, seed):
    shape, kernel, stride, padding = geometry
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    if channels_last:  # conv2d then lays its patches out (KH, KW, C)
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    arrays = [x, rng.standard_normal((out_channels, shape[1]) + kernel).astype(dtype)]
    if bias:
        arrays.append(rng.standard_normal(out_channels).astype(dtype))
    assert_paths_agree(lambda *t: F.conv2d(*t, stride=stride, padding=padding), arrays, dtype)


@FAST
@given(geometries(pooling=True), DTYPES, st.booleans(), st.integers(0, 2**31 - 1))
def test_pooling_matches_numpy(geometry, dtype, ceil_mode, seed):
    shape, kernel, stride, padding = geometry
    # Distinct values: no ties, so max pooling picks the same element on both paths.
    x = (np.random.default_rng(seed).permutation(int(np.prod(shape))) * 0.25).reshape(shape)
    x = x.astype(dtype)
    args = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    assert_paths_agree(lambda t: F.max_pool2d(t, **args), [x], dtype)
    assert_paths_agree(lambda t: F.avg_pool2d(t, **args), [x], dtype)
    assert_paths_agree(lambda t: F.avg_pool2d(t, count_include_pad=False, **args), [x], dtype)


def test_integer_max_pooling_matches_numpy():
    x = np.arange(2 * 3 * 5 * 5, dtype=np.int64).reshape(2, 3, 5, 5)
    on, off = both_paths(lambda: F.max_pool2d(mg.Tensor(x), 2, padding=1).data)
    np.testing.assert_array_equal(on, off)


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), ((1, 2), (2, 0))])
def test_conv2d_second_derivatives_with_kernels_on(stride, padding):
    rng = np.random.default_rng(0)
    x = mg.Tensor(rng.standard_normal((2, 2, 5, 4)), requires_grad=True)
    weight = mg.Tensor(rng.standard_normal((3, 2, 3, 2)), requires_grad=True)
    bias = mg.Tensor(rng.standard_normal(3), requires_grad=True)
    with kernels.use_kernels(True):
        assert mg.gradgradcheck(lambda *t: F.conv2d(*t, stride=stride, padding=padding),
                                [x, weight, bias])


@pytest.mark.parametrize("channels", [3, 16])
def test_col2im_returns_an_image_in_one_block_of_memory(channels):
    x = np.random.default_rng(0).standard_normal((2, channels, 6, 6))
    cols = Im2Col.apply(mg.Tensor(x), kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
    with kernels.use_kernels(True):
        image = Col2Im.apply(cols, image_shape=x.shape, kernel_size=(3, 3), stride=(1, 1),
                             padding=(1, 1)).data
    # (N, C, H, W) contiguous, or a view of (N, H, W, C) contiguous memory.
    assert image.flags.c_contiguous or image.transpose(0, 2, 3, 1).flags.c_contiguous


def test_the_switch_turns_the_kernels_off(monkeypatch):
    from minigrad.kernels import conv as compiled

    def refuse(*args, **kwargs):
        raise AssertionError("a kernel ran with the kernels switched off")

    monkeypatch.setattr(compiled, "im2col", refuse)
    monkeypatch.setattr(compiled, "col2im", refuse)
    x = mg.Tensor(np.ones((1, 2, 5, 5)), requires_grad=True)
    weight = mg.Tensor(np.ones((2, 2, 3, 3)), requires_grad=True)
    with kernels.use_kernels(False):
        assert not kernels.enabled()
        (F.conv2d(x, weight).sum() + F.max_pool2d(x, 2).sum()).backward()
    with kernels.use_kernels(True), pytest.raises(AssertionError, match="switched off"):
        F.conv2d(x, weight)
