"""Claim 3: training must keep the batch's outputs, so BatchNorm costs memory and compute.

For the same ReLU MLP without normalisation, with composed BatchNorm (a graph of mean, var,
sqrt and broadcasts) and with fused BatchNorm (one node), we measure:

* the bytes of the arrays the autograd graph keeps alive until backward, per layer: walking the
  graph from the loss, every node holds its output, the arrays it saved and its inputs. Arrays
  are counted once by the memory block they live in (a view or broadcast counts as its base),
  and credited to the layer whose node made them; the input batch goes to the first layer that
  reads it, the parameters (which exist whether or not we train) are left out;
* the peak memory NumPy allocates during one training step (forward, backward, SGD update),
  measured with ``tracemalloc``, and the step's time, as the batch grows.
"""
from __future__ import annotations

import time
import tracemalloc

import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad.autograd import graph_nodes
from minigrad.core.tensor import memory_owner
from minigrad.training import train_step

from .common import COLORS, Findings, digits, figure, model, seed_everything, sgd

VARIANTS = ("no norm", "BatchNorm (composed)", "BatchNorm (fused)")
HIDDEN = 256
TABLE_BATCH = 256  # the batch size of the per-layer bars and the table
KIB = 1024


def run(settings) -> Findings:
    if settings.quick:
        batch_sizes, repeats = (32, 128, 256, 512), 3
    else:
        batch_sizes, repeats = (16, 32, 64, 128, 256, 512, 1024), 15
    per_layer, held, peak, seconds = {}, {}, {}, {}
    with settings.bar(len(VARIANTS) * len(batch_sizes), "memory", unit="network") as bar:
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

    column = batch_sizes.index(TABLE_BATCH)
    per_sample = {kind: float(np.polyfit(batch_sizes, held[kind], 1)[0]) for kind in VARIANTS}
    numbers = {"batch_sizes": list(batch_sizes), "table_batch": TABLE_BATCH,
               "hidden": HIDDEN, "dtype": "float32",
               "per_layer_bytes": per_layer,
               "series": {kind: {"graph_bytes": held[kind], "peak_step_bytes": peak[kind],
                                 "step_seconds": seconds[kind],
                                 "graph_bytes_per_sample": per_sample[kind]}
                          for kind in VARIANTS}}
    base = held["no norm"][column]
    columns = ["network", f"held for backward at batch {TABLE_BATCH} (KiB)", "x no norm",
               "of which BN layers (KiB)", "bytes/sample", "peak of a step (KiB)",
               "step time (ms)"]
    rows = [[kind, round(held[kind][column] / KIB, 1), round(held[kind][column] / base, 2),
             round(sum(v for k, v in per_layer[kind].items() if k.startswith("BatchNorm"))
                   / KIB, 1),
             round(per_sample[kind]), round(peak[kind][column] / KIB, 1),
             round(1000 * seconds[kind][column], 2)]
            for kind in VARIANTS]
    composed, fused = (held[k][column] / base for k in VARIANTS[1:])
    reproduced = composed > 1 and fused > 1
    verdict = (f"{'Reproduced' if reproduced else 'Not reproduced'}: at batch {TABLE_BATCH} "
               f"the graph keeps {base / KIB:.0f} KiB alive for backward without BatchNorm, "
               f"{composed:.2f}x that with composed BatchNorm and {fused:.2f}x with fused "
               f"BatchNorm; a training step takes "
               + " / ".join(f"{1000 * seconds[k][column]:.1f}" for k in VARIANTS) + " ms.")
    return Findings(numbers, columns, rows, reproduced, verdict,
                    _plot(batch_sizes, per_layer, held, peak))


def _measure(kind: str, batch_size: int, seed: int, repeats: int) -> dict:
    """Graph bytes per layer, tracemalloc peak and median time of one training step."""
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
    result["seconds"] = float(np.median(times))
    return result


def held_for_backward(loss, network) -> dict:
    """Bytes the graph of ``loss`` keeps alive, keyed by layer ("Linear 1", "BatchNorm1d 1",
    ..., "loss" for nodes made outside the network), in forward order. Parameters are left
    out."""
    labels = _layer_labels(network)
    # Parameters (and views of them, such as a transposed weight) are not counted.
    counted = {id(memory_owner(p.data)) for p in network.parameters()}
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


def _plot(batch_sizes, per_layer: dict, held: dict, peak: dict):
    fig, (bar_ax, line_ax) = figure(2, width=6.2, height=4.4, title=(
        "Memory for backward: a 64-256-256-10 ReLU MLP, float32"))
    layers = list(per_layer["BatchNorm (composed)"])
    x = np.arange(len(layers))
    width = 0.8 / len(VARIANTS)
    for i, kind in enumerate(VARIANTS):
        values = [per_layer[kind].get(layer, 0) / KIB for layer in layers]
        bar_ax.bar(x + (i - 1) * width, values, width, color=COLORS[kind], label=kind)
    bar_ax.set_xticks(x, [layer.replace("BatchNorm1d", "BN") for layer in layers],
                      rotation=30, ha="right")
    bar_ax.set(ylabel="KiB kept alive by the graph",
               title=f"Held for backward per layer, batch {TABLE_BATCH}")
    bar_ax.legend()
    for kind in VARIANTS:
        line_ax.plot(batch_sizes, np.array(held[kind]) / KIB, "o-", color=COLORS[kind],
                     linewidth=2, label=f"{kind}: graph")
        line_ax.plot(batch_sizes, np.array(peak[kind]) / KIB, "s--", color=COLORS[kind],
                     linewidth=1, label=f"{kind}: step peak")
    line_ax.set_xscale("log", base=2)
    line_ax.set_xticks(batch_sizes, [str(b) for b in batch_sizes])
    line_ax.set(yscale="log", xlabel="batch size (log scale)",
                ylabel="KiB (log scale)",
                title="Graph held for backward (solid) and peak of a training step (dashed)")
    line_ax.legend(fontsize=8)
    return fig
