"""Gradient checking a BatchNorm MLP's parameters: full mode (every element, two forward passes
each) against fast mode (one random directional derivative per parameter tensor).

Run: ``python benchmarks/gradcheck_modes.py``. It prints median times of
``mg.gradcheck_module`` in both modes on a small BatchNorm MLP, their ratio, and the fast-mode
time on a ~100k-parameter BatchNorm MLP (target: about a second), next to what full mode would
take there (its forward-pass count times the measured time of one forward pass).

BLAS runs on one thread (unless the environment says otherwise): on a small shared machine a
multi-threaded (64, 256) @ (256, 256) product slows a hundredfold when other processes load the
cores, and the timings would measure the neighbours instead of the checker.
"""
from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # before NumPy loads its BLAS

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.functional as F  # noqa: E402
from minigrad import nn  # noqa: E402
from _timing import median_times, print_table  # noqa: E402

BATCH = 64
TARGET_SECONDS = 1.0  # fast mode on ~100k parameters


def batch_norm_mlp(sizes, seed=0):
    """Linear -> BatchNorm1d -> Tanh blocks, then a Linear head. Tanh rather than ReLU: with
    thousands of random pre-activations, some would sit within eps of ReLU's kink."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-2], sizes[1:-1])):
        layers += [nn.Linear(n_in, n_out, rng=seed + i), nn.BatchNorm1d(n_out), nn.Tanh()]
    layers.append(nn.Linear(sizes[-2], sizes[-1], rng=seed + len(sizes)))
    return nn.Sequential(*layers)


def problem(sizes):
    rng = np.random.default_rng(0)
    model = batch_norm_mlp(sizes)
    x = mg.tensor(rng.standard_normal((BATCH, sizes[0])))
    labels = rng.integers(0, sizes[-1], BATCH)
    return model, x, labels


def check(model, x, labels, fast_mode):
    return lambda: mg.gradcheck_module(model, F.cross_entropy, x, labels, fast_mode=fast_mode)


def parameter_count(model) -> int:
    return sum(p.size for p in model.parameters())


def main() -> None:
    small = problem((16, 32, 32, 10))
    count = parameter_count(small[0])
    # Full mode takes seconds a run: three runs, no warm-up, make its median.
    times = {**median_times({"full": check(*small, fast_mode=False)}, min_rounds=3,
                            min_total=0.0, warmup=0),
             **median_times({"fast": check(*small, fast_mode=True)})}
    print(f"BatchNorm MLP 16-32-32-10, batch {BATCH}, {count:,} parameters in "
          f"{len(list(small[0].parameters()))} tensors, train mode (medians):")
    print_table(["mode", "seconds", "forward passes"],
                [["full", f"{times['full']:.3f}", f"2 per element = {2 * count:,}"],
                 ["fast", f"{times['fast']:.4f}", "2 per parameter tensor"]])
    print(f"full / fast: {times['full'] / times['fast']:.0f}x\n")

    model, x, labels = big = problem((64, 256, 256, 128))
    count = parameter_count(model)
    fast = median_times({"fast": check(*big, fast_mode=True)})["fast"]
    with mg.no_grad():
        forward = median_times({"forward": lambda: F.cross_entropy(model(x), labels)},
                               min_rounds=20)["forward"]
    print(f"BatchNorm MLP 64-256-256-128, batch {BATCH}, {count:,} parameters:")
    print_table(["mode", "seconds"],
                [["fast (measured)", f"{fast:.3f}"],
                 ["full (estimated: 2 x parameters x one forward)", f"{2 * count * forward:.0f}"]])
    print(f"fast mode on {count:,} parameters: {fast:.2f} s (target about {TARGET_SECONDS} s: "
          f"{'met' if fast <= 1.5 * TARGET_SECONDS else 'MISSED'})")


if __name__ == "__main__":
    main()
