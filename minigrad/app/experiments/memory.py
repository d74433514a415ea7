"""Claim 3: training must keep the batch's outputs, so BatchNorm costs memory and compute.

For the same ReLU MLP (64-256-256-10, float32) without normalisation, with composed BatchNorm (a
graph of mean, var, sqrt and broadcasts) and with fused BatchNorm (one node), we measure:

* the bytes of the arrays the autograd graph keeps alive until backward, per layer
  (``held_for_backward``): walking the graph from the loss, every node holds its output, the
  arrays it saved and its inputs. Arrays are counted once by the memory block they live in (a
  view or broadcast counts as its base), and credited to the layer whose node made them; the
  input batch goes to the first layer that reads it, the parameters and buffers (which exist
  whether or not we train) are left out;
* for each fused BatchNorm node, what it keeps split by role (``batch_norm_saved``), so that
  what BatchNorm *must* keep for backward is told apart from what this implementation *chooses*
  to keep. The closed-form backward needs x_hat (N x C; or x, from which x_hat follows) and the
  per-channel 1/sigma and gamma: O(C), negligible. ``FusedBatchNorm`` saves x *and* x_hat (x so
  that a double backward can rebuild x_hat as a function of x) plus the mean and 1/sigma, and,
  as every node of this engine, keeps its output y alive (ReLU after it saves only a boolean
  mask, so y is needed by nothing);
* the peak memory NumPy allocates during one training step (forward, backward, SGD update),
  measured with ``tracemalloc``, and the step's time, as the batch grows.

Everything runs on the NumPy path (``kernels.use_kernels(False)``), the reference, so the bytes
are the same whether or not the compiled kernels are installed. (The compiled fused BatchNorm
keeps no x_hat: its backward recomputes x_hat from x, which the graph keeps anyway, so there
the layer's N x C saving is x_hat's too.)

The bytes are a property of the shapes: the same for every seed, so they are reported as a
measurement ("measured"), not judged -- an interval over seeds would have zero width. The
compute half of the claim is noisy (a shared machine) and is judged with ``judge()``: the
time of the fastest training step with fused BatchNorm in percent of the same without
normalisation, one value per seed (fresh networks, the two timed alternately), against 100%.
"""
from __future__ import annotations

import time
import tracemalloc

import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad import kernels
from minigrad.autograd import graph_nodes
from minigrad.core.tensor import memory_owner
from minigrad.training import train_step

from .common import COLORS, Findings, digits, figure, model, seed_everything, sgd
from .verdict import Claim, judge

VARIANTS = ("no norm", "BatchNorm (composed)", "BatchNorm (fused)")
HIDDEN = 256
TABLE_BATCH = 256  # the batch size of the per-layer bars and the table
KIB = 1024
OVERHEAD = Claim("fastest training step at batch 256 (% of no norm)", "BatchNorm (fused)",
                 "no norm (100%)", "positive", 5.0, "%")


def run(settings) -> Findings:
    with kernels.use_kernels(False):  # the reference path (see the module docstring)
        return _run(settings)


