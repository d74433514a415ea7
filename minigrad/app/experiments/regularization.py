"""Claim 5a: BatchNorm has a regularizing effect.

The hypothesised regulariser is the noise of batch statistics: each batch normalises with its
own mean and variance, so a sample's output depends on which other samples share its batch
(Ioffe & Szegedy 2015, section 3.4). To test that mechanism rather than "BatchNorm" as a whole,
the experiment is an ablation on one wide ReLU MLP (64 -> 256 -> 256 -> 10), trained on the same
batches from the same initial weights:

* **no norm**: plain Linear + ReLU layers;
* **BatchNorm**: BatchNorm with batch statistics, as usual (running averages in eval);
* **population BN**: the same normalisation, but with the mean and variance of the whole
  training set under the current weights (``PopulationNormLinear``) -- BatchNorm without the
  batch noise, what Luo et al. (2019) call population normalization;
* **BatchNorm, eval recomputed**: the BatchNorm networks evaluated with the training set's
  statistics under the current weights, as population BN is, so that only training differs;
* **dropout** (p = 0.3, no norm): a classic regulariser, as a check that the metric can see one.

Every network reaches 100% training accuracy, so the train-test accuracy "gap" is just the test
error and cannot see regularisation. The metrics are instead the test cross-entropy and the
test expected calibration error (ECE), which still move when the training set is fitted; the
train-test loss gap is reported too. Each is averaged over the last quarter of the epochs (one
epoch is noisy), per seed, and the claims are judged with ``verdict.judge`` over the seeds.
"""
from __future__ import annotations

import math

import numpy as np

import minigrad as mg
from minigrad import nn
from minigrad.nn import Module, Parameter

from .common import (COLORS, Findings, band, digits, figure, mlp, seed_everything, sgd,
                     steps_for, train)
from .verdict import CONTRADICTED, INDICATIVE, REPRODUCED, Claim, judge

POPULATION = "population BN"
RECOMPUTED = "BatchNorm, eval recomputed"  # the BatchNorm runs, evaluated like population BN
VARIANTS = ("no norm", "BatchNorm", POPULATION, "dropout")  # the networks trained
ARMS = ("no norm", "BatchNorm", RECOMPUTED, POPULATION, "dropout")  # the networks scored
ARM_COLORS = dict(COLORS, **{POPULATION: "tab:red", RECOMPUTED: "tab:cyan"})
WIDTHS = (64, 256, 256, 10)
DROPOUT = 0.3
BATCH_SIZE = 32
LEARNING_RATE = 0.03
# The population statistics are recomputed every REFRESH steps (twice an epoch of 42 steps;
# a refresh at every step would triple the arm's cost). Only the second layer's input moments
# go stale in between: the first layer's input is the fixed data, and each layer's dependence
# on its own weights is exact at every step. How much they moved between refreshes is
# measured (``set_input_moments`` returns it) and reported.
REFRESH = 21
ECE_BINS = 15
# A diverged run scores a uniform guess's loss (ln 10), chance accuracy and an ECE of 0.9 (as
# if fully confident at chance), so it counts as a bad run instead of being dropped.
CAPPED = {"loss": math.log(10), "accuracy": 0.1, "ece": 0.9}
KEYS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "test_ece")

# The claims, fixed before the runs: metric, comparison, the smallest effect that matters.
# 0.01 nats is about a tenth of the no-norm test loss; one ECE point is a confidence off by
# one percentage point on average.
# The batch-noise claims compare BatchNorm evaluated with recomputed statistics with
# population BN, which is evaluated the same way: only the training (batch noise) differs.
NOISE = Claim("test loss", RECOMPUTED, POPULATION, "negative", 0.01, " nats")
BN_VS_PLAIN = Claim("test loss", "BatchNorm", "no norm", "negative", 0.01, " nats")
NOISE_ECE = Claim("test ECE", RECOMPUTED, POPULATION, "negative", 1.0, " points")
DROPOUT_VS_PLAIN = Claim("test loss", "dropout", "no norm", "negative", 0.01, " nats")
CLAIMS = (  # (claim, metric key in the per-seed finals, scale to the claim's unit)
    (NOISE, "test_loss", 1.0), (BN_VS_PLAIN, "test_loss", 1.0), (NOISE_ECE, "test_ece", 100.0),
    (DROPOUT_VS_PLAIN, "test_loss", 1.0))


