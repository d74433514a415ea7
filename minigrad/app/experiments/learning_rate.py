"""Claim 5a: with BatchNorm a large learning rate still trains, so training is faster.

The same ReLU MLP, with and without BatchNorm, is trained with plain SGD (no momentum) for a
fixed number of epochs at learning rates spaced evenly on a log scale, several seeds each. A run
whose loss turns NaN or infinite is stopped and counted as diverged; it scores chance accuracy
(10%) in the mean. A network "still trains" at a rate if no seed diverged and the mean final
test accuracy is at least 90%.
"""
from __future__ import annotations

import numpy as np

from .common import (COLORS, Findings, digits, figure, model, percent, seed_everything, sgd,
                     steps_for, test_accuracy, train)

VARIANTS = ("no norm", "BatchNorm")
BATCH_SIZE = 64
TRAINS_ABOVE = 0.9  # mean final test accuracy that counts as "still trains"


def run(settings) -> Findings:
    rates = np.logspace(-2, 1, 7)  # 0.01 .. 10, two per decade
    seeds, epochs = (1, 2) if settings.quick else (5, 10)
    chance = 1.0 / digits().n_classes
    per_epoch = steps_for(1, BATCH_SIZE)
    runs = {kind: [] for kind in VARIANTS}
    total = len(VARIANTS) * len(rates) * seeds * epochs * per_epoch
    with settings.bar(total, "learning-rate") as bar:
        for kind in VARIANTS:
            for rate in rates:
                runs[kind].append([_train_once(kind, float(rate), settings.seed + s, epochs,
                                               bar, chance) for s in range(seeds)])

    summary = {kind: _summarize(rates, runs[kind]) for kind in VARIANTS}
    numbers = {"learning_rates": rates.tolist(), "seeds": seeds, "epochs": epochs,
               "batch_size": BATCH_SIZE, "optimizer": "SGD, no momentum",
               "trains_above": TRAINS_ABOVE, "chance_accuracy": chance,
               "series": summary}
    columns = ["network", "highest LR that trains", "test acc there (%)",
               "lowest LR that diverges", "best test acc (%)", "best LR"]
    rows = [[kind, s["highest_stable_lr"], _pct(s["accuracy_at_highest_stable_lr"]),
             s["lowest_diverging_lr"], _pct(s["best_accuracy"]), s["best_lr"]]
            for kind, s in summary.items()]
    plain, normed = summary["no norm"], summary["BatchNorm"]
    reproduced = (normed["highest_stable_lr"] or 0) > (plain["highest_stable_lr"] or 0)
    verdict = (f"{'Reproduced' if reproduced else 'Not reproduced'}: the highest learning rate "
               f"that still trains is {plain['highest_stable_lr']} without BatchNorm "
               f"(test acc {percent(plain['accuracy_at_highest_stable_lr'])}) and "
               f"{normed['highest_stable_lr']} with it "
               f"({percent(normed['accuracy_at_highest_stable_lr'])}); the plain net "
               + (f"diverges from LR {plain['lowest_diverging_lr']:.3g}."
                  if plain["lowest_diverging_lr"] else "never diverged in this range."))
    return Findings(numbers, columns, rows, reproduced, verdict, _plot(rates, summary, epochs))


def _train_once(kind, rate, seed, epochs, bar, chance) -> dict:
    """One run: test accuracy before training and after every epoch (chance once diverged)."""
    seed_everything(seed)
    network = model(kind)
    per_epoch = steps_for(1, BATCH_SIZE)
    curve = []
    run = train(network, steps=epochs * per_epoch, batch_size=BATCH_SIZE,
                optimizer=sgd(network, rate, momentum=0.0), seed=seed, bar=bar,
                every=per_epoch, on_record=lambda step: curve.append(test_accuracy(network)))
    if run.diverged:
        curve += [chance] * (epochs + 1 - len(curve))
    return {"diverged": run.diverged, "curve": curve}


def _summarize(rates, runs_per_rate) -> dict:
    """Mean, min and max final accuracy per rate over seeds, and the rates that matter."""
    final = np.array([[r["curve"][-1] for r in runs] for runs in runs_per_rate])
    diverged = np.array([[r["diverged"] for r in runs] for runs in runs_per_rate])
    mean = final.mean(axis=1)
    trains = (mean >= TRAINS_ABOVE) & ~diverged.any(axis=1)
    stable = np.flatnonzero(trains)
    diverging = np.flatnonzero(diverged.any(axis=1))
    best = int(np.argmax(mean))
    return {
        "mean_accuracy": mean.tolist(), "min_accuracy": final.min(axis=1).tolist(),
        "max_accuracy": final.max(axis=1).tolist(),
        "diverged_runs": diverged.sum(axis=1).tolist(),
        "highest_stable_lr": _rate(rates, stable[-1]) if stable.size else None,
        "accuracy_at_highest_stable_lr": float(mean[stable[-1]]) if stable.size else None,
        "lowest_diverging_lr": _rate(rates, diverging[0]) if diverging.size else None,
        "best_lr": _rate(rates, best), "best_accuracy": float(mean[best]),
        # test accuracy after each epoch at the best rate, mean over seeds: how fast it learns
        "curve_at_best_lr": np.mean([r["curve"] for r in runs_per_rate[best]], axis=0).tolist(),
    }


def _rate(rates, index) -> float:
    return float(f"{rates[index]:.3g}")


def _pct(value):
    return None if value is None else round(100 * value, 1)


def _plot(rates, summary: dict, epochs: int):
    fig, (sweep_ax, curve_ax) = figure(2, width=5.6, title=(
        "A large learning rate with and without BatchNorm (ReLU MLP, plain SGD, digits)"))
    for kind, s in summary.items():
        color = COLORS[kind]
        sweep_ax.plot(rates, 100 * np.array(s["mean_accuracy"]), "o-", color=color,
                      linewidth=2, label=f"{kind} (mean over seeds)")
        sweep_ax.fill_between(rates, 100 * np.array(s["min_accuracy"]),
                              100 * np.array(s["max_accuracy"]), color=color, alpha=0.2)
        diverged = np.array(s["diverged_runs"]) > 0
        if diverged.any():
            sweep_ax.plot(rates[diverged], 100 * np.array(s["mean_accuracy"])[diverged], "X",
                          color=color, markersize=11, markeredgecolor="black",
                          label=f"{kind}: a run diverged (NaN loss)")
        curve_ax.plot(range(epochs + 1), 100 * np.array(s["curve_at_best_lr"]), "o-",
                      color=color, linewidth=2, label=f"{kind}, LR {s['best_lr']:g}")
    sweep_ax.axhline(100 * TRAINS_ABOVE, color="black", linestyle=":", linewidth=1,
                     label=f"'trains' threshold ({100 * TRAINS_ABOVE:.0f}%)")
    sweep_ax.set(xscale="log", xlabel="learning rate (log scale)",
                 ylabel=f"test accuracy after {epochs} epochs (%)", ylim=(0, 100),
                 title="Final accuracy over the learning-rate sweep (band: min-max over seeds)")
    sweep_ax.legend(loc="best", fontsize=8)
    curve_ax.set(xlabel="epoch", ylabel="test accuracy (%)",
                 title="Test accuracy per epoch, each at its best learning rate")
    curve_ax.legend(loc="lower right")
    curve_ax.xaxis.get_major_locator().set_params(integer=True)
    return fig
