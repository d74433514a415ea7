"""Claim 5 (learning-rate half): with BatchNorm a large learning rate still trains, so training
is faster.

The same ReLU MLP, with and without BatchNorm, is trained with plain SGD (no momentum, no
schedule) at learning rates a quarter-decade apart from 0.001 to 10, on the same batches for
each seed (five seeds in a full run). Test accuracy (eval mode) is recorded every
``RECORD_EVERY`` steps for the first ``FINE_EPOCHS`` epochs, where the fast runs reach the
target, and after every epoch from then on (``record_steps``).

Each run ends in one of four states (``status``):

* **trains** -- final test accuracy at least ``TRAINS_ABOVE``;
* **diverged** -- the loss became NaN or infinite (training stops; the run scores chance
  accuracy, 10%);
* **collapsed** -- the loss stayed finite but blew up (above ``BLOWN_UP`` times its first
  value at some step) and the network ended near chance (test accuracy below chance plus
  ``NEAR_CHANCE``): large steps knocked it into a state it did not leave (BatchNorm at rate 10
  does this). A run at a tiny rate can also end near chance, but its loss never rises: it is
  slow, not collapsed;
* **fails** -- anything else below the threshold (too slow, or blown up and half recovered).

Two claims are judged over the seeds, paired by seed (``verdict.judge``):

1. the largest learning rate at which a seed still trains (``largest_trainable``) is larger with
   BatchNorm -- compared in decades (log10 of the rate);
2. at each network's fastest rate (the one with the fewest mean steps to ``TARGET`` test
   accuracy), BatchNorm reaches the target in fewer steps (``steps_to_target``).
"""
from __future__ import annotations

import math

import numpy as np

from .common import (COLORS, Findings, band, digits, figure, model, seed_everything, sgd,
                     steps_for, test_accuracy, train)
from .verdict import CONTRADICTED, INDICATIVE, REPRODUCED, Claim, judge

VARIANTS = ("no norm", "BatchNorm")
BATCH_SIZE = 64
TRAINS_ABOVE = 0.90  # final test accuracy that counts as "still trains"
TARGET = 0.95        # test accuracy whose first crossing measures "faster"
RECORD_EVERY = 3     # steps between test-accuracy records early on (resolution of "faster")
FINE_EPOCHS = 4      # ... for this many epochs; after that, once an epoch (evaluation is costly)

BLOWN_UP = 2.0       # a collapsed run's loss rose above this many times its first value ...
NEAR_CHANCE = 0.20   # ... and its final test accuracy is below chance + this

TRAINS, DIVERGED, COLLAPSED, FAILS = "trains", "diverged", "collapsed", "fails"

LARGEST_LR = Claim("log10 largest LR that trains (final test acc >= 90%)", "BatchNorm",
                   "no norm", "positive", minimum_effect=0.2, unit=" decades")
FASTER = Claim("steps to 95% test acc at the fastest LR", "BatchNorm", "no norm", "negative",
               minimum_effect=RECORD_EVERY, unit=" steps")

LITERATURE = ("Ioffe & Szegedy (2015, sec. 3.3 and 4.2) trained BN-Inception at 5x and 30x the "
              "learning rate and reached the baseline's accuracy in far fewer steps; Bjorck et "
              "al. (2018) argue that enabling large learning rates is the main source of "
              "BatchNorm's faster training; Santurkar et al. (2018) tie the tolerance of large "
              "steps to a smoother loss landscape")


def rates_grid(quick: bool) -> np.ndarray:
    """Learning rates on a log scale: quarter-decades from 0.001 to 10 (17), or half-decades
    from 0.01 to 10 (7) in a quick run."""
    if quick:
        return 10.0 ** (np.arange(-4, 3) / 2)
    return 10.0 ** (np.arange(-12, 5) / 4)


def status(losses, diverged: bool, accuracy: float, chance: float) -> str:
    """What became of one run: ``TRAINS``, ``DIVERGED``, ``COLLAPSED`` or ``FAILS`` (see the
    module docstring). ``losses`` are the training losses of every step, ``accuracy`` the final
    test accuracy."""
    if diverged:
        return DIVERGED
    if accuracy >= TRAINS_ABOVE:
        return TRAINS
    if max(losses) > BLOWN_UP * losses[0] and accuracy < chance + NEAR_CHANCE:
        return COLLAPSED
    return FAILS


