"""The inference experiment's helpers on small planted cases: the population statistics, the
gap of running statistics to them, Algorithm 2 (statistics recomputed with frozen weights) and
batch-1 evaluation compute what they claim. (The experiment's numbers belong to its runs.)"""
import numpy as np
import pytest

pytest.importorskip("sklearn")

import minigrad as mg  # noqa: E402
from minigrad import nn  # noqa: E402
from minigrad.app.experiments import inference  # noqa: E402


def planted_network():
    """BatchNorm, then a bias-free Linear that doubles its input, then a second BatchNorm."""
    double = nn.Linear(2, 2, bias=False)
    double.weight.data[...] = 2 * np.eye(2)
    return nn.Sequential(nn.BatchNorm1d(2), double, nn.BatchNorm1d(2))


def test_population_statistics_standardise_each_layer_with_its_own():
    rng = np.random.default_rng(0)
    x = rng.normal([3.0, -1.0], [2.0, 0.5], size=(50, 2))
    network = planted_network()
    (mean1, var1), (mean2, var2) = inference.population_statistics(network, x)
    np.testing.assert_allclose(mean1, x.mean(axis=0))
    np.testing.assert_allclose(var1, x.var(axis=0, ddof=1))
    # The second BatchNorm sees 2 * x standardised (train mode: the biased variance, + eps).
    by_hand = 2 * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-5)
    np.testing.assert_allclose(mean2, 0, atol=1e-12)
    np.testing.assert_allclose(var2, by_hand.var(axis=0, ddof=1))
    # measuring moved no running statistic of the network itself
    np.testing.assert_array_equal(network[0].running_mean.data, 0)


def test_with_population_statistics_installs_them_on_a_copy():
    x = np.random.default_rng(1).normal(size=(40, 2))
    network = planted_network()
    ideal = inference.with_population_statistics(network, x)
    for layer, (mean, var) in zip(inference._batch_norms(ideal),
                                  inference.population_statistics(network, x)):
        np.testing.assert_allclose(layer.running_mean.data, mean)
        np.testing.assert_allclose(layer.running_var.data, var)
    assert not ideal.training
    np.testing.assert_array_equal(network[2].running_var.data, 1)


def test_statistics_gap_in_population_stds_and_variance_ratio():
    layer = nn.BatchNorm1d(2)
    mean, var = np.array([1.0, -2.0]), np.array([4.0, 9.0])
    layer.running_mean.data[...] = mean + np.array([0.5, -0.5]) * np.sqrt(var)
    layer.running_var.data[...] = var * np.array([1.1, 0.9])
    mean_gap, var_gap = inference.statistics_gap(layer, mean, var)
    assert mean_gap == pytest.approx(0.5)
    assert var_gap == pytest.approx(0.1)
    layer.running_mean.data[...], layer.running_var.data[...] = mean, var
    assert inference.statistics_gap(layer, mean, var) == (0.0, 0.0)


def test_algorithm_2_averages_batch_statistics_with_frozen_weights():
    """Ioffe & Szegedy's Algorithm 2: E[x] is the mean of the batch means, Var[x] the mean of
    the unbiased batch variances -- on a copy; the trained network keeps its own."""
    rng = np.random.default_rng(2)
    batches = [rng.normal(i, 1 + i, size=(8, 3)) for i in range(4)]
    network = nn.Sequential(nn.BatchNorm1d(3))
    network[0].running_mean.data[...] = 7.0  # as a training run might have left them
    recomputed = inference.algorithm_2(network, [(mg.tensor(b), None) for b in batches])
    layer = recomputed[0]
    np.testing.assert_allclose(layer.running_mean.data,
                               np.mean([b.mean(axis=0) for b in batches], axis=0), rtol=1e-6)
    np.testing.assert_allclose(layer.running_var.data,
                               np.mean([b.var(axis=0, ddof=1) for b in batches], axis=0),
                               rtol=1e-6)
    assert layer.momentum == network[0].momentum == 0.1  # momentum restored
    np.testing.assert_array_equal(network[0].running_mean.data, 7.0)


def test_one_at_a_time_matches_eval_mode_on_the_whole_batch():
    """In eval mode every sample is normalised by the same fixed statistics, so feeding the
    images one by one gives the accuracy of one large batch; the network is left training."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 4)), rng.integers(0, 3, size=30)
    nn.manual_seed(0)
    network = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))
    network[1].running_mean.data[...] = rng.normal(size=5)
    network[1].running_var.data[...] = rng.uniform(0.5, 2, size=5)
    with mg.no_grad():
        whole = (network.eval()(mg.tensor(x)).data.argmax(axis=1) == y).mean()
    network.train()
    assert inference.one_at_a_time(network, x, y) == pytest.approx(whole)
    assert network.training
