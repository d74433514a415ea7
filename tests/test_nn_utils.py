"""nn.utils: BatchNorm folded into the Linear or Conv2d before it, and update_bn (Ioffe &
Szegedy's Algorithm 2), against the pair itself and against PyTorch 2.13."""
import copy

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
from minigrad import nn
from minigrad.data import DataLoader
from minigrad.nn.utils import FusionError, fuse_conv_bn_eval, fuse_linear_bn_eval, update_bn


def _trained_bn(bn, seed=0):
    """A BatchNorm whose weight, bias and running statistics are all away from 1 and 0."""
    rng = np.random.default_rng(seed)
    for name in ("weight", "bias", "running_mean", "running_var"):
        tensor = getattr(bn, name)
        if tensor is not None:
            low = 0.2 if name in ("running_var", "weight") else -2.0
            tensor.data[...] = rng.uniform(low, 2.0, tensor.shape)
    return bn.eval()


def _same_output(fused, pair, x):
    with mg.no_grad():
        np.testing.assert_allclose(fused(x).data, pair(x).data, rtol=1e-10, atol=1e-10)


# -- fusion: the fused layer computes what the pair computes ----------------------------------

@settings(max_examples=20, deadline=None)
@given(features=st.integers(1, 5), out=st.integers(1, 5), bias=st.booleans(),
       affine=st.booleans(), one_feature=st.booleans(), seed=st.integers(0, 100))
def test_fused_linear_equals_the_pair(features, out, bias, affine, one_feature, seed):
    linear = nn.Linear(features, out, bias=bias, rng=seed).eval()
    bn = _trained_bn(nn.BatchNorm1d(1 if one_feature else out, affine=affine), seed)
    fused = fuse_linear_bn_eval(linear, bn)
    assert isinstance(fused, nn.Linear) and fused is not linear and not fused.training
    assert fused.weight.shape == linear.weight.shape and fused.bias.shape == (out,)
    # BatchNorm1d(1) after a Linear: a (N, 1, L) input, the Linear's outputs along L
    shape = (6, 1, features) if one_feature else (6, features)
    _same_output(fused, nn.Sequential(linear, bn), np.random.default_rng(seed).normal(size=shape))


@settings(max_examples=15, deadline=None)
@given(bias=st.booleans(), affine=st.booleans(), stride=st.integers(1, 2),
       padding=st.integers(0, 1), seed=st.integers(0, 100))
def test_fused_conv_equals_the_pair(bias, affine, stride, padding, seed):
    conv = nn.Conv2d(2, 3, (3, 2), stride=stride, padding=padding, bias=bias, rng=seed).eval()
    bn = _trained_bn(nn.BatchNorm2d(3, affine=affine), seed)
    fused = fuse_conv_bn_eval(conv, bn)
    assert isinstance(fused, nn.Conv2d) and (fused.stride, fused.padding) == (conv.stride,
                                                                              conv.padding)
    _same_output(fused, nn.Sequential(conv, bn),
                 np.random.default_rng(seed).normal(size=(2, 2, 5, 6)))


def test_fusion_gives_the_pairs_gradients_and_leaves_the_originals():
    linear, bn = nn.Linear(4, 3, rng=0).eval(), _trained_bn(nn.BatchNorm1d(3))
    before = {**copy.deepcopy(linear.state_dict()), **copy.deepcopy(bn.state_dict())}
    fused = fuse_linear_bn_eval(linear, bn)
    for name, value in {**linear.state_dict(), **bn.state_dict()}.items():
        np.testing.assert_array_equal(value, before[name])
    assert fused.weight.requires_grad and fused.bias.requires_grad
    assert fused.weight is not linear.weight
    grads = []
    for model in (fused, nn.Sequential(linear, bn)):
        x = mg.tensor(np.random.default_rng(1).normal(size=(5, 4)), requires_grad=True)
        (model(x) ** 2).sum().backward()
        grads.append(x.grad.data)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-10)
    assert mg.gradcheck(lambda x: fused(x), (mg.tensor(np.ones((2, 4)), requires_grad=True),))


def test_fusion_keeps_the_layers_dtype():
    linear = nn.Linear(4, 3, rng=0, dtype=np.float32).eval()
    fused = fuse_linear_bn_eval(linear, _trained_bn(nn.BatchNorm1d(3, dtype=np.float32)))
    assert fused.weight.dtype == fused.bias.dtype == np.float32


