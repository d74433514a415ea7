"""One training step of a small BatchNorm MLP, float32: minigrad with fused BN, minigrad with
composed BN, PyTorch (if installed) and the same network written by hand in NumPy.

Network: 64 -> Linear -> BN -> ReLU -> Linear -> BN -> ReLU -> Linear -> 10 (256 hidden units),
softmax cross-entropy, plain SGD, batch 128. Every implementation starts from the same weights
and is checked to take the same step before it is timed.

Run: ``python benchmarks/train_step.py``. minigrad runs with its compiled kernels on and off
(``minigrad.kernels.use_kernels``); one BLAS thread and one PyTorch thread. Targets: minigrad
fused at or below PyTorch's time, minigrad composed within 1.5x of it; issue 15's: fused (kernels
on) at most PyTorch's time and at most 1.1x the hand-written NumPy step.
"""
from __future__ import annotations

import numpy as np

import minigrad as mg
from minigrad import nn, optim
from minigrad.training import build_model, train_step
from _reference import NumpyMLP
from _timing import (check_same_step, kernels_note, kernels_switch, machine_note, median_times,
                     one_thread, optional_torch, print_table, verdict)

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
    features, targets = torch.from_numpy(x), torch.from_numpy(labels)

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(features), targets)
        loss.backward()
        optimizer.step()
        return loss.item()
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