# ----------------------------------------------------------------------------------------------
# BatchNorm without batch noise, and calibration
# ----------------------------------------------------------------------------------------------

class _RowVariances(mg.Function):
    """diag(W S W^T) for a constant symmetric S: the variance of each output of ``x W^T`` when
    x has covariance S. One op instead of a matmul, a product and a sum, so that its backward,
    2 (W S) scaled by each row's gradient, reuses the forward's W S instead of recomputing
    it (this product is the population arm's main cost). First-order: W S is a constant."""

    @staticmethod
    def forward(ctx, w, s):
        ws = w @ s
        ctx.save_for_backward(ws)
        return (ws * w).sum(axis=1)

    @staticmethod
    def backward(ctx, grad):
        (ws,) = ctx.saved_tensors
        return grad.reshape(-1, 1) * ws * 2, None


class PopulationNormLinear(Module):
    """A bias-free Linear followed by BatchNorm whose statistics are those of the whole
    training set, not of the batch: y = weight * (z - mu) / sqrt(var + eps) + bias, z = x W^T.

    The layer keeps the mean vector m and the (biased) covariance matrix S of its *input* over
    the training set (``set_input_moments``). Then mu = W m and var = diag(W S W^T) are exact
    functions of the layer's own weights, and the gradient flows through them as it flows
    through BatchNorm's batch statistics -- so the layer is invariant to the scale of each row
    of W, as BatchNorm is, and the gradient is orthogonal to it. What is dropped is the path
    from the statistics to lower layers (m and S are constants), and the noise: a sample's
    output no longer depends on the other samples of its batch, in training or in eval."""

    def __init__(self, in_features: int, out_features: int, eps: float = 1e-5):
        super().__init__()
        # drawn like BatchNorm's bias-free Linear, so both arms start from the same weights
        self.linear = nn.Linear(in_features, out_features, bias=False)
        self.weight = Parameter(np.ones(out_features, dtype=mg.get_default_dtype()))
        self.bias = Parameter(np.zeros(out_features, dtype=mg.get_default_dtype()))
        self.eps = eps
        self.input_mean = np.zeros(in_features)
        self.input_cov = np.eye(in_features)
        self.has_moments = False  # until the first set_input_moments

    def output_moments(self) -> tuple:
        """(mean, variance) of each output of the bias-free Linear under the stored input
        moments: the statistics the layer normalises with."""
        w = self.linear.weight.data
        return self.input_mean @ w.T, ((w @ self.input_cov) * w).sum(axis=1)

    def set_input_moments(self, inputs) -> float | None:
        """Take the mean and biased covariance of ``inputs`` (samples x in_features): the
        layer's input over the whole training set, under the current lower layers. Returns how
        stale the statistics it replaces were: the largest, over units, of the change of the
        standard deviation relative to the new one and of the mean's change in new standard
        deviations (None the first time)."""
        before = self.output_moments() if self.has_moments else None
        x = np.asarray(inputs)
        mean = x.mean(axis=0, dtype=np.float64)
        centred = (x - mean).astype(self.linear.weight.dtype)  # float32: this runs often
        self.input_mean = mean.astype(centred.dtype)
        self.input_cov = centred.T @ centred / len(x)
        self.has_moments = True
        if before is None:
            return None
        (old_mean, old_var), (new_mean, new_var) = before, self.output_moments()
        old_std, new_std = np.sqrt(old_var + self.eps), np.sqrt(new_var + self.eps)
        return float(max(np.max(np.abs(old_std - new_std) / new_std),
                         np.max(np.abs(old_mean - new_mean) / new_std)))

    def forward(self, x):
        w = self.linear.weight
        mean = mg.Tensor(self.input_mean) @ w.transpose()         # (out,) = W m
        var = _RowVariances.apply(w, mg.Tensor(self.input_cov))   # (out,) = diag(W S W^T)
        z = self.linear(x)
        return self.weight * (z - mean) / (var + self.eps).sqrt() + self.bias


