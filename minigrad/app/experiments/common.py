"""What the experiments share: settings, the digits data, model building, one training loop,
evaluation, and the look of the plots.

Every experiment module has a ``run(settings) -> Findings`` function; the runner in
``minigrad.app.experiments`` seeds, times and saves what it returns.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
from tqdm.auto import tqdm

import minigrad as mg
from minigrad import nn, optim, training
from minigrad.data import DataLoader, load_digits
from minigrad.training import build_model, train_step

# One colour per kind of network, the same in every plot.
COLORS = {
    "no norm": "tab:gray",
    "BatchNorm": "tab:blue",
    "BatchNorm (composed)": "tab:blue",
    "BatchNorm (fused)": "tab:cyan",
    "dropout": "tab:orange",
    "GroupNorm": "tab:green",
    "LayerNorm": "tab:purple",
    "momentum=0.1": "tab:blue",
    "momentum=None": "tab:red",
}


FULL_SEEDS = 5  # seeds per claim in a full run (see verdict.py for the rule)


@dataclass(frozen=True)
class Settings:
    """How to run an experiment: ``quick`` shrinks it to seconds (tests, the demo); ``seed``
    fixes data order and initialisation; ``progress`` shows tqdm bars."""
    quick: bool = False
    seed: int = 0
    progress: bool = True

    @property
    def seeds(self) -> list:
        """The seeds a claim is judged over: ``FULL_SEEDS`` of them in a full run, one in a
        quick run (whose verdicts are then only "indicative (1 seed)")."""
        return [self.seed] if self.quick else [self.seed + i for i in range(FULL_SEEDS)]

    def bar(self, total: int, desc: str, unit: str = "step"):
        """A progress bar over ``total`` training steps (silent when progress is off)."""
        # disable=None: no bar when output is not a terminal (logs, pipes), as in training.fit.
        return tqdm(total=total, desc=desc, unit=unit, disable=None if self.progress else True,
                    leave=False, dynamic_ncols=True)


@dataclass
class Findings:
    """What an experiment measured.

    ``numbers``: every measured value, JSON-ready (lists, dicts, floats, None for "no value").
    ``columns``/``rows``: the small summary table. ``reproduced``: whether the seed's claim held
    (None when the experiment only illustrates). ``verdict``: one line saying so, with numbers.
    ``figure``: a matplotlib Figure (not yet saved). ``verdicts``: the ``verdict.Verdict`` of
    each claim the experiment judges (its first is the headline); ``reproduced`` and
    ``verdict`` then follow from them (see ``from_verdicts``).
    """
    numbers: dict
    columns: list
    rows: list
    reproduced: bool | None
    verdict: str
    figure: object = field(repr=False)
    verdicts: list = field(default_factory=list)

    @classmethod
    def from_verdicts(cls, verdicts: list, *, numbers: dict, columns: list, rows: list,
                      figure, note: str = "") -> "Findings":
        """Findings whose verdict line is the verdicts' own (the first is the headline, its
        ``reproduced`` the experiment's), followed by ``note`` (what the literature found)."""
        line = "; ".join(str(v) for v in verdicts) + (f". {note}" if note else "")
        numbers = dict(numbers, verdicts=[v.as_dict() for v in verdicts])
        return cls(numbers, columns, rows, verdicts[0].reproduced, line, figure, verdicts)


# ----------------------------------------------------------------------------------------------
# Data and models
# ----------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def digits():
    """scikit-learn's digits (standardised, fixed split) as float32: loaded once per process."""
    data = load_digits()
    return replace(data, x_train=data.x_train.astype(np.float32),
                   x_test=data.x_test.astype(np.float32))


def seed_everything(seed: int) -> None:
    """Make initial weights and dropout masks repeatable."""
    nn.manual_seed(seed)


@contextlib.contextmanager
def float32():
    """Create float32 parameters and tensors inside the block (half the memory and time of
    float64, and the experiments need no finite differences)."""
    previous = mg.get_default_dtype()
    mg.set_default_dtype(np.float32)
    try:
        yield
    finally:
        mg.set_default_dtype(previous)