def _run(settings) -> Findings:
    if settings.quick:
        batch_sizes, repeats, timed = (32, 256, 512), 3, 10
    else:
        batch_sizes, repeats, timed = (16, 32, 64, 128, 256, 512, 1024), 5, 25
    per_layer, held, peak, seconds = {}, {}, {}, {}
    total = len(VARIANTS) * len(batch_sizes) + len(settings.seeds)
    with settings.bar(total, "memory", unit="network") as bar:
        for kind in VARIANTS:
            held[kind], peak[kind], seconds[kind] = [], [], []
            for batch_size in batch_sizes:
                m = _measure(kind, batch_size, settings.seed, repeats)
                held[kind].append(sum(m["per_layer"].values()))
                peak[kind].append(m["peak"])
                seconds[kind].append(m["seconds"])
                if batch_size == TABLE_BATCH:
                    per_layer[kind] = m["per_layer"]
                bar.update(1)
        overhead = []  # one value per seed: fused BatchNorm's step time, % of no norm's
        for seed in settings.seeds:
            plain, normalised = _paired_step_times(seed, timed)
            overhead.append(100 * normalised / plain)
            bar.update(1)
    verdict = judge(OVERHEAD, overhead, [100.0] * len(overhead))
    split = _fused_split(settings.seed)

    column = batch_sizes.index(TABLE_BATCH)
    per_sample = {kind: float(np.polyfit(batch_sizes, held[kind], 1)[0]) for kind in VARIANTS}
    numbers = {"batch_sizes": list(batch_sizes), "table_batch": TABLE_BATCH,
               "hidden": HIDDEN, "dtype": "float32",
               "per_layer_bytes": per_layer,
               "fused_batch_norm_split_bytes": split,
               "step_time_percent_of_no_norm": overhead,
               "series": {kind: {"graph_bytes": held[kind], "peak_step_bytes": peak[kind],
                                 "step_seconds": seconds[kind],
                                 "graph_bytes_per_sample": per_sample[kind]}
                          for kind in VARIANTS}}
    base = held["no norm"][column]
    columns = ["network", f"held for backward at batch {TABLE_BATCH} (KiB)", "x no norm",
               "of which BN layers (KiB)", "bytes/sample", "peak of a step (KiB)",
               "fastest step (ms)"]
    rows = [[kind, round(held[kind][column] / KIB, 1), round(held[kind][column] / base, 2),
             round(_bn_bytes(per_layer[kind]) / KIB, 1),
             round(per_sample[kind]), round(peak[kind][column] / KIB, 1),
             round(1000 * seconds[kind][column], 2)]
            for kind in VARIANTS]
    # What one fused BatchNorm layer keeps, by role, next to what backward needs.
    layer = split[0]
    needed = layer["x_hat"] + layer["statistics"]
    rows += [[f"one fused BN layer: {role}", round(value / KIB, 1), None, None, None, None,
              None] for role, value in (
                  ("needed for backward (x_hat + per-channel stats)", needed),
                  ("kept: x_hat", layer["x_hat"]), ("kept: x (shared with the Linear's output)",
                                                    layer["x"]),
                  ("kept: mean and 1/sigma, O(C)", layer["statistics"]),
                  ("kept: output y (every node keeps its output)", layer["output"]))]
    composed, fused = (held[k][column] / base for k in VARIANTS[1:])
    composed_layer = per_layer["BatchNorm (composed)"]["BatchNorm1d 1"]
    measured = (
        f"Measured (bytes depend on shapes only, the same for every seed): at batch "
        f"{TABLE_BATCH} the graph keeps {base / KIB:.0f} KiB alive for backward without "
        f"BatchNorm, {fused:.2f}x that with fused and {composed:.2f}x with composed BatchNorm. "
        f"Backward needs per BN layer x_hat ({layer['x_hat'] / KIB:.0f} KiB, N x C) and "
        f"per-channel statistics ({layer['statistics'] / KIB:.0f} KiB, O(C)); the fused op "
        f"also saves x ({layer['x'] / KIB:.0f} KiB, for double backward) and keeps its output "
        f"({layer['output'] / KIB:.0f} KiB), the composed graph "
        f"{composed_layer / KIB:.0f} KiB of intermediates. Literature: Ioffe & Szegedy (2015) "
        f"backpropagate through x_hat and sigma_B; keeping x_hat (or recomputing it from the "
        f"output, as in-place activated BN does) is the unavoidable N x C cost")
    return Findings.from_verdicts([verdict], numbers=numbers, columns=columns, rows=rows,
                                  figure=_plot(batch_sizes, per_layer, held, peak, split,
                                               overhead, verdict),
                                  note=measured)


def _bn_bytes(layers: dict) -> int:
    return sum(v for k, v in layers.items() if k.startswith("BatchNorm"))


def _paired_step_times(seed: int, repeats: int) -> tuple[float, float]:
    """Fastest seconds of a training step at ``TABLE_BATCH`` without normalisation and with
    fused BatchNorm, fresh networks from ``seed``, timed alternately so that a busy moment of
    the machine slows both. The fastest, not the median: on a shared machine other work only
    ever adds time, and the median of a few dozen steps still jumped two- to threefold when it
    did (measured)."""
    data = digits()
    x, y = mg.tensor(data.x_train[:TABLE_BATCH]), mg.tensor(data.y_train[:TABLE_BATCH])
    steps = []
    for kind in ("no norm", "BatchNorm"):
        seed_everything(seed)
        network = model(kind, hidden=HIDDEN)
        optimizer = sgd(network, 0.01)
        train_step(network, optimizer, x, y)  # warm-up: the optimizer allocates its buffers
        steps.append(lambda network=network, optimizer=optimizer:
                     train_step(network, optimizer, x, y))
    times = ([], [])
    for _ in range(repeats):
        for step, kept in zip(steps, times):
            start = time.perf_counter()
            step()
            kept.append(time.perf_counter() - start)
    return float(np.min(times[0])), float(np.min(times[1]))


