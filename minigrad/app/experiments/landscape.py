"""Why BatchNorm helps: a smoother loss along the gradient, and weights whose scale does not matter.

Santurkar et al. (2018, Fig. 4) probe the loss landscape where training walks: at a point
``w`` of training, with gradient ``g`` of the loss on a batch, they step along ``-g`` by several
step sizes ``eta`` and measure

* the **loss variation**: the range (max - min) of ``L(w - eta g)`` over the step sizes;
* the **gradient predictiveness**: ``||grad L(w) - grad L(w - eta g)||``, how much the gradient
  changes (the larger, the less the gradient at ``w`` predicts the one a step away);
* the **effective beta-smoothness**: the largest of those changes divided by the distance moved,
  ``eta ||g||`` -- a Lipschitz constant of the gradient along the path.

We do the same on the digits MLP (64 -> 128 -> 128 -> 10, ReLU) with and without BatchNorm,
trained the same way from the same seeds, at checkpoints over training. The probe is a fixed set
of training images, in training mode (BatchNorm normalises the probe with its own statistics, as
it does the batches it trains on), on a copy of the network (the running statistics and the
weights are not touched).

The second half is the mechanism that makes BatchNorm's layers easy to train at large learning
rates. A Linear followed by BatchNorm is scale invariant: ``L(aW) = L(W)`` for any ``a > 0``, so
``grad L(aW) = grad L(W) / a`` and ``W . grad L(W) = 0``. We measure the invariance on the
trained networks by scaling one Linear's weight by ``a`` and comparing gradients, and record each
layer's weight and gradient norms with the effective learning rate ``lr / ||W||^2``: with plain
SGD the gradient is orthogonal to ``W``, so ``||W||`` can only grow, and the effective step of a
scale-invariant layer shrinks by itself. A third run, BatchNorm at ten times the learning rate,
shows that (it is not judged).

The verdicts (``CLAIMS``, judged by ``verdict.judge`` over the seeds, paired): BatchNorm minus no
norm of each landscape measure's mean log10 over the checkpoints after initialisation, and of its
log10 at initialisation, predicted below -0.1 (a factor 1.26 smoother); and of the log10 scale
error of the first Linear at a = 3, predicted below -3.
"""
from __future__ import annotations

import copy
import math

import numpy as np

import minigrad as mg
from minigrad import functional as F
from minigrad import nn

from .common import (COLORS, Findings, band, digits, figure, model, seed_everything, sgd,
                     steps_for, test_accuracy, train)
from .verdict import Claim, judge

# name -> (network kind, learning rate). The first two are the compared arms, trained the same
# way; the third is there to show what a large learning rate does to a scale-invariant layer.
ARMS = {"no norm": ("no norm", 0.1), "BatchNorm": ("BatchNorm", 0.1),
        "BatchNorm, lr 1": ("BatchNorm", 1.0)}
BATCH_SIZE = 64
STEP_SIZES = (0.05, 0.1, 0.2, 0.4)     # the probe's steps along -grad: 0.5x to 4x the lr 0.1
PROBE_SIZE = 256                       # training images the probe is measured on
# factors a applied to a Linear's weight; none is a power of two, whose products are exact in
# binary floating point and would hide the rounding
SCALES = (0.1, 0.3, 3.0, 10.0)
JUDGED_SCALE = 3.0
# A probe point where the loss or gradient is not finite is as rough as the landscape gets:
# it counts as these values (and is counted in the record) instead of breaking the verdicts.
LOSS_CAP = 100.0
GRADIENT_CAP = 1e6

# Each landscape measure spans orders of magnitude over training, so a seed's value is the mean
# of its log10 over the checkpoints (a geometric mean); initialisation is judged on its own.
CLAIMS = {
    "loss": Claim("log10 loss variation along -grad, during training", "BatchNorm", "no norm",
                  "negative", minimum_effect=0.1),
    "beta": Claim("log10 effective beta-smoothness, during training", "BatchNorm", "no norm",
                  "negative", minimum_effect=0.1),
    "scale": Claim(f"log10 relative error of a*grad L(aW) vs grad L(W) (a={JUDGED_SCALE:g}, "
                   "first Linear, end of training)", "BatchNorm", "no norm", "negative",
                   minimum_effect=3.0),
    "loss_init": Claim("log10 loss variation along -grad, at initialisation", "BatchNorm",
                       "no norm", "negative", minimum_effect=0.1),
    "beta_init": Claim("log10 effective beta-smoothness, at initialisation", "BatchNorm",
                       "no norm", "negative", minimum_effect=0.1),
}

