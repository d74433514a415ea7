"""Exercise: the backward pass of BatchNorm, by hand, with NumPy.

The forward pass is given. Write ``batchnorm_backward`` below, then grade it with

    minigrad exercise check THIS_FILE

which compares your gradients with finite differences and with the closed form, and, if dx is
wrong, tells you which of BatchNorm's three routes from x to the loss is missing or wrong.

Shapes: x is (N, D), a batch of N examples with D features; gamma and beta are (D,).
The statistics are per feature, over the batch (axis 0). The variance is the biased one
(divide by N), as BatchNorm uses in training.
"""
import numpy as np


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """BatchNorm in training mode. Returns ``out`` and a ``cache`` for the backward pass.

    Do not change this function: the checker grades your backward against it."""
    mu = x.mean(axis=0)                 # (D,) batch mean
    var = x.var(axis=0)                 # (D,) batch variance, divided by N
    x_hat = (x - mu) / np.sqrt(var + eps)
    out = gamma * x_hat + beta
    cache = {"x": x, "x_hat": x_hat, "mu": mu, "var": var, "gamma": gamma, "eps": eps}
    return out, cache


def batchnorm_backward(dout, cache):
    """Given ``dout`` = dL/dout, shape (N, D), return ``(dx, dgamma, dbeta)``:
    dL/dx with x's shape (N, D), dL/dgamma and dL/dbeta with gamma's shape (D,).

    Hints:
      * Draw the forward as a graph: x -> mu, x -> var, (x, mu, var) -> x_hat -> out.
        x reaches x_hat three ways: directly, through mu, and through var. dx is the sum
        of the gradients arriving along those three routes.
      * dbeta and dgamma are sums over the batch: every example used the same beta and gamma.
      * std = sqrt(var + eps): eps is inside the square root.
      * Use only NumPy and what is in the cache (cache["x"], cache["x_hat"], ...).
    """
    dx, dgamma, dbeta = None, None, None
    # TODO: your code here. Replace the Nones above with your gradients.
    return dx, dgamma, dbeta
