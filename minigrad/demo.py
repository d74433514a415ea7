"""``minigrad demo``: the tour a newcomer runs first (``make demo``)."""
from __future__ import annotations

import numpy as np

import minigrad as mg


def batch_norm_composed(x, weight, bias, eps=1e-5):
    """BatchNorm's training forward, written with the library's own ops."""
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    return (x - mean) / (var + eps).sqrt() * weight + bias


def gradient_table() -> list[tuple[str, tuple, float, bool]]:
    """Check BatchNorm's gradients w.r.t. x, weight and bias by finite differences."""
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((8, 3)) * 2 + 1, requires_grad=True)
    weight = mg.tensor(rng.uniform(0.5, 1.5, 3), requires_grad=True)
    bias = mg.tensor(rng.standard_normal(3), requires_grad=True)
    upstream = mg.tensor(rng.standard_normal((8, 3)))
    loss = (batch_norm_composed(x, weight, bias) * upstream).sum()
    loss.backward()
    rows = []
    for name, t in (("x", x), ("weight", weight), ("bias", bias)):
        def loss_of(value, name=name):
            args = {"x": x, "weight": weight, "bias": bias, name: value}
            return (batch_norm_composed(args["x"], args["weight"], args["bias"]) * upstream).sum()
        numeric = _central_differences(loss_of, t.data)
        error = np.max(np.abs(t.grad.data - numeric) / np.maximum(
            np.maximum(np.abs(t.grad.data), np.abs(numeric)), 1e-12))
        ok = mg.gradcheck(lambda v, f=loss_of: f(v), (mg.tensor(t.data, requires_grad=True),),
                          raise_exception=False)
        rows.append((name, t.shape, float(error), ok))
    return rows


def _central_differences(f, values, eps=1e-6):
    grad = np.zeros_like(values)
    for i in np.ndindex(values.shape):
        plus, minus = values.copy(), values.copy()
        plus[i] += eps
        minus[i] -= eps
        grad[i] = (f(mg.tensor(plus)).item() - f(mg.tensor(minus)).item()) / (2 * eps)
    return grad


def add_arguments(parser) -> None:
    pass


def run(args) -> int:
    print("BatchNorm composed from mean, var, sqrt and broadcasting, on a batch of 8 x 3:")
    print(f"{'input':<8}{'shape':<10}{'max rel. error':>16}  check")
    rows = gradient_table()
    for name, shape, error, ok in rows:
        print(f"{name:<8}{str(shape):<10}{error:>16.2e}  {'pass' if ok else 'FAIL'}")
    return 0 if all(ok for *_, ok in rows) else 1
