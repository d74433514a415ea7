"""The batch-size experiment's helpers on small planted cases: ghost BatchNorm is BatchNorm of
each sub-batch, Batch Renormalization computes and differentiates as Ioffe (2017) writes it,
its rmax/dmax schedule, and a diverged run scored at chance. (The experiment's numbers belong
to its full run, not here.)"""
import numpy as np
import pytest

pytest.importorskip("sklearn")

import minigrad as mg  # noqa: E402
from minigrad import nn  # noqa: E402
from minigrad.app.experiments import batch_size as bs  # noqa: E402
from minigrad.app.experiments import common  # noqa: E402

C, EPS = 3, 1e-5


@pytest.fixture(autouse=True)
def float64():
    """Exact comparisons need float64 parameters and tensors."""
    previous = mg.get_default_dtype()
    mg.set_default_dtype(np.float64)
    yield
    mg.set_default_dtype(previous)


def batch(n, seed=0, scale=2.0, shift=1.0):
    rng = np.random.default_rng(seed)
    return rng.normal(shift, scale, (n, C))


def forward_backward(layer, x, upstream):
    """(output, d loss / d input, d loss / d weight, d loss / d bias) for loss = sum(out *
    upstream), in the layer's current mode."""
    xt = mg.Tensor(x, requires_grad=True)
    out = layer(xt)
    (out * upstream).sum().backward()
    return out.data, xt.grad.data, layer.weight.grad.data, layer.bias.grad.data


def planted_affine(layer, seed=1):
    rng = np.random.default_rng(seed)
    layer.weight.data[...] = rng.normal(1, 0.5, C)
    layer.bias.data[...] = rng.normal(0, 0.5, C)


# ----------------------------------------------------------------------------------------------
# Ghost BatchNorm
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fused", [False, True])
def test_one_ghost_batch_is_batchnorm(fused):
    """ghost_size = N: outputs, all gradients, running statistics (over three steps) and the
    eval output are minigrad's BatchNorm1d's."""
    ghost, reference = bs.GhostBatchNorm1d(C, 8), nn.BatchNorm1d(C, fused=fused)
    planted_affine(ghost), planted_affine(reference)
    upstream = batch(8, seed=5)
    for step in range(3):
        x = batch(8, seed=step)
        for got, want in zip(forward_backward(ghost, x, upstream),
                             forward_backward(reference, x, upstream)):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)
        ghost.zero_grad(), reference.zero_grad()
    np.testing.assert_allclose(ghost.running_mean.data, reference.running_mean.data, rtol=1e-12)
    np.testing.assert_allclose(ghost.running_var.data, reference.running_var.data, rtol=1e-12)
    ghost.eval(), reference.eval()
    x = batch(5, seed=9)
    np.testing.assert_allclose(ghost(mg.Tensor(x)).data, reference(mg.Tensor(x)).data,
                               rtol=1e-12)


