"""Claim 6: BatchNorm is hard to use with small mini-batches (Wu & He 2018, Fig. 1).

Two things shrink when "the batch" shrinks: the batch BatchNorm computes its statistics over
(the *BN batch*) and the batch SGD averages its gradient over (the *SGD batch*). In Wu & He
they differ: each of their 8 GPUs normalises its own few images, and SGD averages over all 8
(an SGD batch 8 times the BN batch). Here they are separated fully, the SGD batch held fixed,
with ghost (virtual) BatchNorm: every SGD batch
of ``SGD_BATCH`` samples is cut into sub-batches of ``b`` samples, each normalised with its own
mean and variance. Only the BN batch then changes between runs -- same data order, same
learning rate, same number of steps -- so a difference is BatchNorm's, not the optimiser's.

Arms, all the same ReLU MLP (64 -> 128 -> 128 -> 10, the norm after each hidden Linear),
trained for the same number of epochs with SGD (momentum 0.9):

* at a fixed SGD batch of 32 (lr 0.1): ghost BatchNorm and Batch Renormalization (Ioffe 2017)
  at BN batches 2 ... 32, and GroupNorm, LayerNorm and no normalisation, which do not depend
  on the BN batch at all (one run per seed);
* tied, as in a single-device run (SGD batch = BN batch = b, lr = 0.1 * b / 32, the linear
  scaling rule of Goyal et al. 2017): BatchNorm at every b, GroupNorm and no normalisation at
  b = 2 (at b = 32 the tied runs are the fixed-batch runs themselves).

The metric is the test accuracy after training, in eval mode (BatchNorm and Batch Renorm with
their running statistics); a run whose loss became NaN or infinite scores chance (10%).
"""
from __future__ import annotations

import numpy as np

import minigrad as mg
from minigrad import nn

from .common import (COLORS, Findings, band, figure, model, seed_everything, sgd, steps_for,
                     test_accuracy, train)
from .verdict import INDICATIVE, Claim, judge, t_interval

SGD_BATCH, BASE_LR = 32, 0.1
BN_BATCHES = (2, 4, 8, 16, 32)
CHANCE = 0.1  # the accuracy a diverged run scores: ten classes
COLLAPSED = 30.0  # test accuracy (%) below which a run is marked as collapsed (3x chance)
HIDDEN = 128

# Batch Renorm's schedule (Ioffe 2017, its ImageNet runs): plain BatchNorm (rmax = 1, dmax = 0)
# for the first 5k steps, then relaxed to dmax = 5 at 25k and rmax = 3 at 40k steps. Our runs
# are a hundred or so steps, so the same proportions are used with 40k mapped to half the run.
RMAX, DMAX = 3.0, 5.0
RENORM_START, DMAX_END, RMAX_END = 5 / 80, 25 / 80, 40 / 80  # fractions of the run

COLORS = {**COLORS, "BatchRenorm": "tab:red"}
FLAT_STYLES = {"no norm": dict(linestyle="--", linewidth=2),
               "GroupNorm": dict(linestyle="-", linewidth=3.5, alpha=0.6),
               "LayerNorm": dict(linestyle="--", linewidth=1.5)}


# ----------------------------------------------------------------------------------------------
# The two BatchNorm variants, composed of minigrad ops
# ----------------------------------------------------------------------------------------------

