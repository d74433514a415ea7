"""Claim 1: BatchNorm reduces internal covariate shift (Ioffe & Szegedy 2015, Fig. 1) -- and is
that why it helps? (Santurkar et al. 2018).

Three 3-hidden-layer, 100-unit sigmoid MLPs are trained with plain SGD (batch 60, lr 0.5) on
the digits, over ``Settings.seeds``:

* **no norm**;
* **BatchNorm** before each sigmoid;
* **noisy BN**: BatchNorm followed by a random per-unit scale and shift redrawn at every
  training step (``NoisyShift``), Santurkar's ablation: the distribution each sigmoid sees now
  moves *more* than without BatchNorm, while BatchNorm's other effects stay. At test time the
  noise is replaced by its mean (scale 1, shift 0), as dropout is.

Every ``every`` steps we record the test accuracy and probe a fixed batch of test images:

* **the distribution** of the last hidden layer's units: the 15th, 50th and 85th percentiles
  of the pre-BN linear output and of the sigmoid's input. The probe is *not* standardised on
  itself (which would pin its mean and variance by construction): BatchNorm normalises it with
  the statistics of a training batch of 60, drawn afresh at each record, exactly as a training
  step normalises its samples (``probe_layers``). That is the distribution the sigmoid receives
  in training, batch-to-batch noise of the statistics included. Eval mode with the running
  averages would be the alternative; it is less faithful because the averages lag ~10 steps
  behind and smooth away the very fluctuation the next layer sees.
* **gradient-based ICS** (Santurkar's Definition 2.1, ``gradient_ics``): on that training
  batch, the gradient G of the last hidden layer's weight, and G' after the layers below it have
  taken their SGD step on the same batch; we keep ||G - G'|| / ||G|| and cos(G, G').

Two measures of shift, in units of the sigmoid's input (the sigmoid does not care where the
numbers came from, so the three networks compare in the same units), averaged over the three
percentiles and the 100 units: the **movement per record** (mean |change| between consecutive
records: everything the next layer has to follow, trend and batch-to-batch jitter; the
headline, chosen before any run) and the **drift** (|last record - first record|: the trend
Ioffe's Fig. 1 shows). The pre-BN output, whose scale BatchNorm leaves free, moves in units of
its own 15th-85th spread (reported, not judged).

Test accuracy is in eval mode (running statistics, noise at its mean); its mean over the
records is the area under the test-accuracy curve, which counts how fast a network learns as
well as where it ends.
"""
from __future__ import annotations

import copy

import numpy as np

import minigrad as mg
from minigrad import nn
from minigrad.functional import cross_entropy

from .common import (COLORS, Findings, band, digits, evaluate, mlp, seed_everything, sgd,
                     train)
from .verdict import CONTRADICTED, INDICATIVE, REPRODUCED, Claim, judge

VARIANTS = ("no norm", "BatchNorm", "noisy BN")
VARIANT_COLORS = {"no norm": COLORS["no norm"], "BatchNorm": COLORS["BatchNorm"],
                  "noisy BN": "tab:red"}
WIDTHS = (64, 100, 100, 100, 10)
PERCENTILES = (15, 50, 85)
UNIT = 0          # the unit whose percentiles the figure shows
PROBE_SIZE = 256  # test images the percentiles are measured on
BATCH_SIZE = 60   # as in the paper
LEARNING_RATE = 0.5
NOISE_SHIFT = 1.0        # noisy BN: shift ~ U(-1, 1) per unit and step...
NOISE_SCALE = (0.5, 1.5)  # ...and scale ~ U(0.5, 1.5) (mean 1, what the test-time layer uses)

# The claims, their metrics and the smallest differences that matter (fixed before running).
# A shift of 0.05 in a sigmoid's input moves its output by at most 0.0125: below that, no
# difference in shift matters. One percentage point of test accuracy is ~4.5 test images.
STABILISES = Claim("[stabilises, Ioffe Fig. 1] sigmoid-input movement per record", "BatchNorm",
                   "no norm", "negative", 0.05)