def test_fusion_refuses_what_cannot_be_folded():
    linear, bn = nn.Linear(4, 3), nn.BatchNorm1d(3)
    with pytest.raises(AssertionError, match="Fusion only for eval"):
        fuse_linear_bn_eval(linear, bn)  # both in training mode
    with pytest.raises(ValueError, match="Fusion only for eval"):
        fuse_linear_bn_eval(linear.eval(), bn)
    with pytest.raises(FusionError, match="running_mean and bn.running_var must not be None"):
        fuse_linear_bn_eval(linear, nn.BatchNorm1d(3, track_running_stats=False).eval())
    with pytest.raises(FusionError, match="linear.out_features == bn.num_features"):
        fuse_linear_bn_eval(linear, nn.BatchNorm1d(2).eval())
    with pytest.raises(TypeError, match="fuse_linear_bn_eval: the layer must be an nn.Linear"):
        fuse_linear_bn_eval(nn.Conv2d(1, 3, 1).eval(), bn.eval())
    with pytest.raises(TypeError, match="fuse_conv_bn_eval: bn must be an nn.BatchNorm1d"):
        fuse_conv_bn_eval(nn.Conv2d(1, 3, 1).eval(), nn.LayerNorm(3).eval())
    with pytest.raises(RuntimeError, match="bn.num_features must be the conv weight's axis 0"):
        fuse_conv_bn_eval(nn.Conv2d(1, 3, 1).eval(), nn.BatchNorm2d(4).eval())
    with pytest.raises(TypeError, match="fuse_conv_bn_eval: transpose must be True or False"):
        fuse_conv_bn_eval(nn.Conv2d(1, 3, 1).eval(), nn.BatchNorm2d(3).eval(), transpose=1)


# -- fusion vs PyTorch ----------------------------------------------------------------------------

def _torch_bn(torch, bn, cls):
    theirs = cls(bn.num_features, eps=bn.eps, affine=bn.affine).double().eval()
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            if getattr(bn, name) is not None:
                getattr(theirs, name).copy_(torch.from_numpy(getattr(bn, name).data.copy()))
    return theirs


def _torch_layer(torch, layer, theirs):
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(layer.weight.data.copy()))
        if layer.bias is not None:
            theirs.bias.copy_(torch.from_numpy(layer.bias.data.copy()))
    return theirs.eval()


@pytest.mark.parametrize("bias", [True, False])
def test_fuse_linear_bn_eval_matches_pytorch(bias):
    torch = pytest.importorskip("torch")
    linear, bn = nn.Linear(4, 3, bias=bias, rng=0).eval(), _trained_bn(nn.BatchNorm1d(3))
    their_linear = _torch_layer(torch, linear, torch.nn.Linear(4, 3, bias=bias).double())
    theirs = torch.nn.utils.fuse_linear_bn_eval(
        their_linear, _torch_bn(torch, bn, torch.nn.BatchNorm1d))
    ours = fuse_linear_bn_eval(linear, bn)
    np.testing.assert_allclose(ours.weight.data, theirs.weight.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.bias.data, theirs.bias.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("transpose", [False, True])
def test_fuse_conv_bn_eval_matches_pytorch(bias, affine, transpose):
    torch = pytest.importorskip("torch")
    conv = nn.Conv2d(3, 3, 2, stride=2, padding=1, bias=bias, rng=0).eval()
    bn = _trained_bn(nn.BatchNorm2d(3, affine=affine))
    their_conv = _torch_layer(torch, conv, torch.nn.Conv2d(3, 3, 2, 2, 1, bias=bias).double())
    theirs = torch.nn.utils.fuse_conv_bn_eval(
        their_conv, _torch_bn(torch, bn, torch.nn.BatchNorm2d), transpose=transpose)
    ours = fuse_conv_bn_eval(conv, bn, transpose=transpose)
    np.testing.assert_allclose(ours.weight.data, theirs.weight.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.bias.data, theirs.bias.detach().numpy(), rtol=1e-12)
    if not transpose:
        x = np.random.default_rng(0).normal(size=(2, 3, 4, 4))
        np.testing.assert_allclose(ours(x).data, theirs(torch.from_numpy(x)).detach().numpy(),
                                   rtol=1e-10, atol=1e-12)


def test_the_signatures_are_pytorchs():
    torch = pytest.importorskip("torch")
    import inspect
    for ours, theirs in ((fuse_linear_bn_eval, torch.nn.utils.fuse_linear_bn_eval),
                         (fuse_conv_bn_eval, torch.nn.utils.fuse_conv_bn_eval),
                         (update_bn, torch.optim.swa_utils.update_bn)):
        assert [(p.name, p.default) for p in inspect.signature(ours).parameters.values()] == [
            (p.name, p.default) for p in inspect.signature(theirs).parameters.values()]


# -- update_bn ------------------------------------------------------------------------------------

def _model(momentum=0.1):
    return nn.Sequential(nn.Linear(4, 5, rng=0), nn.BatchNorm1d(5, momentum=momentum), nn.ReLU(),
                         nn.Linear(5, 3, rng=1), nn.BatchNorm1d(3, momentum=0.3))


def _batches(count=4, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(1.0, 2.0, size=(rng.integers(2, 7), 4)), np.zeros(3)) for _ in
            range(count)]


