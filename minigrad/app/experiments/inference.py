"""Claim 4: at test time (often one sample at a time) BatchNorm uses the average of the
training batches' means and variances.

Which average? Three estimators of the statistics each BatchNorm uses in eval mode, all on the
same trained weights:

* **momentum=0.1**, PyTorch's default: an exponential moving average of the batch statistics
  seen during training, dominated by the last few dozen batches;
* **momentum=None**, the cumulative average of *every* training batch's statistics. Those
  batches went through weights that kept changing, so this averages over the whole trajectory,
  early weights included: it is not the paper's recipe;
* **Algorithm 2** of Ioffe & Szegedy (2015): freeze the final weights, then average the
  statistics of training mini-batches (the variance unbiased, m/(m-1)), as
  ``nn.utils.update_bn(loader, model)`` does with one pass over the training set in batches of
  the training size.

For each seed, two copies of the same BatchNorm MLP train on the same batches, one keeping
momentum=0.1 and one momentum=None (training normalises with batch statistics only, so both end
with identical weights: checked); Algorithm 2 is then applied to a copy. Measured per seed:

* test accuracy at batch size 1 in eval mode, counted in test images (of 449): the metric of
  the claims;
* the last BatchNorm's running-variance gap: mean over channels of |running_var / var - 1|,
  ``var`` the population variance of its input under the final weights (the whole training set
  as one batch, each BatchNorm below normalising with its own population statistics), tracked
  over training for the two running averages. (The first BatchNorm would be a poor witness: its
  input is a bias-free Linear of standardised pixels, whose population mean is exactly zero.)
* as references, not judged: eval mode with those exact population statistics, and train mode,
  where each test batch is normalised by its own statistics, for batches from 2 to the whole
  test set (a batch of one raises PyTorch's ValueError, which we report).

Claims, paired by seed (see ``verdict.py``): Algorithm 2 is at least as good as momentum=0.1
(predicted: more images right; "contradicted" would refute "at least as good", "not shown"
means the two cannot be told apart), and the cumulative average is worse than momentum=0.1
(fewer images right); and the same two comparisons on the variance gap.
"""
from __future__ import annotations

import copy

import numpy as np

import minigrad as mg
from minigrad import nn, training
from minigrad.data import DataLoader

from .common import (COLORS, Findings, band, digits, evaluate, figure, model, seed_everything,
                     sgd, steps_for, train)
from .verdict import Claim, judge

MOMENTA = {"momentum=0.1": 0.1, "momentum=None": None}
ALGORITHM_2 = "Algorithm 2"
ESTIMATORS = (*MOMENTA, ALGORITHM_2)
BATCH_SIZE = 32
LEARNING_RATE = 0.05
TEST_BATCHES = (2, 4, 8, 16, 32, 64, 128, None)  # None: the whole test set as one batch
COLORS_HERE = {**COLORS, ALGORITHM_2: "tab:green", "population": "black"}

IMAGES = "test images right at batch 1 (of 449)"
GAP = "running-variance gap, last BN (%)"
CLAIMS = {
    "algorithm 2": Claim(IMAGES, ALGORITHM_2, "momentum=0.1", "positive", 0.0, " images"),
    "cumulative": Claim(IMAGES, "momentum=None", "momentum=0.1", "negative", 0.0, " images"),
    "algorithm 2 gap": Claim(GAP, ALGORITHM_2, "momentum=0.1", "negative", 1.0, "%"),
    "cumulative gap": Claim(GAP, "momentum=None", "momentum=0.1", "positive", 1.0, "%"),
}

NOTE = ("Literature: Ioffe & Szegedy (2015, Algorithm 2) use the statistics of training "
        "batches recomputed with the final weights; PyTorch's momentum=0.1 is a cheaper "
        "stand-in that forgets old weights quickly, the cumulative average (momentum=None) does "
        "not forget, so its variance gap should be the largest (the mechanism the gap "
        "claims test); a difference of one test image is 0.22% of accuracy")