DRIFT = Claim("[stabilises, Ioffe Fig. 1] sigmoid-input drift, first to last record",
              "BatchNorm", "no norm", "negative", 0.05)
ABLATION = Claim("[ablation check] sigmoid-input movement per record", "noisy BN", "no norm",
                 "positive", 0.05)
ICS_HELPS = Claim("[ICS is why BN helps: noisy BN no better than no norm] mean test accuracy "
                  "over training", "noisy BN", "no norm", "negative", 0.0, "%")
NOISE_COSTS = Claim("[noisy BN trains worse than BN] mean test accuracy over training",
                    "noisy BN", "BatchNorm", "negative", 1.0, "%")
GRADIENT_ICS = Claim("[gradient ICS, Santurkar Def. 2.1] ||G-G'||/||G|| of the last hidden "
                     "layer", "BatchNorm", "no norm", "negative", 0.0)


class NoisyShift(nn.Module):
    """Santurkar et al.'s (2018) noise after BatchNorm: in training, y = scale * x + shift with
    one ``scale`` ~ U(*scale_range) and one ``shift`` ~ U(-shift, shift) per unit, shared by
    the batch and redrawn at every forward pass -- a random covariate shift at every step. In
    eval mode the layer is the noise's mean (the identity when the scale's mean is 1).

    ``frozen = True`` keeps the current draw (to evaluate one step's function twice)."""

    def __init__(self, num_features: int, shift: float = NOISE_SHIFT,
                 scale_range=NOISE_SCALE, seed: int = 0):
        super().__init__()
        self.num_features = num_features
        self.shift_range = float(shift)
        self.scale_range = tuple(float(s) for s in scale_range)
        self.rng = np.random.default_rng(seed)
        self.frozen = False
        self.resample()

    def resample(self) -> None:
        """Draw a new per-unit scale and shift."""
        n = self.num_features
        self.scale = self.rng.uniform(*self.scale_range, n).astype(mg.get_default_dtype())
        self.shift = self.rng.uniform(-self.shift_range, self.shift_range, n).astype(
            mg.get_default_dtype())

    def transform(self, x: np.ndarray) -> np.ndarray:
        """The current draw applied to an array (no graph, no new draw)."""
        return x * self.scale + self.shift

    def forward(self, x):
        if not self.training:
            mean_scale = sum(self.scale_range) / 2
            return x if mean_scale == 1.0 else x * mean_scale
        if not self.frozen:
            self.resample()
        return x * mg.Tensor(self.scale) + mg.Tensor(self.shift)

    def extra_repr(self):
        return (f"{self.num_features}, shift=U(-{self.shift_range:g}, {self.shift_range:g}), "
                f"scale=U{self.scale_range}")


def network(kind: str, seed: int) -> nn.Sequential:
    """The 3x100 sigmoid MLP of ``kind`` (a key of ``VARIANTS``). BatchNorm and noisy BN get the
    same initial weights (noisy BN is BatchNorm with a ``NoisyShift`` after each BN)."""
    seed_everything(seed)
    model = mlp(WIDTHS, batch_norm=kind != "no norm", activation=nn.Sigmoid)
    if kind != "noisy BN":
        return model
    layers = []
    for module in model:
        layers.append(module)
        if isinstance(module, nn.BatchNorm1d):
            layers.append(NoisyShift(module.num_features, seed=1000 * seed + len(layers)))
    return nn.Sequential(*layers)


