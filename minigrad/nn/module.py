"""Module, Parameter and Sequential: the containers every layer is built from.

A Module's attributes are ordinary Python attributes. Assigning a ``Parameter`` or a ``Module``
registers it under that name (``register_buffer`` does the same for state that is not trained,
like BatchNorm's running statistics), so ``parameters()``, ``state_dict()`` and ``train()``
can find everything without the layer listing it.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from ..core.engine import thread_state
from ..core import checks
from ..core.checks import ArgumentTypeError, bad_argument
from ..core.errors import DTypeError
from ..core.tensor import Tensor, get_default_dtype

__all__ = ["Parameter", "Module", "Sequential"]

_PARAMETER, _BUFFER, _MODULE = "parameter", "buffer", "module"


_DATA = "numbers (an array, a Tensor, a list or a number)"


class Parameter(Tensor):
    """A Tensor that a Module trains: it requires grad, and data that is not already a floating
    NumPy array (Python numbers, lists, integers) gets ``mg.get_default_dtype()``.

    ``data`` must be numbers: None, strings and objects raise TypeError (a None does not
    become NaN). An explicit integer ``dtype`` with ``requires_grad`` raises as for a Tensor
    (only floating-point tensors can require grad)."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True, dtype=None):
        requires_grad = checks.boolean("Parameter", "requires_grad", requires_grad)
        if dtype is not None:
            dtype = checks.dtype("Parameter", "dtype", dtype)
        array = _numbers("Parameter", "data", data)
        from_numpy = isinstance(data, (Tensor, np.ndarray, np.generic))
        if dtype is None and not (array.dtype.kind == "c" or
                                  (from_numpy and array.dtype.kind == "f")):
            # Python numbers and lists get the default dtype, and so do integers: Parameter([1,
            # 2]) is a float parameter, not an error.
            dtype = get_default_dtype()
        super().__init__(array, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


def _numbers(owner: str, name: str, value) -> np.ndarray:
    """``value`` (a Tensor's data, an array, a list, a number) as an array of numbers, without
    converting its dtype: NumPy turns None into NaN and "1" into 1.0 only when asked to."""
    if isinstance(value, Tensor):
        return value.data
    if value is None or isinstance(value, (str, bytes)):
        bad_argument(owner, name, _DATA, value, ArgumentTypeError)
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):  # a ragged list
        array = None
    if array is None or array.dtype.kind not in "biufc":
        bad_argument(owner, name, _DATA, value, ArgumentTypeError)
    return array