# the per-seed values (keys of ``_summarize``) each claim is judged on, and its name in the note
JUDGED = {"loss": "log10_loss_variation", "beta": "log10_beta", "scale": "log10_scale_error",
          "loss_init": "log10_loss_variation_init", "beta_init": "log10_beta_init"}
SHORT = {"loss": "a smaller loss variation in training", "beta": "a smaller beta in training",
         "scale": "scale invariance", "loss_init": "a smaller loss variation at initialisation",
         "beta_init": "a smaller beta at initialisation"}


# ----------------------------------------------------------------------------------------------
# The probes (tested on planted cases in tests/test_experiment_landscape.py)
# ----------------------------------------------------------------------------------------------

def cross_entropy_loss(network, x, y):
    """The training loss of ``network`` on arrays ``x``, ``y`` (a graph, ready for backward)."""
    return F.cross_entropy(network(mg.Tensor(x)), mg.Tensor(y))


def gradients(network, x, y, loss_fn=cross_entropy_loss) -> tuple[float, list]:
    """(loss, one gradient array per parameter of ``network``) on ``x``, ``y``, in the mode the
    network is in. The parameters' ``.grad`` are cleared again afterwards."""
    network.zero_grad()
    with np.errstate(all="ignore"):  # a far step may overflow; the caller caps what is not finite
        loss = loss_fn(network, x, y)
        loss.backward()
    grads = [np.zeros_like(p.data) if p.grad is None else p.grad.data.copy()
             for p in network.parameters()]
    network.zero_grad()
    return float(loss.item()), grads


def _norm(arrays) -> float:
    return math.sqrt(sum(float(np.sum(np.square(a, dtype=np.float64))) for a in arrays))


def probe_landscape(network, x, y, step_sizes=STEP_SIZES, loss_fn=cross_entropy_loss) -> dict:
    """Santurkar et al.'s probe at ``network``'s current weights: the loss and gradient after a
    step of each size in ``step_sizes`` along minus the gradient on ``x``, ``y``.

    Returns the loss and gradient norm at the start, per step size the loss and the gradient
    change ``||grad(w) - grad(w - eta g)||``, and the summaries: ``loss_variation`` (max - min
    of the stepped losses), ``gradient_change`` (the largest change) and ``beta`` (the largest
    change over the distance moved, ``eta ||g||``); ``gradients`` is g itself (one array per
    parameter). Runs on a copy: ``network``'s weights and running statistics are left as they
    were. Non-finite values are capped (``capped`` counts them)."""
    scratch = copy.deepcopy(network)
    params = list(scratch.parameters())
    start = [p.data.copy() for p in params]
    loss0, grad0 = gradients(scratch, x, y, loss_fn)
    grad_norm = _norm(grad0)
    losses, changes, capped = [], [], 0
    for eta in step_sizes:
        for p, w, g in zip(params, start, grad0):
            p.data = (w - eta * g).astype(w.dtype)
        loss, grad = gradients(scratch, x, y, loss_fn)
        change = _norm([a - b for a, b in zip(grad0, grad)])
        if not math.isfinite(loss) or loss > LOSS_CAP:
            loss, capped = LOSS_CAP, capped + 1
        if not math.isfinite(change) or change > GRADIENT_CAP:
            change, capped = GRADIENT_CAP, capped + 1
        losses.append(loss)
        changes.append(change)
    # a zero gradient moves nowhere: no distance to divide by, and nothing to be rough about
    betas = [c / (eta * grad_norm) if grad_norm > 0 else 0.0
             for c, eta in zip(changes, step_sizes)]
    return {"loss": loss0, "gradients": grad0, "gradient_norm": grad_norm, "step_losses": losses,
            "gradient_changes": changes, "loss_variation": max(losses) - min(losses),
            "gradient_change": max(changes), "beta": max(betas), "capped": capped}


def linear_layers(network) -> list:
    """The Linear layers of ``network``, in order."""
    return [m for m in network.modules() if isinstance(m, nn.Linear)]


def scale_invariance(network, layer_index: int, a: float, x, y,
                     loss_fn=cross_entropy_loss) -> dict:
    """Scale the weight of ``network``'s Linear number ``layer_index`` by ``a`` (on a copy) and
    compare: ``loss_change`` = |L(aW) - L(W)|, and ``gradient_error`` = ||a grad L(aW) -
    grad L(W)|| / ||grad L(W)|| for that weight -- zero if the loss is scale invariant in it
    (then grad L(aW) = grad L(W) / a). ``other_error``: the same relative change for all the
    other parameters' gradients, which invariance leaves unchanged."""
    scratch = copy.deepcopy(network)
    weight = linear_layers(scratch)[layer_index].weight
    which = [i for i, p in enumerate(scratch.parameters()) if p is weight][0]
    loss, grads = gradients(scratch, x, y, loss_fn)
    weight.data = (a * weight.data).astype(weight.data.dtype)
    scaled_loss, scaled = gradients(scratch, x, y, loss_fn)
    others = [i for i in range(len(grads)) if i != which]
    return {
        "loss_change": abs(scaled_loss - loss),
        "gradient_error": _norm([a * scaled[which] - grads[which]]) / _norm([grads[which]]),
        "other_error": (_norm([scaled[i] - grads[i] for i in others])
                        / _norm([grads[i] for i in others])),
    }


