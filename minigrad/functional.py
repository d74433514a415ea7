"""Functions built from the primitive ops: activations, losses, convolution and normalization.

Most of them are a few lines of Tensor ops, so their graphs show every step and their gradients
come for free. A few are ops of their own, for speed: ``Linear`` (one node per layer),
``LogSoftmax`` and ``NLLLoss`` (the cross-entropy in two nodes), ``Im2Col``/``Col2Im`` (the
data movement behind ``conv2d``) and ``FusedBatchNorm`` (``batch_norm(..., fused=True)``: one
node with the closed-form backward, next to the composed graph it must agree with). Where their
backward formula is written with operators only, it runs on the NumPy arrays in an ordinary
backward and on Tensors -- differentiable again -- under ``backward(create_graph=True)`` (see
``Function.runs_on_arrays``).

Also reachable as ``minigrad.nn.functional``; conventionally imported as ``F``.
"""
from __future__ import annotations

import numbers

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .checks import is_real, probability
from .autograd import Function, is_grad_enabled
from .core.ops import normalize_axis
from .core.tensor import Tensor, as_array

__all__ = ["linear", "relu", "sigmoid", "tanh", "softmax", "log_softmax", "cross_entropy",
           "mse_loss", "dropout", "conv2d", "batch_norm", "layer_norm", "group_norm",
           "FusedBatchNorm", "LogSoftmax", "NLLLoss", "Im2Col", "Col2Im"]


# ----------------------------------------------------------------------------------------------
# Argument checks shared by everything below
# ----------------------------------------------------------------------------------------------

def as_tensor(x) -> Tensor:
    """``x`` itself if it is a Tensor, else ``Tensor(x)``: what the functions here (and the
    layers of ``nn``) accept as input. Not in ``__all__``: a helper, not an op."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _check_parameters(op_name: str, x: Tensor, expected_shape: tuple | None, **tensors) -> None:
    """Each given tensor (None is skipped) must have ``expected_shape`` (unless None) and the
    input's dtype: mixing dtypes would silently promote float32 to float64."""
    for name, t in tensors.items():
        if t is None:
            continue
        if expected_shape is not None and t.shape != expected_shape:
            raise ValueError(f"{op_name}: {name} has shape {t.shape}, expected "
                             f"{expected_shape} for an input of shape {x.shape}")
        if t.dtype != x.dtype:
            raise TypeError(f"{op_name}: the input is {x.dtype} but {name} is {t.dtype}; convert "
                            f"one of them (module.to(np.{x.dtype}) or x.astype(np.{t.dtype}))")


def _check_reduction(reduction: str, op_name: str) -> None:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op_name}: reduction must be 'mean', 'sum' or 'none', got "
                         f"{reduction!r}")


def _reduce(losses: Tensor, reduction: str, op_name: str) -> Tensor:
    _check_reduction(reduction, op_name)
    if reduction == "mean":
        return losses.mean()
    return losses.sum() if reduction == "sum" else losses


# ----------------------------------------------------------------------------------------------
# Activations, linear, losses, dropout
# ----------------------------------------------------------------------------------------------

def relu(x) -> Tensor:
    return as_tensor(x).relu()


def sigmoid(x) -> Tensor:
    return as_tensor(x).sigmoid()


def tanh(x) -> Tensor:
    return as_tensor(x).tanh()


