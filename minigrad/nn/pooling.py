"""Pooling layers: MaxPool2d and AvgPool2d (see ``F.max_pool2d`` and ``F.avg_pool2d``)."""
from __future__ import annotations

from .. import functional as F
from ..core.checks import boolean
from .module import Module

__all__ = ["MaxPool2d", "AvgPool2d"]


class _Pool2d(Module):
    """What both pooling layers hold. The settings are kept as given (``stride`` None becomes
    ``kernel_size``), as PyTorch keeps them, after the checks the functions make."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False):
        super().__init__()
        owner = type(self).__name__
        F.pool_geometry(owner, kernel_size, stride, padding)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = boolean(owner, "ceil_mode", ceil_mode)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
                + (f", ceil_mode={self.ceil_mode}" if self.ceil_mode else ""))


class MaxPool2d(_Pool2d):
    """The maximum of each window of (N, C, H, W) or (C, H, W) inputs; padding is -inf."""

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode)


class AvgPool2d(_Pool2d):
    """The mean of each window of (N, C, H, W) or (C, H, W) inputs; padding is zeros, counted
    in the mean unless ``count_include_pad=False``."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = boolean("AvgPool2d", "count_include_pad", count_include_pad)

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def extra_repr(self):
        return super().extra_repr() + ("" if self.count_include_pad
                                       else ", count_include_pad=False")
