"""Per-op overhead: forward + backward of tiny graphs on (4, 4) float64 tensors, where the
arithmetic costs almost nothing and what is measured is Python: tensor construction, dispatch and
graph bookkeeping.

Run: ``python benchmarks/overhead.py``. For each graph it prints the median time of one
iteration (build the graph, backpropagate, gradients ready) for minigrad, a hand-written NumPy
forward + backward (the floor: no autograd at all) and, if installed, PyTorch eager; then the
ratios. Target: minigrad at most 0.7x PyTorch's time.
"""
from __future__ import annotations

import numpy as np

import minigrad as mg
from _timing import median_times, optional_torch, print_table, verdict

SHAPE = (4, 4)
TARGET = 0.7  # minigrad / PyTorch
EPS = 1e-5


# A hand-written NumPy forward + backward per graph: step() returns the inputs' gradients.

def numpy_mul_add(a, b):
    def step():
        c = a * b + a
        c.sum()
        grad_c = np.ones_like(c)
        return grad_c * b + grad_c, grad_c * a
    return step


def numpy_linear_tanh(x, w, bias):
    def step():
        t = np.tanh(x @ w + bias)
        t.sum()
        grad_h = 1.0 - t * t
        return grad_h @ w.T, x.T @ grad_h, grad_h.sum(axis=0)
    return step


def numpy_batch_norm(x, weight, bias):
    def step():
        mean = x.mean(axis=0)
        centered = x - mean
        inv_std = 1.0 / np.sqrt((centered * centered).mean(axis=0) + EPS)
        x_hat = centered * inv_std
        (x_hat * weight + bias).sum()
        grad_x_hat = np.ones_like(x) * weight
        grad_x = inv_std * (grad_x_hat - grad_x_hat.mean(axis=0)
                            - x_hat * (grad_x_hat * x_hat).mean(axis=0))
        return grad_x, x_hat.sum(axis=0), np.full(bias.shape, float(len(x)))
    return step


def mul_add(a, b):
    return (a * b + a).sum()


def linear_tanh(x, w, bias):
    return (x @ w + bias).tanh().sum()


def batch_norm(x, weight, bias):
    return ((x - x.mean(axis=0)) / (x.var(axis=0) + EPS).sqrt() * weight + bias).sum()


def torch_batch_norm(x, weight, bias):
    # The same ops in PyTorch's spelling (its var is unbiased unless told otherwise).
    return ((x - x.mean(dim=0)) / (x.var(dim=0, correction=0) + EPS).sqrt() * weight
            + bias).sum()


GRAPHS = {  # name: (forward ops, minigrad forward, PyTorch forward, NumPy step, input shapes)
    "c = a*b + a; c.sum()": (3, mul_add, mul_add, numpy_mul_add, [SHAPE, SHAPE]),
    "(x @ w + b).tanh().sum()": (4, linear_tanh, linear_tanh, numpy_linear_tanh,
                                 [SHAPE, SHAPE, SHAPE[1:]]),
    "composed batch norm, .sum()": (9, batch_norm, torch_batch_norm, numpy_batch_norm,
                                    [SHAPE, SHAPE[1:], SHAPE[1:]]),
}


def autograd_step(make_tensor, forward, arrays):
    """One iteration in minigrad or PyTorch: clear the gradients, forward, backward."""
    inputs = [make_tensor(a) for a in arrays]

    def step():
        for t in inputs:
            t.grad = None
        forward(*inputs).backward()
        return [t.grad for t in inputs]
    return step


def check_agreement(name, steps):
    """A benchmark of wrong gradients means nothing: compare before timing."""
    results = {library: step() for library, step in steps.items()}
    for library, grads in results.items():
        for got, expected in zip(grads, results["numpy"]):
            if not np.allclose(np.asarray(got), expected, rtol=1e-10, atol=1e-12):
                raise SystemExit(f"{name}: {library} gradients differ from the NumPy reference")


def main() -> None:
    torch = optional_torch()
    if torch is not None:
        torch.set_num_threads(1)  # tiny tensors: threads only add noise on a shared machine
    rng = np.random.default_rng(0)
    rows, first_ratio = [], None
    for name, (op_count, forward, torch_forward, numpy_graph, shapes) in GRAPHS.items():
        arrays = [rng.standard_normal(shape) for shape in shapes]
        steps = {"numpy": numpy_graph(*arrays),
                 "minigrad": autograd_step(lambda a: mg.Tensor(a, requires_grad=True), forward,
                                           arrays)}
        if torch is not None:
            steps["torch"] = autograd_step(lambda a: torch.tensor(a, requires_grad=True),
                                           torch_forward, arrays)
        check_agreement(name, steps)
        seconds = median_times(steps, min_rounds=30, min_total=1.5, warmup=200, number=200)
        micro = {library: s * 1e6 for library, s in seconds.items()}
        row = [name, op_count, f"{micro['numpy']:.1f}", f"{micro['minigrad']:.1f}",
               f"{micro['minigrad'] / op_count:.1f}"]
        ratio_numpy = f"{micro['minigrad'] / micro['numpy']:.1f}x"
        if torch is not None:
            ratio = micro["minigrad"] / micro["torch"]
            first_ratio = ratio if first_ratio is None else first_ratio
            row += [f"{micro['torch']:.1f}", f"{micro['torch'] / op_count:.1f}", f"{ratio:.2f}x"]
        rows.append(row + [ratio_numpy])
    header = ["graph (4x4 float64, forward + backward)", "ops", "numpy us", "minigrad us",
              "minigrad us/op"]
    if torch is not None:
        header += ["torch us", "torch us/op", "minigrad/torch"]
    print_table(header + ["minigrad/numpy"], rows)
    print()
    if torch is None:
        print("PyTorch is not installed: no comparison with it.")
    else:
        print(f"minigrad / PyTorch on c = a*b + a: {verdict(first_ratio, TARGET)}")


if __name__ == "__main__":
    main()
