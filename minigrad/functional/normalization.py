"""Normalization. Every layer is the same two steps: standardize over some axes with the biased
variance, x_hat = (x - mean) / sqrt(var + eps), then scale and shift per feature."""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import kernels
from ..autograd import Function, is_grad_enabled
from ..core.checks import bad_argument, boolean, positive_int, positive_real, probability
from ..core.errors import ArgumentTypeError, ShapeError
from ..core.tensor import Tensor
from .args import _check_parameters, as_parameter, as_tensor


def _moments(x: Tensor, axes: tuple):
    return x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)


def _normalize(x, mean, var, eps: float):
    """(x - mean) / sqrt(var + eps), as a product with 1/sqrt: its backward is cheaper than a
    division's, and the graph shows the inverse standard deviation BatchNorm papers write."""
    invstd = 1.0 / (var + eps).sqrt()
    return (x - mean) * invstd


def _affine(x_hat, weight, bias, shape: tuple):
    """weight * x_hat + bias, the per-feature parameters reshaped to broadcast. Works on Tensors
    and on NumPy arrays (the fused op's forward, where ``+=`` saves a full-size array)."""
    if weight is None:
        return x_hat if bias is None else x_hat + bias.reshape(shape)
    out = x_hat * weight.reshape(shape)
    if bias is None:
        return out
    if isinstance(out, Tensor):  # (+= on a Tensor would be a recorded in-place op)
        return out + bias.reshape(shape)
    out += bias.reshape(shape)
    return out


def _channel_axes(ndim: int) -> tuple:
    """BatchNorm's statistics are over every axis but the channel axis 1."""
    return (0,) + tuple(range(2, ndim))


def _values_per_channel(x) -> int:
    """How many values of each channel a batch holds: N times the positions (PyTorch's
    ``size_prods``). 0 for an empty batch, which has no statistics."""
    return math.prod(x.shape[:1] + x.shape[2:])


def _channel_shape(x) -> tuple:
    """The shape (C, 1, ...) in which per-channel values broadcast against ``x`` (N, C, ...):
    just (C,) for an (N, C) input, so there the parameters need no Reshape node."""
    return (x.shape[1],) + (1,) * (x.ndim - 2)


def _check_batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps):
    """Validate everything before anything runs, so a bad call leaves the running stats as
    they were."""
    if x.ndim < 2:
        bad_argument("batch_norm", "the input", "of shape (N, C, ...) with at least 2 dims", x)
    if x.dtype.kind != "f":
        bad_argument("batch_norm", "the input", "floating point", x.dtype, TypeError)
    channels = x.shape[1]
    _check_parameters("batch_norm", x, (channels,), running_mean=running_mean,
                      running_var=running_var, weight=weight, bias=bias)
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: pass both running_mean and running_var, or neither")
    if not training and running_mean is None:
        raise ValueError("batch_norm: training=False normalizes with the running statistics, "
                         "so running_mean and running_var are required")
    if training and _values_per_channel(x) == 1:  # (an empty batch is fine, as in PyTorch)
        raise ValueError(f"Expected more than 1 value per channel when training, got input "
                         f"size {x.shape}")  # PyTorch's words
    if momentum is None:  # a layer's option, not the function's
        bad_argument("batch_norm", "momentum", "a number in [0, 1] (the cumulative average, "
                     "momentum=None, is a BatchNorm layer option: it needs the layer's "
                     "num_batches_tracked)", momentum, ArgumentTypeError)
    probability("batch_norm", "momentum", momentum)
    positive_real("batch_norm", "eps", eps)


def _update_running_stats(running_mean: np.ndarray, running_var: np.ndarray, mean: np.ndarray,
                          var: np.ndarray, count: int, momentum: float) -> None:
    """running = (1 - momentum) * running + momentum * batch, in place and outside any graph.
    The variance folded in is the unbiased one (PyTorch's rule): x n/(n-1)."""
    running_mean *= 1.0 - momentum
    running_mean += momentum * mean.reshape(-1)
    running_var *= 1.0 - momentum
    running_var += (momentum * count / (count - 1)) * var.reshape(-1)


