"""`minigrad gradcheck`, the self-test (``minigrad.gradcheck.suite``, printed by
``minigrad.app.gradcheck``): it finds every op and layer from the library itself, checks each by
finite differences and fails loudly for anything wrong or without a case."""
import argparse
import inspect
import subprocess
import sys

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad import nn
from minigrad.app import gradcheck as command
from minigrad.gradcheck import suite
from minigrad.core import ops


def parse(*argv):
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture
def library_op():
    """A Function subclass that looks like part of the library (module minigrad.*) and has a
    wrong backward; it stops looking like the library's afterwards (a class cannot be removed
    from ``__subclasses__`` while anything still refers to it)."""
    class Halve(mg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 0.5

        @staticmethod
        def backward(ctx, grad):
            return grad  # forgets the 0.5

    Halve.__module__ = "minigrad.core.ops_added_later"
    yield Halve
    Halve.__module__ = "test_selftest"


def test_the_registry_holds_every_op_layer_and_function_the_library_defines():
    targets = [target for _, target in suite.registry()]
    op_classes = [c for _, c in inspect.getmembers(ops, inspect.isclass)
                  if issubclass(c, mg.Function) and c is not mg.Function]
    layers = [getattr(nn, name) for name in nn.__all__
              if inspect.isclass(getattr(nn, name)) and issubclass(getattr(nn, name), nn.Module)
              and getattr(nn, name) is not nn.Module]
    functions = [getattr(F, name) for name in F.__all__]
    for expected in op_classes + layers + functions:
        assert expected in targets, expected
    assert len(op_classes) > 20 and nn.BatchNorm1d in layers and F.FusedBatchNorm in targets


def test_abstract_bases_and_test_classes_are_not_in_the_registry():
    names = {target.__name__ for _, target in suite.registry()}
    assert "_BatchNorm" not in names and {"BatchNorm1d", "BatchNorm2d"} <= names
    assert "Module" not in names and "Function" not in names
    assert all(target.__module__.startswith("minigrad.") for _, target in suite.registry())


def test_every_registry_entry_has_a_sample_case():
    missing = [suite.display_name(kind, target) for kind, target in suite.registry()
               if target not in suite.CASES]
    assert missing == []


def test_a_new_op_without_a_case_fails_loudly(library_op, capsys):
    assert ("op", library_op) in suite.registry()
    assert command.run(parse("-k", "Halve")) == 1
    out = capsys.readouterr().out
    assert "Halve" in out and "ERROR" in out and "no sample case: add one to CASES" in out


def test_a_wrong_op_fails_with_its_report(library_op, monkeypatch, capsys):
    monkeypatch.setitem(suite.CASES, library_op,
                        lambda op: [suite.function_case(op.apply, suite.signed(3, 2))])
    assert command.run(parse("-k", "Halve")) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("op       Halve"))
    # twice too large: relative error |2n - n| / |2n|; the second derivative (0) is right
    assert row.split()[-3:] == ["5.0e-01", "0.0e+00", "FAIL"]
    assert "analytic = 2 x numeric" in out


def test_a_case_that_raises_is_reported_and_the_rest_still_run(monkeypatch):
    def broken(op):
        raise RuntimeError("sample data went missing")

    monkeypatch.setitem(suite.CASES, ops.Exp, broken)
    rows = [row for row in suite.check_all("xp") if row.name == "Exp"]
    assert [(row.name, row.ok) for row in rows] == [("Exp", False)]
    assert "sample data went missing" in rows[0].problem
    assert all(row.ok for row in suite.check_all("Sqrt"))


def test_warnings_fail_a_row(monkeypatch):
    on_kink = mg.Tensor(np.array([0.0, 1.0]), requires_grad=True)
    monkeypatch.setitem(suite.CASES, ops.Abs,
                        lambda op: [suite.function_case(op.apply, on_kink)])
    (row,) = suite.check_all("Abs")
    assert row.first.ok and not row.ok
    assert "abs's kink" in command.format_failures([row])


def test_nothing_matching_the_filter_is_a_failure(capsys):
    assert command.run(parse("-k", "no such op")) == 1
    assert "nothing matches" in capsys.readouterr().out


def test_the_command_checks_everything_and_passes():
    result = subprocess.run([sys.executable, "-m", "minigrad", "gradcheck", "--fast"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    rows = [line for line in lines if line.split()[:1] in (["op"], ["function"], ["layer"])]
    assert len(rows) >= 60 and all(line.endswith("pass") for line in rows)
    names = {line.split()[1] for line in rows}
    assert {"FusedBatchNorm", "F.batch_norm", "nn.BatchNorm1d", "nn.BatchNorm2d",
            "nn.LayerNorm", "nn.GroupNorm", "nn.Conv2d", "nn.Linear", "F.cross_entropy",
            "F.mse_loss"} <= names
    assert "0 failed" in lines[-1]
