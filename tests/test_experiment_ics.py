"""The ics experiment's instruments on small planted cases: the noisy-BN layer, the probe that
normalises with a training batch's statistics, Santurkar's gradient-based ICS and the shift
measures. (The experiment's numbers belong to its full run, not to tests.)"""
import copy

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.app.experiments import ics
from minigrad.app.experiments.common import input_of

torch = pytest.importorskip("torch")


# ----------------------------------------------------------------------------------------------
# NoisyShift: a per-unit scale and shift, redrawn at every training step
# ----------------------------------------------------------------------------------------------

def test_noisy_shift_is_one_affine_map_per_unit_shared_by_the_batch():
    layer = ics.NoisyShift(4, shift=1.0, scale_range=(0.5, 1.5), seed=3)
    x = np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 2.0, -1.0, 3.0], [2.0, 4.0, -2.0, 6.0]])
    y = layer(mg.tensor(x)).data
    shift = y[0]  # row 0 is x = 0
    scale = (y[1] - y[0]) / x[1]
    assert np.allclose(shift, layer.shift) and np.allclose(scale, layer.scale)
    assert np.allclose(y[2], 2 * x[1] * scale + shift)  # the same map for every row
    assert np.all((-1.0 <= layer.shift) & (layer.shift <= 1.0))
    assert np.all((0.5 <= layer.scale) & (layer.scale <= 1.5))


def test_noisy_shift_redraws_every_training_step_unless_frozen():
    layer = ics.NoisyShift(50, seed=0)
    x = mg.tensor(np.ones((2, 50)))
    first, second = layer(x).data, layer(x).data
    assert not np.allclose(first, second)  # time-varying: a new draw per step
    layer.frozen = True
    assert np.array_equal(layer(x).data, layer(x).data)


def test_noisy_shift_is_its_mean_in_eval_mode():
    layer = ics.NoisyShift(3, scale_range=(0.5, 1.5)).eval()
    x = np.arange(6.0).reshape(2, 3)
    assert np.array_equal(layer(mg.tensor(x)).data, x)
    wide = ics.NoisyShift(3, scale_range=(1.0, 3.0)).eval()  # mean scale 2
    assert np.allclose(wide(mg.tensor(x)).data, 2 * x)


def test_noisy_network_is_batchnorm_with_noise_after_each_bn():
    plain, noisy = ics.network("BatchNorm", 0), ics.network("noisy BN", 0)
    kinds = [type(m).__name__ for m in noisy]
    assert kinds.count("NoisyShift") == kinds.count("BatchNorm1d") == 3
    assert all(kinds[i + 1] == "NoisyShift" for i, k in enumerate(kinds) if k == "BatchNorm1d")
    # same initial weights: the ablation changes only the noise
    for a, b in zip(plain.parameters(), noisy.parameters()):
        assert np.array_equal(a.data, b.data)


# ----------------------------------------------------------------------------------------------
# probe_layers: the probe normalised with a training batch's statistics, not its own
# ----------------------------------------------------------------------------------------------

def one_unit_bn_network():
    """x -> 1*x -> BatchNorm (gamma 1, beta 0) -> sigmoid."""
    linear = nn.Linear(1, 1, bias=False)
    linear.weight.data = np.ones((1, 1))
    return nn.Sequential(linear, nn.BatchNorm1d(1), nn.Sigmoid())


def test_probe_is_normalised_with_the_training_batch_not_with_itself():
    model = one_unit_bn_network()
    batch = np.array([[-1.0], [1.0]])  # mean 0, variance 1
    probe = np.array([[2.0], [4.0]])   # standardised on itself it would be -1, 1
    [(pre, post)] = ics.probe_layers(model, probe, batch)
    eps = model[1].eps
    assert np.allclose(pre, probe)
    assert np.allclose(post, probe / np.sqrt(1 + eps))


def test_probe_equals_train_mode_when_the_probe_is_the_batch():
    model = ics.network("BatchNorm", 1)
    x = np.random.default_rng(0).normal(size=(32, 64))
    running = model[1].running_mean.data.copy()
    sigmoids = [m for m in model if isinstance(m, nn.Sigmoid)]
    found = ics.probe_layers(model, x, x)
    assert len(found) == 3
    for sigmoid, (pre, post) in zip(sigmoids, found):
        scratch = copy.deepcopy(model).train()
        index = list(model).index(sigmoid)
        assert np.allclose(post, input_of(scratch, scratch[index], x), atol=1e-10)
        assert np.allclose(pre, input_of(scratch, scratch[index - 1], x), atol=1e-10)
    assert np.array_equal(model[1].running_mean.data, running)  # the model is untouched


def test_probe_without_normalisation_is_the_plain_forward():
    model = ics.network("no norm", 2)
    probe, batch = np.random.default_rng(1).normal(size=(2, 10, 64))
    last = [m for m in model if isinstance(m, nn.Sigmoid)][-1]
    pre, post = ics.probe_layers(model, probe, batch)[-1]
    assert np.array_equal(pre, post)
    assert np.allclose(post, input_of(model, last, probe))


