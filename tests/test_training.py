"""The training helpers and the ``minigrad train`` command, on short real runs."""
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.app.cli import main
from minigrad.data import DataLoader, load_digits
from minigrad.training import build_model, eval_loader, evaluate, fit, make_optimizer, train_step

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "train_digits.py"


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.mark.parametrize("kind, input_shape", [("mlp", (64,)), ("cnn", (1, 8, 8))])
@pytest.mark.parametrize("norm", ["batch", "layer", "group", "none"])
def test_models_map_a_batch_to_class_scores(kind, input_shape, norm):
    model = build_model(kind, input_shape=input_shape, norm=norm, hidden=32)
    out = model(mg.Tensor(np.random.default_rng(0).standard_normal((5,) + input_shape),
                          dtype=np.float32))
    assert out.shape == (5, 10) and out.dtype == np.float32
    norms = [m for m in model.modules()
             if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm))]
    assert len(norms) == (0 if norm == "none" else 2)
    # BatchNorm's shift replaces the bias of the layer before it; other norms keep it.
    biases = [m.bias is not None for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert biases == [norm != "batch"] * 2 + [True]


def test_fused_flag_reaches_the_batch_norm_layers():
    for fused in (False, True):
        model = build_model("mlp", fused=fused)
        assert all(m.fused == fused for m in model.modules() if isinstance(m, nn.BatchNorm1d))


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="rnn"), "kind must be one of 'mlp', 'cnn', 'cnn-pool', got 'rnn'"),
    (dict(norm="instance"), "norm must be one of"),
    (dict(kind="mlp", input_shape=(1, 8, 8)), r"MLP takes flat inputs .* \(1, 8, 8\)"),
    (dict(kind="cnn", input_shape=(64,)), r"CNN takes images .* \(64,\)"),
])
def test_bad_model_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_model(**kwargs)


def test_train_step_lowers_the_loss_on_its_batch(digits):
    nn.manual_seed(0)
    model = build_model("mlp")
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    features, labels = next(iter(DataLoader((digits.x_train, digits.y_train), batch_size=64,
                                            dtype=np.float32)))
    losses = [train_step(model, optimizer, features, labels)[0] for _ in range(5)]
    assert losses[-1] < 0.5 * losses[0]
    assert train_step(model, optimizer, features, labels)[1] > 48  # of 64, after 5 steps


def test_evaluate_changes_nothing(digits):
    model = build_model("mlp")
    before = model.state_dict()
    loss, accuracy = evaluate(model, eval_loader(digits, np.float32))
    assert not model.training
    assert 0 <= accuracy <= 1 and loss > 0
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    assert all(p.grad is None for p in model.parameters())


def test_fit_learns_digits_in_two_epochs(digits):
    nn.manual_seed(0)
    model = build_model("mlp")
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = optim.StepLR(optimizer, step_size=1, gamma=0.5)
    logged = []
    history = fit(model, digits, optimizer, epochs=2, batch_size=64, scheduler=scheduler,
                  progress=False, log=logged.append)
    assert logged == history and [r.epoch for r in history] == [1, 2]
    assert optimizer.lr == pytest.approx(0.025)
    assert history[-1].test_accuracy > 0.9
    assert history[-1].train_loss < history[0].train_loss
    # The records agree with an independent evaluation of the trained model.
    loss, accuracy = evaluate(model, eval_loader(digits, np.float32))
    assert accuracy == history[-1].test_accuracy and loss == pytest.approx(history[-1].test_loss)


def test_fit_is_reproducible(digits):
    def run():
        nn.manual_seed(3)
        model = build_model("mlp", hidden=32)
        fit(model, digits, optim.SGD(model.parameters(), lr=0.05), epochs=1, seed=5,
            progress=False)
        return model.state_dict()
    first, second = run(), run()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])


@pytest.mark.parametrize("model_kind", ["mlp", "cnn"])
def test_train_command_saves_a_checkpoint_that_reloads(tmp_path, capsys, model_kind):
    code = main(["train", "--model", model_kind, "--epochs", "1", "--out", str(tmp_path),
                 "--fused", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    path = tmp_path / f"digits_{model_kind}_batch.npz"
    state = mg.load(path)
    model = build_model(model_kind, input_shape=(64,) if model_kind == "mlp" else (1, 8, 8))
    assert list(state) == list(model.state_dict())
    assert state["1.num_batches_tracked"].dtype == np.int64
    assert int(state["1.num_batches_tracked"]) == 1348 // 64  # one epoch, last batch dropped
    lines = out.splitlines()
    trained = next(line for line in lines if line.startswith("trained"))
    reloaded = next(line for line in lines if line.startswith("checkpoint"))
    # The reloaded model scores exactly what the trained one did.
    assert trained.split("test accuracy ")[1] == reloaded.split("test accuracy ")[1]
    accuracy = float(trained.split("test accuracy ")[1].split("%")[0])
    assert accuracy > 80


def test_train_command_rejects_bad_settings(tmp_path):
    with pytest.raises(SystemExit, match="--epochs: must be a positive integer, got 0"):
        main(["train", "--epochs", "0", "--out", str(tmp_path)])


def test_make_optimizer():
    params = [mg.Tensor(np.ones(2), requires_grad=True)]
    adam = make_optimizer("adam", params)
    assert isinstance(adam, optim.Adam) and adam.lr == 3e-3
    sgd = make_optimizer("sgd", params, lr=0.5)
    assert isinstance(sgd, optim.SGD) and sgd.lr == 0.5 and sgd.nesterov
    with pytest.raises(ValueError, match="expected one of"):
        make_optimizer("lbfgs", params)


def test_train_command_with_sgd_and_layer_norm(tmp_path, capsys):
    code = main(["train", "--optimizer", "sgd", "--norm", "layer", "--epochs", "1",
                 "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    assert (tmp_path / "digits_mlp_layer.npz").exists()
    assert "LayerNorm" in capsys.readouterr().out


@pytest.mark.slow
def test_example_reaches_97_percent_and_reloads(tmp_path):
    """The full example: 10 epochs of the BatchNorm MLP, then the reloaded checkpoint."""
    result = subprocess.run([sys.executable, str(EXAMPLE)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    reloaded = re.search(r"test accuracy ([\d.]+)% \(trained model: ([\d.]+)%\)", result.stdout)
    assert reloaded and reloaded.group(1) == reloaded.group(2), result.stdout
    assert float(reloaded.group(1)) >= 97.0
    assert (tmp_path / "out" / "train_digits.npz").exists()
