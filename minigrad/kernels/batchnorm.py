"""Compiled fused BatchNorm: the statistics, the output and the closed-form backward, each in as
few passes over memory as the arithmetic allows, and x_hat never stored.

Every kernel works on a matrix whose columns are independent: an input whose channels lie
innermost in memory -- (N, C), or conv2d's channels-last output -- as the (rows, C) matrix it
is (a column per channel, the inner loop running along a contiguous row), or a C-contiguous
(N, C, L) input (a reshape of (N, C, H, W), no copy) one channel's (N, L) slice at a time with
that channel's statistics repeated along the row (the ``*_channels`` drivers).

Numerics, float32 as float64:
- Sums are float64 whatever x's dtype, taken four rows at a time (the loop is bound by loading
  and storing its accumulators, not by reading x, so a quarter of those is most of the speed).
- The output and the gradient are computed in x's dtype, as PyTorch's are: float32 arithmetic
  runs twice as many lanes per instruction as float64 and reads no conversion.
- x_hat = ((x - hi) - lo) * invstd, the mean split into ``hi`` (the mean rounded to x's dtype)
  and ``lo`` (what that rounding left). x - hi is exact where x is near the mean (float32
  data at 1e8 + noise, say), so x_hat stays accurate to a rounding of its own size however far
  the data sit from zero. Nothing here may be reassociated (no fastmath): (x - hi) - lo is not
  x - (hi + lo).
- The forward does not store x_hat; the backward recomputes it from x (which the node keeps
  anyway) in the same two subtractions and a product: one full-size array fewer to write and
  to keep.

Importing this module imports Numba; ``minigrad.functional.normalization`` imports it only when
a kernel first runs, so ``import minigrad`` stays fast. ``cache=True`` compiles each kernel once
per machine (on first use) and later processes load it from disk.
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["forward", "backward", "channels_last"]

_njit = numba.njit(cache=True)


# Each kernel takes k and x as (N, G, M), and works on the (N, M) matrix x[:, k, :] row by row
# (x[i, k] is a contiguous row, so the inner loops vectorize): a channels-last input is passed
# as (rows, 1, C) with k = 0, a column per channel; an (N, C, L) input one channel k at a time
# by the ``*_channels`` drivers, the channel's statistics repeated along the row.

# -- sums down the columns: the statistics and the backward's two reductions -----------------------

@_njit
def _deviation_sums(k, x, centre):
    """Per column of x[:, k, :]: float64 sums of d and d * d for d = x - centre (centre float64,
    so d is exact for float32 x). Four rows at a time, then the rest one by one."""
    n, m = x.shape[0], x.shape[2]
    sum_d, sum_dd = np.zeros(m), np.zeros(m)
    whole = n - n % 4
    for i in range(0, whole, 4):
        r0, r1, r2, r3 = x[i, k], x[i + 1, k], x[i + 2, k], x[i + 3, k]
        for j in range(m):
            d0, d1 = r0[j] - centre[j], r1[j] - centre[j]
            d2, d3 = r2[j] - centre[j], r3[j] - centre[j]
            sum_d[j] += (d0 + d1) + (d2 + d3)
            sum_dd[j] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)
    for i in range(whole, n):
        row = x[i, k]
        for j in range(m):
            d = row[j] - centre[j]
            sum_d[j] += d
            sum_dd[j] += d * d
    return sum_d, sum_dd


@_njit
def _gradient_sums(k, grad, x, hi, lo, invstd, start, stop, sum_g, sum_gh):
    """Columns start..stop-1: add the float64 sums of grad and of grad * x_hat (x_hat
    recomputed, see the module docstring) -- d bias and d weight -- into sum_g and sum_gh. Four
    rows at a time, as ``_deviation_sums``."""
    n = x.shape[0]
    whole = n - n % 4
    for i in range(0, whole, 4):
        g0, g1, g2, g3 = grad[i, k], grad[i + 1, k], grad[i + 2, k], grad[i + 3, k]
        x0, x1, x2, x3 = x[i, k], x[i + 1, k], x[i + 2, k], x[i + 3, k]
        for j in range(start, stop):
            a0, a1 = np.float64(g0[j]), np.float64(g1[j])
            a2, a3 = np.float64(g2[j]), np.float64(g3[j])
            h0 = ((x0[j] - hi[j]) - lo[j]) * invstd[j]
            h1 = ((x1[j] - hi[j]) - lo[j]) * invstd[j]
            h2 = ((x2[j] - hi[j]) - lo[j]) * invstd[j]
            h3 = ((x3[j] - hi[j]) - lo[j]) * invstd[j]
            sum_g[j] += (a0 + a1) + (a2 + a3)
            sum_gh[j] += (a0 * h0 + a1 * h1) + (a2 * h2 + a3 * h3)
    for i in range(whole, n):
        g_row, x_row = grad[i, k], x[i, k]
        for j in range(start, stop):
            g = np.float64(g_row[j])
            sum_g[j] += g
            sum_gh[j] += g * (((x_row[j] - hi[j]) - lo[j]) * invstd[j])


# -- elementwise: the output and the input's gradient ----------------------------------------------

@_njit
def _normalize(k, x, hi, lo, scale, bias, out):
    """out = ((x - hi) - lo) * scale + bias, scale being invstd * weight, in x's dtype."""
    for i in range(x.shape[0]):
        row, out_row = x[i, k], out[i, k]
        for j in range(x.shape[2]):
            out_row[j] = ((row[j] - hi[j]) - lo[j]) * scale[j] + bias[j]


