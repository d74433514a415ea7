"""Carry a model between minigrad and PyTorch: ``to_torch(module)`` and ``from_torch(module)``.

The path for a model that outgrows minigrad: train a toy model here, then hand it to PyTorch
(and its GPUs and distributed tooling) unchanged -- or bring a small PyTorch model here to
watch its gradients. Every layer of ``minigrad.nn`` has its PyTorch twin of the same name; the
two take the same constructor arguments and keep their state under the same ``state_dict``
keys, so a conversion is: build the twin from the layer's settings, copy the state across,
copy the train/eval mode. Containers (Sequential, ModuleList, ModuleDict) are converted child
by child. A Module subclass with its own ``forward`` cannot be translated (its code is Python,
not layers): convert its layers, or build the model from containers.

PyTorch stays optional: it is imported when a conversion runs."""
from __future__ import annotations

import importlib

import numpy as np

from . import nn
from .core.checks import bad_argument, boolean

__all__ = ["to_torch", "from_torch", "CONVERTIBLE"]

# Layer name -> the constructor settings both libraries share, read from the layer's
# attributes of the same name ("bias" is read as whether the layer has one).
_SETTINGS = {
    "Linear": ("in_features", "out_features", "bias"),
    "Conv2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "bias"),
    "BatchNorm1d": ("num_features", "eps", "momentum", "affine", "track_running_stats", "bias"),
    "BatchNorm2d": ("num_features", "eps", "momentum", "affine", "track_running_stats", "bias"),
    "LayerNorm": ("normalized_shape", "eps", "elementwise_affine", "bias"),
    "GroupNorm": ("num_groups", "num_channels", "eps", "affine", "bias"),
    "Dropout": ("p",),
    "Flatten": ("start_dim", "end_dim"),
    "ReLU": (), "Sigmoid": (), "Tanh": (), "Identity": (),
    "LeakyReLU": ("negative_slope",),
    "GELU": ("approximate",),
    "Softplus": ("beta", "threshold"),
    "MaxPool2d": ("kernel_size", "stride", "padding", "ceil_mode"),
    "AvgPool2d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
}

# PyTorch settings minigrad has no counterpart for, with the only value it can carry over.
_TORCH_ONLY = {
    "Conv2d": {"dilation": (1, 1), "groups": 1, "padding_mode": "zeros"},
    "MaxPool2d": {"dilation": 1, "return_indices": False},
    "AvgPool2d": {"divisor_override": None},
    "LeakyReLU": {"inplace": False}, "ReLU": {"inplace": False}, "Dropout": {"inplace": False},
}

_CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")

CONVERTIBLE = tuple(_SETTINGS) + _CONTAINERS
"""The layer and container names both directions convert."""


def _torch():
    try:
        return importlib.import_module("torch")
    except ImportError:
        raise ImportError("minigrad.interop needs PyTorch, which minigrad does not install: "
                          "pip install torch") from None


def to_torch(module) -> "torch.nn.Module":
    """The ``torch.nn`` twin of a minigrad ``module``: same weights, buffers and
    ``state_dict`` keys, same train/eval mode, same dtype; so the same outputs (in eval mode
    exactly; in train mode too, but for Dropout's random masks)."""
    if not isinstance(module, nn.Module):
        bad_argument("to_torch", "module", "a minigrad nn.Module", module, TypeError)
    return _convert(module, "to_torch", nn, _torch().nn, _from_minigrad_state)


def from_torch(module, *, fused: bool = False) -> nn.Module:
    """The minigrad twin of a ``torch.nn`` module (see ``to_torch``); ``fused`` picks
    BatchNorm's fused op over the composed graph in the BatchNorm layers made."""
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        bad_argument("from_torch", "module", "a torch.nn.Module", module, TypeError)
    boolean("from_torch", "fused", fused)
    return _convert(module, "from_torch", torch.nn, nn, _from_torch_state, fused=fused)


def _convert(module, owner: str, source, target, copy_state, **extra):
    """Build ``module`` (of the ``source`` library, ``minigrad.nn`` or ``torch.nn``)'s twin
    from the ``target`` library. Only the libraries' own classes convert: a subclass may
    compute something else in its forward."""
    name = type(module).__name__
    own_class = type(module) is getattr(source, name, None) and hasattr(target, name)
    if own_class and name in _CONTAINERS:
        twin = _convert_container(module, owner, source, target, copy_state, **extra)
    elif own_class and name in _SETTINGS:
        twin = getattr(target, name)(**_settings(module, owner), **_fused(name, extra))
        copy_state(module, twin, owner)
    else:
        known = ", ".join(CONVERTIBLE)
        bad_argument(owner, "module", f"made of layers both libraries have ({known}); a "
                     f"Module subclass with its own forward cannot be translated: convert its "
                     f"layers, or build the model from Sequential, ModuleList and ModuleDict",
                     name, TypeError)
    twin.training = module.training  # this module's own mode: children keep theirs
    return twin


def _convert_container(module, owner, source, target, copy_state, **extra):
    children = [(key, _convert(child, owner, source, target, copy_state, **extra))
                for key, child in module.named_children()]
    name = type(module).__name__
    if name == "ModuleDict":
        return getattr(target, name)(dict(children))
    if name == "ModuleList":
        return getattr(target, name)([child for _, child in children])
    twin = getattr(target, name)()
    for key, child in children:  # Sequential: keep the children's names
        twin.add_module(key, child)
    return twin


def _settings(module, owner: str) -> dict:
    """The constructor arguments that rebuild ``module`` (a layer of either library)."""
    name = type(module).__name__
    for setting, carried in _TORCH_ONLY.get(name, {}).items():
        value = getattr(module, setting, carried)
        if isinstance(carried, tuple) and not isinstance(value, tuple):
            value = (value,) * len(carried)
        if value != carried:
            bad_argument(owner, f"{name}.{setting}", f"{carried!r} (minigrad has no other)",
                         value, ValueError)
    settings = {}
    for setting in _SETTINGS[name]:
        if setting == "bias":
            # (a norm layer without affine parameters has no bias either way)
            affine = getattr(module, "affine", getattr(module, "elementwise_affine", True))
            settings["bias"] = getattr(module, "bias", None) is not None or not affine
        else:
            value = getattr(module, setting)
            settings[setting] = tuple(value) if isinstance(value, list) else value
    return settings


def _fused(name: str, extra: dict) -> dict:
    return {"fused": extra["fused"]} if name.startswith("BatchNorm") and extra else {}


def _state_dtype(state: dict):
    """The floating dtype of a layer's state (None for a layer without any)."""
    return next((v.dtype for v in state.values() if v.dtype.kind == "f"), None)


def _from_minigrad_state(module, twin, owner: str) -> None:
    torch = _torch()
    state = module.state_dict()
    dtype = _state_dtype(state)
    if dtype is not None:
        twin.to(getattr(torch, str(dtype)))
    _check_keys(owner, module, state, twin.state_dict())
    twin.load_state_dict({key: torch.from_numpy(np.array(value)) for key, value in
                          state.items()})


def _from_torch_state(module, twin, owner: str) -> None:
    state = {key: value.detach().cpu().numpy() for key, value in module.state_dict().items()}
    dtype = _state_dtype(state)
    if dtype is not None:
        twin.to(dtype)
    _check_keys(owner, module, state, twin.state_dict())
    twin.load_state_dict(state)


def _check_keys(owner: str, module, given: dict, wanted: dict) -> None:
    if set(given) != set(wanted):
        raise RuntimeError(f"{owner}: {type(module).__name__}'s state_dict keys "
                           f"{sorted(given)} differ from its twin's {sorted(wanted)}")