def run(settings) -> Findings:
    epochs, every = (4, 30) if settings.quick else (15, 25)
    steps = steps_for(epochs, BATCH_SIZE)
    data = digits()
    n_test = len(data.y_test)
    per_seed = []
    with settings.bar(len(settings.seeds) * len(MOMENTA) * steps, "inference") as bar:
        for seed in settings.seeds:
            per_seed.append(_one_seed(seed, steps, every, bar))

    def values(key, label):
        return [s[key][label] for s in per_seed]

    images = {label: [round(a * n_test) for a in values("accuracy", label)]
              for label in ESTIMATORS}
    gap = {label: [100 * g for g in values("var_gap", label)] for label in ESTIMATORS}
    verdicts = [judge(CLAIMS["algorithm 2"], images[ALGORITHM_2], images["momentum=0.1"]),
                judge(CLAIMS["cumulative"], images["momentum=None"], images["momentum=0.1"]),
                judge(CLAIMS["algorithm 2 gap"], gap[ALGORITHM_2], gap["momentum=0.1"]),
                judge(CLAIMS["cumulative gap"], gap["momentum=None"], gap["momentum=0.1"])]

    first = per_seed[0]  # the shared checks read one seed's train-mode curve and series
    numbers = {"epochs": epochs, "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE,
               "record_every": every, "seeds": list(settings.seeds), "test_images": n_test,
               "identical_weights": all(s["identical"] for s in per_seed),
               "series": first["series"],
               "series_per_seed": [s["series"] for s in per_seed],
               "images_right_batch1": images, "variance_gap_percent": gap,
               "mean_gap_per_seed": {label: values("mean_gap", label) for label in ESTIMATORS},
               "eval_batch1_accuracy": {label: float(np.mean(values("accuracy", label)))
                                        for label in ESTIMATORS},
               "population_statistics_accuracy": [s["population"] for s in per_seed],
               "train_mode_accuracy": first["train_mode"],
               "train_mode_accuracy_per_seed": [s["train_mode"] for s in per_seed],
               "train_mode_batch1_error": first["batch_of_one"]}

    def summary(xs):
        return f"{np.mean(xs):.1f} [{min(xs):.0f}–{max(xs):.0f}]" if len(xs) > 1 else xs[0]

    columns = ["test-time normalisation", "images right, batch 1 (mean [range])",
               "test acc (%)", "variance gap (%)", "mean gap (pop. std)"]
    rows = [[f"eval, batch 1: {label}", summary(images[label]),
             round(100 * np.mean(images[label]) / n_test, 2), round(float(np.mean(gap[label])), 2),
             round(float(np.mean(values("mean_gap", label))), 4)] for label in ESTIMATORS]
    population = [round(a * n_test) for a in numbers["population_statistics_accuracy"]]
    rows.append(["eval, exact population statistics", summary(population),
                 round(100 * np.mean(population) / n_test, 2), 0.0, 0.0])
    for size in first["train_mode"]:
        accuracy = [s["train_mode"][size] for s in per_seed]
        rows.append([f"train mode, test batch {size} (its own statistics)", None,
                     round(100 * float(np.mean(accuracy)), 2), None, None])
    rows.append(["train mode, batch 1: " + ("raises ValueError" if first["batch_of_one"]
                                            else "runs"), None, None, None, None])
    return Findings.from_verdicts(verdicts, numbers=numbers, columns=columns, rows=rows,
                                  figure=_plot(per_seed, images, n_test, verdicts, steps),
                                  note=NOTE)


