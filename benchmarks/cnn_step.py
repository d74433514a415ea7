"""One training step of a small CNN, float32, batch 64: minigrad (fused BatchNorm and composed,
each with its compiled kernels on and off), PyTorch (if installed) and the same network written
by hand in NumPy.

Network: Conv2d 3x3 (16 maps, padding 1) -> BatchNorm2d -> ReLU -> MaxPool2d 2 -> Conv2d 3x3
(32 maps, padding 1) -> BatchNorm2d -> ReLU -> Flatten -> Linear -> 10, softmax cross-entropy,
plain SGD; on 28x28 grey images (1 channel) and 3x32x32 colour ones. Every implementation starts
from the same weights and is checked to take the same steps before it is timed.

Run: ``python benchmarks/cnn_step.py``. One BLAS thread and one PyTorch thread. Target (issue
15): minigrad fused with kernels on at most 1.5x PyTorch's time at both image sizes.

Where the time goes (fused, kernels on, 28x28, each op's forward and backward timed in a
step): the matrix products of the convolutions and the linear layer about 40% (the second
convolution's alone 8 ms: NumPy's OpenBLAS on (12544, 144) @ (144, 32) and its transposes);
ReLU about 19%; BatchNorm about 17%; im2col/col2im about 14% (at 3x32x32 the first layer's
im2col of a 3-channel image, 65536 rows of 27, is the largest of them); max pooling about 5%;
Flatten's copy of channels-last memory 3%. Max pooling used to cost about 16 ms a step (a
window tensor, an ``argmax``, ``np.add.at`` on (N * OH * OW * C, K) and a Col2Im); it now
picks each window's winner on the arrays and gathers the input at those flat indices, its
gradient a 1-D scatter-add (``np.add.at`` with a 1-D index is 8x faster than with the same
index as a 4-D array). Convolutions read channels-last inputs in memory order, their patches
laid out (KH, KW, C).

Page faults: glibc's malloc hands large freed arrays straight back to the system, so a step
faults in about 7,500 fresh pages. ``MALLOC_MMAP_THRESHOLD_=67108864
MALLOC_TRIM_THRESHOLD_=268435456`` in the environment removes them all; minigrad and PyTorch
then both take 10-15% less time, their ratio unchanged. The benchmark runs without them.
"""
from __future__ import annotations

import numpy as np

import minigrad as mg
from minigrad import nn, optim
from minigrad.training import train_step
from _reference import NumpyCNN
from _timing import (check_same_step, kernels_note, kernels_switch, machine_note, median_times,
                     one_thread, optional_torch, print_table, torch_training_step, verdict)

BATCH, LR = 64, 0.01
IMAGES = [(1, 28, 28), (3, 32, 32)]
TARGET = 1.5  # minigrad fused, kernels on, vs PyTorch


def layer_specs(channels, height, width):
    """The network as (kind, arguments) pairs, so minigrad and PyTorch build the same one."""
    flat = 32 * (height // 2) * (width // 2)
    return [("Conv2d", (channels, 16, 3), dict(padding=1, bias=False)), ("BatchNorm2d", (16,), {}),
            ("ReLU", (), {}), ("MaxPool2d", (2,), {}),
            ("Conv2d", (16, 32, 3), dict(padding=1, bias=False)), ("BatchNorm2d", (32,), {}),
            ("ReLU", (), {}), ("Flatten", (), {}), ("Linear", (flat, 10), {})]


def minigrad_model(image, fused):
    layers = []
    for kind, args, kwargs in layer_specs(*image):
        extra = dict(fused=fused) if kind == "BatchNorm2d" else {}
        layers.append(getattr(nn, kind)(*args, **kwargs, **extra))
    return nn.Sequential(*layers).to(np.float32)


def minigrad_runner(image, fused, kernels_on, state, x, labels):
    model = minigrad_model(image, fused)
    model.load_state_dict(state)
    optimizer = optim.SGD(model.parameters(), lr=LR)
    features, targets = mg.Tensor(x), mg.Tensor(labels)
    step = kernels_switch(kernels_on, lambda: train_step(model, optimizer, features, targets)[0])
    return step, lambda: [p.data for p in model.parameters()]


def torch_runner(torch, image, state, x, labels):
    model = torch.nn.Sequential(*[getattr(torch.nn, kind)(*args, **kwargs)
                                  for kind, args, kwargs in layer_specs(*image)])
    model.load_state_dict({name: torch.from_numpy(np.array(value)) for name, value in
                           state.items()})
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    step = torch_training_step(torch, model, optimizer, torch.from_numpy(x),
                               torch.from_numpy(labels))
    return step, lambda: [p.detach().numpy() for p in model.parameters()]


def numpy_runner(image, state, x, labels):
    params = [np.array(value) for name, value in state.items()
              if not name.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    model = NumpyCNN(params, image[1:], lr=LR)
    channels_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1))  # its layout, made once
    weights = lambda: model.params[:6] + [model.linear_weight(), model.params[7]]
    return (lambda: model.step(channels_last, labels)), weights


def main() -> int:
    torch = optional_torch()
    one_thread(torch)
    rng = np.random.default_rng(0)
    rows, verdicts = [], []
    for image in IMAGES:
        x = rng.standard_normal((BATCH,) + image).astype(np.float32)
        labels = rng.integers(0, 10, BATCH)
        nn.manual_seed(0)
        state = {name: np.array(value)
                 for name, value in minigrad_model(image, True).state_dict().items()}

        def make_runners():
            runners = {}
            for fused in (True, False):
                for on in (True, False):
                    name = (f"minigrad {'fused' if fused else 'composed'} kernels "
                            f"{'on' if on else 'off'}")
                    runners[name] = minigrad_runner(image, fused, on, state, x, labels)
            runners["numpy by hand"] = numpy_runner(image, state, x, labels)
            if torch is not None:
                runners["pytorch"] = torch_runner(torch, image, state, x, labels)
            return runners

        check_same_step(make_runners(), steps=3)
        times = median_times({name: step for name, (step, _) in make_runners().items()},
                             calls=3, min_total=3.0)
        numpy_time, torch_time = times["numpy by hand"], times.get("pytorch")
        label = "x".join(map(str, image))
        for name, seconds in times.items():
            vs_torch = f"{seconds / torch_time:.2f}x" if torch_time else "n/a (no PyTorch)"
            rows.append([label, name, f"{seconds * 1e3:.2f}", vs_torch,
                         f"{seconds / numpy_time:.2f}x"])
        if torch_time is None:
            verdicts.append(f"  {label}: not checked, PyTorch is not installed")
        else:
            ratio = times["minigrad fused kernels on"] / torch_time
            verdicts.append(f"  {label}: fused, kernels on, vs PyTorch {verdict(ratio, TARGET)}")
    print(f"training step, CNN conv3x3(16)-BN-ReLU-maxpool2-conv3x3(32)-BN-ReLU-linear, batch "
          f"{BATCH}, float32, SGD (median of repeats)")
    print(machine_note())
    print(kernels_note())
    print_table(["image", "implementation", "ms", "vs pytorch", "vs numpy by hand"], rows)
    print("issue 15 targets:")
    print("\n".join(verdicts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
