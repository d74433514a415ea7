"""``minigrad demo`` (what ``make demo`` runs): the tour of the library in one command.

1. trains an MLP with BatchNorm on the digits with a progress bar, saves and reloads it;
2. checks the gradients of the BatchNorm family by finite differences;
3. draws a composed BatchNorm layer with the gradient flowing along each edge, and splits
   dL/dx into its three paths;
4. runs the seed's six claims as quick experiments;
5. writes everything into one self-contained ``report.html`` (and ``report.md``).
"""
from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path

from . import arguments
from .report import Report

_INTRO = ("minigrad is a from-scratch tensor library with reverse-mode autodiff on NumPy. Its "
          "showcase is Batch Normalization composed from the library's own ops (mean, var, "
          "sqrt and broadcasting), so every gradient path through it can be watched, checked "
          "by finite differences and drawn. This report was produced by `minigrad demo`.")


def add_arguments(parser) -> None:
    parser.add_argument("-o", "--out", type=arguments.writable_dir, default="out",
                        help="output directory (default: out)")
    parser.add_argument("--epochs", type=arguments.positive_int, default=10,
                        help="training epochs (default: 10)")
    parser.add_argument("--skip-experiments", action="store_true",
                        help="leave out the six quick experiments")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


# The files the demo writes in its output directory (the experiments' are checked apart).
OUTPUTS = ("digits_mlp_batch.npz", "training.png", "training.svg", "batchnorm.svg",
           "batchnorm.dot", "report.html", "report.md")


def run(args) -> int:
    out = Path(args.out)
    # Every file the demo will write can be written, before ten epochs of training.
    for name in OUTPUTS:
        arguments.check_writable_file(out / name, "-o/--out")
    arguments.make_dir(out, "-o/--out")
    if not args.skip_experiments:
        from .experiment import check_outputs
        from .experiments import EXPERIMENTS
        check_outputs(out / "experiments", list(EXPERIMENTS))
    progress = not args.no_progress
    report = Report("minigrad: BatchNorm you can inspect", _INTRO)
    started = time.perf_counter()
    ok = True

    _banner("1/5 training an MLP with BatchNorm on the digits")
    ok &= train_section(report, out, args.epochs, progress)
    _banner("2/5 checking the BatchNorm family's gradients by finite differences")
    ok &= gradcheck_section(report)
    _banner("3/5 drawing a composed BatchNorm and its three gradient paths")
    ok &= graph_section(report, out)
    if not args.skip_experiments:
        _banner("4/5 the seed's claims as quick experiments")
        experiments_section(report, out / "experiments", progress)

    _banner("5/5 writing the report")
    html_path, markdown_path = report.write(out)
    print(f"\nreport: {html_path.resolve()}\n        {markdown_path.resolve()}")
    print(f"done in {time.perf_counter() - started:.0f} s" + ("" if ok else " -- with FAILURES"))
    return 0 if ok else 1


def _banner(text: str) -> None:
    print(f"\n== {text}", flush=True)


# ----------------------------------------------------------------------------------------------
# The sections
# ----------------------------------------------------------------------------------------------

def train_section(report: Report, out: Path, epochs: int, progress: bool) -> bool:
    from tqdm.auto import tqdm

    from ..training import EpochRecord
    from .train import train_digits

    print(EpochRecord.HEADER)
    result = train_digits("mlp", norm="batch", epochs=epochs, out=str(out), progress=progress,
                          log=lambda record: tqdm.write(record.row()))
    history, final = result.history, result.history[-1]
    print(f"test accuracy {final.test_accuracy:.2%} after {epochs} epochs "
          f"({result.seconds:.1f} s); reloaded from {result.checkpoint}: "
          f"{result.reloaded_accuracy:.2%}")

    figure_path = _training_figure(history, out / "training.png")
    section = report.section("1. Training an MLP with BatchNorm on the digits")
    section.text(f"{result.data!r}. Model: 64 → 256 → BatchNorm → ReLU → 256 → BatchNorm → ReLU "
                 f"→ 10 with the composed BatchNorm, Adam with cosine decay, batch 64, {epochs} "
                 f"epochs in {result.seconds:.1f} s.")
    section.image(figure_path, "Loss and accuracy per epoch")
    section.table(["epoch", "train loss", "train acc", "test loss", "test acc"],
                  [[r.epoch, r.train_loss, f"{r.train_accuracy:.2%}", r.test_loss,
                    f"{r.test_accuracy:.2%}"] for r in history])
    section.text(f"The checkpoint {Path(result.checkpoint).name} (.npz, loaded without pickle) "
                 f"was reloaded into a fresh model: test accuracy "
                 f"{result.reloaded_accuracy:.2%}.")
    return result.reload_matches


