"""Run the seed's six experiments and write their results into docs/batchnorm.md.

The guide keeps its prose; between each pair of markers

    <!-- experiment:NAME -->
    <!-- /experiment:NAME -->

this script writes the experiment's verdict, figure and table, so every number in the guide
comes from a run, not from typing. Figures and numbers go to docs/images/experiments/.
``python docs/make_results.py`` runs the full experiments (several minutes); ``--quick`` the
one-minute versions.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from minigrad.app import experiments
from minigrad.app.report import markdown_table

DOCS = Path(__file__).resolve().parent
GUIDE = DOCS / "batchnorm.md"
FIGURES = DOCS / "images" / "experiments"


def results_block(result) -> str:
    figure = result.paths["png"].relative_to(DOCS)
    mode = "quick run" if result.quick else "full run"
    lines = [f"> {result.verdict}", "",
             f"![{result.name}]({figure.as_posix()})", ""]
    lines += markdown_table(result.columns, result.rows)
    lines += ["", f"*`minigrad experiment {result.name}` ({mode}, {result.seconds:.0f} s); "
                  f"all numbers in `{result.paths['json'].relative_to(DOCS).as_posix()}`.*"]
    return "\n".join(lines)


def summary_block() -> str:
    """One row per judged claim of every experiment, from the saved records (so a run of a
    few experiments keeps the others' rows as last recorded)."""
    import json
    rows = []
    for name in experiments.EXPERIMENTS:
        path = FIGURES / f"{name}.json"
        if not path.exists():
            continue
        record = json.loads(path.read_text())
        mode = "quick" if record["quick"] else "full"
        for v in record["numbers"].get("verdicts", []):
            interval = ("—" if v["low"] is None else
                        f"[{v['low']:+.3g}, {v['high']:+.3g}]")
            rows.append([name, f"{v['metric']}: {v['a']} − {v['b']}", f"{v['mean']:+.3g}",
                         interval, f"{v['seeds']} ({mode})", f"**{v['label']}**"])
    lines = markdown_table(["experiment", "metric: arm a − arm b", "mean difference",
                            "95% interval", "seeds", "verdict"], rows)
    return "\n".join(lines)


def fill(guide: str, name: str, block: str) -> str:
    pattern = re.compile(rf"(<!-- experiment:{re.escape(name)} -->\n).*?(<!-- /experiment:"
                         rf"{re.escape(name)} -->)", flags=re.S)
    if not pattern.search(guide):
        raise SystemExit(f"make_results: no markers for experiment {name!r} in {GUIDE}")
    return pattern.sub(lambda m: m.group(1) + block + "\n" + m.group(2), guide)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"only these experiments (default: all of "
                             f"{', '.join(experiments.EXPERIMENTS)})")
    parser.add_argument("--quick", action="store_true", help="the one-minute versions")
    args = parser.parse_args(argv)
    guide = GUIDE.read_text()
    for name in args.names or experiments.EXPERIMENTS:
        result = experiments.run(name, FIGURES, quick=args.quick)
        print(f"{result.name}: {result.verdict}")
        guide = fill(guide, result.name, results_block(result))
    GUIDE.write_text(fill(guide, "summary", summary_block()))
    print(f"wrote {GUIDE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
