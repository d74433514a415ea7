"""Find every normalization sub-graph in an autograd graph and the three routes by which the
gradient reaches its input.

BatchNorm, LayerNorm and GroupNorm all standardize the same way, ``x_hat = (x - mean) * 1 /
sqrt(var + eps)``, only over different axes (GroupNorm on a reshaped ``x``). In the composed
graph the normalized tensor ``x`` therefore feeds exactly three ops: ``Mean``, ``Var`` (same
axes, biased) and the ``Sub`` that takes the mean away. The gradient flowing back along those
three edges is dL/dx split into its parts: through the mean, through the variance, and direct
(the statistics held fixed). This module finds those triples; ``draw_graph(routes=True)``
colours them and ``minigrad graph batchnorm/layernorm`` prints the parts.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..autograd import graph_nodes
from ..core import ops
from ..core.tensor import Tensor

__all__ = ["NormSite", "find_norm_sites", "norm_routes", "ROUTE_NAMES"]

# The three routes' names, in the order they are coloured (the legend's words).
ROUTE_NAMES = {"direct": "direct (mean and var held fixed)",
               "through_mean": "through the mean",
               "through_variance": "through the variance"}


@dataclass
class NormSite:
    """One standardization ``(x - mean(x)) / sqrt(var(x) + eps)`` found in a graph: ``x`` and
    the three op nodes it feeds, the axes of its statistics, and the innermost module whose
    forward made it (None for a hand-written one)."""
    x: Tensor
    mean: object  # the Mean node
    var: object  # the Var node
    sub: object  # the Sub node: x - mean, the direct route's first op
    axis: tuple
    module: object = None

    @property
    def starts(self) -> dict:
        """``{path: op node}``: the op each route enters first, leaving ``x``."""
        return {"direct": self.sub, "through_mean": self.mean, "through_variance": self.var}

    @property
    def title(self) -> str:
        name = type(self.module).__name__ if self.module is not None else "normalization"
        return f"{name} over axis {self.axis}"


def _key(tensor):
    """The node that made a tensor, or the tensor itself for a leaf (as trace.tensor_key)."""
    return tensor.grad_fn if tensor.grad_fn is not None else tensor


def _comes_from(tensor, node) -> bool:
    """Whether ``tensor`` is ``node``'s output, possibly broadcast or reshaped on the way
    (binary ops broadcast the (1, C) mean to x's shape with a BroadcastTo node)."""
    current = tensor.grad_fn if isinstance(tensor, Tensor) else None
    while current is not None and current is not node:
        if current.category != "broadcast" and not isinstance(current, ops.Reshape):
            return False
        parents = [t for t in current.inputs if isinstance(t, Tensor)]
        current = parents[0].grad_fn if len(parents) == 1 else None
    return current is node


def find_norm_sites(root, nodes=None) -> list:
    """Every standardization in ``root``'s graph (or among ``nodes``), in forward order: a
    tensor feeding a biased ``Var``, a ``Mean`` over the same axes, and a ``Sub`` of that mean
    from it. A fused BatchNorm is one opaque node and has no routes to find."""
    nodes = graph_nodes((root,)) if nodes is None else nodes
    means, subs = {}, {}
    for node in nodes:
        inputs = [t for t in node.inputs if isinstance(t, Tensor)]
        if isinstance(node, ops.Mean) and inputs:
            means.setdefault(_key(inputs[0]), []).append(node)
        elif isinstance(node, ops.Sub) and len(node.inputs) == 2 and \
                isinstance(node.inputs[0], Tensor):
            subs.setdefault(_key(node.inputs[0]), []).append(node)
    sites = []
    for node in nodes:
        if not isinstance(node, ops.Var) or node.attrs.get("ddof", 0) != 0:
            continue
        x = next(t for t in node.inputs if isinstance(t, Tensor))
        axis = node.attrs.get("axis")
        for mean in means.get(_key(x), ()):
            if mean.attrs.get("axis") != axis:
                continue
            sub = next((s for s in subs.get(_key(x), ()) if _comes_from(s.inputs[1], mean)),
                       None)
            if sub is not None:
                module = next((m for m in reversed(node.scope) if "Norm" in type(m).__name__),
                              node.scope[-1] if node.scope else None)
                sites.append(NormSite(x, mean, node, sub, tuple(axis) if axis is not None
                                      else None, module))
                break
    return sites


def norm_routes(root, nodes=None) -> list:
    """For ``draw_graph``: one ``{route name: (x, op node)}`` group per norm sub-graph. The
    names are shared, so every norm's direct route has the same colour (and so on)."""
    return [{ROUTE_NAMES[path]: (site.x, node) for path, node in site.starts.items()}
            for site in find_norm_sites(root, nodes)]
