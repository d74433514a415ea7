"""Claim 4: at test time (often one sample at a time) BatchNorm uses the average of the
training batches' means and variances.

Two copies of the same BatchNorm MLP are trained on the same batches, one keeping exponential
running statistics (``momentum=0.1``, PyTorch's default) and one a cumulative average of every
batch (``momentum=None``, the seed's "average of the batch means and variances"). Training
itself uses batch statistics only, so both end with identical weights; they differ only in what
they will use at test time. During training we compare the last BatchNorm layer's running
statistics with the population statistics of its input: the whole training set passed as one
batch with the current weights (so the BatchNorm below normalises with its own population
statistics). (The first layer would be a poor witness: its input is a bias-free Linear of
standardised pixels, whose population mean is exactly zero.) Then we measure test accuracy:

* in eval mode, one sample at a time (running statistics),
* in eval mode with the running statistics replaced by the population statistics (the ideal),
* in train mode, normalising each test batch by its own statistics, for batch sizes from 2 to
  the whole test set; a batch of one raises PyTorch's ValueError, which we report.
"""
from __future__ import annotations

import copy

import numpy as np

import minigrad as mg
from minigrad import nn, training
from minigrad.data import DataLoader

from .common import (COLORS, Findings, digits, evaluate, figure, model, percent,
                     seed_everything, sgd, steps_for, train)

MOMENTA = {"momentum=0.1": 0.1, "momentum=None": None}
BATCH_SIZE = 32
LEARNING_RATE = 0.05
TEST_BATCHES = (2, 4, 8, 16, 32, 64, 128, None)  # None: the whole test set as one batch


def run(settings) -> Findings:
    epochs, every = (5, 15) if settings.quick else (15, 25)
    steps = steps_for(epochs, BATCH_SIZE)
    networks, gaps = {}, {}
    with settings.bar(len(MOMENTA) * steps, "inference") as bar:
        for label, momentum in MOMENTA.items():
            networks[label], gaps[label] = _train(momentum, steps, every, settings.seed, bar)
    reference = next(iter(networks.values()))
    identical = all(np.array_equal(p.data, q.data) for network in networks.values()
                    for p, q in zip(reference.parameters(), network.parameters()))

    data = digits()
    eval_accuracy = {label: _one_at_a_time(network) for label, network in networks.items()}
    population = _with_population_statistics(reference)
    population_accuracy = evaluate(population, data.x_test, data.y_test)[1]
    train_mode = {b: _train_mode_accuracy(reference, b, settings.seed)
                  for b in (size or len(data.y_test) for size in TEST_BATCHES)}
    batch_of_one = _train_mode_error(reference)

    final_gap = {label: {key: values[-1] for key, values in g.items() if key != "step"}
                 for label, g in gaps.items()}
    numbers = {"epochs": epochs, "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE,
               "record_every": every, "identical_weights": identical,
               "series": gaps, "final_gap": final_gap,
               "eval_batch1_accuracy": eval_accuracy,
               "population_statistics_accuracy": population_accuracy,
               "train_mode_accuracy": {str(b): a for b, a in train_mode.items()},
               "train_mode_batch1_error": batch_of_one}
    columns = ["test-time normalisation", "test acc (%)", "mean gap (pop. std)",
               "variance gap (%)"]
    rows = [[f"eval, batch 1, running stats {label}", round(100 * eval_accuracy[label], 1),
             round(final_gap[label]["mean_gap"], 4),
             round(100 * final_gap[label]["var_gap"], 2)] for label in MOMENTA]
    rows.append(["eval, population statistics", round(100 * population_accuracy, 1), 0.0, 0.0])
    rows += [[f"train mode, batch {b} (own statistics)", round(100 * a, 1), None, None]
             for b, a in train_mode.items()]
    rows.append(["train mode, batch 1: " + ("raises ValueError" if batch_of_one else "runs"),
                 None, None, None])

    # The seed's recipe is the plain average of the batch statistics: momentum=None.
    average = eval_accuracy["momentum=None"]
    reproduced = average >= population_accuracy - 0.01 and average > train_mode[2]
    ema, cumulative = final_gap["momentum=0.1"], final_gap["momentum=None"]
    verdict = (f"{'Reproduced' if reproduced else 'Not reproduced'}: one sample at a time in "
               f"eval mode the running statistics give "
               + " / ".join(f"{percent(eval_accuracy[k])} ({k})" for k in MOMENTA)
               + f" vs {percent(population_accuracy)} with the true population statistics, "
               f"while train mode scores {percent(train_mode[2])} on batches of 2 and raises "
               f"on batches of 1. At the end the running variance is "
               f"{100 * ema['var_gap']:.1f}% (momentum=0.1) vs {100 * cumulative['var_gap']:.1f}% "
               f"(momentum=None) off the population's, the mean {ema['mean_gap']:.3f} vs "
               f"{cumulative['mean_gap']:.3f} population stds.")
    return Findings(numbers, columns, rows, reproduced, verdict,
                    _plot(gaps, eval_accuracy, population_accuracy, train_mode, steps))