def probe_layers(model: nn.Sequential, probe: np.ndarray, batch: np.ndarray) -> list:
    """For each sigmoid of ``model``: (the pre-BN linear output, the sigmoid's input) of the
    rows of ``probe``, as a training step on ``batch`` would compute them -- every BatchNorm
    normalises with ``batch``'s mean and (biased) variance at that layer, not the probe's own,
    and every ``NoisyShift`` applies its current draw. Without normalisation layers the two
    arrays are the same. The model and its running statistics are left untouched."""
    p, b = np.asarray(probe), np.asarray(batch)
    pre, found = None, []
    with mg.no_grad():
        for module in model:
            if isinstance(module, nn.BatchNorm1d):
                mean, var = b.mean(axis=0), b.var(axis=0)
                weight = 1.0 if module.weight is None else module.weight.data
                bias = 0.0 if module.bias is None else module.bias.data
                p, b = ((h - mean) / np.sqrt(var + module.eps) * weight + bias for h in (p, b))
            elif isinstance(module, NoisyShift):
                p, b = module.transform(p), module.transform(b)
            elif isinstance(module, nn.Sigmoid):
                found.append((pre, p))
                p, b = (module(mg.Tensor(h)).data for h in (p, b))
            elif isinstance(module, nn.Linear):
                p, b = (module(mg.Tensor(h)).data for h in (p, b))
                pre = p
            else:
                raise TypeError(f"probe_layers: no rule for {type(module).__name__}")
    return found


def gradient_ics(model: nn.Sequential, layer: int, x: np.ndarray, y: np.ndarray,
                 lr: float) -> tuple:
    """Santurkar et al.'s (2018, Definition 2.1) internal covariate shift of layer ``layer``
    (an index into ``model``, a Linear) on the batch (``x``, ``y``): G, the cross-entropy
    gradient of its weight, and G', the same gradient after every layer *before* it has taken
    its plain SGD step (``lr`` times its gradient on this batch) while it and the layers after
    it have not. Returns (||G - G'||, ||G - G'|| / ||G||, cos(G, G')).

    Runs on a copy in training mode (the running statistics of ``model`` are not touched), with
    any noise frozen at its current draw, so both gradients see the same step's function."""
    scratch = copy.deepcopy(model)
    scratch.train()
    for module in scratch:
        if isinstance(module, NoisyShift):
            module.frozen = True
    target = scratch[layer].weight
    before = [p for i, module in enumerate(scratch) if i < layer for p in module.parameters()]
    features, labels = mg.Tensor(x), mg.Tensor(y)

    def gradient() -> np.ndarray:
        for p in scratch.parameters():
            p.grad = None
        cross_entropy(scratch(features), labels).backward()
        return target.grad.data.copy()

    g = gradient()
    for p in before:
        p.data = p.data - lr * p.grad.data
    g_after = gradient()
    distance = float(np.linalg.norm(g - g_after))
    norm = float(np.linalg.norm(g))
    cosine = float(np.sum(g * g_after) / max(norm * np.linalg.norm(g_after), 1e-30))
    return distance, distance / max(norm, 1e-30), cosine


def movement(percentiles: np.ndarray) -> float:
    """How far the distribution moves from one record to the next: the mean over consecutive
    records, units and percentiles of |change| (``percentiles``: records x units x 3)."""
    return float(np.mean(np.abs(np.diff(percentiles, axis=0))))


def relative_movement(percentiles: np.ndarray) -> float:
    """``movement`` with each change measured in the unit's own 15th-85th percentile spread at
    the two records (for the pre-BN output, whose scale BatchNorm leaves free): how many of its
    own widths the distribution moves between records."""
    spread = percentiles[:, :, -1] - percentiles[:, :, 0]
    width = np.maximum((spread[1:] + spread[:-1]) / 2, 1e-12)[:, :, None]
    return float(np.mean(np.abs(np.diff(percentiles, axis=0)) / width))


def drift(percentiles: np.ndarray) -> float:
    """How far the distribution ends from where it started: the mean over units and
    percentiles of |last record - first record| (the trend of Ioffe's Fig. 1, blind to
    batch-to-batch jitter)."""
    return float(np.mean(np.abs(percentiles[-1] - percentiles[0])))