class GhostBatchNorm1d(nn.Module):
    """BatchNorm over (N, C) inputs whose statistics come from sub-batches ("ghost batches")
    of ``ghost_size`` samples: rows 0..b-1 are normalised with their own mean and variance,
    rows b..2b-1 with theirs, and so on (N must be a multiple of b). With ``ghost_size`` = N
    it is ordinary BatchNorm.

    The running mean and variance (for eval) are updated once per call with ``momentum``
    from the average over the ghost batches of their means and of their unbiased variances;
    each ghost batch is a random sample of b rows, so both averages are unbiased estimates of
    the population's, however small b is. Eval uses them, as BatchNorm does."""

    def __init__(self, num_features: int, ghost_size: int, eps: float = 1e-5,
                 momentum: float = 0.1):
        super().__init__()
        if ghost_size < 2:
            raise ValueError(f"{type(self).__name__}: ghost_size must be >= 2 (one sample has "
                             f"no variance), got {ghost_size}")
        self.num_features, self.ghost_size = num_features, ghost_size
        self.eps, self.momentum = eps, momentum
        dtype = mg.get_default_dtype()
        self.weight = nn.Parameter(np.ones(num_features, dtype))
        self.bias = nn.Parameter(np.zeros(num_features, dtype))
        self.register_buffer("running_mean", mg.Tensor(np.zeros(num_features, dtype)))
        self.register_buffer("running_var", mg.Tensor(np.ones(num_features, dtype)))

    def forward(self, x):
        n, c = x.shape
        if not self.training:
            return self._affine((x - self.running_mean.data) /
                                np.sqrt(self.running_var.data + self.eps))
        b = self.ghost_size
        if n % b:
            raise ValueError(f"{type(self).__name__}: a batch of {n} is not a whole number of "
                             f"ghost batches of {b}")
        groups = x.reshape(n // b, b, c)  # (ghost batch, sample in it, feature)
        mean = groups.mean(axis=1, keepdims=True)
        var = groups.var(axis=1, keepdims=True)
        normalised = self._normalise(groups, mean, var)
        self._update_running(mean.data, var.data)
        return self._affine(normalised.reshape(n, c))

    def _normalise(self, groups, mean, var):
        """The normalised ghost batches, (G, b, C); gradients flow through mean and var."""
        return (groups - mean) / (var + self.eps).sqrt()

    def _update_running(self, mean: np.ndarray, var: np.ndarray) -> None:
        b, m = self.ghost_size, self.momentum
        batch_mean = mean.mean(axis=(0, 1))
        batch_var = (var * (b / (b - 1))).mean(axis=(0, 1))  # unbiased, per ghost batch
        self.running_mean.data[...] = (1 - m) * self.running_mean.data + m * batch_mean
        self.running_var.data[...] = (1 - m) * self.running_var.data + m * batch_var

    def _affine(self, normalised):
        return normalised * self.weight + self.bias

    def extra_repr(self):
        return f"{self.num_features}, ghost_size={self.ghost_size}, momentum={self.momentum}"


class BatchRenorm1d(GhostBatchNorm1d):
    """Batch Renormalization (Ioffe 2017, Algorithm 1) over ghost batches of ``ghost_size``.

    Each ghost batch B is normalised with its own statistics and then corrected towards the
    running ones (mu, sigma = sqrt(running_var + eps)):

        x_hat = (x - mu_B) / sigma_B * r + d,   r = clip(sigma_B / sigma, 1/rmax, rmax),
                                                d = clip((mu_B - mu) / sigma, -dmax, dmax),

    with r and d held constant in the backward pass (the paper's stop_gradient), so gradients
    flow through mu_B and sigma_B exactly as in the paper's backward formulas. Unclipped,
    x_hat = (x - mu) / sigma: training computes what inference computes, whatever the batch.
    ``rmax`` = 1, ``dmax`` = 0 is BatchNorm; ``rmax``/``dmax`` are plain attributes so a
    schedule can relax them during training (see ``renorm_limits``).

    The running statistics are updated as ``GhostBatchNorm1d``'s (the variance, unbiased,
    rather than the paper's sigma: the mean of a small batch's sigma_B underestimates sigma)."""

    def __init__(self, num_features: int, ghost_size: int, eps: float = 1e-5,
                 momentum: float = 0.1, rmax: float = 1.0, dmax: float = 0.0):
        super().__init__(num_features, ghost_size, eps, momentum)
        self.rmax, self.dmax = rmax, dmax

    def _normalise(self, groups, mean, var):
        std = (var + self.eps).sqrt()
        sigma = np.sqrt(self.running_var.data + self.eps)
        # r and d from the arrays: constants for autograd (the stop_gradient of the paper)
        r = np.clip(std.data / sigma, 1 / self.rmax, self.rmax)
        d = np.clip((mean.data - self.running_mean.data) / sigma, -self.dmax, self.dmax)
        return (groups - mean) / std * r + d

    def extra_repr(self):
        return super().extra_repr() + f", rmax={self.rmax:g}, dmax={self.dmax:g}"


def renorm_limits(fraction: float) -> tuple[float, float]:
    """(rmax, dmax) at ``fraction`` (0..1) of the run: 1 and 0 (BatchNorm) until
    ``RENORM_START``, then linear up to ``RMAX`` at ``RMAX_END`` and ``DMAX`` at ``DMAX_END``."""
    def ramp(end):
        return float(np.clip((fraction - RENORM_START) / (end - RENORM_START), 0.0, 1.0))
    return 1.0 + (RMAX - 1.0) * ramp(RMAX_END), DMAX * ramp(DMAX_END)


def ghost_model(ghost_size: int, renorm: bool = False):
    """``common.model``'s MLP with ghost BatchNorm (or Batch Renorm) after each hidden Linear
    (which then has no bias: the norm's shift replaces it)."""
    norm = BatchRenorm1d if renorm else GhostBatchNorm1d
    return nn.Sequential(nn.Linear(64, HIDDEN, bias=False), norm(HIDDEN, ghost_size), nn.ReLU(),
                         nn.Linear(HIDDEN, HIDDEN, bias=False), norm(HIDDEN, ghost_size),
                         nn.ReLU(), nn.Linear(HIDDEN, 10))


# ----------------------------------------------------------------------------------------------
# The experiment
# ----------------------------------------------------------------------------------------------

def learning_rate(sgd_batch: int) -> float:
    """The linear scaling rule, from lr 0.1 at a batch of 32."""
    return BASE_LR * sgd_batch / SGD_BATCH


def final_accuracy(arm: str, bn_batch: int, sgd_batch: int, epochs: int, seed: int,
                   bar=None) -> float:
    """Test accuracy of one run of ``arm`` ("BatchNorm", "BatchRenorm", or a key of
    ``common.NORMS``); a diverged run scores ``CHANCE``.

    BatchNorm with its BN batch equal to the SGD batch is minigrad's own fused BatchNorm1d
    (the same computation as ``GhostBatchNorm1d`` with one ghost batch, as the tests check,
    and five times faster at a batch of 2); with a smaller BN batch it is the ghost layer."""
    seed_everything(seed)
    if arm == "BatchRenorm" or (arm == "BatchNorm" and bn_batch < sgd_batch):
        network = ghost_model(bn_batch, renorm=arm == "BatchRenorm")
    else:
        network = model(arm, hidden=HIDDEN)
    steps = steps_for(epochs, sgd_batch)
    renorms = [m for m in network if isinstance(m, BatchRenorm1d)]

    def relax(step):  # Batch Renorm's rmax, dmax for the coming step
        for layer in renorms:
            layer.rmax, layer.dmax = renorm_limits(step / steps)

    run = train(network, steps=steps, batch_size=sgd_batch, seed=seed, bar=bar,
                optimizer=sgd(network, learning_rate(sgd_batch)),
                every=1 if renorms else 0, on_record=relax if renorms else None)
    return CHANCE if run.diverged else test_accuracy(network)


def run(settings) -> Findings:
    epochs = 1 if settings.quick else 2
    seeds = settings.seeds
    fixed_arms = ("BatchNorm", "BatchRenorm")
    free_arms = ("no norm", "GroupNorm", "LayerNorm")  # do not depend on the BN batch
    tied_small = ("no norm", "GroupNorm")              # tied runs at b = 2 besides BatchNorm
    fixed_steps = steps_for(epochs, SGD_BATCH)
    total = len(seeds) * (fixed_steps * (len(fixed_arms) * len(BN_BATCHES) + len(free_arms))
                          + sum(steps_for(epochs, b) for b in BN_BATCHES[:-1])
                          + len(tied_small) * steps_for(epochs, BN_BATCHES[0]))

    # accuracy in % [arm][seed, BN batch]; NaN where an arm was not run at that batch
    shape = (len(seeds), len(BN_BATCHES))
    fixed = {arm: np.full(shape, np.nan) for arm in fixed_arms + free_arms}
    tied = {arm: np.full(shape, np.nan) for arm in ("BatchNorm",) + tied_small}
    with settings.bar(total, "batch-size") as bar:
        for s, seed in enumerate(seeds):
            for arm in fixed_arms:
                for i, b in enumerate(BN_BATCHES):
                    fixed[arm][s, i] = 100 * final_accuracy(arm, b, SGD_BATCH, epochs, seed, bar)
            for arm in free_arms:
                fixed[arm][s, :] = 100 * final_accuracy(arm, SGD_BATCH, SGD_BATCH, epochs,
                                                        seed, bar)
            for i, b in enumerate(BN_BATCHES[:-1]):
                tied["BatchNorm"][s, i] = 100 * final_accuracy("BatchNorm", b, b, epochs,
                                                               seed, bar)
            for arm in tied_small:
                tied[arm][s, 0] = 100 * final_accuracy(arm, 2, 2, epochs, seed, bar)
    for arm in tied:  # at b = 32 the tied run is the fixed-batch run
        tied[arm][:, -1] = fixed[arm][:, -1]

    small, large = 0, len(BN_BATCHES) - 1
    claims = [
        (Claim("test accuracy", "BN with BN batch 2", "BN with BN batch 32 (SGD batch 32)",
               "negative", 1.0, " pt"), fixed["BatchNorm"][:, small],
         fixed["BatchNorm"][:, large]),
        (Claim("test accuracy", "BN with BN batch 2", "no norm (SGD batch 32)", "negative",
               0.0, " pt"), fixed["BatchNorm"][:, small], fixed["no norm"][:, small]),
        (Claim("test accuracy", "BN at batch 2", "no norm at batch 2 (tied)", "negative",
               0.0, " pt"), tied["BatchNorm"][:, small], tied["no norm"][:, small]),
        (Claim("accuracy lost from batch 32 to 2 (tied)", "BN", "GroupNorm", "positive", 1.0,
               " pt"), _drop(tied["BatchNorm"]), _drop(tied["GroupNorm"])),
        (Claim("test accuracy at BN batch 2", "BatchRenorm", "BN (SGD batch 32)", "positive",
               1.0, " pt"), fixed["BatchRenorm"][:, small], fixed["BatchNorm"][:, small]),
        (Claim("test accuracy of BN with BN batch 2", "in SGD batches of 32 (ghost)",
               "in SGD batches of 2", "positive", 1.0, " pt"),
         fixed["BatchNorm"][:, small], tied["BatchNorm"][:, small]),
    ]
    verdicts = [judge(claim, a, b) for claim, a, b in claims]

    note = _literature(verdicts, _drop(tied["GroupNorm"]))

    def mean(a):
        return [None if np.isnan(v) else round(float(v), 1) for v in np.mean(a, axis=0)]

    columns = ["arm"] + [f"BN batch {b} (%)" for b in BN_BATCHES]
    rows = ([[f"{arm} (SGD batch {SGD_BATCH})"] + mean(fixed[arm]) for arm in fixed] +
            [[f"{arm} (SGD batch = BN batch)"] + mean(tied[arm]) for arm in tied])
    numbers = {
        "batch_sizes": list(BN_BATCHES), "sgd_batch": SGD_BATCH, "epochs": epochs,
        "seeds": list(seeds), "chance_accuracy": CHANCE,
        "learning_rate_rule": f"lr = {BASE_LR} * SGD batch / {SGD_BATCH} (SGD, momentum 0.9)",
        # the learning rates of the tied runs (SGD batch = BN batch); the ghost runs use lr 0.1
        "learning_rates": [learning_rate(b) for b in BN_BATCHES],
        "batch_renorm": {"rmax": RMAX, "dmax": DMAX, "start": RENORM_START,
                         "dmax_end": DMAX_END, "rmax_end": RMAX_END},
        # accuracies as fractions, [BN batch][seed], SGD batch 32 (ghost batches)
        "series": {arm: {"mean_accuracy": (a.mean(axis=0) / 100).tolist(),
                         "accuracy_per_seed": (a.T / 100).tolist()}
                   for arm, a in fixed.items()},
        "tied_series": {arm: {"mean_accuracy": [None if v is None else v / 100
                                                for v in mean(a)],
                              "accuracy_per_seed_percent": [[None if np.isnan(v) else float(v)
                                                             for v in row] for row in a.T]}
                        for arm, a in tied.items()},
    }
    return Findings.from_verdicts(verdicts, numbers=numbers, columns=columns, rows=rows,
                                  figure=_plot(fixed, tied, epochs, len(seeds)), note=note)


def _literature(verdicts: list, group_norm_drop: np.ndarray) -> str:
    """The note after the verdicts: GroupNorm's own accuracy change, then what Wu & He 2018
    and Ioffe 2017 found and whether the verdicts here agree."""
    def agree(*chosen):
        labels = {verdicts[i].label for i in chosen}
        if labels == {"reproduced"}:
            return "agrees"
        if "contradicted" in labels:
            return "disagrees"
        return "only indicative here (1 seed)" if labels == {INDICATIVE} else "not shown here"
    drop = (f"GroupNorm's accuracy at batch 32 minus at batch 2 (tied): "
            f"{group_norm_drop.mean():+.2g} pt")
    if len(group_norm_drop) > 1:
        _, low, high = t_interval(group_norm_drop)
        inside = "inside" if -1 < low and high < 1 else "not inside"
        drop += f", 95% CI [{low:+.2g}, {high:+.2g}] ({inside} +-1 pt)"
    ghost = verdicts[5]
    rescue = f"{ghost.label}"
    if ghost.label == "not shown":  # how much of BN's loss the larger SGD batch could recover
        lost = -verdicts[0].mean
        rescue += (f"; by the interval at most {ghost.high:+.2g} pt of the {lost:.2g} pt that "
                   f"BN loses from BN batch 32 to 2")
    return (f"{drop}. Literature: Wu & He 2018 (Fig. 1; BN over each GPU's 32 ... 2 images, "
            f"SGD over 8 GPUs) find BN's ImageNet error rising steeply below 8 images per "
            f"GPU while GroupNorm's stays flat (10.6 points lower than BN's at 2) -- "
            f"{agree(0, 3)}; Ioffe 2017 (microbatches of 4 normalised separately inside "
            f"minibatches of 32, as the ghost batches here) finds BN trains slower and worse "
            f"and Batch Renorm recovers much of the gap -- {agree(4)}. Neither compares with no "
            f"normalisation; here BN over 2 samples against none: {verdicts[1].label} at an "
            f"SGD batch of 32, {verdicts[2].label} at a batch of 2. A larger SGD batch around "
            f"the same 2-sample statistics (ghost vs tied): {rescue}")


def _drop(accuracy: np.ndarray) -> np.ndarray:
    """Accuracy at the largest batch minus at the smallest, per seed."""
    return accuracy[:, -1] - accuracy[:, 0]


def _plot(fixed: dict, tied: dict, epochs: int, seeds: int):
    """Left: the fixed SGD batch, BN batch varied by ghost batches (the arms that do not
    normalise over the batch are flat lines: one run per seed, whatever the BN batch). Right:
    the tied runs (GroupNorm and no norm run at 2 and 32 only: a dotted line joins them)."""
    spread = f"; band: range over {seeds} seeds" if seeds > 1 else ""
    fig, axes = figure(2, width=5.6, height=4.4, title=(
        f"Test accuracy as BatchNorm's batch shrinks\n({epochs} epoch{'s' * (epochs > 1)}, "
        f"digits MLP{spread}; x: a collapsed run, below {COLLAPSED:g}%)"))
    x = np.array(BN_BATCHES)
    panels = ((axes[0], fixed, f"SGD batch {SGD_BATCH}, BN over ghost batches",
               "BN batch (samples per normalisation)"),
              (axes[1], tied, "SGD batch = BN batch, lr scaled with it",
               "batch (SGD and BN)"))
    for ax, arms, title, xlabel in panels:
        for arm, a in arms.items():
            ran = ~np.isnan(a[0])  # the batches this arm was run at
            flat = ax is axes[0] and arm not in ("BatchNorm", "BatchRenorm")
            two_points = ran.sum() < len(BN_BATCHES)
            label = arm + (" (any BN batch)" if flat else
                           " (batch 2 and 32 only)" if two_points else "")
            # flat lines that coincide stay visible: a wide one under a thin one
            style = (FLAT_STYLES[arm] if flat else dict(linestyle=":") if two_points
                     else dict(linestyle="-"))
            band(ax, x[ran], a[:, ran], label, color=COLORS[arm],
                 marker=None if flat else "o", **style)
            for s, i in zip(*np.nonzero(a[:, ran] < COLLAPSED)):
                ax.plot(x[ran][i], a[s, ran][i], "x", color=COLORS[arm], markersize=9,
                        markeredgewidth=2)
        ax.set_xscale("log", base=2)
        ax.set_xticks(x, [str(b) for b in BN_BATCHES])
        ax.invert_xaxis()  # as in Wu & He: the batch shrinks from left to right
        ax.set(title=title, xlabel=xlabel, ylabel="test accuracy (%)")
        ax.legend(loc="lower left", fontsize=8)
    return fig
