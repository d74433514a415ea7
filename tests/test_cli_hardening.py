"""Bad command lines end in one error line and exit status 2 before any work; a run whose loss
becomes NaN or inf stops and says where."""
import argparse
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigrad import optim
from minigrad.app import arguments, cli
from minigrad.data import DataLoader, Dataset
from minigrad.training import LossNotFiniteError, build_model, fit, train_epoch

ON_LINUX_PROC = sys.platform.startswith("linux") and os.path.isdir("/proc/self")
needs_proc = pytest.mark.skipif(not ON_LINUX_PROC, reason="needs Linux's /proc")


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A working directory holding a regular file ``afile``, a directory ``adir``, a script
    ``model.py`` (``build`` returns a Tensor, ``numbers`` a list) and ``notes.txt``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a directory")
    (tmp_path / "adir").mkdir()
    (tmp_path / "model.py").write_text(
        "import minigrad as mg\n"
        "def build():\n"
        "    x = mg.tensor([1.0, 2.0], requires_grad=True)\n"
        "    return (x * x).sum()\n"
        "def numbers():\n"
        "    return [1, 2]\n")
    (tmp_path / "notes.txt").write_text("def build(): pass\n")
    # Directories where a file goes, and files where a directory goes, inside an --out.
    (tmp_path / "demo_out" / "report.html").mkdir(parents=True)
    (tmp_path / "demo_exp").mkdir()
    (tmp_path / "demo_exp" / "experiments").write_text("a file")
    (tmp_path / "exp_out" / "ics.png").mkdir(parents=True)
    (tmp_path / "graph_dot").mkdir()
    (tmp_path / "graph_dot" / "g.dot").mkdir()
    return tmp_path


def _work_started(*args, **kwargs):
    raise AssertionError("the command started working before rejecting its command line")


@pytest.fixture
def no_work(monkeypatch):
    """Every command's work fails the test: a bad command line must be refused first."""
    from minigrad.app import experiments, gradcheck, graph, train
    monkeypatch.setattr(train, "train_digits", _work_started)
    monkeypatch.setattr(experiments, "run", _work_started)
    monkeypatch.setattr(experiments, "run_all", _work_started)
    monkeypatch.setattr(graph, "draw_graph", _work_started)
    monkeypatch.setattr(graph, "batchnorm_figure", _work_started)
    monkeypatch.setattr(graph, "save_graph", _work_started)
    monkeypatch.setattr(gradcheck, "check_all", _work_started)


