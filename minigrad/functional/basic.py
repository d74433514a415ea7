"""Activations, the linear layer's op, losses and dropout."""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..core.checks import ArgumentTypeError, bad_argument, boolean, integer, probability
from ..core.dtypes import to_array
from ..core.errors import OutOfRangeError, ShapeError
from ..core.ops import normalize_axis
from ..core.tensor import Tensor, as_array
from .args import _check_parameters, as_parameter, _check_reduction, _reduce, as_tensor


def relu(x) -> Tensor:
    return as_tensor(x, "relu").relu()


def sigmoid(x) -> Tensor:
    return as_tensor(x, "sigmoid").sigmoid()


def tanh(x) -> Tensor:
    return as_tensor(x, "tanh").tanh()


def linear(x, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias``, with ``weight`` of shape (out_features, in_features)."""
    x = as_tensor(x, "linear")
    if weight is None:
        bad_argument("linear", "weight", "a Tensor (or an array of numbers)", weight,
                     ArgumentTypeError)
    weight, bias = as_parameter(weight, x, "linear"), as_parameter(bias, x, "linear")
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"linear: the input's last dim must equal weight's second dim "
                         f"(in_features), got input shape {x.shape} and weight shape "
                         f"{weight.shape}")
    dtype = x.dtype
    if weight.dtype != dtype or bias is not None and (
            bias.dtype != dtype or bias.shape != weight.shape[:1]):
        # (One cheap test for the common case: a layer runs on every batch.)
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
        if x.size == 0:  # nothing to normalise (a max over no values has no identity)
            ctx.save_for_backward(x)
            return x.copy()
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
    return _log_softmax(x, axis, "log_softmax")


def softmax(x, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``, as exp(log_softmax(x)): stable for any logits."""
    return _log_softmax(x, axis, "softmax").exp()


def _log_softmax(x, axis, op_name: str) -> Tensor:
    x = as_tensor(x, op_name, floating=True)
    (axis,) = normalize_axis(integer(op_name, "axis", axis), max(x.ndim, 1), op_name)
    return LogSoftmax.apply(x, axis=axis)


def _class_indices(labels, batch: int, classes: int) -> np.ndarray:
    """Labels as a NumPy integer array, checked against the logits' shape (N, C)."""
    labels = to_array(as_array(labels), None, "cross_entropy")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: labels must be integer class indices, got dtype "
                        f"{labels.dtype} (convert with labels.astype(np.int64) if they are "
                        f"whole numbers)")
    if labels.shape != (batch,):
        raise ValueError(f"cross_entropy: labels must have shape ({batch},) for logits of shape "
                         f"({batch}, {classes}), got shape {labels.shape}")
    bad = np.flatnonzero((labels < 0) | (labels >= classes))
    if bad.size:  # IndexError, as PyTorch's "Target 5 is out of bounds"
        raise OutOfRangeError(f"cross_entropy: labels must lie in [0, {classes}) for {classes} "
                         f"classes; label {labels[bad[0]]} at index {bad[0]} does not "
                         f"({bad.size} out of range in all)")
    return labels


def cross_entropy(logits, labels, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy of ``logits`` (N, C) against integer ``labels`` (N,) in [0, C)."""
    logits = as_tensor(logits, "cross_entropy", floating=True)
    if logits.ndim != 2 or 0 in logits.shape:
        raise ValueError(f"cross_entropy: logits must have shape (N, C) with N, C >= 1, got "
                         f"shape {logits.shape}")
    batch, classes = logits.shape
    labels = _class_indices(labels, batch, classes)
    _check_reduction(reduction, "cross_entropy")
    # LogSoftmax directly: log_softmax's checks of the input and the axis are the ones above.
    return NLLLoss.apply(LogSoftmax.apply(logits, axis=1), Tensor._make(labels, False, None),
                         reduction=reduction)


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
    input = as_tensor(input, "mse_loss", floating=True)
    target = as_tensor(target, "mse_loss", floating=True)
    if input.shape != target.shape:
        raise ShapeError(f"mse_loss: input shape {input.shape} and target shape {target.shape} "
                         f"differ (reshape one of them)")
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")


def dropout(x, p: float = 0.5, training: bool = True, rng: np.random.Generator | None = None):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p), so the expected
    value is unchanged; the identity when not training. Pass ``rng`` (a NumPy Generator) for
    reproducible masks; ``nn.Dropout`` always does."""
    x = as_tensor(x, "dropout", floating=True)
    p = probability("dropout", "p", p)
    if rng is not None and not isinstance(rng, np.random.Generator):
        bad_argument("dropout", "rng", "None or a NumPy Generator (np.random.default_rng(seed))",
                     rng, ArgumentTypeError)
    if not boolean("dropout", "training", training) or p == 0:
        return x
    rng = np.random.default_rng() if rng is None else rng
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    mask = (rng.random(x.shape, dtype=dtype) >= p).astype(x.dtype)
    if p < 1:
        mask *= 1.0 / (1.0 - p)
    return x * mask
