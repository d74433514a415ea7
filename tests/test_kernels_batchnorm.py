"""The compiled fused BatchNorm (minigrad.kernels.batchnorm) against the NumPy path it replaces:
outputs, running statistics and every gradient, over shapes, dtypes, affine on and off,
training and evaluation; second derivatives with the kernels on; the switch turning them off."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad import kernels

pytestmark = pytest.mark.skipif(not kernels.available(), reason="needs Numba")

SHAPES = st.one_of(
    st.tuples(st.integers(2, 300), st.integers(1, 40)),                        # (N, C)
    st.tuples(st.integers(1, 6), st.integers(1, 5), st.integers(1, 60)),         # (N, C, L)
    st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 12),
              st.integers(1, 12)),                                               # (N, C, H, W)
    st.sampled_from([(4096, 3), (2, 2, 3000), (8, 1, 40, 40), (1, 1, 2)]))     # large and C=1


def _tolerance(dtype, count):
    """A few roundings of the dtype, growing with the length of the sums (count terms)."""
    return 50 * np.finfo(dtype).eps * max(1.0, np.sqrt(count))


def _run(x, grad, weight, bias, running, training, momentum, on):
    """Fused BatchNorm forward and backward with the kernels on or off: every array out."""
    with kernels.use_kernels(on):
        xt = mg.Tensor(x.copy(order="K"), requires_grad=True)  # (keeps x's memory layout)
        w = None if weight is None else mg.Tensor(weight.copy(), requires_grad=True)
        b = None if bias is None else mg.Tensor(bias.copy(), requires_grad=True)
        stats = [None, None] if running is None else [r.copy() for r in running]
        out = F.batch_norm(xt, *stats, w, b, training=training, momentum=momentum, eps=1e-5,
                           fused=True)
        out.backward(mg.Tensor(grad))
    results = {"out": out.data, "grad_x": xt.grad.data}
    if w is not None:
        results.update(grad_weight=w.grad.data, grad_bias=b.grad.data)
    if running is not None:
        results.update(running_mean=stats[0], running_var=stats[1])
    return results


@settings(max_examples=80, deadline=None)
@given(shape=SHAPES, dtype=st.sampled_from([np.float32, np.float64]), affine=st.booleans(),
       training=st.booleans(), track=st.booleans(), momentum=st.sampled_from([0.0, 0.1, 1.0]),
       offset=st.sampled_from([0.0, 1.0, 1e3]), seed=st.integers(0, 2**16),
       channels_last=st.booleans())
def test_kernels_match_the_numpy_path(shape, dtype, affine, training, track, momentum, offset,
                                      seed, channels_last):
    count = int(np.prod(shape)) // shape[1]
    if training and count == 1:
        return  # rejected by batch_norm either way
    rng = np.random.default_rng(seed)
    channels = shape[1]
    x = (offset + 3 * rng.standard_normal(shape)).astype(dtype)
    if channels_last and x.ndim > 2:  # the same values in (N, ..., C) memory, as conv2d gives
        order = (0,) + tuple(range(2, x.ndim)) + (1,)
        x = np.ascontiguousarray(x.transpose(order)).transpose(np.argsort(order))
    grad = rng.standard_normal(shape).astype(dtype)
    weight = rng.uniform(0.5, 2, channels).astype(dtype) if affine else None
    bias = rng.standard_normal(channels).astype(dtype) if affine else None
    running = None
    if track or not training:
        running = (rng.standard_normal(channels).astype(dtype) + offset,
                   rng.uniform(0.5, 10, channels).astype(dtype))
    on = _run(x, grad, weight, bias, running, training, momentum, on=True)
    off = _run(x, grad, weight, bias, running, training, momentum, on=False)
    tol = _tolerance(dtype, count)
    assert on.keys() == off.keys()
    for name in off:
        assert on[name].dtype == off[name].dtype == dtype, name
        assert on[name].shape == off[name].shape, name
        scale = max(1.0, float(np.abs(off[name]).max()))
        np.testing.assert_allclose(on[name], off[name], rtol=tol, atol=tol * scale, err_msg=name)


@pytest.mark.parametrize("shape", [(6, 3), (3, 2, 5), (2, 3, 2, 3)])
@pytest.mark.parametrize("training", [True, False])
def test_second_derivatives_with_the_kernels_on(shape, training):
    """The create_graph backward runs the Tensor code on what the kernel's forward saved."""
    assert kernels.enabled()
    rng = np.random.default_rng(0)
    channels = shape[1]
    x = mg.Tensor(rng.standard_normal(shape) * 2 + 1, requires_grad=True)
    w = mg.Tensor(rng.uniform(0.5, 2, channels), requires_grad=True)
    b = mg.Tensor(rng.standard_normal(channels), requires_grad=True)
    mean, var = rng.standard_normal(channels), rng.uniform(0.5, 2, channels)

    def fn(x, w, b):
        return F.batch_norm(x, mean.copy(), var.copy(), w, b, training=training, fused=True)

    assert mg.gradcheck(fn, (x, w, b))
    assert mg.gradgradcheck(fn, (x, w, b))


