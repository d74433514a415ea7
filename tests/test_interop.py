"""minigrad.interop: every nn layer to PyTorch and back, same state and same outputs."""
from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
from minigrad import interop

torch = pytest.importorskip("torch")


def _layers():
    """One instance of every convertible layer of minigrad.nn (with non-default settings where
    it has any), and an input it takes."""
    rng = np.random.default_rng(0)
    image = rng.normal(size=(4, 3, 6, 6))
    flat = rng.normal(size=(5, 3))
    cases = {
        "Linear": (lambda: nn.Linear(3, 4), flat),
        "Linear without bias": (lambda: nn.Linear(3, 2, bias=False), flat),
        "Conv2d": (lambda: nn.Conv2d(3, 2, (3, 2), stride=2, padding=1), image),
        "BatchNorm1d": (lambda: nn.BatchNorm1d(3, eps=1e-3, momentum=0.3), flat),
        "BatchNorm1d cumulative": (lambda: nn.BatchNorm1d(3, momentum=None), flat),
        "BatchNorm1d no stats": (lambda: nn.BatchNorm1d(3, track_running_stats=False), flat),
        "BatchNorm2d": (lambda: nn.BatchNorm2d(3, affine=False), image),
        "LayerNorm": (lambda: nn.LayerNorm((6, 6), eps=1e-4), image),
        "GroupNorm": (lambda: nn.GroupNorm(1, 3), image),
        "ReLU": (nn.ReLU, flat), "Sigmoid": (nn.Sigmoid, flat), "Tanh": (nn.Tanh, flat),
        "Dropout": (lambda: nn.Dropout(0.25), flat),
        "Flatten": (lambda: nn.Flatten(1, 2), image),
        "Identity": (nn.Identity, flat),
        "LeakyReLU": (lambda: nn.LeakyReLU(0.2), flat),
        "GELU": (nn.GELU, flat), "GELU tanh": (lambda: nn.GELU(approximate="tanh"), flat),
        "Softplus": (lambda: nn.Softplus(beta=2.0, threshold=5.0), flat),
        "MaxPool2d": (lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), image),
        "AvgPool2d": (lambda: nn.AvgPool2d(2, padding=1, count_include_pad=False), image),
        "LayerNorm without bias": (lambda: nn.LayerNorm(6, bias=False), image),
        "BatchNorm2d without bias": (lambda: nn.BatchNorm2d(3, bias=False), image),
        "GroupNorm without bias": (lambda: nn.GroupNorm(3, 3, bias=False), image),
        "Sequential": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                                             nn.MaxPool2d(2), nn.Flatten(),
                                             nn.Linear(16, 3)), image),
    }
    return [pytest.param(make, x, id=name) for name, (make, x) in cases.items()]


def _perturbed(module):
    """``module`` with its state moved away from the defaults, so a copy that lost any of it
    shows (running statistics and num_batches_tracked moved by real batches)."""
    rng = np.random.default_rng(1)
    for param in module.parameters():
        param.data[...] = rng.normal(size=param.shape)
    return module


def _assert_same_state(mine, theirs, **tolerance):
    """Same keys in the same order, same dtypes, and the same values: exactly after a
    conversion, within ``tolerance`` after each library has run its own arithmetic."""
    ours, other = mine.state_dict(), theirs.state_dict()
    assert list(ours) == list(other)
    for key, value in ours.items():
        assert value.dtype == other[key].numpy().dtype, key
        if tolerance:
            np.testing.assert_allclose(value, other[key].numpy(), err_msg=key, **tolerance)
        else:
            np.testing.assert_array_equal(value, other[key].numpy(), err_msg=key)


@pytest.mark.parametrize("make, x", _layers())
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_to_torch_and_back_keeps_state_and_outputs(make, x, dtype):
    module = _perturbed(make().to(dtype))
    x = x.astype(dtype)
    if isinstance(module, nn.Dropout):
        module.eval()  # random masks differ between libraries; eval is the identity in both
    else:  # a few training steps move running statistics and num_batches_tracked
        for _ in range(2):
            module(mg.tensor(x))
    theirs = interop.to_torch(module)
    _assert_same_state(module, theirs)
    tolerance = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10,
                                                                             atol=1e-12)
    for mode in ("train", "eval"):
        if isinstance(module, nn.Dropout) and mode == "train":
            continue
        getattr(module, mode)(), getattr(theirs, mode)()
        ours = module(mg.tensor(x)).data
        other = theirs(torch.from_numpy(x.copy())).detach().numpy()
        np.testing.assert_allclose(ours, other, **tolerance)
        _assert_same_state(module, theirs, **tolerance)  # the forward moved both alike
    theirs = interop.to_torch(module)  # the state as minigrad has it now
    back = interop.from_torch(theirs)  # (the modules are in eval mode now)
    assert type(back) is type(module) and not back.training
    _assert_same_state(back, theirs)
    np.testing.assert_array_equal(back(mg.tensor(x)).data, module(mg.tensor(x)).data)