def largest_trainable(rates, accuracies, threshold: float = TRAINS_ABOVE) -> float:
    """The largest rate of ``rates`` (ascending) whose final accuracy reaches ``threshold``.
    If none does, one grid step below the smallest rate (the value is then an upper bound);
    if the largest rate trains, the value is a lower bound -- the grid ends there."""
    rates, accuracies = np.asarray(rates, float), np.asarray(accuracies, float)
    trains = np.flatnonzero(accuracies >= threshold)
    if trains.size:
        return float(rates[trains[-1]])
    return float(rates[0] ** 2 / rates[1])


def record_steps(steps: int, per_epoch: int, every: int = RECORD_EVERY,
                 fine_epochs: int = FINE_EPOCHS) -> list:
    """The steps after which test accuracy is recorded (0 is before training): every ``every``
    steps up to ``fine_epochs`` epochs, then at the end of every epoch, and at ``steps``."""
    fine = range(0, min(steps, fine_epochs * per_epoch) + 1, every)
    return sorted(set(fine) | set(range(0, steps + 1, per_epoch)) | {steps})


def steps_to_target(curve, at, target: float = TARGET) -> int:
    """The first step of ``at`` (the record steps, ascending) at which ``curve`` (the test
    accuracy recorded there) reaches ``target``. A run that never does scores one record
    interval past its end (a lower bound), so a failure is a number the verdict can use."""
    reached = np.flatnonzero(np.asarray(curve) >= target)
    return int(at[reached[0]]) if reached.size else int(2 * at[-1] - at[-2])


def fastest_rate(steps) -> int:
    """The index of the rate with the fewest steps to target, averaged over seeds (``steps``:
    one row per rate, one column per seed); ties go to the smaller rate."""
    return int(np.argmin(np.mean(np.asarray(steps, float), axis=1)))


def run(settings) -> Findings:
    rates = rates_grid(settings.quick)
    seeds = settings.seeds
    epochs = 2 if settings.quick else 12  # 252 steps in a full run: what fits its minute
    per_epoch = steps_for(1, BATCH_SIZE)
    steps = epochs * per_epoch
    at = record_steps(steps, per_epoch)
    chance = 1.0 / digits().n_classes
    runs = {kind: [] for kind in VARIANTS}  # runs[kind][rate][seed]
    with settings.bar(len(VARIANTS) * len(rates) * len(seeds) * steps, "learning-rate") as bar:
        for kind in VARIANTS:
            for rate in rates:
                runs[kind].append([_train_once(kind, float(rate), seed, at, bar, chance)
                                   for seed in seeds])

    summary = {kind: _summarize(rates, runs[kind], at, per_epoch) for kind in VARIANTS}
    plain, normed = summary["no norm"], summary["BatchNorm"]
    verdicts = [judge(LARGEST_LR, np.log10(normed["largest_trainable_lr"]),
                      np.log10(plain["largest_trainable_lr"])),
                judge(FASTER, normed["steps_to_target_at_fastest_lr"],
                      plain["steps_to_target_at_fastest_lr"])]
    numbers = {"learning_rates": rates.tolist(), "seeds": seeds, "epochs": epochs,
               "steps": steps, "record_steps": at, "batch_size": BATCH_SIZE,
               "optimizer": "SGD, no momentum", "trains_above": TRAINS_ABOVE,
               "target_accuracy": TARGET, "chance_accuracy": chance,
               "collapse": {"loss_above_times_first": BLOWN_UP,
                            "accuracy_below": chance + NEAR_CHANCE},
               "diverged_scores": ("chance accuracy; steps to target one record interval past "
                                   "the end"),
               "series": summary}
    columns = ["network", "largest LR that trains, per seed", "all seeds train up to",
               "diverged (NaN): runs, from LR", "collapsed (no NaN): runs, from LR",
               "fastest LR", f"steps to {100 * TARGET:.0f}% there, per seed",
               "best final test acc (%)"]
    rows = [[kind, ", ".join(f"{r:.3g}" for r in s["largest_trainable_lr"]),
             s["highest_stable_lr"], _count(rates, s["diverged_runs"]),
             _count(rates, s["collapsed_runs"]), s["best_lr"],
             ", ".join(str(n) for n in s["steps_to_target_at_fastest_lr"]),
             round(100 * max(s["mean_accuracy"]), 1)]
            for kind, s in summary.items()]
    return Findings.from_verdicts(verdicts, numbers=numbers, columns=columns, rows=rows,
                                  figure=_plot(rates, summary, at, len(seeds)),
                                  note=_note(verdicts, rates, summary))