def test_probe_applies_the_current_noise_draw():
    model = ics.network("noisy BN", 0)
    noise = model[2]
    assert isinstance(noise, ics.NoisyShift)
    x = np.random.default_rng(2).normal(size=(16, 64))
    post = ics.probe_layers(model, x, x)[0][1]
    clean = ics.probe_layers(ics.network("BatchNorm", 0), x, x)[0][1]
    assert np.allclose(post, clean * noise.scale + noise.shift)


# ----------------------------------------------------------------------------------------------
# gradient_ics: Santurkar's Definition 2.1
# ----------------------------------------------------------------------------------------------

def test_gradient_ics_matches_the_definition_computed_in_torch():
    """G and G' of the middle Linear of Linear-sigmoid-Linear-sigmoid-Linear, with G' after
    the first Linear took its SGD step, computed independently in PyTorch."""
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Sigmoid(), nn.Linear(4, 3), nn.Sigmoid(),
                          nn.Linear(3, 2))
    rng = np.random.default_rng(0)
    x, y, lr = rng.normal(size=(8, 5)), rng.integers(0, 2, 8), 0.7

    weights = [torch.tensor(model[i].weight.data, requires_grad=True) for i in (0, 2, 4)]
    biases = [torch.tensor(model[i].bias.data, requires_grad=True) for i in (0, 2, 4)]

    def middle_gradient(w0, b0):
        h = torch.sigmoid(torch.tensor(x) @ w0.T + b0)
        h = torch.sigmoid(h @ weights[1].T + biases[1])
        loss = torch.nn.functional.cross_entropy(h @ weights[2].T + biases[2], torch.tensor(y))
        return torch.autograd.grad(loss, [w0, b0, weights[1]])

    g0w, g0b, g = middle_gradient(weights[0], biases[0])
    stepped_w = (weights[0] - lr * g0w).detach().requires_grad_()
    stepped_b = (biases[0] - lr * g0b).detach().requires_grad_()
    g_after = middle_gradient(stepped_w, stepped_b)[2]
    expected = float(torch.linalg.norm(g - g_after))
    cosine = float(torch.sum(g * g_after) / (torch.linalg.norm(g) * torch.linalg.norm(g_after)))

    before = [p.data.copy() for p in model.parameters()]
    distance, relative, cos = ics.gradient_ics(model, 2, x, y, lr)
    assert distance > 0
    assert distance == pytest.approx(expected, rel=1e-8)
    assert relative == pytest.approx(expected / float(torch.linalg.norm(g)), rel=1e-8)
    assert cos == pytest.approx(cosine, rel=1e-10)
    assert all(np.array_equal(a, p.data) for a, p in zip(before, model.parameters()))


def test_gradient_ics_is_zero_without_an_update_below():
    model = ics.network("BatchNorm", 0)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(20, 64)), rng.integers(0, 10, 20)
    distance, relative, cos = ics.gradient_ics(model, 4, x, y, lr=0.0)  # no step
    assert distance == 0 and relative == 0 and cos == pytest.approx(1.0)
    distance, _, cos = ics.gradient_ics(model, 0, x, y, lr=0.5)  # no layer below the first
    assert distance == 0 and cos == pytest.approx(1.0)
    assert ics.gradient_ics(model, 4, x, y, lr=0.5)[0] > 0


def test_gradient_ics_keeps_the_noise_of_the_step():
    """With the noise frozen on the copy, lr 0 gives G' = G exactly (a new draw would not)."""
    model = ics.network("noisy BN", 0)
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(20, 64)), rng.integers(0, 10, 20)
    drawn = model[2].shift.copy()
    second_linear = [i for i, m in enumerate(model) if isinstance(m, nn.Linear)][1]
    assert ics.gradient_ics(model, second_linear, x, y, lr=0.0)[0] == 0
    assert np.array_equal(model[2].shift, drawn) and not model[2].frozen


# ----------------------------------------------------------------------------------------------
# The shift measures
# ----------------------------------------------------------------------------------------------

def planted_percentiles(step_change, records=6, units=2, spread=2.0):
    """records x units x 3 percentiles whose median moves by step_change[t] between records,
    with a constant 15th-85th spread."""
    median = np.concatenate([[0.0], np.cumsum(step_change)])[:records]
    median = np.repeat(median[:, None], units, axis=1)
    return np.stack([median - spread / 2, median, median + spread / 2], axis=2)


def test_a_steady_drift_moves_its_rate_and_drifts_its_total():
    p = planted_percentiles([0.1] * 5)
    assert ics.movement(p) == pytest.approx(0.1)
    assert ics.drift(p) == pytest.approx(0.5)
    assert ics.relative_movement(p) == pytest.approx(0.1 / 2.0)  # in spreads of 2


def test_jitter_moves_but_does_not_drift():
    p = planted_percentiles([0.3, -0.3, 0.3, -0.3, 0.3, -0.3], records=5)
    assert ics.movement(p) == pytest.approx(0.3)
    assert ics.drift(p) == pytest.approx(0.0)


def test_relative_movement_does_not_depend_on_the_scale():
    p = planted_percentiles([0.1, 0.4, -0.2, 0.0, 0.3])
    assert ics.relative_movement(1000 * p) == pytest.approx(ics.relative_movement(p))
