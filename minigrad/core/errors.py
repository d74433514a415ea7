"""The errors minigrad raises where PyTorch raises RuntimeError for the same mistake. Each also
subclasses the Python exception NumPy users expect, so either ``except`` catches it."""


class ShapeError(RuntimeError, ValueError):
    """Shapes that do not fit together: a broadcast, a matmul, an in-place write."""


class DTypeError(RuntimeError, TypeError):
    """A result that cannot be stored in the target's dtype (float into an integer tensor)."""


class AxisError(IndexError, ValueError):
    """An axis out of range for the tensor's number of dims (PyTorch: IndexError)."""


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong kind (a string or 2.5 where a size goes). PyTorch raises
    TypeError for some such mistakes and ValueError for others; either ``except`` catches it."""


class OutOfRangeError(IndexError, ValueError):
    """An index or class label outside its range (PyTorch: IndexError)."""


class OutOfMemoryError(RuntimeError, MemoryError):
    """An array too big to allocate (PyTorch: RuntimeError from its allocator)."""
