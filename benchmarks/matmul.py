"""float32 matrix products at the shapes a small network's Linear layers use, one thread each:
NumPy's OpenBLAS, OpenBLAS from the ``scipy-openblas32`` wheel (called through ctypes), BLIS
(the ``blis`` package), and PyTorch; GFLOP/s medians. The two wheels are measured only when
installed (``pip install scipy-openblas32 blis``); minigrad needs neither.

Layouts are those of a Linear layer with weight W (out, in): forward ``x @ W.T`` (NT), the
input's gradient ``g @ W`` (NN) and the weight's ``g.T @ x`` (TN), all on C-ordered arrays.

Run: ``python benchmarks/matmul.py`` (one BLAS thread unless ``OPENBLAS_NUM_THREADS`` says
otherwise: with 2 threads on this shared 2-core machine the small products collapse). ``OPENBLAS_CORETYPE=Haswell``
before it picks OpenBLAS's AVX2 kernels instead of the AVX-512 ones it detects.

What it showed here (2 shared AMD EPYC cores, AVX-512; NumPy 2.4's OpenBLAS 0.3.31): with one
thread, NumPy's sgemm matches or beats PyTorch's (MKL) at every shape and layout, about 70-100
GFLOP/s at batch 128; transposed views cost nothing (copying them first is slower);
OpenBLAS 0.3.34 from scipy-openblas32 is no faster, and BLIS is 2.5-3x slower. What is slow is
OpenBLAS's default of one thread per core on a loaded machine: 0.3-15 GFLOP/s on the same
products. Setting ``OPENBLAS_NUM_THREADS`` after NumPy is imported has no effect (use
threadpoolctl then, once: entering ``threadpool_limits`` costs about a millisecond).
"""
from __future__ import annotations

import ctypes
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads OpenBLAS

import numpy as np

from _timing import median_times, optional_torch, print_table

# (name, m, k, n, layout): the product is (m, k) @ (k, n) in the named layout.
CASES = [
    ("(128,256)@(256,256)", 128, 256, 256, "NN"),
    ("x@W.T  b128", 128, 256, 256, "NT"),
    ("g.T@x  b128", 256, 128, 256, "TN"),
    ("(2048,256)@(256,256)", 2048, 256, 256, "NN"),
    ("x@W.T  b2048", 2048, 256, 256, "NT"),
    ("g.T@x  b2048", 256, 2048, 256, "TN"),
    ("(128,64)@(64,256)", 128, 64, 256, "NT"),
    ("1024^3", 1024, 1024, 1024, "NN"),
]


def operands(m, k, n, layout, dtype=np.float32):
    """Arrays a, b stored the way the layout's op finds them, with a' @ b' the product, where
    a' is a or a.T (T in the layout's first letter) and likewise b'."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if layout[0] == "T" else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if layout[1] == "T" else (k, n)).astype(dtype)
    return a, b


def scipy_openblas32():
    """A ``gemm(a, b, ta, tb)`` on the scipy-openblas32 wheel's cblas_sgemm, or None."""
    try:
        import scipy_openblas32
    except ImportError:
        return None
    lib = ctypes.CDLL(os.path.join(scipy_openblas32.get_lib_dir(),
                                   "lib" + scipy_openblas32.get_library() + ".so"))
    lib.scipy_openblas_set_num_threads(1)
    sgemm = lib.scipy_cblas_sgemm
    i, f, p = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
    sgemm.argtypes = [i, i, i, i, i, i, f, p, i, p, i, f, p, i]
    sgemm.restype = None

    def gemm(a, b, ta, tb):
        m, k = (a.shape[1], a.shape[0]) if ta else a.shape
        n = b.shape[0] if tb else b.shape[1]
        out = np.empty((m, n), np.float32)
        sgemm(101, 112 if ta else 111, 112 if tb else 111, m, n, k, 1.0, a.ctypes.data,
              a.shape[1], b.ctypes.data, b.shape[1], 0.0, out.ctypes.data, n)
        return out
    return gemm


def candidates():
    """{name: (a, b, ta, tb) -> product} for everything installed."""
    found = {"numpy @": lambda a, b, ta, tb: (a.T if ta else a) @ (b.T if tb else b),
             # the transposed operand copied to C order first: does OpenBLAS prefer one layout?
             "numpy @ copied": lambda a, b, ta, tb: (np.ascontiguousarray(a.T) if ta else a)
             @ (np.ascontiguousarray(b.T) if tb else b)}
    gemm = scipy_openblas32()
    if gemm is not None:
        found["scipy-openblas32"] = gemm
    try:
        import blis.py
        found["blis"] = lambda a, b, ta, tb: blis.py.gemm(a, b, trans1=ta, trans2=tb)
    except ImportError:
        pass
    torch = optional_torch()
    if torch is not None:
        torch.set_num_threads(1)
        found["torch"] = lambda a, b, ta, tb: torch.mm(
            torch.from_numpy(a).T if ta else torch.from_numpy(a),
            torch.from_numpy(b).T if tb else torch.from_numpy(b))
    return found


def main() -> int:
    from threadpoolctl import threadpool_info
    print("BLAS:", ", ".join(f"{i['prefix']} {i['version']} {i['architecture']} "
                             f"threads={i['num_threads']}" for i in threadpool_info()))
    found = candidates()
    rows = []
    for name, m, k, n, layout in CASES:
        a, b = operands(m, k, n, layout)
        ta, tb = layout[0] == "T", layout[1] == "T"
        reference = found["numpy @"](a, b, ta, tb)
        for cand, fn in found.items():
            got = np.asarray(fn(a, b, ta, tb))
            assert np.allclose(got, reference, rtol=1e-3, atol=1e-2), (cand, name)
        times = median_times({c: (lambda fn=fn: fn(a, b, ta, tb)) for c, fn in found.items()},
                             min_rounds=15, min_total=0.5)
        flops = 2.0 * m * k * n
        rows.append([name, layout] + [f"{flops / times[c] / 1e9:.1f}" for c in found])
    print_table(["shape", "layout"] + list(found), rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
