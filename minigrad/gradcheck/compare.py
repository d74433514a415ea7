"""Analytic against numeric gradient: pass/fail, the worst elements, and a guess at the mistake.

Both modes see the numeric gradient ``n`` through a *probe*, ``probe(w) = <n, w>``: exact dot
products in full mode (``n`` is known), two forward passes in fast mode. The diagnosis (constant
factor, sign flip, transposition) and the bisection that finds a wrong element in fast mode are
written once, against the probe.
"""
from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np

from .report import Comparison, Element, relative_error

__all__ = ["compare_elementwise", "compare_directional"]


def within(analytic, numeric, atol: float, rtol: float):
    """PyTorch's rule: |a - n| <= atol + rtol |n|."""
    return np.abs(analytic - numeric) <= atol + rtol * np.abs(numeric)


def compare_elementwise(analytic, numeric, *, output, input, atol, rtol, rng) -> Comparison:
    """Full mode: every element of ``analytic`` against ``numeric``."""
    bad = ~within(analytic, numeric, atol, rtol)
    # A NaN (fn not finite within eps of the input, or a backward that divides by zero) is as
    # wrong as an element can be: it must head the list, not sort last.
    rel = relative_error(analytic, numeric, floor=atol)
    # Order by how far past its tolerance each element is, so the worst offender comes first.
    with np.errstate(invalid="ignore", divide="ignore"):
        excess = np.abs(analytic - numeric) / (atol + rtol * np.abs(numeric))
    excess = np.nan_to_num(excess, nan=np.inf)
    failing = int(bad.sum())
    worst = [_element(analytic, numeric, np.unravel_index(i, analytic.shape))
             for i in np.argsort(-excess, axis=None)[:failing][:8]]
    comparison = Comparison(output, input, analytic.shape, ok=failing == 0,
                            max_rel_error=float(rel.max(initial=0.0)), worst=worst,
                            failing=failing)
    if not comparison.ok:
        comparison.diagnosis = not_finite(analytic, numeric) or diagnose(
            analytic, lambda w: float(np.vdot(numeric, w)), atol=atol, rtol=rtol, rng=rng,
            bad=bad)
    return comparison


def compare_directional(analytic, probe, direction, numeric, *, output, input, atol, rtol,
                        rng) -> Comparison:
    """Fast mode: <analytic, u> against the numeric directional derivative along unit ``u``.

    With a unit direction, ``allclose`` of the two numbers flags a gradient whose root-mean-square
    error is above about ``atol``. On failure, bisection finds one wrong element."""
    value = float(np.vdot(analytic, direction))
    comparison = Comparison(output, input, analytic.shape,
                            ok=bool(within(value, numeric, atol, rtol)),
                            max_rel_error=float(relative_error(value, numeric, floor=atol)),
                            directional=(value, float(numeric)))
    if not comparison.ok:
        comparison.diagnosis = not_finite(analytic, numeric)
        if comparison.diagnosis is None:  # bisection and the guesses need finite numbers
            comparison.worst = [bisect(analytic, probe, direction)]
            comparison.diagnosis = diagnose(analytic, probe, atol=atol, rtol=rtol, rng=rng)
    return comparison


