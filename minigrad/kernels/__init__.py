"""Compiled kernels for the library's hottest ops (fused BatchNorm, im2col/col2im, pooling),
written with Numba: one pass over memory where NumPy makes several. Optional: install with
``pip install "minigrad[fast]"``. Without Numba, or switched off, every op runs its NumPy code,
which stays the reference the kernels are tested against.

The one switch: ``minigrad.kernels.use_kernels(False)`` (a call, or a context manager that
restores the previous setting), or the environment variable ``MINIGRAD_KERNELS=0`` before
import. ``minigrad.kernels.enabled()`` says whether kernels run now.

Kernels are used only on a first-order backward's arrays and in forwards; a backward recorded
for higher-order gradients (``create_graph=True``) runs the ops' Tensor code, so second
derivatives never depend on a kernel."""
from __future__ import annotations

import importlib.util
import os

__all__ = ["available", "enabled", "use_kernels"]

_AVAILABLE = importlib.util.find_spec("numba") is not None
_enabled = _AVAILABLE and os.environ.get("MINIGRAD_KERNELS", "1") != "0"


def available() -> bool:
    """Whether Numba is installed (the kernels can run)."""
    return _AVAILABLE


def enabled() -> bool:
    """Whether the kernels run now: Numba installed and the switch on."""
    return _enabled


class use_kernels:
    """Switch the kernels on or off, process-wide: ``use_kernels(False)`` as a call, or
    ``with use_kernels(False): ...`` to restore the previous setting afterwards. Switching on
    without Numba installed keeps them off (``enabled()`` stays False)."""

    def __init__(self, on: bool):
        global _enabled
        from ..core.checks import boolean
        self.previous = _enabled
        _enabled = boolean("use_kernels", "on", on) and _AVAILABLE

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _enabled
        _enabled = self.previous
        return False
