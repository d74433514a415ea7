"""The seed's claims about BatchNorm, each turned into an experiment on the digits data.

Every experiment trains small networks with fixed seeds, draws one figure and fills one table::

    from minigrad.app import experiments
    result = experiments.run("learning-rate", quick=True, out_dir="out/experiments")
    print(result.verdict)          # one line: did the claim reproduce, with the numbers
    result.paths["png"]            # also "svg", "json" and "csv"

``EXPERIMENTS`` is the registry (name -> claim and module); ``run_all`` runs them in order. The
``minigrad experiment`` command and ``examples/experiment_*.py`` are thin wrappers around
``run``.
"""
from __future__ import annotations

import csv
import importlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..report import format_cell
from .common import Findings, Settings, float32, one_blas_thread, seed_everything

__all__ = ["EXPERIMENTS", "Experiment", "Result", "run", "run_all"]


@dataclass(frozen=True)
class Experiment:
    """One of the seed's claims (``claim``, numbered as in the design brief) and the module
    whose ``run(settings) -> Findings`` tests it."""
    name: str
    number: int
    claim: str
    module: str


EXPERIMENTS = {e.name: e for e in [
    Experiment("ics", 1, "BatchNorm reduces internal covariate shift: without it, a node's input "
               "distribution drifts across training iterations", "minigrad.app.experiments.ics"),
    Experiment("learning-rate", 5, "With BatchNorm a large learning rate still trains, so "
               "training is faster", "minigrad.app.experiments.learning_rate"),
    Experiment("regularization", 5, "BatchNorm has a regularizing effect",
               "minigrad.app.experiments.regularization"),
    Experiment("batch-size", 6, "BatchNorm is hard to use with small mini-batches",
               "minigrad.app.experiments.batch_size"),
    Experiment("memory", 3, "Training must keep the batch's outputs: BatchNorm costs compute "
               "and memory", "minigrad.app.experiments.memory"),
    Experiment("inference", 4, "At test time (often batch size 1) use the average of the "
               "training batches' means and variances", "minigrad.app.experiments.inference"),
    Experiment("landscape", 5, "Why BatchNorm helps: a smoother loss along the gradient "
               "(Santurkar et al. 2018) and scale-invariant layers",
               "minigrad.app.experiments.landscape"),
]}


@dataclass
class Result:
    """A finished experiment: its verdict, table and numbers, and where its files are."""
    name: str
    claim: str
    reproduced: bool | None
    verdict: str
    columns: list
    rows: list
    numbers: dict = field(repr=False)
    paths: dict = field(default_factory=dict)  # "png", "svg", "json", "csv" -> Path
    seconds: float = 0.0
    quick: bool = False

    @property
    def labels(self) -> list:
        """The label of each claim the experiment judged ("reproduced", "not shown",
        "contradicted", "indicative (1 seed)"), headline first."""
        return [v["label"] for v in self.numbers.get("verdicts", [])]

    def table(self) -> str:
        """The summary table as aligned plain text."""
        cells = [[str(c) for c in self.columns]]
        cells += [[format_cell(v) for v in row] for row in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def run(name: str, out_dir="out/experiments", *, quick: bool = False, seed: int = 0,
        progress: bool = True) -> Result:
    """Run experiment ``name`` (a key of ``EXPERIMENTS``) and save its figure (PNG and SVG),
    numbers (JSON) and table (CSV) in ``out_dir`` as ``<name>.<ext>``."""
    if name not in EXPERIMENTS:
        raise ValueError(f"experiments.run: unknown experiment {name!r}; choose one of "
                         f"{', '.join(EXPERIMENTS)}")
    experiment = EXPERIMENTS[name]
    settings = Settings(quick=quick, seed=seed, progress=progress)
    module = importlib.import_module(experiment.module)
    start = time.perf_counter()
    with float32(), one_blas_thread():
        seed_everything(seed)
        findings: Findings = module.run(settings)
    seconds = time.perf_counter() - start
    result = Result(name, experiment.claim, findings.reproduced, findings.verdict,
                    list(findings.columns), [list(r) for r in findings.rows], findings.numbers,
                    seconds=seconds, quick=quick)
    result.paths = _save(result, findings.figure, Path(out_dir))
    return result


def run_all(out_dir="out/experiments", *, quick: bool = False, seed: int = 0,
            progress: bool = True) -> list[Result]:
    """Run every experiment in ``EXPERIMENTS`` order."""
    return [run(name, out_dir, quick=quick, seed=seed, progress=progress)
            for name in EXPERIMENTS]


def _save(result: Result, fig, out_dir: Path) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: out_dir / f"{result.name}.{ext}" for ext in ("png", "svg", "json", "csv")}
    for ax in fig.axes:  # one title size for every panel of every experiment
        ax.title.set_fontsize(10)
    fig.savefig(paths["png"], dpi=120)
    fig.savefig(paths["svg"])
    record = {"name": result.name, "claim": result.claim, "reproduced": result.reproduced,
              "verdict": result.verdict, "quick": result.quick,
              "seconds": round(result.seconds, 2),
              "table": {"columns": result.columns, "rows": result.rows},
              "numbers": result.numbers}
    # allow_nan=False: a NaN that slipped through would make the file invalid JSON elsewhere.
    paths["json"].write_text(json.dumps(record, indent=1, allow_nan=False) + "\n")
    with paths["csv"].open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    return paths
