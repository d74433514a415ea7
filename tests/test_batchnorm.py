"""BatchNorm1d / BatchNorm2d and F.batch_norm, composed and fused, against NumPy written out by
hand here: training and eval outputs, input/weight/bias gradients, running statistics over
several steps for momentum=0.1 and momentum=None, second derivatives, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad import nn

SHAPES = [  # (layer, input shape)
    (nn.BatchNorm1d, (8, 3)),
    (nn.BatchNorm1d, (4, 3, 5)),
    (nn.BatchNorm2d, (3, 2, 4, 3)),
]
IDS = ["1d-NC", "1d-NCL", "2d-NCHW"]


# -- the reference: BatchNorm in plain NumPy, as the paper writes it ------------------------------

def stat_axes(x):
    return (0,) + tuple(range(2, x.ndim))


def per_channel(v, x):
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def numpy_forward(x, weight, bias, mean, var, eps=1e-5):
    x_hat = (x - per_channel(mean, x)) / np.sqrt(per_channel(var, x) + eps)
    return x_hat * per_channel(weight, x) + per_channel(bias, x)


def numpy_batch_stats(x):
    axes = stat_axes(x)
    return x.mean(axis=axes), x.var(axis=axes)


def numpy_training_grads(x, weight, grad, eps=1e-5):
    """d loss / d (x, weight, bias) for y = BN(x) in training, by the chain rule through the
    batch mean and variance (Ioffe & Szegedy 2015, section 3)."""
    axes = stat_axes(x)
    n = x.size // x.shape[1]
    mean, var = (per_channel(v, x) for v in numpy_batch_stats(x))
    centered = x - mean
    x_hat = centered / np.sqrt(var + eps)
    d_x_hat = grad * per_channel(weight, x)
    d_var = np.sum(d_x_hat * centered, axis=axes, keepdims=True) * -0.5 * (var + eps) ** -1.5
    d_mean = -np.sum(d_x_hat, axis=axes, keepdims=True) / np.sqrt(var + eps)
    d_x = d_x_hat / np.sqrt(var + eps) + d_var * 2 * centered / n + d_mean / n
    return d_x, np.sum(grad * x_hat, axis=axes), np.sum(grad, axis=axes)


def numpy_eval_grads(x, weight, running_mean, running_var, grad, eps=1e-5):
    axes = stat_axes(x)
    invstd = 1 / np.sqrt(per_channel(running_var, x) + eps)
    x_hat = (x - per_channel(running_mean, x)) * invstd
    return grad * per_channel(weight, x) * invstd, np.sum(grad * x_hat, axis=axes), np.sum(
        grad, axis=axes)


def make_layer(cls, channels, fused, seed=0, **kwargs):
    """A layer with non-trivial weight and bias."""
    layer = cls(channels, fused=fused, **kwargs)
    if layer.affine:
        rng = np.random.default_rng(seed)
        layer.weight.data[...] = rng.uniform(0.5, 1.5, channels)
        layer.bias.data[...] = rng.standard_normal(channels)
    return layer


def batch(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) * rng.uniform(0.5, 3, shape[1]).reshape(
        (1, -1) + (1,) * (len(shape) - 2)) + 2.0


def run(layer, x, grad):
    """Forward and backward; returns output, x.grad, weight.grad, bias.grad as arrays."""
    x = mg.tensor(x, requires_grad=True)
    layer.zero_grad()
    out = layer(x)
    out.backward(mg.tensor(grad))
    return out.data, x.grad.data, layer.weight.grad.data, layer.bias.grad.data


# -- training and eval against NumPy ------------------------------------------------------------------

@pytest.mark.parametrize("fused", [False, True], ids=["composed", "fused"])
@pytest.mark.parametrize("cls, shape", SHAPES, ids=IDS)
def test_training_output_and_gradients_match_numpy(cls, shape, fused):
    layer = make_layer(cls, shape[1], fused)
    x, grad = batch(shape), batch(shape, seed=1)
    out, dx, dw, db = run(layer, x, grad)
    w, b = layer.weight.data, layer.bias.data
    np.testing.assert_allclose(out, numpy_forward(x, w, b, *numpy_batch_stats(x)), rtol=1e-12,
                               atol=1e-12)
    for got, expected in zip((dx, dw, db), numpy_training_grads(x, w, grad)):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fused", [False, True], ids=["composed", "fused"])
@pytest.mark.parametrize("cls, shape", SHAPES, ids=IDS)
def test_eval_output_and_gradients_use_the_running_statistics(cls, shape, fused):
    layer = make_layer(cls, shape[1], fused)
    rng = np.random.default_rng(2)
    layer.running_mean.data[...] = rng.standard_normal(shape[1])
    layer.running_var.data[...] = rng.uniform(0.5, 2.0, shape[1])
    running = layer.running_mean.data.copy(), layer.running_var.data.copy()
    layer.eval()
    x, grad = batch(shape), batch(shape, seed=1)
    out, dx, dw, db = run(layer, x, grad)
    w, b = layer.weight.data, layer.bias.data
    np.testing.assert_allclose(out, numpy_forward(x, w, b, *running), rtol=1e-12, atol=1e-12)
    for got, expected in zip((dx, dw, db), numpy_eval_grads(x, w, *running, grad)):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(layer.running_mean.data, running[0])  # eval changes nothing
    assert layer.num_batches_tracked.item() == 0


@pytest.mark.parametrize("fused", [False, True], ids=["composed", "fused"])
@pytest.mark.parametrize("momentum", [0.1, None], ids=["momentum=0.1", "cumulative"])
@pytest.mark.parametrize("cls, shape", SHAPES, ids=IDS)
def test_running_statistics_after_several_steps(cls, shape, momentum, fused):
    layer = make_layer(cls, shape[1], fused, momentum=momentum)
    running_mean, running_var = np.zeros(shape[1]), np.ones(shape[1])
    batch_means, unbiased_vars = [], []
    n = int(np.prod(shape)) // shape[1]
    for step in range(1, 6):
        x = batch(shape, seed=step) * step  # batches with different statistics
        layer(x)
        mean, var = numpy_batch_stats(x)
        batch_means.append(mean)
        unbiased_vars.append(var * n / (n - 1))
        factor = 1 / step if momentum is None else momentum
        running_mean = (1 - factor) * running_mean + factor * mean
        running_var = (1 - factor) * running_var + factor * unbiased_vars[-1]
        assert layer.num_batches_tracked.item() == step
    np.testing.assert_allclose(layer.running_mean.data, running_mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.running_var.data, running_var, rtol=1e-12)
    if momentum is None:  # the seed's "average of the training batches' means and variances"
        np.testing.assert_allclose(layer.running_mean.data, np.mean(batch_means, axis=0),
                                   rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(layer.running_var.data, np.mean(unbiased_vars, axis=0),
                                   rtol=1e-12)


# -- composed and fused are the same function ---------------------------------------------------------

@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape, scale, offset", [
    ((8, 3), 1.0, 0.0), ((4, 3, 5), 3.0, 10.0), ((3, 2, 4, 3), 0.01, -5.0), ((64, 16), 1e3, 1e4)])
def test_composed_and_fused_agree_to_1e_10(shape, scale, offset, training):
    x = batch(shape) * scale + offset
    grad = batch(shape, seed=1)
    cls = nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d
    results = []
    for fused in (False, True):
        layer = make_layer(cls, shape[1], fused)
        layer.running_mean.data[...] = offset
        layer.running_var.data[...] = scale ** 2
        layer.train(training)
        results.append(run(layer, x, grad) + (layer.running_mean.data, layer.running_var.data))
    names = ["output", "x.grad", "weight.grad", "bias.grad", "running_mean", "running_var"]
    for name, composed, fused in zip(names, *results):
        np.testing.assert_allclose(fused, composed, rtol=0, atol=1e-10 * max(1, np.abs(
            composed).max()), err_msg=name)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 5), st.integers(1, 4), st.lists(st.integers(1, 3), max_size=2),
       st.floats(1e-3, 1e3), st.floats(-1e3, 1e3), st.booleans(), st.integers(0, 2**32 - 1))
def test_composed_and_fused_agree_on_any_shape(n, channels, spatial, scale, offset, training,
                                               seed):
    rng = np.random.default_rng(seed)
    shape = (n, channels, *spatial)
    x = rng.standard_normal(shape) * scale + offset
    grad = rng.standard_normal(shape)
    weight, bias = rng.uniform(0.5, 1.5, channels), rng.standard_normal(channels)
    running = rng.standard_normal(channels) * scale + offset, rng.uniform(0.5, 2, channels)
    results = []
    for fused in (False, True):
        tensors = [mg.tensor(a, requires_grad=True) for a in (x, weight, bias)]
        stats = [mg.tensor(a) for a in running]
        out = F.batch_norm(tensors[0], *stats, *tensors[1:], training=training, fused=fused)
        out.backward(mg.tensor(grad))
        results.append([out.data] + [t.grad.data for t in tensors] + [s.data for s in stats])
    # The composed graph's x - mean holds the mean rounded to float64, an error of half a
    # spacing at the offset, over the spread; the fused op also removes that rounding.
    rounding = np.spacing(abs(offset) + 10 * scale) / scale
    for composed, fused in zip(*results):
        np.testing.assert_allclose(fused, composed, rtol=1e-10 + 10 * rounding,
                                   atol=1e-10 + 10 * rounding * np.abs(composed).max())


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no-affine"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("fused", [False, True], ids=["composed", "fused"])
@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 4), (2, 2, 3, 2)], ids=["NC", "NCL", "NCHW"])
def test_gradcheck_and_gradgradcheck(shape, fused, training, affine):
    rng = np.random.default_rng(0)
    channels = shape[1]
    running_mean, running_var = rng.standard_normal(channels), rng.uniform(0.5, 2, channels)
    x = mg.tensor(batch(shape), requires_grad=True)
    params = [mg.tensor(rng.uniform(0.5, 1.5, channels), requires_grad=True),
              mg.tensor(rng.standard_normal(channels), requires_grad=True)] if affine else []

    def bn(x, *params):
        return F.batch_norm(x, mg.tensor(running_mean), mg.tensor(running_var), *params,
                            training=training, fused=fused)

    assert mg.gradcheck(bn, [x] + params)
    assert mg.gradgradcheck(bn, [x] + params)


@pytest.mark.parametrize("fused", [False, True], ids=["composed", "fused"])
def test_second_derivative_matches_between_composed_and_fused(fused):
    """d/dx of <v, d loss/dx>: a create_graph backward through each implementation, compared
    with the composed graph differentiated twice."""
    shape = (6, 3)
    rng = np.random.default_rng(0)
    weight, v = rng.uniform(0.5, 1.5, 3), rng.standard_normal(shape)
    results = []
    for use_fused in (False, fused):
        x = mg.tensor(batch(shape), requires_grad=True)
        w = mg.tensor(weight, requires_grad=True)
        out = F.batch_norm(x, None, None, w, training=True, fused=use_fused)
        (dx,) = mg.grad((out * out * out).sum(), [x], create_graph=True)
        results.append(mg.grad((dx * mg.tensor(v)).sum(), [x, w]))
    for composed, other in zip(*results):
        np.testing.assert_allclose(other.data, composed.data, rtol=1e-10, atol=1e-12)


def test_fused_backward_can_run_twice_on_the_same_graph():
    x = mg.tensor(batch((16, 4)), requires_grad=True)
    out = F.batch_norm(x, None, None, training=True, fused=True)
    grad = mg.tensor(batch((16, 4), seed=1))
    first = mg.grad(out, [x], grad, retain_graph=True)[0].data.copy()
    second = mg.grad(out, [x], grad)[0].data
    np.testing.assert_array_equal(first, second)


# -- the seed's claims, as properties ----------------------------------------------------------------

@pytest.mark.parametrize("fused", [False, True], ids=["composed", "fused"])
def test_a_linear_bias_before_batchnorm_gets_zero_gradient(fused):
    """beta replaces the bias: shifting every value of a channel is undone by the mean."""
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4, fused=fused), nn.ReLU(),
                          nn.Linear(4, 3))
    x = np.random.default_rng(0).standard_normal((16, 5))
    F.cross_entropy(model(x), np.arange(16) % 3).backward()
    assert np.abs(model[0].bias.grad.data).max() < 1e-12
    assert np.abs(model[0].weight.grad.data).max() > 1e-3  # the weights do learn


@pytest.mark.parametrize("fused", [False, True], ids=["composed", "fused"])
def test_eval_handles_a_batch_of_one_with_the_running_statistics(fused):
    layer = make_layer(nn.BatchNorm1d, 3, fused)
    for step in range(3):
        layer(batch((10, 3), seed=step))
    layer.eval()
    single = batch((1, 3), seed=9)
    expected = numpy_forward(single, layer.weight.data, layer.bias.data,
                             layer.running_mean.data, layer.running_var.data)
    np.testing.assert_allclose(layer(single).data, expected, rtol=1e-12)


def test_composed_graph_shows_mean_var_sqrt_and_fused_is_one_node():
    x = mg.tensor(batch((4, 3)), requires_grad=True)
    composed = nn.BatchNorm1d(3)(x)
    names = {node.name for node in mg.autograd.topological_order(composed.grad_fn)}
    assert {"Mean", "Var", "Sqrt", "Sub", "Mul", "Add"} <= names
    fused = nn.BatchNorm1d(3, fused=True)(x)
    assert [n.name for n in mg.autograd.topological_order(fused.grad_fn)] == ["FusedBatchNorm"]


@pytest.mark.parametrize("fused", [False, True], ids=["composed", "fused"])
def test_running_statistics_stay_out_of_the_graph(fused):
    layer = nn.BatchNorm1d(3, fused=fused)
    out = layer(mg.tensor(batch((4, 3)), requires_grad=True))
    for buffer in layer.buffers():
        assert not buffer.requires_grad and buffer.grad_fn is None
    out.sum().backward()
    assert layer.running_mean.grad is None


# -- options ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("fused", [False, True], ids=["composed", "fused"])
def test_without_running_statistics_eval_uses_the_batch(fused):
    layer = make_layer(nn.BatchNorm1d, 3, fused, track_running_stats=False)
    assert layer.running_mean is None and list(layer.buffers()) == []
    assert "running_mean" not in layer.state_dict()
    x = batch((6, 3))
    train_out = layer(x).data
    np.testing.assert_array_equal(layer.eval()(x).data, train_out)
    np.testing.assert_allclose(train_out, numpy_forward(x, layer.weight.data, layer.bias.data,
                                                        *numpy_batch_stats(x)), rtol=1e-12)


@pytest.mark.parametrize("fused", [False, True], ids=["composed", "fused"])
def test_without_affine_there_are_no_parameters(fused):
    layer = nn.BatchNorm2d(2, affine=False, fused=fused)
    assert layer.weight is None and layer.bias is None and list(layer.parameters()) == []
    x = batch((3, 2, 2, 2))
    expected = numpy_forward(x, np.ones(2), np.zeros(2), *numpy_batch_stats(x))
    np.testing.assert_allclose(layer(x).data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fused", [False, True], ids=["composed", "fused"])
def test_float32_stays_float32(fused):
    layer = make_layer(nn.BatchNorm2d, 3, fused).to(np.float32)
    x64 = batch((4, 3, 2, 2))
    x = mg.tensor(x64, dtype=np.float32, requires_grad=True)
    out = layer(x)
    out.backward(mg.tensor(np.ones(out.shape, dtype=np.float32)))
    assert out.dtype == x.grad.dtype == np.float32
    assert layer.weight.grad.dtype == layer.running_var.dtype == np.float32
    reference = numpy_forward(x64, layer.weight.data.astype(np.float64),
                              layer.bias.data.astype(np.float64), *numpy_batch_stats(x64))
    np.testing.assert_allclose(out.data, reference, rtol=1e-5, atol=1e-5)


def test_repr_and_attributes():
    layer = nn.BatchNorm2d(4, eps=1e-3, momentum=None, fused=True)
    assert repr(layer) == ("BatchNorm2d(4, eps=0.001, momentum=None, affine=True, "
                           "track_running_stats=True, fused=True)")
    assert (layer.eps, layer.momentum, layer.affine, layer.track_running_stats, layer.fused) == (
        1e-3, None, True, True, True)
    np.testing.assert_array_equal(layer.running_var.data, np.ones(4))
    assert layer.num_batches_tracked.dtype == np.int64


# -- bad input: a clear error, and nothing changed --------------------------------------------------

def _state(layer):
    return {name: value.copy() for name, value in layer.state_dict().items()}


@pytest.mark.parametrize("fused", [False, True], ids=["composed", "fused"])
@pytest.mark.parametrize("cls, shape, message", [
    (nn.BatchNorm1d, (4, 5), r"BatchNorm1d\(3\): the input must be of shape \(N, C\) or "
                             r"\(N, C, L\) with C=3, got Tensor of shape \(4, 5\)"),
    (nn.BatchNorm1d, (2, 3, 4, 4), r"BatchNorm1d\(3\).*got Tensor of shape \(2, 3, 4, 4\)"),
    (nn.BatchNorm1d, (3,), r"BatchNorm1d\(3\).*got Tensor of shape \(3,\)"),
    (nn.BatchNorm2d, (4, 3, 5), r"BatchNorm2d\(3\): the input must be of shape \(N, C, H, W\)"),
    (nn.BatchNorm2d, (2, 4, 2, 2), r"BatchNorm2d\(3\).*with C=3, got Tensor of shape "
                                   r"\(2, 4, 2, 2\)"),
    (nn.BatchNorm1d, (1, 3), r"Expected more than 1 value per channel when training, got input "
                             r"size \(1, 3\)"),
    (nn.BatchNorm2d, (1, 3, 1, 1), "Expected more than 1 value per channel when training"),
])
def test_bad_input_raises_and_leaves_the_layer_unchanged(cls, shape, message, fused):
    layer = make_layer(cls, 3, fused)
    layer(batch((4, 3) if cls is nn.BatchNorm1d else (4, 3, 2, 2)))  # some history
    before = _state(layer)
    with pytest.raises(ValueError, match=message):
        layer(np.ones(shape))
    for name, value in _state(layer).items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_a_batch_of_one_value_per_channel_is_fine_with_length():
    layer = nn.BatchNorm1d(3)
    assert layer(batch((1, 3, 4))).shape == (1, 3, 4)  # N=1 but 4 values per channel


@pytest.mark.parametrize("fused", [False, True], ids=["composed", "fused"])
def test_functional_accepts_numpy_running_statistics_and_updates_them(fused):
    x = batch((6, 3))
    running_mean, running_var = np.zeros(3), np.ones(3)
    F.batch_norm(x, running_mean, running_var, training=True, momentum=0.5, fused=fused)
    mean, var = numpy_batch_stats(x)
    np.testing.assert_allclose(running_mean, 0.5 * mean, rtol=1e-12)
    np.testing.assert_allclose(running_var, 0.5 + 0.5 * var * 6 / 5, rtol=1e-12)


def test_functional_argument_errors():
    x = mg.tensor(batch((4, 3)))
    with pytest.raises(ValueError, match=r"running_mean has shape \(4,\), expected \(3,\)"):
        F.batch_norm(x, mg.tensor(np.zeros(4)), mg.tensor(np.ones(4)), training=True)
    with pytest.raises(ValueError, match="running_mean and running_var are required"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match="momentum must be a number"):
        F.batch_norm(x, None, None, training=True, momentum=None)
    with pytest.raises(TypeError, match="the input is float32 but weight is float64"):
        F.batch_norm(x.astype(np.float32), None, None, mg.tensor(np.ones(3)), training=True)
    with pytest.raises(ValueError, match=r"momentum must be a probability in \[0, 1\]"):
        nn.BatchNorm1d(3, momentum=2.0)
