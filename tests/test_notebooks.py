"""The notebooks in notebooks/: generated from examples/, committed without outputs, and each
one runs top to bottom in a real Jupyter kernel (headless, through nbclient).

The experiment notebooks run in their quick mode: a first cell, added here only, puts
``--quick`` on the kernel's ``sys.argv`` just as ``python examples/x.py --quick`` would. The
notebooks run two at a time, one kernel each, so the file takes about half of their summed
run time.
"""
import asyncio
import importlib.util
import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
# notebooks/generate.py, the one way the notebooks are made (loaded by path: not a package).
_spec = importlib.util.spec_from_file_location("notebooks_generate", NOTEBOOKS / "generate.py")
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)

NAMES = sorted(path.stem for path in (ROOT / "examples").glob("*.py"))
QUICK_FLAG = '"--quick" in sys.argv'
KERNEL = "minigrad-tests"
GRAPH_NOTEBOOK = "batchnorm_gradient_flow"
# Settings a script without --quick fixes in its first cells, shortened here (text replaced
# before running, like a parameter cell): name -> (as written, as run).
SHORTER = {"train_digits": ("EPOCHS = 10", "EPOCHS = 2")}


def committed_notebooks():
    """The .ipynb files git tracks under notebooks/ (every one on disk outside a checkout)."""
    try:
        listed = subprocess.run(["git", "ls-files", "notebooks/*.ipynb"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return sorted(NOTEBOOKS.glob("*.ipynb"))
    return [ROOT / name for name in listed] or sorted(NOTEBOOKS.glob("*.ipynb"))


def test_every_example_has_a_notebook_in_sync(tmp_path):
    fresh = {path.stem: path for path in generate.generate(tmp_path)}
    assert sorted(fresh) == NAMES
    for name, path in fresh.items():
        committed = NOTEBOOKS / f"{name}.ipynb"
        assert committed.exists(), f"notebooks/{name}.ipynb is missing: run `make notebooks`"
        want, have = json.loads(path.read_text()), json.loads(committed.read_text())
        assert [(c["cell_type"], c["source"]) for c in have["cells"]] == \
            [(c["cell_type"], c["source"]) for c in want["cells"]], \
            f"notebooks/{name}.ipynb is out of date with examples/{name}.py: run `make notebooks`"
        assert have == want, f"notebooks/{name}.ipynb differs from a regenerated one"


def test_committed_notebooks_have_no_outputs():
    notebooks = committed_notebooks()
    assert notebooks, "no notebooks committed"
    for path in notebooks:
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [], f"{path.name}: a cell keeps its outputs"
                assert cell["execution_count"] is None, f"{path.name}: an execution count"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """name -> (the executed notebook or the exception it raised, its working directory)."""
    kernels = tmp_path_factory.mktemp("jupyter")
    # A kernelspec for this very interpreter, found first through JUPYTER_PATH: a `python3`
    # kernel of the user's own (another Python, without minigrad) cannot be picked by mistake.
    spec = kernels / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "minigrad tests", "language": "python"}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(kernels))
        patch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # a debugger warning on stderr
        return asyncio.run(_execute_all(tmp_path_factory))


async def _execute_all(tmp_path_factory):
    slots = asyncio.Semaphore(2)

    async def execute(name):
        notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        if any(QUICK_FLAG in cell.source for cell in notebook.cells):
            notebook.cells.insert(0, nbformat.v4.new_code_cell(
                'import sys\nsys.argv.append("--quick")'))
        if name in SHORTER:
            written, shorter = SHORTER[name]
            cell = next(c for c in notebook.cells if written in c.source)  # fails if renamed
            cell.source = cell.source.replace(written, shorter)
        workdir = tmp_path_factory.mktemp(name)  # the notebooks write into ./out
        client = nbclient.NotebookClient(notebook, kernel_name=KERNEL, timeout=120,
                                         resources={"metadata": {"path": str(workdir)}})
        async with slots:
            try:
                await client.async_execute()
            except Exception as error:  # reported by that notebook's own test
                return name, (error, workdir)
        return name, (notebook, workdir)

    return dict(await asyncio.gather(*(execute(name) for name in NAMES)))


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_headless(executed, name):
    notebook, workdir = executed[name]
    if isinstance(notebook, Exception):
        raise notebook
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code)
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    if any(QUICK_FLAG in cell.source for cell in code):
        # The quick mode reached the experiment: its saved record says so.
        records = list((workdir / "out" / "experiments").glob("*.json"))
        assert records and all(json.loads(p.read_text())["quick"] for p in records)


def test_graph_renders_inline_as_svg(executed):
    notebook, _ = executed[GRAPH_NOTEBOOK]
    if isinstance(notebook, Exception):
        raise notebook
    results = [o for o in notebook.cells[-1].outputs if o.output_type == "execute_result"]
    assert len(results) == 1 and "image/svg+xml" in results[0].data
    svg = ElementTree.fromstring(results[0].data["image/svg+xml"])
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    labels = {t.text.strip() for t in svg.iter("{http://www.w3.org/2000/svg}text") if t.text}
    assert {"Mean", "Var", "Sqrt"} <= labels  # the composed BatchNorm's ops, drawn