def _buffers(model):
    return {name: value.copy() for name, value in model.state_dict().items()
            if "running" in name or "num_batches" in name}


def test_update_bn_is_the_average_over_the_loader_of_each_batchs_statistics():
    model = _model()
    batches = _batches()
    model(batches[0][0])  # running statistics that update_bn must forget
    model.eval()
    update_bn(batches, model)
    assert not model.training and model[1].momentum == 0.1 and model[4].momentum == 0.3
    assert all(p.grad is None for p in model.parameters())
    hidden = [model[0](x).data for x, _ in batches]
    np.testing.assert_allclose(model[1].running_mean.data,
                               np.mean([h.mean(axis=0) for h in hidden], axis=0), rtol=1e-12)
    np.testing.assert_allclose(model[1].running_var.data,
                               np.mean([h.var(axis=0, ddof=1) for h in hidden], axis=0),
                               rtol=1e-12)
    assert int(model[1].num_batches_tracked.data) == len(batches)


def test_update_bn_matches_pytorch():
    torch = pytest.importorskip("torch")
    model = _model(momentum=None)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.BatchNorm1d(5, momentum=None),
                                 torch.nn.ReLU(), torch.nn.Linear(5, 3),
                                 torch.nn.BatchNorm1d(3, momentum=0.3)).double()
    with torch.no_grad():
        for name, their in theirs.state_dict().items():
            their.copy_(torch.from_numpy(np.array(model.state_dict()[name])))
    batches = _batches(5, seed=3)
    model.train(), theirs.train()
    update_bn(batches, model)
    torch.optim.swa_utils.update_bn([(torch.from_numpy(x), y) for x, y in batches], theirs)
    assert model.training == theirs.training
    assert (model[1].momentum, model[4].momentum) == (theirs[1].momentum, theirs[4].momentum)
    their_state = theirs.state_dict()
    for name, value in _buffers(model).items():
        np.testing.assert_allclose(value, their_state[name].numpy(), rtol=1e-12, err_msg=name)


def test_update_bn_takes_a_dataloader_plain_inputs_and_models_without_batchnorm():
    model = _model()
    x = np.random.default_rng(0).normal(size=(12, 4))
    update_bn(DataLoader((x, np.zeros(12, dtype=np.int64)), batch_size=4), model)
    from_loader = _buffers(model)
    update_bn([x[:4], x[4:8], mg.tensor(x[8:])], model)
    for name, value in _buffers(model).items():
        np.testing.assert_allclose(value, from_loader[name], rtol=1e-12)
    plain = nn.Sequential(nn.Linear(4, 2)).eval()
    update_bn([x], plain)
    assert not plain.training
    update_bn([], model)  # no batches: the statistics reset, as PyTorch leaves them
    assert int(model[1].num_batches_tracked.data) == 0


def test_update_bn_restores_the_model_when_a_batch_fails():
    model = _model().eval()
    with pytest.raises(RuntimeError):
        update_bn([np.zeros((3, 4)), np.zeros((3, 7))], model)
    assert not model.training and model[1].momentum == 0.1


def test_update_bn_checks_its_arguments():
    with pytest.raises(TypeError, match="update_bn: model must be an nn.Module"):
        update_bn([], "model")
    with pytest.raises(TypeError, match="update_bn: loader must be an iterable"):
        update_bn(3, _model())
    with pytest.raises(RuntimeError, match="update_bn: device must be None or 'cpu'"):
        update_bn([], _model(), device="cuda")
