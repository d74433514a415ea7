"""Run every benchmark script in this folder, one after another (``make benchmark``).

Scripts run one at a time in their own process, so none measures while another loads the
machine. Helpers (names starting with ``_``) are not scripts. Exit status: the number of
scripts that failed.
"""
from __future__ import annotations

import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent


def scripts() -> list:
    return sorted(path for path in HERE.glob("*.py")
                  if not path.name.startswith("_") and path.name != pathlib.Path(__file__).name)


def main() -> int:
    failed = []
    for script in scripts():
        print(f"=== {script.name}", flush=True)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, str(script)], cwd=HERE)
        print(f"=== {script.name}: {'ok' if result.returncode == 0 else 'FAILED'} "
              f"in {time.perf_counter() - started:.1f} s\n", flush=True)
        if result.returncode:
            failed.append(script.name)
    if failed:
        print("failed: " + ", ".join(failed))
    return len(failed)


if __name__ == "__main__":
    sys.exit(main())
