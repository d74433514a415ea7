"""The seed's claims as experiments: every experiment runs in --quick mode through the
``minigrad experiment`` command, and its files are checked for shape and sanity (not exact
values: those belong to the full runs)."""
import contextlib
import csv
import io
import json
import math

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

import minigrad as mg  # noqa: E402
from minigrad import nn  # noqa: E402
from minigrad.app import cli, experiments  # noqa: E402
from minigrad.app.experiments import common  # noqa: E402
from minigrad.app.experiments.memory import held_for_backward  # noqa: E402

NAMES = list(experiments.EXPERIMENTS)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """Run all six quick experiments once, as a user would; return (output dir, stdout)."""
    out = tmp_path_factory.mktemp("experiments")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = cli.main(["experiment", "all", "--quick", "-o", str(out), "--no-progress"])
    assert code == 0
    return out, stdout.getvalue()


def load(out, name) -> dict:
    return json.loads((out / f"{name}.json").read_text())


def all_numbers(value):
    """Every number in a JSON value, recursively."""
    if isinstance(value, dict):
        for item in value.values():
            yield from all_numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from all_numbers(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


@pytest.mark.parametrize("name", NAMES)
def test_files_written_and_sane(quick_run, name):
    out, stdout = quick_run
    assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (out / f"{name}.svg").read_text()[:2000]
    record = load(out, name)
    assert record["name"] == name and record["quick"] is True
    assert record["claim"] == experiments.EXPERIMENTS[name].claim
    # A quick run has one seed: every verdict it gives is only indicative (see verdict.py).
    labels = [v["label"] for v in record["numbers"]["verdicts"]]
    assert labels and set(labels) == {"indicative (1 seed)"}
    assert record["verdict"].startswith("indicative (1 seed)")
    assert record["reproduced"] is None
    assert record["verdict"] in stdout
    numbers = list(all_numbers(record["numbers"]))
    assert numbers and all(math.isfinite(v) for v in numbers)
    columns, rows = record["table"]["columns"], record["table"]["rows"]
    assert rows and all(len(row) == len(columns) for row in rows)
    with (out / f"{name}.csv").open() as file:
        assert list(csv.reader(file))[0] == columns


def accuracies_ok(values):
    return len(values) > 0 and all(0.0 <= v <= 1.0 for v in values)


def test_ics(quick_run):
    numbers = load(quick_run[0], "ics")["numbers"]
    records = numbers["steps"] // numbers["record_every"] + 1
    for kind in ("no norm", "BatchNorm"):
        series = numbers["series"][kind]
        assert series["step"][0] == 0 and series["step"][-1] == numbers["steps"]
        assert len(series["test_accuracy"]) == len(series["step"]) == records
        assert accuracies_ok(series["test_accuracy"])
        percentiles = np.array(series["unit_percentiles"])
        assert percentiles.shape == (records, 3)
        assert np.all(np.diff(percentiles, axis=1) >= 0)  # 15th <= 50th <= 85th


def test_learning_rate(quick_run):
    numbers = load(quick_run[0], "learning-rate")["numbers"]
    rates = numbers["learning_rates"]
    assert rates == sorted(rates) and rates[0] <= 0.01 and rates[-1] >= 10
    for kind in ("no norm", "BatchNorm"):
        series = numbers["series"][kind]
        assert len(series["mean_accuracy"]) == len(series["diverged_runs"]) == len(rates)
        assert accuracies_ok(series["mean_accuracy"])
        assert all(lo <= mean <= hi for lo, mean, hi in zip(
            series["min_accuracy"], series["mean_accuracy"], series["max_accuracy"]))
        assert len(series["curve_at_best_lr"]) == numbers["epochs"] + 1
        if series["highest_stable_lr"] is not None:
            assert series["highest_stable_lr"] in [float(f"{r:.3g}") for r in rates]


def test_regularization(quick_run):
    numbers = load(quick_run[0], "regularization")["numbers"]
    for kind in ("no norm", "BatchNorm", "dropout"):
        history = numbers["series"][kind]
        for key in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
            assert len(history[key]) == numbers["epochs"] + 1
        assert accuracies_ok(history["train_accuracy"] + history["test_accuracy"])
        assert history["train_loss"][-1] < history["train_loss"][0]  # it trained
        final = numbers["final"][kind]
        assert final["gap"] == pytest.approx(final["train_accuracy"] - final["test_accuracy"])


def test_batch_size(quick_run):
    numbers = load(quick_run[0], "batch-size")["numbers"]
    sizes = numbers["batch_sizes"]
    assert sizes[0] == 2 and sizes == sorted(sizes)
    assert numbers["learning_rates"] == pytest.approx(
        [numbers["learning_rates"][0] * b / sizes[0] for b in sizes])  # linear scaling
    for kind in ("BatchNorm", "GroupNorm", "LayerNorm"):
        series = numbers["series"][kind]
        assert len(series["mean_accuracy"]) == len(sizes)
        assert accuracies_ok(series["mean_accuracy"])


def test_memory(quick_run):
    numbers = load(quick_run[0], "memory")["numbers"]
    per_layer = numbers["per_layer_bytes"]
    assert not any(layer.startswith("BatchNorm") for layer in per_layer["no norm"])
    composed, fused = per_layer["BatchNorm (composed)"], per_layer["BatchNorm (fused)"]
    for layer in ("BatchNorm1d 1", "BatchNorm1d 2"):
        # the composed graph keeps its intermediates; the fused op only x_hat and its output
        assert composed[layer] > fused[layer] > 0
    for kind, series in numbers["series"].items():
        assert np.all(np.diff(series["graph_bytes"]) > 0), kind  # more samples, more bytes
        assert all(s > 0 for s in series["step_seconds"] + series["peak_step_bytes"])


def test_inference(quick_run):
    numbers = load(quick_run[0], "inference")["numbers"]
    # training normalises with batch statistics only: the running averages change nothing
    assert numbers["identical_weights"] is True
    assert "Expected more than 1 value per channel" in numbers["train_mode_batch1_error"]
    assert accuracies_ok(list(numbers["eval_batch1_accuracy"].values())
                         + list(numbers["train_mode_accuracy"].values()))
    for label in ("momentum=0.1", "momentum=None"):
        gaps = numbers["series"][label]
        assert len(gaps["step"]) == len(gaps["mean_gap"]) == len(gaps["var_gap"]) > 1
        assert all(g >= 0 for g in gaps["mean_gap"] + gaps["var_gap"])


def test_unknown_experiment_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown experiment 'nope'.*learning-rate"):
        experiments.run("nope", tmp_path)


def test_held_for_backward_counts_each_array_once():
    """A bias-free Linear on a (5, 3) float32 batch, summed: the graph keeps the batch (60
    bytes) and the product (40 bytes) for the layer, the sum (4 bytes) for the loss; the weight
    and its transposed view are parameters, not counted."""
    with common.float32():
        layer = nn.Linear(3, 2, bias=False)
        network = nn.Sequential(layer)
        x = mg.tensor(np.ones((5, 3), dtype=np.float32))
        loss = network(x).sum()
    assert held_for_backward(loss, network) == {"Linear 1": 60 + 40, "loss": 4}


def test_training_loop_stops_on_divergence():
    with common.float32():
        common.seed_everything(0)
        network = common.model("no norm")
        run = common.train(network, steps=200, batch_size=64, seed=0,
                           optimizer=common.sgd(network, lr=1e4, momentum=0.0))
    assert run.diverged and run.steps < 200
    assert not math.isfinite(run.losses[-1])
