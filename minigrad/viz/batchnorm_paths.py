"""BatchNorm's three gradient paths: how the loss reaches the layer's input ``x``.

Per channel, with ``m`` values in the batch, ``mu`` and ``var`` their mean and biased variance,
``s = sqrt(var + eps)``, ``x_hat = (x - mu) / s``, ``y = weight * x_hat + bias`` and
``g = dL/dx_hat = weight * dL/dy``, the loss reaches ``x`` three ways::

    dL/dx =  g / s                          directly, through x_hat (mu and var held fixed)
           - mean(g) / s                    through the batch mean mu
           - x_hat * mean(g * x_hat) / s    through the batch variance var

(means over the batch; for LayerNorm and GroupNorm the same formulas hold with the means over
their axes, ``axis=``, and ``g = weight * dL/dy`` elementwise). In the composed graph these are exactly the gradients flowing back
along the three edges that leave ``x``: into the subtraction, into ``Mean`` and into ``Var``.

Two invariants follow, per channel: ``sum(dL/dx) = 0`` exactly (y does not change when the
whole batch shifts), and ``sum(dL/dx * x_hat) = eps / (var + eps) * sum(g * x_hat) / s`` --
zero only when eps is 0 (y would then not change when the batch is scaled either).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import ops
from ..core.checks import bad_argument, integer, non_negative_real
from ..core.errors import ArgumentTypeError, AxisError, ShapeError
from .trace import outgoing_gradients, require_tensor

__all__ = ["BatchNormPaths", "batchnorm_paths", "batchnorm_invariants", "autograd_paths",
           "site_paths"]

PATHS = ("direct", "through_mean", "through_variance")
PATH_TITLES = {"direct": "directly through x-hat", "through_mean": "through the batch mean",
               "through_variance": "through the batch variance"}


@dataclass
class BatchNormPaths:
    """dL/dx split by path; each part has x's shape."""
    direct: np.ndarray
    through_mean: np.ndarray
    through_variance: np.ndarray

    @property
    def total(self) -> np.ndarray:
        return self.direct + self.through_mean + self.through_variance


@dataclass
class _Statistics:
    x_hat: np.ndarray
    inv_std: np.ndarray  # 1 / sqrt(var + eps), keepdims
    var: np.ndarray
    g: np.ndarray  # dL/dx_hat
    axis: tuple


def _numbers(owner: str, name: str, value) -> np.ndarray:
    """``value`` as a floating array (integers become float64), or a TypeError naming it
    (strings, objects, None)."""
    array = np.asarray(getattr(value, "data", value))
    if array.dtype.kind not in "biuf":
        bad_argument(owner, name, "an array of numbers", value, ArgumentTypeError)
    return array if array.dtype.kind == "f" else array.astype(np.float64)


def _statistics(x, grad_y, weight, eps, axis, owner="batchnorm_paths") -> _Statistics:
    x = _numbers(owner, "x", x)
    grad_y = _numbers(owner, "grad_y", grad_y)
    eps = non_negative_real(owner, "eps", eps)
    if grad_y.shape != x.shape:
        raise ShapeError(f"{owner}: grad_y has shape {grad_y.shape}, x has shape "
                         f"{x.shape}; expected the same shape")
    if x.ndim < 2 and axis is None:
        raise ShapeError(f"{owner}: x of shape {x.shape} has no channel axis 1; "
                         f"expected (N, C, ...) or pass axis=")
    if axis is None:
        axis = tuple(a for a in range(x.ndim) if a != 1)
    else:
        axis = tuple(integer(owner, "axis", a) for a in
                     (axis if isinstance(axis, (tuple, list)) else (axis,)))
        for a in axis:
            if not -x.ndim <= a < x.ndim:
                raise AxisError(f"{owner}: axis {a} is out of range for x of shape {x.shape} "
                                f"({x.ndim} dims)")
        axis = tuple(a % x.ndim for a in axis)
    mean = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mean) * inv_std
    g = grad_y
    if weight is not None:  # per channel: shaped like the statistics, 1 along the reduced axes
        weight = _numbers(owner, "weight", weight)
        if weight.size != var.size:
            raise ShapeError(f"{owner}: weight has shape {weight.shape}, expected one value per "
                             f"channel ({var.size}) for x of shape {x.shape}")
        g = grad_y * weight.reshape(var.shape)
    return _Statistics(x_hat, inv_std, var, g, axis)