def linear(x, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias``, with ``weight`` of shape (out_features, in_features)."""
    x = as_tensor(x)
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: the input's last dim must equal weight's second dim "
                         f"(in_features), got input shape {x.shape} and weight shape "
                         f"{weight.shape}")
    _check_parameters("linear", x, None, weight=weight)
    _check_parameters("linear", x, (weight.shape[0],), bias=bias)
    return Linear.apply(x, weight, bias)


class Linear(Function):
    """``x @ weight.T + bias`` as one op (PyTorch's addmm): a layer is one node, not four
    (transpose, matmul, broadcast, add), which matters for small, fast layers."""

    runs_on_arrays = True

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        out = x @ weight.T
        if bias is not None:
            out += bias
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_weight, need_bias = ctx.needs_input_grad
        rows = grad.reshape(-1, grad.shape[-1])  # every leading dim is a batch dim
        return (grad @ weight if need_x else None,
                rows.T @ x.reshape(-1, x.shape[-1]) if need_weight else None,
                rows.sum(axis=0) if need_bias else None)


class LogSoftmax(Function):
    """log(softmax(x)) along ``axis`` as one op. Subtracting the maximum first keeps ``exp``
    from overflowing (logits of 1000 are fine) and changes nothing: log_softmax is the same for
    x and x - c. One node instead of six keeps the loss at the top of every graph cheap."""

    runs_on_arrays = True

    @staticmethod
    def forward(ctx, x, axis):
        shifted = x - x.max(axis=axis, keepdims=True)
        shifted -= np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(shifted)
        return shifted

    @staticmethod
    def backward(ctx, grad):
        # d/dx: grad - softmax(x) * sum(grad); the saved output is re-attached to this node, so
        # the expression is differentiable again.
        (out,) = ctx.saved_tensors
        softmax = out.exp() if isinstance(out, Tensor) else np.exp(out)  # (arrays have no .exp)
        return grad - softmax * grad.sum(axis=ctx.attrs["axis"], keepdims=True)


def log_softmax(x, axis: int = -1) -> Tensor:
    """log(softmax(x)) along ``axis``, computed stably (see LogSoftmax)."""
    x = as_tensor(x)
    (axis,) = normalize_axis(axis, x.ndim, "log_softmax")
    return LogSoftmax.apply(x, axis=axis)


def softmax(x, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``, as exp(log_softmax(x)): stable for any logits."""
    return log_softmax(x, axis).exp()


def _class_indices(labels, batch: int, classes: int) -> np.ndarray:
    """Labels as a NumPy integer array, checked against the logits' shape (N, C)."""
    labels = np.asarray(as_array(labels))
    if labels.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: labels must be integer class indices, got dtype "
                        f"{labels.dtype} (convert with labels.astype(np.int64) if they are "
                        f"whole numbers)")
    if labels.shape != (batch,):
        raise ValueError(f"cross_entropy: labels must have shape ({batch},) for logits of shape "
                         f"({batch}, {classes}), got shape {labels.shape}")
    bad = np.flatnonzero((labels < 0) | (labels >= classes))
    if bad.size:
        raise ValueError(f"cross_entropy: labels must lie in [0, {classes}) for {classes} "
                         f"classes; label {labels[bad[0]]} at index {bad[0]} does not "
                         f"({bad.size} out of range in all)")
    return labels


def cross_entropy(logits, labels, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy of ``logits`` (N, C) against integer ``labels`` (N,) in [0, C)."""
    logits = as_tensor(logits)
    if logits.ndim != 2 or 0 in logits.shape:
        raise ValueError(f"cross_entropy: logits must have shape (N, C) with N, C >= 1, got "
                         f"shape {logits.shape}")
    batch, classes = logits.shape
    labels = _class_indices(labels, batch, classes)
    _check_reduction(reduction, "cross_entropy")
    return NLLLoss.apply(log_softmax(logits, axis=1), Tensor(labels), reduction=reduction)


class NLLLoss(Function):
    """The negative log-likelihood of the labels, -log_probs[i, labels[i]], averaged, summed or
    per sample (``reduction``): with log_softmax below it, the cross-entropy."""

    runs_on_arrays = True

    @staticmethod
    def forward(ctx, log_probs, labels, reduction):
        losses = -log_probs[np.arange(len(labels)), labels]
        return losses if reduction == "none" else losses.sum() * (
            1.0 / len(labels) if reduction == "mean" else 1.0)

    @staticmethod
    def backward(ctx, grad):
        log_probs, labels = ctx.inputs
        # d loss / d log_probs is -grad (per sample) at each sample's label and 0 elsewhere:
        # the gradient times a constant one-hot pattern, linear in grad at any order.
        pattern = np.zeros(log_probs.shape, dtype=log_probs.dtype)
        pattern[np.arange(len(labels.data)), labels.data] = (
            -1.0 / len(labels.data) if ctx.attrs["reduction"] == "mean" else -1.0)
        if ctx.attrs["reduction"] == "none":
            grad = grad.reshape(-1, 1)
        return grad * pattern, None


def mse_loss(input, target, reduction: str = "mean") -> Tensor:
    """Mean (or sum, or elementwise) squared error. Shapes must match exactly: a silent broadcast
    of (N,) against (N, 1) is a classic bug."""
    input, target = as_tensor(input), as_tensor(target)
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input shape {input.shape} and target shape {target.shape} "
                         f"differ (reshape one of them)")
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")


def dropout(x, p: float = 0.5, training: bool = True, rng: np.random.Generator | None = None):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p), so the expected
    value is unchanged; the identity when not training. Pass ``rng`` (a NumPy Generator) for
    reproducible masks; ``nn.Dropout`` always does."""
    x = as_tensor(x)
    probability("dropout", "p", p)
    if not training or p == 0:
        return x
    rng = np.random.default_rng() if rng is None else rng
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    mask = (rng.random(x.shape, dtype=dtype) >= p).astype(x.dtype)
    if p < 1:
        mask *= 1.0 / (1.0 - p)
    return x * mask


# ----------------------------------------------------------------------------------------------
# Convolution: im2col turns it into one matrix product
# ----------------------------------------------------------------------------------------------

def _conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class Im2Col(Function):
    """Every (C, KH, KW) patch of a zero-padded (N, C, H, W) image as one row: the result has
    shape (N * OH * OW, C * KH * KW). A linear op whose backward is Col2Im (and vice versa), so
    convolution can be differentiated any number of times."""

    runs_on_arrays = True

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding):
        ctx.save_for_backward(x.shape)
        (ph, pw), (sh, sw) = padding, stride
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        windows = sliding_window_view(x, kernel_size, axis=(2, 3))[:, :, ::sh, ::sw]
        n, c, oh, ow, kh, kw = windows.shape
        return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)

    @staticmethod
    def backward(ctx, grad):
        (shape,) = ctx.saved_tensors
        return Col2Im.apply(grad, image_shape=shape, **ctx.attrs)


