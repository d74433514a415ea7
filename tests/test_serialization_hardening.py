"""Bad input to checkpoints and module state: clear errors of PyTorch's classes, and nothing
lost -- the file on disk and the model stay exactly as they were after every failed save or
load."""
import io
import os
import pickle
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad import nn
from minigrad.serialization import DEFAULT_MAX_BYTES, CheckpointError


def _npy(array, version=None) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, version=version, allow_pickle=True)
    return buffer.getvalue()


def _zip(path, members, compression=zipfile.ZIP_STORED):
    """Write an archive of raw (name, bytes) members: what a hostile file can hold."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)


def _files(directory):
    return sorted(os.listdir(directory))


# ----------------------------------------------------------------------------------------------
# mg.save: every string key round-trips; bad entries are refused before anything is written
# ----------------------------------------------------------------------------------------------

# Names that np.savez(file, **arrays) swallowed or choked on, and other unusual ones.
AWKWARD_KEYS = ["allow_pickle", "file", "args", "kwds", "w", "", "a/b", "x.npy", "ünïcødé ✓",
                " spaced ", "0.weight", "a" * 300]


def test_every_awkward_key_round_trips_and_numpy_reads_the_file(tmp_path):
    path = tmp_path / "model.npz"
    state = {key: np.full(i + 1, float(i)) for i, key in enumerate(AWKWARD_KEYS)}
    mg.save(state, path)
    loaded = mg.load(path)
    assert list(loaded) == AWKWARD_KEYS
    for key in AWKWARD_KEYS:
        np.testing.assert_array_equal(loaded[key], state[key], err_msg=key)
    with np.load(path, allow_pickle=False) as archive:  # still a plain .npz
        np.testing.assert_array_equal(archive["allow_pickle"], state["allow_pickle"])
        np.testing.assert_array_equal(archive["file"], state["file"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=st.lists(st.text(st.characters(blacklist_categories=("Cs",),
                                           blacklist_characters="\x00"), max_size=12),
                     unique=True, max_size=5))
def test_any_string_key_round_trips(tmp_path, keys):
    path = tmp_path / "random.npz"
    state = {key: np.arange(i, dtype=np.int32) for i, key in enumerate(keys)}
    mg.save(state, path)
    loaded = mg.load(path)
    assert list(loaded) == keys
    for key in keys:
        assert loaded[key].dtype == np.int32
        np.testing.assert_array_equal(loaded[key], state[key])


def test_same_state_gives_the_same_bytes(tmp_path):
    mg.save({"w": np.arange(3.0)}, tmp_path / "a.npz")
    mg.save({"w": np.arange(3.0)}, tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


BAD_ENTRIES = [
    ({3: np.ones(2)}, TypeError, r"keys must be strings .*got 3"),
    ({None: np.ones(2)}, TypeError, r"keys must be strings .*got None"),
    ({("a", "b"): np.ones(2)}, TypeError, "keys must be strings"),
    ({b"w": np.ones(2)}, TypeError, r"keys must be strings .*got b'w'"),
    ({"a\x00b": np.ones(2)}, ValueError, "no NUL characters"),
    ({"\udc80": np.ones(2)}, ValueError, "encode as UTF-8"),
    ({"w": None}, TypeError, r"state_dict\['w'\] must be a Tensor, a NumPy array or a number, "
                             r"got None"),
    ({"w": "abc"}, TypeError, r"state_dict\['w'\] must be .* got 'abc'"),
    ({"w": [1.0, 2.0]}, TypeError, r"state_dict\['w'\] must be .* got \[1.0, 2.0\]"),
    ({"w": {"nested": 1}}, TypeError, r"state_dict\['w'\] must be .* got a dict"),
    ({"w": np.array([{}, None], dtype=object)}, TypeError, "entry 'w' has dtype object"),
    ({"w": np.array(["a", "b"])}, TypeError, "entry 'w' has dtype <U1"),
    ({"w": np.array(["2020-01-01"], dtype="datetime64[D]")}, TypeError, "datetime64"),
    ({"w": np.zeros(2, dtype=[("x", "f8")])}, TypeError, "entry 'w' has dtype"),
    ({"w": 2 ** 70}, TypeError, "entry 'w' has dtype object"),
    ({"ok": np.ones(2), "w": None}, TypeError, r"state_dict\['w'\]"),  # bad entry comes last
]


@pytest.mark.parametrize("state, error, message", BAD_ENTRIES)
def test_bad_entries_are_refused_before_writing_and_the_old_file_stays(tmp_path, state, error,
                                                                        message):
    path = tmp_path / "model.npz"
    mg.save({"old": np.arange(4.0)}, path)
    before = path.read_bytes()
    with pytest.raises(error, match=message):
        mg.save(state, path)
    assert path.read_bytes() == before
    assert _files(tmp_path) == ["model.npz"]  # no temporary left behind
    with pytest.raises(error, match=message):
        mg.save(state, tmp_path / "new.npz")
    assert not (tmp_path / "new.npz").exists()


@pytest.mark.parametrize("state, message", [
    (None, "state_dict must be a dict"), ([np.ones(2)], "state_dict must be a dict"),
    ("weights", "state_dict must be a dict"), (np.ones(3), "state_dict must be a dict"),
])
def test_save_of_something_that_is_not_a_state_dict(tmp_path, state, message):
    with pytest.raises(TypeError, match=message):
        mg.save(state, tmp_path / "model.npz")
    assert _files(tmp_path) == []


def test_save_bad_paths(tmp_path):
    with pytest.raises(TypeError, match="mg.save: path must be a file path"):
        mg.save({"w": np.ones(1)}, 3)
    with pytest.raises(TypeError, match="mg.save: path must be a file path"):
        mg.save({"w": np.ones(1)}, None)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mg.save({"w": np.ones(1)}, tmp_path / "no" / "such" / "model.npz")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        mg.save({"w": np.ones(1)}, tmp_path)
    assert _files(tmp_path) == []


@pytest.mark.parametrize("interruption", [OSError("disk full"), KeyboardInterrupt()])
def test_a_save_interrupted_after_some_members_keeps_the_old_checkpoint(tmp_path, monkeypatch,
                                                                        interruption):
    path = tmp_path / "model.npz"
    mg.save({"a": np.arange(3)}, path)
    before = path.read_bytes()
    write_array = np.lib.format.write_array
    calls = []

    def fail_on_the_second_member(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise interruption
        return write_array(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", fail_on_the_second_member)
    with pytest.raises(type(interruption)):
        mg.save({"a": np.zeros(3), "b": np.ones(5)}, path)
    assert len(calls) == 2
    assert path.read_bytes() == before
    assert _files(tmp_path) == ["model.npz"]


# ----------------------------------------------------------------------------------------------
# mg.load: declared sizes are checked against max_bytes before reading; nothing is unpickled
# ----------------------------------------------------------------------------------------------

def _huge_header_file(path, shape=(10 ** 12,)):
    """A member whose .npy header declares ``shape`` float64 but holds 8 bytes of data."""
    header = _npy(np.zeros(1))[:-8]
    text = header.decode("latin1").replace("(1,)", repr(shape))
    header = text.encode("latin1")
    _zip(path, [("w.npy", header + b"\0" * 8)])


def test_a_header_declaring_a_trillion_elements_is_refused_by_the_default_limit(tmp_path):
    assert DEFAULT_MAX_BYTES == 2 ** 30
    path = tmp_path / "huge.npz"
    _huge_header_file(path)
    with pytest.raises(CheckpointError) as error:
        mg.load(path)
    message = str(error.value)
    assert isinstance(error.value, ValueError)
    for part in ("huge.npz", "entry 'w'", "(1000000000000,)", "8000000000000 bytes",
                 "max_bytes=1073741824", "(1 GiB)", "mg.load(path, max_bytes="):
        assert part in message, part


def test_a_header_declaring_more_than_the_member_holds_is_refused_even_with_a_high_limit(tmp_path):
    path = tmp_path / "huge.npz"
    _huge_header_file(path)
    with pytest.raises(CheckpointError, match=r"entry 'w' declares .*\(8000000000000 bytes\) but holds \d+ bytes"):
        mg.load(path, max_bytes=10 ** 14)  # no MemoryError: nothing is allocated


def test_a_zip_bomb_is_refused_before_it_is_decompressed(tmp_path, monkeypatch):
    path = tmp_path / "bomb.npz"
    data = _npy(np.zeros(8 * 2 ** 20))  # 64 MiB of zeros, about 64 KiB deflated
    _zip(path, [("w.npy", data)], zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 2 ** 20
    opened = []
    monkeypatch.setattr(zipfile.ZipFile, "open",
                        lambda self, *a, **k: opened.append(a) or pytest.fail("member read"))
    with pytest.raises(CheckpointError) as error:
        mg.load(path, max_bytes=2 ** 20)
    message = str(error.value)
    assert "entry 'w' declares an uncompressed size of" in message
    assert "max_bytes=1048576 (1 MiB)" in message and "mg.load(path, max_bytes=" in message
    assert opened == []


def test_the_limit_counts_all_entries_together_and_can_be_raised(tmp_path):
    path = tmp_path / "model.npz"
    mg.save({"a": np.zeros(100), "b": np.zeros(100)}, path)  # 800 bytes each
    assert list(mg.load(path, max_bytes=1600)) == ["a", "b"]
    with pytest.raises(CheckpointError, match=r"entry 'b' declares .* of 800 bytes after 800 "
                                              r"bytes of earlier entries.*max_bytes=1599"):
        mg.load(path, max_bytes=1599)
    with pytest.raises(CheckpointError, match="entry 'a'"):
        mg.load(path, max_bytes=799)


@pytest.mark.parametrize("max_bytes, error", [
    (0, ValueError), (-1, ValueError), (1.5, TypeError), ("1", TypeError), (True, TypeError),
    (None, TypeError), (float("inf"), TypeError),
])
def test_bad_max_bytes(tmp_path, max_bytes, error):
    path = tmp_path / "model.npz"
    mg.save({"w": np.ones(2)}, path)
    with pytest.raises(error, match="mg.load: max_bytes must be a positive integer"):
        mg.load(path, max_bytes=max_bytes)


def test_load_bad_paths(tmp_path):
    with pytest.raises(TypeError, match="mg.load: path must be a file path"):
        mg.load(3.5)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        mg.load(tmp_path)  # a directory


HOSTILE = {
    "object array (a pickle)": ([("w.npy", _npy(np.array([{"code": 1}], dtype=object)))],
                                "object arrays, which need pickle, are never loaded"),
    "strings": ([("w.npy", _npy(np.array(["a"])))], "entry 'w' has dtype <U1"),
    "not an .npy member": ([("w.npy", _npy(np.ones(2))), ("notes.txt", b"hi")],
                           "member 'notes.txt' is not an .npy array"),
    "a directory entry": ([("d/", b"")], "member 'd/' is not an .npy array"),
    "garbage member": ([("w.npy", b"not an array at all")], "not a readable checkpoint"),
    "npy version 3": ([("w.npy", _npy(np.ones(2), version=(3, 0)))], "version 3.0"),
    "shorter than declared": ([("w.npy", _npy(np.ones(4))[:-16])],
                              r"declares .* \(32 bytes\) but holds 16 bytes"),
    "longer than declared": ([("w.npy", _npy(np.ones(4)) + b"\0" * 8)],
                             r"declares .* \(32 bytes\) but holds 40 bytes"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_give_a_checkpoint_error_and_never_unpickle(tmp_path, monkeypatch, case):
    members, message = HOSTILE[case]
    path = tmp_path / "hostile.npz"
    _zip(path, members)
    before = path.read_bytes()

    def no_pickles(*args, **kwargs):
        pytest.fail("load unpickled something")

    monkeypatch.setattr(pickle, "load", no_pickles)
    monkeypatch.setattr(pickle, "loads", no_pickles)
    with pytest.raises(CheckpointError, match=message):
        mg.load(path)
    assert path.read_bytes() == before  # loading never writes


def test_duplicate_members_are_refused(tmp_path):
    path = tmp_path / "twice.npz"
    with pytest.warns(UserWarning, match="Duplicate name"):
        _zip(path, [("w.npy", _npy(np.ones(2))), ("w.npy", _npy(np.zeros(2)))])
    with pytest.raises(CheckpointError, match="entry 'w' appears twice"):
        mg.load(path)


def test_a_stream_shorter_than_its_zip_entry_declares_is_a_checkpoint_error(tmp_path):
    """The central directory claims more bytes than the deflate stream gives: the chunked read
    notices the early end (or the CRC does) instead of returning zeros."""
    path = tmp_path / "lying.npz"
    mg.save({"w": np.arange(64.0)}, path)
    data = bytearray(path.read_bytes())
    # Corrupt the stored data of the member in place: the CRC check must catch it.
    start = data.index(b"\x93NUMPY") + 128
    data[start:start + 64] = bytes(64)
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="lying.npz"):
        mg.load(path)


# ----------------------------------------------------------------------------------------------
# load_state_dict: PyTorch's exception classes, and a failed load changes nothing
# ----------------------------------------------------------------------------------------------

def _model():
    return nn.Sequential(nn.Linear(3, 4, rng=0), nn.BatchNorm1d(4), nn.ReLU(),
                         nn.Linear(4, 2, rng=1)).to(np.float32)


def _snapshot(model):
    """Everything a load could change: each tensor object, its array object, dtype and values."""
    return {name: (tensor, tensor.data, tensor.dtype, np.array(tensor.data))
            for name, tensor in model.state_dict(keep_vars=True).items()}


def _assert_unchanged(model, before):
    after = _snapshot(model)
    assert list(after) == list(before)
    for name, (tensor, data, dtype, values) in before.items():
        now = after[name]
        assert now[0] is tensor and now[1] is data and now[2] == dtype, name
        np.testing.assert_array_equal(now[3], values, err_msg=name)


@pytest.mark.parametrize("state, error, message", [
    (None, TypeError, "state_dict must be dict-like .*got None"),
    ([("0.weight", np.zeros((4, 3)))], TypeError, "state_dict must be dict-like"),
    ("model.npz", TypeError, "state_dict must be dict-like .*got 'model.npz'"),
    (3, TypeError, "state_dict must be dict-like"),
    (np.zeros(3), TypeError, "state_dict must be dict-like .*got ndarray of shape"),
    ({1: np.zeros(3)}, TypeError, "state_dict keys must be strings .*got 1"),
    ({("0", "weight"): np.zeros(3)}, TypeError, "state_dict keys must be strings"),
    ({None: np.zeros(3)}, TypeError, "state_dict keys must be strings .*got None"),
])
def test_load_state_dict_of_something_that_is_not_a_state_dict(state, error, message):
    model = _model()
    before = _snapshot(model)
    with pytest.raises(error, match="Sequential.load_state_dict: " + message):
        model.load_state_dict(state)
    _assert_unchanged(model, before)


def _good_state():
    return {name: value + 1 for name, value in _model().state_dict().items()}


BAD_VALUES = [
    ("0.weight", None, "while copying '0.weight': expected a Tensor or an array of numbers"
                       " from the state dict, got None"),
    ("0.weight", "abc", "while copying '0.weight'.*got 'abc'"),
    ("0.bias", [[1.0], [1.0, 2.0]], "while copying '0.bias'.*got"),
    ("0.bias", np.array([None] * 4), "while copying '0.bias'.*got ndarray of shape"),
    ("0.bias", np.array(["1", "2", "3", "4"]), "while copying '0.bias'"),
    ("0.bias", {"a": 1}, "while copying '0.bias'.*got a dict"),
    ("0.weight", np.zeros((3, 4)), r"size mismatch for 0.weight: shape \(3, 4\) in the state "
                                   r"dict, \(4, 3\) in the model"),
    ("0.bias", np.float32(1), r"size mismatch for 0.bias: shape \(\)"),
    ("0.bias", np.array([True, False, True, False]), "dtype mismatch for 0.bias: dtype bool"),
    ("0.bias", np.zeros(4, np.complex64), "dtype mismatch for 0.bias: dtype complex64"),
    ("1.num_batches_tracked", np.array(1.5), "dtype mismatch for 1.num_batches_tracked: dtype "
                                             "float64 in the state dict, int64 in the model"),
    ("1.num_batches_tracked", np.array(2 ** 63, dtype=np.uint64),
     "1.num_batches_tracked: values from .* do not fit the model's int64"),
    ("1.running_var", np.full(4, 1e300), "1.running_var: values beyond the range of the "
                                         "model's float32"),
]


@pytest.mark.parametrize("name, value, message", BAD_VALUES)
def test_bad_values_are_a_runtime_error_and_nothing_is_loaded(name, value, message):
    model = _model()
    state = _good_state()  # every other entry would load
    state[name] = value
    before = _snapshot(model)
    with pytest.raises(RuntimeError, match="Error\\(s\\) in loading state_dict for Sequential "
                                           "\\(nothing was loaded\\):\n  " + message):
        model.load_state_dict(state)
    _assert_unchanged(model, before)


def test_bad_strict_is_refused_before_anything_is_loaded():
    model = _model()
    before = _snapshot(model)
    with pytest.raises(TypeError, match="load_state_dict: strict must be True or False"):
        model.load_state_dict(_good_state(), strict="yes")
    _assert_unchanged(model, before)


def test_infinities_and_nans_in_the_state_dict_load_as_they_are():
    """Only finite values that would overflow are refused; inf and NaN are data."""
    model = nn.Linear(2, 1, rng=0)
    model.load_state_dict({"weight": np.array([[np.inf, np.nan]]), "bias": np.array([-np.inf])})
    assert np.isposinf(model.weight.data[0, 0]) and np.isnan(model.weight.data[0, 1])


def test_a_checkpoint_over_the_limit_leaves_the_model_untouched(tmp_path):
    path = tmp_path / "model.npz"
    mg.save(_good_state(), path)
    model = _model()
    before = _snapshot(model)
    with pytest.raises(CheckpointError, match="max_bytes=64"):
        model.load_state_dict(mg.load(path, max_bytes=64))
    _assert_unchanged(model, before)
    model.load_state_dict(mg.load(path))  # with the default limit it loads
    np.testing.assert_array_equal(model[0].bias.data, _good_state()["0.bias"])


def test_load_state_dict_errors_have_pytorch_classes():
    torch = pytest.importorskip("torch")
    linear = torch.nn.Linear(2, 3)
    ours = nn.Linear(2, 3)
    for bad in (None, [1], "abc"):
        with pytest.raises(TypeError) as theirs:
            linear.load_state_dict(bad)
        with pytest.raises(type(theirs.value)):
            ours.load_state_dict(bad)
    for state in ({"weight": torch.zeros(2, 2), "bias": torch.zeros(3)},
                  {"weight": None, "bias": torch.zeros(3)}):
        with pytest.raises(RuntimeError, match="Error\\(s\\) in loading state_dict for Linear"):
            linear.load_state_dict(state)
        mine = {k: (None if v is None else v.numpy()) for k, v in state.items()}
        with pytest.raises(RuntimeError, match="Error\\(s\\) in loading state_dict for Linear"):
            ours.load_state_dict(mine)


# Anything a user (or a damaged checkpoint) could hand to load_state_dict.
_KEYS = ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
         "1.num_batches_tracked", "3.weight", "3.bias"]
_values = st.one_of(
    st.none(), st.text(max_size=3), st.integers(-2 ** 70, 2 ** 70), st.floats(),
    st.lists(st.floats(allow_nan=False), max_size=4),
    st.lists(st.lists(st.integers(0, 3), max_size=3), max_size=3),  # ragged, often
    st.sampled_from([np.zeros((4, 3)), np.zeros((4, 3), np.float32), np.zeros(4), np.zeros(2),
                     np.zeros((2, 4)), np.array(0), np.array(3, np.int64), np.array(1.5),
                     np.array([None]), np.array(["x"]), np.ones(4, bool), np.full(4, 1e39),
                     np.zeros(4, np.complex128), mg.Tensor(np.ones(4)), {"a": 1}, object()]),
)
# Mostly a good state dict with a few entries dropped or replaced (so that most checks pass
# and one fails, or all pass), else any dict at all. Non-dicts are tested above.
_near_good = st.builds(
    lambda missing, changes, extra: {**{k: v for k, v in _good_state().items()
                                        if k not in missing}, **changes, **extra},
    st.sets(st.sampled_from(_KEYS), max_size=2),
    st.dictionaries(st.sampled_from(_KEYS), _values, max_size=2),
    st.dictionaries(st.one_of(st.text(max_size=4), st.integers(), st.none()), _values,
                    max_size=1))
_state_dicts = st.one_of(
    _near_good, _near_good, _near_good,
    st.dictionaries(st.one_of(st.sampled_from(_KEYS), st.text(max_size=4)), _values,
                    max_size=10),
)


@settings(max_examples=150, deadline=None)
@given(state=_state_dicts, strict=st.booleans())
def test_random_bad_state_dicts_raise_only_the_clear_errors_and_change_nothing(state, strict):
    model = _model()
    before = _snapshot(model)
    try:
        result = model.load_state_dict(state, strict=strict)
    except RuntimeError as error:
        assert str(error).startswith("Error(s) in loading state_dict for Sequential (nothing "
                                     "was loaded):\n  ")
        _assert_unchanged(model, before)
    except TypeError as error:
        assert str(error).startswith("Sequential.load_state_dict: state_dict ")
        _assert_unchanged(model, before)
    else:  # a load that succeeds loaded exactly what was given, in the model's dtypes
        for name, (tensor, _, dtype, _) in before.items():
            assert model.state_dict(keep_vars=True)[name] is tensor
            assert tensor.dtype == dtype
            if name in state:
                given_value = state[name].data if isinstance(state[name], mg.Tensor) \
                    else state[name]
                np.testing.assert_array_equal(tensor.data, np.asarray(given_value, dtype))
        assert set(result.missing_keys) == set(_KEYS) - set(state)


# ----------------------------------------------------------------------------------------------
# module.to, Parameter, and the other public methods of Module
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.int64, np.int32, bool, np.bool_, "banana", None,
                                   np.complex128, "int8", object, 3])
def test_to_a_dtype_that_is_not_floating_is_a_clear_type_error(dtype):
    model = _model()
    before = _snapshot(model)
    with pytest.raises(TypeError, match=r"Sequential.to: dtype must be a floating-point dtype "
                                        r"\(np.float32 or np.float64\), got"):
        model.to(dtype)
    _assert_unchanged(model, before)


def test_to_rejects_integer_dtypes_like_pytorch():
    torch = pytest.importorskip("torch")
    for theirs, ours in ((torch.int64, np.int64), (torch.bool, bool)):
        with pytest.raises(TypeError):
            torch.nn.Linear(2, 2).to(theirs)
        with pytest.raises(TypeError):
            nn.Linear(2, 2).to(ours)


@pytest.mark.parametrize("data", [None, "abc", ["a", "b"], [1, "a"], [[1.0], [1.0, 2.0]],
                                  object(), np.array([None]), np.array(["1.5"]), b"12",
                                  {"w": 1}])
def test_parameter_of_something_that_is_not_numbers(data):
    with pytest.raises(TypeError, match=r"Parameter: data must be numbers \(an array, a Tensor, "
                                        r"a list or a number\), got"):
        nn.Parameter(data)


def test_parameter_of_none_is_an_error_not_nan():
    with pytest.raises(TypeError, match="Parameter: data must be numbers .*got None"):
        nn.Parameter(None)
    with pytest.raises(TypeError, match="got None"):
        nn.Parameter(None, dtype=np.float32)


def test_parameter_dtypes_and_flags():
    # Integers given without a dtype become the default floating dtype (documented), complex
    # stays complex; an explicit integer dtype cannot require grad, as for a Tensor.
    assert nn.Parameter(np.arange(3)).dtype == mg.get_default_dtype()
    assert nn.Parameter(np.ones(2, np.complex64)).dtype == np.complex64
    with pytest.raises(RuntimeError, match="only floating-point tensors can require grad"):
        nn.Parameter([1.0, 2.0], dtype=np.int64)
    with pytest.raises(RuntimeError, match="only floating-point tensors can require grad"):
        mg.Tensor([1, 2], requires_grad=True)  # the same rule, the same class
    assert nn.Parameter([1, 2], requires_grad=False, dtype=np.int64).dtype == np.int64
    with pytest.raises(TypeError, match="Parameter: dtype must be a numeric dtype"):
        nn.Parameter([1.0], dtype="banana")
    with pytest.raises(TypeError, match="Parameter: requires_grad must be True or False, "
                                        "got 'yes'"):
        nn.Parameter([1.0], requires_grad="yes")


def test_parameter_of_an_integer_tensor_is_a_runtime_error_in_pytorch_too():
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError):
        torch.nn.Parameter(torch.arange(3))
    with pytest.raises(RuntimeError):
        nn.Parameter(np.arange(3), dtype=np.int64)


class _Empty(nn.Module):
    def forward(self, x):
        return x


def _registry(module):
    return ([n for n, _ in module.named_parameters()], [n for n, _ in module.named_buffers()],
            [n for n, _ in module.named_children()], dict(vars(module)))


REGISTRATIONS = {
    "register_buffer": lambda m, name: m.register_buffer(name, mg.Tensor(np.zeros(2))),
    "register_parameter": lambda m, name: m.register_parameter(name, nn.Parameter([1.0])),
    "add_module": lambda m, name: m.add_module(name, nn.ReLU()),
}
_WHAT = {"register_buffer": "buffer", "register_parameter": "parameter", "add_module": "module"}


@pytest.mark.parametrize("method", sorted(REGISTRATIONS))
@pytest.mark.parametrize("name, error, message", [
    (3, TypeError, "name must be a string, got 3"),
    (None, TypeError, "name must be a string, got None"),
    (b"w", TypeError, "name must be a string"),
    ("", KeyError, "name must be a non-empty string"),
    ("a.b", KeyError, 'name must be a name without "."'),
    ("training", KeyError, "name must be a name not already used by another attribute, got "
                           "'training'"),
    ("forward", KeyError, "name must be a name not already used by another attribute"),
    ("weight", KeyError, "name must be a name not already used"),  # the Linear's parameter, for the other two
])
def test_registering_under_a_bad_name_changes_nothing(method, name, error, message):
    module = nn.Linear(2, 2) if name == "weight" else _Empty()
    if name == "weight" and method == "register_parameter":
        pytest.skip("re-registering a parameter under its own name is allowed")
    before = _registry(module)
    with pytest.raises(error, match=f"{type(module).__name__}.{method}: {_WHAT[method]} "
                                    f"{message}"):
        REGISTRATIONS[method](module, name)
    assert _registry(module) == before


def test_registration_name_errors_have_pytorch_classes():
    torch = pytest.importorskip("torch")
    for name in (3, "", "a.b", "training"):
        with pytest.raises((TypeError, KeyError)) as theirs:
            torch.nn.Module().register_buffer(name, None)
        with pytest.raises(type(theirs.value)):
            _Empty().register_buffer(name, None)


@pytest.mark.parametrize("method, value, message", [
    ("register_buffer", np.zeros(2), "buffer 'b' must be a Tensor that does not require grad, "
                                     "or None, got ndarray of shape"),
    ("register_buffer", nn.Parameter([1.0]), "buffer 'b' must be a Tensor that does not "
                                             "require grad"),
    ("register_buffer", 3.0, "buffer 'b' must be a Tensor"),
    ("register_parameter", mg.Tensor(np.zeros(2)), "parameter 'b' must be an nn.Parameter or "
                                                   "None, got Tensor of shape"),
    ("register_parameter", [1.0], "parameter 'b' must be an nn.Parameter"),
    ("add_module", 3, "module 'b' must be an nn.Module or None, got 3"),
    ("add_module", lambda x: x, "module 'b' must be an nn.Module"),
])
def test_registering_a_value_of_the_wrong_kind_changes_nothing(method, value, message):
    module = _Empty()
    before = _registry(module)
    with pytest.raises(TypeError, match=f"_Empty.{method}: {message}"):
        getattr(module, method)("b", value)
    assert _registry(module) == before


def test_add_module_registers_like_an_attribute():
    module = _Empty()
    module.add_module("head", nn.Linear(2, 2))
    module.add_module("spare", None)
    assert [n for n, _ in module.named_parameters()] == ["head.weight", "head.bias"]
    assert [n for n, _ in module.named_children()] == ["head"]


def test_setattr_of_a_member_under_a_dotted_or_empty_name():
    module = _Empty()
    before = _registry(module)
    with pytest.raises(KeyError, match='_Empty: parameter name must be a name without "."'):
        setattr(module, "a.b", nn.Parameter([1.0]))
    with pytest.raises(KeyError, match="_Empty: module name must be a non-empty string"):
        setattr(module, "", nn.ReLU())
    assert _registry(module) == before
    module.note = "plain attributes are not members"
    setattr(module, "odd.name", 3)  # a plain attribute: Python's rules, as in PyTorch
    assert list(module.named_parameters()) == []


def test_registering_before_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.register_buffer("count", mg.Tensor(np.zeros(1)))

    with pytest.raises(AttributeError, match=r"Broken: call super\(\)\.__init__\(\)"):
        Broken()


@pytest.mark.parametrize("mode", ["yes", 1, 0, None, "False", np.array([True])])
def test_train_with_a_mode_that_is_not_a_bool(mode):
    model = _model().eval()
    with pytest.raises(ValueError, match=r"Sequential.train: mode must be True or False"):
        model.train(mode)
    assert not any(m.training for m in model.modules())  # unchanged


def test_train_mode_errors_have_pytorch_class():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError):
        torch.nn.Linear(2, 2).train("yes")
    with pytest.raises(ValueError):
        nn.Linear(2, 2).train("yes")


def test_zero_grad_set_to_none():
    model = nn.Linear(2, 1, rng=0)
    model(mg.Tensor(np.ones((3, 2)))).sum().backward()
    grads = [p.grad for p in model.parameters()]
    with pytest.raises(TypeError, match="Linear.zero_grad: set_to_none must be True or False, "
                                        "got 'x'"):
        model.zero_grad(set_to_none="x")
    assert [p.grad for p in model.parameters()] == grads  # unchanged
    model.zero_grad(set_to_none=False)
    for param in model.parameters():
        assert param.grad.dtype == param.dtype
        np.testing.assert_array_equal(param.grad.data, np.zeros_like(param.data))
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("call, message", [
    (lambda m: m.named_parameters(prefix=3), "Sequential.named_parameters: prefix must be a "
                                             "string, got 3"),
    (lambda m: m.named_parameters(recurse="x"), "Sequential.named_parameters: recurse must be "
                                                "True or False"),
    (lambda m: m.named_buffers(prefix=None), "Sequential.named_buffers: prefix must be a string"),
    (lambda m: m.parameters(recurse=1), "Sequential.parameters: recurse must be True or False"),
    (lambda m: m.buffers(recurse="no"), "Sequential.buffers: recurse must be True or False"),
    (lambda m: m.named_modules(prefix=3), "Sequential.named_modules: prefix must be a string"),
    (lambda m: m.state_dict(prefix=3), "Sequential.state_dict: prefix must be a string"),
    (lambda m: m.state_dict(keep_vars="x"), "Sequential.state_dict: keep_vars must be True or "
                                            "False"),
    (lambda m: m["a"], "Sequential: index must be an integer, got 'a'"),
    (lambda m: m[1.0], "Sequential: index must be an integer"),
])
def test_traversal_arguments_are_checked_when_called(call, message):
    model = _model()
    with pytest.raises(TypeError, match=message):
        call(model)  # not deferred to the first next() of a generator


def test_named_parameters_prefix_error_has_pytorch_class():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError):
        list(torch.nn.Linear(2, 2).named_parameters(prefix=3))
    with pytest.raises(TypeError):
        nn.Linear(2, 2).named_parameters(prefix=3)


def test_state_dict_prefix_and_keep_vars():
    model = nn.Linear(2, 1, rng=0)
    state = model.state_dict(prefix="head.")
    assert list(state) == ["head.weight", "head.bias"]
    assert all(type(v) is np.ndarray for v in state.values())
    kept = model.state_dict(keep_vars=True)
    assert kept["weight"] is model.weight and kept["bias"] is model.bias
    assert [n for n, _ in model.named_parameters(prefix="m")] == ["m.weight", "m.bias"]