def batchnorm_paths(x, grad_y, weight=None, eps: float = 1e-5, axis=None) -> BatchNormPaths:
    """The closed form of the three parts of dL/dx for BatchNorm in training mode.

    ``x`` and ``grad_y`` (= dL/dy) are arrays of the same shape; ``weight`` is the per-channel
    scale (None: 1); statistics are over ``axis`` (default: every axis but the channel axis 1,
    as BatchNorm1d/2d do)."""
    st = _statistics(x, grad_y, weight, eps, axis)
    mean_g = st.g.mean(axis=st.axis, keepdims=True)
    mean_g_xhat = (st.g * st.x_hat).mean(axis=st.axis, keepdims=True)
    return BatchNormPaths(
        direct=st.g * st.inv_std,
        through_mean=np.broadcast_to(-mean_g * st.inv_std, st.g.shape).copy(),
        through_variance=-st.x_hat * mean_g_xhat * st.inv_std)


def batchnorm_invariants(dx, x, grad_y, weight=None, eps: float = 1e-5, axis=None) -> dict:
    """Per channel: ``sum`` of dx over the batch (exactly 0 in exact arithmetic),
    ``dot_x_hat`` = sum of dx * x_hat, and ``expected_dot_x_hat`` = its exact value,
    eps / (var + eps) * sum(g * x_hat) / s. Each is a 1-D array over the channels."""
    st = _statistics(x, grad_y, weight, eps, axis, owner="batchnorm_invariants")
    dx = _numbers("batchnorm_invariants", "dx", dx)
    if dx.shape != st.g.shape:
        raise ShapeError(f"batchnorm_invariants: dx has shape {dx.shape}, x has shape "
                         f"{st.g.shape}; expected the same shape")

    def per_channel(values):
        return values.sum(axis=st.axis).ravel()

    return {"sum": per_channel(dx),
            "dot_x_hat": per_channel(dx * st.x_hat),
            "expected_dot_x_hat": (eps / (st.var + eps) * st.inv_std).ravel()
            * per_channel(st.g * st.x_hat)}


def autograd_paths(root, x, grad_output=None) -> tuple:
    """The three parts of d root / d x as autograd computes them in a composed BatchNorm graph:
    the gradients flowing back along the edges from ``x`` into ``Mean`` (through the mean),
    into ``Var`` (through the variance) and into the op that subtracts the mean (direct).

    Returns ``(BatchNormPaths, {path: op node})``; the nodes can be passed to ``draw_graph``'s
    ``routes``. Raises ValueError if ``x`` does not feed exactly those three ops."""
    require_tensor("autograd_paths", "root", root)
    require_tensor("autograd_paths", "x", x)
    found: dict = {}
    for node, grad in outgoing_gradients(root, x, grad_output):
        path = ("through_mean" if isinstance(node, ops.Mean) else
                "through_variance" if isinstance(node, ops.Var) else "direct")
        found.setdefault(path, []).append((node, grad))
    if sorted(found) != sorted(PATHS) or any(len(v) != 1 for v in found.values()):
        seen = ", ".join(node.name for parts in found.values() for node, _ in parts)
        raise ValueError(f"autograd_paths: expected x to feed one Mean, one Var and one other "
                         f"op (the subtraction of the mean), as in a composed BatchNorm; it "
                         f"feeds: {seen or 'nothing'}")
    parts = {path: found[path][0][1] for path in PATHS}
    return BatchNormPaths(**parts), {path: found[path][0][0] for path in PATHS}


def site_paths(root, site, grad_output=None) -> BatchNormPaths:
    """The three parts of d root / d x for one norm sub-graph found by
    ``routes.find_norm_sites`` (BatchNorm of any dimensionality, LayerNorm, GroupNorm): the
    gradients autograd sends back along x's edges into the site's Sub, Mean and Var."""
    require_tensor("site_paths", "root", root)
    parts = {}
    for node, grad in outgoing_gradients(root, site.x, grad_output):
        for path, start in site.starts.items():
            if node is start:
                parts[path] = grad
    missing = [path for path in PATHS if path not in parts]
    if missing:
        raise ValueError(f"site_paths: no gradient reaches x along {', '.join(missing)}")
    return BatchNormPaths(**parts)
