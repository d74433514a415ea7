"""What a gradient check found, as objects a caller can inspect and as a short printed table."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["GradcheckError", "GradcheckArgumentError", "GradcheckWarning", "GradcheckResult", "Comparison", "Element",
           "OpCheck", "relative_error"]

# How many of the worst elements a printed report lists.
SHOWN_ELEMENTS = 5


def relative_error(analytic, numeric, floor: float = 0.0):
    """|a - n| / max(|a|, |n|) (CS231n's relative error), and 0 where both are 0.

    With ``floor`` (the check's atol) the scale is at least ``floor``: the summary of a check
    uses that, so round-off on a gradient that is truly zero does not read as a 100% error.
    Where either side is NaN the error is inf."""
    with np.errstate(invalid="ignore"):  # inf - inf
        difference = np.abs(np.subtract(analytic, numeric, dtype=np.float64))
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), floor)
    ratio = np.divide(difference, scale, out=np.zeros_like(scale, dtype=float),
                      where=scale > 0)
    # NaN on either side (a non-finite gradient) is an infinite error, never a zero one.
    return np.where(np.isnan(difference), np.inf, ratio)


class GradcheckError(RuntimeError):
    """Raised by ``gradcheck`` when analytic and numeric gradients disagree; ``.result`` holds
    the full ``GradcheckResult``."""

    def __init__(self, result: "GradcheckResult"):
        super().__init__(str(result))
        self.result = result


class GradcheckArgumentError(RuntimeError, ValueError):
    """A tolerance out of range (``atol`` or ``rtol`` negative or not finite). PyTorch's
    gradcheck raises RuntimeError for it, Python's convention is ValueError: either ``except``
    catches it."""


class GradcheckWarning(UserWarning):
    """The check may not mean what it seems: float32 arithmetic, or an input sitting on a kink."""


@dataclass
class Element:
    """One element of a gradient, analytic next to numeric."""
    index: tuple
    analytic: float
    numeric: float

    @property
    def abs_error(self) -> float:
        return abs(self.analytic - self.numeric)

    @property
    def rel_error(self) -> float:
        return float(relative_error(self.analytic, self.numeric))


@dataclass
class Comparison:
    """Autograd's gradient of one output (reduced to a scalar with fixed random weights) with
    respect to one input, against finite differences.

    In full mode every element is compared: ``failing`` counts the elements outside tolerance and
    ``worst`` lists the worst of them. In fast mode one directional derivative is compared
    (``directional`` = (analytic, numeric)); ``failing`` is None (unknown) and ``worst`` holds
    the failing element that bisection found.
    """
    output: str
    input: str
    shape: tuple
    ok: bool
    max_rel_error: float
    worst: list = field(default_factory=list)
    failing: int | None = None
    directional: tuple | None = None
    diagnosis: str | None = None

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def describe(self) -> list[str]:
        """The report lines for this comparison (one line when it passed)."""
        verdict = "ok  " if self.ok else "FAIL"
        head = f"{verdict} {self.output} w.r.t. {self.input}, shape {self.shape}"
        if self.ok:
            return [f"{head}: max relative error {self.max_rel_error:.2g}"]
        if self.directional is not None:
            analytic, numeric = self.directional
            lines = [f"{head}: directional derivative along a random unit vector: analytic "
                     f"{analytic:.6g}, numeric {numeric:.6g} (relative error "
                     f"{self.max_rel_error:.2g})"]
            found = "a wrong element, found by bisection"
        else:
            lines = [f"{head}: {self.failing} of {self.size} elements wrong, max relative error "
                     f"{self.max_rel_error:.2g}"]
            found = "worst elements"
        if self.diagnosis:
            lines.append(f"     looks like: {self.diagnosis}")
        if self.worst:
            lines.append(f"     {found}:")
            lines.append(f"     {'index':<14}{'analytic':>13}{'numeric':>13}{'abs error':>12}"
                         f"{'rel error':>11}")
            for e in self.worst[:SHOWN_ELEMENTS]:
                lines.append(f"     {str(e.index):<14}{e.analytic:>13.6g}{e.numeric:>13.6g}"
                             f"{e.abs_error:>12.3g}{e.rel_error:>11.3g}")
        return lines


@dataclass
class OpCheck:
    """One graph node checked on its own: its op's backward against finite differences of its
    forward, at the input values the node saw.

    ``status`` is "ok", "wrong" (the backward disagrees), "kink" (it disagrees, but an input sits
    on a kink of the op, so finite differences do not apply) or "skipped" (``reason`` says why).
    """
    op: str
    position: int       # 1 = the node nearest the inputs
    total: int          # nodes in the graph
    where: str          # e.g. "custom Function from tests.test_gradcheck, inside model.1 (Linear)"
    status: str
    result: "GradcheckResult | None" = None
    reason: str = ""

    def describe(self) -> list[str]:
        lines = [f"{self.op} (node {self.position} of {self.total}, counting from the inputs; "
                 f"{self.where}): {self.status}" + (f" ({self.reason})" if self.reason else "")]
        if self.result is not None and self.status != "ok":
            lines += ["  " + line for line in self.result.comparison_lines(failed_only=True)]
        return lines


@dataclass
class GradcheckResult:
    """Everything a gradient check compared, plus its warnings and (with ``locate``) the ops
    checked one by one. True when the check passed; ``print(result)`` gives a short table."""
    mode: str
    eps: float
    atol: float
    rtol: float
    comparisons: list = field(default_factory=list)
    # Sub-checks that failed besides the comparisons, one sentence each: a backward not
    # multiplied by its output gradient, one that is not reentrant, outputs that change shape or
    # dtype under perturbation (PyTorch's gradcheck checks the same).
    problems: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    op_checks: list | None = None   # None: localisation was not run
    order: int = 1                  # 2: second derivatives were checked (gradgradcheck)

    @property
    def ok(self) -> bool:
        return not self.problems and all(c.ok for c in self.comparisons)

    def __bool__(self) -> bool:
        return self.ok

    @property
    def failures(self) -> list:
        return [c for c in self.comparisons if not c.ok]

    @property
    def max_rel_error(self) -> float:
        return max((c.max_rel_error for c in self.comparisons), default=0.0)

    @property
    def culprits(self) -> list:
        """The ops whose backward is wrong, nearest the inputs first (needs ``locate=True``)."""
        return [c for c in self.op_checks or () if c.status == "wrong"]

    @property
    def culprit(self) -> "OpCheck | None":
        """The first op (nearest the inputs) whose backward disagrees with its forward."""
        culprits = self.culprits
        return culprits[0] if culprits else None

    def comparison_lines(self, failed_only: bool = False) -> list[str]:
        """The problems found by the sub-checks, then each comparison's lines."""
        lines = [f"FAIL {problem}" for problem in self.problems]
        for c in self.comparisons:
            if not (failed_only and c.ok):
                lines += c.describe()
        return lines

    def __str__(self) -> str:
        verdict = "passed" if self.ok else "FAILED"
        name = "gradcheck" if self.order == 1 else "gradgradcheck"
        lines = [f"{name} {verdict} ({self.mode} mode; eps={self.eps:g}, atol={self.atol:g}, "
                 f"rtol={self.rtol:g})"]
        lines += self.comparison_lines()
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"note: {n}" for n in self.notes]
        if self.op_checks is not None:
            lines += self._localisation_lines()
        return "\n".join(lines)

    def _localisation_lines(self) -> list[str]:
        culprits = self.culprits
        if culprits:
            what = "backward" if self.order == 1 else "backward's own gradient (double backward)"
            lines = [f"guilty op: {culprits[0].op}, whose {what} disagrees with finite "
                     f"differences at the values the node saw:"]
            lines += ["  " + line for line in culprits[0].describe()]
            if len(culprits) > 1:
                others = ", ".join(sorted({c.op for c in culprits[1:]}))
                lines.append(f"  ({len(culprits) - 1} more wrong node(s) further from the inputs: "
                             f"{others})")
            return lines
        kinks = [c for c in self.op_checks if c.status == "kink"]
        if kinks:
            return [f"no op's backward is wrong away from kinks; {len(kinks)} op(s) sit on a kink: "
                    + ", ".join(sorted({c.op for c in kinks}))]
        return [f"every op's backward agrees with its forward ({len(self.op_checks)} nodes "
                f"checked): the gradient is lost between ops -- does fn leave the graph through "
                f".data, .detach(), .numpy() or a NumPy function?"]