def batch_norm(x, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5, fused: bool = False) -> Tensor:
    """Batch Normalization over axis 1 of ``x`` (N, C, ...), with PyTorch's numerics.

    Training normalizes with the batch's mean and biased variance, and (if given) folds them
    into ``running_mean`` / ``running_var`` in place -- the variance unbiased. Otherwise the
    running statistics are used. ``fused=False`` builds the composed graph (mean, var, sqrt,
    broadcasting: the teaching view); ``fused=True`` one ``FusedBatchNorm`` node with the
    closed-form backward (the fast view). Both give the same numbers.

    An empty batch (N = 0, or a position axis of size 0) gives an empty output and zero
    gradients for ``weight`` and ``bias``, and leaves the running statistics as they were --
    PyTorch's behaviour: it has no statistics to fold in.
    """
    x = as_tensor(x, "batch_norm")
    # NumPy arrays are wrapped, not copied: running statistics given as arrays update in place.
    running_mean, running_var = (t if t is None else as_tensor(t, "batch_norm")
                                 for t in (running_mean, running_var))
    weight, bias = as_parameter(weight, x, "batch_norm"), as_parameter(bias, x, "batch_norm")
    training, fused = boolean("batch_norm", "training", training), boolean("batch_norm", "fused",
                                                                          fused)
    _check_batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
    if fused:
        return FusedBatchNorm.apply(x, weight, bias, running_mean, running_var,
                                    training=bool(training), momentum=momentum, eps=eps)
    shape = _channel_shape(x)
    if training and x.size == 0:  # no statistics to take; any will do for an x with no values
        mean, var = Tensor(np.zeros(shape, x.dtype)), Tensor(np.ones(shape, x.dtype))
    elif training:
        mean, var = _moments(x, _channel_axes(x.ndim))
        if running_mean is not None:
            _update_running_stats(running_mean.data, running_var.data, mean.data, var.data,
                                  _values_per_channel(x), momentum)
    else:
        mean, var = running_mean.reshape(shape), running_var.reshape(shape)
    return _affine(_normalize(x, mean, var, eps), weight, bias, shape)


# Samples summed in the input's dtype before the float64 total (see _channel_sum).
_BLOCK = 32