def refresh_population(network, x) -> list:
    """Give every ``PopulationNormLinear`` of ``network`` (an ``nn.Sequential``) the moments of
    its input when ``network`` runs on ``x``, layer by layer (each layer's output is computed
    with its freshly set statistics), without building a graph. Returns what each layer's
    ``set_input_moments`` returned (how stale its statistics were)."""
    staleness = []
    with mg.no_grad():
        h = mg.Tensor(np.asarray(x))
        for module in network:
            if isinstance(module, PopulationNormLinear):
                staleness.append(module.set_input_moments(h.data))
            h = module(h)
    return staleness


def population_mlp(widths):
    """``common.mlp(widths, batch_norm=True)`` with each Linear + BatchNorm pair replaced by a
    ``PopulationNormLinear`` (the same initial weights for the same seed)."""
    layers = []
    for n_in, n_out in zip(widths[:-2], widths[1:-1]):
        layers += [PopulationNormLinear(n_in, n_out), nn.ReLU()]
    layers.append(nn.Linear(widths[-2], widths[-1]))
    return nn.Sequential(*layers)


def expected_calibration_error(probabilities, labels, bins: int = ECE_BINS) -> float:
    """ECE: split the samples by confidence (their largest probability) into ``bins`` equal
    bins of (0, 1]; the mean over samples of |accuracy - mean confidence| of their bin. 0 for
    a calibrated classifier; an always-certain one that is right 70% of the time has 0.3."""
    p = np.asarray(probabilities, dtype=np.float64)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == np.asarray(labels)).astype(np.float64)
    # bin b holds confidences in (b/bins, (b+1)/bins]; a confidence of exactly 0 joins bin 0
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for b in np.unique(which):
        members = which == b
        total += members.sum() * abs(correct[members].mean() - confidence[members].mean())
    return float(total / len(p))


def scores(network, x, y) -> dict:
    """Cross-entropy, accuracy and ECE of ``network`` in eval mode on ``x``, ``y`` (its mode is
    restored). A network that outputs non-finite values gets the ``CAPPED`` scores."""
    was_training = network.training
    network.eval()
    try:
        with mg.no_grad(), np.errstate(all="ignore"):
            logits = network(mg.Tensor(x)).data.astype(np.float64)
    finally:
        network.train(was_training)
    if not np.isfinite(logits).all():
        return dict(CAPPED)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    y = np.asarray(y)
    return {"loss": float(-log_p[np.arange(len(y)), y].mean()),
            "accuracy": float((logits.argmax(axis=1) == y).mean()),
            "ece": expected_calibration_error(np.exp(log_p), y)}


def scores_with_recomputed_statistics(network, x_train, splits) -> list:
    """``scores`` on each (x, y) of ``splits`` of a BatchNorm network whose running statistics
    are, for the moment, the whole training set's under the current weights (Ioffe & Szegedy's
    Algorithm 2) instead of the running averages; the running statistics are restored
    afterwards. This evaluates BatchNorm the way population BN is evaluated."""
    layers = [m for m in network if isinstance(m, nn.BatchNorm1d)]
    saved = [(m.momentum, m.running_mean.data.copy(), m.running_var.data.copy(),
              m.num_batches_tracked.data.copy()) for m in layers]
    was_training = network.training
    try:
        for m in layers:
            m.momentum = 1.0  # the running statistics become this batch's
        network.train()
        with mg.no_grad():  # one batch of all the training set: each layer sees the population
            network(mg.Tensor(np.asarray(x_train)))
        return [scores(network, x, y) for x, y in splits]
    finally:
        network.train(was_training)
        for m, (momentum, mean, var, count) in zip(layers, saved):
            m.momentum = momentum
            m.running_mean.data[...], m.running_var.data[...] = mean, var
            m.num_batches_tracked.data[...] = count