@_njit
def _input_gradient(k, grad, x, hi, lo, invstd, scale, mean_g, mean_gh, start, stop, out):
    """Columns start..stop-1 of out = scale * ((grad - mean_g) - x_hat * mean_gh): the
    closed-form d x, with mean_g and mean_gh the per-channel means of grad and grad * x_hat
    (zeros with running statistics)."""
    for i in range(x.shape[0]):
        g_row, x_row, out_row = grad[i, k], x[i, k], out[i, k]
        for j in range(start, stop):
            h = ((x_row[j] - hi[j]) - lo[j]) * invstd[j]
            out_row[j] = scale[j] * ((g_row[j] - mean_g[j]) - h * mean_gh[j])


# -- the backward: the sums, then d x --------------------------------------------------------------
# An (N, C, L) input is done a channel at a time: the second pass then finds the channel's grad
# and x still in the core's cache instead of reading them from memory again. (Blocks of columns
# of an (N, C) input would do the same on paper, but rows a power of two apart in memory fall
# into the same cache sets and evict each other: measured 10x slower at (1024, 1024).)

@_njit
def _backward_rows(grad, x, hi, lo, invstd, weight, training, out):
    """The backward of a (rows, 1, C) input: (d weight, d bias) as float64 (C,) arrays, d x
    into ``out``."""
    n, m = x.shape[0], x.shape[2]
    k = x.shape[1] - 1  # 0, the one group; a run-time int, so each kernel compiles once for both
    scale = _scale(invstd, weight)
    sum_g, sum_gh = np.zeros(m), np.zeros(m)
    _gradient_sums(k, grad, x, hi, lo, invstd, 0, m, sum_g, sum_gh)
    mean_g, mean_gh = np.zeros(m, x.dtype), np.zeros(m, x.dtype)
    if training:
        for j in range(m):
            mean_g[j], mean_gh[j] = sum_g[j] / n, sum_gh[j] / n
    _input_gradient(k, grad, x, hi, lo, invstd, scale, mean_g, mean_gh, 0, m, out)
    return sum_gh, sum_g


@_njit
def _backward_channels(grad, x, hi, lo, invstd, weight, training, out):
    """The backward of an (N, C, L) input a channel at a time, as ``_backward_rows``."""
    n, c, length = x.shape
    scale = _scale(invstd, weight)
    sum_g, sum_gh = np.empty(c), np.empty(c)
    for k in range(c):
        lanes_g, lanes_gh = np.zeros(length), np.zeros(length)
        h, l, s = (np.full(length, hi[k]), np.full(length, lo[k]),
                   np.full(length, invstd[k]))
        _gradient_sums(k, grad, x, h, l, s, 0, length, lanes_g, lanes_gh)
        sum_g[k], sum_gh[k] = lanes_g.sum(), lanes_gh.sum()
        mean_g, mean_gh = np.zeros(length, x.dtype), np.zeros(length, x.dtype)
        if training:
            for j in range(length):
                mean_g[j], mean_gh[j] = sum_g[k] / (n * length), sum_gh[k] / (n * length)
        _input_gradient(k, grad, x, h, l, s, np.full(length, scale[k]), mean_g, mean_gh, 0,
                        length, out)
    return sum_gh, sum_g


