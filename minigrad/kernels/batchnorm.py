"""Compiled fused BatchNorm: the statistics, the normalized output with x_hat, and the
closed-form backward, each in as few passes over memory as the arithmetic allows.

Every kernel takes x as (N, C) -- channels along the rows, so the inner loop runs over
contiguous channels and keeps C float64 accumulators -- or as (N, C, L) with L the positions
(a reshape of (N, C, H, W) or (N, C, L), no copy), where the inner loop runs over one channel's
contiguous positions. Sums are float64 whatever x's dtype, so float32 statistics are as accurate
as the NumPy path's blocked float32-then-float64 sums, or more.

Importing this module imports Numba; ``minigrad.functional.normalization`` imports it only when
a kernel first runs, so ``import minigrad`` stays fast. ``cache=True`` compiles each kernel once
per machine (on first use) and later processes load it from disk.
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["forward_training", "forward_eval", "backward"]

# (reassoc lets LLVM keep several partial sums, vectorizing the one-channel reductions of the
# (N, C, L) layout; it changes the order of additions, not their float64 precision)
_njit = numba.njit(cache=True, fastmath={"reassoc"})


# -- statistics ----------------------------------------------------------------------------------

@_njit
def _stats_rows(x):
    """(centre, shift, biased var) per column of x (N, C), float64, the mean being centre +
    shift: a float64 first mean (the centre), then the centred sums -- the two-pass formula with
    its correction sum(x - centre)/n (the shift), as ops.reduce.Var. The two are kept apart:
    x - centre - shift is exact to a rounding of x - mean, x - (centre + shift) only to one of
    the mean (1e3 + noise in float64 loses digits there)."""
    n, c = x.shape
    total = np.zeros(c)
    for i in range(n):
        for j in range(c):
            total[j] += x[i, j]
    mean = total / n
    shift = np.zeros(c)
    square = np.zeros(c)
    for i in range(n):
        for j in range(c):
            d = x[i, j] - mean[j]
            shift[j] += d
            square[j] += d * d
    shift /= n
    return mean, shift, np.maximum(square / n - shift * shift, 0.0)


@_njit
def _stats_channels(x):
    """(centre, shift, biased var) per channel of x (N, C, L), as ``_stats_rows``."""
    n, c, length = x.shape
    count = n * length
    mean = np.zeros(c)
    shifts = np.zeros(c)
    var = np.zeros(c)
    for j in range(c):
        total = 0.0
        for i in range(n):
            for k in range(length):
                total += x[i, j, k]
        m = total / count
        shift = 0.0
        square = 0.0
        for i in range(n):
            for k in range(length):
                d = x[i, j, k] - m
                shift += d
                square += d * d
        shift /= count
        mean[j], shifts[j] = m, shift
        var[j] = max(square / count - shift * shift, 0.0)
    return mean, shifts, var


@_njit
def _stats_rows_shifted(x):
    """(centre, shift, biased var) per column of float32 x (N, C) in one pass: float64 sums of d and
    d**2 for d = x - x[0], the first row as a shift. A float32 difference is exact in float64,
    and since (x[0] - mean)**2 <= (n - 1) var, var = sum(d**2)/n - (sum(d)/n)**2 cancels at most
    a factor n of float64's precision -- far below float32's rounding. (float64 data takes the
    two-pass ``_stats_rows``: its differences round.)"""
    n, c = x.shape
    first = np.empty(c)
    for j in range(c):
        first[j] = x[0, j]
    total = np.zeros(c)
    square = np.zeros(c)
    for i in range(n):
        for j in range(c):
            d = x[i, j] - first[j]
            total[j] += d
            square[j] += d * d
    shift = total / n
    return first, shift, np.maximum(square / n - shift * shift, 0.0)


@_njit
def _stats_channels_shifted(x):
    """``_stats_rows_shifted`` for float32 x (N, C, L): each channel's first value the shift."""
    n, c, length = x.shape
    count = n * length
    mean = np.zeros(c)
    shifts = np.zeros(c)
    var = np.zeros(c)
    for j in range(c):
        first = np.float64(x[0, j, 0])
        total = 0.0
        square = 0.0
        for i in range(n):
            for k in range(length):
                d = x[i, j, k] - first
                total += d
                square += d * d
        shift = total / count
        mean[j], shifts[j] = first, shift
        var[j] = max(square / count - shift * shift, 0.0)
    return mean, shifts, var


# -- the normalized output -------------------------------------------------------------------------

@_njit
def _normalize_rows(x, centre, shift, invstd, weight, bias, x_hat, out):
    """x_hat = (x - centre - shift) * invstd (float64 statistics, rounded once to x's dtype) and
    out = x_hat * weight + bias, in one pass over x (N, C)."""
    n, c = x.shape
    for i in range(n):
        for j in range(c):
            h = (x[i, j] - centre[j] - shift[j]) * invstd[j]
            x_hat[i, j] = h
            out[i, j] = h * weight[j] + bias[j]