# (command line, a substring of the error line). Paths are relative to the ``place`` fixture.
BAD_COMMAND_LINES = [
    # the command itself
    ([], "the following arguments are required: COMMAND"),
    (["nope"], "invalid choice: 'nope'"),
    (["--bogus"], "the following arguments are required"),
    # train: numbers
    (["train", "--epochs", "0"], "argument --epochs: must be a positive integer, got 0"),
    (["train", "--epochs", "-1"], "argument --epochs: must be a positive integer, got -1"),
    (["train", "--epochs", "ten"], "argument --epochs: must be a positive integer, got 'ten'"),
    (["train", "--epochs", "1.5"], "argument --epochs: must be a positive integer, got '1.5'"),
    (["train", "--epochs", ""], "argument --epochs: must be a positive integer, got ''"),
    (["train", "--epochs"], "argument --epochs: expected one argument"),
    (["train", "--batch-size", "0"], "argument --batch-size: must be a positive integer, got 0"),
    (["train", "--batch-size", "-3"], "argument --batch-size: must be a positive integer"),
    (["train", "--batch-size", "x"], "argument --batch-size: must be a positive integer, got 'x'"),
    (["train", "--batch-size", "5000"],
     "argument --batch-size: must be at most the 1348 training samples, got 5000"),
    (["train", "--batch-size", "1349", "--model", "cnn"],
     "argument --batch-size: must be at most the 1348 training samples, got 1349"),
    (["train", "--batch-size", "1"],
     "argument --batch-size: must be at least 2 when norm is 'batch'"),
    (["train", "--seed", "-1"], "argument --seed: must be a non-negative integer, got -1"),
    (["train", "--seed", "one"], "argument --seed: must be a non-negative integer, got 'one'"),
    (["train", "--seed", "0.5"], "argument --seed: must be a non-negative integer, got '0.5'"),
    (["train", "--lr", "nan"], "argument --lr: must be a finite number, got nan"),
    (["train", "--lr", "inf"], "argument --lr: must be a finite number, got inf"),
    (["train", "--lr=-inf"], "argument --lr: must be a finite number, got -inf"),
    (["train", "--lr", "-inf"], "argument --lr: expected one argument"),
    (["train", "--lr", "-1"], "argument --lr: must be a positive number, got -1.0"),
    (["train", "--lr", "0"], "argument --lr: must be a positive number, got 0.0"),
    (["train", "--lr", "fast"], "argument --lr: must be a real number, got 'fast'"),
    (["train", "--lr", "1e"], "argument --lr: must be a real number, got '1e'"),
    # train: choices and options
    (["train", "--model", "rnn"], "argument --model: invalid choice: 'rnn'"),
    (["train", "--norm", "instance"], "argument --norm: invalid choice: 'instance'"),
    (["train", "--optimizer", "lbfgs"], "argument --optimizer: invalid choice: 'lbfgs'"),
    (["train", "--epochz", "3"], "unrecognized arguments: --epochz 3"),
    (["train", "extra"], "unrecognized arguments: extra"),
    # train: the output directory
    (["train", "--out", "afile"],
     "argument --out: must be a directory you can write in ("),
    (["train", "--out", "afile/sub"], "afile' is a file), got 'afile/sub'"),
    pytest.param(["train", "--out", "/proc/minigrad-out"],
                 "argument --out: must be a directory you can write in", marks=needs_proc),
    # demo
    (["demo", "--epochs", "0"], "argument --epochs: must be a positive integer, got 0"),
    (["demo", "--epochs", "-2"], "argument --epochs: must be a positive integer, got -2"),
    (["demo", "--epochs", "ten"], "argument --epochs: must be a positive integer, got 'ten'"),
    (["demo", "-o", "afile"], "argument -o/--out: must be a directory you can write in"),
    (["demo", "--out", "afile/report"], "afile' is a file), got 'afile/report'"),
    (["demo", "-o", "demo_out"], "argument -o/--out: must be a file, not a directory, got "
                                 "'demo_out/report.html'"),
    (["demo", "-o", "demo_exp"], "argument -o/--out: must be a directory you can write in"),
    pytest.param(["demo", "-o", "/proc/minigrad-out"],
                 "argument -o/--out: must be a directory you can write in", marks=needs_proc),
    (["demo", "--skip-all"], "unrecognized arguments: --skip-all"),
    # graph: what to draw
    (["graph"], "the following arguments are required: GRAPH"),
    (["graph", "resnet"], "argument GRAPH: must be batchnorm, layernorm, mlp or "
                          "path/to/script.py:function, got 'resnet'"),
    (["graph", "missing.py:build"], "a script that exists (no file 'missing.py')"),
    (["graph", "notes.txt:build"], "a script whose name ends in .py"),
    (["graph", ":build"], "got ':build'"),
    (["graph", "model.py:"], "got 'model.py:'"),
    (["graph", "model.py:1st"], "got 'model.py:1st'"),
    (["graph", "model.py:missing", "-o", "g.dot"], "has no function 'missing'"),
    (["graph", "model.py:numbers", "-o", "g.dot"],
     "a function that returns the Tensor to draw, but it returned a list"),
    # graph: --collapse names a module class of the graph drawn
    (["graph", "batchnorm", "--collapse", "NoSuchClass", "-o", "g.dot"],
     "argument --collapse: must be a module class of this graph (BatchNorm1d), "
     "got 'NoSuchClass'"),
    (["graph", "mlp", "--collapse", "BatchNorm1d", "Batchnorm1d", "-o", "g.dot"],
     "(BatchNorm1d, Linear, MLP), got 'Batchnorm1d'"),
    (["graph", "layernorm", "--collapse", "BatchNorm1d", "-o", "g.dot"],
     "a module class of this graph (LayerNorm), got 'BatchNorm1d'"),
    (["graph", "model.py:build", "--collapse", "Linear", "-o", "g.dot"],
     "none: this graph was made by no module"),
    (["graph", "mlp", "--collapse"], "argument --collapse: expected at least one argument"),
    # graph: numbers, choices and the output file
    (["graph", "mlp", "--seed", "-1"], "argument --seed: must be a non-negative integer, got -1"),
    (["graph", "mlp", "--max-nodes", "1"], "argument --max-nodes: must be an integer of at "
                                           "least 2, got 1"),
    (["graph", "mlp", "--max-nodes", "-5"], "must be an integer of at least 2, got -5"),
    (["graph", "mlp", "--max-nodes", "many"], "argument --max-nodes: must be an integer"),
    (["graph", "mlp", "--rankdir", "XY"], "argument --rankdir: invalid choice: 'XY'"),
    (["graph", "mlp", "-o", "graph.jpg"], "must be a file name ending in .svg, .png, .pdf "
                                          "or .dot, got 'graph.jpg'"),
    (["graph", "mlp", "-o", "adir"], "must be a file name ending in .svg"),
    (["graph", "mlp", "-o", "afile/g.svg"], "must be a file in a directory you can write in"),
    (["graph", "mlp", "-o", "graph_dot/g.svg"], "must be a file, not a directory, got "
                                                "'graph_dot/g.dot'"),
    (["graph", "mlp", "-o", "graph_dot/g.dot"], "must be a file, not a directory"),
    pytest.param(["graph", "mlp", "-o", "/proc/g.svg"],
                 "argument -o/--output: must be a directory you can write in", marks=needs_proc),
    # experiment
    (["experiment"], "the following arguments are required: NAME"),
    (["experiment", "nope"], "argument NAME: invalid choice: 'nope'"),
    (["experiment", "ics", "--seed", "-1"], "argument --seed: must be a non-negative integer"),
    (["experiment", "ics", "--seed", "x"], "argument --seed: must be a non-negative integer"),
    (["experiment", "all", "-o", "afile"], "argument -o/--out: must be a directory you can "
                                           "write in"),
    (["experiment", "ics", "-o", "afile/sub"], "afile' is a file), got 'afile/sub'"),
    (["experiment", "ics", "-o", "exp_out"], "must be a file, not a directory, got "
                                             "'exp_out/ics.png'"),
    pytest.param(["experiment", "ics", "-o", "/proc/minigrad-out"],
                 "argument -o/--out: must be a directory you can write in", marks=needs_proc),
    # gradcheck
    (["gradcheck", "-k"], "argument -k: expected one argument"),
    (["gradcheck", "--fast=yes"], "ignored explicit argument 'yes'"),
    (["gradcheck", "--slow"], "unrecognized arguments: --slow"),
]