# -- the forward: statistics, the per-channel constants, the output ------------------------------

@_njit
def _scale(invstd, weight):
    """invstd * weight per channel, in invstd's dtype (the product taken in float64)."""
    scale = np.empty_like(invstd)
    for k in range(invstd.shape[0]):
        scale[k] = np.float64(invstd[k]) * weight[k]
    return scale


@_njit
def _constants(centre, shift, var, weight, eps, dtype_of):
    """Per channel, in ``dtype_of``'s dtype: the mean centre + shift split as hi (rounded) and
    lo (what the rounding left; centre - hi is exact, the two being close, so float64 data keep
    the digits that centre + shift, rounded, would lose), invstd = 1 / sqrt(var + eps), and
    scale = invstd * weight."""
    c = centre.shape[0]
    hi, lo = np.empty(c, dtype_of.dtype), np.empty(c, dtype_of.dtype)
    invstd = np.empty(c, dtype_of.dtype)
    for k in range(c):
        hi[k] = centre[k] + shift[k]
        lo[k] = (centre[k] - hi[k]) + shift[k]
        invstd[k] = 1.0 / np.sqrt(var[k] + eps)
    return hi, lo, invstd, _scale(invstd, weight)


@_njit
def _moments(sum_d, sum_dd, count, var):
    """From the sums of the deviations d from the centre: the mean's shift from the centre,
    sum(d) / count, and the biased variance, written over ``var``."""
    shift = np.empty_like(sum_d)
    for k in range(sum_d.shape[0]):
        shift[k] = sum_d[k] / count
        var[k] = max(sum_dd[k] / count - shift[k] * shift[k], 0.0)
    return shift


@_njit
def _forward_rows(x, centre, var, weight, bias, eps, training, out):
    """The forward of a (rows, 1, C) input: with ``training`` the batch's statistics about
    ``centre`` (written over ``var``), else ``centre`` and ``var`` are the running statistics.
    Writes the output into ``out``; returns (hi, lo, invstd, shift, var)."""
    k = x.shape[1] - 1  # 0, the one group (a run-time int: see _backward_rows)
    shift = np.zeros(x.shape[2])
    if training:
        sum_d, sum_dd = _deviation_sums(k, x, centre)
        shift = _moments(sum_d, sum_dd, x.shape[0], var)
    hi, lo, invstd, scale = _constants(centre, shift, var, weight, eps, x)
    _normalize(k, x, hi, lo, scale, bias, out)
    return hi, lo, invstd, shift, var


@_njit
def _forward_channels(x, centre, var, weight, bias, eps, training, out):
    """``_forward_rows`` for an (N, C, L) input, a channel at a time."""
    n, c, length = x.shape
    shift = np.zeros(c)
    if training:
        sum_d, sum_dd = np.empty(c), np.empty(c)
        for k in range(c):
            d, dd = _deviation_sums(k, x, np.full(length, centre[k]))
            sum_d[k], sum_dd[k] = d.sum(), dd.sum()
        shift = _moments(sum_d, sum_dd, n * length, var)
    hi, lo, invstd, scale = _constants(centre, shift, var, weight, eps, x)
    for k in range(c):
        _normalize(k, x, np.full(length, hi[k]), np.full(length, lo[k]),
                   np.full(length, scale[k]), np.full(length, bias[k]), out)
    return hi, lo, invstd, shift, var


# -- what the op calls -----------------------------------------------------------------------------

def _channels_innermost(a):
    """a (N, C, ...) with its channel axis moved last: a view."""
    return a.transpose((0,) + tuple(range(2, a.ndim)) + (1,))


