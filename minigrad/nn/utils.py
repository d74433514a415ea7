"""BatchNorm after training: fold it into the layer before it, or recompute its statistics.

In eval mode BatchNorm is an affine map per channel, y = (z - running_mean) * s + bias with
s = weight / sqrt(running_var + eps). When z = W x + b comes from a Linear or a convolution,
the two maps compose into one layer of the same kind:

    W' = W * s (each output channel's row scaled)      b' = (b - running_mean) * s + bias

-- what ``fuse_linear_bn_eval`` and ``fuse_conv_bn_eval`` return (PyTorch's formulas, from
``torch.nn.utils.fusion``), saving the normalization at inference.

``update_bn`` is Ioffe & Szegedy's Algorithm 2 (as ``torch.optim.swa_utils.update_bn``): with
the weights final, run the training data through the model once more and set every BatchNorm's
running statistics to the average over those batches -- for weights that were averaged (SWA),
or running statistics that lag behind the last steps of training.
"""
from __future__ import annotations

import copy

import numpy as np

from ..autograd import no_grad
from ..core.checks import bad_argument, boolean
from ..core.errors import ArgumentTypeError, ShapeError
from .layers import Conv2d, Linear
from .module import Module, Parameter
from .normalization import _BatchNorm, _check_device

__all__ = ["FusionError", "fuse_linear_bn_eval", "fuse_conv_bn_eval", "update_bn"]


class FusionError(AssertionError, ValueError):
    """A pair that cannot be fused: a module in training mode, or a BatchNorm without running
    statistics. PyTorch raises AssertionError; this is also a ValueError."""


def _check_pair(owner: str, layer, kinds: tuple, bn) -> None:
    if not isinstance(layer, kinds):
        bad_argument(owner, "the layer", " or ".join(f"an nn.{k.__name__}" for k in kinds),
                     layer, ArgumentTypeError)
    if not isinstance(bn, _BatchNorm):
        bad_argument(owner, "bn", "an nn.BatchNorm1d or nn.BatchNorm2d", bn, ArgumentTypeError)
    if layer.training or bn.training:  # PyTorch's words
        raise FusionError(f"{owner}: Fusion only for eval! (call .eval() on both modules; in "
                          f"training BatchNorm uses each batch's statistics, which no fixed "
                          f"weights reproduce)")
    if bn.running_mean is None or bn.running_var is None:
        raise FusionError(f"{owner}: bn.running_mean and bn.running_var must not be None (a "
                          f"BatchNorm built with track_running_stats=False normalizes with each "
                          f"batch's statistics)")


def _bn_eval_parameters(bn: _BatchNorm, dtype):
    """What BatchNorm computes with in eval mode, y = (z - running_mean) * scale + bias:
    scale = weight / sqrt(running_var + eps), running_mean and bias (weight 1 and bias 0 when
    it has none), in ``dtype``'s precision or the buffers' if higher."""
    dtype = np.promote_types(dtype, bn.running_var.dtype)
    weight = 1.0 if bn.weight is None else bn.weight.data.astype(dtype)
    bias = 0.0 if bn.bias is None else bn.bias.data.astype(dtype)
    scale = weight / np.sqrt(bn.running_var.data.astype(dtype) + bn.eps)
    return scale, bn.running_mean.data.astype(dtype), bias


def _fused_parameters(layer, weight: np.ndarray, bias: np.ndarray):
    """Replace ``layer``'s weight and bias (a copy's) with the fused ones, in the layer's
    dtype, requiring grad as the originals did."""
    requires_grad = layer.weight.requires_grad
    bias_requires_grad = requires_grad if layer.bias is None else layer.bias.requires_grad
    layer.weight = Parameter(weight.astype(layer.weight.dtype), requires_grad=requires_grad)
    layer.bias = Parameter(bias.astype(layer.weight.dtype), requires_grad=bias_requires_grad)
    return layer


