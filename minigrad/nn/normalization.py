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
from ..core.errors import ArgumentTypeError, ShapeError
from ..core.tensor import Tensor
from ..functional.normalization import normalized_shape_of
from . import init
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm"]


def _check_device(owner: str, device) -> None:
    """``device=`` is there for PyTorch's signatures: minigrad computes with NumPy on the CPU,
    so only None, ``'cpu'`` or a ``torch.device('cpu')`` make sense."""
    if device is None:
        return
    kind = device if isinstance(device, str) else getattr(device, "type", None)
    if not isinstance(kind, str):
        bad_argument(owner, "device", "None or 'cpu'", device, ArgumentTypeError)
    if kind != "cpu":  # (PyTorch: RuntimeError for a device it cannot use)
        bad_argument(owner, "device", "None or 'cpu' (minigrad computes on the CPU, with "
                     "NumPy)", device, RuntimeError)


def _affine_parameters(module: Module, shape: tuple, affine: bool, bias: bool, dtype) -> None:
    """weight = 1 and bias = 0 of ``shape`` when ``affine`` (the bias only with ``bias``);
    None for the ones left out."""
    owner = type(module).__name__
    for name, value, wanted in (("weight", 1.0, affine), ("bias", 0.0, affine and bias)):
        module.register_parameter(name, Parameter(init.full(shape, value, dtype, owner))
                                  if wanted else None)


def _no_bias(module: Module) -> str:
    """``, bias=False`` in a repr when the layer has a weight but was built without a bias."""
    return ", bias=False" if module.weight is not None and module.bias is None else ""


class _BatchNorm(Module):
    """The BatchNorm layers; subclasses say which input ranks they accept."""

    ranks: tuple = ()
    layout: str = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None,
                 dtype=None, *, bias: bool = True, fused: bool = False):
        super().__init__()
        name = type(self).__name__
        _check_device(name, device)
        self.num_features = positive_int(name, "num_features", num_features)
        self.eps = positive_real(name, "eps", eps)
        # None: the cumulative average of all batches so far
        self.momentum = None if momentum is None else probability(name, "momentum", momentum)
        self.affine = boolean(name, "affine", affine)
        self.track_running_stats = boolean(name, "track_running_stats", track_running_stats)
        self.fused = boolean(name, "fused", fused)
        _affine_parameters(self, (num_features,), affine, boolean(name, "bias", bias), dtype)
        if track_running_stats:
            shape = (num_features,)
            self.register_buffer("running_mean", Tensor(init.full(shape, 0.0, dtype, name)))
            self.register_buffer("running_var", Tensor(init.full(shape, 1.0, dtype, name)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            for buffer in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(buffer, None)

    def reset_running_stats(self) -> None:
        """running_mean 0, running_var 1, num_batches_tracked 0 -- while tracking (PyTorch's
        rule), and each only if the layer has it."""
        if self.track_running_stats:
            for buffer, value in (("running_mean", 0), ("running_var", 1),
                                  ("num_batches_tracked", 0)):
                if getattr(self, buffer) is not None:
                    getattr(self, buffer).data[...] = value

    def forward(self, x):
        x = F.as_tensor(x, type(self).__name__)
        if x.ndim not in self.ranks or x.shape[1] != self.num_features:
            # PyTorch's classes: ValueError for the number of dims, RuntimeError for C
            bad_argument(f"{type(self).__name__}({self.num_features})", "the input",
                         f"of shape {self.layout} with C={self.num_features}", x,
                         ValueError if x.ndim not in self.ranks else ShapeError)
        # PyTorch's rules, which read the attribute and the buffers at every call, so that
        # track_running_stats switched off after construction is honoured. Training: batch
        # statistics, folded into the buffers only while tracking. Eval: the buffers if there
        # are any (whatever track_running_stats now says), else the batch's statistics.
        tracking = self.training and self.track_running_stats
        counting = tracking and self.num_batches_tracked is not None
        momentum = 0.0 if self.momentum is None else self.momentum
        if counting and self.momentum is None:  # the cumulative average: 1 / (batches so far)
            momentum = 1.0 / (int(self.num_batches_tracked.data) + 1)
        buffers = (self.running_mean, self.running_var) if not self.training or tracking \
            else (None, None)
        batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        out = F.batch_norm(x, *buffers, self.weight, self.bias, training=batch_stats,
                           momentum=momentum, eps=self.eps, fused=self.fused)
        if counting:  # only after F.batch_norm succeeded: a failed call changes nothing
            self.num_batches_tracked.data[()] += 1  # (``[()]``: a 0-d array's fast path)
        return out

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}"
                + _no_bias(self) + (", fused=True" if self.fused else ""))