def _note(verdicts, rates, summary) -> str:
    """The literature, whether these verdicts agree with it, and where each network stopped
    training (so that "never fails" cannot be read into a collapse without a NaN)."""
    labels = {v.label for v in verdicts}
    if labels == {REPRODUCED}:
        agreement = "Both verdicts agree in direction with Ioffe & Szegedy and Bjorck et al."
    elif CONTRADICTED in labels:
        agreement = "A contradicted verdict here disagrees with Ioffe & Szegedy and Bjorck et al."
    elif INDICATIVE in labels:
        agreement = "One seed: whether this agrees is only indicative"
    else:
        agreement = "The data here cannot confirm all of it"
    agreement += " (the smoothness mechanism is tested by the landscape experiment, not here)"
    failures = "; ".join(
        f"{kind}: {_failures(rates, s)}" for kind, s in summary.items())
    return f"{LITERATURE}. {agreement}. Where training fails in this grid -- {failures}"


def _failures(rates, s) -> str:
    """'<n> runs diverged (NaN) from LR x, <m> collapsed without a NaN from LR y' or 'none'."""
    parts = []
    for key, what in (("diverged_runs", "diverged (NaN)"),
                      ("collapsed_runs", "collapsed (finite loss, near-chance accuracy)")):
        if sum(s[key]):
            n = sum(s[key])
            parts.append(f"{n} run{'s' * (n > 1)} {what} from LR {_first(rates, s[key]):.3g}")
    return ", ".join(parts) or "no run diverged or collapsed"


def _first(rates, counts) -> float:
    return float(rates[np.flatnonzero(np.asarray(counts) > 0)[0]])


def _train_once(kind, rate, seed, at, bar, chance) -> dict:
    """One run: test accuracy at the steps ``at``, its final accuracy (chance once diverged)
    and its status."""
    seed_everything(seed)
    network = model(kind)
    curve, wanted = [], set(at)

    def record(step):
        if step in wanted:
            curve.append(test_accuracy(network))

    run = train(network, steps=at[-1], batch_size=BATCH_SIZE,
                optimizer=sgd(network, rate, momentum=0.0), seed=seed, bar=bar,
                every=RECORD_EVERY, on_record=record)
    if run.diverged:  # a NaN network's argmax is meaningless: score it at chance from here on
        curve += [chance] * (len(at) - len(curve))
    final = curve[-1]
    return {"curve": curve, "final": final,
            "status": status(run.losses, run.diverged, final, chance)}


def _summarize(rates, runs_per_rate, at, per_epoch) -> dict:
    """Per rate: final accuracy over seeds and how many runs diverged or collapsed; per seed:
    the largest rate that trains and the steps to target at the network's fastest rate."""
    final = np.array([[r["final"] for r in runs] for runs in runs_per_rate])  # rate x seed
    states = [[r["status"] for r in runs] for runs in runs_per_rate]
    to_target = np.array([[steps_to_target(r["curve"], at) for r in runs]
                          for runs in runs_per_rate])
    fastest = fastest_rate(to_target)
    all_train = np.flatnonzero((final >= TRAINS_ABOVE).all(axis=1))
    curves = np.array([r["curve"] for r in runs_per_rate[fastest]])
    epoch_ends = [i for i, step in enumerate(at) if step % per_epoch == 0]
    return {
        "final_accuracy": final.tolist(),
        "status": states,
        "mean_accuracy": final.mean(axis=1).tolist(),
        "min_accuracy": final.min(axis=1).tolist(),
        "max_accuracy": final.max(axis=1).tolist(),
        "diverged_runs": [row.count(DIVERGED) for row in states],
        "collapsed_runs": [row.count(COLLAPSED) for row in states],
        "largest_trainable_lr": [largest_trainable(rates, final[:, s])
                                 for s in range(final.shape[1])],
        # the largest rate at which every seed trains (None if there is none)
        "highest_stable_lr": _rate(rates, all_train[-1]) if all_train.size else None,
        "steps_to_target": to_target.tolist(),
        "best_lr": _rate(rates, fastest),
        "steps_to_target_at_fastest_lr": to_target[fastest].tolist(),
        "curves_at_fastest_lr": curves.tolist(),
        # mean test accuracy after each epoch at the fastest rate
        "curve_at_best_lr": curves[:, epoch_ends].mean(axis=0).tolist(),
    }