def fuse_linear_bn_eval(linear: Linear, bn: _BatchNorm) -> Linear:
    """A new Linear computing ``bn(linear(x))`` as both compute it in eval mode: BatchNorm's
    running statistics, weight and bias folded into the Linear's weight and bias (a Linear
    without a bias gains one). Both modules must be in eval mode and ``bn`` must have running
    statistics; its ``num_features`` must be ``linear.out_features`` (or 1). The originals are
    left as they are. PyTorch's ``torch.nn.utils.fuse_linear_bn_eval``."""
    owner = "fuse_linear_bn_eval"
    _check_pair(owner, linear, (Linear,), bn)
    if bn.num_features not in (linear.out_features, 1):  # (PyTorch: AssertionError)
        raise FusionError(f"{owner}: To fuse, linear.out_features == bn.num_features or "
                          f"bn.num_features == 1, got linear.out_features="
                          f"{linear.out_features} and bn.num_features={bn.num_features}")
    scale, running_mean, bn_bias = _bn_eval_parameters(bn, linear.weight.dtype)
    bias = 0.0 if linear.bias is None else linear.bias.data
    weight = linear.weight.data * scale[:, None]
    fused_bias = np.broadcast_to((bias - running_mean) * scale + bn_bias,
                                 (linear.out_features,))
    return _fused_parameters(copy.deepcopy(linear), weight, fused_bias)


def fuse_conv_bn_eval(conv: Conv2d, bn: _BatchNorm, transpose: bool = False) -> Conv2d:
    """A new Conv2d computing ``bn(conv(x))`` as both compute it in eval mode: each output
    channel's filter scaled by weight / sqrt(running_var + eps), the bias shifted to match (a
    conv without a bias gains one). Both modules must be in eval mode and ``bn`` must have
    running statistics for the conv's output channels. ``transpose=True`` scales the weight's
    axis 1 instead of axis 0, where a transposed convolution keeps its output channels --
    PyTorch's ``torch.nn.utils.fuse_conv_bn_eval``, whose signature this is."""
    owner = "fuse_conv_bn_eval"
    transpose = boolean(owner, "transpose", transpose)
    _check_pair(owner, conv, (Conv2d,), bn)
    axis = 1 if transpose else 0
    channels = conv.weight.shape[axis]
    if bn.num_features != channels:
        raise ShapeError(f"{owner}: bn.num_features must be the conv weight's axis {axis} "
                         f"(its output channels{', transpose=True' if transpose else ''}), "
                         f"{channels}, got {bn.num_features}")
    scale, running_mean, bn_bias = _bn_eval_parameters(bn, conv.weight.dtype)
    bias = 0.0 if conv.bias is None else conv.bias.data
    shape = [1] * conv.weight.ndim
    shape[axis] = -1
    weight = conv.weight.data * scale.reshape(shape)
    fused_bias = np.broadcast_to((bias - running_mean) * scale + bn_bias, (channels,))
    return _fused_parameters(copy.deepcopy(conv), weight, fused_bias)


def update_bn(loader, model: Module, device=None) -> None:
    """Recompute the running statistics of every BatchNorm in ``model`` from ``loader``:
    reset them, run every batch through the model in training mode without gradients, each
    BatchNorm with ``momentum=None`` (the cumulative average, so every batch counts equally),
    then restore the momenta and the model's mode (``model.train(was_training)``, as PyTorch).
    A batch may be an input or a tuple/list whose first element is the input (``(x, y)`` from
    a DataLoader). ``device``: None or 'cpu'. PyTorch's ``torch.optim.swa_utils.update_bn``."""
    owner = "update_bn"
    if not isinstance(model, Module):
        bad_argument(owner, "model", "an nn.Module", model, ArgumentTypeError)
    _check_device(owner, device)
    if not hasattr(loader, "__iter__") or isinstance(loader, (str, bytes)):
        bad_argument(owner, "loader", "an iterable of batches (a DataLoader, a list of inputs "
                     "or of (input, target) tuples)", loader, ArgumentTypeError)
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    try:
        with no_grad():
            for batch in loader:
                model(batch[0] if isinstance(batch, (list, tuple)) else batch)
    finally:  # a batch that fails leaves the model's settings as they were
        for module, momentum in momenta.items():
            module.momentum = momentum
        model.train(was_training)
