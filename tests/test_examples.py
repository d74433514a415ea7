"""The walk-through examples run as plain scripts and reach their conclusions."""
import runpy
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples write into ./out
    return runpy.run_path(str(EXAMPLES / name), run_name="__main__")


def test_batchnorm_gradient_flow(tmp_path, monkeypatch):
    names = run_example("batchnorm_gradient_flow.py", tmp_path, monkeypatch)
    assert set(names["parts"]) == {"Sub", "Mean", "Var"}
    for name, expected in names["closed"].items():
        assert abs(names["parts"][name] - expected).max() < 1e-12
    assert abs(names["x"].grad.data.sum(axis=0)).max() < 1e-12
    assert (tmp_path / "out" / "batchnorm_walkthrough.dot").exists()


def test_check_handwritten_backward(tmp_path, monkeypatch):
    names = run_example("check_handwritten_backward.py", tmp_path, monkeypatch)
    assert not names["alone"].ok
    assert not names["in_model"].ok
    assert names["in_model"].culprit.op == "HandwrittenBatchNorm"
    assert names["fixed"].ok