@pytest.mark.parametrize("argv, message", BAD_COMMAND_LINES,
                         ids=[" ".join(case.values[0] if hasattr(case, "values") else case[0])
                              or "(nothing)" for case in BAD_COMMAND_LINES])
def test_a_bad_command_line_exits_2_with_one_error_line(place, no_work, capsys, argv, message):
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.rstrip("\n").splitlines()[-1]
    command = next((word for word in argv if word in cli.COMMANDS), None)
    assert line.startswith(f"minigrad {command}: error: " if command else "minigrad: error: ")
    assert message in line, line
    # The exception says the same, for a caller of main() in this process.
    assert message in str(stopped.value)


def test_nothing_is_created_for_a_rejected_command_line(place, no_work):
    with pytest.raises(SystemExit):
        cli.main(["train", "--out", "new/checkpoints", "--epochs", "0"])
    assert not (place / "new").exists()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root may write in a read-only directory")
def test_a_read_only_output_directory_is_refused(place, no_work, capsys):
    locked = place / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(SystemExit) as stopped:
            cli.main(["train", "--out", str(locked / "sub")])
    finally:
        locked.chmod(0o700)
    assert stopped.value.code == 2
    assert "is not writable" in capsys.readouterr().err


def test_the_exit_status_is_2_from_the_shell(tmp_path):
    result = subprocess.run([sys.executable, "-m", "minigrad", "train", "--lr", "nan"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == ("minigrad train: error: argument --lr: must be a "
                                              "finite number, got nan")


# ----------------------------------------------------------------------------------------------
# The argparse types on their own
# ----------------------------------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(st.integers(-10**6, 10**6))
def test_integer_types_accept_exactly_their_range(value):
    for parse, low, words in ((arguments.positive_int, 1, "a positive integer"),
                              (arguments.non_negative_int, 0, "a non-negative integer"),
                              (arguments.at_least(2), 2, "an integer of at least 2")):
        if value >= low:
            assert parse(str(value)) == value
        else:
            with pytest.raises(argparse.ArgumentTypeError, match=f"must be {words}, got"):
                parse(str(value))


@settings(max_examples=50, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_the_learning_rate_type_takes_only_finite_positive_numbers(value):
    if math.isfinite(value) and value > 0:
        assert arguments.finite_positive_float(repr(value)) == value
    else:
        expected = "a finite number" if not math.isfinite(value) else "a positive number"
        with pytest.raises(argparse.ArgumentTypeError, match=f"must be {expected}, got"):
            arguments.finite_positive_float(repr(value))


def test_path_types_tell_a_file_from_a_directory(tmp_path):
    (tmp_path / "file").write_text("")
    assert arguments.writable_dir(str(tmp_path / "new" / "dir")) == tmp_path / "new" / "dir"
    assert not (tmp_path / "new").exists()  # checked, not created
    assert arguments.writable_file(str(tmp_path / "new" / "g.svg")) == tmp_path / "new" / "g.svg"
    with pytest.raises(argparse.ArgumentTypeError, match="is a file"):
        arguments.writable_dir(str(tmp_path / "file"))
    with pytest.raises(argparse.ArgumentTypeError, match="must be a file, not a directory"):
        arguments.writable_file(str(tmp_path))
    with pytest.raises(arguments.UsageError, match="argument --out: must be a directory"):
        arguments.check_writable_dir(tmp_path / "file" / "sub", "--out")


# ----------------------------------------------------------------------------------------------
# A loss that becomes NaN or inf
# ----------------------------------------------------------------------------------------------

def tiny_data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4))
    y = (x[:, 0] > 0).astype(np.int64)
    return Dataset("tiny", x, y, x[:8], y[:8], n_classes=2)


def tiny_model():
    return build_model("mlp", input_shape=(4,), n_classes=2, hidden=8, norm="layer")


def test_fit_stops_when_the_training_loss_becomes_nan():
    model = tiny_model()
    optimizer = optim.SGD(model.parameters(), lr=1e300)
    with np.errstate(all="ignore"), pytest.raises(LossNotFiniteError) as stopped:
        fit(model, tiny_data(), optimizer, epochs=3, batch_size=8, progress=False)
    error = stopped.value
    assert isinstance(error, RuntimeError)
    assert error.epoch == 1 and error.step >= 2 and not math.isfinite(error.loss)
    value = "NaN" if math.isnan(error.loss) else "inf"
    assert f"the training loss became {value} at epoch 1, step {error.step}" in str(error)


def test_fit_stops_when_the_test_loss_becomes_inf(monkeypatch):
    import minigrad.training as training
    monkeypatch.setattr(training, "evaluate", lambda model, loader: (math.inf, 0.5))
    model = tiny_model()
    with pytest.raises(LossNotFiniteError, match="the test loss became inf after epoch 1") as e:
        fit(model, tiny_data(), optim.SGD(model.parameters(), lr=0.1), epochs=2, batch_size=8,
            progress=False)
    assert e.value.epoch == 1 and e.value.step is None


def test_train_epoch_names_the_step_without_an_epoch():
    model = tiny_model()
    data = tiny_data()
    data.x_train[:] = np.nan  # every batch's loss is NaN
    loader = DataLoader((data.x_train, data.y_train), batch_size=8, dtype=np.float32)
    with np.errstate(all="ignore"), pytest.raises(LossNotFiniteError,
                                                  match="became NaN at step 1;") as e:
        train_epoch(model, optim.SGD(model.parameters(), lr=0.1), loader)
    assert e.value.epoch is None and e.value.step == 1


@pytest.mark.parametrize("kwargs, message", [
    (dict(epochs=0), "fit: epochs must be a positive integer, got 0"),
    (dict(epochs=2.0), "fit: epochs must be a positive integer, got 2.0"),
    (dict(epochs=1, batch_size=0), "fit: batch_size must be a positive integer, got 0"),
    (dict(epochs=1, batch_size=33), "fit: batch_size must be at most the 32 training samples, "
                                    "got 33"),
])
def test_fit_checks_its_arguments(kwargs, message):
    model = tiny_model()
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        fit(model, tiny_data(), optim.SGD(model.parameters(), lr=0.1), progress=False, **kwargs)


def test_train_epoch_on_an_empty_loader_is_an_error():
    model = tiny_model()
    empty = DataLoader((np.zeros((3, 4)), np.zeros(3, dtype=np.int64)), batch_size=8,
                       drop_last=True)
    with pytest.raises(ValueError, match="train_epoch: loader must be a loader that yields at "
                                         "least one batch"):
        train_epoch(model, optim.SGD(model.parameters(), lr=0.1), empty)


def test_train_command_reports_a_diverged_run_in_one_line(tmp_path, capsys):
    with np.errstate(all="ignore"):
        code = cli.main(["train", "--lr", "1e300", "--epochs", "3", "--no-progress", "--out",
                         str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "does not reproduce" not in err
    last = err.rstrip("\n").splitlines()[-1]
    assert last.startswith("minigrad train: error: the training loss became ")
    assert " at epoch 1, step " in last and "smaller learning rate" in last


@pytest.mark.parametrize("kwargs, message", [
    (dict(epochs=0), "train_digits: epochs must be a positive integer, got 0"),
    (dict(batch_size=5000), "train_digits: batch_size must be at most the 1348 training"),
    (dict(batch_size=1), "train_digits: batch_size must be at least 2 when norm is 'batch'"),
    (dict(lr=math.nan), "train_digits: lr must be a finite number, got nan"),
    (dict(seed=-1), "train_digits: seed must be a non-negative integer, got -1"),
    (dict(model="rnn"), "train_digits: model must be one of 'mlp', 'cnn', 'cnn-pool', got "
                          "'rnn'"),
])
def test_train_digits_checks_everything_before_training(monkeypatch, tmp_path, kwargs, message):
    from minigrad.app import train
    monkeypatch.setattr(train, "fit", _work_started)
    with pytest.raises(ValueError, match=message):
        train.train_digits(out=str(tmp_path), **kwargs)


def test_train_digits_refuses_an_output_file_before_training(monkeypatch, tmp_path):
    from minigrad.app import train
    monkeypatch.setattr(train, "fit", _work_started)
    (tmp_path / "taken").write_text("")
    with pytest.raises(FileExistsError):
        train.train_digits(out=str(tmp_path / "taken"), epochs=1)