def channels_last(a) -> bool:
    """Whether ``a`` (N, C, ...) lies in memory with its channels innermost, (N, ..., C), as
    the output of ``conv2d`` does: then it is an (N * positions, C) matrix, a column per
    channel, the layout of an (N, C) input."""
    return _channels_innermost(a).flags.c_contiguous


def _layout(a, by_rows: bool):
    """The (N, G, M) view of ``a`` the kernels take, no copy: channels-last memory (an (N, C)
    input included; ``by_rows``) as (rows, 1, C), else (C-contiguous) as (N, C, L)."""
    if by_rows:
        return _channels_innermost(a).reshape(-1, 1, a.shape[1])
    return a.reshape(a.shape[0], a.shape[1], -1)


def in_layout_of(x, a):
    """``a`` (shaped as x) in x's memory layout: itself if it already is, else a copy."""
    if a.strides == x.strides:
        return a
    copy = np.empty_like(x)
    copy[...] = a
    return copy


def _per_channel(values, dtype):
    """A (C,)-like array as a contiguous (C,) array of ``dtype``."""
    return np.ascontiguousarray(np.reshape(values, -1), dtype)


def forward(x, weight, bias, eps, running_mean=None, running_var=None):
    """BatchNorm's forward of x (N, C, ...), C-contiguous or channels-last, float32/float64,
    not empty: with the batch's statistics, or with ``running_mean`` and ``running_var`` when
    given. Returns (out, hi, lo, invstd, mean, var): out in x's dtype and layout; the mean
    split as hi + lo and invstd, (C,) arrays in x's dtype, for the backward; mean and the
    biased var as float64 (C,) arrays, for the running statistics.

    The batch's statistics are sums of the deviations from a centre: each channel's first
    value for float32 (one pass; the difference is exact in float64, and as that value lies
    within sqrt(n - 1) standard deviations of the mean, E[d^2] - E[d]^2 cancels at most a
    factor n of float64's digits, far below float32's), a float64 first mean for float64 data
    (whose differences would round: the two-pass formula)."""
    dtype, channels = x.dtype, x.shape[1]
    by_rows = channels_last(x)
    rows = _layout(x, by_rows)  # (rows, 1, C) or (N, C, L)
    training = running_mean is None
    if not training:
        centre, var = (_per_channel(a, np.float64) for a in (running_mean, running_var))
    else:  # var: an array the kernel fills with the batch's
        var = np.zeros(channels)
        if dtype == np.float32:
            centre = np.array(rows[0, 0] if by_rows else rows[0, :, 0], np.float64)
        else:
            centre = rows.mean(axis=0).reshape(-1) if by_rows else rows.mean(axis=(0, 2))
    weight = np.ones(channels, dtype) if weight is None else _per_channel(weight, dtype)
    bias = np.zeros(channels, dtype) if bias is None else _per_channel(bias, dtype)
    out = np.empty_like(x)
    kernel = _forward_rows if by_rows else _forward_channels
    hi, lo, invstd, shift, var = kernel(rows, centre, var, weight, bias, eps, training,
                                        _layout(out, by_rows))
    return out, hi, lo, invstd, centre + shift, var


def backward(grad, x, hi, lo, invstd, weight, training):
    """First-order backward of ``forward`` with the statistics (hi, lo, invstd), the batch's
    when ``training``: (d x shaped and laid out as x, d weight (C,), d bias (C,)), all in x's
    dtype. grad of x's dtype and shape, in any layout; weight may be None."""
    dtype, channels = x.dtype, x.shape[1]
    weight = np.ones(channels, dtype) if weight is None else _per_channel(weight, dtype)
    grad_x = np.empty_like(x)
    by_rows = channels_last(x)
    kernel = _backward_rows if by_rows else _backward_channels
    grad = in_layout_of(x, grad)
    grad_weight, grad_bias = kernel(*(_layout(a, by_rows) for a in (grad, x)),
                                    *(_per_channel(a, dtype) for a in (hi, lo, invstd)), weight,
                                    bool(training), _layout(grad_x, by_rows))
    return grad_x, grad_weight.astype(dtype), grad_bias.astype(dtype)
