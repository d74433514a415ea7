"""What every benchmark script shares: timing by medians of repeats, and a plain-text table.

Machines are noisy (two shared cores here), so a single run means little. ``median_times``
runs the functions being compared in turns, a few calls of each per round, so a burst of load
from elsewhere slows all of them alike and their ratios stay meaningful; consecutive calls
within a round let each one run with its own caches and threads warm. It reports each
function's median call time.
"""
from __future__ import annotations

import contextlib
import os
import statistics
import time


def median_times(functions: dict, min_rounds: int = 9, min_total: float = 1.0, warmup: int = 2,
                 calls: int = 1, number: int = 1) -> dict:
    """``{name: median wall time of fn() in seconds}`` for ``{name: fn}``: at least
    ``min_rounds`` rounds (more until ``min_total`` seconds have passed) of ``calls`` samples of
    each function. A sample times ``number`` back-to-back calls and divides: for functions of a
    few microseconds, one call alone mostly measures the cache misses left by the previous
    function."""
    for fn in functions.values():
        for _ in range(warmup):
            fn()
    times: dict = {name: [] for name in functions}
    started = time.perf_counter()
    done = 0
    while done < min_rounds or time.perf_counter() - started < min_total:
        for name, fn in functions.items():
            for _ in range(calls):
                begin = time.perf_counter()
                for _ in range(number):
                    fn()
                times[name].append((time.perf_counter() - begin) / number)
        done += 1
    return {name: statistics.median(samples) for name, samples in times.items()}


def print_table(header: list, rows: list) -> None:
    """Columns right-aligned to their widest cell."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for index, row in enumerate(cells):
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths)))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def verdict(ratio: float, target: float) -> str:
    return f"{ratio:.2f}x (target <= {target}x: {'met' if ratio <= target else 'MISSED'})"


def optional_torch():
    """PyTorch if installed (it is only a peer to compare with), else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def one_thread(torch=None) -> None:
    """One thread for NumPy's BLAS and for PyTorch, for the rest of the process.

    Multi-threaded OpenBLAS leaves its threads spinning after a product, and on a two-core
    machine they steal PyTorch's cores: PyTorch then looks several times slower than it is.
    With one thread each, every side gets one core and the comparison is fair. threadpoolctl
    (installed with scikit-learn) limits a BLAS already loaded; ``run_all.py`` also sets
    ``OPENBLAS_NUM_THREADS=1`` before any script starts, for when it is missing."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        pass
    else:
        threadpool_limits(1)
    if torch is not None:
        torch.set_num_threads(1)


def torch_training_step(torch, model, optimizer, features, targets):
    """One PyTorch SGD step of ``model`` on a batch as a function returning the loss: the
    PyTorch side of the training-step benchmarks."""
    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(features), targets)
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def kernels_switch(on: bool, fn):
    """``fn`` run with minigrad's compiled kernels switched on or off (and the previous setting
    restored after), so both paths can be timed in turns within one run. "On" without Numba
    installed stays off: ``kernels_note()`` says so in the output."""
    from minigrad import kernels

    def run():
        with kernels.use_kernels(on):
            return fn()
    return run


def kernels_note() -> str:
    """One line for the output: whether the "kernels on" rows really ran compiled kernels."""
    from minigrad import kernels
    if not kernels.available():
        return "Numba is not installed: the 'kernels on' rows ran the NumPy path too"
    return "kernels on = minigrad's Numba kernels; kernels off = use_kernels(False), NumPy path"


def machine_note() -> str:
    """Cores, CPU model and load, printed with each table (timings depend on all three)."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, {model}, "
            f"load average {load}; one BLAS thread, torch.set_num_threads(1)")



def check_same_step(runners: dict, steps: int) -> None:
    """Before timing: each implementation's first ``steps`` losses and its weights afterwards
    match minigrad's NumPy path ("minigrad fused kernels off"), so every row times the same
    computation. ``runners`` maps a name to (step() -> loss, params() -> arrays or tensors)."""
    import numpy as np

    def arrays(params):
        return [np.array(p.detach().numpy() if hasattr(p, "detach") else getattr(p, "data", p))
                for p in params()]

    results = {name: ([step() for _ in range(steps)], arrays(params))
               for name, (step, params) in runners.items()}
    base_losses, base_params = results["minigrad fused kernels off"]
    for name, (losses, params) in results.items():
        if not np.allclose(losses, base_losses, rtol=1e-4):
            raise AssertionError(f"{name}: losses {losses} differ from {base_losses}")
        for got, want in zip(params, base_params):
            if not np.allclose(got, want, rtol=1e-3, atol=1e-5):
                raise AssertionError(f"{name}: weights after {steps} steps differ by "
                                     f"{np.abs(got - want).max():.3g}")
