"""Tensor: a NumPy array plus what autograd needs (grad, grad_fn, requires_grad).

Operators and methods are thin: each one calls an op from ``ops.py``, which holds the forward
and backward side by side.
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["Tensor", "tensor", "set_default_dtype", "get_default_dtype"]

_default_dtype = np.dtype(np.float64)


def set_default_dtype(dtype) -> None:
    """Set the dtype of new float tensors and parameters (float64 unless changed).

    float64 is the default because finite-difference gradient checks need it; switch to
    ``np.float32`` for speed."""
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: expected a floating dtype, got {dtype}")
    _default_dtype = dtype


def get_default_dtype() -> np.dtype:
    return _default_dtype


def resolve_dtype(dtype) -> np.dtype:
    """``dtype`` as a NumPy dtype; None means the default dtype (what new parameters,
    buffers and batches get)."""
    return _default_dtype if dtype is None else np.dtype(dtype)


def _to_array(data, dtype) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    from_numpy = isinstance(data, (np.ndarray, np.generic))
    array = np.asarray(data)
    if not from_numpy and array.dtype.kind == "f" and array.dtype != _default_dtype:
        # Python floats become the default dtype; NumPy arrays keep theirs.
        array = array.astype(_default_dtype)
    if array.dtype.kind not in "biufc":  # objects, strings, dates: not numbers
        raise TypeError(f"Tensor: cannot make a tensor from {type(data).__name__} {data!r:.80}")
    return array


class Tensor:
    """An n-dimensional array that can record the ops applied to it and backpropagate.

    ``Tensor(data, requires_grad=False, dtype=None)`` wraps ``data`` (a list, number, ndarray
    or Tensor) without copying when it can; ``mg.tensor`` always copies. Floating tensors can
    require grad; integer and bool tensors (labels, indices, masks) cannot.
    """

    __slots__ = ("data", "grad", "grad_fn", "requires_grad", "name", "__weakref__")
    # NumPy must not treat a Tensor as an array in ``ndarray * tensor``: defer to our operators.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _to_array(data, dtype)
        self.grad = None
        self.grad_fn = None
        self.name = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data: np.ndarray, requires_grad: bool, grad_fn) -> "Tensor":
        """Fast path for ops: no validation, no copying."""
        t = object.__new__(cls)
        t.data = data
        t.grad = None
        t.grad_fn = grad_fn
        t.requires_grad = requires_grad
        t.name = None
        return t

    # -- attributes ---------------------------------------------------------------------------

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self):
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __array__(self, dtype=None, copy=None):
        # np.array(t) asks for copy=True and must not get an alias of t's data.
        return np.array(self.data, dtype=dtype, copy=copy)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self.data.dtype.kind not in "fc":
            raise TypeError(f"only floating-point tensors can require grad, this one is "
                            f"{self.data.dtype} (labels and indices never need a gradient)")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor: use .detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self) -> "Tensor":
        """The same data, cut out of the graph."""
        return Tensor._make(self.data, False, None)

    def astype(self, dtype) -> "Tensor":
        return ops.Cast.apply(self, dtype=np.dtype(dtype))

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="tensor(", precision=4)
        extras = []
        if self.data.dtype != _default_dtype and self.data.dtype.kind == "f":
            extras.append(f"dtype={self.data.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    # Tensors are graph nodes: hashed by identity, although == compares elementwise.
    __hash__ = object.__hash__

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.data)

    def __float__(self):  # .item(): NumPy 2 refuses float() of a 1-element array of ndim > 0
        return float(self.data.item())

    def __int__(self):
        return int(self.data.item())

    # -- autograd -----------------------------------------------------------------------------

    def backward(self, grad=None, *, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``grad`` is d(loss)/d(self); it may be omitted only when ``self`` holds one element.
        Gradients add up across calls until zeroed (``t.grad = None`` or an optimizer's
        ``zero_grad``). ``create_graph=True`` records the backward ops, so the gradients can be
        differentiated again.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad and has no grad_fn -- "
                               "no input of the computation had requires_grad=True (or it ran "
                               "under no_grad)")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward: grad can be implicitly created only for a "
                                   f"single-element output, this one has shape {self.shape}; "
                                   f"pass grad= of the same shape (or call .sum() first)")
            shape, dtype = self.data.shape, self.data.dtype
            # (a 0-d loss is the common case, and np.array makes its 1 five times as fast)
            ones = np.array(1, dtype) if shape == () else np.ones(shape, dtype)
            grad = Tensor._make(ones, False, None)
        else:
            grad = grad if isinstance(grad, Tensor) else Tensor(grad, dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward: grad has shape {grad.shape}, the tensor has shape "
                                 f"{self.shape}")
        if self.grad_fn is None:
            leaf_grads = {self: grad}
        else:
            leaf_grads = autograd.backpropagate(self, grad, create_graph=create_graph)
        # Add hands one gradient array to both its inputs, Reshape a view of it: give every leaf
        # memory of its own (not shared with another leaf or the caller's grad), so writing into
        # one .grad cannot change another.
        handed_out = {id(memory_owner(grad.data))}
        for leaf, g in leaf_grads.items():
            if not create_graph:
                owner = id(memory_owner(g.data))
                if g.requires_grad or not g.data.flags.writeable or owner in handed_out:
                    # Detached, and a real array rather than a read-only broadcast view.
                    g = Tensor._make(np.array(g.data), False, None)
                    owner = id(g.data)
                handed_out.add(owner)
            leaf.grad = g if leaf.grad is None else leaf.grad + g

    # -- arithmetic (NumPy broadcasting; Python numbers keep the tensor's dtype) -----------------

    def __add__(self, other):
        return ops.binary(ops.Add, self, other)

    def __radd__(self, other):
        return ops.binary(ops.Add, other, self)

    def __sub__(self, other):
        return ops.binary(ops.Sub, self, other)

    def __rsub__(self, other):
        return ops.binary(ops.Sub, other, self)

    def __mul__(self, other):
        return ops.binary(ops.Mul, self, other)

    def __rmul__(self, other):
        return ops.binary(ops.Mul, other, self)

    def __truediv__(self, other):
        return ops.binary(ops.Div, self, other)

    def __rtruediv__(self, other):
        return ops.binary(ops.Div, other, self)

    def __pow__(self, exponent):
        return ops.power(self, exponent)

    def __rpow__(self, base):
        return ops.power(base, self)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __neg__(self):
        return ops.Neg.apply(self)

    def __pos__(self):
        return self

    # Comparisons give constant bool tensors (masks), outside the graph.
    def __lt__(self, other):
        return Tensor._make(self.data < _raw(other), False, None)

    def __le__(self, other):
        return Tensor._make(self.data <= _raw(other), False, None)

    def __gt__(self, other):
        return Tensor._make(self.data > _raw(other), False, None)

    def __ge__(self, other):
        return Tensor._make(self.data >= _raw(other), False, None)

    def __eq__(self, other):
        return Tensor._make(self.data == _raw(other), False, None)

    def __ne__(self, other):
        return Tensor._make(self.data != _raw(other), False, None)

    # -- elementwise functions ------------------------------------------------------------------

    def exp(self):
        return ops.Exp.apply(self)

    def log(self):
        return ops.Log.apply(self)

    def sqrt(self):
        return ops.Sqrt.apply(self)

    def abs(self):
        return ops.Abs.apply(self)

    def tanh(self):
        return ops.Tanh.apply(self)

    def sigmoid(self):
        return ops.Sigmoid.apply(self)

    def relu(self):
        return ops.Relu.apply(self)

    # -- reductions -----------------------------------------------------------------------------

    def sum(self, axis=None, keepdims: bool = False):
        return ops.Sum.apply(self, axis=ops.normalize_axis(axis, self.ndim, "sum"),
                             keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        return ops.Mean.apply(self, axis=ops.normalize_axis(axis, self.ndim, "mean"),
                              keepdims=keepdims)

    def var(self, axis=None, keepdims: bool = False, ddof: int = 0):
        return ops.Var.apply(self, axis=ops.normalize_axis(axis, self.ndim, "var"),
                             keepdims=keepdims, ddof=ddof)

    def max(self, axis=None, keepdims: bool = False):
        return ops.Max.apply(self, axis=ops.normalize_axis(axis, self.ndim, "max"),
                             keepdims=keepdims)

    # -- movement -------------------------------------------------------------------------------

    def reshape(self, *shape):
        return ops.reshape(self, shape[0] if len(shape) == 1 and not isinstance(
            shape[0], numbers.Integral) else shape)

    def transpose(self, *axes):
        if len(axes) == 1 and not isinstance(axes[0], numbers.Integral):
            axes = axes[0]
        return ops.transpose(self, tuple(axes) if axes else None)

    @property
    def T(self):
        return ops.transpose(self, None)

    def broadcast_to(self, shape):
        return ops.broadcast_to(self, tuple(shape))

    def __getitem__(self, index):
        return ops.getitem(self, index)


def _raw(value):
    return value.data if isinstance(value, Tensor) else value


def memory_owner(array: np.ndarray) -> np.ndarray:
    """The array that owns the memory ``array`` uses: itself, or the array it is a view of.
    (Who shares memory with whom: leaf gradients, the graph drawer, the memory experiment.)"""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """Make a new tensor holding a copy of ``data`` (like ``torch.tensor``)."""
    array = _to_array(data, dtype)
    return Tensor(array.copy() if isinstance(data, (np.ndarray, Tensor)) else array,
                  requires_grad=requires_grad)


from . import autograd, ops  # noqa: E402  (both need the Tensor class defined above)
