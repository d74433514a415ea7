"""The documentation's code runs as written."""
import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
DOCS = Path(__file__).resolve().parent.parent / "docs"


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


@pytest.mark.slow
def test_tutorial_runs_top_to_bottom(capsys):
    blocks = python_blocks((DOCS / "tutorial.md").read_text())
    assert len(blocks) >= 5
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "tutorial.md", "exec"), namespace)  # noqa: S102 -- our own docs
    printed = capsys.readouterr().out
    assert "test accuracy" in printed
    accuracy = float(re.search(r"test accuracy ([\d.]+)%", printed).group(1))
    assert accuracy > 90
    assert not namespace["result"].ok  # the deliberately wrong Cube backward is caught
    assert namespace["graph"].source.count("->") > 5


def test_guide_has_a_results_slot_for_every_experiment():
    from minigrad.app.experiments import EXPERIMENTS
    guide = (DOCS / "batchnorm.md").read_text()
    for name in EXPERIMENTS:
        assert f"<!-- experiment:{name} -->" in guide
        assert f"<!-- /experiment:{name} -->" in guide


def test_make_results_replaces_only_between_markers():
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_results", DOCS / "make_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = "before\n<!-- experiment:ics -->\nold\n<!-- /experiment:ics -->\nafter\n"
    filled = module.fill(module.fill(text, "ics", "new"), "ics", "newer")
    assert filled == "before\n<!-- experiment:ics -->\nnewer\n<!-- /experiment:ics -->\nafter\n"
    with pytest.raises(SystemExit):
        module.fill(text, "memory", "x")


def test_readme_example_runs(capsys):
    (block,) = python_blocks((DOCS.parent / "README.md").read_text())
    exec(compile(block, "README.md", "exec"), {})  # noqa: S102 -- our own docs
    assert capsys.readouterr().out.strip().endswith("True")