def _fused_split(seed: int) -> list:
    """``batch_norm_saved`` for the fused BatchNorm network at ``TABLE_BATCH``."""
    data = digits()
    seed_everything(seed)
    network = model("BatchNorm", hidden=HIDDEN, fused=True)
    x, y = mg.tensor(data.x_train[:TABLE_BATCH]), mg.tensor(data.y_train[:TABLE_BATCH])
    return batch_norm_saved(F.cross_entropy(network(x), y), network)


def batch_norm_saved(loss, network) -> list:
    """For each fused BatchNorm node behind ``loss``, in forward order, the bytes it keeps by
    role: ``x`` (its input, saved), ``x_hat`` (saved: an array the size of x), ``statistics``
    (the other saved arrays: the per-channel mean and 1/sigma), ``output`` (the node's output,
    which this engine keeps on every node), with ``values`` (N x C) and ``channels`` (C).
    Parameters (gamma) are left out: they exist whether or not we train."""
    parameters = {id(memory_owner(p.data)) for p in network.parameters()}
    layers = []
    for node in graph_nodes((loss,)):
        if node.name != "FusedBatchNorm":
            continue
        x = node.inputs[0].data
        kept = {"x": 0, "x_hat": 0, "statistics": 0}
        for array in node.saved_arrays:
            owner = memory_owner(array)
            if id(owner) in parameters:
                continue
            role = ("x" if owner is memory_owner(x) else
                    "x_hat" if array.size == x.size else "statistics")
            kept[role] += owner.nbytes
        layers.append(dict(kept, output=node.output.nbytes, values=int(x.size),
                           channels=int(x.shape[1])))
    return layers


def _measure(kind: str, batch_size: int, seed: int, repeats: int) -> dict:
    """Graph bytes per layer, tracemalloc peak and fastest time of one training step (the
    fastest: see ``_paired_step_times``)."""
    data = digits()
    seed_everything(seed)
    network = model("no norm" if kind == "no norm" else "BatchNorm", hidden=HIDDEN,
                    fused=kind != "BatchNorm (composed)")
    optimizer = sgd(network, 0.01)
    # Copies, as a shuffling loader makes: a slice would be a view of the whole training set.
    x, y = mg.tensor(data.x_train[:batch_size]), mg.tensor(data.y_train[:batch_size])
    result = {"per_layer": held_for_backward(F.cross_entropy(network(x), y), network)}
    train_step(network, optimizer, x, y)  # warm-up: the optimizer allocates its buffers
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        train_step(network, optimizer, x, y)
        result["peak"] = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        train_step(network, optimizer, x, y)
        times.append(time.perf_counter() - start)
    result["seconds"] = float(np.min(times))
    return result


def held_for_backward(loss, network) -> dict:
    """Bytes the graph of ``loss`` keeps alive, keyed by layer ("Linear 1", "BatchNorm1d 1",
    ..., "loss" for nodes made outside the network), in forward order. Parameters and buffers
    (BatchNorm's running statistics, inputs of its node) are left out: they exist whether or
    not we train."""
    labels = _layer_labels(network)
    # Parameters (and views of them, such as a transposed weight) are not counted.
    counted = {id(memory_owner(p.data)) for p in [*network.parameters(), *network.buffers()]}
    held = {}

    def credit(label, array):
        if not isinstance(array, np.ndarray):
            return  # shapes, dtypes and other small Python values
        block = memory_owner(array)
        if id(block) not in counted:
            counted.add(id(block))
            held[label] = held.get(label, 0) + block.nbytes

    for node in graph_nodes((loss,)):  # producers before consumers
        label = next((labels[id(m)] for m in reversed(node.scope) if id(m) in labels), "loss")
        held.setdefault(label, 0)
        credit(label, node.output)
        for item in node.saved_arrays:
            credit(label, item)
        for value in node.inputs:
            if isinstance(value, mg.Tensor):
                if value.grad_fn is None:
                    credit(label, value.data)  # the batch, labels, constants
            else:
                credit(label, value)
    return held


def _layer_labels(network) -> dict:
    """id(layer) -> "<class name> <count>", e.g. "Linear 2" for the network's second Linear."""
    counts, labels = {}, {}
    for layer in network:
        name = type(layer).__name__
        counts[name] = counts.get(name, 0) + 1
        labels[id(layer)] = f"{name} {counts[name]}"
    return labels


