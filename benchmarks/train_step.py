"""One training step of a small BatchNorm MLP, float32: minigrad with fused BN, minigrad with
composed BN, PyTorch (if installed) and the same network written by hand in NumPy.

Network: 64 -> Linear -> BN -> ReLU -> Linear -> BN -> ReLU -> Linear -> 10 (256 hidden units),
softmax cross-entropy, plain SGD, batch 128. Every implementation starts from the same weights
and is checked to take the same step before it is timed.

Run: ``python benchmarks/train_step.py``. minigrad runs with its compiled kernels on and off
(``minigrad.kernels.use_kernels``); one BLAS thread and one PyTorch thread. Targets: minigrad
fused at or below PyTorch's time, minigrad composed within 1.5x of it; issue 15's: fused (kernels
on) at most PyTorch's time and at most 1.1x the hand-written NumPy step.

Where the fused step's time goes (kernels on; profiled with cProfile and timed phase by phase,
medians of hundreds of steps; the same network at 4 -> 8 -> 8 -> 10, batch 8, where arithmetic
costs nothing, measures the Python alone). The matrix products -- the same BLAS calls as the
NumPy step -- take about 0.63 ms of the step; the NumPy step spends 0.19 ms on everything else,
minigrad about 0.55 ms. At the tiny size minigrad's step takes 280 us and NumPy's 92 us: nearly
all of the gap to NumPy is Python overhead, paid per node:

- BatchNorm1d (fused): about 29 us per layer in the forward (its argument checks, kernel
  dispatch and running statistics) and 7.5 us in the backward: the largest cost per node;
- a Linear layer: 5-7 us (matmul 1.1 us; Module.__call__, linear's checks, Function.apply and
  save_for_backward the rest); ReLU 5 us; the backward engine about 2.7 us per node besides the
  ops' own backward (Linear 2.4-4.6 us, ReLU 1.5, LogSoftmax 3.6, NLLLoss 2.4);
- cross_entropy 23 us at the tiny size (29 us at (128, 10), 10 us of it NumPy's reductions over
  a 10-wide axis, which the NumPy step pays as well);
- the SGD step about 2.2 us per parameter, 1.4 us of it NumPy's own work.

Cut without dropping a check (scope set without a context-manager object per module call,
cross_entropy calling LogSoftmax directly, one test for linear's parameters before the detailed
checks, version checks that build their message only to raise, no view search for arrays a
kernel owns): the tiny step went from 280 to 257 us, cross_entropy from 23 to 18.5 us; the
full-size step by 1-3% (min over rounds: 1.17-1.20 ms before, 1.14-1.19 ms after, against
0.96-0.98 ms for the NumPy step in the same processes). The 1.1x target needs the remaining
per-node overhead roughly halved, BatchNorm's first.
"""
from __future__ import annotations

import numpy as np

import minigrad as mg
from minigrad import nn, optim
from minigrad.training import build_model, train_step
from _reference import NumpyMLP
from _timing import (check_same_step, kernels_note, kernels_switch, machine_note, median_times,
                     one_thread, optional_torch, print_table, torch_training_step, verdict)

BATCH, LR = 128, 0.1
TARGETS = {"minigrad fused": 1.0, "minigrad composed": 1.5}  # vs PyTorch, either kernel setting
NUMPY_TARGET = 1.1  # issue 15: fused, kernels on, vs the NumPy step by hand


def minigrad_runner(fused: bool, kernels_on: bool, state, x, labels):
    model = build_model("mlp", fused=fused)
    model.load_state_dict(state)
    optimizer = optim.SGD(model.parameters(), lr=LR)
    features, targets = mg.Tensor(x), mg.Tensor(labels)
    step = kernels_switch(kernels_on, lambda: train_step(model, optimizer, features, targets)[0])
    return step, model.parameters


def torch_runner(torch, state, x, labels):
    layers = torch.nn
    model = layers.Sequential(
        layers.Linear(64, 256, bias=False), layers.BatchNorm1d(256), layers.ReLU(),
        layers.Linear(256, 256, bias=False), layers.BatchNorm1d(256), layers.ReLU(),
        layers.Linear(256, 10))
    model.load_state_dict({name: torch.from_numpy(np.array(value)) for name, value in
                           state.items()})
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    step = torch_training_step(torch, model, optimizer, torch.from_numpy(x),
                               torch.from_numpy(labels))
    return step, model.parameters


def numpy_runner(state, x, labels):
    params = [np.array(value) for name, value in state.items()
              if not name.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    model = NumpyMLP(params, lr=LR)
    return (lambda: model.step(x, labels)), (lambda: params)


def main() -> int:
    torch = optional_torch()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 64)).astype(np.float32)
    labels = rng.integers(0, 10, BATCH)
    nn.manual_seed(0)
    state = {name: np.array(value) for name, value in build_model("mlp").state_dict().items()}

    def make_runners():
        runners = {}
        for fused in (True, False):
            for on in (True, False):
                name = f"minigrad {'fused' if fused else 'composed'} kernels {'on' if on else 'off'}"
                runners[name] = minigrad_runner(fused, on, state, x, labels)
        runners["numpy by hand"] = numpy_runner(state, x, labels)
        if torch is not None:
            runners["pytorch"] = torch_runner(torch, state, x, labels)
        return runners

    check_same_step(make_runners(), steps=2)
    times = median_times({name: step for name, (step, _) in make_runners().items()},
                         min_rounds=15, calls=10, min_total=3.0)
    numpy_time, torch_time = times["numpy by hand"], times.get("pytorch")
    rows = []
    for name, seconds in times.items():
        kind = " ".join(name.split()[:2])
        if torch_time is None:
            vs_torch = "n/a (no PyTorch)"
        elif kind in TARGETS:
            vs_torch = verdict(seconds / torch_time, TARGETS[kind])
        else:
            vs_torch = f"{seconds / torch_time:.2f}x"
        rows.append([name, f"{seconds * 1e3:.3f}", vs_torch, f"{seconds / numpy_time:.2f}x"])
    print(f"training step, MLP 64-256-BN-ReLU-256-BN-ReLU-10, batch {BATCH}, float32, SGD "
          f"(median of repeats)")
    print(machine_note())
    print(kernels_note())
    print_table(["implementation", "ms", "vs pytorch", "vs numpy by hand"], rows)
    fused = times["minigrad fused kernels on"]
    print("issue 15 targets (minigrad fused, kernels on):")
    if torch_time is None:
        print("  vs PyTorch: not checked, PyTorch is not installed")
    else:
        print("  vs PyTorch " + verdict(fused / torch_time, 1.0))
    print("  vs NumPy by hand " + verdict(fused / numpy_time, NUMPY_TARGET))
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