class BatchNorm1d(_BatchNorm):
    """BatchNorm over (N, C) or (N, C, L) inputs: per channel C, statistics over N (and L).

    The arguments are PyTorch's, in its order: ``num_features, eps, momentum, affine,
    track_running_stats, device, dtype, *, bias`` (``bias=False``: a weight but no bias;
    ``device``: None or 'cpu'). Like PyTorch it reads ``track_running_stats`` and the buffers
    at every call: switched off after construction, training uses batch statistics and leaves
    the buffers alone, eval still uses the buffers. An empty batch gives an empty output.

    ``fused=False`` (default) builds the composed graph of mean, var, sqrt and broadcasting ops;
    ``fused=True`` uses one op with the closed-form backward. See ``F.batch_norm``."""

    ranks = (2, 3)
    layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """BatchNorm over (N, C, H, W) inputs: per channel C, statistics over N, H and W. The
    arguments and rules are BatchNorm1d's."""

    ranks = (4,)
    layout = "(N, C, H, W)"


class LayerNorm(Module):
    """Normalize each sample over its last dims (``normalized_shape``), with an elementwise
    ``weight`` and ``bias`` of that shape when ``elementwise_affine`` (no bias with
    ``bias=False``). PyTorch's arguments: ``normalized_shape, eps, elementwise_affine, bias,
    device, dtype`` (``device``: None or 'cpu')."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        _check_device("LayerNorm", device)
        self.normalized_shape = normalized_shape_of("LayerNorm", normalized_shape)
        self.eps = positive_real("LayerNorm", "eps", eps)
        self.elementwise_affine = boolean("LayerNorm", "elementwise_affine", elementwise_affine)
        _affine_parameters(self, self.normalized_shape, elementwise_affine,
                           boolean("LayerNorm", "bias", bias), dtype)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}" + _no_bias(self))


class GroupNorm(Module):
    """Normalize each sample's ``num_groups`` groups of channels (of an (N, C, ...) input) over
    the group's channels and positions; per-channel ``weight`` and ``bias`` when ``affine``
    (no bias with ``bias=False``). PyTorch's arguments: ``num_groups, num_channels, eps,
    affine, device, dtype, *, bias`` (``device``: None or 'cpu')."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        _check_device("GroupNorm", device)
        self.num_groups = positive_int("GroupNorm", "num_groups", num_groups)
        self.num_channels = positive_int("GroupNorm", "num_channels", num_channels)
        if num_channels % num_groups:
            bad_argument("GroupNorm", "num_channels", f"divisible by num_groups={num_groups}",
                         num_channels)
        self.eps = positive_real("GroupNorm", "eps", eps)
        self.affine = boolean("GroupNorm", "affine", affine)
        _affine_parameters(self, (num_channels,), affine, boolean("GroupNorm", "bias", bias),
                           dtype)

    def forward(self, x):
        x = F.as_tensor(x, type(self).__name__)
        if x.ndim < 2 or x.shape[1] != self.num_channels:  # (PyTorch: RuntimeError)
            bad_argument(f"GroupNorm({self.num_groups}, {self.num_channels})", "the input",
                         f"of shape (N, {self.num_channels}, ...)", x, ShapeError)
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
                + _no_bias(self))