def layer_norms(network, grads, lr: float) -> list:
    """Per Linear layer of ``network``, from the gradients ``grads`` (one per parameter, as
    ``gradients`` returns): ||W||, ||grad W||, the effective learning rate lr / ||W||^2 (the
    step a scale-invariant layer really takes: its loss depends only on W / ||W||), the
    relative update lr ||grad W|| / ||W||, and cos(W, grad W) (0 for a scale-invariant W)."""
    by_param = {id(p): g for p, g in zip(network.parameters(), grads)}
    rows = []
    for layer in linear_layers(network):
        w, g = layer.weight.data.astype(np.float64), by_param[id(layer.weight)].astype(np.float64)
        w_norm, g_norm = float(np.linalg.norm(w)), float(np.linalg.norm(g))
        rows.append({"weight_norm": w_norm, "gradient_norm": g_norm,
                     "effective_lr": lr / w_norm ** 2, "relative_update": lr * g_norm / w_norm,
                     "cosine": float(np.sum(w * g)) / (w_norm * g_norm) if g_norm else 0.0})
    return rows


# ----------------------------------------------------------------------------------------------
# The experiment
# ----------------------------------------------------------------------------------------------

def run(settings) -> Findings:
    """Train every arm of ``ARMS`` on each seed, probing as it trains, and judge ``CLAIMS``."""
    epochs = 3 if settings.quick else 10
    per_epoch = steps_for(1, BATCH_SIZE)
    steps = epochs * per_epoch
    data = digits()
    # a fixed probe set: the first PROBE_SIZE training images (the split is already shuffled)
    probe = (data.x_train[:PROBE_SIZE], data.y_train[:PROBE_SIZE])
    traces = {arm: [] for arm in ARMS}
    with settings.bar(len(ARMS) * len(settings.seeds) * steps, "landscape") as bar:
        for seed in settings.seeds:
            for arm, (kind, lr) in ARMS.items():
                traces[arm].append(_trace(kind, lr, seed, steps, per_epoch, probe, bar))

    summary = {arm: _summarize(runs) for arm, runs in traces.items()}
    normed, plain = summary["BatchNorm"], summary["no norm"]
    verdicts = [judge(CLAIMS[key], normed[JUDGED[key]], plain[JUDGED[key]]) for key in CLAIMS]
    numbers = {"seeds": settings.seeds, "epochs": epochs, "steps": steps,
               "record_every": per_epoch, "batch_size": BATCH_SIZE,
               "arms": {arm: {"network": kind, "learning_rate": lr}
                        for arm, (kind, lr) in ARMS.items()},
               "optimizer": "SGD, no momentum", "step_sizes": list(STEP_SIZES),
               "probe_size": PROBE_SIZE, "scales": list(SCALES), "judged_scale": JUDGED_SCALE,
               "loss_cap": LOSS_CAP, "gradient_cap": GRADIENT_CAP, "runs": traces,
               "summary": summary}
    columns = ["network", "loss variation, training", "loss variation, init",
               "beta, training", "beta, init", "grad change, training", "test acc (%)",
               f"scale error a={JUDGED_SCALE:g}, Linear 1", "same in float64",
               "same, float64, eps -> 0", "scale error, output Linear",
               "|cos(W, grad W)|, Linear 1", "||W|| end/start, Linear 1",
               "lr/||W||^2 end, Linear 1"]
    rows = [[arm, _sig(s["loss_variation"]), _sig(s["loss_variation_init"]), _sig(s["beta"]),
             _sig(s["beta_init"]), _sig(s["gradient_change"]), round(100 * s["test_accuracy"], 1),
             _sig(s["scale_error"][0]), _sig(s["scale_error_float64"]["with eps"]),
             _sig(s["scale_error_float64"]["eps = 0"]), _sig(s["scale_error"][2]),
             _sig(s["cosine_first"]), _sig(s["weight_growth_first"]),
             _sig(s["effective_lr_first"])]
            for arm, s in summary.items()]
    note = ("Santurkar et al. (2018, Fig. 4, VGG and deep linear networks) found BatchNorm's "
            "loss varies less along the gradient and its gradient is more predictive (a smaller "
            "effective beta) throughout training, and argue this, not less internal covariate "
            "shift, is why it trains faster; a Linear followed by BatchNorm is scale invariant "
            "(Ioffe & Szegedy 2015, Sec. 3.3), so its gradient is orthogonal to W and shrinks "
            "as W grows, and a large learning rate takes smaller effective steps lr/||W||^2. "
            + _agreement(verdicts))
    return Findings.from_verdicts(verdicts, numbers=numbers, columns=columns, rows=rows,
                                  figure=_plot(traces), note=note)


