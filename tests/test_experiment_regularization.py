"""The regularization experiment's helpers on small planted cases: population BN is BatchNorm
when the batch is the population (values and gradients), it is scale invariant and free of
batch noise, the refresh sets each layer's moments from its own input, the recomputed-
statistics evaluation restores what it changes, and the calibration error of known cases."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.app.experiments import regularization as reg


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    # correlated features with non-zero means, as a layer's input would be
    x = rng.normal(size=(64, 5)) @ rng.normal(size=(5, 5)) + rng.normal(size=5)
    return x, rng.integers(0, 3, size=64)


def test_population_layer_is_batchnorm_when_the_batch_is_the_population(data):
    x, _ = data
    nn.manual_seed(0)
    layer = reg.PopulationNormLinear(5, 4)
    layer.weight.data[...] = [1.0, 2.0, 0.5, -1.0]
    layer.bias.data[...] = [0.0, 1.0, -2.0, 3.0]
    layer.set_input_moments(x)
    batchnorm = nn.BatchNorm1d(4)
    batchnorm.weight.data[...], batchnorm.bias.data[...] = layer.weight.data, layer.bias.data
    g = np.random.default_rng(1).normal(size=(64, 4))  # a planted upstream gradient

    ours = layer(mg.Tensor(x))
    (ours * mg.Tensor(g)).sum().backward()
    theirs = batchnorm(layer.linear(mg.Tensor(x)))  # BatchNorm's batch statistics: the same
    np.testing.assert_allclose(ours.data, theirs.data, atol=1e-10)

    # and the gradient flows through the statistics as through BatchNorm's
    w = mg.Tensor(layer.linear.weight.data.copy(), requires_grad=True)
    reference = nn.BatchNorm1d(4)
    reference.weight.data[...], reference.bias.data[...] = layer.weight.data, layer.bias.data
    (reference(mg.Tensor(x) @ w.transpose()) * mg.Tensor(g)).sum().backward()
    np.testing.assert_allclose(layer.linear.weight.grad.data, w.grad.data, atol=1e-9)


def test_population_layer_has_no_batch_noise(data):
    """A sample's output does not depend on the other samples of its batch, in training."""
    x, _ = data
    layer = reg.PopulationNormLinear(5, 3)
    layer.set_input_moments(x)
    layer.train()
    whole = layer(mg.Tensor(x)).data
    np.testing.assert_allclose(layer(mg.Tensor(x[:4])).data, whole[:4], atol=1e-12)
    np.testing.assert_allclose(layer(mg.Tensor(x[10:11])).data, whole[10:11], atol=1e-12)


def test_population_layer_is_scale_invariant_with_orthogonal_gradient(data):
    """As BatchNorm: scaling a row of W changes nothing, so the gradient is orthogonal to W's
    rows (the mean and variance depend on W, and the gradient sees it). Exactly so without
    eps, which is added to the variance."""
    x, _ = data
    layer = reg.PopulationNormLinear(5, 3, eps=1e-14)
    layer.set_input_moments(x)
    before = layer(mg.Tensor(x)).data
    (layer(mg.Tensor(x)) * mg.Tensor(np.random.default_rng(2).normal(size=(64, 3)))).sum() \
        .backward()
    w, grad = layer.linear.weight.data, layer.linear.weight.grad.data
    np.testing.assert_allclose((w * grad).sum(axis=1), 0, atol=1e-9)
    layer.linear.weight.data[...] = w * np.array([[3.0], [0.2], [7.0]])
    np.testing.assert_allclose(layer(mg.Tensor(x)).data, before, atol=1e-9)


def test_row_variances_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(6, 4))
    s = a.T @ a / 6  # a covariance: symmetric, positive semidefinite
    w = mg.Tensor(rng.normal(size=(3, 4)), requires_grad=True)
    g = rng.normal(size=3)
    (reg._RowVariances.apply(w, mg.Tensor(s)) * mg.Tensor(g)).sum().backward()
    np.testing.assert_allclose(reg._RowVariances.apply(w, mg.Tensor(s)).data,
                               np.diag(w.data @ s @ w.data.T), atol=1e-12)
    numeric = np.zeros_like(w.data)
    for i in np.ndindex(w.shape):
        step = np.zeros_like(w.data)
        step[i] = 1e-6
        f = [g @ np.diag((w.data + d) @ s @ (w.data + d).T) for d in (step, -step)]
        numeric[i] = (f[0] - f[1]) / 2e-6
    np.testing.assert_allclose(w.grad.data, numeric, atol=1e-6)