@contextlib.contextmanager
def one_blas_thread():
    """Run NumPy's matrix products on one thread inside the block.

    The experiments' matrices are tiny (at most 1347 x 256): BLAS threads cost more to wake
    and synchronise than they save, and when the cores are busy with anything else, spinning
    BLAS threads slowed a quick run several times over (measured: 145 s instead of about 30 s
    on 2 shared cores). threadpoolctl comes with scikit-learn; without it nothing changes."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# The normalisation names used in plots and tables -> ``build_model``'s ``norm``.
NORMS = {"no norm": "none", "BatchNorm": "batch", "GroupNorm": "group", "LayerNorm": "layer"}


def model(kind: str, hidden: int = 128, **options):
    """The digits MLP of ``minigrad train`` (64 -> hidden -> hidden -> 10, ReLU) with the
    normalisation ``kind`` (a key of ``NORMS``) after each hidden Linear; fused BatchNorm unless
    ``fused=False`` is given."""
    options.setdefault("fused", True)
    return build_model("mlp", hidden=hidden, norm=NORMS[kind], **options)


def mlp(widths, batch_norm: bool = False, activation=nn.ReLU, dropout: float = 0.0):
    """An MLP of any depth and activation (``model`` has two ReLU layers): each hidden layer
    is Linear, then fused BatchNorm (if asked; the Linear then has no bias, which BatchNorm's
    shift replaces), then the activation, then dropout (if > 0)."""
    layers = []
    for n_in, n_out in zip(widths[:-2], widths[1:-1]):
        layers.append(nn.Linear(n_in, n_out, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm1d(n_out, fused=True))
        layers.append(activation())
        if dropout:
            layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(widths[-2], widths[-1]))
    return nn.Sequential(*layers)


def input_of(network: nn.Sequential, layer, x) -> np.ndarray:
    """The array that ``layer`` (one of ``network``'s layers) receives when ``network`` runs
    on ``x`` -- a sigmoid's input, a BatchNorm's -- computed without a graph."""
    with mg.no_grad():
        h = x if isinstance(x, mg.Tensor) else mg.Tensor(x)
        for module in network:
            if module is layer:
                return h.data
            h = module(h)
    raise ValueError(f"input_of: {type(layer).__name__} is not one of the network's layers")


# ----------------------------------------------------------------------------------------------
# Training and evaluation
# ----------------------------------------------------------------------------------------------

@dataclass
class Run:
    """One training run: the loss of every step, and whether it diverged (a NaN or infinite
    loss, after which training stopped)."""
    losses: list
    diverged: bool = False

    @property
    def steps(self) -> int:
        return len(self.losses)


def train(network, *, steps: int, batch_size: int, optimizer, seed: int, bar=None,
          every: int = 0, on_record=None) -> Run:
    """Train ``network`` on digits for ``steps`` steps of ``batch_size`` samples (reshuffled
    each epoch from ``seed``; the last short batch of an epoch is dropped, since BatchNorm
    cannot train on one sample) with softmax cross-entropy.

    ``on_record(step)`` runs before the first step and after every ``every`` steps (and after
    the last). A non-finite loss stops the run and marks it diverged, so a learning-rate sweep
    can go past the rate where training blows up without crashing.
    """
    data = digits()
    loader = training.train_loader(data, batch_size, seed, np.float32)
    if len(loader) == 0:
        raise ValueError(f"train: batch_size {batch_size} is larger than the training set "
                         f"({len(data.x_train)} samples)")
    run = Run(losses=[])
    network.train()
    if on_record is not None:
        on_record(0)
    with np.errstate(all="ignore"):  # overflow is expected past the stable rate; NaN is caught
        while run.steps < steps:
            for features, labels in loader:
                loss, _ = train_step(network, optimizer, features, labels)
                run.losses.append(loss)
                if not math.isfinite(loss):
                    run.diverged = True
                    if bar is not None:
                        bar.update(steps - run.steps + 1)
                    return run
                if bar is not None:
                    bar.update(1)
                if on_record is not None and every and (
                        run.steps % every == 0 or run.steps == steps):
                    on_record(run.steps)
                if run.steps == steps:
                    break
    return run


def sgd(network, lr: float, momentum: float = 0.9):
    return optim.SGD(network.parameters(), lr=lr, momentum=momentum)


def steps_for(epochs: int, batch_size: int) -> int:
    """Steps in ``epochs`` passes over the training set (short last batches dropped)."""
    return epochs * (len(digits().x_train) // batch_size)


def evaluate(network, x, y) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``network`` in eval mode on arrays ``x``, ``y``, with
    its mode restored afterwards. A diverged network scores loss inf."""
    was_training = network.training
    try:
        with np.errstate(all="ignore"):
            loss, accuracy = training.evaluate(network, DataLoader((x, y), batch_size=len(x)))
    finally:
        network.train(was_training)
    return (loss if math.isfinite(loss) else math.inf), accuracy


def test_accuracy(network) -> float:
    """Accuracy on the digits test set, in eval mode."""
    data = digits()
    return evaluate(network, data.x_test, data.y_test)[1]


# ----------------------------------------------------------------------------------------------
# Numbers and plots
# ----------------------------------------------------------------------------------------------

def figure(columns: int, width: float = 5.2, height: float = 4.0, title: str = ""):
    """A Figure with ``columns`` side-by-side axes, drawn without pyplot (so it works headless
    and leaves a notebook's backend alone)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError('the experiments draw their plots with matplotlib; install it with:  '
                          'pip install "minigrad[examples]"') from None
    fig = Figure(figsize=(width * columns, height), layout="constrained")
    axes = fig.subplots(1, columns, squeeze=False)[0]
    if title:
        fig.suptitle(title, fontsize=12, fontweight="bold")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, axes


def band(ax, x, runs, label: str, color=None, **style):
    """Draw the mean of ``runs`` (one row per seed) against ``x`` with a band from the lowest to
    the highest seed: the spread the verdicts are judged against, visible."""
    runs = np.asarray(runs, dtype=np.float64)
    color = color or COLORS.get(label)
    mean = np.nanmean(runs, axis=0)
    (line,) = ax.plot(x, mean, label=label if len(runs) == 1 else f"{label} ({len(runs)} seeds)",
                      color=color, **style)
    if len(runs) > 1:
        ax.fill_between(x, np.nanmin(runs, axis=0), np.nanmax(runs, axis=0),
                        color=line.get_color(), alpha=0.2, linewidth=0)
    return line


def percent(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"