def _channel_sum(a, b=None, accurate: bool = False):
    """Sum of ``a`` (or of ``a * b``) over every axis but axis 1, in a shape that broadcasts
    against ``a``. On Tensors it is a differentiable graph. On NumPy arrays one einsum, which
    allocates no temporary the size of ``a`` (at large sizes a fresh array costs more than the
    arithmetic); ``accurate=True`` gives float64 sums at float32 speed: einsum adds up each
    block of 32 samples in ``a``'s dtype and the block sums, 32 times fewer, are totalled in
    float64. (A float32 running sum of thousands of values loses digits, a sum of 32 hardly any;
    a float64 pass over all of ``a`` costs 3-4 times a float32 one.)"""
    if isinstance(a, Tensor):
        return (a if b is None else a * b).sum(axis=_channel_axes(a.ndim), keepdims=True)
    if not accurate:
        axes = list(range(a.ndim))
        operands = (a, axes) if b is None else (a, axes, b, axes)
        return np.einsum(*operands, [1]).reshape(_channel_shape(a))
    samples, channels = a.shape[:2]
    whole = samples - samples % _BLOCK
    total = 0.0
    for start, stop in ((0, whole), (whole, samples)):  # the whole blocks, then the rest
        if start == stop:
            continue
        # (block, sample in block, channel, position): sum over axis 1, then 0 and 3 in float64
        shape = (-1, min(_BLOCK, stop - start), channels, a.size // (samples * channels))
        part = a[start:stop].reshape(shape)
        block_sums = (np.add.reduce(part, axis=1) if b is None else
                      np.einsum("kbcl,kbcl->kcl", part, b[start:stop].reshape(shape)))
        total = total + np.add.reduce(block_sums, axis=(0, 2), dtype=np.float64)
    return total.reshape(_channel_shape(a))


def _batch_norm_grads(grad, x_hat, scale, training: bool):
    """The closed-form backward of y = x_hat * weight + bias, with scale = weight * invstd:

        d bias   = sum(grad)                d weight = sum(grad * x_hat)
        d x      = scale * (grad - d bias / n - x_hat * d weight / n)    (training)
        d x      = scale * grad                                          (running statistics)

    the first line being dx = invstd/n (n dx_hat - sum(dx_hat) - x_hat sum(dx_hat x_hat)) with
    dx_hat = grad * weight. Written with operators only, so it runs on NumPy arrays (the fast
    first-order backward, where d x costs one new array) and on Tensors (a differentiable
    backward)."""
    grad_bias = _channel_sum(grad)
    grad_weight = _channel_sum(grad, x_hat)
    if not training:
        return grad * scale, grad_weight, grad_bias
    count = x_hat.size // x_hat.shape[1]
    grad_x = x_hat * (grad_weight * (-1.0 / count))
    if isinstance(grad_x, Tensor):
        return (grad_x + grad - grad_bias * (1.0 / count)) * scale, grad_weight, grad_bias
    grad_x += grad  # in place on the array just made: no further full-size arrays
    grad_x -= grad_bias * (1.0 / count)
    grad_x *= scale
    return grad_x, grad_weight, grad_bias


class FusedBatchNorm(Function):
    """BatchNorm as one op: NumPy forward with two new arrays (x_hat, saved, and the output),
    closed-form backward with one (d x). With the compiled kernels on, the forward makes only
    the output and saves no x_hat; the backward recomputes it from x.

    Inputs: ``x, weight, bias, running_mean, running_var`` (the last four may be None); the
    running statistics are updated in place when training. With ``create_graph=True`` the
    backward rebuilds x_hat from x with Tensor ops, so second derivatives are exact too."""

    runs_on_arrays = True

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        shape = _channel_shape(x)
        if _kernel_fits(x, weight, bias):
            return FusedBatchNorm._compiled_forward(ctx, x, weight, bias, running_mean,
                                                    running_var, training, momentum, eps)
        if training and x.size == 0:  # an empty batch: no statistics, none folded in
            mean, invstd = np.zeros(shape, x.dtype), np.ones(shape, x.dtype)
            x_hat = x - mean
        elif training:
            # Var's corrected two-pass formula (see ops.reduce.Var): centre on a first mean,
            # then float64 sums of the centred values give the mean's error (shift) and the
            # variance. Only the sums need float64: a first mean in x's dtype is close enough
            # for float32 to subtract exactly from data near it.
            count = x.size // x.shape[1]
            mean = np.add.reduce(x, axis=_channel_axes(x.ndim), keepdims=True,
                                 dtype=np.promote_types(x.dtype, np.float32))
            mean /= count
            x_hat = x - mean.astype(x.dtype, copy=False)
            shift = _channel_sum(x_hat, accurate=True) / count
            var = np.maximum(_channel_sum(x_hat, x_hat, accurate=True) / count
                             - shift * shift, 0.0)
            invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
            # Subtract the shift too where it is not lost in x_hat's rounding: data far from
            # zero (1e8 + noise), where it is as large as the spread. Elsewhere a pass saved.
            if np.abs(shift * invstd).max() > np.finfo(x.dtype).eps:
                x_hat -= shift.astype(x.dtype)
            mean = mean + shift
            if running_mean is not None:
                _update_running_stats(running_mean, running_var, mean, var, count, momentum)
            mean = mean.astype(x.dtype)
        else:
            mean, var = running_mean.reshape(shape).copy(), running_var.reshape(shape)
            x_hat = x - mean
            invstd = 1.0 / np.sqrt(var + eps)
        x_hat *= invstd
        ctx.save_for_backward(x, weight, x_hat, mean, invstd)
        return _affine(x_hat, weight, bias, shape)

    @staticmethod
    def backward(ctx, grad):
        x, weight, x_hat, mean, invstd = ctx.saved_tensors
        # an empty batch was normalized with constants, as the running statistics are
        training = ctx.attrs["training"] and x.size > 0
        if is_grad_enabled():  # differentiable: x_hat (and invstd) as functions of x
            if training:
                axes = _channel_axes(x.ndim)
                centred = x - x.mean(axis=axes, keepdims=True)
                # what the mean's rounding left, as the forward removes it (far from zero)
                centred = centred - centred.mean(axis=axes, keepdims=True)
                invstd = 1.0 / (centred.var(axis=axes, keepdims=True) + ctx.attrs["eps"]).sqrt()
                x_hat = centred * invstd
            else:
                x_hat = (x - mean) * invstd
        elif x_hat is None:  # the compiled forward kept no x_hat: it follows from x
            if _kernel_fits(x) and grad.dtype == x.dtype and grad.shape == x.shape:
                from ..kernels import batchnorm as compiled  # (imports Numba on first use)
                grad_x, grad_weight, grad_bias = compiled.backward(
                    grad, x, mean, ctx.shift, invstd, weight, training)
                return grad_x, grad_weight, grad_bias, None, None
            x_hat = (x - mean - ctx.shift) * invstd
        scale = invstd if weight is None else invstd * weight.reshape(_channel_shape(x))
        grad_x, grad_weight, grad_bias = _batch_norm_grads(grad, x_hat, scale, training)
        return grad_x, grad_weight.reshape(-1), grad_bias.reshape(-1), None, None

    @staticmethod
    def _compiled_forward(ctx, x, weight, bias, running_mean, running_var, training, momentum,
                          eps):
        """The forward by the compiled kernels (minigrad.kernels.batchnorm): the statistics
        from float64 sums, the mean kept as (hi, lo) in x's dtype -- hi saved as the mean,
        lo as ``ctx.shift`` -- and no x_hat saved: the backward recomputes it from x."""
        from ..kernels import batchnorm as compiled  # (imports Numba on first use)
        shape = _channel_shape(x)
        given = () if training else (running_mean, running_var)
        out, hi, lo, invstd, mean, var = compiled.forward(x, weight, bias, eps, *given)
        if training and running_mean is not None:
            _update_running_stats(running_mean, running_var, mean, var,
                                  _values_per_channel(x), momentum)
        ctx.shift = lo.reshape(shape)
        ctx.save_for_backward(x, weight, None, hi.reshape(shape), invstd.reshape(shape))
        return out


_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _kernel_fits(x, *parameters) -> bool:
    """Whether FusedBatchNorm may run its compiled kernels on ``x``: the switch on, a
    non-empty float32/float64 array of 2 or more dims, C-contiguous or channels-last (as
    conv2d's output), and each of ``parameters`` (weight, bias) None or of x's dtype. Anything
    else runs the NumPy code."""
    if not (kernels.enabled() and type(x) is np.ndarray and x.dtype in _KERNEL_DTYPES
            and x.ndim >= 2 and x.size > 0
            and all(p is None or p.dtype == x.dtype for p in parameters)):
        return False
    from ..kernels import batchnorm as compiled  # (imports Numba on first use)
    return x.flags.c_contiguous or compiled.channels_last(x)


# ----------------------------------------------------------------------------------------------
# LayerNorm and GroupNorm: the same standardization over other axes, no running statistics
# ----------------------------------------------------------------------------------------------

def normalized_shape_of(owner: str, normalized_shape) -> tuple:
    """LayerNorm's ``normalized_shape`` as a tuple of positive ints: one int, or a non-empty
    sequence of them."""
    shape = ((normalized_shape,) if isinstance(normalized_shape, numbers.Integral)
             else normalized_shape)
    if not isinstance(shape, (tuple, list)) or not shape:
        bad_argument(owner, "normalized_shape", "a positive int or a non-empty tuple of them",
                     normalized_shape, ArgumentTypeError)
    return tuple(positive_int(owner, "normalized_shape", n) for n in shape)


def layer_norm(x, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalize each sample over its last ``len(normalized_shape)`` dims (which must equal
    ``normalized_shape``), then scale and shift elementwise by ``weight`` and ``bias``."""
    x = as_tensor(x, "layer_norm")
    weight, bias = as_parameter(weight, x, "layer_norm"), as_parameter(bias, x, "layer_norm")
    normalized_shape = normalized_shape_of("layer_norm", normalized_shape)
    eps = positive_real("layer_norm", "eps", eps)
    k = len(normalized_shape)
    if x.ndim < k or x.shape[x.ndim - k:] != normalized_shape:
        dims = ", ".join(map(str, normalized_shape))
        bad_argument("layer_norm", "the input", f"of shape (*, {dims}) (its last {k} dims "
                     f"normalized_shape)", x, ShapeError)
    _check_parameters("layer_norm", x, normalized_shape, weight=weight, bias=bias)
    mean, var = _moments(x, tuple(range(x.ndim - k, x.ndim)))
    return _affine(_normalize(x, mean, var, eps), weight, bias, normalized_shape)


def group_norm(x, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Split the C channels of ``x`` (N, C, ...) into ``num_groups`` groups, normalize each
    sample's group over its channels and positions, then scale and shift per channel. Batch
    size plays no part -- the point of GroupNorm. A group of one value normalizes to 0, as in
    PyTorch (no running statistics to divide by n - 1, unlike BatchNorm) -- unless every group
    of the whole batch holds one value: PyTorch calls that "Expected more than 1 value per
    channel when training", as for BatchNorm."""
    x = as_tensor(x, "group_norm")
    weight, bias = as_parameter(weight, x, "group_norm"), as_parameter(bias, x, "group_norm")
    num_groups = positive_int("group_norm", "num_groups", num_groups)
    eps = positive_real("group_norm", "eps", eps)
    if x.ndim < 2 or x.shape[1] % num_groups:
        bad_argument("group_norm", "the input", f"of shape (N, C, ...) with C divisible by "
                     f"num_groups={num_groups}", x, ShapeError)
    _check_parameters("group_norm", x, (x.shape[1],), weight=weight, bias=bias)
    if x.size == num_groups:  # PyTorch's rule: (N * C / G) * prod(spatial dims) == 1
        raise ValueError(f"Expected more than 1 value per channel when training, got input "
                         f"size {x.shape}")  # PyTorch's words
    # (the group size spelled out, not -1: an empty batch reshapes too)
    groups = x.reshape(x.shape[0], num_groups, math.prod(x.shape[1:]) // num_groups)
    mean, var = _moments(groups, (2,))
    x_hat = _normalize(groups, mean, var, eps).reshape(x.shape)
    return _affine(x_hat, weight, bias, _channel_shape(x))