def test_set_input_moments_reports_staleness(data):
    x, _ = data
    layer = reg.PopulationNormLinear(5, 3)
    assert layer.set_input_moments(x) is None  # nothing to compare with the first time
    assert layer.set_input_moments(x) == pytest.approx(0, abs=1e-6)
    # the input's spread doubled: each unit's standard deviation doubles, a change of 1/2 of
    # the new one; the means double too, moving by |mean| / new std
    moved = layer.set_input_moments(2 * x)
    mean, var = layer.output_moments()
    std = np.sqrt(var + layer.eps)
    assert moved == pytest.approx(max(np.max((std - std / 2) / std),
                                      np.max(np.abs(mean / 2) / std)), rel=1e-4)


def test_refresh_population_uses_each_layers_own_input(data):
    x, _ = data
    network = reg.population_mlp((5, 8, 6, 3))
    reg.refresh_population(network, x)
    first, second = network[0], network[2]
    np.testing.assert_allclose(first.input_mean, x.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(first.input_cov, np.cov(x.T, bias=True), atol=1e-10)
    with mg.no_grad():
        hidden = network[1](first(mg.Tensor(x))).data  # what the second layer receives
    np.testing.assert_allclose(second.input_cov, np.cov(hidden.T, bias=True), atol=1e-10)
    # its outputs over the population are then standardised, as BatchNorm's are
    with mg.no_grad():
        out = second(mg.Tensor(hidden)).data
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-8)
    np.testing.assert_allclose(out.var(axis=0), 1, atol=1e-3)  # eps and dead units aside


def test_population_mlp_starts_from_batchnorms_weights():
    nn.manual_seed(5)
    ours = reg.population_mlp((5, 8, 6, 3))
    nn.manual_seed(5)
    theirs = reg.mlp((5, 8, 6, 3), batch_norm=True)
    np.testing.assert_array_equal(ours[0].linear.weight.data, theirs[0].weight.data)
    np.testing.assert_array_equal(ours[2].linear.weight.data, theirs[3].weight.data)
    np.testing.assert_array_equal(ours[4].weight.data, theirs[6].weight.data)


def test_recomputed_statistics_are_the_training_sets_and_are_restored(data):
    x, y = data
    nn.manual_seed(0)
    network = reg.mlp((5, 8, 3), batch_norm=True)
    bn = network[1]
    bn.running_mean.data[...], bn.running_var.data[...] = 5.0, 9.0  # stale on purpose
    network.eval()
    state = {k: np.array(v, copy=True) for k, v in network.state_dict().items()}
    (got,) = reg.scores_with_recomputed_statistics(network, x, [(x, y)])
    for k, v in network.state_dict().items():  # the stale statistics are back
        np.testing.assert_array_equal(np.asarray(v), state[k], err_msg=k)
    assert bn.momentum == 0.1 and not network.training
    # a train-mode pass over the whole set normalises with the same statistics (up to the
    # unbiased variance the running buffer keeps: a factor 64/63)
    with mg.no_grad():
        network.train()
        logits = network(mg.Tensor(x)).data
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert got["loss"] == pytest.approx(-log_p[np.arange(len(y)), y].mean(), rel=1e-2)


def test_expected_calibration_error_planted_cases():
    labels = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1])
    certain = np.tile([1.0, 0.0], (10, 1))  # always sure of class 0, right 7 times in 10
    assert reg.expected_calibration_error(certain, labels) == pytest.approx(0.3)
    # a confidence of 0.7 that is right 70% of the time is calibrated
    seventy = np.tile([0.7, 0.3], (10, 1))
    assert reg.expected_calibration_error(seventy, labels) == pytest.approx(0, abs=1e-12)
    # two bins: 0.95-confident and always right (0.05 off), 0.55-confident and right half
    # the time (0.05 off): 0.05 in all
    p = np.array([[0.95, 0.05]] * 4 + [[0.55, 0.45]] * 4)
    y = np.array([0, 0, 0, 0, 0, 1, 0, 1])
    assert reg.expected_calibration_error(p, y) == pytest.approx(0.05)


def test_scores_of_a_diverged_network_are_capped(data):
    x, y = data
    network = reg.mlp((5, 8, 3))
    network[0].weight.data[...] = np.nan
    assert reg.scores(network, x, y) == reg.CAPPED
    good = reg.scores(reg.mlp((5, 8, 3)), x, y)
    assert 0 <= good["accuracy"] <= 1 and good["loss"] > 0 and 0 <= good["ece"] <= 1