def _member_name(owner: str, what: str, name) -> str:
    """A name a parameter, buffer or submodule can be registered under (PyTorch's rules and
    exception classes: TypeError for a non-string, KeyError for "" or a dotted name, which
    would break the dotted paths of ``state_dict``)."""
    if not isinstance(name, str):
        bad_argument(owner, f"{what} name", "a string", name, ArgumentTypeError)
    if not name:
        bad_argument(owner, f"{what} name", "a non-empty string", name, KeyError)
    if "." in name:
        bad_argument(owner, f"{what} name", 'a name without "." (dots separate the levels of '
                     'state_dict keys)', name, KeyError)
    return name


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
        # What ``with module_scope(self)`` does, written out: every layer of every forward
        # passes through here, and a context-manager object per call is measurable.
        outer = thread_state.scope
        thread_state.scope = outer + (self,)
        try:
            return self.forward(*args, **kwargs)
        finally:
            thread_state.scope = outer

    # -- registration ---------------------------------------------------------------------------

    def _registry(self) -> dict:
        kinds = self.__dict__.get("_kinds")
        if kinds is None:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before "
                                 f"assigning attributes")
        return kinds

    def __setattr__(self, name, value):
        kinds = self._registry()
        old = kinds.get(name)
        if isinstance(value, (Parameter, Module)):
            what = "parameter" if isinstance(value, Parameter) else "module"
            _member_name(type(self).__name__, what, name)
            kinds[name] = _PARAMETER if isinstance(value, Parameter) else _MODULE
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

    def _register(self, method: str, what: str, kind: str, name, value) -> None:
        """Register ``value`` under ``name`` as ``kind`` after checking the name as PyTorch
        does: a string, not empty, no dot, and not an attribute of another kind already."""
        kinds = self._registry()
        owner = f"{type(self).__name__}.{method}"
        _member_name(owner, what, name)
        if kinds.get(name, kind) != kind or (name not in kinds and hasattr(self, name)):
            bad_argument(owner, f"{what} name", "a name not already used by another attribute",
                         name, KeyError)
        kinds[name] = kind
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, tensor: Tensor | None) -> None:
        """Add state that is saved and loaded with the module but not trained (running
        statistics). Buffers never require grad."""
        if tensor is not None and (not isinstance(tensor, Tensor) or tensor.requires_grad):
            bad_argument(f"{type(self).__name__}.register_buffer", f"buffer {name!r}",
                         "a Tensor that does not require grad, or None", tensor, TypeError)
        self._register("register_buffer", "buffer", _BUFFER, name, tensor)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter; None reserves the name (a layer built without that parameter)."""
        if param is not None and not isinstance(param, Parameter):
            bad_argument(f"{type(self).__name__}.register_parameter", f"parameter {name!r}",
                         "an nn.Parameter or None", param, TypeError)
        self._register("register_parameter", "parameter", _PARAMETER, name, param)

    def add_module(self, name: str, module: "Module | None") -> None:
        """Add a submodule under ``name`` (what ``self.name = module`` does, for names that
        are not identifiers, like Sequential's "0", "1", ...); None reserves the name."""
        if module is not None and not isinstance(module, Module):
            bad_argument(f"{type(self).__name__}.add_module", f"module {name!r}",
                         "an nn.Module or None", module, TypeError)
        self._register("add_module", "module", _MODULE, name, module)

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
        _prefix(self, "named_modules", prefix)
        return self._walk(prefix)

    def _walk(self, prefix: str):
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

    def _named_members(self, method: str, kind: str, prefix: str, recurse: bool):
        # Checked here, not inside the generator, so that a bad argument raises at the call.
        _prefix(self, method, prefix)
        recurse = checks.boolean(f"{type(self).__name__}.{method}", "recurse", recurse)
        return self._members(kind, prefix, recurse)

    def _members(self, kind: str, prefix: str, recurse: bool):
        seen = set()
        modules = self._walk(prefix) if recurse else [(prefix, self)]
        for path, module in modules:
            for name, value in module._own(kind):
                if id(value) not in seen:  # a parameter shared by two layers is trained once
                    seen.add(id(value))
                    yield (f"{path}.{name}" if path else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """(dotted name, parameter) for every parameter, each shared one once."""
        return self._named_members("named_parameters", _PARAMETER, prefix, recurse)

    def parameters(self, recurse: bool = True):
        return (param for _, param in self._named_members("parameters", _PARAMETER, "",
                                                         recurse))

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        """(dotted name, buffer) for every buffer that is not None."""
        return self._named_members("named_buffers", _BUFFER, prefix, recurse)

    def buffers(self, recurse: bool = True):
        return (buffer for _, buffer in self._named_members("buffers", _BUFFER, "", recurse))

    # -- modes and gradients ----------------------------------------------------------------------

    def train(self, mode: bool = True) -> "Module":
        """Training mode (batch statistics, dropout on) for this module and all submodules."""
        # PyTorch raises ValueError for a mode that is not a bool; ArgumentTypeError is one.
        mode = checks.boolean(f"{type(self).__name__}.train", "mode", mode)
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> "Module":
        """Evaluation mode: BatchNorm uses its running statistics, Dropout is the identity."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget accumulated gradients: ``param.grad = None``, or with ``set_to_none=False``
        a gradient of zeros where there was one."""
        set_to_none = checks.boolean(f"{type(self).__name__}.zero_grad", "set_to_none",
                                     set_to_none)
        for param in self.parameters():
            if set_to_none or param.grad is None:
                param.grad = None
            else:
                param.grad = Tensor(np.zeros_like(param.data))

    def to(self, dtype) -> "Module":
        """Convert floating parameters and buffers (and gradients) to ``dtype``, in place;
        integer buffers such as ``num_batches_tracked`` stay as they are. Returns self.

        Only floating dtypes: a parameter must stay floating point to have gradients, so an
        integer, bool or unknown dtype raises TypeError (as PyTorch's ``Module.to``)."""
        dtype = checks.dtype(f"{type(self).__name__}.to", "dtype", dtype, kinds="f")
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

    def state_dict(self, *, prefix: str = "", keep_vars: bool = False) -> dict:
        """Every parameter and buffer (running statistics, num_batches_tracked) by dotted name,
        as NumPy array *copies*: the snapshot does not change when training goes on, and
        ``mg.save`` writes it to .npz as it is. ``prefix`` is put before every name;
        ``keep_vars=True`` gives the Tensors themselves instead of copies."""
        _prefix(self, "state_dict", prefix)
        keep_vars = checks.boolean(f"{type(self).__name__}.state_dict", "keep_vars", keep_vars)
        tensors = self._state_tensors(prefix)
        if keep_vars:
            return tensors
        return {name: np.array(t.data) for name, t in tensors.items()}

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values (NumPy arrays, Tensors or nested lists of numbers) into the parameters
        and buffers.

        Everything is checked and converted before anything is assigned -- with ``strict``, no
        missing and no unexpected keys; always, values that are numbers, of matching shapes
        and the same kind of dtype (floating or integer) that fit the model's dtype -- so a
        failed load leaves the module exactly as it was and the error lists every problem.
        Values are converted to each tensor's dtype (a float64 checkpoint loads into a float32
        model).

        Raises TypeError (as PyTorch) when ``state_dict`` is not dict-like or has a key that is
        not a string, and RuntimeError "Error(s) in loading state_dict for <Module>: ..." for
        the problems above."""
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            bad_argument(owner, "state_dict", "dict-like (a mapping of name -> array, as "
                         "state_dict() and mg.load return)", state_dict, TypeError)
        strict = checks.boolean(owner, "strict", strict)
        given = dict(state_dict.items())
        for name in given:
            if not isinstance(name, str):
                bad_argument(owner, "state_dict keys", "strings (names such as '0.weight')",
                             name, ArgumentTypeError)
        own = self._state_tensors()
        missing = [name for name in own if name not in given]
        unexpected = [name for name in given if name not in own]
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {', '.join(unexpected)}")
        converted = {}
        for name, tensor in own.items():
            if name in given:
                value, problem = _loadable(name, given[name], tensor)
                if problem:
                    problems.append(problem)
                else:
                    converted[name] = value
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__} "
                               f"(nothing was loaded):\n  " + "\n  ".join(problems))
        for name, value in converted.items():  # nothing below can fail
            own[name].data = value
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


def _prefix(module: Module, method: str, prefix) -> str:
    """``prefix`` of the traversal methods: a string put before every name."""
    if not isinstance(prefix, str):
        bad_argument(f"{type(module).__name__}.{method}", "prefix", "a string", prefix,
                     ArgumentTypeError)
    return prefix


def _loadable(name: str, value, tensor: Tensor):
    """(``value`` converted to ``tensor``'s dtype, None) or (None, what is wrong with it)."""
    given = value.data if isinstance(value, Tensor) else value
    try:
        # NumPy would make None a NaN and "1.5" a number only when asked for a float dtype.
        value = None if given is None or isinstance(given, (str, bytes)) else np.asarray(given)
    except (TypeError, ValueError):  # a ragged list
        value = None
    if value is None or value.dtype.kind not in "biufc":
        return None, (f"while copying {name!r}: expected a Tensor or an array of numbers from "
                      f"the state dict, got {checks.describe(given)}")
    if value.shape != tensor.shape:
        return None, (f"size mismatch for {name}: shape {value.shape} in the state dict, "
                      f"{tensor.shape} in the model")
    if _dtype_kind(value.dtype) != _dtype_kind(tensor.dtype):
        return None, (f"dtype mismatch for {name}: dtype {value.dtype} in the state dict, "
                      f"{tensor.dtype} in the model")
    target = tensor.dtype
    if target.kind in "iu" and value.size:
        info = np.iinfo(target)
        if value.min() < info.min or value.max() > info.max:
            return None, (f"{name}: values from {value.min()} to {value.max()} do not fit the "
                          f"model's {target}")
    with np.errstate(over="ignore", invalid="ignore"):
        result = np.array(value, dtype=target)
    if target.kind in "fc" and np.any(np.isfinite(value) & ~np.isfinite(result)):
        return None, (f"{name}: values beyond the range of the model's {target} (they would "
                      f"become inf)")
    return result, None


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
        """Add ``module`` at the end."""
        if not isinstance(module, Module):
            raise TypeError(f"Sequential: expected a Module, got {checks.describe(module)}")
        setattr(self, str(len(self)), module)
        return self

    def forward(self, x):
        # The registry read directly (what children() yields, without its two generators):
        # this runs on every batch.
        members = self.__dict__
        for name, kind in self._kinds.items():
            if kind == _MODULE and members[name] is not None:
                x = members[name](x)
        return x

    def __len__(self) -> int:
        return sum(1 for _ in self.named_children())

    def __iter__(self):
        return self.children()

    def __getitem__(self, index):
        modules = list(self.children())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        index = checks.integer("Sequential", "index", index)
        try:
            return modules[index]
        except IndexError:
            raise IndexError(f"Sequential: index {index} is out of range for {len(modules)} "
                             f"modules") from None
