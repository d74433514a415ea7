"""Claim 6: BatchNorm is hard to use with small mini-batches (Wu & He 2018, Fig. 1).

The same ReLU MLP is trained with BatchNorm, GroupNorm (groups of 8 features) or LayerNorm for
the same number of epochs at batch sizes from 2 to 128. Learning rates follow the linear
scaling rule (Goyal et al. 2017): ``lr = BASE_LR * batch_size / BASE_BATCH``, SGD with momentum
0.9, so every batch size takes the same total step length per epoch. GroupNorm and LayerNorm
normalise each sample on its own, so their accuracy should barely depend on the batch size;
BatchNorm's statistics of a tiny batch are noisy and differ from the running averages used at
test time.
"""
from __future__ import annotations

import numpy as np

from .common import (COLORS, Findings, figure, model, percent, seed_everything, sgd, steps_for,
                     test_accuracy, train)

VARIANTS = ("BatchNorm", "GroupNorm", "LayerNorm")
BASE_LR, BASE_BATCH = 0.1, 32


def learning_rate(batch_size: int) -> float:
    """The linear scaling rule."""
    return BASE_LR * batch_size / BASE_BATCH


def run(settings) -> Findings:
    if settings.quick:
        batch_sizes, epochs, seeds = (2, 8, 32, 128), 1, 1
    else:
        batch_sizes, epochs, seeds = (2, 4, 8, 16, 32, 64, 128), 8, 3
    total = len(VARIANTS) * seeds * sum(steps_for(epochs, b) for b in batch_sizes)
    accuracy = {kind: np.zeros((len(batch_sizes), seeds)) for kind in VARIANTS}
    with settings.bar(total, "batch-size") as bar:
        for kind in VARIANTS:
            for i, batch_size in enumerate(batch_sizes):
                for s in range(seeds):
                    accuracy[kind][i, s] = _final_accuracy(kind, batch_size, epochs,
                                                           settings.seed + s, bar)

    mean = {kind: a.mean(axis=1) for kind, a in accuracy.items()}
    small, large = batch_sizes[0], (64 if 64 in batch_sizes else batch_sizes[-1])
    at = {kind: {b: float(mean[kind][batch_sizes.index(b)]) for b in (small, large)}
          for kind in VARIANTS}
    drop = {kind: at[kind][large] - at[kind][small] for kind in VARIANTS}
    numbers = {"batch_sizes": list(batch_sizes), "epochs": epochs, "seeds": seeds,
               "learning_rate_rule": f"lr = {BASE_LR} * batch_size / {BASE_BATCH} "
                                     f"(SGD, momentum 0.9)",
               "learning_rates": [learning_rate(b) for b in batch_sizes],
               "series": {kind: {"mean_accuracy": mean[kind].tolist(),
                                 "accuracy_per_seed": accuracy[kind].tolist()}
                          for kind in VARIANTS},
               "accuracy_drop": {kind: {"from_batch": large, "to_batch": small,
                                        "points": 100 * drop[kind]} for kind in VARIANTS}}
    columns = ["norm"] + [f"batch {b} (%)" for b in batch_sizes] + [
        f"drop {large}->{small} (points)"]
    rows = [[kind] + [round(100 * a, 1) for a in mean[kind]] + [round(100 * drop[kind], 1)]
            for kind in VARIANTS]
    others = max(drop["GroupNorm"], drop["LayerNorm"])
    reproduced = drop["BatchNorm"] > others + 0.01
    verdict = (f"{'Reproduced' if reproduced else 'Not reproduced'}: going from batch size "
               f"{large} to {small}, BatchNorm's test accuracy goes "
               f"{percent(at['BatchNorm'][large])} -> {percent(at['BatchNorm'][small])}, "
               f"GroupNorm's {percent(at['GroupNorm'][large])} -> "
               f"{percent(at['GroupNorm'][small])}, LayerNorm's "
               f"{percent(at['LayerNorm'][large])} -> {percent(at['LayerNorm'][small])} "
               f"({epochs} epoch{'s' * (epochs > 1)} each).")
    return Findings(numbers, columns, rows, reproduced, verdict,
                    _plot(batch_sizes, accuracy, epochs))


def _final_accuracy(kind, batch_size, epochs, seed, bar) -> float:
    seed_everything(seed)
    network = model(kind)
    train(network, steps=steps_for(epochs, batch_size), batch_size=batch_size,
          optimizer=sgd(network, learning_rate(batch_size)), seed=seed, bar=bar)
    return test_accuracy(network)


def _plot(batch_sizes, accuracy: dict, epochs: int):
    seeds = next(iter(accuracy.values())).shape[1]
    spread = f"; band: range over {seeds} seeds" if seeds > 1 else ""
    fig, (ax,) = figure(1, width=7.5, height=4.6, title=(
        f"Test accuracy vs batch size, {epochs} epoch{'s' * (epochs > 1)} each\n"
        f"(ReLU MLP on digits{spread})"))
    for kind, per_seed in accuracy.items():
        mean = 100 * per_seed.mean(axis=1)
        ax.plot(batch_sizes, mean, "o-", color=COLORS[kind], linewidth=2, label=kind)
        if per_seed.shape[1] > 1:
            ax.fill_between(batch_sizes, 100 * per_seed.min(axis=1), 100 * per_seed.max(axis=1),
                            color=COLORS[kind], alpha=0.2)
    ax.set_xscale("log", base=2)
    ax.set_xticks(batch_sizes, [str(b) for b in batch_sizes])
    ax.invert_xaxis()  # as in Wu & He: the batch shrinks from left to right
    ax.set(xlabel="batch size (images per batch, log scale)", ylabel="test accuracy (%)")
    ax.legend(title=f"lr = {BASE_LR} x batch / {BASE_BATCH}", loc="lower left")
    return fig
