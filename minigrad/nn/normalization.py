"""Normalization layers: BatchNorm1d, BatchNorm2d, LayerNorm, GroupNorm.

All four standardize (subtract a mean, divide by sqrt(variance + eps)) and then scale and shift
with learned ``weight`` (initially 1) and ``bias`` (initially 0). They differ in which values
share a mean: a channel across the batch (BatchNorm), a sample's features (LayerNorm), or a
sample's group of channels (GroupNorm). Only BatchNorm needs running statistics for eval.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..core.checks import bad_argument, boolean, positive_int, positive_real, probability
from ..core.errors import ShapeError
from ..core.tensor import Tensor
from ..functional.normalization import normalized_shape_of
from . import init
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm"]


def _affine_parameters(module: Module, shape: tuple, affine: bool, dtype) -> None:
    """weight = 1 and bias = 0 of ``shape``, or both None when not ``affine``."""
    owner = type(module).__name__
    for name, value in (("weight", 1.0), ("bias", 0.0)):
        module.register_parameter(name, Parameter(init.full(shape, value, dtype, owner))
                                  if affine else None)


class _BatchNorm(Module):
    """The BatchNorm layers; subclasses say which input ranks they accept."""

    ranks: tuple = ()
    layout: str = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, fused: bool = False,
                 *, dtype=None):
        super().__init__()
        name = type(self).__name__
        self.num_features = positive_int(name, "num_features", num_features)
        self.eps = positive_real(name, "eps", eps)
        # None: the cumulative average of all batches so far
        self.momentum = None if momentum is None else probability(name, "momentum", momentum)
        self.affine = boolean(name, "affine", affine)
        self.track_running_stats = boolean(name, "track_running_stats", track_running_stats)
        self.fused = boolean(name, "fused", fused)
        _affine_parameters(self, (num_features,), affine, dtype)
        if track_running_stats:
            shape = (num_features,)
            self.register_buffer("running_mean", Tensor(init.full(shape, 0.0, dtype, name)))
            self.register_buffer("running_var", Tensor(init.full(shape, 1.0, dtype, name)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            for buffer in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(buffer, None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def forward(self, x):
        x = F.as_tensor(x, type(self).__name__)
        if x.ndim not in self.ranks or x.shape[1] != self.num_features:
            # PyTorch's classes: ValueError for the number of dims, RuntimeError for C
            bad_argument(f"{type(self).__name__}({self.num_features})", "the input",
                         f"of shape {self.layout} with C={self.num_features}", x,
                         ValueError if x.ndim not in self.ranks else ShapeError)
        update = self.training and self.track_running_stats
        momentum = self.momentum
        if momentum is None:  # the cumulative average: this batch weighs 1 / (batches so far)
            momentum = 1.0 / (int(self.num_batches_tracked.data) + 1) if update else 0.0
        out = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                           training=self.training or not self.track_running_stats,
                           momentum=momentum, eps=self.eps, fused=self.fused)
        if update:  # only after F.batch_norm succeeded: a failed call changes nothing
            self.num_batches_tracked.data[()] += 1  # (``[()]``: a 0-d array's fast path)
        return out

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}"
                + (", fused=True" if self.fused else ""))


class BatchNorm1d(_BatchNorm):
    """BatchNorm over (N, C) or (N, C, L) inputs: per channel C, statistics over N (and L).

    ``fused=False`` (default) builds the composed graph of mean, var, sqrt and broadcasting ops;
    ``fused=True`` uses one op with the closed-form backward. See ``F.batch_norm``."""

    ranks = (2, 3)
    layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """BatchNorm over (N, C, H, W) inputs: per channel C, statistics over N, H and W."""

    ranks = (4,)
    layout = "(N, C, H, W)"


class LayerNorm(Module):
    """Normalize each sample over its last dims (``normalized_shape``), with an elementwise
    ``weight`` and ``bias`` of that shape when ``elementwise_affine``."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 *, dtype=None):
        super().__init__()
        self.normalized_shape = normalized_shape_of("LayerNorm", normalized_shape)
        self.eps = positive_real("LayerNorm", "eps", eps)
        self.elementwise_affine = boolean("LayerNorm", "elementwise_affine", elementwise_affine)
        _affine_parameters(self, self.normalized_shape, elementwise_affine, dtype)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(Module):
    """Normalize each sample's ``num_groups`` groups of channels (of an (N, C, ...) input) over
    the group's channels and positions; per-channel ``weight`` and ``bias`` when ``affine``."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, *, dtype=None):
        super().__init__()
        self.num_groups = positive_int("GroupNorm", "num_groups", num_groups)
        self.num_channels = positive_int("GroupNorm", "num_channels", num_channels)
        if num_channels % num_groups:
            bad_argument("GroupNorm", "num_channels", f"divisible by num_groups={num_groups}",
                         num_channels)
        self.eps = positive_real("GroupNorm", "eps", eps)
        self.affine = boolean("GroupNorm", "affine", affine)
        _affine_parameters(self, (num_channels,), affine, dtype)

    def forward(self, x):
        x = F.as_tensor(x, type(self).__name__)
        if x.ndim < 2 or x.shape[1] != self.num_channels:  # (PyTorch: RuntimeError)
            bad_argument(f"GroupNorm({self.num_groups}, {self.num_channels})", "the input",
                         f"of shape (N, {self.num_channels}, ...)", x, ShapeError)
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
