"""Claim 1: BatchNorm reduces internal covariate shift (Ioffe & Szegedy 2015, Fig. 1).

A 3-hidden-layer, 100-unit sigmoid MLP is trained with plain SGD, with and without BatchNorm
before each sigmoid. Every few steps we record the test accuracy and, on a fixed probe batch,
the 15th, 50th and 85th percentiles of the input of every sigmoid in the last hidden layer,
as training sees it (train mode: BatchNorm normalises the probe batch by its own statistics; a
copy of the network is probed, so the running statistics are not touched). Without BatchNorm
those distributions drift as the layers below change; with it they should stay put.

The shift is how far the three percentiles move from the first record to the last, in units of
the sigmoid's input (the same units for both networks: the sigmoid does not care where the
numbers came from), averaged over the three percentiles and the 100 units.
"""
from __future__ import annotations

import copy

import numpy as np

from minigrad import nn

from .common import (COLORS, Findings, digits, figure, input_of, mlp, seed_everything, sgd,
                     test_accuracy, train)

VARIANTS = ("no norm", "BatchNorm")
WIDTHS = (64, 100, 100, 100, 10)
PERCENTILES = (15, 50, 85)
UNIT = 0          # the unit whose percentiles the figure shows
PROBE_SIZE = 256  # test images the percentiles are measured on
BATCH_SIZE = 60   # as in the paper
LEARNING_RATE = 0.5
TARGET = 0.9      # the test accuracy whose first arrival measures training speed


def run(settings) -> Findings:
    steps, every = (600, 30) if settings.quick else (3000, 50)
    data = digits()
    probe = data.x_test[:PROBE_SIZE]
    traces = {}
    with settings.bar(len(VARIANTS) * steps, "ics") as bar:
        for kind in VARIANTS:
            traces[kind] = _trace(kind, steps, every, probe, settings.seed, bar)

    shift = {kind: _shift(trace["percentiles"]) for kind, trace in traces.items()}
    final = {kind: trace["accuracy"][-1] for kind, trace in traces.items()}
    reach = {kind: _first_step_at(trace, TARGET) for kind, trace in traces.items()}
    numbers = {
        "steps": steps, "record_every": every, "batch_size": BATCH_SIZE,
        "learning_rate": LEARNING_RATE, "unit": UNIT, "percentiles": list(PERCENTILES),
        "series": {kind: {"step": trace["step"], "test_accuracy": trace["accuracy"],
                          "unit_percentiles": trace["percentiles"][:, UNIT].tolist()}
                   for kind, trace in traces.items()},
        "percentile_shift": shift, "final_test_accuracy": final,
        "target_accuracy": TARGET, "steps_to_target": reach,
    }
    columns = ["network", "final test acc (%)", f"steps to {100 * TARGET:.0f}% test acc",
               "percentile shift, first to last record"]
    rows = [[kind, round(100 * final[kind], 1), reach[kind], round(shift[kind], 3)]
            for kind in VARIANTS]
    plain, normed = shift["no norm"], shift["BatchNorm"]
    reproduced = normed < plain
    verdict = (f"{'Reproduced' if reproduced else 'Not reproduced'}: over {steps} steps the "
               f"15/50/85th percentiles of a last-layer sigmoid's input move by {plain:.2f} "
               f"on average without BatchNorm vs {normed:.2f} with it; test accuracy "
               f"{100 * final['no norm']:.1f}% vs {100 * final['BatchNorm']:.1f}% at the end, "
               f"steps to reach {100 * TARGET:.0f}%: {_step(reach['no norm'])} vs "
               f"{_step(reach['BatchNorm'])}.")
    return Findings(numbers, columns, rows, reproduced, verdict, _plot(traces, steps))


def _trace(kind: str, steps: int, every: int, probe, seed: int, bar) -> dict:
    """Train one network, recording test accuracy and the last sigmoid layer's input
    percentiles (shape: records x units x 3) every ``every`` steps."""
    seed_everything(seed)
    model = mlp(WIDTHS, batch_norm=kind == "BatchNorm", activation=nn.Sigmoid)
    last_sigmoid = [i for i, m in enumerate(model) if isinstance(m, nn.Sigmoid)][-1]
    trace = {"step": [], "accuracy": [], "percentiles": []}

    def record(step):
        scratch = copy.deepcopy(model)  # train mode would move the running statistics
        inputs = input_of(scratch, scratch[last_sigmoid], probe)
        trace["step"].append(step)
        trace["accuracy"].append(test_accuracy(model))
        trace["percentiles"].append(np.percentile(inputs, PERCENTILES, axis=0).T)

    train(model, steps=steps, batch_size=BATCH_SIZE, optimizer=sgd(model, LEARNING_RATE, 0.0),
          seed=seed, bar=bar, every=every, on_record=record)
    trace["percentiles"] = np.asarray(trace["percentiles"], dtype=np.float64)
    return trace


def _shift(percentiles: np.ndarray) -> float:
    """Mean over units and percentiles of |last record - first record|."""
    return float(np.mean(np.abs(percentiles[-1] - percentiles[0])))


def _first_step_at(trace: dict, target: float):
    """The first recorded step whose test accuracy reached ``target`` (None if never)."""
    for step, accuracy in zip(trace["step"], trace["accuracy"]):
        if accuracy >= target:
            return step
    return None


def _step(step) -> str:
    return "not reached" if step is None else str(step)


def _plot(traces: dict, steps: int):
    fig, (acc_ax, *band_axes) = figure(3, width=4.6, title=(
        "Internal covariate shift: a 3x100 sigmoid MLP on digits, with and without BatchNorm"))
    for kind, trace in traces.items():
        acc_ax.plot(trace["step"], 100 * np.asarray(trace["accuracy"]), color=COLORS[kind],
                    label=kind, linewidth=2)
    acc_ax.set(title="Test accuracy", xlabel="training step", ylabel="test accuracy (%)",
               xlim=(0, steps))
    acc_ax.legend(loc="lower right")
    band_axes[1].sharey(band_axes[0])  # same units, same scale: the shifts compare by eye
    for ax, (kind, trace) in zip(band_axes, traces.items()):
        low, median, high = trace["percentiles"][:, UNIT].T
        ax.fill_between(trace["step"], low, high, color=COLORS[kind], alpha=0.25,
                        label="15th-85th percentile")
        ax.plot(trace["step"], median, color=COLORS[kind], linewidth=2, label="median")
        ax.set(title=f"{kind}: input of sigmoid unit {UNIT}, last hidden layer",
               xlabel="training step", ylabel="sigmoid input", xlim=(0, steps))
        ax.legend(loc="best")
    return fig
