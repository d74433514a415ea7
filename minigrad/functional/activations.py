"""More activations, as PyTorch 2.13 computes them: leaky_relu, gelu (exact and tanh forms) and
softplus.

``leaky_relu`` and ``softplus`` are ops of their own (their forward has a branch); ``gelu`` is a
few Tensor ops around one new primitive, ``Erf``, so its graph shows the formula and its
gradient -- Phi(x) + x * phi(x) -- comes out of the chain rule."""
from __future__ import annotations

import math

import numpy as np

from ..autograd import Function
from ..core.checks import ArgumentTypeError, bad_argument, real
from ..core.ops import Where
from ..core.tensor import Tensor
from .args import as_tensor

_erf = np.frompyfunc(math.erf, 1, 1)  # NumPy has no erf; math.erf is exact to the last bit


class LeakyRelu(Function):
    """x where x > 0, else negative_slope * x. At 0 the gradient is negative_slope, as in
    PyTorch (whose backward tests x > 0)."""

    category, runs_on_arrays = "elementwise", True
    kink = ("inputs", "leaky_relu's kink at 0")
    distance_to_kink = staticmethod(lambda x, **attrs: np.abs(x))

    @staticmethod
    def forward(ctx, x, negative_slope):
        slope = np.where(x > 0, 1.0, negative_slope).astype(x.dtype)
        ctx.save_for_backward(slope)
        return x * slope

    @staticmethod
    def backward(ctx, grad):
        (slope,) = ctx.saved_tensors
        return grad * slope


class Erf(Function):
    """The error function, erf(x) = 2/sqrt(pi) * integral from 0 to x of exp(-t^2) dt, whose
    derivative is the integrand."""

    category = "elementwise"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.asarray(_erf(x), dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (2.0 / math.sqrt(math.pi)) * (-(x * x)).exp()


class Softplus(Function):
    """log(1 + exp(beta * x)) / beta, smooth relu; x itself where beta * x > threshold (the two
    then differ by less than exp(-threshold)), as PyTorch computes it. The gradient is
    sigmoid(beta * x), and 1 on the linear side."""

    category = "elementwise"

    @staticmethod
    def forward(ctx, x, beta, threshold):
        ctx.save_for_backward(x)
        scaled = x * beta
        with np.errstate(over="ignore"):  # exp overflows only where the linear side is taken
            return np.where(scaled > threshold, x, np.log1p(np.exp(scaled)) / beta)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        beta, threshold = ctx.attrs["beta"], ctx.attrs["threshold"]
        linear = x.data * beta > threshold
        return Where.apply(linear, grad, grad * (x * beta).sigmoid())


def leaky_relu(x, negative_slope: float = 0.01) -> Tensor:
    """``x`` where positive, ``negative_slope * x`` elsewhere (PyTorch's ``leaky_relu``)."""
    x = as_tensor(x, "leaky_relu", floating=True)
    negative_slope = real("leaky_relu", "negative_slope", negative_slope)
    return LeakyRelu.apply(x, negative_slope=negative_slope)


GELU_FORMS = ("none", "tanh")


def check_approximate(owner: str, approximate) -> str:
    """``approximate`` of gelu: 'none' or 'tanh'. PyTorch raises TypeError for a value that is
    not a string and RuntimeError for another string. Shared with ``nn.GELU``."""
    if not isinstance(approximate, str):
        bad_argument(owner, "approximate", "a string, 'none' or 'tanh'", approximate,
                     ArgumentTypeError)
    if approximate not in GELU_FORMS:
        bad_argument(owner, "approximate", "'none' or 'tanh'", approximate, RuntimeError)
    return approximate


def gelu(x, approximate: str = "none") -> Tensor:
    """x * Phi(x), Phi the standard normal CDF: ``x * 0.5 * (1 + erf(x / sqrt(2)))``, PyTorch's
    default. ``approximate='tanh'``: ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))``.
    The gradient is Phi(x) + x * phi(x) (phi the normal density), by the chain rule."""
    x = as_tensor(x, "gelu", floating=True)
    if check_approximate("gelu", approximate) == "tanh":
        inner = (x + x * x * x * 0.044715) * math.sqrt(2.0 / math.pi)
        return x * 0.5 * (inner.tanh() + 1.0)
    return x * 0.5 * (Erf.apply(x * math.sqrt(0.5)) + 1.0)


def check_softplus(owner: str, beta, threshold) -> tuple[float, float]:
    """``beta`` a finite non-zero number (PyTorch divides by it: 0 gives inf), ``threshold`` a
    finite number. Shared with ``nn.Softplus``."""
    beta = real(owner, "beta", beta)
    if beta == 0:
        bad_argument(owner, "beta", "a non-zero number (the result is divided by it)", beta)
    return beta, real(owner, "threshold", threshold)


def softplus(x, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta * x)) / beta``, and ``x`` where ``beta * x > threshold`` (PyTorch's
    ``softplus``; see Softplus)."""
    x = as_tensor(x, "softplus", floating=True)
    beta, threshold = check_softplus("softplus", beta, threshold)
    return Softplus.apply(x, beta=beta, threshold=threshold)
