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
from .args import as_tensor  # noqa: F401
from .activations import Erf, LeakyRelu, Softplus, gelu, leaky_relu, softplus  # noqa: F401
from .basic import (LogSoftmax, Linear, NLLLoss, cross_entropy, dropout, linear, log_softmax,  # noqa
                    mse_loss, relu, sigmoid, softmax, tanh)
from .conv import Col2Im, Im2Col, conv2d, pair  # noqa: F401
from .normalization import FusedBatchNorm, batch_norm, group_norm, layer_norm  # noqa: F401
from .pooling import avg_pool2d, max_pool2d, pool_geometry  # noqa: F401

__all__ = ["linear", "relu", "sigmoid", "tanh", "softmax", "log_softmax", "cross_entropy",
           "mse_loss", "dropout", "conv2d", "batch_norm", "layer_norm", "group_norm",
           "FusedBatchNorm", "LogSoftmax", "NLLLoss", "Im2Col", "Col2Im",
           "leaky_relu", "gelu", "softplus", "max_pool2d", "avg_pool2d", "LeakyRelu", "Erf",
           "Softplus"]
