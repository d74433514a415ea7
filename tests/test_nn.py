"""Module machinery (registration, traversal, modes, state dicts, dtype, repr, scope) and the
plain layers (Linear, Conv2d, activations, Dropout, Flatten, Sequential)."""
import copy

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad import nn


def mlp(dtype=None):
    return nn.Sequential(nn.Linear(4, 6, dtype=dtype, rng=0), nn.BatchNorm1d(6, dtype=dtype),
                         nn.ReLU(), nn.Linear(6, 3, dtype=dtype, rng=1))


class Block(nn.Module):
    """A user-defined module: a parameter, a buffer, a submodule and a plain attribute."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter([1.0, 2.0])
        self.register_buffer("count", mg.Tensor(np.zeros(2)))
        self.inner = nn.Linear(2, 2, rng=0)
        self.note = "not registered"

    def forward(self, x):
        return self.inner(x * self.scale)


# -- Parameter ----------------------------------------------------------------------------------

def test_parameter_requires_grad_and_takes_the_default_dtype():
    p = nn.Parameter([1, 2, 3])
    assert isinstance(p, mg.Tensor) and p.requires_grad and p.is_leaf
    assert p.dtype == mg.get_default_dtype()
    assert nn.Parameter(np.zeros(2, dtype=np.float32)).dtype == np.float32
    assert repr(p).startswith("Parameter containing:\ntensor(")


def test_parameter_in_expressions_broadcasts_and_gets_gradients():
    bias = nn.Parameter(np.array([1.0, -1.0]))
    x = mg.tensor(np.ones((3, 2)), requires_grad=True)
    (x + bias).sum().backward()
    np.testing.assert_array_equal(bias.grad.data, [3.0, 3.0])


# -- registration and traversal -----------------------------------------------------------------

def test_attributes_register_parameters_buffers_and_children():
    block = Block()
    assert [n for n, _ in block.named_parameters()] == ["scale", "inner.weight", "inner.bias"]
    assert [n for n, _ in block.named_buffers()] == ["count"]
    assert [n for n, _ in block.named_children()] == ["inner"]
    assert [n for n, _ in block.named_modules()] == ["", "inner"]
    assert list(block.parameters(recurse=False)) == [block.scale]
    assert list(block.children()) == [block.inner]


def test_reassigning_and_deleting_keeps_the_registry_right():
    block = Block()
    block.inner = "a string now"
    assert [n for n, _ in block.named_parameters()] == ["scale"]
    del block.scale
    assert list(block.named_parameters()) == []
    with pytest.raises(TypeError, match="count"):
        block.register_buffer("count", mg.tensor([1.0], requires_grad=True))


def test_a_parameter_cannot_be_replaced_by_a_plain_tensor():
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="weight is a parameter"):
        layer.weight = mg.tensor(np.zeros((2, 2)))
    layer.bias = None  # allowed: the layer then has no bias
    assert [n for n, _ in layer.named_parameters()] == ["weight"]


def test_forgetting_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.weight = nn.Parameter([1.0])

    with pytest.raises(AttributeError, match=r"call super\(\)\.__init__\(\)"):
        Broken()


def test_shared_parameters_are_listed_once():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(model.parameters())) == 2
    assert [n for n, _ in model.named_modules()] == ["", "0", "1"]


def test_train_eval_and_zero_grad_reach_every_submodule():
    model = mlp()
    assert model.training and all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    F.cross_entropy(model(np.ones((5, 4))), [0, 1, 2, 0, 1]).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


# -- state dicts ----------------------------------------------------------------------------------

def test_state_dict_holds_copies_of_parameters_and_buffers_in_pytorch_order():
    model = mlp()
    state = model.state_dict()
    assert list(state) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                           "1.running_var", "1.num_batches_tracked", "3.weight", "3.bias"]
    assert all(type(v) is np.ndarray for v in state.values())
    assert state["1.num_batches_tracked"].dtype == np.int64
    model[0].weight.data[...] = 7.0
    assert not np.any(state["0.weight"] == 7.0)  # a snapshot, not a view


def test_load_state_dict_round_trip_through_save_and_load(tmp_path):
    source, target = mlp(), nn.Sequential(nn.Linear(4, 6, rng=5), nn.BatchNorm1d(6), nn.ReLU(),
                                          nn.Linear(6, 3, rng=6))
    source(np.random.default_rng(0).standard_normal((8, 4)))  # moves the running statistics
    mg.save(source.state_dict(), tmp_path / "model.npz")
    result = target.load_state_dict(mg.load(tmp_path / "model.npz"))
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    x = np.random.default_rng(1).standard_normal((5, 4))
    source.eval(), target.eval()
    np.testing.assert_array_equal(source(x).data, target(x).data)


def test_load_state_dict_accepts_tensors_and_converts_to_the_model_dtype():
    model = nn.Linear(2, 3, dtype=np.float32)
    model.load_state_dict({"weight": mg.tensor(np.ones((3, 2))), "bias": np.zeros(3)})
    assert model.weight.dtype == np.float32 and model.bias.dtype == np.float32
    np.testing.assert_array_equal(model.weight.data, np.ones((3, 2)))


def _snapshot(model):
    return {name: np.array(t.data) for name, t in model._state_tensors().items()}


@pytest.mark.parametrize("change, expected", [
    (lambda s: s.pop("1.running_var"), "missing keys: 1.running_var"),
    (lambda s: s.update(extra=np.zeros(1)), "unexpected keys: extra"),
    (lambda s: s.update({"3.weight": np.zeros((3, 5))}), r"3.weight: shape \(3, 5\)"),
    (lambda s: s.update({"1.num_batches_tracked": np.array(1.5)}), "dtype float64"),
])
def test_failed_load_changes_nothing_and_lists_the_problem(change, expected):
    model = mlp()
    state = {name: value + 1 for name, value in mlp().state_dict().items()}
    change(state)
    before = _snapshot(model)
    with pytest.raises(RuntimeError, match=expected):
        model.load_state_dict(state)
    for name, value in _snapshot(model).items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_load_reports_every_problem_at_once():
    model = mlp()
    state = model.state_dict()
    state["0.weight"] = np.zeros((1, 1))
    state["0.bias"] = np.zeros(7)
    del state["3.bias"]
    with pytest.raises(RuntimeError) as error:
        model.load_state_dict(state)
    message = str(error.value)
    assert "0.weight" in message and "0.bias" in message and "3.bias" in message


def test_non_strict_load_skips_missing_and_unexpected_keys_but_checks_shapes():
    model = nn.Linear(2, 3)
    result = model.load_state_dict({"weight": np.full((3, 2), 0.5), "other": np.ones(1)},
                                   strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["other"]
    np.testing.assert_array_equal(model.weight.data, np.full((3, 2), 0.5))
    with pytest.raises(RuntimeError, match="weight: shape"):
        model.load_state_dict({"weight": np.ones((2, 2))}, strict=False)


def test_to_float32_converts_parameters_buffers_and_outputs():
    model = mlp().to(np.float32)
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert model[1].running_mean.dtype == np.float32
    assert model[1].num_batches_tracked.dtype == np.int64
    x = mg.tensor(np.random.default_rng(0).standard_normal((5, 4)), dtype=np.float32)
    out = model(x)
    assert out.dtype == np.float32
    F.cross_entropy(out, [0, 1, 2, 0, 1]).backward()
    assert all(p.grad.dtype == np.float32 for p in model.parameters())
    with pytest.raises(TypeError, match="floating"):
        model.to(np.int32)


def test_mixing_dtypes_is_an_error_not_a_silent_promotion():
    with pytest.raises(TypeError, match="linear: the input is float32 but weight is float64"):
        nn.Linear(2, 2)(mg.tensor(np.ones((1, 2)), dtype=np.float32))


def test_repr_looks_like_pytorch():
    assert repr(mlp()) == (
        "Sequential(\n"
        "  (0): Linear(in_features=4, out_features=6, bias=True)\n"
        "  (1): BatchNorm1d(6, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
        "  (2): ReLU()\n"
        "  (3): Linear(in_features=6, out_features=3, bias=True)\n"
        ")")
    nested = nn.Sequential(nn.Sequential(nn.Tanh()), nn.Dropout(0.25))
    assert repr(nested) == ("Sequential(\n  (0): Sequential(\n    (0): Tanh()\n  )\n"
                            "  (1): Dropout(p=0.25)\n)")


def test_every_node_records_the_modules_whose_forward_made_it():
    model = mlp()
    out = model(mg.tensor(np.ones((3, 4))))
    nodes = mg.autograd.topological_order(out.grad_fn)
    assert all(node.scope[0] is model for node in nodes)
    assert {node.scope[1] for node in nodes} == {model[0], model[1], model[2], model[3]}
    assert mg.autograd.current_scope() == ()  # restored after the call


def test_deepcopy_gives_an_independent_model():
    model = mlp()
    clone = copy.deepcopy(model)
    assert clone[0].weight is not model[0].weight
    assert isinstance(clone[0].weight, nn.Parameter)
    np.testing.assert_array_equal(clone[0].weight.data, model[0].weight.data)
    model[0].weight.data[...] = 0.0
    assert np.any(clone[0].weight.data != 0.0)
    assert [n for n, _ in clone.named_parameters()] == [n for n, _ in model.named_parameters()]


# -- Sequential -----------------------------------------------------------------------------------

def test_sequential_indexing_len_iteration_and_slices():
    model = mlp()
    assert len(model) == 4
    assert isinstance(model[1], nn.BatchNorm1d) and model[-1] is model[3]
    assert list(model) == [model[0], model[1], model[2], model[3]]
    head = model[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is model[0]
    with pytest.raises(IndexError, match="out of range for 4"):
        model[4]
    with pytest.raises(TypeError, match="expected a Module"):
        nn.Sequential(nn.ReLU(), lambda x: x)


# -- layers ---------------------------------------------------------------------------------------

def test_linear_init_is_uniform_within_one_over_sqrt_fan_in():
    layer = nn.Linear(100, 400, rng=0)
    bound = 1 / np.sqrt(100)
    for p in (layer.weight, layer.bias):
        assert np.abs(p.data).max() <= bound
        assert np.abs(p.data).max() > 0.95 * bound
    assert abs(layer.weight.data.std() - bound / np.sqrt(3)) < 0.01 * bound  # U(-b, b)


def test_manual_seed_makes_initialisation_reproducible():
    nn.manual_seed(3)
    a = nn.Linear(3, 3)
    nn.manual_seed(3)
    b = nn.Linear(3, 3)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    assert not np.array_equal(a.weight.data, nn.Linear(3, 3).weight.data)


def test_linear_forward_matches_numpy():
    layer = nn.Linear(3, 2, rng=0)
    x = np.random.default_rng(1).standard_normal((4, 3))
    np.testing.assert_allclose(layer(x).data, x @ layer.weight.data.T + layer.bias.data,
                               rtol=1e-14)
    assert nn.Linear(3, 2, bias=False)(x).shape == (4, 2)
    with pytest.raises(ValueError, match=r"linear: .*input shape \(4, 3\).*weight shape \(2, 5\)"):
        nn.Linear(5, 2)(x)
    with pytest.raises(ValueError, match="in_features must be a positive int"):
        nn.Linear(0, 2)


def test_conv2d_layer_shapes_and_init():
    conv = nn.Conv2d(3, 8, 3, stride=2, padding=1, rng=0)
    assert conv.weight.shape == (8, 3, 3, 3) and conv.bias.shape == (8,)
    assert np.abs(conv.weight.data).max() <= 1 / np.sqrt(27)
    assert conv(np.zeros((2, 3, 9, 9))).shape == (2, 8, 5, 5)
    assert repr(conv) == "Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=True)"


def test_activations():
    x = mg.tensor([-2.0, 0.5])
    np.testing.assert_allclose(nn.ReLU()(x).data, [0.0, 0.5])
    np.testing.assert_allclose(nn.Sigmoid()(x).data, 1 / (1 + np.exp([2.0, -0.5])))
    np.testing.assert_allclose(nn.Tanh()(x).data, np.tanh([-2.0, 0.5]))


def test_dropout_layer_is_the_identity_in_eval_and_reproducible_with_a_seed():
    x = mg.tensor(np.ones((50, 40)))
    layer = nn.Dropout(0.3, rng=0)
    out = layer(x)
    kept = out.data != 0
    np.testing.assert_allclose(out.data[kept], 1 / 0.7)
    assert 0.25 < 1 - kept.mean() < 0.35
    assert not np.array_equal(layer(x).data, out.data)  # a fresh mask each call
    np.testing.assert_array_equal(nn.Dropout(0.3, rng=0)(x).data, out.data)
    assert layer.eval()(x) is x
    with pytest.raises(ValueError, match="probability"):
        nn.Dropout(1.5)


def test_flatten():
    x = mg.tensor(np.arange(24.0).reshape(2, 3, 2, 2))
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Flatten(0, 1)(x).shape == (6, 2, 2)
    assert nn.Flatten(start_dim=2)(x).shape == (2, 3, 4)
    with pytest.raises(RuntimeError, match="start_dim .2. cannot come after end_dim .1."):
        nn.Flatten(2, 1)(x)
    for start in (4, -5):  # out of range is an IndexError, never wrapped around (PyTorch)
        with pytest.raises(IndexError, match=f"Flatten: axis {start} is out of range"):
            nn.Flatten(start_dim=start)(x)
    assert nn.Flatten(0)(mg.tensor(3.0)).shape == (1,)  # PyTorch flattens 0-d to one element


@pytest.mark.parametrize("fused", [False, True], ids=["composed", "fused"])
def test_a_whole_model_passes_gradcheck_and_gradgradcheck(fused):
    """Every layer's backward, including the ones that run as plain NumPy unless
    create_graph, gives exact first and second derivatives of a real loss."""
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, fused=fused), nn.Tanh(),
                          nn.Linear(4, 3))
    labels = np.array([0, 2, 1, 2, 0])

    def loss(x, weight):
        return F.cross_entropy(model[1:](F.linear(x, weight, model[0].bias)), labels)

    x = mg.tensor(np.random.default_rng(0).standard_normal((5, 3)), requires_grad=True)
    weight = nn.Parameter(model[0].weight.data.copy())
    assert mg.gradcheck(loss, [x, weight])
    assert mg.gradgradcheck(loss, [x, weight])


def test_a_small_cnn_trains_end_to_end():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    rng = np.random.default_rng(0)
    images = rng.standard_normal((16, 1, 6, 6))
    labels = (images[:, 0, :3].sum(axis=(1, 2)) > 0).astype(np.int64)
    losses = []
    for _ in range(30):
        model.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        for p in model.parameters():
            p.data -= 0.1 * p.grad.data
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
