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
        loss, grad = softmax_cross_entropy(logits, labels)
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


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy and its gradient with respect to ``logits`` (overwritten)."""
    n = logits.shape[0]
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    probabilities = logits / logits.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = -float(np.mean(np.log(probabilities[rows, labels])))
    grad = probabilities
    grad[rows, labels] -= 1
    grad /= n
    return loss, grad


def conv3x3_columns(x):
    """im2col for a 3x3 convolution with padding 1 on (N, H, W, C) images: an (N*H*W, C*9)
    matrix whose row holds one output pixel's receptive field, in the (C, 3, 3) order of a
    PyTorch-layout weight (O, C, 3, 3). One copy; the padded input is one more."""
    n, h, w, c = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))
    return windows.reshape(n * h * w, c * 9)  # (N, H, W, C, 3, 3) -> rows: a copy


def conv3x3_input_grad(grad_columns, shape):
    """col2im: the gradient of ``conv3x3_columns`` -- nine shifted adds into the padded image."""
    n, h, w, c = shape
    grad_columns = grad_columns.reshape(n, h, w, c, 3, 3)
    padded = np.zeros((n, h + 2, w + 2, c), grad_columns.dtype)
    for i in range(3):
        for j in range(3):
            padded[:, i:i + h, j:j + w, :] += grad_columns[..., i, j]
    return padded[:, 1:-1, 1:-1, :]


class NumpyCNN:
    """Conv 3x3 -> BN -> ReLU -> MaxPool 2 -> Conv 3x3 -> BN -> ReLU -> Flatten -> Linear with
    softmax cross-entropy and plain SGD, by hand. Images are kept channels-last, (N, H, W, C),
    so that a convolution is one (N*H*W, C*9) @ (C*9, O) product whose result is already the
    next layer's layout and BatchNorm is the 2-D one over rows, with no transposes.

    ``params`` are arrays in PyTorch's ``parameters()`` order and layouts: conv1 weight, BN1
    weight, bias, conv2 weight, BN2 weight, bias, linear weight (10, C*H*W in (C, H, W) order),
    linear bias. The linear weight is kept internally in (H, W, C) order (``linear_weight``
    converts back) and every array is updated in place.
    """

    def __init__(self, params, image_hw, lr: float, momentum: float = 0.1):
        self.params = list(params)
        self.lr, self.momentum = lr, momentum
        out, flat = self.params[6].shape
        channels = self.params[3].shape[0]
        h, w = image_hw[0] // 2, image_hw[1] // 2
        # Reorder the linear weight's columns once from (C, H, W) to (H, W, C).
        self.params[6] = np.ascontiguousarray(
            self.params[6].reshape(out, channels, h, w).transpose(0, 2, 3, 1).reshape(out, flat))
        self.running = [[np.zeros(c, params[0].dtype), np.ones(c, params[0].dtype)]
                        for c in (self.params[1].shape[0], channels)]

    def linear_weight(self):
        """The linear weight in PyTorch's (C, H, W) column order."""
        out, flat = self.params[6].shape
        channels = self.params[3].shape[0]
        hw = flat // channels
        return self.params[6].reshape(out, hw, channels).transpose(0, 2, 1).reshape(out, flat)

    def _conv_bn_relu(self, x, weight, gamma, beta, running):
        n, h, w, _ = x.shape
        columns = conv3x3_columns(x)
        pre = columns @ weight.reshape(weight.shape[0], -1).T  # (N*H*W, O)
        out, x_hat, invstd, mean, var = batch_norm_forward(pre, gamma, beta)
        update_running_stats(*running, mean, var, pre.shape[0], self.momentum)
        np.maximum(out, 0, out=out)
        return out.reshape(n, h, w, -1), (columns, x_hat, invstd, out)

    def _conv_bn_relu_backward(self, grad, cache, weight, gamma, input_shape):
        """Gradients (input or None, weight, gamma, beta); ``grad`` is (N, H, W, O)."""
        columns, x_hat, invstd, out = cache
        grad = grad.reshape(out.shape)
        grad *= out > 0
        grad, grad_gamma, grad_beta = batch_norm_backward(grad, x_hat, gamma, invstd)
        grad_weight = (grad.T @ columns).reshape(weight.shape)
        grad_input = None
        if input_shape is not None:
            grad_input = conv3x3_input_grad(grad @ weight.reshape(weight.shape[0], -1),
                                            input_shape)
        return grad_input, grad_weight, grad_gamma, grad_beta

    def step(self, x, labels) -> float:
        """One SGD step on a batch of (N, H, W, C) images; returns the loss."""
        conv1, gamma1, beta1, conv2, gamma2, beta2, linear, linear_bias = self.params
        n = x.shape[0]
        a1, cache1 = self._conv_bn_relu(x, conv1, gamma1, beta1, self.running[0])
        _, h, w, c = a1.shape
        windows = a1.reshape(n, h // 2, 2, w // 2, 2, c)
        pooled = windows.max(axis=(2, 4))
        a2, cache2 = self._conv_bn_relu(pooled, conv2, gamma2, beta2, self.running[1])
        flat = a2.reshape(n, -1)
        logits = flat @ linear.T
        logits += linear_bias
        loss, grad = softmax_cross_entropy(logits, labels)

        grads = [grad.T @ flat, grad.sum(axis=0)]
        grad = grad @ linear
        grad_pooled, *g2 = self._conv_bn_relu_backward(grad, cache2, conv2, gamma2, pooled.shape)
        # Max pooling passes each window's gradient to its maximum. Ties (equal values in a
        # window) are only zeros after ReLU, whose gradient ReLU's mask clears anyway.
        mask = windows == pooled[:, :, None, :, None, :]
        grad_a1 = mask * grad_pooled[:, :, None, :, None, :]
        _, *g1 = self._conv_bn_relu_backward(grad_a1, cache1, conv1, gamma1, None)
        for param, g in zip(self.params, g1 + g2 + grads):
            g *= self.lr
            param -= g
        return loss
