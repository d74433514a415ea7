"""A check leaves the modules it runs as it found them.

A check calls ``fn`` many times (two forward passes per input element in full mode). A
training-mode BatchNorm updates its running statistics and ``num_batches_tracked`` on every
call, so without care ``gradcheck(lambda x: bn(x).sum(), (x,))`` would leave the layer as if it
had seen dozens of batches of perturbed inputs. ``preserved_modules`` finds the modules ``fn``
can reach *before* the first call, saves their parameters and buffers, and puts them back
afterwards -- the same tensor objects, holding their original arrays with the original values.

Which modules: every module found by following, from ``fn`` and the inputs, a closure's cells,
the globals a function's code names (and attributes it names of a Python module it uses),
default arguments, a bound method's ``self``, a ``functools.partial``'s function and arguments,
the items of lists, tuples, sets and dicts, the attributes of other objects (a module's too,
so a layer kept in a plain list is found) and the code of their ``__call__`` and ``forward``.
minigrad's own functions are not followed (they hold no user's module). A module that ``fn``
reaches in any other way (created inside it, looked up by a string) is not saved.
"""
from __future__ import annotations

import contextlib
import functools
import types

import numpy as np

from ..core.tensor import Tensor

__all__ = ["preserved_modules", "reachable_modules"]

# Bounds on the search, so that a function naming a large data structure costs little.
MAX_DEPTH = 6
MAX_VISITS = 20_000
MAX_ITEMS = 1_000  # items looked at per container


def is_module(value) -> bool:
    """An ``nn.Module`` (recognised by its methods: this package does not import ``nn``)."""
    kind = type(value)
    return callable(getattr(kind, "named_modules", None)) and \
        callable(getattr(kind, "named_buffers", None)) and \
        callable(getattr(kind, "named_parameters", None))


def reachable_modules(*roots) -> list:
    """The modules reachable from ``roots`` (see the module docstring), each once."""
    found, seen = {}, set()
    visits = 0
    stack = [(root, 0) for root in reversed(roots)]
    while stack and visits < MAX_VISITS:
        value, depth = stack.pop()
        if id(value) in seen or depth > MAX_DEPTH or _leaf(value) or \
                (depth and _library_code(value)):
            continue
        seen.add(id(value))
        visits += 1
        if is_module(value):
            for _, module in value.named_modules():
                found.setdefault(id(module), module)
        stack.extend((child, depth + 1) for child in _children(value))
    return list(found.values())


def _leaf(value) -> bool:
    """Values that hold no module: numbers, strings, arrays, tensors, classes, Python
    modules (reached only through the names a function's code uses), builtins."""
    return value is None or isinstance(value, (str, bytes, int, float, complex, bool,
                                                np.ndarray, np.generic, Tensor, type,
                                                types.ModuleType, types.BuiltinFunctionType))


def _library_code(value) -> bool:
    """minigrad's own functions: they hold no user's module, and following their globals
    would walk the whole library. (A root is followed even so: a lambda of the self-test.)"""
    return isinstance(value, types.FunctionType) and \
        (value.__module__ or "").split(".")[0] == "minigrad"


def _children(value) -> list:
    if isinstance(value, types.MethodType):
        return [value.__self__, value.__func__]
    if isinstance(value, functools.partial):
        return [value.func, *value.args[:MAX_ITEMS], *list(value.keywords.values())[:MAX_ITEMS]]
    if isinstance(value, types.FunctionType):
        return _function_children(value)
    if isinstance(value, dict):
        return list(value.values())[:MAX_ITEMS]
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)[:MAX_ITEMS]
    attributes = getattr(value, "__dict__", None)
    children = list(attributes.values())[:MAX_ITEMS] if isinstance(attributes, dict) else []
    for method in ("__call__", "forward"):  # the code a callable object (a model) runs
        code = getattr(type(value), method, None)
        if isinstance(code, types.FunctionType):
            children.append(code)
    return children


def _function_children(fn) -> list:
    children = [cell.cell_contents for cell in fn.__closure__ or () if _filled(cell)]
    children += list(fn.__defaults__ or ()) + list((fn.__kwdefaults__ or {}).values())
    wrapped = fn.__dict__.get("__wrapped__")
    if wrapped is not None:
        children.append(wrapped)
    names = _names(fn.__code__)
    scope = fn.__globals__
    for name in names:
        if name in scope:
            value = scope[name]
            if isinstance(value, types.ModuleType):
                # model.bn where ``model`` is a Python module: its attributes the code names
                children += [value.__dict__[n] for n in names
                             if n in value.__dict__ and not isinstance(value.__dict__[n],
                                                                       types.ModuleType)]
            else:
                children.append(value)
    return children


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # a cell not assigned yet
        return False
    return True


def _names(code) -> set:
    """The global and attribute names a code object uses, nested functions' included."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _names(constant)
    return names


@contextlib.contextmanager
def preserved_modules(*roots):
    """Run the block, then restore the parameters and buffers of every module reachable from
    ``roots`` (saved before the block runs): the same tensor objects in the same attributes,
    their original arrays, the original values. Yields the list of modules saved."""
    modules = reachable_modules(*roots)
    saved = []
    for module in modules:
        for kind in ("named_buffers", "named_parameters"):
            for name, tensor in getattr(module, kind)(recurse=False):
                saved.append((module, name, tensor, tensor.data, np.array(tensor.data)))
    try:
        yield modules
    finally:
        for module, name, tensor, array, values in saved:
            if module.__dict__.get(name) is not tensor:
                setattr(module, name, tensor)
            if tensor.data is not array:
                tensor.data = array
            if array.flags.writeable:
                np.copyto(array, values)
            else:
                tensor.data = values