def _one_seed(seed: int, steps: int, every: int, bar) -> dict:
    """Train the two copies for one seed and measure every estimator on the final weights."""
    data = digits()
    networks, series = {}, {}
    for label, momentum in MOMENTA.items():
        networks[label], series[label] = _train(momentum, steps, every, seed, bar)
    reference = networks["momentum=0.1"]
    networks[ALGORITHM_2] = algorithm_2(reference, training.train_loader(
        data, BATCH_SIZE, seed, np.float32))
    other = networks["momentum=None"]
    identical = all(np.array_equal(p.data, q.data)
                    for p, q in zip(reference.parameters(), other.parameters()))
    mean, var = population_statistics(reference, data.x_train)[-1]
    gaps = {label: statistics_gap(_batch_norms(network)[-1], mean, var)
            for label, network in networks.items()}
    sizes = [size or len(data.y_test) for size in TEST_BATCHES]
    return {"identical": identical, "series": series,
            "accuracy": {label: one_at_a_time(network) for label, network in networks.items()},
            "var_gap": {label: g[1] for label, g in gaps.items()},
            "mean_gap": {label: g[0] for label, g in gaps.items()},
            "population": evaluate(with_population_statistics(reference, data.x_train),
                                   data.x_test, data.y_test)[1],
            "train_mode": {str(b): _train_mode_accuracy(reference, b, seed) for b in sizes},
            "batch_of_one": _train_mode_error(reference)}


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
        mean, var = population_statistics(network, digits().x_train)[-1]
        mean_gap, var_gap = statistics_gap(last, mean, var)
        gaps["step"].append(step)
        gaps["mean_gap"].append(mean_gap)
        gaps["var_gap"].append(var_gap)

    train(network, steps=steps, batch_size=BATCH_SIZE, optimizer=sgd(network, LEARNING_RATE),
          seed=seed, bar=bar, every=every, on_record=record)
    return network, gaps


def algorithm_2(network, loader):
    """A copy of ``network`` whose BatchNorms hold Ioffe & Szegedy's Algorithm 2 statistics:
    with the weights frozen, the plain average over ``loader``'s training batches of each
    batch's mean and unbiased variance (``update_bn``; the copy, so ``network`` keeps its own
    running statistics)."""
    recomputed = copy.deepcopy(network)
    nn.utils.update_bn(loader, recomputed)
    return recomputed


def statistics_gap(layer, mean, var) -> tuple[float, float]:
    """How far ``layer``'s running statistics are from (``mean``, ``var``): the mean over
    channels of |running_mean - mean| / sqrt(var) (in population standard deviations) and of
    |running_var / var - 1| (a fraction)."""
    return (float(np.mean(np.abs(layer.running_mean.data - mean) / np.sqrt(var))),
            float(np.mean(np.abs(layer.running_var.data / var - 1))))


def population_statistics(network, x) -> list:
    """(mean, unbiased variance) of every BatchNorm layer's input over ``x`` (the training set),
    each layer below normalising with its own population statistics: ``x`` goes through a copy
    of the network in train mode as one batch (the copy, because train mode moves the running
    statistics)."""
    scratch = copy.deepcopy(network).train()
    statistics = []
    with mg.no_grad():
        h = mg.Tensor(x)
        for layer in scratch:
            if isinstance(layer, nn.BatchNorm1d):
                statistics.append((h.data.mean(axis=0), h.data.var(axis=0, ddof=1)))
            h = layer(h)
    return statistics


def with_population_statistics(network, x):
    """A copy of ``network`` that normalises, in eval mode, with the exact population
    statistics over ``x`` instead of the running ones."""
    ideal = copy.deepcopy(network).eval()
    for layer, (mean, var) in zip(_batch_norms(ideal), population_statistics(network, x)):
        layer.running_mean.data[...] = mean
        layer.running_var.data[...] = var
    return ideal


def one_at_a_time(network, x=None, y=None) -> float:
    """Accuracy in eval mode feeding the images one by one (the digits test set by default);
    the network is left in train mode, as training found it."""
    if x is None:
        x, y = digits().x_test, digits().y_test
    _, accuracy = training.evaluate(network, DataLoader((x, y), batch_size=1))
    network.train()
    return accuracy


def _batch_norms(network) -> list:
    return [m for m in network if isinstance(m, nn.BatchNorm1d)]


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


