"""Situations where finite differences do not measure the derivative: float32 arithmetic, and
inputs sitting on a kink of a piecewise op.

An op with a kink declares it on its class (``kink`` and ``distance_to_kink``, see
``mg.Function``); a custom op does the same::

    class MyClip(mg.Function):
        kink = ("inputs", "the clip points at -1 and 1")
        @staticmethod
        def distance_to_kink(x, **attrs):
            return np.minimum(abs(x - 1), abs(x + 1))
"""
from __future__ import annotations

import numpy as np

from ..core.tensor import Tensor

__all__ = ["precision_warnings", "kink_warnings"]

# How close to a kink counts as on it, in units of the finite-difference step eps. The step
# reaches a node's input scaled by how strongly that input depends on the perturbed one, which
# is about 1 for the unit-scale data a check usually runs on; 10 leaves room for larger gains.
KINK_RADIUS = 10.0


def precision_warnings(nodes, outputs) -> list[str]:
    """A warning for each op that computed in reduced precision although the inputs are float64
    (a float32 parameter or constant, or an explicit cast, pulls the computation down)."""
    low = [node for node in nodes if _is_low_precision(node.output)]
    low_outputs = [k for k, out in enumerate(outputs) if _is_low_precision(out.data)]
    if not low and not low_outputs:
        return []
    where = ", ".join(sorted({f"{n.name} ({n.output.dtype})" for n in low})) or \
        f"output(s) {low_outputs}"
    return [f"part of the computation runs in reduced precision ({where}), although the checked "
            f"inputs are float64: float32 carries ~7 significant digits, so a central difference "
            f"with eps=1e-6 keeps only ~1 of them and its error (~1e-7 / 1e-6 = 10%) swamps the "
            f"tolerance. Convert the float32 parameters or constants to float64 for the check "
            f"(gradcheck_module does that for a module)."]


def _is_low_precision(array) -> bool:
    return isinstance(array, np.ndarray) and array.dtype.kind == "f" and array.dtype.itemsize < 8


def kink_warnings(nodes, eps: float) -> list[str]:
    """A warning for each node with an input within ``KINK_RADIUS * eps`` of the op's kink, where
    the two sides of a central difference see different slopes."""
    found = []
    for node in nodes:
        if node.kink is None:
            continue
        distance = node.distance_to_kink(_first_array(node), **node.attrs)
        near = distance <= KINK_RADIUS * eps
        if near.any():
            first = tuple(int(i) for i in np.argwhere(near)[0])
            noun, kink = node.kink
            found.append(f"{node.name}: {int(near.sum())} of {near.size} {noun} sit within "
                         f"{KINK_RADIUS * eps:g} of {kink} (first at index {first}); finite "
                         f"differences straddle the kink there and do not measure the derivative. "
                         f"Move the inputs away from it.")
    return found


def _first_array(node):
    return next(t.data for t in node.inputs if isinstance(t, Tensor))
