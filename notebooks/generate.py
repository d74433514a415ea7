"""Regenerate notebooks/*.ipynb from the `# %%` scripts in examples/.

examples/ is the one source of truth: edit a script there, then run ``make notebooks`` (this
file). The notebooks are written without outputs and with fixed cell ids, so regenerating an
unchanged script gives the same bytes and git only sees real changes; tests/test_notebooks.py
checks that the committed notebooks match their scripts.

    python notebooks/generate.py [OUT_DIR]     # OUT_DIR defaults to notebooks/
"""
import sys
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NOTEBOOKS = ROOT / "notebooks"
# The kernel `pip install ipykernel` registers inside the venv, so Jupyter started from the
# venv (`make notebook`) runs the notebooks with the interpreter that has minigrad installed.
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def to_notebook(script: Path):
    """The notebook for one `# %%` script: its cells, no outputs, stable ids, plain metadata."""
    notebook = jupytext.read(script, fmt="py:percent")
    # jupytext's own bookkeeping (text representation, filters) would only matter for a paired
    # notebook; these are generated one way, so keep just what Jupyter needs.
    notebook.metadata = {"kernelspec": dict(KERNELSPEC),
                         "language_info": {"name": "python"}}
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index}"  # jupytext picks random ids; fixed ones keep diffs empty
        cell.metadata = {}
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return notebook


def generate(out_dir: Path = NOTEBOOKS) -> list[Path]:
    """Write one .ipynb per examples/*.py into ``out_dir``; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for script in sorted(EXAMPLES.glob("*.py")):
        path = out_dir / f"{script.stem}.ipynb"
        path.write_text(jupytext.writes(to_notebook(script), fmt="ipynb"), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else NOTEBOOKS):
        print("wrote", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
