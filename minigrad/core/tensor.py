"""Tensor: a NumPy array plus what autograd needs (grad, grad_fn, requires_grad, a version).

Operators and methods are thin: each calls an op from ``ops/``, where forward and backward sit
side by side. In-place methods (``add_``, ``+=``, ``t[i] = v``, ...) write into the tensor's
memory and bump its version counter, so a backward that needs the old value can tell it is gone.
"""
from __future__ import annotations

import numbers
import operator
import warnings

import numpy as np

from . import checks
from .dtypes import get_default_dtype, resolve_dtype, set_default_dtype, to_array
from .errors import DTypeError, ShapeError

__all__ = ["Tensor", "tensor", "set_default_dtype", "get_default_dtype", "resolve_dtype",
           "as_array", "memory_owner"]

def as_array(value):
    """A Tensor's array; anything else as it is (numbers, arrays, indices)."""
    return value.data if isinstance(value, Tensor) else value


def memory_owner(array: np.ndarray) -> np.ndarray:
    """The array that owns the memory ``array`` uses: itself, or the array it is a view of.
    (Views share a version counter; leaf gradients must not share memory.)"""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


class Tensor:
    """An n-dimensional array that can record the ops applied to it and backpropagate.

    ``Tensor(data, requires_grad=False, dtype=None)`` wraps ``data`` (a list, number, ndarray
    or Tensor) without copying when it can; ``mg.tensor`` always copies. Floating tensors can
    require grad; integer and bool tensors (labels, indices, masks) cannot.

    ``t.data`` is the NumPy array itself. Writing into it is the unchecked escape hatch, as in
    PyTorch: the version counter does not see it, so a graph that saved the old values
    silently computes with the new ones. Change tensors through the in-place methods instead.
    """

    __slots__ = ("data", "_grad", "grad_fn", "requires_grad", "name", "_version_box",
                 "_hooks", "_retains_grad", "__weakref__")
    # NumPy must not treat a Tensor as an array in ``ndarray * tensor``: defer to our operators.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = to_array(data.data if isinstance(data, Tensor) else data, dtype)
        self._grad = self.grad_fn = self.name = self._hooks = None
        self._retains_grad = self.requires_grad = False
        self._version_box = None
        if checks.boolean("Tensor", "requires_grad", requires_grad):
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data: np.ndarray, requires_grad: bool, grad_fn, version_box=None) -> "Tensor":
        """What ops call: no validation, no copying. ``version_box`` is shared by tensors
        viewing the same memory (made on first need: most tensors never change)."""
        t = object.__new__(cls)
        t.data = data
        t._grad = t.name = t._hooks = None
        t._retains_grad = False
        t.grad_fn = grad_fn
        t.requires_grad = requires_grad
        t._version_box = version_box
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
        """True for tensors no recorded op made: inputs, parameters, constants."""
        return self.grad_fn is None

    @property
    def _version(self) -> int:
        """How many in-place changes this tensor's memory has seen."""
        return 0 if self._version_box is None else self._version_box[0]

    def _versions(self) -> list:
        """The one-element list counting this tensor's in-place changes, shared with the
        tensors that view its memory."""
        if self._version_box is None:
            self._version_box = [0]
        return self._version_box

    @property
    def grad(self):
        """d(loss)/d(self) accumulated by ``backward``: for leaves that require grad, and for
        other tensors only after ``retain_grad()`` (reading it otherwise warns, as PyTorch)."""
        if self.grad_fn is not None and not self._retains_grad:
            warnings.warn("The .grad attribute of a tensor that is not a leaf is being read: it "
                          "stays None because backward keeps only leaves' gradients. Call "
                          ".retain_grad() on it before backward to keep its gradient, or read "
                          "the leaf's .grad.", UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None and not isinstance(value, Tensor):
            value = Tensor(value, dtype=self.dtype)
        if value is not None and value.shape != self.shape:
            raise ShapeError(f"grad: assigned a gradient of shape {value.shape} to a tensor of "
                             f"shape {self.shape}")
        self._grad = value

    def __iter__(self):
        if self.data.ndim == 0:  # (without this, Python would iterate via __getitem__ forever)
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ShapeError(f"item: only a one-element tensor can be converted to a Python "
                             f"number, this one has shape {self.shape} ({self.size} elements)")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __array__(self, dtype=None, copy=None):
        # np.array(t) asks for copy=True and must not get an alias of t's data.
        return np.array(self.data, dtype=dtype, copy=copy)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if checks.boolean("requires_grad_", "requires_grad", requires_grad) and \
                self.data.dtype.kind not in "fc":
            raise DTypeError(f"requires_grad: only floating-point tensors can require grad, "
                             f"this one is {self.data.dtype} (labels and indices never need a "
                             f"gradient; convert with .astype(np.float64) if it should)")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor: use .detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self) -> "Tensor":
        """The same data (and version counter), cut out of the graph."""
        return Tensor._make(self.data, False, None, self._versions())

    def astype(self, dtype) -> "Tensor":
        return ops.Cast.apply(self, dtype=checks.dtype("astype", "dtype", dtype))

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="tensor(", precision=4)
        extras = []
        if self.data.dtype != get_default_dtype() and self.data.dtype.kind == "f":
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
            raise ShapeError(f"the truth value of a tensor of shape {self.shape} is ambiguous "
                             f"(use .any() or .all() on its data, or compare one element)")
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.data.dtype.kind not in "iub" or self.data.size != 1:
            raise TypeError(f"only one-element integer tensors can be used as an index, this "
                            f"one is {self.dtype} of shape {self.shape}")
        return int(self.data.item())

    # -- autograd -----------------------------------------------------------------------------

    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``gradient`` is d(loss)/d(self); it may be omitted only when ``self`` holds one element.
        Gradients add up across calls until zeroed (``t.grad = None`` or an optimizer's
        ``zero_grad``). The graph's saved values are freed afterwards unless ``retain_graph``
        (default: ``create_graph``); ``create_graph=True`` records the backward ops, so the
        gradients can be differentiated again.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad and has no grad_fn -- "
                               "no input of the computation had requires_grad=True (or it ran "
                               "under no_grad)")
        create_graph = checks.boolean("backward", "create_graph", create_graph)
        retain_graph = create_graph if retain_graph is None else checks.boolean(
            "backward", "retain_graph", retain_graph)
        gradient = engine.seed_gradient(self, gradient, "backward")
        leaf_grads = engine.backpropagate(self, gradient, create_graph=create_graph,
                                          retain_graph=retain_graph)
        engine.accumulate(leaf_grads, gradient, create_graph)

    def register_hook(self, hook):
        """Call ``hook(grad)`` with this tensor's gradient whenever backward computes it; if it
        returns a tensor, that replaces the gradient. Returns a handle: ``handle.remove()``."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that does not "
                               "require grad")
        if self.grad_fn is not None:  # the total gradient of an op's output: kept by its node
            return hooks.HookHandle.add(self.grad_fn, hook)
        if self._hooks is None:
            self._hooks = {}
        return hooks.HookHandle(self._hooks, hook)

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` after backward (leaves always
        keep theirs)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: cannot retain the gradient of a tensor that does "
                               "not require grad")
        if self.grad_fn is not None and not self._retains_grad:
            self._retains_grad = True
            hooks.retain_grad_of(self)

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

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

    def __abs__(self):
        return ops.Abs.apply(self)

    # Comparisons give constant bool tensors (masks), outside the graph.
    def __lt__(self, other):
        return Tensor._make(self.data < as_array(other), False, None)

    def __le__(self, other):
        return Tensor._make(self.data <= as_array(other), False, None)

    def __gt__(self, other):
        return Tensor._make(self.data > as_array(other), False, None)

    def __ge__(self, other):
        return Tensor._make(self.data >= as_array(other), False, None)

    def __eq__(self, other):
        return Tensor._make(self.data == as_array(other), False, None)

    def __ne__(self, other):
        return Tensor._make(self.data != as_array(other), False, None)

    # -- in place: each writes into self's memory and bumps its version -------------------------

    def add_(self, other, *, alpha=1):
        return inplace.arithmetic(self, "add_", operator.add, np.add,
                                  other if alpha == 1 else other * alpha)

    def sub_(self, other, *, alpha=1):
        return inplace.arithmetic(self, "sub_", operator.sub, np.subtract,
                                  other if alpha == 1 else other * alpha)

    def mul_(self, other):
        return inplace.arithmetic(self, "mul_", operator.mul, np.multiply, other)

    def div_(self, other):
        return inplace.arithmetic(self, "div_", operator.truediv, np.true_divide, other)

    def clamp_(self, min=None, max=None):
        ops.check_clamp_bounds("clamp_", min, max)
        return inplace.update(self, "clamp_", lambda old: ops.clamp(old, min, max),
                              lambda a: np.clip(a, min, max, out=a))

    def fill_(self, value):
        return inplace.replace(self, "fill_", value)

    def zero_(self):
        return self.fill_(0)

    def copy_(self, src):
        """Copy ``src`` (broadcast to this shape, cast to this dtype) into this tensor."""
        return inplace.replace(self, "copy_", src)

    def __setitem__(self, index, value):
        index = ops.as_index(index)
        inplace.update(self, "setitem", lambda old: ops.setitem(old, index, value),
                       lambda a: a.__setitem__(index, as_array(value)), value)

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

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

    def sin(self):
        """Elementwise sine (radians)."""
        return ops.Sin.apply(self)

    def cos(self):
        """Elementwise cosine (radians)."""
        return ops.Cos.apply(self)

    def maximum(self, other):
        """The elementwise larger of this tensor and ``other`` (ties share the gradient)."""
        return ops.maximum(self, other)

    def minimum(self, other):
        """The elementwise smaller of this tensor and ``other`` (ties share the gradient)."""
        return ops.minimum(self, other)

    def clamp(self, min=None, max=None):
        return ops.clamp(self, min, max)

    clip = clamp

    # -- reductions -----------------------------------------------------------------------------

    def sum(self, axis=None, keepdims: bool = False):
        axis, keepdims = ops.reduction_args("sum", axis, self.ndim, keepdims)
        return ops.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        axis, keepdims = ops.reduction_args("mean", axis, self.ndim, keepdims)
        return ops.Mean.apply(self, axis=axis, keepdims=keepdims)

    def var(self, axis=None, keepdims: bool = False, ddof: int = 0):
        axis, keepdims = ops.reduction_args("var", axis, self.ndim, keepdims)
        return ops.Var.apply(self, axis=axis, keepdims=keepdims,
                             ddof=checks.non_negative_int("var", "ddof", ddof))

    def max(self, axis=None, keepdims: bool = False):
        axis, keepdims = ops.reduction_args("max", axis, self.ndim, keepdims)
        return ops.Max.apply(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims: bool = False):
        """Minimum over ``axis`` (like ``torch.amin``: values only; tied minima share the
        gradient)."""
        axis, keepdims = ops.reduction_args("min", axis, self.ndim, keepdims)
        return ops.Min.apply(self, axis=axis, keepdims=keepdims)

    def logsumexp(self, axis=None, keepdims: bool = False):
        """log(sum(exp(self))) over ``axis``, without overflow (see ``mg.logsumexp``)."""
        axis, keepdims = ops.reduction_args("logsumexp", axis, self.ndim, keepdims)
        return ops.LogSumExp.apply(self, axis=axis, keepdims=keepdims)

    def argmax(self, axis=None, keepdims: bool = False):
        """The index of the first largest value along ``axis`` (None: of the flattened
        tensor), as an int64 tensor outside the graph."""
        return ops.arg_extremum("argmax", self, axis, keepdims)

    def argmin(self, axis=None, keepdims: bool = False):
        """The index of the first smallest value along ``axis`` (see ``argmax``)."""
        return ops.arg_extremum("argmin", self, axis, keepdims)

    # -- movement -------------------------------------------------------------------------------

    def reshape(self, *shape):
        return ops.reshape(self, shape[0] if len(shape) == 1 and not isinstance(
            shape[0], numbers.Integral) else shape)

    def transpose(self, *axes):
        """Two dims, ``t.transpose(0, 1)``, are exchanged, as in PyTorch; a permutation of all
        dims, ``t.transpose(2, 0, 1)`` or ``t.transpose((2, 0, 1))``, reorders them, as in
        NumPy; no argument reverses them (``t.T``)."""
        if len(axes) == 2 and all(isinstance(a, numbers.Integral) for a in axes):
            return ops.swapaxes(self, *axes)
        if len(axes) == 1 and not isinstance(axes[0], numbers.Integral):
            axes = axes[0]
        return ops.transpose(self, axes if axes != () else None)

    @property
    def T(self):
        return ops.transpose(self, None)

    def broadcast_to(self, shape):
        return ops.broadcast_to(self, shape)

    def __getitem__(self, index):
        return ops.getitem(self, index)


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """Make a new tensor holding a copy of ``data`` (like ``torch.tensor``)."""
    array = to_array(data.data if isinstance(data, Tensor) else data, dtype)
    return Tensor(array.copy() if isinstance(data, (np.ndarray, Tensor)) else array,
                  requires_grad=requires_grad)


from . import engine, hooks, inplace, ops  # noqa: E402  (they need the Tensor class above)
