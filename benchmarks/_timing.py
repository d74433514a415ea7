"""What every benchmark script shares: timing by medians of repeats, and a plain-text table.

Machines are noisy (two shared cores here), so a single run means little. ``median_times``
runs the functions being compared in turns, a few calls of each per round, so a burst of load
from elsewhere slows all of them alike and their ratios stay meaningful; consecutive calls
within a round let each one run with its own caches and threads warm. It reports each
function's median call time.
"""
from __future__ import annotations

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