def run(settings) -> Findings:
    steps, every = (200, 20) if settings.quick else (800, 50)
    seeds = settings.seeds
    traces = {kind: [] for kind in VARIANTS}
    with settings.bar(len(VARIANTS) * len(seeds) * steps, "ics") as bar:
        for seed in seeds:
            for kind in VARIANTS:
                traces[kind].append(_trace(kind, steps, every, seed, bar))

    def per_seed(key):
        return {kind: [t[key] for t in traces[kind]] for kind in VARIANTS}

    shift = {kind: [movement(t["post"]) for t in traces[kind]] for kind in VARIANTS}
    trend = {kind: [drift(t["post"]) for t in traces[kind]] for kind in VARIANTS}
    pre_shift = {kind: [relative_movement(t["pre"]) for t in traces[kind]] for kind in VARIANTS}
    mean_acc = {kind: [100 * float(np.mean(t["accuracy"])) for t in traces[kind]]
                for kind in VARIANTS}
    final_acc = {kind: [100 * t["accuracy"][-1] for t in traces[kind]] for kind in VARIANTS}
    ics = {kind: [float(np.mean(t["ics_relative"])) for t in traces[kind]] for kind in VARIANTS}
    cosine = {kind: [float(np.mean(t["ics_cosine"])) for t in traces[kind]] for kind in VARIANTS}

    verdicts = [judge(STABILISES, shift["BatchNorm"], shift["no norm"]),
                judge(DRIFT, trend["BatchNorm"], trend["no norm"]),
                judge(ICS_HELPS, mean_acc["noisy BN"], mean_acc["no norm"]),
                judge(NOISE_COSTS, mean_acc["noisy BN"], mean_acc["BatchNorm"]),
                judge(ABLATION, shift["noisy BN"], shift["no norm"]),
                judge(GRADIENT_ICS, ics["BatchNorm"], ics["no norm"])]

    first = {kind: traces[kind][0] for kind in VARIANTS}  # seed 0: the example curves
    numbers = {
        "steps": steps, "record_every": every, "batch_size": BATCH_SIZE,
        "learning_rate": LEARNING_RATE, "seeds": seeds, "unit": UNIT,
        "percentiles": list(PERCENTILES), "probe_size": PROBE_SIZE,
        "noise": {"shift": [-NOISE_SHIFT, NOISE_SHIFT], "scale": list(NOISE_SCALE)},
        "diverged_runs": {kind: sum(t["diverged"] for t in traces[kind]) for kind in VARIANTS},
        "series": {kind: {"step": t["step"], "test_accuracy": t["accuracy"],
                          "unit_percentiles": t["post"][:, UNIT].tolist(),
                          "unit_pre_bn_percentiles": t["pre"][:, UNIT].tolist()}
                   for kind, t in first.items()},
        "per_seed": {
            "sigmoid_input_movement": shift, "sigmoid_input_drift": trend,
            "pre_bn_relative_movement": pre_shift,
            "mean_test_accuracy": mean_acc, "final_test_accuracy": final_acc,
            "gradient_ics_relative": ics, "gradient_ics_cosine": cosine,
            "gradient_ics_distance": {k: [float(np.mean(t["ics_distance"])) for t in v]
                                      for k, v in traces.items()},
            "test_accuracy_curves": per_seed("accuracy"),
        },
    }
    columns = ["network", "mean test acc over training (%)", "final test acc (%)",
               f"sigmoid-input movement per {every} steps", "sigmoid-input drift, first to last",
               "pre-BN movement (own spreads)", "gradient ICS ||G-G'||/||G||",
               "cos(G, G')"]
    rows = [[kind, _mean_range(mean_acc[kind], 1), _mean_range(final_acc[kind], 1),
             _mean_range(shift[kind], 3), _mean_range(trend[kind], 3), _mean_range(pre_shift[kind], 3),
             _mean_range(ics[kind], 3), _mean_range(cosine[kind], 3)] for kind in VARIANTS]
    return Findings.from_verdicts(verdicts, numbers=numbers, columns=columns, rows=rows,
                                  figure=_plot(traces, steps, every), note=_note(verdicts))