def test_a_trained_digits_model_carries_over_to_pytorch_and_back():
    """The path for a model that outgrows minigrad: trained here, same predictions there."""
    from minigrad.training import build_model, fit
    data = mg.data.load_digits()
    model = build_model("mlp", hidden=32, dtype=np.float64)
    fit(model, data, mg.optim.Adam(model.parameters(), lr=3e-3), epochs=1, batch_size=64,
        progress=False, seed=0)
    model.eval()
    theirs = interop.to_torch(model)
    assert not theirs.training and not theirs[1].training
    x = data.x_test.astype(np.float64)
    ours = model(mg.tensor(x)).data
    other = theirs(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(ours, other, rtol=1e-10, atol=1e-10)
    assert (ours.argmax(1) == other.argmax(1)).all()
    back = interop.from_torch(theirs)
    np.testing.assert_array_equal(back(mg.tensor(x)).data, ours)


def test_module_lists_and_dicts_keep_their_children_and_keys():
    model = nn.ModuleDict({"encoder": nn.ModuleList([nn.Linear(3, 4), nn.BatchNorm1d(4)]),
                           "head": nn.Linear(4, 2)})
    theirs = interop.to_torch(model)
    assert isinstance(theirs, torch.nn.ModuleDict)
    assert isinstance(theirs["encoder"], torch.nn.ModuleList)
    _assert_same_state(model, theirs)
    back = interop.from_torch(theirs)
    assert isinstance(back, nn.ModuleDict) and isinstance(back["encoder"], nn.ModuleList)
    assert list(back.state_dict()) == list(model.state_dict())


def test_modes_are_carried_per_module():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Dropout(0.5))
    model.train()
    model[1].eval()
    theirs = interop.to_torch(model)
    assert [m.training for m in theirs] == [True, False, True] and theirs.training


def test_from_torch_makes_fused_batchnorm_on_request():
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    assert interop.from_torch(theirs, fused=True)[1].fused
    assert not interop.from_torch(theirs)[1].fused


class _Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 2)

    def forward(self, x):
        return self.linear(x) * 2


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: interop.to_torch(_Custom()), TypeError, r"to_torch: module must be made of layers "
                                                     r".*got '_Custom'"),
    (lambda: interop.to_torch(torch.nn.Linear(2, 2)), TypeError, r"a minigrad nn.Module"),
    (lambda: interop.to_torch(None), TypeError, r"to_torch: module must be a minigrad"),
    (lambda: interop.from_torch(nn.Linear(2, 2)), TypeError, r"from_torch: module must be a "
                                                             r"torch.nn.Module"),
    (lambda: interop.from_torch(torch.nn.Conv2d(2, 2, 3, dilation=2)), ValueError,
     r"from_torch: Conv2d.dilation must be \(1, 1\)"),
    (lambda: interop.from_torch(torch.nn.Conv2d(2, 4, 3, groups=2)), ValueError,
     r"Conv2d.groups must be 1"),
    (lambda: interop.from_torch(torch.nn.LSTM(2, 2)), TypeError, r"got 'LSTM'"),
    (lambda: interop.from_torch(torch.nn.Linear(2, 2), fused="yes"), TypeError,
     r"from_torch: fused must be True or False"),
])
def test_what_cannot_be_converted_is_named(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_every_layer_of_nn_converts_and_is_tested_here():
    layers = {name for name in nn.__all__ if isinstance(getattr(nn, name), type)
              and issubclass(getattr(nn, name), nn.Module) and name != "Module"}
    assert layers <= set(interop.CONVERTIBLE), sorted(layers - set(interop.CONVERTIBLE))
    tested = {param.id.split()[0] for param in _layers()} | {"ModuleList", "ModuleDict"}
    assert layers <= tested, sorted(layers - tested)
