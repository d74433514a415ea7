"""Constructors: new tensors from a shape (``zeros``, ``rand``, ...), a range (``arange``,
``linspace``), or another tensor (``zeros_like``, ...), with PyTorch 2.13's names and semantics.

Each takes ``dtype=`` (None: the default float dtype, or what PyTorch infers -- int64 for an
integer ``arange``, ``randint`` and integer ``full``) and ``requires_grad=`` (floating dtypes
only). Sizes are given as ints or one tuple: ``zeros(2, 3)`` and ``zeros((2, 3))``. The random
ones draw from the shared generator that ``mg.manual_seed`` restarts (or from ``generator=``,
a NumPy Generator or an int seed)."""
from __future__ import annotations

import math
import numbers
import os

import numpy as np

from . import checks
from .dtypes import get_default_dtype
from .errors import ArgumentTypeError, DTypeError, OutOfMemoryError, ShapeError
from .random import generator as shared_generator
from .tensor import Tensor

__all__ = ["zeros", "ones", "full", "empty", "arange", "linspace", "eye", "rand", "randn",
           "randint", "zeros_like", "ones_like", "full_like", "rand_like", "randn_like"]


# ----------------------------------------------------------------------------------------------
# From a shape
# ----------------------------------------------------------------------------------------------

def zeros(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros: ``mg.zeros(2, 3)`` or ``mg.zeros((2, 3))``."""
    return _filled("zeros", size, 0, dtype, requires_grad)


def ones(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    return _filled("ones", size, 1, dtype, requires_grad)


def empty(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor whose values are whatever the memory held (fast; fill it before reading)."""
    shape = _shape("empty", size)
    dtype = _dtype("empty", dtype, requires_grad)
    return _leaf(_allocate("empty", shape, dtype, lambda: np.empty(shape, dtype)),
                 requires_grad)


def full(size, fill_value, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ``fill_value`` everywhere. Without ``dtype``, as in PyTorch: a bool fill
    gives bool, an int int64, a float the default float dtype, a complex complex128."""
    fill_value = _fill_value("full", fill_value)
    if dtype is None:
        dtype = _inferred_dtype(fill_value)
    return _filled("full", (size,), fill_value, dtype, requires_grad)


def eye(n, m=None, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """The ``n``-by-``m`` identity matrix (``m`` defaults to ``n``)."""
    n = _dimension("eye", "n", n)
    m = n if m is None else _dimension("eye", "m", m)
    dtype = _dtype("eye", dtype, requires_grad)
    return _leaf(_allocate("eye", (n, m), dtype, lambda: np.eye(n, m, dtype=dtype)),
                 requires_grad)


def _filled(owner: str, size, value, dtype, requires_grad) -> Tensor:
    shape = _shape(owner, size)
    dtype = _dtype(owner, dtype, requires_grad)
    value = _storable(owner, value, dtype)
    return _leaf(_allocate(owner, shape, dtype, lambda: np.full(shape, value, dtype)),
                 requires_grad)


# ----------------------------------------------------------------------------------------------
# Ranges
# ----------------------------------------------------------------------------------------------

def arange(start, end=None, step=1, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """``start, start + step, ...`` up to but excluding ``end``; ``arange(n)`` is 0 .. n-1.
    int64 when every bound is an int (and no dtype is given), else the default float dtype.
    An integer dtype truncates the bounds to ints first, as PyTorch does."""
    if end is None:
        start, end = 0, start
    bounds = {"start": start, "end": end, "step": step}
    for name, value in bounds.items():
        if not checks.is_real(value):
            checks.bad_argument("arange", name, "a real number", value, ArgumentTypeError)
        if not math.isfinite(value):
            checks.bad_argument("arange", name, "a finite number (the range must be bounded)",
                                value, ShapeError)
    if dtype is None:
        dtype = np.int64 if all(checks.is_integer(v) for v in bounds.values()) else None
    dtype = _dtype("arange", dtype, requires_grad, kinds="iuf")
    if dtype.kind in "iu":
        start, end, step = (int(v) for v in (start, end, step))
    if step == 0:
        checks.bad_argument("arange", "step", "nonzero", step, ShapeError)
    if (end - start) * step < 0:
        checks.bad_argument("arange", "step", f"of the sign of end - start ({end} - {start})",
                            step, ShapeError, detail="upper bound and lower bound inconsistent "
                            "with step sign")
    # PyTorch's length: ceil((end - start) / step), computed in double precision.
    count = max(math.ceil((float(end) - float(start)) / float(step)), 0)
    return _leaf(_allocate(
        "arange", (count,), dtype,
        lambda: (start + np.arange(count, dtype=np.float64 if dtype.kind == "f" else np.int64)
                 * step).astype(dtype)), requires_grad)


def linspace(start, end, steps, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end``, both included. Computed as
    PyTorch does -- the first half up from ``start``, the second half down from ``end`` -- so
    both ends are exact and the values agree with ``torch.linspace`` to rounding."""
    for name, value in (("start", start), ("end", end)):
        if not checks.is_real(value):
            checks.bad_argument("linspace", name, "a real number", value, ArgumentTypeError)
    if not checks.is_integer(steps):
        checks.bad_argument("linspace", "steps", "a non-negative integer", steps,
                            ArgumentTypeError)
    if steps < 0:
        checks.bad_argument("linspace", "steps", "a non-negative integer (the number of "
                            "steps)", steps, ShapeError)
    steps = int(steps)
    dtype = _dtype("linspace", dtype, requires_grad, kinds="iuf")
    if dtype.kind != "f" and not (math.isfinite(start) and math.isfinite(end)):
        checks.bad_argument("linspace", "start and end", f"finite for dtype {dtype}",
                            (start, end), DTypeError)
    compute = dtype if dtype.kind == "f" else np.dtype(np.float64)

    def make():
        position = np.arange(steps, dtype=compute)
        step = (compute.type(end) - compute.type(start)) / max(steps - 1, 1)
        with np.errstate(invalid="ignore"):  # inf or nan bounds give nan, as in PyTorch
            values = np.where((position < steps // 2) | (steps == 1), start + step * position,
                              end - step * (steps - 1 - position)).astype(compute)
        return values.astype(dtype)

    return _leaf(_allocate("linspace", (steps,), dtype, make), requires_grad)


# ----------------------------------------------------------------------------------------------
# Random, from the shared generator
# ----------------------------------------------------------------------------------------------

def rand(*size, dtype=None, requires_grad: bool = False, generator=None) -> Tensor:
    """Samples of the uniform distribution on [0, 1)."""
    return _random("rand", "uniform", _shape("rand", size), dtype, requires_grad, generator)


def randn(*size, dtype=None, requires_grad: bool = False, generator=None) -> Tensor:
    """Samples of the standard normal distribution."""
    return _random("randn", "normal", _shape("randn", size), dtype, requires_grad, generator)


def randint(low, high=None, size=None, *, dtype=None, requires_grad: bool = False,
            generator=None) -> Tensor:
    """Random integers in [low, high): ``randint(high, size)`` or ``randint(low, high, size)``
    (``size`` an int or a tuple). int64 unless ``dtype`` says otherwise."""
    if size is None and isinstance(high, (tuple, list)):  # randint(high, size)
        low, high, size = 0, low, high
    elif high is None:  # randint(high, size=...)
        low, high = 0, low
    if size is None:
        checks.bad_argument("randint", "size", "given (randint(high, size) or randint(low, "
                            "high, size))", size, ArgumentTypeError)
    low, high = checks.integer("randint", "low", low), checks.integer("randint", "high", high)
    if low >= high:
        checks.bad_argument("randint", "low", f"less than high={high} (the range [low, high) "
                            f"holds no integer)", low, RuntimeError)
    shape = _shape("randint", (size,))
    dtype = _dtype("randint", np.int64 if dtype is None else dtype, requires_grad,
                   kinds="iuf")
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if low < info.min or high - 1 > info.max:
            checks.bad_argument("randint", "low and high", f"within the range of {dtype} "
                                f"([{info.min}, {info.max}])", (low, high), DTypeError)
    rng = shared_generator(generator, "randint")
    return _leaf(_allocate(
        "randint", shape, dtype,
        lambda: rng.integers(low, high, shape, dtype=np.int64).astype(dtype, copy=False)),
        requires_grad)


def _random(owner: str, distribution: str, shape, dtype, requires_grad, rng) -> Tensor:
    dtype = _dtype(owner, dtype, requires_grad, kinds="f")  # PyTorch: not for integers
    rng = shared_generator(rng, owner)
    native = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)

    def make():
        if distribution == "normal":
            return rng.standard_normal(shape, dtype=native).astype(dtype, copy=False)
        values = rng.random(shape, dtype=native).astype(dtype, copy=False)
        # Rounding to a narrower dtype may reach 1: keep the interval half-open.
        return np.minimum(values, np.nextafter(dtype.type(1), dtype.type(0)))

    return _leaf(_allocate(owner, shape, dtype, make), requires_grad)


# ----------------------------------------------------------------------------------------------
# Like another tensor: its shape, and its dtype unless told otherwise
# ----------------------------------------------------------------------------------------------

def zeros_like(input, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """Zeros of ``input``'s shape (and dtype, unless ``dtype`` is given)."""
    shape, dtype = _like("zeros_like", input, dtype)
    return _filled("zeros_like", (shape,), 0, dtype, requires_grad)


def ones_like(input, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """Ones of ``input``'s shape (and dtype, unless ``dtype`` is given)."""
    shape, dtype = _like("ones_like", input, dtype)
    return _filled("ones_like", (shape,), 1, dtype, requires_grad)


def full_like(input, fill_value, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` in ``input``'s shape (and dtype, unless ``dtype`` is given)."""
    shape, dtype = _like("full_like", input, dtype)
    return _filled("full_like", (shape,), _fill_value("full_like", fill_value), dtype,
                   requires_grad)


def rand_like(input, *, dtype=None, requires_grad: bool = False, generator=None) -> Tensor:
    """``rand`` in ``input``'s shape (and dtype, which must be floating point)."""
    shape, dtype = _like("rand_like", input, dtype)
    return _random("rand_like", "uniform", shape, dtype, requires_grad, generator)


def randn_like(input, *, dtype=None, requires_grad: bool = False, generator=None) -> Tensor:
    """``randn`` in ``input``'s shape (and dtype, which must be floating point)."""
    shape, dtype = _like("randn_like", input, dtype)
    return _random("randn_like", "normal", shape, dtype, requires_grad, generator)


# ----------------------------------------------------------------------------------------------
# Argument checks and allocation
# ----------------------------------------------------------------------------------------------

def _shape(owner: str, size: tuple) -> tuple:
    """The sizes given as ints, or as one tuple or list of ints, as a tuple of ints >= 0."""
    if not size:
        checks.bad_argument(owner, "size", "given: ints or one tuple of ints (() for a 0-d "
                            "tensor)", None, ArgumentTypeError)
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(_dimension(owner, "size", n) for n in size)


def _dimension(owner: str, name: str, n) -> int:
    if not checks.is_integer(n):
        checks.bad_argument(owner, name, "ints or one tuple of ints", n, ArgumentTypeError)
    if n < 0:
        checks.bad_argument(owner, name, "non-negative (a dimension's size)", n, ShapeError)
    return int(n)


def _dtype(owner: str, dtype, requires_grad, kinds: str = "biufc") -> np.dtype:
    """``dtype`` checked (None: the default float dtype), and floating if ``requires_grad``."""
    dtype = get_default_dtype() if dtype is None else checks.dtype(owner, "dtype", dtype, kinds)
    if checks.boolean(owner, "requires_grad", requires_grad) and dtype.kind not in "fc":
        checks.bad_argument(owner, "requires_grad", f"False for dtype {dtype} (only "
                            f"floating-point tensors can require gradients)", requires_grad,
                            DTypeError)
    return dtype


def _fill_value(owner: str, value):
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, numbers.Number):
        checks.bad_argument(owner, "fill_value", "a number", value, ArgumentTypeError)
    return value


def _inferred_dtype(value) -> np.dtype:
    if isinstance(value, bool):
        return np.dtype(bool)
    if isinstance(value, numbers.Integral):
        return np.dtype(np.int64)
    if isinstance(value, complex):
        return np.dtype(np.complex128)
    return get_default_dtype()


def _storable(owner: str, value, dtype: np.dtype):
    """``value`` as ``dtype`` can hold it, or a DTypeError (nan into an int, 300 into uint8)."""
    if isinstance(value, complex) and dtype.kind != "c":
        checks.bad_argument(owner, "fill_value", f"a real number for dtype {dtype}", value,
                            DTypeError)
    if dtype.kind in "iu":
        if not math.isfinite(value):
            checks.bad_argument(owner, "fill_value", f"finite for dtype {dtype}", value,
                                DTypeError)
        info = np.iinfo(dtype)
        if not info.min <= int(value) <= info.max:
            checks.bad_argument(owner, "fill_value", f"within the range of {dtype} "
                                f"([{info.min}, {info.max}])", value, DTypeError)
        return int(value)
    return value


def _like(owner: str, input, dtype) -> tuple:
    if not isinstance(input, (Tensor, np.ndarray)):
        checks.bad_argument(owner, "input", "a Tensor", input, ArgumentTypeError)
    return input.shape, input.dtype if dtype is None else dtype


def _leaf(array: np.ndarray, requires_grad: bool) -> Tensor:
    return Tensor._make(array, bool(requires_grad), None)


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # not on this platform
        return None


def _allocate(owner: str, shape: tuple, dtype: np.dtype, make) -> np.ndarray:
    """``make()``, or an OutOfMemoryError naming the constructor when the array cannot exist:
    more bytes than the machine has (refused before trying, so a lazily committed array cannot
    bring the machine down while being filled), or than NumPy can address."""
    nbytes = math.prod(shape) * dtype.itemsize
    memory = _memory_bytes()
    try:
        if memory is not None and nbytes > memory:
            raise MemoryError(f"{nbytes:,} bytes, more than this machine's {memory:,}")
        return make()
    except (MemoryError, ValueError) as error:  # NumPy: out of memory, or "array is too big"
        raise OutOfMemoryError(f"{owner}: cannot allocate a tensor of shape {shape} "
                               f"({math.prod(shape):,} values of {dtype}): {error}") from None