def _trace(kind: str, steps: int, every: int, seed: int, bar) -> dict:
    """Train one network, recording every ``every`` steps the test accuracy, the last hidden
    layer's percentiles (pre-BN output and sigmoid input, each records x units x 3) and its
    gradient-based ICS."""
    data = digits()
    probe = data.x_test[:PROBE_SIZE]
    model = network(kind, seed)
    last_linear = [i for i, m in enumerate(model) if isinstance(m, nn.Linear)][-2]
    trace = {"step": [], "accuracy": [], "pre": [], "post": [], "ics_distance": [],
             "ics_relative": [], "ics_cosine": []}

    def record(step):
        # A training batch of the size the network trains on, the same for the three
        # networks at this step and seed.
        rng = np.random.default_rng([seed, step])
        rows = rng.choice(len(data.x_train), BATCH_SIZE, replace=False)
        x, y = data.x_train[rows], data.y_train[rows]
        pre, post = probe_layers(model, probe, x)[-1]
        distance, relative, cosine = gradient_ics(model, last_linear, x, y, LEARNING_RATE)
        trace["step"].append(step)
        trace["accuracy"].append(evaluate(model, data.x_test, data.y_test)[1])
        trace["pre"].append(np.percentile(pre, PERCENTILES, axis=0).T)
        trace["post"].append(np.percentile(post, PERCENTILES, axis=0).T)
        trace["ics_distance"].append(distance)
        trace["ics_relative"].append(relative)
        trace["ics_cosine"].append(cosine)

    run = train(model, steps=steps, batch_size=BATCH_SIZE,
                optimizer=sgd(model, LEARNING_RATE, 0.0), seed=seed, bar=bar, every=every,
                on_record=record)
    trace["diverged"] = run.diverged
    if run.diverged:
        # Not expected at this rate, but a diverged run must still be a number of each metric:
        # test accuracy at chance (10%) for the records it did not reach, and its distribution
        # and gradient ICS held at their last finite record.
        for step in range(trace["step"][-1] + every, steps + every, every):
            trace["step"].append(min(step, steps))
            trace["accuracy"].append(0.1)
            for key in ("pre", "post", "ics_distance", "ics_relative", "ics_cosine"):
                trace[key].append(trace[key][-1])
    for key in ("pre", "post"):
        trace[key] = np.asarray(trace[key], dtype=np.float64)
    return trace