def test_ghost_batches_are_normalised_separately():
    """N = 3 b: each block of b rows is BatchNorm of that block alone (outputs and input
    gradients), and the running statistics move towards the blocks' average mean and
    average unbiased variance."""
    b, x = 4, batch(12)
    x[4:8] += 10.0  # a block with its own mean: a shared mean would not remove it
    ghost = bs.GhostBatchNorm1d(C, b, momentum=0.5)
    planted_affine(ghost)
    upstream = batch(12, seed=3)
    out, dx, _, _ = forward_backward(ghost, x, upstream)
    for k in range(3):
        rows = slice(k * b, (k + 1) * b)
        block = nn.BatchNorm1d(C)
        planted_affine(block)
        want_out, want_dx, _, _ = forward_backward(block, x[rows], upstream[rows])
        np.testing.assert_allclose(out[rows], want_out, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(dx[rows], want_dx, rtol=1e-9, atol=1e-10)
    blocks = x.reshape(3, b, C)
    np.testing.assert_allclose(ghost.running_mean.data, 0.5 * blocks.mean(axis=(0, 1)))
    np.testing.assert_allclose(ghost.running_var.data,
                               0.5 + 0.5 * blocks.var(axis=1, ddof=1).mean(axis=0))


def test_ghost_running_variance_is_unbiased_for_tiny_batches():
    """With ghost batches of 2 drawn from N(0, 3^2), the average unbiased variance is close to
    9 -- a biased (ddof 0) average would be near 4.5."""
    ghost = bs.GhostBatchNorm1d(C, 2, momentum=1.0)  # momentum 1: the running var is this batch's
    ghost(mg.Tensor(np.random.default_rng(0).normal(0, 3.0, (20000, C))))
    np.testing.assert_allclose(ghost.running_var.data, 9.0, rtol=0.05)


def test_ghost_refuses_batches_it_cannot_cut():
    with pytest.raises(ValueError, match="whole number of ghost batches"):
        bs.GhostBatchNorm1d(C, 4)(mg.Tensor(batch(6)))
    with pytest.raises(ValueError, match="ghost_size must be >= 2"):
        bs.GhostBatchNorm1d(C, 1)


# ----------------------------------------------------------------------------------------------
# Batch Renormalization
# ----------------------------------------------------------------------------------------------

def renorm_with_running(b, rmax, dmax, mean, var):
    layer = bs.BatchRenorm1d(C, b, rmax=rmax, dmax=dmax)
    planted_affine(layer)
    layer.running_mean.data[...] = mean
    layer.running_var.data[...] = var
    return layer


def test_renorm_with_rmax_1_dmax_0_is_ghost_batchnorm():
    x, upstream = batch(8), batch(8, seed=4)
    renorm = renorm_with_running(4, 1.0, 0.0, mean=[5.0, -5.0, 0.0], var=[0.1, 10.0, 1.0])
    ghost = bs.GhostBatchNorm1d(C, 4)
    planted_affine(ghost)
    for got, want in zip(forward_backward(renorm, x, upstream),
                         forward_backward(ghost, x, upstream)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)


def test_renorm_unclipped_trains_with_the_running_statistics():
    """r and d unclipped: x_hat = (x - mu) / sigma with the running mu and sigma, so the
    training output equals the eval output (the point of Batch Renorm), whatever the batch."""
    mean, var = np.array([0.5, 1.5, -1.0]), np.array([2.0, 5.0, 0.5])
    layer = renorm_with_running(2, 1e6, 1e6, mean, var)
    x = batch(6)
    train_out = layer(mg.Tensor(x)).data
    want = (x - mean) / np.sqrt(var + EPS) * layer.weight.data + layer.bias.data
    np.testing.assert_allclose(train_out, want, rtol=1e-9)


def test_renorm_clips_r_and_d():
    """A planted running sigma 100 times the batch's and a running mean far below it: r is
    clipped to 1/rmax and d to +dmax."""
    rmax, dmax, b = 3.0, 5.0, 4
    layer = renorm_with_running(b, rmax, dmax, mean=-1e3, var=1e4 * 4.0)
    x = batch(b, scale=2.0)
    out = layer(mg.Tensor(x)).data
    x_hat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + EPS) / rmax + dmax
    np.testing.assert_allclose(out, x_hat * layer.weight.data + layer.bias.data, rtol=1e-9)