class Col2Im(Function):
    """The adjoint of Im2Col: add every row back onto the patch of the image it came from
    (overlapping patches add up)."""

    runs_on_arrays = True

    @staticmethod
    def forward(ctx, cols, image_shape, kernel_size, stride, padding):
        n, c, h, w = image_shape
        (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
        oh, ow = _conv_output_size(h, kh, sh, ph), _conv_output_size(w, kw, sw, pw)
        # Channels last, the layout of the rows: each of the KH * KW strided slice-adds below
        # (one per kernel offset, whatever the image size) then writes contiguous channels.
        padded = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=cols.dtype)
        patches = cols.reshape(n, oh, ow, c, kh, kw)
        for i in range(kh):
            for j in range(kw):
                padded[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] += \
                    patches[..., i, j]
        return padded[:, ph:ph + h, pw:pw + w].transpose(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad):
        attrs = {k: v for k, v in ctx.attrs.items() if k != "image_shape"}
        return Im2Col.apply(grad, **attrs)


def pair(value, name: str) -> tuple:
    """An int or a pair of ints (a convolution's kernel size, stride or padding) as a pair of
    ints; a ValueError naming ``name`` otherwise. Shared with ``nn.Conv2d``; not in
    ``__all__``."""
    values = (value, value) if isinstance(value, numbers.Integral) else tuple(value)
    if len(values) != 2 or not all(isinstance(v, numbers.Integral) for v in values):
        raise ValueError(f"conv2d: {name} must be an int or a pair of ints, got {value!r}")
    return tuple(int(v) for v in values)


def conv2d(x, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0) -> Tensor:
    """2-D cross-correlation (what deep learning calls convolution) of ``x`` (N, C, H, W) with
    ``weight`` (O, C, KH, KW), zero ``padding`` and ``stride``; the result is (N, O, OH, OW)."""
    x = as_tensor(x)
    stride, padding = pair(stride, "stride"), pair(padding, "padding")
    if x.ndim != 4 or weight.ndim != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"conv2d: expected an input (N, C, H, W) and a weight (O, C, KH, KW) "
                         f"with the same C, got input shape {x.shape} and weight shape "
                         f"{weight.shape}")
    if min(stride) < 1 or min(padding) < 0:
        raise ValueError(f"conv2d: stride must be >= 1 and padding >= 0, got stride {stride} "
                         f"and padding {padding}")
    _check_parameters("conv2d", x, None, weight=weight)
    _check_parameters("conv2d", x, weight.shape[:1], bias=bias)
    n, _, h, w = x.shape
    out_channels, _, kh, kw = weight.shape
    oh = _conv_output_size(h, kh, stride[0], padding[0])
    ow = _conv_output_size(w, kw, stride[1], padding[1])
    if oh < 1 or ow < 1:
        raise ValueError(f"conv2d: a {kh}x{kw} kernel does not fit an input of shape {x.shape} "
                         f"with padding {padding}")
    cols = Im2Col.apply(x, kernel_size=(kh, kw), stride=stride, padding=padding)
    out = Linear.apply(cols, weight.reshape(out_channels, -1), bias)  # every patch, one layer
    return out.reshape(n, oh, ow, out_channels).transpose(0, 3, 1, 2)


# ----------------------------------------------------------------------------------------------
# Normalization. Every layer is the same two steps: standardize over some axes with the biased
# variance, x_hat = (x - mean) / sqrt(var + eps), then scale and shift per feature.
# ----------------------------------------------------------------------------------------------

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
