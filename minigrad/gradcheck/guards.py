"""Situations where finite differences do not measure the derivative: float32 arithmetic, and
inputs sitting on a kink of a piecewise op.

``KINKS`` maps an op class to a function giving, for the values a node saw, each element's
distance from the op's kink. Register a custom op with a kink the same way::

    minigrad.gradcheck.KINKS[MyClip] = lambda x, **attrs: np.minimum(abs(x - 1), abs(x + 1))
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..tensor import Tensor

__all__ = ["KINKS", "precision_warnings", "kink_warnings"]

# How close to a kink counts as on it, in units of the finite-difference step eps. The step
# reaches a node's input scaled by how strongly that input depends on the perturbed one, which
# is about 1 for the unit-scale data a check usually runs on; 10 leaves room for larger gains.
KINK_RADIUS = 10.0


def _distance_to_zero(x, **attrs):
    return np.abs(x)


def _gap_to_runner_up(x, *, axis, keepdims):
    """For each group a Max reduces: the largest value minus the second largest (0 at a tie)."""
    axes = tuple(range(x.ndim)) if axis is None else axis
    moved = np.moveaxis(x, axes, tuple(range(-len(axes), 0)))
    groups = moved.reshape(moved.shape[:moved.ndim - len(axes)] + (-1,))
    if groups.shape[-1] < 2:
        return np.full(groups.shape[:-1], np.inf)
    top_two = -np.partition(-groups, 1, axis=-1)[..., :2]
    return top_two[..., 0] - top_two[..., 1]


KINKS = {ops.Relu: _distance_to_zero, ops.Abs: _distance_to_zero, ops.Max: _gap_to_runner_up}

# What the distances are measured over, and to what: for the warning's wording.
_KINK_NAMES = {ops.Relu: ("inputs", "relu's kink at 0"), ops.Abs: ("inputs", "abs's kink at 0"),
               ops.Max: ("maxima", "a tie with the runner-up")}


def precision_warnings(nodes, outputs) -> list[str]:
    """A warning for each op that computed in reduced precision although the inputs are float64
    (a float32 parameter or constant, or an explicit cast, pulls the computation down)."""
    low = [node for node in nodes if _is_low_precision(node._output)]
    low_outputs = [k for k, out in enumerate(outputs) if _is_low_precision(out.data)]
    if not low and not low_outputs:
        return []
    where = ", ".join(sorted({f"{n.name} ({n._output.dtype})" for n in low})) or \
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
        distance_of = KINKS.get(type(node))
        if distance_of is None:
            continue
        distance = distance_of(_first_array(node), **node.attrs)
        near = distance <= KINK_RADIUS * eps
        if near.any():
            first = tuple(int(i) for i in np.argwhere(near)[0])
            noun, kink = _KINK_NAMES.get(type(node), ("values", "its kink"))
            found.append(f"{node.name}: {int(near.sum())} of {near.size} {noun} sit within "
                         f"{KINK_RADIUS * eps:g} of {kink} (first at index {first}); finite "
                         f"differences straddle the kink there and do not measure the derivative. "
                         f"Move the inputs away from it.")
    return found


def _first_array(node):
    return next(t.data for t in node.inputs if isinstance(t, Tensor))