# ----------------------------------------------------------------------------------------------
# The experiment
# ----------------------------------------------------------------------------------------------

def run(settings) -> Findings:
    epochs = 6 if settings.quick else 30
    per_epoch = steps_for(1, BATCH_SIZE)
    runs = {arm: [] for arm in ARMS}  # arm -> one history per seed
    with settings.bar(len(VARIANTS) * len(settings.seeds) * epochs * per_epoch,
                      "regularization") as bar:
        for kind in VARIANTS:
            for seed in settings.seeds:
                for arm, history in _histories(kind, epochs, seed, bar).items():
                    runs[arm].append(history)

    # per seed: the mean over the last quarter of the epochs; then judged over the seeds
    tail = max(1, epochs // 4)
    per_seed = {arm: [{key: float(np.mean(h[key][-tail:])) for key in KEYS} for h in hs]
                for arm, hs in runs.items()}
    for kind, finals in per_seed.items():
        for f, h in zip(finals, runs[kind]):
            f["loss_gap"] = f["test_loss"] - f["train_loss"]
            f["diverged"] = h["diverged"]
    verdicts = [judge(claim, [scale * f[key] for f in per_seed[claim.a_name]],
                      [scale * f[key] for f in per_seed[claim.b_name]])
                for claim, key, scale in CLAIMS]

    final = {}
    for kind, finals in per_seed.items():
        final[kind] = {key: float(np.mean([f[key] for f in finals]))
                       for key in KEYS + ("loss_gap",)}
        # kept for the table's reader: with training accuracy at 100% this is the test error
        final[kind]["gap"] = final[kind]["train_accuracy"] - final[kind]["test_accuracy"]
        final[kind]["diverged_runs"] = sum(f["diverged"] for f in finals)
    series = {kind: {key: np.mean([h[key] for h in hs], axis=0).tolist() for key in KEYS}
              for kind, hs in runs.items()}
    numbers = {"epochs": epochs, "seeds": settings.seeds, "averaged_epochs": tail,
               "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE,
               "optimizer": "SGD, momentum 0.9", "dropout": DROPOUT,
               "population_refresh_steps": REFRESH, "ece_bins": ECE_BINS,
               "diverged_scores": CAPPED, "series": series, "final": final,
               "per_seed": per_seed,
               # between two refreshes of the population statistics, the second layer's moved
               # by at most this much (in its own standard deviations; median and worst refresh)
               "population_staleness": {
                   "median": float(np.median([m for h in runs[POPULATION]
                                              for m in h["staleness"]])),
                   "max": float(np.max([m for h in runs[POPULATION] for m in h["staleness"]]))},
               "seed_series": {kind: {key: [h[key] for h in hs] for key in KEYS}
                               for kind, hs in runs.items()}}
    columns = ["network", "train acc (%)", "test acc (%)", "train loss", "test loss",
               "test - train loss", "test ECE (points)", "diverged runs"]
    rows = [[kind, round(100 * f["train_accuracy"], 1), round(100 * f["test_accuracy"], 1),
             round(f["train_loss"], 4), round(f["test_loss"], 4), round(f["loss_gap"], 4),
             round(100 * f["test_ece"], 2), f["diverged_runs"]] for kind, f in final.items()]
    return Findings.from_verdicts(verdicts, numbers=numbers, columns=columns, rows=rows,
                                  figure=_plot(runs, per_seed, verdicts, epochs, tail),
                                  note=_note(verdicts, final))


def _histories(kind: str, epochs: int, seed: int, bar) -> dict:
    """Train one network of ``kind``; its scores on both sets before training and after each
    epoch, as {arm: history} (a BatchNorm network is scored twice: ``"BatchNorm"`` with its
    running averages, ``RECOMPUTED`` with the training set's statistics)."""
    data = digits()
    seed_everything(seed)
    if kind == POPULATION:
        model = population_mlp(WIDTHS)
    else:
        model = mlp(WIDTHS, batch_norm=kind == "BatchNorm",
                    dropout=DROPOUT if kind == "dropout" else 0.0)
    arms = (kind, RECOMPUTED) if kind == "BatchNorm" else (kind,)
    histories = {arm: {key: [] for key in KEYS} for arm in arms}
    staleness = []  # population BN's second layer: how far its statistics had moved
    per_epoch = steps_for(1, BATCH_SIZE)
    splits = ((data.x_train, data.y_train), (data.x_test, data.y_test))

    def record(step):
        if kind == POPULATION:  # before the next steps, and before scoring at an epoch's end
            moved = refresh_population(model, data.x_train)[-1]
            if moved is not None:
                staleness.append(moved)
        if step % per_epoch:
            return
        for arm in arms:
            if arm == RECOMPUTED:
                train_scores, test_scores = scores_with_recomputed_statistics(
                    model, data.x_train, splits)
            else:
                train_scores, test_scores = (scores(model, x, y) for x, y in splits)
            h = histories[arm]
            for split, s in (("train", train_scores), ("test", test_scores)):
                h[f"{split}_loss"].append(s["loss"])
                h[f"{split}_accuracy"].append(s["accuracy"])
            h["test_ece"].append(test_scores["ece"])

    run = train(model, steps=epochs * per_epoch, batch_size=BATCH_SIZE,
                optimizer=sgd(model, LEARNING_RATE), seed=seed, bar=bar, every=REFRESH,
                on_record=record)
    for h in histories.values():
        # a diverged run stopped early: its remaining epochs get the capped scores
        for key in KEYS:
            h[key] += [CAPPED[key.split("_")[1]]] * (epochs + 1 - len(h[key]))
        h["diverged"] = run.diverged
        h["staleness"] = staleness
    return histories


def _note(verdicts, final) -> str:
    """What the literature found, and whether this run agrees."""
    noise, bn_vs_plain, _, dropout = (v.label for v in verdicts)
    literature = ("Ioffe & Szegedy (2015, sec. 3.4) report that BatchNorm regularises through "
                  "its batch noise and that dropout can then be reduced or removed; Luo et al. "
                  "(2019) split BN into population normalization plus a regulariser (gamma "
                  "decay) that comes from the batch statistics; Santurkar et al. (2018) "
                  "explain BN's benefit through optimisation, not regularisation.")
    if INDICATIVE in (noise, bn_vs_plain, dropout):
        return f"{literature} One seed: no verdict on whether this agrees."
    plain, population = final["no norm"]["test_loss"], final[POPULATION]["test_loss"]
    batch = final[RECOMPUTED]["test_loss"]
    gain = (f"population BN keeps {(plain - population) / (plain - batch):.0%} of BatchNorm's "
            f"test-loss gain over no norm" if plain > batch else "BatchNorm has no gain")
    if noise == REPRODUCED:
        cause = "the batch noise lowers test loss, as Ioffe & Szegedy and Luo et al. say"
    elif noise == CONTRADICTED:
        cause = "the batch noise raises test loss, against Ioffe & Szegedy and Luo et al."
    else:
        cause = "the batch noise is not shown to lower test loss"
    reference = ("dropout, a known regulariser, does not lower test loss here either, so this "
                 "setting (training accuracy 100%) may show little of any regulariser"
                 if dropout != REPRODUCED else "dropout lowers test loss: the metric can see "
                 "a regulariser")
    return (f"{literature} Here BatchNorm against no norm is {bn_vs_plain}, but {gain}: "
            f"{cause}; {reference}.")


def _plot(runs, per_seed, verdicts, epochs, tail):
    seeds = len(next(iter(runs.values())))
    fig, (loss_ax, ece_ax, diff_ax) = figure(3, width=4.8, height=4.2, title=(
        f"BatchNorm's regularisation, ablated (2x256 ReLU MLP, digits; {seeds} "
        f"seed{'s' * (seeds > 1)}: mean, band = range; shaded: epochs averaged)"))
    epoch = np.arange(epochs + 1)
    for kind, hs in runs.items():
        color = ARM_COLORS[kind]
        band(loss_ax, epoch, [h["test_loss"] for h in hs], kind, color=color, linewidth=2)
        loss_ax.plot(epoch, np.mean([h["train_loss"] for h in hs], axis=0), color=color,
                     linewidth=1, linestyle="--")
        band(ece_ax, epoch, [100 * np.array(h["test_ece"]) for h in hs], kind, color=color)
        for h in hs:  # a diverged run: marked where its capped scores begin
            if h["diverged"]:
                first = int(np.argmax(np.array(h["test_loss"]) == CAPPED["loss"]))
                loss_ax.plot(first, CAPPED["loss"], "x", color=color, markersize=9,
                             label=f"{kind}: diverged (scored as ln 10)")
    loss_ax.plot([], [], color="black", linewidth=1, linestyle="--", label="train (mean)")
    loss_ax.set(yscale="log", xlabel="epoch", ylabel="cross-entropy (log scale)",
                title="Test loss (solid) and train loss (dashed)")
    ece_ax.set(xlabel="epoch", ylabel="test ECE (points)", title="Test calibration error")
    for ax in (loss_ax, ece_ax):
        ax.axvspan(epochs - tail, epochs, color="gold", alpha=0.15)
    # one legend for both curve panels, below them, so that it covers no line
    fig.legend(*loss_ax.get_legend_handles_labels(), loc="outside lower center", ncol=6,
               fontsize=8)

    # one row per claim: each seed's paired difference, the mean and its 95% interval
    for row, verdict in enumerate(verdicts):
        claim = verdict.claim
        key, scale = next((k, s) for c, k, s in CLAIMS if c is claim)
        d = [scale * (a[key] - b[key])
             for a, b in zip(per_seed[claim.a_name], per_seed[claim.b_name])]
        relative = np.array(d) / claim.minimum_effect  # so claims in different units share an axis
        y = len(verdicts) - 1 - row
        diff_ax.plot(relative, np.full(len(d), y), "o", color="gray", alpha=0.6, markersize=4)
        if verdict.low is not None:
            diff_ax.errorbar(verdict.mean / claim.minimum_effect, y, xerr=[
                [(verdict.mean - verdict.low) / claim.minimum_effect],
                [(verdict.high - verdict.mean) / claim.minimum_effect]],
                fmt="s", color="black", capsize=4)
    diff_ax.axvline(0, color="black", linewidth=0.8)
    diff_ax.axvline(-1, color="tab:green", linestyle=":")
    # between the first two rows, where no interval is drawn
    diff_ax.annotate("minimum\neffect", (-1, len(verdicts) - 1.5), xytext=(-3, 0),
                     textcoords="offset points", ha="right", va="center",
                     fontsize=7, color="tab:green")
    diff_ax.set_yticks(range(len(verdicts)), [
        f"{v.claim.metric}\n{v.claim.a_name} - {v.claim.b_name}\n({v.label})"
        for v in reversed(verdicts)], fontsize=7)
    diff_ax.set(xlabel="paired difference / minimum effect", title="Claims: seeds (dots), mean "
                "and 95% CI")
    return fig