def _rate(rates, index) -> float:
    return float(f"{rates[index]:.3g}")


def _count(rates, counts) -> str:
    """'<runs>, from <lowest rate with one>' or 'none'."""
    return f"{sum(counts)}, from {_first(rates, counts):.3g}" if sum(counts) else "none"


def _plot(rates, summary: dict, at: list, n_seeds: int):
    fig, (sweep_ax, speed_ax, curve_ax) = figure(3, width=4.6, height=4.8, title=(
        "Plain-SGD ReLU MLP on digits, "
        + (f"{n_seeds} seeds (bands: range over seeds)" if n_seeds > 1 else "1 seed")
        + ". X: a run diverged (NaN); ▼: a run collapsed (finite loss, near chance)"))
    steps, cap = at[-1], 2 * at[-1] - at[-2]  # cap: the score of "never reached"
    for kind, s in summary.items():
        color = COLORS[kind]
        final = 100 * np.array(s["final_accuracy"]).T  # seed x rate
        band(sweep_ax, rates, final, kind, marker="o", markersize=3)
        # each failed run marked at its own accuracy (a diverged one scores chance)
        states = np.array(s["status"]).T  # seed x rate
        for state, marker, what in ((DIVERGED, "X", "diverged (NaN)"),
                                    (COLLAPSED, "v", "collapsed (no NaN)")):
            seed, rate = np.nonzero(states == state)
            if seed.size:
                sweep_ax.plot(rates[rate], final[seed, rate], marker, color=color,
                              markersize=9, markeredgecolor="black", linestyle="none",
                              label=f"{kind}: {what}")
        band(speed_ax, rates, np.array(s["steps_to_target"]).T, kind, marker="o", markersize=3)
        i = s["best_lr"]
        speed_ax.plot([i], [np.mean(s["steps_to_target_at_fastest_lr"])], "*", color=color,
                      markersize=14, markeredgecolor="black", linestyle="none",
                      label=f"{kind}: fastest, LR {i:g}")
        band(curve_ax, at, 100 * np.array(s["curves_at_fastest_lr"]), f"{kind}, LR {i:g}",
             color=color)
    sweep_ax.axhline(100 * TRAINS_ABOVE, color="black", linestyle=":", linewidth=1,
                     label=f"trains: >= {100 * TRAINS_ABOVE:.0f}%")
    sweep_ax.set(xscale="log", xlabel="learning rate", ylabel="final test accuracy (%)",
                 ylim=(0, 100), title=f"(a) accuracy after {steps} steps")
    # below the axes, so that it hides no line
    sweep_ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=7, ncol=2)
    speed_ax.axhline(cap, color="black", linestyle=":", linewidth=1,
                     label=f"not reached in {steps} steps")
    speed_ax.set(xscale="log", yscale="log", xlabel="learning rate",
                 ylabel=f"steps to {100 * TARGET:.0f}% test accuracy",
                 title=f"(b) steps to {100 * TARGET:.0f}% (fewer is faster)")
    speed_ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=7, ncol=2)
    curve_ax.axhline(100 * TARGET, color="black", linestyle=":", linewidth=1,
                     label=f"target {100 * TARGET:.0f}%")
    slowest = max(np.mean(s["steps_to_target_at_fastest_lr"]) for s in summary.values())
    curve_ax.set(xlabel="step", ylabel="test accuracy (%)", ylim=(0, 100),
                 xlim=(0, min(steps, max(30, math.ceil(3 * slowest)))),
                 title="(c) each at its fastest rate")
    curve_ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=7, ncol=2)
    return fig