def _train(momentum, steps: int, every: int, seed: int, bar):
    """Train one network; every ``every`` steps, how far its last BatchNorm's running
    statistics are from the population statistics of that layer's input."""
    seed_everything(seed)
    network = model("BatchNorm")
    for layer in _batch_norms(network):
        layer.momentum = momentum
    last = _batch_norms(network)[-1]
    gaps = {"step": [], "mean_gap": [], "var_gap": []}

    def record(step):
        if step == 0:
            return  # nothing is tracked yet
        mean, var = _population_statistics(network)[-1]
        gaps["step"].append(step)
        gaps["mean_gap"].append(float(np.mean(
            np.abs(last.running_mean.data - mean) / np.sqrt(var))))
        gaps["var_gap"].append(float(np.mean(np.abs(last.running_var.data / var - 1))))

    train(network, steps=steps, batch_size=BATCH_SIZE, optimizer=sgd(network, LEARNING_RATE),
          seed=seed, bar=bar, every=every, on_record=record)
    return network, gaps


def _population_statistics(network) -> list:
    """(mean, unbiased variance) of every BatchNorm layer's input over the whole training set,
    each layer below normalising with its own population statistics: the training set goes
    through a copy of the network in train mode as one batch (the copy, because train mode
    moves the running statistics)."""
    scratch = copy.deepcopy(network).train()
    statistics = []
    with mg.no_grad():
        h = mg.Tensor(digits().x_train)
        for layer in scratch:
            if isinstance(layer, nn.BatchNorm1d):
                statistics.append((h.data.mean(axis=0), h.data.var(axis=0, ddof=1)))
            h = layer(h)
    return statistics


def _batch_norms(network) -> list:
    return [m for m in network if isinstance(m, nn.BatchNorm1d)]


def _one_at_a_time(network) -> float:
    """Test accuracy in eval mode, feeding the test images one by one."""
    data = digits()
    _, accuracy = training.evaluate(network, DataLoader((data.x_test, data.y_test), batch_size=1))
    network.train()
    return accuracy


def _with_population_statistics(network):
    """A copy of ``network`` that normalises, in eval mode, with the exact population
    statistics instead of the running ones."""
    ideal = copy.deepcopy(network).eval()
    for layer, (mean, var) in zip(_batch_norms(ideal), _population_statistics(network)):
        layer.running_mean.data[...] = mean
        layer.running_var.data[...] = var
    return ideal


def _train_mode_accuracy(network, batch_size: int, seed: int) -> float:
    """Test accuracy in train mode: each test batch normalised by its own statistics (on a
    copy, since train mode moves the running statistics)."""
    data = digits()
    scratch = copy.deepcopy(network).train()
    loader = DataLoader((data.x_test, data.y_test), batch_size=batch_size, shuffle=True,
                        seed=seed, drop_last=True)
    correct = count = 0
    with mg.no_grad():
        for x, y in loader:
            correct += training.count_correct(scratch(x), y)
            count += len(y)
    return correct / count


def _train_mode_error(network) -> str | None:
    """What a batch of one in train mode does: the error message (None if it ran)."""
    scratch = copy.deepcopy(network).train()
    try:
        with mg.no_grad():
            scratch(mg.Tensor(digits().x_test[:1]))
    except ValueError as error:
        return str(error)
    return None


def _plot(gaps: dict, eval_accuracy: dict, population_accuracy: float, train_mode: dict,
          steps: int):
    fig, (gap_ax, acc_ax) = figure(2, width=5.8, height=4.4, title=(
        "BatchNorm at test time: running statistics vs the batch's own (MLP on digits)"))
    for label, g in gaps.items():
        color = COLORS[label]
        gap_ax.plot(g["step"], g["mean_gap"], color=color, linewidth=2,
                    label=f"{label}: |mean gap| / std")
        gap_ax.plot(g["step"], g["var_gap"], color=color, linewidth=1.2, linestyle="--",
                    label=f"{label}: |variance ratio - 1|")
    gap_ax.set(yscale="log", xlabel="training step", xlim=(0, steps),
               ylabel="gap to population statistics (log scale)",
               title="Last BatchNorm: running vs population statistics of its input")
    gap_ax.legend(fontsize=8)

    sizes = list(train_mode)
    acc_ax.plot(sizes, [100 * train_mode[b] for b in sizes], "o-", color="black", linewidth=2,
                label="train mode: each batch's own statistics")
    for label, accuracy in eval_accuracy.items():
        acc_ax.axhline(100 * accuracy, color=COLORS[label], linewidth=2,
                       linestyle="-" if label.endswith("0.1") else "--",
                       label=f"eval mode, batch 1: running stats ({label}): "
                             f"{100 * accuracy:.1f}%")
    acc_ax.axhline(100 * population_accuracy, color="tab:green", linewidth=1, linestyle=":",
                   label=f"eval mode: true population statistics: "
                         f"{100 * population_accuracy:.1f}%")
    acc_ax.set_xscale("log", base=2)
    acc_ax.set_xticks(sizes, [str(b) for b in sizes])
    acc_ax.set(xlabel="test batch size (log scale); batch 1 in train mode raises ValueError",
               ylabel="test accuracy (%)", title="Test accuracy by how BatchNorm normalises")
    acc_ax.legend(fontsize=8, loc="lower right")
    return fig
