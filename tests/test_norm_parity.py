"""The norm layers against PyTorch 2.13 where its behaviour is least obvious: the constructors'
full signatures (bias=, device=, dtype=), empty batches, and track_running_stats switched
after construction -- outputs, gradients, running statistics and num_batches_tracked."""
import inspect

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad import nn

torch = pytest.importorskip("torch")

LAYERS = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm"]
TOL = dict(rtol=1e-10, atol=1e-12)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _pair(name, *args, fused=None, **kwargs):
    """Ours and PyTorch's layer (float64) built with the same arguments, with the same random
    weight and bias (and running statistics away from their initial values)."""
    ours = getattr(nn, name)(*args, **kwargs, **({} if fused is None else {"fused": fused}))
    theirs = getattr(torch.nn, name)(*args, **kwargs).double()
    rng = _rng(1)
    for attribute in ("weight", "bias", "running_mean", "running_var"):
        mine = getattr(ours, attribute, None)
        if mine is not None:
            low = 0.5 if attribute == "running_var" else -1.0
            mine.data[...] = rng.uniform(low, 1.5, mine.shape)
            with torch.no_grad():
                getattr(theirs, attribute).copy_(torch.from_numpy(mine.data.copy()))
    return ours, theirs


def _step(ours, theirs, x):
    """One forward and backward through both; every output, gradient and buffer compared."""
    mine = mg.tensor(x, requires_grad=True)
    their_x = torch.tensor(x, requires_grad=True)
    out, their_out = ours(mine), theirs(their_x)
    assert out.shape == tuple(their_out.shape)
    np.testing.assert_allclose(out.data, their_out.detach().numpy(), **TOL)
    upstream = _rng(2).normal(size=x.shape)
    (out * mg.tensor(upstream)).sum().backward()
    (their_out * torch.from_numpy(upstream)).sum().backward()
    np.testing.assert_allclose(mine.grad.data, their_x.grad.numpy(), **TOL)
    for name in ("weight", "bias"):
        param, their_param = getattr(ours, name), getattr(theirs, name)
        assert (param is None) == (their_param is None)
        if param is not None:
            np.testing.assert_allclose(param.grad.data, their_param.grad.numpy(), **TOL)
            param.grad, their_param.grad = None, None
    _same_buffers(ours, theirs)


def _same_buffers(ours, theirs):
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        buffer, their_buffer = getattr(ours, name, None), getattr(theirs, name, None)
        assert (buffer is None) == (their_buffer is None), name
        if buffer is not None:
            np.testing.assert_allclose(buffer.data, their_buffer.numpy(), **TOL, err_msg=name)


# -- constructors --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", LAYERS)
def test_constructors_take_pytorchs_arguments_in_its_order_with_its_defaults(name):
    theirs = list(inspect.signature(getattr(torch.nn, name)).parameters.values())
    ours = list(inspect.signature(getattr(nn, name)).parameters.values())
    for mine, their in zip(ours, theirs):
        assert (mine.name, mine.kind, mine.default) == (their.name, their.kind, their.default)
    extra = ours[len(theirs):]  # minigrad's own options come last, by keyword only
    assert [p.name for p in extra] == (["fused"] if name.startswith("BatchNorm") else [])
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in extra)


@pytest.mark.parametrize("name, args", [("BatchNorm1d", (3,)), ("BatchNorm2d", (3,)),
                                        ("LayerNorm", ((3, 2),)), ("GroupNorm", (2, 4))])
def test_bias_false_keeps_the_weight_as_pytorch_does(name, args):
    ours, theirs = _pair(name, *args, bias=False)
    assert ours.bias is None and ours.weight is not None
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    assert "bias=False" in repr(ours)
    shape = {"BatchNorm1d": (5, 3), "BatchNorm2d": (3, 3, 2, 2), "LayerNorm": (4, 3, 2),
             "GroupNorm": (3, 4, 2)}[name]
    for training in (True, False):
        ours.train(training), theirs.train(training)
        _step(ours, theirs, _rng(3).normal(size=shape))


@pytest.mark.parametrize("name, args", [("BatchNorm1d", (3,)), ("BatchNorm2d", (3,)),
                                        ("LayerNorm", (3,)), ("GroupNorm", (1, 3))])
def test_device_is_none_or_cpu(name, args):
    cls = getattr(nn, name)
    for device in (None, "cpu", torch.device("cpu")):
        assert cls(*args, device=device).weight.dtype == np.float64
    with pytest.raises(RuntimeError, match=f"{name}: device must be None or 'cpu'.*'cuda'"):
        cls(*args, device="cuda")
    with pytest.raises(TypeError, match=f"{name}: device must be None or 'cpu'"):
        cls(*args, device=0)


def test_dtype_and_device_by_position_as_in_pytorch():
    layer = nn.BatchNorm1d(3, 1e-5, 0.1, True, True, "cpu", np.float32)
    assert layer.weight.dtype == layer.running_var.dtype == np.float32
    assert layer.num_batches_tracked.dtype == np.int64
    assert nn.LayerNorm(3, 1e-5, True, False, None, np.float32).weight.dtype == np.float32
    assert nn.LayerNorm(3, 1e-5, True, False).bias is None
    assert nn.GroupNorm(1, 3, 1e-5, True, None, np.float32).bias.dtype == np.float32
    with pytest.raises(TypeError, match="BatchNorm1d: bias must be True or False"):
        nn.BatchNorm1d(3, bias=1)


