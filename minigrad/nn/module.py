"""Module, Parameter and Sequential: the containers every layer is built from.

A Module's attributes are ordinary Python attributes. Assigning a ``Parameter`` or a ``Module``
registers it under that name (``register_buffer`` does the same for state that is not trained,
like BatchNorm's running statistics), so ``parameters()``, ``state_dict()`` and ``train()``
can find everything without the layer listing it.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..autograd import module_scope
from ..core.tensor import Tensor, as_array, get_default_dtype

__all__ = ["Parameter", "Module", "Sequential"]

_PARAMETER, _BUFFER, _MODULE = "parameter", "buffer", "module"


class Parameter(Tensor):
    """A Tensor that a Module trains: it requires grad, and data that is not already a floating
    NumPy array (Python numbers, lists, integers) gets ``mg.get_default_dtype()``."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True, dtype=None):
        array = as_array(data)
        if dtype is None and not (isinstance(array, np.ndarray) and array.dtype.kind == "f"):
            dtype = get_default_dtype()
        super().__init__(array, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(..., strict=False)`` skipped."""
    missing_keys: list
    unexpected_keys: list


class Module:
    """Base class of layers and models. Subclasses call ``super().__init__()`` first, assign
    their parameters, buffers and submodules as attributes, and define ``forward``.

    Calling a module runs ``forward`` inside ``module_scope(self)``, so every op it records
    remembers the module (``node.scope``) and the graph drawer can group ops by layer.
    """

    def __init__(self):
        object.__setattr__(self, "training", True)
        # name -> "parameter" | "buffer" | "module", in registration order
        object.__setattr__(self, "_kinds", {})

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward method")

    def __call__(self, *args, **kwargs):
        with module_scope(self):
            return self.forward(*args, **kwargs)

    # -- registration ---------------------------------------------------------------------------

    def __setattr__(self, name, value):
        kinds = self.__dict__.get("_kinds")
        if kinds is None:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before "
                                 f"assigning attributes")
        old = kinds.get(name)
        if isinstance(value, Parameter):
            kinds[name] = _PARAMETER
        elif isinstance(value, Module):
            kinds[name] = _MODULE
        elif old == _PARAMETER and isinstance(value, Tensor):
            raise TypeError(f"{type(self).__name__}.{name} is a parameter: assign an "
                            f"nn.Parameter or None, not a {type(value).__name__}")
        elif old in (_PARAMETER, _BUFFER) and (value is None or isinstance(value, Tensor)):
            pass  # a buffer keeps its role; None keeps a slot (e.g. weight=None, affine=False)
        else:
            kinds.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._kinds.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, tensor: Tensor | None) -> None:
        """Add state that is saved and loaded with the module but not trained (running
        statistics). Buffers never require grad."""
        if tensor is not None and (not isinstance(tensor, Tensor) or tensor.requires_grad):
            raise TypeError(f"{type(self).__name__}.register_buffer('{name}'): expected a "
                            f"Tensor that does not require grad, or None")
        self._kinds[name] = _BUFFER
        object.__setattr__(self, name, tensor)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter; None reserves the name (a layer built without that parameter)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"{type(self).__name__}.register_parameter('{name}'): expected an "
                            f"nn.Parameter or None, got {type(param).__name__}")
        self._kinds[name] = _PARAMETER
        object.__setattr__(self, name, param)

    def _own(self, kind: str):
        """(name, value) of this module's own members of one kind, skipping None slots."""
        for name, member_kind in self._kinds.items():
            value = self.__dict__[name]
            if member_kind == kind and value is not None:
                yield name, value

    # -- traversal ------------------------------------------------------------------------------

    def named_children(self):
        return self._own(_MODULE)

    def children(self):
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = ""):
        """(dotted path, module) for this module ("" or ``prefix``) and every submodule."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            path, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield path, module
            stack.extend(reversed([(f"{path}.{name}" if path else name, child)
                                   for name, child in module.named_children()]))

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def _named_members(self, kind: str, prefix: str, recurse: bool):
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for path, module in modules:
            for name, value in module._own(kind):
                if id(value) not in seen:  # a parameter shared by two layers is trained once
                    seen.add(id(value))
                    yield (f"{path}.{name}" if path else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        return self._named_members(_PARAMETER, prefix, recurse)

    def parameters(self, recurse: bool = True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        return self._named_members(_BUFFER, prefix, recurse)

    def buffers(self, recurse: bool = True):
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    # -- modes and gradients ----------------------------------------------------------------------

    def train(self, mode: bool = True) -> "Module":
        """Training mode (batch statistics, dropout on) for this module and all submodules."""
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self) -> "Module":
        """Evaluation mode: BatchNorm uses its running statistics, Dropout is the identity."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Forget accumulated gradients (``param.grad = None``)."""
        for param in self.parameters():
            param.grad = None

    def to(self, dtype) -> "Module":
        """Convert floating parameters and buffers (and gradients) to ``dtype``, in place;
        integer buffers such as ``num_batches_tracked`` stay as they are. Returns self."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}.to: expected a floating dtype, got {dtype}")
        for tensor in self._state_tensors().values():
            if tensor.dtype.kind == "f":
                tensor.data = tensor.data.astype(dtype, copy=False)
                if tensor.grad is not None:
                    tensor.grad = Tensor(tensor.grad.data.astype(dtype, copy=False))
        return self

    # -- state ------------------------------------------------------------------------------------

    def _state_tensors(self, prefix: str = "") -> dict:
        """Parameters then buffers of this module, then each child's, by dotted name."""
        tensors = {prefix + name: value for kind in (_PARAMETER, _BUFFER)
                   for name, value in self._own(kind)}
        for name, child in self.named_children():
            tensors.update(child._state_tensors(f"{prefix}{name}."))
        return tensors

    def state_dict(self) -> dict:
        """Every parameter and buffer (running statistics, num_batches_tracked) by dotted name,
        as NumPy array *copies*: the snapshot does not change when training goes on, and
        ``mg.save`` writes it to .npz as it is."""
        return {name: np.array(t.data) for name, t in self._state_tensors().items()}

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values (NumPy arrays or Tensors) into the parameters and buffers.

        Everything is checked before anything is assigned -- with ``strict``, no missing and no
        unexpected keys; always, matching shapes and the same kind of dtype (floating or
        integer) -- so a failed load leaves the module exactly as it was and the error lists
        every problem. Values are converted to each tensor's dtype (a float64 checkpoint loads
        into a float32 model)."""
        own = self._state_tensors()
        values = {name: np.asarray(as_array(v))
                  for name, v in state_dict.items()}
        missing = [name for name in own if name not in values]
        unexpected = [name for name in values if name not in own]
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {', '.join(unexpected)}")
        for name, tensor in own.items():
            value = values.get(name)
            if value is None:
                continue
            if value.shape != tensor.shape:
                problems.append(f"{name}: shape {value.shape} in the state dict, "
                                f"{tensor.shape} in the model")
            if _dtype_kind(value.dtype) != _dtype_kind(tensor.dtype):
                problems.append(f"{name}: dtype {value.dtype} in the state dict, "
                                f"{tensor.dtype} in the model")
        if problems:
            raise RuntimeError(f"Error loading state_dict into {type(self).__name__}; nothing "
                               f"was loaded:\n  " + "\n  ".join(problems))
        for name, tensor in own.items():
            if name in values:
                tensor.data = np.array(values[name], dtype=tensor.dtype)
        return IncompatibleKeys(missing, unexpected)

    # -- printing ---------------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The settings shown between the parentheses of this module's repr."""
        return ""

    def __repr__(self):
        children = [f"({name}): {repr(child)}".replace("\n", "\n  ")
                    for name, child in self.named_children()]
        extra = self.extra_repr()
        if not children:
            return f"{type(self).__name__}({extra})"
        lines = ([extra] if extra else []) + children
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


def _dtype_kind(dtype) -> str:
    """'float', 'integer' or the dtype itself: what must agree between checkpoint and model."""
    if dtype.kind == "f":
        return "float"
    if dtype.kind in "iu":
        return "integer"
    return str(dtype)


class Sequential(Module):
    """Modules applied one after another: ``Sequential(Linear(2, 8), ReLU(), Linear(8, 1))``.
    Supports ``len``, iteration and indexing (a slice gives a new Sequential of the same
    modules)."""

    def __init__(self, *modules: Module):
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module: Module) -> "Sequential":
        if not isinstance(module, Module):
            raise TypeError(f"Sequential: expected a Module, got {type(module).__name__}")
        setattr(self, str(len(self)), module)
        return self

    def forward(self, x):
        for module in self.children():
            x = module(x)
        return x

    def __len__(self) -> int:
        return sum(1 for _ in self.named_children())

    def __iter__(self):
        return self.children()

    def __getitem__(self, index):
        modules = list(self.children())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        try:
            return modules[index]
        except IndexError:
            raise IndexError(f"Sequential: index {index} is out of range for {len(modules)} "
                             f"modules") from None
