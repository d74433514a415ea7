"""Activation layers beyond ReLU, Sigmoid and Tanh (which live in layers.py), and Identity."""
from __future__ import annotations

from .. import functional as F
from ..core.checks import real
from .module import Module

__all__ = ["LeakyReLU", "GELU", "Softplus", "Identity"]


class LeakyReLU(Module):
    """``x`` where positive, ``negative_slope * x`` elsewhere (see ``F.leaky_relu``)."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = real("LeakyReLU", "negative_slope", negative_slope)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class GELU(Module):
    """x * Phi(x) (see ``F.gelu``); ``approximate='tanh'`` for the tanh formula."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = F.activations.check_approximate("GELU", approximate)

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softplus(Module):
    """``log(1 + exp(beta * x)) / beta``, linear where ``beta * x > threshold`` (see
    ``F.softplus``)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = F.activations.check_softplus("Softplus", beta, threshold)

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Identity(Module):
    """Returns its input unchanged: a placeholder where a layer is optional (``norm = Identity()
    if not use_norm else BatchNorm1d(n)``). Like PyTorch's, it accepts and ignores any
    constructor arguments."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x