@pytest.mark.parametrize("rmax, dmax", [(1e6, 1e6), (3.0, 5.0), (1.5, 0.1)])
def test_renorm_gradients_are_the_papers(rmax, dmax):
    """The input gradient is Ioffe 2017's Algorithm 1 backward with r and d constants:
    dL/dsigma_B = sum dL/dx_hat (x - mu_B) (-r / sigma_B^2), dL/dmu_B = sum dL/dx_hat (-r /
    sigma_B), dL/dx = dL/dx_hat r / sigma_B + dL/dsigma_B (x - mu_B) / (m sigma_B) +
    dL/dmu_B / m, per ghost batch of m samples; the weight and bias gradients are
    sum dL/dy x_hat and sum dL/dy."""
    b, n = 4, 8
    mean, var = np.array([0.3, 2.0, -1.0]), np.array([1.5, 9.0, 0.2])
    layer = renorm_with_running(b, rmax, dmax, mean, var)
    x, upstream = batch(n), batch(n, seed=7)
    gamma = layer.weight.data.copy()
    _, dx, dw, db = forward_backward(layer, x, upstream)
    sigma = np.sqrt(var + EPS)
    want_dx, x_hats = [], []
    for k in range(n // b):
        xb, g = x[k * b:(k + 1) * b], upstream[k * b:(k + 1) * b]
        mu_b, sigma_b = xb.mean(axis=0), np.sqrt(xb.var(axis=0) + EPS)
        r = np.clip(sigma_b / sigma, 1 / rmax, rmax)
        d = np.clip((mu_b - mean) / sigma, -dmax, dmax)
        x_hats.append((xb - mu_b) / sigma_b * r + d)
        g_hat = g * gamma
        d_sigma = (g_hat * (xb - mu_b)).sum(axis=0) * (-r / sigma_b ** 2)
        d_mu = (g_hat * (-r / sigma_b)).sum(axis=0)
        want_dx.append(g_hat * r / sigma_b + d_sigma * (xb - mu_b) / (b * sigma_b) + d_mu / b)
    np.testing.assert_allclose(dx, np.concatenate(want_dx), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(dw, (upstream * np.concatenate(x_hats)).sum(axis=0), rtol=1e-9)
    np.testing.assert_allclose(db, upstream.sum(axis=0), rtol=1e-12)


def test_renorm_eval_uses_running_statistics():
    mean, var = np.array([0.5, 1.5, -1.0]), np.array([2.0, 5.0, 0.5])
    layer = renorm_with_running(2, 3.0, 5.0, mean, var).eval()
    x = batch(3)  # any batch size in eval, even one not cut into ghost batches
    want = (x - mean) / np.sqrt(var + EPS) * layer.weight.data + layer.bias.data
    np.testing.assert_allclose(layer(mg.Tensor(x)).data, want, rtol=1e-12)


def test_renorm_schedule():
    """BatchNorm (1, 0) until RENORM_START, then linear, reaching (3, 5) at RMAX_END and
    DMAX_END and staying there."""
    assert bs.renorm_limits(0.0) == (1.0, 0.0) == bs.renorm_limits(bs.RENORM_START)
    assert bs.renorm_limits(bs.DMAX_END)[1] == pytest.approx(bs.DMAX)
    assert bs.renorm_limits(bs.RMAX_END)[0] == pytest.approx(bs.RMAX)
    assert bs.renorm_limits(1.0) == (pytest.approx(bs.RMAX), pytest.approx(bs.DMAX))
    grid = [bs.renorm_limits(f) for f in np.linspace(0, 1, 41)]
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(grid, grid[1:]))
    middle = (bs.RENORM_START + bs.RMAX_END) / 2
    assert bs.renorm_limits(middle)[0] == pytest.approx((1 + bs.RMAX) / 2)


def test_ghost_model_layers():
    net = bs.ghost_model(4, renorm=True)
    norms = [m for m in net if isinstance(m, bs.GhostBatchNorm1d)]
    assert len(norms) == 2 and all(isinstance(m, bs.BatchRenorm1d) for m in norms)
    assert all(m.ghost_size == 4 for m in norms)
    assert net(mg.Tensor(np.random.default_rng(0).normal(size=(8, 64)))).shape == (8, 10)


# ----------------------------------------------------------------------------------------------
# Scoring a run
# ----------------------------------------------------------------------------------------------

def test_learning_rate_scales_linearly():
    assert bs.learning_rate(bs.SGD_BATCH) == bs.BASE_LR
    assert bs.learning_rate(2) == pytest.approx(bs.BASE_LR * 2 / bs.SGD_BATCH)


def test_a_diverged_run_scores_chance(monkeypatch):
    """A learning rate of 1e8 without normalisation overflows the loss: the run is stopped
    and scored at chance, not at whatever its NaN logits happen to give."""
    monkeypatch.setattr(bs, "learning_rate", lambda batch: 1e8)
    with common.float32():
        assert bs.final_accuracy("no norm", 32, 32, epochs=1, seed=0) == bs.CHANCE
