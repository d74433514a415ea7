"""BatchNorm1d forward + backward in training mode, float32: minigrad's composed graph, its fused
op, a hand-written fused NumPy reference and (if installed) PyTorch.

Run: ``python benchmarks/bn.py``. Prints median times per size and each one's ratio to the
NumPy reference and to PyTorch, minigrad with its compiled kernels on and off
(``minigrad.kernels.use_kernels``), everything with one BLAS thread and one PyTorch thread.
Targets: fused within 1.2x of the reference, composed within 2.5x; issue 15's: fused (kernels
on) faster than PyTorch at (1024, 1024) and (8192, 1024), at most 1.2x PyTorch at (128, 256). Every
implementation does the whole of a training step's BatchNorm work: normalize, update the running
statistics, backward. For context, with PyTorch installed, a last row builds the composed graph
from PyTorch's own ops (mean, var, sqrt, broadcasting), as minigrad's composed BatchNorm does.

At large sizes the number of fresh (N, C) arrays decides the time, not the arithmetic: each one
costs page faults on first touch (about 2 ms per 32 MiB here). The reference allocates three --
the saved x-hat, the output and the input gradient -- and so does the fused op. The composed
graph allocates seven: four node outputs (x - mean, x-hat, x-hat * weight, + bias) and np.var's
temporary in forward; the product gradient * weight and Var's centred input in backward, which
sums broadcast gradients with einsum and writes into the gradients only it holds.
"""
from __future__ import annotations

import numpy as np

import minigrad as mg
from minigrad import nn
from _reference import EPS, batch_norm_backward, batch_norm_forward, update_running_stats
from _timing import (kernels_note, kernels_switch, machine_note, median_times, one_thread,
                     optional_torch, print_table, verdict)

SIZES = [(32, 64), (128, 256), (1024, 1024), (8192, 1024)]
TARGETS = {"fused": 1.2, "composed": 2.5}  # vs the NumPy reference, either kernel setting
# Issue 15: minigrad fused with kernels on, as a multiple of PyTorch's time.
TORCH_TARGETS = {(128, 256): 1.2, (1024, 1024): 1.0, (8192, 1024): 1.0}


def numpy_step(x, grad_out):
    """The hand-written reference: (y, grad_x, grad_weight, grad_bias), three (N, C) arrays."""
    c = x.shape[1]
    weight, bias = np.ones(c, x.dtype), np.zeros(c, x.dtype)
    running_mean, running_var = np.zeros(c, x.dtype), np.ones(c, x.dtype)

    def step():
        y, x_hat, invstd, mean, var = batch_norm_forward(x, weight, bias)
        update_running_stats(running_mean, running_var, mean, var, x.shape[0])
        return (y,) + batch_norm_backward(grad_out, x_hat, weight, invstd)
    return step


def layer_step(layer, inputs, grad, to_numpy):
    """Forward + backward through ``layer`` (minigrad's or PyTorch's, same attribute names);
    returns (y, grad_x, grad_weight, grad_bias) as arrays."""
    def step():
        inputs.grad = layer.weight.grad = layer.bias.grad = None
        out = layer(inputs)
        out.backward(grad)
        return tuple(to_numpy(t) for t in (out, inputs.grad, layer.weight.grad, layer.bias.grad))
    return step


def minigrad_step(x, grad_out, fused):
    layer = nn.BatchNorm1d(x.shape[1], eps=EPS, fused=fused).to(np.float32)
    return layer_step(layer, mg.Tensor(x, requires_grad=True), mg.Tensor(grad_out),
                      lambda t: t.data)


def torch_step(torch, x, grad_out):
    layer = torch.nn.BatchNorm1d(x.shape[1], eps=EPS)
    return layer_step(layer, torch.tensor(x, requires_grad=True), torch.tensor(grad_out),
                      lambda t: t.detach().numpy())


