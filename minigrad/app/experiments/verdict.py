"""The verdict rule every experiment uses: one place that turns measurements over seeds into
"reproduced", "not shown" or "contradicted".

A claim names a metric measured on two arms (say the test loss with and without BatchNorm), the
direction the claim predicts, and the smallest difference that would matter. Each seed gives
one paired difference (the arms share the seed: same data order, same initial draw where the
architectures allow). The rule:

* the 95% confidence interval of the mean paired difference is Student's t interval over the
  seeds (with five seeds it is wider than a bootstrap percentile interval, which is
  over-confident with so few values);
* **reproduced**: the whole interval lies on the predicted side of ``minimum_effect``;
* **contradicted**: the whole interval lies on the other side of zero;
* **not shown**: anything else -- the data cannot tell;
* with a single seed there is no interval: the verdict is **indicative (1 seed)**, which the
  quick runs (the demo, the tests) give.

``reproduced`` in a ``Findings`` is True, False or None for these (None for "not shown" and
"indicative").
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Claim", "Verdict", "REPRODUCED", "NOT_SHOWN", "CONTRADICTED", "INDICATIVE",
           "t_interval", "judge"]

REPRODUCED, NOT_SHOWN, CONTRADICTED = "reproduced", "not shown", "contradicted"
INDICATIVE = "indicative (1 seed)"

# Student's t 97.5% quantiles (two-sided 95%) for 1..30 degrees of freedom; beyond, the normal.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


@dataclass(frozen=True)
class Claim:
    """What is compared: ``metric`` of arm ``a`` minus arm ``b`` (``a_name``, ``b_name``), and
    the sign the claim predicts for that difference (``"positive"`` or ``"negative"``).
    ``minimum_effect`` (in the metric's units, >= 0) is the smallest predicted difference that
    counts; ``unit`` is how the metric prints (``"%"``, ``""``)."""
    metric: str
    a_name: str
    b_name: str
    predicts: str
    minimum_effect: float = 0.0
    unit: str = ""

    def __post_init__(self):
        if self.predicts not in ("positive", "negative"):
            raise ValueError(f"Claim: predicts must be 'positive' or 'negative', got "
                             f"{self.predicts!r}")
        if not self.minimum_effect >= 0:
            raise ValueError(f"Claim: minimum_effect must be >= 0, got {self.minimum_effect}")

    @property
    def rule(self) -> str:
        """The rule in words, for the docs and the reports."""
        side = ">" if self.predicts == "positive" else "<"
        threshold = f"{'' if side == '>' else '-'}{self.minimum_effect:g}{self.unit}"
        return (f"{self.metric}: {self.a_name} - {self.b_name}, paired by seed; reproduced if "
                f"the 95% t interval of the mean difference is {side} {threshold}, "
                f"contradicted if it excludes 0 on the other side")


@dataclass(frozen=True)
class Verdict:
    """The outcome for one claim: ``label`` (one of the four), the mean paired difference and
    its interval (None with one seed), the number of seeds and how many agree in sign."""
    claim: Claim
    label: str
    mean: float
    low: float | None
    high: float | None
    seeds: int
    agreeing: int

    @property
    def reproduced(self) -> bool | None:
        return {REPRODUCED: True, CONTRADICTED: False}.get(self.label)

    def __str__(self) -> str:
        c = self.claim
        difference = f"{c.metric} {c.a_name} - {c.b_name} = {self.mean:+.3g}{c.unit}"
        if self.low is None:
            return f"{self.label}: {difference} (one seed: no interval)"
        return (f"{self.label}: {difference}, 95% CI [{self.low:+.3g}, {self.high:+.3g}]{c.unit} "
                f"over {self.seeds} seeds ({self.agreeing}/{self.seeds} in the predicted "
                f"direction)")

    def as_dict(self) -> dict:
        """JSON-ready numbers for the experiment's record."""
        return {"label": self.label, "metric": self.claim.metric, "a": self.claim.a_name,
                "b": self.claim.b_name, "predicts": self.claim.predicts,
                "minimum_effect": self.claim.minimum_effect, "mean": self.mean,
                "low": self.low, "high": self.high, "seeds": self.seeds,
                "agreeing": self.agreeing, "rule": self.claim.rule}


def t_interval(differences) -> tuple:
    """Mean and 95% Student t interval of ``differences`` (one value per seed, >= 2 values)."""
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 1 or d.size < 2 or not np.isfinite(d).all():
        raise ValueError(f"t_interval: need at least 2 finite differences, got {d.tolist()}")
    df = d.size - 1
    quantile = _T975[df - 1] if df <= len(_T975) else 1.96
    half = quantile * d.std(ddof=1) / math.sqrt(d.size)
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half)


def judge(claim: Claim, a, b) -> Verdict:
    """The verdict on ``claim`` from paired measurements ``a`` and ``b`` (one per seed, same
    seed order). A non-finite value (a run that diverged) counts as the worst outcome for its
    arm only when the metric says which way is worse -- here it is refused: experiments must
    turn a collapse into a number of their metric first."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"judge: a and b need one value per seed each, got shapes {a.shape} "
                         f"and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(f"judge: {claim.metric} has non-finite values ({a.tolist()}, "
                         f"{b.tolist()}); turn a diverged run into a metric value first")
    d = a - b
    sign = 1.0 if claim.predicts == "positive" else -1.0
    agreeing = int((sign * d > 0).sum())
    if d.size == 1:
        return Verdict(claim, INDICATIVE, float(d[0]), None, None, 1, agreeing)
    mean, low, high = t_interval(d)
    predicted_low, predicted_high = sign * low, sign * high  # in the predicted direction
    if min(predicted_low, predicted_high) > claim.minimum_effect:
        label = REPRODUCED
    elif max(predicted_low, predicted_high) < 0:
        label = CONTRADICTED
    else:
        label = NOT_SHOWN
    return Verdict(claim, label, mean, low, high, int(d.size), agreeing)