def _plot(per_seed: list, images: dict, n_test: int, verdicts: list, steps: int):
    fig, (gap_ax, diff_ax, acc_ax) = figure(3, width=4.8, height=4.4, title=(
        "BatchNorm at test time: which statistics (MLP on digits)"))
    # imported after figure(), which explains a missing matplotlib
    from matplotlib.ticker import NullFormatter, ScalarFormatter
    # 1. The running variance's gap over training, with Algorithm 2's at the end.
    x = per_seed[0]["series"]["momentum=0.1"]["step"]
    for label in MOMENTA:
        band(gap_ax, x, [100 * np.asarray(s["series"][label]["var_gap"]) for s in per_seed],
             label, color=COLORS_HERE[label])
    final = [100 * s["var_gap"][ALGORITHM_2] for s in per_seed]
    gap_ax.errorbar([steps], [np.mean(final)], yerr=[[np.mean(final) - min(final)],
                    [max(final) - np.mean(final)]], fmt="D", color=COLORS_HERE[ALGORITHM_2],
                    capsize=3, label=f"{ALGORITHM_2} (final weights)")
    gap_ax.set_yscale("log")
    gap_ax.set_yticks([1, 2, 3, 5, 10, 20, 40])
    gap_ax.yaxis.set_major_formatter(ScalarFormatter())
    gap_ax.yaxis.set_minor_formatter(NullFormatter())
    gap_ax.set(xlabel="training step", ylabel="|running_var / var - 1| (%)",
               title="Running vs population variance, last BN")
    gap_ax.legend(fontsize=8)

    # 2. The paired differences in test images, per seed, with the 95% interval.
    for i, v in enumerate(verdicts[:2]):
        a, b = images[v.claim.a_name], images[v.claim.b_name]
        d = np.subtract(a, b)
        diff_ax.scatter(np.full(len(d), i) + np.linspace(-0.12, 0.12, len(d)), d, s=18,
                        color=COLORS_HERE[v.claim.a_name], zorder=3,
                        label=f"{v.claim.a_name}: each seed")
        if v.low is not None:
            diff_ax.errorbar([i + 0.25], [v.mean], yerr=[[v.mean - v.low], [v.high - v.mean]],
                             fmt="s", color="black", capsize=4,
                             label="mean, 95% t interval" if i == 0 else None)
    diff_ax.axhline(0, color="gray", linewidth=1)
    diff_ax.set_xticks([0, 1], [f"{ALGORITHM_2}\n− momentum=0.1",
                                "momentum=None\n− momentum=0.1"])
    diff_ax.set(xlim=(-0.5, 1.6), ylabel=f"difference in test images right (of {n_test})",
                title="Batch 1: paired by seed")
    diff_ax.legend(fontsize=8)

    # 3. Train mode (the test batch's own statistics) against batch size; at batch 1, where
    # train mode cannot run, the three eval-mode estimators side by side (seeds' range).
    sizes = [int(b) for b in per_seed[0]["train_mode"]]
    band(acc_ax, sizes, [[100 * s["train_mode"][str(b)] for b in sizes] for s in per_seed],
         "train mode: the batch's own statistics", color="black", marker="o")
    for offset, label in zip((0.8, 1.0, 1.25), ESTIMATORS):
        accuracy = 100 * np.asarray(images[label]) / n_test
        acc_ax.errorbar([offset], [accuracy.mean()], yerr=[[accuracy.mean() - accuracy.min()],
                        [accuracy.max() - accuracy.mean()]], fmt="D", capsize=3,
                        color=COLORS_HERE[label], label=f"eval, batch 1: {label}")
    acc_ax.set_xscale("log", base=2)
    acc_ax.set_xticks([1, *sizes], ["1", *(str(b) for b in sizes)])
    acc_ax.set(xlabel="test batch size (batch 1 in train mode raises)",
               ylabel="test accuracy (%)", title="Test accuracy by statistics used")
    acc_ax.legend(fontsize=8, loc="lower right")
    return fig
