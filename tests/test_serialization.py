"""Checkpoints: exact round trips, atomic writes, and clear errors for bad files."""
import os
import zipfile

import numpy as np
import pytest

import minigrad as mg
from minigrad.serialization import CheckpointError


def _state():
    rng = np.random.default_rng(0)
    return {
        "0.weight": mg.Tensor(rng.standard_normal((4, 3)).astype(np.float32)),
        "1.running_var": rng.random(4),
        "1.num_batches_tracked": np.array(7, dtype=np.int64),
        "mask": np.array([True, False]),
    }


def test_round_trip_keeps_values_dtypes_shapes_and_order(tmp_path):
    path = tmp_path / "model.npz"
    state = _state()
    mg.save(state, path)
    loaded = mg.load(path)
    assert list(loaded) == list(state)
    for name, value in state.items():
        expected = np.asarray(value.data if isinstance(value, mg.Tensor) else value)
        assert loaded[name].dtype == expected.dtype
        assert loaded[name].shape == expected.shape
        np.testing.assert_array_equal(loaded[name], expected)
    assert loaded["1.num_batches_tracked"].shape == ()


def test_file_is_a_plain_npz_without_pickles(tmp_path):
    path = tmp_path / "model.npz"
    mg.save(_state(), path)
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == sorted(f"{name}.npy" for name in _state())
    with np.load(path, allow_pickle=False) as archive:
        assert archive["0.weight"].dtype == np.float32


def test_save_replaces_atomically_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "model.npz"
    mg.save({"a": np.zeros(2)}, path)
    mg.save({"b": np.ones(3)}, path)
    assert list(mg.load(path)) == ["b"]
    assert os.listdir(tmp_path) == ["model.npz"]


def test_failed_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    mg.save({"a": np.arange(3)}, path)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", crash)
    with pytest.raises(OSError, match="disk full"):
        mg.save({"a": np.zeros(3)}, path)
    np.testing.assert_array_equal(mg.load(path)["a"], np.arange(3))
    assert os.listdir(tmp_path) == ["model.npz"]


def test_unsaveable_values_are_refused_before_writing(tmp_path):
    path = tmp_path / "model.npz"
    with pytest.raises(TypeError, match="entry 'names' has dtype <U1"):
        mg.save({"w": np.ones(2), "names": np.array(["a", "b"])}, path)
    with pytest.raises(TypeError, match="entry 'obj' has dtype object"):
        mg.save({"obj": np.array([{}, None], dtype=object)}, path)
    with pytest.raises(TypeError, match="keys must be strings"):
        mg.save({3: np.ones(2)}, path)
    with pytest.raises(TypeError, match="state_dict must be a dict"):
        mg.save([np.ones(2)], path)
    assert not path.exists()


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere.npz"
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        mg.load(path)


@pytest.mark.parametrize("damage", ["truncate", "flip_bytes", "garbage", "empty"])
def test_damaged_file_gives_a_checkpoint_error_naming_it(tmp_path, damage):
    path = tmp_path / "model.npz"
    mg.save({"w": np.arange(1000.0)}, path)
    data = path.read_bytes()
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip_bytes":  # inside the stored array: only the CRC check can notice
        middle = len(data) // 2
        data = data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 16]) + \
            data[middle + 16:]
    elif damage == "garbage":
        data = b"this is not a checkpoint" * 10
    else:
        data = b""
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match="model.npz") as error:
        mg.load(path)
    assert isinstance(error.value, ValueError)


def test_pickles_are_refused(tmp_path):
    path = tmp_path / "model.npz"
    np.savez(path, w=np.array([{"code": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="model.npz"):
        mg.load(path)


def test_single_array_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.npy"
    np.save(path, np.ones(3))
    with pytest.raises(CheckpointError, match="single array"):
        mg.load(path)


# ----------------------------------------------------------------------------------------------
# With a model: the checkpoint round trip, and bad checkpoints leave the model as it was
# ----------------------------------------------------------------------------------------------

def _model(seed=0):
    from minigrad import nn
    nn.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6, bias=False), nn.BatchNorm1d(6), nn.ReLU(),
                         nn.Linear(6, 3)).to(np.float32)


def _train_a_little(model):
    x = mg.Tensor(np.random.default_rng(1).standard_normal((8, 4)), dtype=np.float32)
    model(x).sum().backward()
    for param in model.parameters():
        param.data -= 0.1 * param.grad.data


def test_model_round_trip_restores_every_parameter_and_buffer(tmp_path):
    path = tmp_path / "model.npz"
    model = _model(seed=0)
    _train_a_little(model)
    mg.save(model.state_dict(), path)
    fresh = _model(seed=1)
    fresh.load_state_dict(mg.load(path))
    for (name, got), want in zip(fresh.state_dict().items(), model.state_dict().values()):
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert int(fresh[1].num_batches_tracked.data) == 1
    x = mg.Tensor(np.ones((2, 4), np.float32))
    model.eval(), fresh.eval()
    np.testing.assert_array_equal(fresh(x).data, model(x).data)


def _assert_unchanged(model, before):
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_corrupted_checkpoint_leaves_the_model_untouched(tmp_path):
    path = tmp_path / "model.npz"
    trained = _model(seed=0)
    _train_a_little(trained)
    mg.save(trained.state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])  # cut off the archive's directory
    model = _model(seed=1)
    before = model.state_dict()
    with pytest.raises(CheckpointError, match="model.npz"):
        model.load_state_dict(mg.load(path))
    _assert_unchanged(model, before)


def test_mismatched_checkpoint_is_refused_before_anything_is_assigned(tmp_path):
    path = tmp_path / "other.npz"
    from minigrad import nn
    other = nn.Sequential(nn.Linear(4, 6, bias=False), nn.BatchNorm1d(6), nn.ReLU(),
                          nn.Linear(6, 5))  # a different head: 5 classes, not 3
    mg.save(other.state_dict(), path)
    model = _model()
    before = model.state_dict()
    with pytest.raises(RuntimeError, match=r"3\.weight: shape \(5, 6\)"):
        model.load_state_dict(mg.load(path))
    _assert_unchanged(model, before)
    state = mg.load(path)
    del state["1.running_var"]
    with pytest.raises(RuntimeError, match="missing keys: 1.running_var"):
        model.load_state_dict(state)
    _assert_unchanged(model, before)


def test_saved_checkpoint_has_ordinary_file_permissions(tmp_path):
    import os
    path = tmp_path / "model.npz"
    mg.save({"w": np.zeros(2)}, path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
