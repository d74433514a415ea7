"""Layers without normalization: Linear, Conv2d, activations, Dropout, Flatten."""
from __future__ import annotations

import math

from .. import functional as F
from ..core.checks import boolean, integer, positive_int, probability
from ..core.errors import ShapeError
from ..core.ops.args import normalize_axis
from . import init
from .module import Module, Parameter

__all__ = ["Linear", "Conv2d", "ReLU", "Sigmoid", "Tanh", "Dropout", "Flatten"]


def _default_parameters(module: Module, weight_shape: tuple, fan_in: int, bias: bool, dtype,
                        rng) -> None:
    """PyTorch's default init: weight and bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) -- what
    its kaiming_uniform(a=sqrt(5)) works out to."""
    bound = 1.0 / math.sqrt(fan_in)
    rng = init.generator(rng)
    owner = type(module).__name__
    bias = boolean(owner, "bias", bias)
    module.weight = Parameter(init.uniform(weight_shape, bound, rng, dtype, owner))
    module.register_parameter("bias", Parameter(init.uniform(weight_shape[:1], bound, rng, dtype,
                                                             owner)) if bias else None)


class Linear(Module):
    """y = x @ weight.T + bias, with weight (out_features, in_features).

    Initialized like PyTorch: weight and bias from U(-1/sqrt(in_features), 1/sqrt(in_features)).
    ``rng`` (a NumPy Generator or int seed) overrides the shared generator of ``nn.init``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, dtype=None,
                 rng=None):
        super().__init__()
        self.in_features = positive_int("Linear", "in_features", in_features)
        self.out_features = positive_int("Linear", "out_features", out_features)
        _default_parameters(self, (out_features, in_features), in_features, bias, dtype, rng)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Conv2d(Module):
    """2-D convolution of (N, in_channels, H, W) inputs with a square or (KH, KW) kernel,
    ``stride`` and zero ``padding``. Initialized like PyTorch: U(-1/sqrt(fan_in),
    1/sqrt(fan_in)) with fan_in = in_channels * KH * KW."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, *, dtype=None, rng=None):
        super().__init__()
        self.in_channels = positive_int("Conv2d", "in_channels", in_channels)
        self.out_channels = positive_int("Conv2d", "out_channels", out_channels)
        self.kernel_size = F.pair(kernel_size, "kernel_size", "Conv2d", minimum=1)
        self.stride = F.pair(stride, "stride", "Conv2d", minimum=1)
        self.padding = F.pair(padding, "padding", "Conv2d")
        _default_parameters(self, (out_channels, in_channels) + self.kernel_size,
                            in_channels * math.prod(self.kernel_size), bias, dtype, rng)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Dropout(Module):
    """Zero each element with probability ``p`` while training (scaling the rest by 1/(1-p));
    the identity in eval mode. Its masks come from its own Generator, drawn from ``rng`` (or
    from the shared generator of ``nn.init``) when the layer is built."""

    def __init__(self, p: float = 0.5, *, rng=None):
        super().__init__()
        self.p = probability("Dropout", "p", p)
        self.rng = init.generator(rng).spawn(1)[0]

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.rng)

    def extra_repr(self):
        return f"p={self.p}"


class Flatten(Module):
    """Merge dims ``start_dim`` .. ``end_dim`` into one: (N, C, H, W) -> (N, C*H*W) by
    default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = integer("Flatten", "start_dim", start_dim)
        self.end_dim = integer("Flatten", "end_dim", end_dim)

    def forward(self, x):
        x = F.as_tensor(x, "Flatten")
        # An axis out of range is an IndexError, as in PyTorch (never wrapped around).
        start = normalize_axis(self.start_dim, x.ndim, "Flatten")
        end = normalize_axis(self.end_dim, x.ndim, "Flatten")
        if x.ndim == 0:  # PyTorch: a 0-d tensor flattens to one element
            return x.reshape(1)
        (start,), (end,) = start, end
        if start > end:
            raise ShapeError(f"Flatten: start_dim ({self.start_dim}) cannot come after end_dim "
                             f"({self.end_dim}) for an input of shape {x.shape}")
        return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1:])

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