def not_finite(analytic, numeric) -> str | None:
    """Say so when either gradient holds NaN or inf: no comparison means anything there."""
    for name, values, why in (
            ("numeric", numeric, "fn is not finite within eps of the inputs (the edge of its "
                                 "domain, e.g. sqrt or log near 0): move the inputs away from "
                                 "it"),
            ("analytic", analytic, "the backward divides by zero or overflows at these inputs")):
        values = np.asarray(values, dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            where = f" at index {tuple(int(i) for i in np.argwhere(bad)[0])}" if values.ndim \
                else ""
            return f"the {name} gradient is not finite{where}: {why}"
    return None


def _element(analytic, numeric, index) -> Element:
    return Element(tuple(int(i) for i in index), float(analytic[index]), float(numeric[index]))


def bisect(analytic, probe, direction) -> Element:
    """Narrow a directional mismatch down to one element.

    The mismatch along ``direction`` is linear in it: the mismatch along a set of elements is the
    sum of the mismatches along its two halves. Following the half with the larger mismatch keeps
    a non-zero one down to a single element, in about 2 log2(size) probes."""
    flat_direction = direction.reshape(-1)
    flat_analytic = analytic.reshape(-1)
    lo, hi = 0, flat_direction.size
    while hi - lo > 1:
        mid = (lo + hi) // 2
        halves = []
        for start, stop in ((lo, mid), (mid, hi)):
            part = np.zeros_like(flat_direction)
            part[start:stop] = flat_direction[start:stop]
            mismatch = np.vdot(flat_analytic, part) - probe(part.reshape(direction.shape))
            halves.append(abs(float(mismatch)))
        lo, hi = (lo, mid) if halves[0] >= halves[1] else (mid, hi)
    unit = np.zeros(direction.size)
    unit[lo] = 1.0
    index = np.unravel_index(lo, direction.shape)
    return Element(tuple(int(i) for i in index), float(flat_analytic[lo]),
                   float(probe(unit.reshape(direction.shape))))


def diagnose(analytic, probe, *, atol, rtol, rng, bad=None) -> str | None:
    """Name a common mistake the wrong gradient matches, or None.

    Each hypothesis says what the numeric gradient would be, given the analytic one; it is
    accepted when it predicts ``probe`` along random directions within the check's tolerance.
    """
    if not analytic.any():
        return ("the analytic gradient is all zeros: no gradient reaches this input (a backward "
                "returned None or used values saved as plain arrays, or fn leaves the graph "
                "through .data/.detach()/NumPy)")
    directions = [rng.standard_normal(analytic.shape) for _ in range(2)]
    directions = [d / np.linalg.norm(d) for d in directions]
    numeric = [probe(d) for d in directions]
    if all(within(0.0, n, atol, 0.0) for n in numeric):
        return ("the numeric gradient is zero: fn does not change with this input, yet the "
                "analytic gradient is not zero")

    def predicts(predicted) -> bool:
        return all(within(float(np.vdot(predicted, d)), n, atol, rtol)
                   for d, n in zip(directions, numeric))

    if numeric[0] != 0:
        factor = float(np.vdot(analytic, directions[0])) / numeric[0]
        if not within(factor, 1.0, 0.0, rtol) and predicts(analytic / factor):
            if within(factor, -1.0, 0.0, rtol):
                return "the sign is flipped (analytic = -numeric)"
            return (f"off by a constant factor: analytic = {_fraction(factor)} x numeric "
                    f"everywhere")
    for axes in _shape_preserving_permutations(analytic.shape):
        if predicts(analytic.transpose(np.argsort(axes))):
            return f"transposed: analytic = numeric.transpose{axes}"
    if bad is not None:
        return _confined(bad)
    return None


def _fraction(value: float) -> str:
    """1/4 rather than 0.25: constant-factor bugs are usually a missing or extra 1/n or n."""
    fraction = Fraction(value).limit_denominator(64)
    if 1 < fraction.denominator and abs(fraction.numerator) <= 64 \
            and abs(float(fraction) - value) <= 1e-6 * abs(value):
        return f"{fraction.numerator}/{fraction.denominator}"
    return f"{value:.6g}"


def _shape_preserving_permutations(shape):
    """Axis permutations other than the identity that leave ``shape`` unchanged (ndim <= 4)."""
    if len(shape) > 4:
        return []
    identity = tuple(range(len(shape)))
    return [p for p in itertools.permutations(identity)
            if p != identity and tuple(shape[a] for a in p) == tuple(shape)]


def _confined(bad) -> str | None:
    """'all wrong elements lie in [:, 2]' when they share one index along some axis."""
    positions = np.nonzero(bad)
    if len(positions[0]) < 2:  # one wrong element: its own index says it all
        return None
    for axis, along in enumerate(positions):
        if bad.shape[axis] > 1 and len(set(along.tolist())) == 1:
            where = [":"] * bad.ndim
            where[axis] = str(int(along[0]))
            return (f"every wrong element lies in [{', '.join(where)}] (index {int(along[0])} of "
                    f"axis {axis}); the rest of the gradient is right")
    return None