def _plot(batch_sizes, per_layer: dict, held: dict, peak: dict, split: list, overhead: list,
          verdict):
    fig, (bar_ax, line_ax, split_ax, time_ax) = figure(4, width=4.4, height=4.4, title=(
        "BatchNorm's cost in training: a 64-256-256-10 ReLU MLP, float32"))
    # 1. Per layer, at one batch size.
    layers = list(per_layer["BatchNorm (composed)"])
    x = np.arange(len(layers))
    width = 0.8 / len(VARIANTS)
    for i, kind in enumerate(VARIANTS):
        values = [per_layer[kind].get(layer, 0) / KIB for layer in layers]
        bar_ax.bar(x + (i - 1) * width, values, width, color=COLORS[kind], label=kind)
    bar_ax.set_xticks(x, [layer.replace("BatchNorm1d", "BN") for layer in layers],
                      rotation=30, ha="right")
    bar_ax.set(ylabel="KiB kept alive by the graph", title=f"Per layer, batch {TABLE_BATCH}")
    top = max(max(v.values()) for v in per_layer.values()) / KIB
    bar_ax.set_ylim(0, 1.4 * top)  # room for the legend above the tallest bars
    bar_ax.legend(fontsize=8, loc="upper left")

    # 2. Against the batch size (bytes are deterministic: one seed).
    for kind in VARIANTS:
        line_ax.plot(batch_sizes, np.array(held[kind]) / KIB, "o-", color=COLORS[kind],
                     linewidth=2, label=f"{kind}: graph")
        line_ax.plot(batch_sizes, np.array(peak[kind]) / KIB, "s--", color=COLORS[kind],
                     linewidth=1, label=f"{kind}: step peak")
    line_ax.set_xscale("log", base=2)
    line_ax.set_xticks(batch_sizes, [str(b) for b in batch_sizes])
    line_ax.set(yscale="log", xlabel="batch size", ylabel="KiB (log scale)",
                title="Graph (solid), step peak (dashed)")
    line_ax.legend(fontsize=7)

    # 3. One fused BatchNorm layer: what backward needs against what is kept, stacked.
    layer = split[0]
    stacks = {"needed for backward": [("x_hat", layer["x_hat"]),
                                      ("mean, 1/sigma: O(C)", layer["statistics"])],
              "fused op keeps": [("x_hat", layer["x_hat"]),
                                 ("mean, 1/sigma: O(C)", layer["statistics"]),
                                 ("x (for double backward)", layer["x"]),
                                 ("output y (node's own)", layer["output"])],
              "composed graph keeps": [("intermediates", per_layer["BatchNorm (composed)"][
                  "BatchNorm1d 1"])]}
    shades = {"x_hat": "tab:cyan", "mean, 1/sigma: O(C)": "black",
              "x (for double backward)": "tab:olive", "output y (node's own)": "tab:gray",
              "intermediates": "tab:blue"}
    shown = set()
    for i, (name, parts) in enumerate(stacks.items()):
        bottom = 0.0
        for part, value in parts:
            split_ax.bar(i, value / KIB, 0.6, bottom=bottom, color=shades[part],
                         label=None if part in shown else part)
            shown.add(part)
            bottom += value / KIB
    split_ax.set_xticks(range(len(stacks)), [n.replace(" ", "\n", 1) for n in stacks])
    split_ax.set(ylabel="KiB", title=f"BN layer 1, batch {TABLE_BATCH} (x is also the "
                                     f"Linear's output)")
    split_ax.legend(fontsize=7)

    # 4. The compute claim: the step time with BatchNorm, % of no norm, per seed.
    time_ax.scatter(np.zeros(len(overhead)) + np.linspace(-0.1, 0.1, len(overhead)), overhead,
                    color=COLORS["BatchNorm (fused)"], zorder=3, label="each seed")
    if verdict.low is not None:
        time_ax.errorbar([0.25], [100 + verdict.mean], fmt="s", color="black", capsize=4,
                         yerr=[[verdict.mean - verdict.low], [verdict.high - verdict.mean]],
                         label="mean, 95% t interval")
    time_ax.axhline(100, color=COLORS["no norm"], linewidth=1.5, label="no norm = 100%")
    time_ax.axhline(100 + OVERHEAD.minimum_effect, color="gray", linestyle=":", linewidth=1,
                    label=f"minimum effect (+{OVERHEAD.minimum_effect:g}%)")
    time_ax.set_xticks([0], ["fused BN"])
    time_ax.set(xlim=(-0.4, 1.6), ylabel="fastest training step (% of no norm)",
                title=f"Step time, batch {TABLE_BATCH}")
    time_ax.legend(fontsize=8, loc="center right")
    return fig