def _agreement(verdicts) -> str:
    """Which of the literature's findings this run agrees with, from the verdicts' labels (in
    ``CLAIMS`` order)."""
    if all(v.seeds == 1 for v in verdicts):
        return "One seed: no comparison with the literature."
    groups = {"agrees on": True, "disagrees on": False, "cannot tell on": None}
    parts = [f"{name} " + ", ".join(SHORT[key] for key, v in zip(CLAIMS, verdicts)
                                    if v.reproduced is outcome)
             for name, outcome in groups.items()
             if any(v.reproduced is outcome for v in verdicts)]
    return "Here: " + "; ".join(parts) + "."


def _trace(kind: str, lr: float, seed: int, steps: int, every: int, probe, bar) -> dict:
    """Train one network with plain SGD at ``lr``, probing the landscape and the layer norms
    every ``every`` steps; at the end, measure the scale invariance of each Linear for every
    factor in ``SCALES``."""
    seed_everything(seed)
    network = model(kind)
    x, y = probe
    trace = {"step": [], "loss": [], "loss_variation": [], "gradient_change": [], "beta": [],
             "capped": 0, "layers": []}

    def record(step):
        found = probe_landscape(network, x, y)
        trace["step"].append(step)
        for key in ("loss", "loss_variation", "gradient_change", "beta"):
            trace[key].append(found[key])
        trace["capped"] += found["capped"]
        trace["layers"].append(layer_norms(network, found["gradients"], lr))

    run = train(network, steps=steps, batch_size=BATCH_SIZE,
                optimizer=sgd(network, lr, momentum=0.0), seed=seed, bar=bar,
                every=every, on_record=record)
    trace["diverged"] = run.diverged
    if run.diverged:  # later checkpoints count as the roughest landscape the caps allow
        for step in range(trace["step"][-1] + every, steps + 1, every):
            trace["step"].append(step)
            trace["loss"].append(LOSS_CAP)
            trace["loss_variation"].append(LOSS_CAP)
            trace["gradient_change"].append(GRADIENT_CAP)
            trace["beta"].append(GRADIENT_CAP)
            trace["layers"].append(trace["layers"][-1])
    trace["test_accuracy"] = test_accuracy(network)
    trace["scale_float64"] = _scale_in_float64(network, x, y)
    trace["scale"] = {f"{a:g}": [scale_invariance(network, layer, a, x, y)
                                 for layer in range(len(linear_layers(network)))]
                      for a in SCALES}
    return trace


def _scale_in_float64(network, x, y) -> dict:
    """The first Linear's scale error at ``JUDGED_SCALE`` on a float64 copy of ``network``, with
    BatchNorm's eps as it is and with eps 1e-300 (batch_norm refuses an eps of exactly 0; next to
    a unit's variance this one is 0). In float64 rounding is ~1e-16, so what
    remains with eps is eps's own doing -- (a^2 var + eps) is not a^2 (var + eps) -- and what
    remains without it is rounding."""
    scratch = copy.deepcopy(network).to(np.float64)
    x64 = x.astype(np.float64)
    found = {"with eps": scale_invariance(scratch, 0, JUDGED_SCALE, x64, y)["gradient_error"]}
    for module in scratch.modules():
        if isinstance(module, nn.BatchNorm1d):
            module.eps = 1e-300
    found["eps = 0"] = scale_invariance(scratch, 0, JUDGED_SCALE, x64, y)["gradient_error"]
    return found


def _log10(value: float) -> float:
    # an exact zero (possible in float arithmetic) would have no log: floor it at 1e-12
    return math.log10(max(value, 1e-12))