# -- empty batches ------------------------------------------------------------------------------

BN_EMPTY = [("BatchNorm1d", (0, 3)), ("BatchNorm1d", (0, 3, 4)), ("BatchNorm2d", (0, 3, 2, 2)),
            ("BatchNorm2d", (2, 3, 0, 2))]


@pytest.mark.parametrize("name, shape", BN_EMPTY, ids=[str(s) for _, s in BN_EMPTY])
@pytest.mark.parametrize("fused", [False, True], ids=["composed", "fused"])
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("track", [True, False], ids=["tracking", "no stats"])
def test_an_empty_batch_is_an_empty_output_and_leaves_the_statistics(name, shape, fused,
                                                                     momentum, track):
    """PyTorch: an empty output, zero weight and bias gradients, running statistics as they
    were -- but num_batches_tracked counts the batch (so a cumulative average weighs the next
    batch 1/2)."""
    ours, theirs = _pair(name, 3, momentum=momentum, track_running_stats=track, fused=fused)
    for training in (True, False, True):
        ours.train(training), theirs.train(training)
        _step(ours, theirs, np.zeros(shape))
    ours.train(), theirs.train()
    full = (4,) + shape[1:2] + tuple(side or 2 for side in shape[2:])
    _step(ours, theirs, _rng(4).normal(size=full))


@pytest.mark.parametrize("fused", [False, True], ids=["composed", "fused"])
def test_batch_norm_function_on_an_empty_batch(fused):
    running_mean, running_var = mg.tensor([0.5, -1.0]), mg.tensor([2.0, 3.0])
    x = mg.tensor(np.zeros((0, 2, 3)), requires_grad=True)
    weight = mg.tensor([1.5, 2.0], requires_grad=True)
    out = F.batch_norm(x, running_mean, running_var, weight, training=True, fused=fused)
    assert out.shape == (0, 2, 3)
    (grad_x, grad_weight) = mg.grad(out.sum(), (x, weight), create_graph=True)
    assert grad_x.shape == (0, 2, 3)
    np.testing.assert_array_equal(grad_weight.data, [0.0, 0.0])
    np.testing.assert_array_equal(running_mean.data, [0.5, -1.0])
    np.testing.assert_array_equal(running_var.data, [2.0, 3.0])
    # one value per channel is still an error, as in PyTorch
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        F.batch_norm(np.zeros((1, 2)), None, None, training=True, fused=fused)


@pytest.mark.parametrize("name, args, shape", [
    ("LayerNorm", (3,), (0, 3)), ("LayerNorm", ((3, 2),), (0, 3, 2)),
    ("GroupNorm", (2, 4), (0, 4)), ("GroupNorm", (2, 4), (0, 4, 3))])
def test_layer_and_group_norm_of_an_empty_batch(name, args, shape):
    ours, theirs = _pair(name, *args)
    for training in (True, False):
        ours.train(training), theirs.train(training)
        _step(ours, theirs, np.zeros(shape))


# -- track_running_stats switched after construction ------------------------------------------

@pytest.mark.parametrize("name, shape", [("BatchNorm1d", (5, 3)), ("BatchNorm2d", (3, 3, 2, 2))])
@pytest.mark.parametrize("fused", [False, True], ids=["composed", "fused"])
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("built", [True, False], ids=["built tracking", "built without"])
@pytest.mark.parametrize("now", [True, False], ids=["now tracking", "now not"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_track_running_stats_is_read_at_every_call(name, shape, fused, momentum, built, now,
                                                   training):
    """PyTorch's _BatchNorm.forward: training uses batch statistics, folded into the buffers
    only while tracking (and counted in num_batches_tracked); eval uses the buffers if the
    layer has them, whatever track_running_stats says now, else the batch's statistics."""
    ours, theirs = _pair(name, 3, momentum=momentum, track_running_stats=built, fused=fused)
    ours.track_running_stats = theirs.track_running_stats = now
    ours.train(training), theirs.train(training)
    for seed in range(3):
        _step(ours, theirs, _rng(10 + seed).normal(1.0, 2.0, size=shape))


def test_switched_off_in_training_the_buffers_stay_put():
    layer = nn.BatchNorm1d(3)
    layer(_rng().normal(size=(4, 3)))
    before = {name: value.copy() for name, value in layer.state_dict().items()}
    layer.track_running_stats = False
    layer(_rng(1).normal(size=(4, 3)))
    for name, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    layer.reset_running_stats()  # PyTorch: only while tracking
    np.testing.assert_array_equal(layer.running_mean.data, before["running_mean"])


_steps = st.lists(st.tuples(st.booleans(), st.booleans(), st.sampled_from([0, 2, 3, 5])),
                  min_size=1, max_size=6)


@settings(max_examples=30, deadline=None)
@given(steps=_steps, built=st.booleans(), momentum=st.sampled_from([0.1, 0.5, None]),
       fused=st.booleans())
def test_any_sequence_of_modes_batch_sizes_and_switches_matches_pytorch(steps, built, momentum,
                                                                        fused):
    ours, theirs = _pair("BatchNorm1d", 2, momentum=momentum, track_running_stats=built,
                         fused=fused)
    for index, (training, track, size) in enumerate(steps):
        ours.track_running_stats = theirs.track_running_stats = track
        ours.train(training), theirs.train(training)
        _step(ours, theirs, _rng(index).normal(size=(size, 2, 2)))