def _forbid_kernels(monkeypatch, names=("forward", "backward")):
    from minigrad.kernels import batchnorm as compiled

    def refuse(*args, **kwargs):
        raise AssertionError("a compiled kernel ran")
    for name in names:
        monkeypatch.setattr(compiled, name, refuse)


def test_switched_off_between_forward_and_backward_the_numpy_backward_runs(monkeypatch):
    """A compiled forward, then the NumPy backward on what it saved."""
    x = np.random.default_rng(2).standard_normal((10, 3, 4)).astype(np.float32)
    grad = np.random.default_rng(3).standard_normal(x.shape).astype(np.float32)
    reference = _run(x, grad, None, None, None, True, 0.1, on=False)["grad_x"]
    xt = mg.Tensor(x, requires_grad=True)
    out = F.batch_norm(xt, None, None, training=True, fused=True)
    _forbid_kernels(monkeypatch)
    with kernels.use_kernels(False):
        out.backward(mg.Tensor(grad))
    np.testing.assert_allclose(xt.grad.data, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("training", [True, False])
def test_the_switch_turns_the_kernels_off(monkeypatch, training):
    _forbid_kernels(monkeypatch)
    x = mg.Tensor(np.random.default_rng(0).standard_normal((8, 3)), requires_grad=True)
    stats = [np.zeros(3), np.ones(3)]
    with kernels.use_kernels(False):
        F.batch_norm(x, *stats, training=training, fused=True).sum().backward()
    assert x.grad is not None
    with pytest.raises(AssertionError, match="a compiled kernel ran"):  # and on, they run
        F.batch_norm(x, *stats, training=training, fused=True)


def test_layouts_the_kernels_do_not_take_run_the_numpy_code(monkeypatch):
    _forbid_kernels(monkeypatch)  # (a NumPy forward saves x_hat: its backward is NumPy's too)
    rng = np.random.default_rng(0)
    for x in (np.asfortranarray(rng.standard_normal((8, 3, 4))),   # not C-contiguous
              rng.standard_normal((8, 6))[:, ::2],                  # a strided view
              rng.standard_normal((8, 3)).astype(np.float16),       # another dtype
              np.zeros((0, 3))):                                   # an empty batch
        xt = mg.Tensor(x, requires_grad=True)
        F.batch_norm(xt, None, None, training=True, fused=True).sum().backward()
        assert xt.grad.shape == x.shape


def test_a_broadcast_output_gradient_is_taken_by_the_kernel():
    """out.sum().backward() hands the op a stride-0 gradient: copied, then the kernel runs."""
    x = np.random.default_rng(1).standard_normal((16, 4, 3))
    grads = []
    for on in (True, False):
        with kernels.use_kernels(on):
            xt = mg.Tensor(x, requires_grad=True)
            (F.batch_norm(xt, None, None, training=True, fused=True)
             * 2).sum().backward()
            grads.append(xt.grad.data)
    np.testing.assert_allclose(grads[0], grads[1], atol=1e-12)


@pytest.mark.parametrize("offset", [0.0, 1e4, 1e8])
@pytest.mark.parametrize("shape", [(512, 6), (16, 3, 40)])
def test_float32_far_from_zero_is_as_accurate_as_a_float64_computation(offset, shape):
    """The kernels compute in float32 with the mean split in two (hi + lo): x_hat keeps its
    float32 accuracy however far the data sit from zero, and so does the input gradient."""
    rng = np.random.default_rng(7)
    x = (offset + 50 * rng.standard_normal(shape)).astype(np.float32)
    grad = rng.standard_normal(shape).astype(np.float32)
    got = _run(x, grad, None, None, None, True, 0.1, on=True)
    exact = _run(x.astype(np.float64), grad.astype(np.float64), None, None, None, True, 0.1,
                 on=False)
    for name in ("out", "grad_x"):
        np.testing.assert_allclose(got[name], exact[name], rtol=0, atol=2e-5, err_msg=name)


def test_the_compiled_forward_saves_no_x_hat():
    """The backward recomputes x_hat from x: besides x the node keeps only per-channel arrays."""
    x = mg.Tensor(np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32),
                  requires_grad=True)
    sizes = {}
    for on in (True, False):
        with kernels.use_kernels(on):
            out = F.batch_norm(x, None, None, training=True, fused=True)
        sizes[on] = sorted(a.size for a in out.grad_fn.saved_arrays)
    assert sizes[True] == [8, 8, 64 * 8]             # mean, 1/sigma, x
    assert sizes[False] == [8, 8, 64 * 8, 64 * 8]    # and x_hat


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("grad_layout", ["same", "contiguous", "broadcast"])
def test_a_channels_last_input_runs_compiled_and_matches(dtype, grad_layout):
    """conv2d's output lies channels-last in memory, (N, H, W, C) seen as (N, C, H, W): the
    kernels take it as the (N * H * W, C) matrix it is, whatever layout the gradient has, and
    give the NumPy path's numbers in the input's layout."""
    rng = np.random.default_rng(4)
    x = (2 + 3 * rng.standard_normal((5, 6, 7, 3))).astype(dtype).transpose(0, 3, 1, 2)
    grad = {"same": rng.standard_normal((5, 6, 7, 3)).astype(dtype).transpose(0, 3, 1, 2),
            "contiguous": rng.standard_normal(x.shape).astype(dtype),
            "broadcast": np.broadcast_to(dtype(0.5), x.shape)}[grad_layout]
    weight, bias = rng.uniform(0.5, 2, 3).astype(dtype), rng.standard_normal(3).astype(dtype)
    with kernels.use_kernels(True):
        from minigrad.functional.normalization import _kernel_fits
        assert _kernel_fits(x)
    results = {}
    for on in (True, False):
        with kernels.use_kernels(on):
            xt = mg.Tensor(x, requires_grad=True)
            out = F.batch_norm(xt, None, None, mg.Tensor(weight), mg.Tensor(bias),
                               training=True, fused=True)
            out.backward(mg.Tensor(grad))
            results[on] = out.data, xt.grad.data
    assert results[True][0].strides == x.strides  # the output keeps the input's layout
    tol = _tolerance(dtype, x.size // 3)
    for got, want in zip(results[True], results[False]):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5)])
def test_nan_and_inf_spread_as_on_the_numpy_path(dtype, shape):
    """A NaN or inf in a channel makes that channel's statistics NaN on both paths (a clamp
    of the variance at 0 must not turn a NaN into a finite, wrong 1/sqrt(eps))."""
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    x[1, 0] = np.nan
    x[2, 1] = np.inf
    with np.errstate(invalid="ignore"):
        on = _run(x, np.ones(shape, dtype), None, None, None, True, 0.1, on=True)
        off = _run(x, np.ones(shape, dtype), None, None, None, True, 0.1, on=False)
    for name in ("out", "grad_x"):
        np.testing.assert_array_equal(np.isnan(on[name]), np.isnan(off[name]), err_msg=name)
        assert np.isnan(on[name][:, :2]).all() and np.isfinite(on[name][:, 2]).all(), name
