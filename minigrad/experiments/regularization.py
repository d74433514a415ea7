"""Claim 5b: BatchNorm has a regularizing effect.

Each batch normalises with its own mean and variance, so a sample's output depends on which
other samples share its batch: noise, like dropout's, that might keep the network from fitting
the training set too closely. We train the same wide ReLU MLP without normalisation, with
BatchNorm, and with dropout (the classic regulariser, as a reference point) on the same batches,
and compare how far test accuracy falls behind training accuracy and how test loss evolves.
"""
from __future__ import annotations

import numpy as np

from .common import (COLORS, Findings, digits, evaluate, figure, mlp, seed_everything, sgd,
                     steps_for, train)

VARIANTS = ("no norm", "BatchNorm", "dropout")
WIDTHS = (64, 256, 256, 10)
DROPOUT = 0.3
BATCH_SIZE = 32
LEARNING_RATE = 0.05


def run(settings) -> Findings:
    epochs = 8 if settings.quick else 40
    per_epoch = steps_for(1, BATCH_SIZE)
    histories = {}
    with settings.bar(len(VARIANTS) * epochs * per_epoch, "regularization") as bar:
        for kind in VARIANTS:
            histories[kind] = _history(kind, epochs, settings.seed, bar)

    final = {kind: {key: values[-1] for key, values in h.items()}
             for kind, h in histories.items()}
    for kind, f in final.items():
        f["gap"] = f["train_accuracy"] - f["test_accuracy"]
        f["min_test_loss"] = min(histories[kind]["test_loss"])
    numbers = {"epochs": epochs, "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE,
               "optimizer": "SGD, momentum 0.9", "dropout": DROPOUT,
               "series": histories, "final": final}
    columns = ["network", "train acc (%)", "test acc (%)", "gap (points)", "final test loss",
               "lowest test loss"]
    rows = [[kind, round(100 * f["train_accuracy"], 1), round(100 * f["test_accuracy"], 1),
             round(100 * f["gap"], 2), round(f["test_loss"], 4), round(f["min_test_loss"], 4)]
            for kind, f in final.items()]
    plain, normed = final["no norm"], final["BatchNorm"]
    reproduced = normed["gap"] < plain["gap"] and normed["test_loss"] < plain["test_loss"]
    verdict = (f"{'Reproduced' if reproduced else 'Not reproduced'}: after {epochs} epochs the "
               f"train-test accuracy gap is {100 * plain['gap']:.1f} points without BatchNorm, "
               f"{100 * normed['gap']:.1f} with it and {100 * final['dropout']['gap']:.1f} with "
               f"dropout; test loss {plain['test_loss']:.3f} / {normed['test_loss']:.3f} / "
               f"{final['dropout']['test_loss']:.3f}.")
    return Findings(numbers, columns, rows, reproduced, verdict, _plot(histories, epochs))


def _history(kind: str, epochs: int, seed: int, bar) -> dict:
    """Train one network; loss and accuracy on both sets before training and after each epoch."""
    data = digits()
    seed_everything(seed)
    model = mlp(WIDTHS, batch_norm=kind == "BatchNorm",
                dropout=DROPOUT if kind == "dropout" else 0.0)
    history = {"train_loss": [], "train_accuracy": [], "test_loss": [], "test_accuracy": []}

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


def _plot(histories: dict, epochs: int):
    fig, (loss_ax, acc_ax) = figure(2, width=5.6, title=(
        "Regularization: a 2x256 ReLU MLP on digits without normalisation, with BatchNorm, "
        "with dropout"))
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
    acc_ax.legend()
    for ax in (loss_ax, acc_ax):
        ax.title.set_fontsize(10)
    return fig
