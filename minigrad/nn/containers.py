"""ModuleList and ModuleDict: submodules held in a list or a dict, registered so that
``parameters()``, ``state_dict()`` (keys "0.weight", "encoder.weight", ...), ``train()`` and
``to()`` reach them -- which a plain Python list or dict of layers would hide. Neither has a
``forward``: the model that holds one decides how its modules are called."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..core import checks
from ..core.checks import ArgumentTypeError, bad_argument
from ..core.errors import OutOfRangeError
from .module import Module

__all__ = ["ModuleList", "ModuleDict"]


def _module(owner: str, value) -> Module:
    if not isinstance(value, Module):
        bad_argument(owner, "each item", "an nn.Module", value, TypeError)
    return value


class ModuleList(Module):
    """A list of modules, registered under "0", "1", ...: ``ModuleList([Linear(4, 4) for _ in
    range(3)])``. Indexing (negative indices, slices), ``len``, iteration, ``append``,
    ``extend``, ``insert``, ``pop``, ``del``, assignment to an index and ``+`` work as for a
    list; the names are renumbered after an insertion or deletion, as in PyTorch."""

    def __init__(self, modules: Iterable | None = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, index) -> int:
        """``index`` (negative counts from the end) as a position in range."""
        index = checks.integer("ModuleList", "index", index)
        size = len(self)
        if not -size <= index < size:
            raise OutOfRangeError(f"ModuleList: index {index} is out of range for "
                                  f"{size} modules")
        return index % size

    def _renumber(self, modules: list) -> None:
        """Hold exactly ``modules``, under "0", "1", ... in that order."""
        for name, _ in list(self.named_children()):
            delattr(self, name)
        for position, module in enumerate(modules):
            self.add_module(str(position), module)

    def __len__(self) -> int:
        return sum(1 for _ in self.named_children())

    def __iter__(self):
        return self.children()

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self)[index])
        return getattr(self, str(self._index(index)))

    def __setitem__(self, index, module) -> None:
        self.add_module(str(self._index(index)), _module("ModuleList", module))

    def __delitem__(self, index) -> None:
        modules = list(self)
        if isinstance(index, slice):
            del modules[index]
        else:
            del modules[self._index(index)]
        self._renumber(modules)

    def append(self, module: Module) -> "ModuleList":
        """Add ``module`` at the end."""
        self.add_module(str(len(self)), _module("ModuleList.append", module))
        return self

    def extend(self, modules: Iterable) -> "ModuleList":
        """Add each module of ``modules`` (any iterable) at the end."""
        if not isinstance(modules, Iterable):
            bad_argument("ModuleList.extend", "modules", "an iterable of modules", modules,
                         ArgumentTypeError)
        for module in list(modules):
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Put ``module`` before position ``index`` (list.insert's rule: negative counts from
        the end, beyond the ends means at that end)."""
        index = checks.integer("ModuleList.insert", "index", index)
        modules = list(self)
        modules.insert(index, _module("ModuleList.insert", module))
        self._renumber(modules)

    def pop(self, index: int | slice = -1):
        """Remove and return the module at ``index`` (the last by default), or a ModuleList of
        those in a slice."""
        taken = self[index]
        del self[index]
        return taken

    def __add__(self, other) -> "ModuleList":
        if not isinstance(other, ModuleList):
            return NotImplemented
        return ModuleList(list(self) + list(other))

    def __iadd__(self, modules) -> "ModuleList":
        return self.extend(modules)


class ModuleDict(Module):
    """A dict of modules, registered under their keys: ``ModuleDict({"encoder": Linear(8, 4),
    "head": Linear(4, 2)})``. ``d[key]``, ``d[key] = module``, ``del d[key]``, ``key in d``,
    ``len``, iteration over the keys, ``keys``, ``values``, ``items``, ``update``, ``pop`` and
    ``clear`` work as for a dict (insertion order kept). A key must be a valid module name: a
    non-empty string without "." that is not already an attribute (``"train"`` is a method),
    else KeyError or TypeError, as in PyTorch."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key) -> Module:
        modules = dict(self.named_children())
        if key not in modules:
            raise KeyError(key)
        return modules[key]

    def __setitem__(self, key, module) -> None:
        self.add_module(key, _module("ModuleDict", module))

    def __delitem__(self, key) -> None:
        self[key]  # noqa: B018 -- a KeyError for a key it does not hold
        delattr(self, key)

    def __len__(self) -> int:
        return sum(1 for _ in self.named_children())

    def __iter__(self):
        return iter(self.keys())

    def __contains__(self, key) -> bool:
        return key in self.keys()

    def keys(self) -> list:
        return [name for name, _ in self.named_children()]

    def values(self) -> list:
        return list(self.children())

    def items(self) -> list:
        return list(self.named_children())

    def pop(self, key) -> Module:
        """Remove the module under ``key`` and return it (KeyError if there is none)."""
        module = self[key]
        del self[key]
        return module

    def clear(self) -> None:
        """Remove every module."""
        for key in self.keys():
            del self[key]

    def update(self, modules) -> None:
        """Add (or replace) modules from a mapping of key -> module, or from an iterable of
        (key, module) pairs, in their order."""
        if isinstance(modules, (Mapping, ModuleDict)):
            pairs = list(modules.items())
        elif isinstance(modules, Iterable) and not isinstance(modules, (str, bytes, Module)):
            pairs = list(modules)
            for position, pair in enumerate(pairs):
                if not isinstance(pair, Iterable) or isinstance(pair, (str, bytes)):
                    bad_argument("ModuleDict.update", f"element {position}",
                                 "a (key, module) pair", pair, TypeError)
                if len(pair := tuple(pair)) != 2:
                    bad_argument("ModuleDict.update", f"element {position}",
                                 "a (key, module) pair (of length 2)", pair)
                pairs[position] = pair
        else:
            bad_argument("ModuleDict.update", "modules", "a mapping of key -> module or an "
                         "iterable of (key, module) pairs", modules, TypeError)
        for key, module in pairs:
            self[key] = module
