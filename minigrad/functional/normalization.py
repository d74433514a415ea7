"""Normalization. Every layer is the same two steps: standardize over some axes with the biased
variance, x_hat = (x - mean) / sqrt(var + eps), then scale and shift per feature."""
from __future__ import annotations

import numbers

import numpy as np

from ..autograd import Function, is_grad_enabled
from ..core.checks import is_real
from ..core.tensor import Tensor
from .args import _check_parameters, as_tensor


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


def _channel_shape(x) -> tuple:
    """The shape (C, 1, ...) in which per-channel values broadcast against ``x`` (N, C, ...):
    just (C,) for an (N, C) input, so there the parameters need no Reshape node."""
    return (x.shape[1],) + (1,) * (x.ndim - 2)


def _check_batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps):
    """Validate everything before anything runs, so a bad call leaves the running stats as
    they were."""
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected an input of shape (N, C, ...) with at least 2 "
                         f"dims, got shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"batch_norm: expected a floating-point input, got {x.dtype}")
    channels = x.shape[1]
    _check_parameters("batch_norm", x, (channels,), running_mean=running_mean,
                      running_var=running_var, weight=weight, bias=bias)
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: pass both running_mean and running_var, or neither")
    if not training and running_mean is None:
        raise ValueError("batch_norm: training=False normalizes with the running statistics, "
                         "so running_mean and running_var are required")
    if training and x.size <= channels:
        raise ValueError(f"Expected more than 1 value per channel when training, got input "
                         f"size {x.shape}")
    if not (is_real(momentum) and 0.0 <= momentum <= 1.0):
        raise ValueError(f"batch_norm: momentum must be a number in [0, 1], got {momentum!r} "
                         f"(the cumulative average, momentum=None, is a BatchNorm layer option: "
                         f"it needs the layer's num_batches_tracked)")
    if not (is_real(eps) and eps >= 0):
        raise ValueError(f"batch_norm: eps must be a number >= 0, got {eps!r}")


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
    """
    x = as_tensor(x)
    # NumPy arrays are wrapped, not copied: running statistics given as arrays update in place.
    running_mean, running_var, weight, bias = (t if t is None else as_tensor(t) for t in (
        running_mean, running_var, weight, bias))
    _check_batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
    if fused:
        return FusedBatchNorm.apply(x, weight, bias, running_mean, running_var,
                                    training=bool(training), momentum=momentum, eps=eps)
    shape = _channel_shape(x)
    if training:
        mean, var = _moments(x, _channel_axes(x.ndim))
        if running_mean is not None:
            _update_running_stats(running_mean.data, running_var.data, mean.data, var.data,
                                  x.size // x.shape[1], momentum)
    else:
        mean, var = running_mean.reshape(shape), running_var.reshape(shape)
    return _affine(_normalize(x, mean, var, eps), weight, bias, shape)


def _channel_sum(a, b=None):
    """Sum of ``a`` (or of ``a * b``) over every axis but axis 1, in a shape that broadcasts
    against ``a``. On Tensors it is a differentiable graph; on NumPy arrays one einsum, which
    allocates no temporary the size of ``a`` (at large sizes a fresh array costs more than the
    arithmetic)."""
    if isinstance(a, Tensor):
        return (a if b is None else a * b).sum(axis=_channel_axes(a.ndim), keepdims=True)
    axes = list(range(a.ndim))
    operands = (a, axes) if b is None else (a, axes, b, axes)
    return np.einsum(*operands, [1]).reshape(_channel_shape(a))


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
    closed-form backward with one (d x).

    Inputs: ``x, weight, bias, running_mean, running_var`` (the last four may be None); the
    running statistics are updated in place when training. With ``create_graph=True`` the
    backward rebuilds x_hat from x with Tensor ops, so second derivatives are exact too."""

    runs_on_arrays = True

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        shape = _channel_shape(x)
        if training:
            count = x.size // x.shape[1]
            # x.mean's own arithmetic (so, the composed graph's numbers) without its Python.
            mean = np.add.reduce(x, axis=_channel_axes(x.ndim), keepdims=True)
            mean /= count
            x_hat = x - mean
            var = _channel_sum(x_hat, x_hat) * (1.0 / count)
            if running_mean is not None:
                _update_running_stats(running_mean, running_var, mean, var, count, momentum)
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
        training = ctx.attrs["training"]
        if is_grad_enabled():  # differentiable: x_hat (and invstd) as functions of x
            if training:
                mean, var = _moments(x, _channel_axes(x.ndim))
                invstd = 1.0 / (var + ctx.attrs["eps"]).sqrt()
            x_hat = (x - mean) * invstd
        scale = invstd if weight is None else invstd * weight.reshape(_channel_shape(x))
        grad_x, grad_weight, grad_bias = _batch_norm_grads(grad, x_hat, scale, training)
        return grad_x, grad_weight.reshape(-1), grad_bias.reshape(-1), None, None


# ----------------------------------------------------------------------------------------------
# LayerNorm and GroupNorm: the same standardization over other axes, no running statistics
# ----------------------------------------------------------------------------------------------

def layer_norm(x, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalize each sample over its last ``len(normalized_shape)`` dims (which must equal
    ``normalized_shape``), then scale and shift elementwise by ``weight`` and ``bias``."""
    x = as_tensor(x)
    normalized_shape = ((normalized_shape,) if isinstance(normalized_shape, numbers.Integral)
                        else tuple(normalized_shape))
    k = len(normalized_shape)
    if k == 0 or x.ndim < k or x.shape[x.ndim - k:] != normalized_shape:
        raise ValueError(f"layer_norm: expected an input whose last {k} dims are "
                         f"{normalized_shape}, got shape {x.shape}")
    _check_parameters("layer_norm", x, normalized_shape, weight=weight, bias=bias)
    mean, var = _moments(x, tuple(range(x.ndim - k, x.ndim)))
    return _affine(_normalize(x, mean, var, eps), weight, bias, normalized_shape)


def group_norm(x, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Split the C channels of ``x`` (N, C, ...) into ``num_groups`` groups, normalize each
    sample's group over its channels and positions, then scale and shift per channel. Batch
    size plays no part -- the point of GroupNorm."""
    x = as_tensor(x)
    if x.ndim < 2 or num_groups < 1 or x.shape[1] % num_groups:
        raise ValueError(f"group_norm: expected an input (N, C, ...) with C divisible by "
                         f"num_groups={num_groups}, got shape {x.shape}")
    _check_parameters("group_norm", x, (x.shape[1],), weight=weight, bias=bias)
    groups = x.reshape(x.shape[0], num_groups, -1)
    mean, var = _moments(groups, (2,))
    x_hat = _normalize(groups, mean, var, eps).reshape(x.shape)
    return _affine(x_hat, weight, bias, _channel_shape(x))
