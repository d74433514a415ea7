"""The memory experiment's helpers on small planted cases: the split of what a fused
BatchNorm node keeps (x, x_hat, the per-channel statistics, its output), against the bytes
held_for_backward credits to the layer. (The experiment's numbers belong to its runs.)"""
import numpy as np
import pytest

pytest.importorskip("sklearn")

import minigrad as mg  # noqa: E402
from minigrad import kernels, nn  # noqa: E402
from minigrad.app.experiments import common, memory  # noqa: E402

N, C = 6, 4  # a (6, 4) float32 batch: N * C * 4 = 96 bytes per (N, C) array, C * 4 = 16


def planted(fused=True, compiled=False):
    """The graph of a tiny network, on the NumPy path as the experiment runs (or compiled)."""
    with common.float32(), kernels.use_kernels(compiled):
        nn.manual_seed(0)
        network = nn.Sequential(nn.Linear(3, C, bias=False), nn.BatchNorm1d(C, fused=fused))
        x = mg.tensor(np.random.default_rng(0).normal(size=(N, 3)).astype(np.float32))
        return network(x).sum(), network


def test_batch_norm_saved_splits_a_fused_node_by_role():
    loss, network = planted()
    (layer,) = memory.batch_norm_saved(loss, network)
    assert layer["values"] == N * C and layer["channels"] == C
    assert layer["x"] == layer["x_hat"] == layer["output"] == N * C * 4
    assert layer["statistics"] == 2 * C * 4  # the mean and 1/sigma; gamma is a parameter


@pytest.mark.skipif(not kernels.available(), reason="needs Numba")
def test_the_compiled_fused_node_keeps_no_x_hat():
    (layer,) = memory.batch_norm_saved(*planted(compiled=True))
    assert layer["x"] == layer["output"] == N * C * 4 and layer["x_hat"] == 0


def test_the_split_adds_up_to_what_held_for_backward_credits():
    """held_for_backward credits the fused BatchNorm layer with its output, x_hat and the
    statistics; its input x is the Linear's output, credited to the Linear."""
    loss, network = planted()
    (layer,) = memory.batch_norm_saved(loss, network)
    held = memory.held_for_backward(loss, network)
    assert held["BatchNorm1d 1"] == layer["output"] + layer["x_hat"] + layer["statistics"]
    assert held["Linear 1"] == N * 3 * 4 + layer["x"]  # the batch and the Linear's output


def test_composed_batch_norm_has_no_fused_node_and_keeps_more():
    loss, network = planted(fused=False)
    assert memory.batch_norm_saved(loss, network) == []
    fused_loss, fused_network = planted(fused=True)
    assert (memory.held_for_backward(loss, network)["BatchNorm1d 1"]
            > memory.held_for_backward(fused_loss, fused_network)["BatchNorm1d 1"])


def test_paired_step_times_are_positive_seconds():
    with common.float32(), common.one_blas_thread():
        plain, normalised = memory._paired_step_times(0, 2)
    assert 0 < plain < 1 and 0 < normalised < 1
