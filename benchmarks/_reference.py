"""Hand-written NumPy baselines the benchmarks measure minigrad against.

Written the way a careful person would write them by hand for speed: the closed-form BatchNorm
backward, in-place updates, and as few fresh (N, C) arrays as the results need. At large sizes
those allocations, not the arithmetic, decide the time (a fresh array is paid for in page
faults on first touch), so each function says how many it makes.
"""
from __future__ import annotations

import numpy as np

EPS = 1e-5


def batch_norm_forward(x, weight, bias):
    """Training-mode BatchNorm over axis 0. Two (N, C) allocations: ``x_hat`` (kept for
    backward) and ``y``. Returns (y, x_hat, invstd, batch mean, biased batch variance)."""
    n = x.shape[0]
    mean = x.mean(axis=0)
    x_hat = x - mean
    # einsum sums the products without materialising them: no (N, C) temporary.
    var = np.einsum("ij,ij->j", x_hat, x_hat) / n
    invstd = 1.0 / np.sqrt(var + EPS)
    x_hat *= invstd
    y = np.multiply(x_hat, weight)
    y += bias
    return y, x_hat, invstd, mean, var


def update_running_stats(running_mean, running_var, mean, var, n: int, momentum: float = 0.1):
    """The running statistics a BatchNorm layer keeps, in place: the batch variance folded in
    is the unbiased one (PyTorch's rule)."""
    running_mean *= 1 - momentum
    running_mean += momentum * mean
    running_var *= 1 - momentum
    running_var += (momentum * n / (n - 1)) * var


def batch_norm_backward(grad_out, x_hat, weight, invstd):
    """The closed form ``dx = weight * invstd * (dy - mean(dy) - x_hat * mean(dy * x_hat))``.
    One (N, C) allocation. Returns (grad_x, grad_weight, grad_bias)."""
    n = grad_out.shape[0]
    grad_weight = np.einsum("ij,ij->j", grad_out, x_hat)
    grad_bias = grad_out.sum(axis=0)
    grad_x = np.multiply(x_hat, grad_weight / n)
    np.subtract(grad_out, grad_x, out=grad_x)
    grad_x -= grad_bias / n
    grad_x *= weight * invstd
    return grad_x, grad_weight, grad_bias


class NumpyMLP:
    """Linear -> BN -> ReLU -> Linear -> BN -> ReLU -> Linear with softmax cross-entropy and
    plain SGD, forward and backward by hand. Weights are (out, in) as in PyTorch; the Linear
    layers before BN have no bias (BN's shift takes its place).

    ``params`` is a list of arrays in the order of PyTorch's ``parameters()``: for each of the
    first two blocks the linear weight, BN weight, BN bias; then the last linear's weight and
    bias. They are updated in place.
    """

    def __init__(self, params, lr: float, momentum: float = 0.1):
        self.params = params
        self.lr = lr
        self.momentum = momentum
        widths = [params[1].shape[0], params[4].shape[0]]
        self.running = [[np.zeros(c, params[0].dtype), np.ones(c, params[0].dtype)]
                        for c in widths]

    def step(self, x, labels) -> float:
        """One SGD step on a batch; returns the loss."""
        n = x.shape[0]
        layers = [self.params[0:3], self.params[3:6]]
        activations, caches = [x], []
        for (weight, gamma, beta), running in zip(layers, self.running):
            pre = activations[-1] @ weight.T
            out, x_hat, invstd, mean, var = batch_norm_forward(pre, gamma, beta)
            update_running_stats(*running, mean, var, n, self.momentum)
            np.maximum(out, 0, out=out)  # ReLU in place; out > 0 is its own mask
            activations.append(out)
            caches.append((x_hat, invstd))
        last_weight, last_bias = self.params[6:8]
        logits = activations[-1] @ last_weight.T
        logits += last_bias
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        probabilities = logits / logits.sum(axis=1, keepdims=True)
        rows = np.arange(n)
        loss = -float(np.mean(np.log(probabilities[rows, labels])))

        grad = probabilities
        grad[rows, labels] -= 1
        grad /= n
        grads = [grad.T @ activations[-1], grad.sum(axis=0)]
        grad = grad @ last_weight
        for (weight, gamma, beta), (x_hat, invstd), below, above in zip(
                reversed(layers), reversed(caches), reversed(activations[:-1]),
                reversed(activations[1:])):
            grad *= above > 0
            grad, grad_gamma, grad_beta = batch_norm_backward(grad, x_hat, gamma, invstd)
            grads = [grad.T @ below, grad_gamma, grad_beta] + grads
            if below is not x:
                grad = grad @ weight
        for param, g in zip(self.params, grads):
            g *= self.lr
            param -= g
        return loss