def _summarize(runs) -> dict:
    """Per seed (the judged values): the mean log10 of each landscape measure over the
    checkpoints after initialisation, its log10 at initialisation, and the log10 scale error of
    the first Linear at ``JUDGED_SCALE``. For the table: the geometric means over checkpoints,
    the values at initialisation and the scale errors, each averaged over seeds."""
    found = {}
    for key in ("loss_variation", "gradient_change", "beta"):
        during = [float(np.mean([_log10(v) for v in r[key][1:]])) for r in runs]
        at_init = [_log10(r[key][0]) for r in runs]
        found[f"log10_{key}"], found[f"log10_{key}_init"] = during, at_init
        found[key] = float(np.mean([10 ** v for v in during]))
        found[f"{key}_init"] = float(np.mean([10 ** v for v in at_init]))
    scale_error = [[r["scale"][f"{JUDGED_SCALE:g}"][layer]["gradient_error"] for r in runs]
                   for layer in range(3)]
    last, first = (lambda r: r["layers"][-1][0]), (lambda r: r["layers"][0][0])
    return {
        **found,
        "scale_error": [float(np.mean(e)) for e in scale_error],
        "log10_scale_error": [_log10(e) for e in scale_error[0]],
        "scale_error_float64": {key: float(np.mean([r["scale_float64"][key] for r in runs]))
                                for key in ("with eps", "eps = 0")},
        "test_accuracy": float(np.mean([r["test_accuracy"] for r in runs])),
        "cosine_first": float(np.mean([abs(last(r)["cosine"]) for r in runs])),
        "effective_lr_first": float(np.mean([last(r)["effective_lr"] for r in runs])),
        "weight_growth_first": float(np.mean([last(r)["weight_norm"] / first(r)["weight_norm"]
                                              for r in runs])),
        "capped": int(sum(r["capped"] for r in runs)),
        "diverged": int(sum(r["diverged"] for r in runs)),
    }


def _sig(value, digits: int = 3):
    """``value`` rounded to ``digits`` significant figures, for the table."""
    return float(f"{value:.{digits}g}")


ARM_COLORS = dict(COLORS, **{"BatchNorm, lr 1": "navy"})
COLLAPSED_BELOW = 0.2  # a final test accuracy this low (chance is 10%) is marked as a collapse


def _plot(traces: dict):
    fig, axes = figure(4, width=4.4, height=3.8, title=(
        "Along the gradient, with and without BatchNorm (digits MLP, plain SGD; bands: range "
        "over seeds)"))
    loss_ax, beta_ax, lr_ax, scale_ax = axes
    for arm, runs in traces.items():
        step, color = runs[0]["step"], ARM_COLORS[arm]
        if arm in ("no norm", "BatchNorm"):  # the judged pair
            band(loss_ax, step, [r["loss_variation"] for r in runs], arm, color=color)
            band(beta_ax, step, [r["beta"] for r in runs], arm, color=color)
            errors = [[max(r["scale"][f"{a:g}"][0]["gradient_error"], 1e-12) for a in SCALES]
                      for r in runs]
            band(scale_ax, SCALES, errors, f"{arm}, Linear 1", color=color, marker="o")
            for r in runs:  # checkpoints a diverged run never reached count as the caps
                capped = [i for i, v in enumerate(r["loss_variation"]) if v >= LOSS_CAP]
                if capped:
                    loss_ax.plot([step[i] for i in capped], [LOSS_CAP] * len(capped), "X",
                                 color=color, label=f"{arm}: diverged (capped)")
        accuracy = np.mean([r["test_accuracy"] for r in runs])
        collapsed = ", collapsed" if accuracy < COLLAPSED_BELOW else ""
        for layer, style in ((0, "-"), (1, "--")):
            band(lr_ax, step, [[row[layer]["effective_lr"] for row in r["layers"]]
                               for r in runs],
                 f"{arm}, Linear {layer + 1} (test {100 * accuracy:.0f}%{collapsed})",
                 color=color, linestyle=style)
    scale_ax.axhline(np.finfo(np.float32).eps, color="black", linestyle=":", linewidth=1,
                     label="float32 machine epsilon")
    loss_ax.set(yscale="log", xlabel="training step", ylabel="max - min loss (nats)",
                title=f"(a) loss variation, steps {STEP_SIZES[0]:g}-{STEP_SIZES[-1]:g} along -grad")
    beta_ax.set(yscale="log", xlabel="training step",
                ylabel="max ||grad change|| / distance", title="(b) effective beta-smoothness")
    lr_ax.set(yscale="log", xlabel="training step", ylabel="lr / ||W||^2",
              title="(c) effective learning rate per layer")
    scale_ax.set(xscale="log", yscale="log", xlabel="scale a of Linear 1's weight",
                 ylabel="||a grad L(aW) - grad L(W)|| / ||grad L(W)||",
                 title="(d) scale invariance, end of training")
    for ax in axes:
        ax.legend(loc="best", fontsize=7)
    return fig
