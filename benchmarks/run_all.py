"""Run every benchmark script in this folder, one after another (``make benchmark``).

Scripts run one at a time in their own process, so none measures while another loads the
machine. Helpers (names starting with ``_``) are not scripts. Exit status: the number of
scripts that failed.

Every script runs with one BLAS thread (``OPENBLAS_NUM_THREADS=1`` and friends, set here before
NumPy loads) and one PyTorch thread, so neither side's idle threads slow the other.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent


def scripts() -> list:
    return sorted(path for path in HERE.glob("*.py")
                  if not path.name.startswith("_") and path.name != pathlib.Path(__file__).name)


def main() -> int:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    failed = []
    for script in scripts():
        print(f"=== {script.name}", flush=True)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, str(script)], cwd=HERE, env=env)
        print(f"=== {script.name}: {'ok' if result.returncode == 0 else 'FAILED'} "
              f"in {time.perf_counter() - started:.1f} s\n", flush=True)
        if result.returncode:
            failed.append(script.name)
    if failed:
        print("failed: " + ", ".join(failed))
    return len(failed)


if __name__ == "__main__":
    sys.exit(main())
