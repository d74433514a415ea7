"""Regenerate the graph pictures in docs/images/ (``make docs`` runs this).

- ``batchnorm.svg``: one composed BatchNorm1d layer with the three paths from the loss to its
  input highlighted (the picture ``minigrad graph batchnorm`` draws; the check it prints runs
  here too, and a failed check fails this script).
- ``mlp-collapsed.svg``: an MLP with three BatchNorm layers, each collapsed to one node.

The DOT source is written next to each picture, so a change in a graph shows up in a diff.
"""
from __future__ import annotations

import sys
from pathlib import Path

from minigrad.app.graph import batchnorm_figure, mlp_example
from minigrad.viz import draw_graph, save_graph

IMAGES = Path(__file__).resolve().parent / "images"


def main() -> int:
    graph, checks_pass = batchnorm_figure(seed=0)
    written = [save_graph(graph, IMAGES / "batchnorm.svg")]
    mlp = draw_graph(mlp_example(seed=0), collapse=("BatchNorm1d",),
                     title="An MLP with BatchNorm, each BatchNorm1d collapsed to one node")
    written.append(save_graph(mlp, IMAGES / "mlp-collapsed.svg"))
    for path in written:
        print(f"wrote {path}")
    return 0 if checks_pass else 1


if __name__ == "__main__":
    sys.exit(main())