def _training_figure(history, path: Path) -> Path:
    from matplotlib.ticker import MaxNLocator

    from .experiments.common import figure

    epochs = [r.epoch for r in history]
    fig, (loss_ax, accuracy_ax) = figure(2, width=4.5, height=3.4)
    loss_ax.plot(epochs, [r.train_loss for r in history], "o-", label="train")
    loss_ax.plot(epochs, [r.test_loss for r in history], "s-", label="test")
    loss_ax.set(title="cross-entropy loss", xlabel="epoch", yscale="log")
    accuracy_ax.plot(epochs, [100 * r.train_accuracy for r in history], "o-", label="train")
    accuracy_ax.plot(epochs, [100 * r.test_accuracy for r in history], "s-", label="test")
    accuracy_ax.set(title="accuracy (%)", xlabel="epoch")
    for ax in (loss_ax, accuracy_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs only
        ax.legend()
    fig.savefig(path, dpi=110)
    fig.savefig(path.with_suffix(".svg"))
    return path


def gradcheck_section(report: Report) -> bool:
    from ..gradcheck.suite import check_all, format_error
    from .gradcheck import format_table

    rows = [row for pattern in ("BatchNorm", "batch_norm", "LayerNorm", "layer_norm",
                                "GroupNorm", "group_norm")
            for row in check_all(pattern)]
    print(format_table(rows))
    section = report.section("2. The BatchNorm family's gradients, checked by finite differences")
    section.text("Each layer and function is checked against central differences in float64 "
                 "(eps 1e-6; an element fails when |analytic − numeric| > 1e-5 + 1e-3·|numeric|), "
                 "and the functions also to second order. Run `minigrad gradcheck` for every op.")
    section.table(["name", "shapes", "max rel. error", "2nd order", "result"],
                  [[row.name, row.shapes, format_error(row.first), format_error(row.second),
                    "pass" if row.ok else "FAIL"] for row in rows])
    return all(row.ok for row in rows)


def graph_section(report: Report, out: Path) -> bool:
    from .graph import batchnorm_figure
    from ..viz import save_graph

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        graph, ok = batchnorm_figure(seed=0)
    print(printed.getvalue())
    written = save_graph(graph, out / "batchnorm.svg")
    print(f"wrote {written}")
    section = report.section("3. BatchNorm's graph and the three paths from the loss to x")
    section.text("The composed layer y = (x − mean) / sqrt(var + eps) · weight + bias on a batch "
                 "of 8 × 4. Each edge carries the norm of the gradient flowing along it (width "
                 "and colour on a log scale); the three coloured routes are the ways the loss "
                 "reaches x: directly through x̂, through the batch mean and through the batch "
                 "variance.")
    if written.suffix == ".svg":
        section.image(written, "Composed BatchNorm1d(4), training mode, after backward")
    else:
        section.text(f"(Graphviz's dot program is not installed, so the graph was written as "
                     f"{written.name} only.)")
    section.pre(printed.getvalue())
    # The step-through page is a program (buttons, a slider): its own file next to the report,
    # and shown inside the report too (an iframe's srcdoc keeps the report one offline file).
    from .graph import batchnorm_example
    from ..viz.steps import save_steps
    steps_path = save_steps(batchnorm_example(seed=0).loss, out / "bn_steps.html")
    print(f"wrote {steps_path}")
    section.text(f"Watch this backward pass node by node below (or open `{steps_path.name}` "
                 "next to this report): each step lights up one op, shows the gradient "
                 "arriving, the derivative applied and what goes to each input, and dL/dx "
                 "adding up from its three routes. Arrow keys step, Space plays.")
    section.page(steps_path, "Step through the composed BatchNorm's backward")
    return ok


def experiments_section(report: Report, out: Path, progress: bool) -> None:
    from . import experiments

    results = experiments.run_all(out, quick=True, progress=progress)
    summary = report.section("4. The seed's claims, as quick experiments")
    summary.text("Each claim of the BatchNorm summary this project grew from, tested on the "
                 "digits. These are the quick versions: one seed each, so every verdict is only "
                 "indicative -- a verdict needs the spread across seeds, which "
                 "`minigrad experiment all` (five seeds, a 95% interval per claim) measures; "
                 "docs/batchnorm.md has its results.")
    summary.table(["experiment", "claim", "verdicts", "seconds"],
                  [[r.name, r.claim, ", ".join(r.labels) or "measured", f"{r.seconds:.1f}"]
                   for r in results])
    for result in results:
        print(f"{result.name}: {result.verdict}")
        section = report.section(f"Claim: {result.claim}")
        section.verdict(result.verdict, result.reproduced)
        section.image(result.paths["png"], result.name)
        section.table(result.columns, result.rows)
