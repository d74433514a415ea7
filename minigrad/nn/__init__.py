"""Neural-network building blocks: ``Module`` and its layers.

``minigrad.nn.functional`` is ``minigrad.functional`` (the same functions, PyTorch's spelling).
"""
from . import functional, init, utils
from .activation import GELU, Identity, LeakyReLU, Softplus
from .containers import ModuleDict, ModuleList
from .init import manual_seed
from .layers import Conv2d, Dropout, Flatten, Linear, ReLU, Sigmoid, Tanh
from .module import Module, Parameter, Sequential
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm
from .pooling import AvgPool2d, MaxPool2d

__all__ = ["Module", "Parameter", "Sequential", "Linear", "Conv2d", "ReLU", "Sigmoid", "Tanh",
           "Dropout", "Flatten", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm",
           "functional", "init", "manual_seed", "utils", "LeakyReLU", "GELU", "Softplus",
           "Identity", "MaxPool2d", "AvgPool2d", "ModuleList", "ModuleDict"]
