"""The landscape experiment's probes compute what they claim, on planted cases with known
answers (the experiment's own numbers are checked only for shape, in test_experiments.py)."""
import math

import numpy as np
import pytest

from minigrad import nn, optim
from minigrad.app.experiments import landscape


def quadratic(c):
    """A loss c * ||W||^2 of a one-Linear network, whatever the data: its gradient is 2cW, so a
    step of eta along -grad gives W (1 - 2c eta), and the gradient changes by 2c eta ||g||."""
    return lambda network, x, y: (network[0].weight * network[0].weight).sum() * c


def linear_network(dtype=np.float64, seed=0):
    return nn.Sequential(nn.Linear(4, 3, bias=False, dtype=dtype, rng=seed))


def test_probe_on_a_quadratic_gives_its_curvature():
    c, steps = 0.7, (0.05, 0.1, 0.2, 0.4)
    network = linear_network()
    w = network[0].weight.data.copy()
    found = landscape.probe_landscape(network, None, None, steps, loss_fn=quadratic(c))
    g_norm = 2 * c * np.linalg.norm(w)
    assert found["loss"] == pytest.approx(c * np.sum(w * w))
    assert found["gradient_norm"] == pytest.approx(g_norm)
    expected = [c * np.sum(w * w) * (1 - 2 * c * eta) ** 2 for eta in steps]
    assert found["step_losses"] == pytest.approx(expected)
    assert found["loss_variation"] == pytest.approx(max(expected) - min(expected))
    assert found["gradient_changes"] == pytest.approx([2 * c * eta * g_norm for eta in steps])
    assert found["gradient_change"] == pytest.approx(2 * c * steps[-1] * g_norm)
    assert found["beta"] == pytest.approx(2 * c)  # a quadratic's beta is its curvature
    assert found["capped"] == 0
    np.testing.assert_array_equal(network[0].weight.data, w)  # the probe ran on a copy
    assert network[0].weight.grad is None


def test_probe_leaves_batchnorm_running_statistics_alone():
    network = nn.Sequential(nn.Linear(4, 3, bias=False, dtype=np.float64, rng=0),
                            nn.BatchNorm1d(3, dtype=np.float64), nn.Linear(3, 2, rng=1,
                                                                           dtype=np.float64))
    x = np.random.default_rng(0).normal(size=(16, 4))
    y = np.arange(16) % 2
    before = {k: v.copy() for k, v in network.state_dict().items()}
    found = landscape.probe_landscape(network, x, y)
    after = network.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert found["loss_variation"] > 0 and found["beta"] > 0


def test_probe_caps_what_is_not_finite():
    # curvature 1e30 in float32: the loss is past the cap at once, and a step overflows to inf
    network = linear_network(np.float32)
    found = landscape.probe_landscape(network, None, None, (0.05, 0.1), loss_fn=quadratic(1e30))
    assert found["capped"] > 0
    assert found["step_losses"] == [landscape.LOSS_CAP] * 2
    assert all(math.isfinite(v) for v in found["gradient_changes"] + [found["beta"]])


def batchnorm_network(eps=1e-5, seed=0):
    return nn.Sequential(nn.Linear(5, 6, bias=False, dtype=np.float64, rng=seed),
                         nn.BatchNorm1d(6, eps=eps, dtype=np.float64), nn.ReLU(),
                         nn.Linear(6, 3, dtype=np.float64, rng=seed + 1))


def plain_network(seed=0):
    return nn.Sequential(nn.Linear(5, 6, dtype=np.float64, rng=seed), nn.ReLU(),
                         nn.Linear(6, 3, dtype=np.float64, rng=seed + 1))


def data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)), rng.integers(0, 3, size=n)


@pytest.mark.parametrize("a", [0.3, 3.0, 10.0])
def test_a_linear_followed_by_batchnorm_is_scale_invariant(a):
    x, y = data()
    # eps ~ 0 next to the units' variances: what is left is float64 rounding
    found = landscape.scale_invariance(batchnorm_network(eps=1e-300), 0, a, x, y)
    assert found["loss_change"] < 1e-12
    assert found["gradient_error"] < 1e-10  # a grad L(aW) = grad L(W)
    assert found["other_error"] < 1e-10     # the other parameters' gradients do not move


def test_eps_breaks_the_invariance_by_about_eps_over_the_variance():
    # x_hat = z / sqrt(var + eps) becomes z / sqrt(var + eps / a^2): a relative change of about
    # (1 - 1/a^2) eps / (2 var) -- the same order in the gradient
    x, y = data()
    a, eps = 3.0, 1e-4
    network = batchnorm_network(eps=eps)
    var = (x @ network[0].weight.data.T).var(axis=0)
    found = landscape.scale_invariance(network, 0, a, x, y)
    scale = (1 - 1 / a ** 2) * eps / (2 * var.min())
    assert scale / 100 < found["gradient_error"] < 100 * scale


def test_without_batchnorm_scaling_a_weight_changes_the_function():
    x, y = data()
    found = landscape.scale_invariance(plain_network(), 0, 3.0, x, y)
    assert found["loss_change"] > 1e-3 and found["gradient_error"] > 1e-2
    # the output layer of a BatchNorm network has no BatchNorm after it: not invariant either
    assert landscape.scale_invariance(batchnorm_network(), 1, 3.0, x, y)["gradient_error"] > 1e-2


def test_layer_norms_and_the_orthogonal_gradient():
    x, y = data()
    network = batchnorm_network(eps=1e-300)
    _, grads = landscape.gradients(network, x, y)
    assert all(p.grad is None for p in network.parameters())  # cleared again
    first, head = landscape.layer_norms(network, grads, lr=0.5)
    w, g = network[0].weight.data, grads[0]
    assert first["weight_norm"] == pytest.approx(np.linalg.norm(w))
    assert first["gradient_norm"] == pytest.approx(np.linalg.norm(g))
    assert first["effective_lr"] == pytest.approx(0.5 / np.sum(w * w))
    assert first["relative_update"] == pytest.approx(0.5 * np.linalg.norm(g) / np.linalg.norm(w))
    assert abs(first["cosine"]) < 1e-10      # W . grad L(W) = d/da L(aW) at a = 1 = 0
    assert abs(head["cosine"]) > 1e-3        # the output layer's gradient is not orthogonal


def test_sgd_on_a_scale_invariant_weight_only_grows_it():
    """||W - lr g||^2 = ||W||^2 + lr^2 ||g||^2 when g is orthogonal to W: the weight grows and
    the effective learning rate lr / ||W||^2 falls by itself."""
    x, y = data()
    network = batchnorm_network(eps=1e-300)
    weight = network[0].weight
    w = weight.data.copy()
    _, grads = landscape.gradients(network, x, y)
    lr = 2.0
    optimizer = optim.SGD(network.parameters(), lr=lr)
    loss = landscape.cross_entropy_loss(network, x, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    grown = np.sum(weight.data ** 2)
    assert grown == pytest.approx(np.sum(w * w) + lr ** 2 * np.sum(grads[0] ** 2))
    assert grown > np.sum(w * w)


def test_linear_layers_in_order():
    network = batchnorm_network()
    assert landscape.linear_layers(network) == [network[0], network[3]]