def torch_composed_step(torch, x, grad_out):
    """BatchNorm1d composed from PyTorch ops, as minigrad's composed graph is from its own."""
    layer = torch.nn.BatchNorm1d(x.shape[1], eps=EPS)  # holds the parameters and statistics
    inputs = torch.tensor(x, requires_grad=True)
    grad = torch.tensor(grad_out)
    count = x.shape[0]

    def step():
        inputs.grad = layer.weight.grad = layer.bias.grad = None
        mean = inputs.mean(dim=0, keepdim=True)
        var = inputs.var(dim=0, unbiased=False, keepdim=True)
        with torch.no_grad():
            update_running_stats(layer.running_mean, layer.running_var, mean[0], var[0], count)
        out = (inputs - mean) * (1.0 / (var + EPS).sqrt()) * layer.weight + layer.bias
        out.backward(grad)
        return tuple(t.detach().numpy() for t in (out, inputs.grad, layer.weight.grad,
                                                  layer.bias.grad))
    return step


def check_agreement(name, got, expected):
    """A benchmark of a wrong result means nothing: compare before timing."""
    for label, a, b in zip(("y", "grad_x", "grad_weight", "grad_bias"), got, expected):
        scale = max(1.0, float(np.abs(b).max()))
        if not np.allclose(a, b, rtol=1e-3, atol=1e-3 * scale):
            raise AssertionError(f"{name}: {label} differs from the NumPy reference by "
                                 f"{np.abs(a - b).max():.3g}")


def main() -> int:
    torch = optional_torch()
    one_thread(torch)
    rng = np.random.default_rng(0)
    rows, misses, torch_verdicts = [], [], []
    for n, c in SIZES:
        x = rng.standard_normal((n, c)).astype(np.float32) * 3 + 1
        grad_out = rng.standard_normal((n, c)).astype(np.float32)
        reference = numpy_step(x, grad_out)
        steps = {"numpy reference": reference}
        if torch is not None:
            steps["pytorch"] = torch_step(torch, x, grad_out)
            steps["pytorch composed"] = torch_composed_step(torch, x, grad_out)
        for fused in (True, False):
            for on in (True, False):
                name = f"minigrad {'fused' if fused else 'composed'} kernels {'on' if on else 'off'}"
                steps[name] = kernels_switch(on, minigrad_step(x, grad_out, fused=fused))
        expected = reference()
        for name, step in steps.items():
            check_agreement(f"{name} at {(n, c)}", step(), expected)
        # Small sizes take a fraction of a millisecond: time loops of calls, so that each sample
        # measures warm, back-to-back calls rather than the cache misses of the switch.
        # At the largest size one call per round and fewer rounds are enough (tens to hundreds
        # of milliseconds a call) and keep the script's run under two minutes.
        large = x.size >= 4_000_000
        times = median_times(steps, min_rounds=5 if large else 9, calls=1 if large else 3,
                             number=max(1, 2_000_000 // x.size))
        base, torch_time = times["numpy reference"], times.get("pytorch")
        for name, seconds in times.items():
            kind = name.split()[1] if name.startswith("minigrad") else name
            ratio = seconds / base
            note = verdict(ratio, TARGETS[kind]) if kind in TARGETS else f"{ratio:.2f}x"
            if kind in TARGETS and ratio > TARGETS[kind]:
                misses.append(f"{name} at {(n, c)}")
            vs_torch = f"{seconds / torch_time:.2f}x" if torch_time else "n/a (no PyTorch)"
            rows.append([f"({n}, {c})", name, f"{seconds * 1e3:.3f}", note, vs_torch])
        if (n, c) in TORCH_TARGETS:
            if torch_time is None:
                torch_verdicts.append(f"  ({n}, {c}): not checked, PyTorch is not installed")
            else:
                ratio = times["minigrad fused kernels on"] / torch_time
                torch_verdicts.append(f"  ({n}, {c}): fused, kernels on, vs PyTorch "
                                      + verdict(ratio, TORCH_TARGETS[(n, c)]))
    print("BatchNorm1d forward + backward, training mode, float32 (median of repeats)")
    print(machine_note())
    print(kernels_note())
    print_table(["size", "implementation", "ms", "vs numpy reference", "vs pytorch"], rows)
    if misses:
        print("targets vs the NumPy reference missed: " + ", ".join(misses))
    print("issue 15 targets:")
    print("\n".join(torch_verdicts))
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
