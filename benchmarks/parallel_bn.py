"""Does a parallel compiled BatchNorm backward pay here? The kernels are single-threaded; this
times the (N, C) backward (``minigrad.kernels.batchnorm._backward_rows``) against the same
kernels run on column halves by Numba's ``prange`` threads, at the large sizes where a second
core could help, float32.

Run: ``python benchmarks/parallel_bn.py`` (needs Numba). Prints medians of repeats, the two taking
turns, and the ratio parallel / serial (below 1: the parallel variant is faster). The kernels
stay single-threaded unless it is clearly below 1: on a two-core machine the second thread
competes with OpenBLAS's threads and with whatever else runs.
"""
from __future__ import annotations

import sys

import numpy as np

from _timing import machine_note, median_times, one_thread, print_table

try:
    import numba
    from numba import prange
except ImportError:
    print('parallel_bn.py needs Numba (pip install "minigrad[fast]"): nothing to time')
    sys.exit(0)
from minigrad.kernels import batchnorm as compiled  # noqa: E402

SIZES = [(1024, 1024), (8192, 1024)]


@numba.njit(parallel=True, cache=True)
def backward_in_parallel(grad, x, hi, lo, invstd, scale, out, parts):
    """``_backward_rows`` with the columns cut in ``parts`` blocks, one per thread: each block's
    sums, then its d x (the columns are independent, so the blocks share nothing)."""
    n, m = x.shape[0], x.shape[2]
    sum_g, sum_gh = np.zeros(m), np.zeros(m)
    mean_g, mean_gh = np.zeros(m, x.dtype), np.zeros(m, x.dtype)
    step = (m + parts - 1) // parts
    for part in prange(parts):
        start, stop = part * step, min(m, (part + 1) * step)
        compiled._gradient_sums(0, grad, x, hi, lo, invstd, start, stop, sum_g, sum_gh)
        for j in range(start, stop):
            mean_g[j], mean_gh[j] = sum_g[j] / n, sum_gh[j] / n
        compiled._input_gradient(0, grad, x, hi, lo, invstd, scale, mean_g, mean_gh, start,
                                 stop, out)
    return sum_gh, sum_g


def main() -> int:
    one_thread()
    threads = numba.config.NUMBA_NUM_THREADS
    rng = np.random.default_rng(0)
    rows = []
    for shape in SIZES:
        x = rng.standard_normal(shape).astype(np.float32)
        grad = rng.standard_normal(shape).astype(np.float32)
        columns = shape[1]
        hi, lo = np.zeros(columns, np.float32), np.zeros(columns, np.float32)
        invstd = weight = np.ones(columns, np.float32)  # (so invstd * weight is invstd)
        def view(a):  # (N, C) as the kernels' (N, 1, C)
            return compiled._layout(a, True)
        serial_out, parallel_out = np.empty_like(x), np.empty_like(x)

        def serial():
            return compiled._backward_rows(view(grad), view(x), hi, lo, invstd, weight, True,
                                           view(serial_out))

        def parallel():
            return backward_in_parallel(view(grad), view(x), hi, lo, invstd, invstd,
                                        view(parallel_out), threads)

        serial(), parallel()
        np.testing.assert_allclose(parallel_out, serial_out, rtol=1e-6, atol=1e-6)
        times = median_times({"serial": serial, "parallel": parallel}, min_rounds=15)
        rows.append([str(shape), f"{times['serial'] * 1e3:.3f}", f"{times['parallel'] * 1e3:.3f}",
                     f"{times['parallel'] / times['serial']:.2f}x"])
    print(f"compiled BatchNorm backward, (N, C) float32: serial vs {threads} Numba threads "
          f"(median of repeats)")
    print(machine_note())
    print_table(["size", "serial ms", "parallel ms", "parallel / serial"], rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