def _mean_range(values, digits_: int) -> str:
    """'mean [min, max]' over seeds (one seed: the value)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 1:
        return f"{values[0]:.{digits_}f}"
    return f"{values.mean():.{digits_}f} [{values.min():.{digits_}f}, {values.max():.{digits_}f}]"


def _note(verdicts) -> str:
    """What the literature found, and whether these runs agree (from the verdict labels)."""
    stabilises, trend, ics_helps, noise_costs, ablation, gradient = (v.label for v in verdicts)
    if stabilises == INDICATIVE:
        return ("Literature: Ioffe & Szegedy (2015, Fig. 1) found the sigmoid inputs stable with "
                "BN; Santurkar et al. (2018) found noisy BN trains almost as well as BN despite "
                "more shift, and gradient ICS no lower with BN (one seed: no comparison)")
    agreement = {REPRODUCED: "agrees", CONTRADICTED: "disagrees"}
    ioffe = (f"{agreement.get(stabilises, 'cannot tell')} on the movement per record, "
             f"{agreement.get(trend, 'cannot tell')} on the drift")
    if ablation != REPRODUCED:
        santurkar = "the ablation did not shift the distribution more than no norm: void"
    elif ics_helps == CONTRADICTED:
        santurkar = "agrees (noisy BN shifts more yet trains better than no norm)"
    elif ics_helps == REPRODUCED:
        santurkar = "disagrees (noisy BN trains worse than no norm)"
    else:
        santurkar = "cannot tell"
    return (f"Literature: Ioffe & Szegedy (2015, Fig. 1) found the sigmoid inputs stable with BN "
            f"-- this run {ioffe}; Santurkar et al. (2018) found noisy BN trains almost as well "
            f"as BN despite more shift, so ICS reduction is not why BN helps -- this run "
            f"{santurkar}; they also found gradient ICS no lower with BN -- here the claim that BN "
            f"lowers it is {gradient}")


def _plot(traces: dict, steps: int, every: int):
    """Top: the percentiles of one last-layer unit for seed 0 (sigmoid input for each network,
    and the BN network's pre-BN output). Bottom: test accuracy, movement per record and
    gradient ICS over training, mean and seed range."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError('the experiments draw their plots with matplotlib; install it with:  '
                          'pip install "minigrad[examples]"') from None
    n = len(traces["no norm"])
    fig = Figure(figsize=(16, 7.6), layout="constrained")
    fig.suptitle(f"Internal covariate shift, 3x100 sigmoid MLP on digits (lr {LEARNING_RATE}, "
                 f"batch {BATCH_SIZE}, {n} seed{'s' if n > 1 else ''}): does BN steady the "
                 f"sigmoid inputs, and is that why it helps?",
                 fontsize=12, fontweight="bold")
    axes = fig.subplots(2, 4)
    for ax in axes.flat:
        ax.grid(True, alpha=0.3)

    top = list(axes[0])
    for ax, kind in zip(top[:3], VARIANTS):
        _percentile_band(ax, traces[kind][0], "post", VARIANT_COLORS[kind])
        ax.set(title=f"{kind}: sigmoid input, unit {UNIT}", xlabel="training step",
               ylabel="sigmoid input (seed 0)", xlim=(0, steps))
        ax.legend(loc="upper right", fontsize=8)
    # Same units, same scale: the shifts compare by eye.
    values = np.concatenate([traces[kind][0]["post"][:, UNIT].ravel() for kind in VARIANTS])
    margin = 0.05 * (values.max() - values.min())
    for ax in top[:3]:
        ax.set_ylim(values.min() - margin, values.max() + margin)
    _percentile_band(top[3], traces["BatchNorm"][0], "pre", VARIANT_COLORS["BatchNorm"])
    top[3].set(title=f"BatchNorm: pre-BN linear output, unit {UNIT}", xlabel="training step",
               ylabel="linear output (seed 0)", xlim=(0, steps))
    top[3].legend(loc="upper right", fontsize=8)

    acc_ax, move_ax, ics_ax, cos_ax = axes[1]
    for kind in VARIANTS:
        runs, color = traces[kind], VARIANT_COLORS[kind]
        x = runs[0]["step"]
        band(acc_ax, x, [100 * np.asarray(t["accuracy"]) for t in runs], kind, color=color)
        moves = [np.mean(np.abs(np.diff(t["post"], axis=0)), axis=(1, 2)) for t in runs]
        band(move_ax, x[1:], moves, kind, color=color)
        band(ics_ax, x, [t["ics_relative"] for t in runs], kind, color=color)
        band(cos_ax, x, [t["ics_cosine"] for t in runs], kind, color=color)
    acc_ax.set(title="Test accuracy (eval mode)", xlabel="training step",
               ylabel="test accuracy (%)", xlim=(0, steps), ylim=(0, 100))
    move_ax.set(title=f"Sigmoid-input movement per {every} steps", xlabel="training step",
                ylabel="mean |change| of 15/50/85th pct", xlim=(0, steps), yscale="log")
    ics_ax.set(title="Gradient ICS, last hidden layer", xlabel="training step",
               ylabel="||G - G'|| / ||G||", xlim=(0, steps), yscale="log")
    cos_ax.set(title="Gradient ICS: cos(G, G')", xlabel="training step", ylabel="cos(G, G')",
               xlim=(0, steps))
    for ax in axes[1]:
        ax.legend(loc="best", fontsize=8)
    return fig


def _percentile_band(ax, trace: dict, key: str, color) -> None:
    low, median, high = trace[key][:, UNIT].T
    ax.fill_between(trace["step"], low, high, color=color, alpha=0.25,
                    label="15th-85th percentile")
    ax.plot(trace["step"], median, color=color, linewidth=1.5, label="median")