@_njit
def _normalize_channels(x, centre, shift, invstd, weight, bias, x_hat, out):
    """``_normalize_rows`` for x (N, C, L)."""
    n, c, length = x.shape
    for i in range(n):
        for j in range(c):
            m, t, s, w, b = centre[j], shift[j], invstd[j], weight[j], bias[j]
            for k in range(length):
                h = (x[i, j, k] - m - t) * s
                x_hat[i, j, k] = h
                out[i, j, k] = h * w + b


# -- backward ----------------------------------------------------------------------------------------

@_njit
def _backward_rows(grad, x_hat, scale, training, grad_x):
    """Closed-form backward for (N, C): d bias = sum(grad), d weight = sum(grad * x_hat) in
    float64 (pass 1), then d x = scale * (grad - d bias/n - x_hat * d weight/n) (pass 2;
    scale * grad with the running statistics). Returns (d weight, d bias), float64."""
    n, c = grad.shape
    grad_bias = np.zeros(c)
    grad_weight = np.zeros(c)
    for i in range(n):
        for j in range(c):
            g = np.float64(grad[i, j])
            grad_bias[j] += g
            grad_weight[j] += g * x_hat[i, j]
    if training:
        mean_bias, mean_weight = grad_bias / n, grad_weight / n
    else:
        mean_bias, mean_weight = np.zeros(c), np.zeros(c)
    for i in range(n):
        for j in range(c):
            grad_x[i, j] = scale[j] * (grad[i, j] - mean_bias[j] - x_hat[i, j] * mean_weight[j])
    return grad_weight, grad_bias


@_njit
def _backward_channels(grad, x_hat, scale, training, grad_x):
    """``_backward_rows`` for (N, C, L)."""
    n, c, length = grad.shape
    count = n * length
    grad_bias = np.zeros(c)
    grad_weight = np.zeros(c)
    for j in range(c):
        gb = 0.0
        gw = 0.0
        for i in range(n):
            for k in range(length):
                g = np.float64(grad[i, j, k])
                gb += g
                gw += g * x_hat[i, j, k]
        grad_bias[j], grad_weight[j] = gb, gw
        mb, mw = (gb / count, gw / count) if training else (0.0, 0.0)
        s = scale[j]
        for i in range(n):
            for k in range(length):
                grad_x[i, j, k] = s * (grad[i, j, k] - mb - x_hat[i, j, k] * mw)
    return grad_weight, grad_bias


# -- what the op calls ---------------------------------------------------------------------------------

def _layout(a):
    """a (N, C) as it is, a (N, C, ...) as the (N, C, L) view of its positions."""
    return a if a.ndim == 2 else a.reshape(a.shape[0], a.shape[1], -1)


def _params(weight, bias, channels, dtype):
    """weight and bias as contiguous (C,) arrays of x's dtype; ones and zeros where absent."""
    weight = np.ones(channels, dtype) if weight is None else np.ascontiguousarray(weight, dtype)
    bias = np.zeros(channels, dtype) if bias is None else np.ascontiguousarray(bias, dtype)
    return weight.reshape(-1), bias.reshape(-1)


def forward_training(x, weight, bias, eps):
    """Training-mode forward of x (N, C, ...), C-contiguous float32/float64, no empty batch:
    returns (out, x_hat, mean, var, invstd) -- out and x_hat shaped as x; mean and var the
    batch's float64 (C,) statistics (var biased), for the running statistics; invstd (C,)
    float64."""
    if x.dtype == np.float32:  # one pass over x
        kernel = _stats_rows_shifted if x.ndim == 2 else _stats_channels_shifted
    else:
        kernel = _stats_rows if x.ndim == 2 else _stats_channels
    centre, shift, var = kernel(_layout(x))
    invstd = 1.0 / np.sqrt(var + eps)
    out, x_hat = _normalize(x, centre, shift, invstd, weight, bias)
    return out, x_hat, centre + shift, var, invstd


def forward_eval(x, mean, invstd, weight, bias):
    """Forward with given statistics (C,): returns (out, x_hat), shaped as x."""
    mean = np.ascontiguousarray(mean, np.float64).reshape(-1)
    return _normalize(x, mean, np.zeros_like(mean),
                      np.ascontiguousarray(invstd, np.float64).reshape(-1), weight, bias)


def _normalize(x, centre, shift, invstd, weight, bias):
    weight, bias = _params(weight, bias, x.shape[1], x.dtype)
    x_hat, out = np.empty_like(x), np.empty_like(x)
    kernel = _normalize_rows if x.ndim == 2 else _normalize_channels
    kernel(_layout(x), centre, shift, invstd, weight, bias, _layout(x_hat), _layout(out))
    return out, x_hat


def backward(grad, x_hat, scale, training):
    """First-order backward: (d x shaped as x_hat, d weight (C,), d bias (C,)), all in x_hat's
    dtype; ``scale`` (C,) is invstd * weight. grad and x_hat C-contiguous, of one dtype."""
    grad_x = np.empty_like(x_hat)
    kernel = _backward_rows if x_hat.ndim == 2 else _backward_channels
    grad_weight, grad_bias = kernel(_layout(grad), _layout(x_hat),
                                    np.ascontiguousarray(scale, np.float64).reshape(-1),
                                    bool(training), _layout(grad_x))
    return grad_x, grad_weight.astype(x_hat.dtype), grad_bias.astype(x_hat.dtype)
