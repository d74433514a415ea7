"""Claim 5b: BatchNorm has a regularizing effect.

Each batch normalises with its own mean and variance, so a sample's output depends on which
other samples share its batch: noise, like dropout's, that might keep the network from fitting
the training set too closely. We train the same wide ReLU MLP without normalisation, with
BatchNorm, and with dropout (the classic regulariser, as a reference point) on the same batches,
several seeds each, and compare how far test accuracy falls behind training accuracy and the
test loss. Single epochs are noisy, so the final numbers are averages over the last quarter of
the epochs (and then over seeds).
"""
from __future__ import annotations

import numpy as np

from .common import (COLORS, Findings, digits, evaluate, figure, mlp, seed_everything, sgd,
                     steps_for, train)

VARIANTS = ("no norm", "BatchNorm", "dropout")
WIDTHS = (64, 256, 256, 10)
DROPOUT = 0.3
BATCH_SIZE = 32
LEARNING_RATE = 0.03
KEYS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")


def run(settings) -> Findings:
    epochs, seeds = (6, 1) if settings.quick else (30, 5)
    per_epoch = steps_for(1, BATCH_SIZE)
    runs = {kind: [] for kind in VARIANTS}
    with settings.bar(len(VARIANTS) * seeds * epochs * per_epoch, "regularization") as bar:
        for kind in VARIANTS:
            for seed in range(settings.seed, settings.seed + seeds):
                runs[kind].append(_history(kind, epochs, seed, bar))

    # curves: mean over seeds; final numbers: mean over the last quarter, then over seeds
    tail = max(1, epochs // 4)
    histories = {kind: {key: np.mean([h[key] for h in hs], axis=0).tolist() for key in KEYS}
                 for kind, hs in runs.items()}
    final = {kind: {key: float(np.mean([h[key][-tail:] for h in hs])) for key in KEYS}
             for kind, hs in runs.items()}
    for kind, f in final.items():
        gaps = [np.mean(np.subtract(h["train_accuracy"], h["test_accuracy"])[-tail:])
                for h in runs[kind]]
        f.update(gap=float(np.mean(gaps)), min_gap=float(np.min(gaps)),
                 max_gap=float(np.max(gaps)), min_test_loss=min(histories[kind]["test_loss"]))
    numbers = {"epochs": epochs, "seeds": seeds, "averaged_epochs": tail,
               "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE,
               "optimizer": "SGD, momentum 0.9", "dropout": DROPOUT,
               "series": histories, "final": final}
    columns = ["network", "train acc (%)", "test acc (%)", "gap (points)",
               "gap range over seeds", "test loss", "lowest test loss"]
    rows = [[kind, round(100 * f["train_accuracy"], 1), round(100 * f["test_accuracy"], 1),
             round(100 * f["gap"], 2),
             f"{100 * f['min_gap']:.2f} .. {100 * f['max_gap']:.2f}",
             round(f["test_loss"], 4), round(f["min_test_loss"], 4)]
            for kind, f in final.items()]
    plain, normed = final["no norm"], final["BatchNorm"]
    reproduced = normed["gap"] < plain["gap"] and normed["test_loss"] < plain["test_loss"]
    verdict = (f"{'Reproduced' if reproduced else 'Not reproduced'}: over the last {tail} of "
               f"{epochs} epochs ({seeds} seed{'s' * (seeds > 1)}) the train-test accuracy gap "
               f"is {100 * plain['gap']:.1f} points without BatchNorm, "
               f"{100 * normed['gap']:.1f} with it and {100 * final['dropout']['gap']:.1f} with "
               f"dropout; test loss {plain['test_loss']:.3f} / {normed['test_loss']:.3f} / "
               f"{final['dropout']['test_loss']:.3f}.")
    return Findings(numbers, columns, rows, reproduced, verdict,
                    _plot(histories, epochs, tail, seeds))


def _history(kind: str, epochs: int, seed: int, bar) -> dict:
    """Train one network; loss and accuracy on both sets before training and after each epoch."""
    data = digits()
    seed_everything(seed)
    model = mlp(WIDTHS, batch_norm=kind == "BatchNorm",
                dropout=DROPOUT if kind == "dropout" else 0.0)
    history = {key: [] for key in KEYS}

    def record(step):
        for split, x, y in (("train", data.x_train, data.y_train),
                            ("test", data.x_test, data.y_test)):
            loss, accuracy = evaluate(model, x, y)
            history[f"{split}_loss"].append(loss)
            history[f"{split}_accuracy"].append(accuracy)

    per_epoch = steps_for(1, BATCH_SIZE)
    train(model, steps=epochs * per_epoch, batch_size=BATCH_SIZE,
          optimizer=sgd(model, LEARNING_RATE), seed=seed, bar=bar, every=per_epoch,
          on_record=record)
    return history


def _plot(histories: dict, epochs: int, tail: int, seeds: int):
    fig, (loss_ax, acc_ax) = figure(2, width=5.6, title=(
        "Regularization: no normalisation, BatchNorm, dropout "
        f"(2x256 ReLU MLP on digits, mean of {seeds} seed{'s' * (seeds > 1)})"))
    epoch = np.arange(epochs + 1)
    for kind, h in histories.items():
        color = COLORS[kind]
        loss_ax.plot(epoch, h["test_loss"], color=color, linewidth=2, label=f"{kind}: test")
        loss_ax.plot(epoch, h["train_loss"], color=color, linewidth=1, linestyle="--",
                     label=f"{kind}: train")
        gap = 100 * (np.array(h["train_accuracy"]) - np.array(h["test_accuracy"]))
        acc_ax.plot(epoch, gap, color=color, linewidth=2, label=kind)
    loss_ax.set(yscale="log", xlabel="epoch", ylabel="cross-entropy (log scale)",
                title="Loss on the training set (dashed) and the test set (solid)")
    loss_ax.legend(fontsize=8, ncol=2)
    acc_ax.set(xlabel="epoch", ylabel="train accuracy - test accuracy (points)",
               title="Generalization gap (lower: less overfitting)")
    acc_ax.axhline(0, color="black", linewidth=0.8)
    acc_ax.axvspan(epochs - tail + 0.5, epochs, color="gold", alpha=0.15,
                   label="averaged for the table")
    acc_ax.legend()
    return fig
