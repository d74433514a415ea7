"""The training step's bookkeeping, made cheaper, still does everything it did: module scopes
(restored after a failing forward), Sequential's order and empty slots, linear's and
cross_entropy's checks and messages, the version checks of saved values, and the same step
with the array backward on and off."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad import nn, optim
from minigrad.core import engine
from minigrad.core.errors import DTypeError, ShapeError
from minigrad.training import build_model, train_step


class Boom(nn.Module):
    def forward(self, x):
        raise ValueError("boom")


def test_module_call_records_nested_scopes_and_restores_them():
    inner = nn.Linear(3, 2)
    outer = nn.Sequential(inner, nn.ReLU())
    out = outer(mg.Tensor(np.ones((4, 3))))
    assert out.grad_fn.scope == (outer, outer[1])
    assert out.grad_fn.parents[0].scope == (outer, inner)
    assert engine.current_scope() == ()


def test_module_call_restores_the_scope_after_a_failing_forward():
    model = nn.Sequential(nn.Linear(3, 3), Boom())
    with pytest.raises(ValueError, match="boom"):
        model(mg.Tensor(np.ones((2, 3))))
    assert engine.current_scope() == ()


def test_module_scope_is_per_thread():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            worker = threading.Thread(target=lambda: seen.append(engine.current_scope()))
            worker.start()
            worker.join()
            seen.append(engine.current_scope())
            return x

    probe = Probe()
    probe(mg.Tensor(np.ones(2)))
    assert seen == [(), (probe,)]


def test_sequential_runs_children_in_order_and_skips_empty_slots():
    first, second = nn.Linear(2, 3), nn.Linear(3, 1)
    model = nn.Sequential(first)
    model.add_module("1", None)  # a reserved, empty slot
    model.add_module("2", second)
    x = mg.Tensor(np.arange(6.0).reshape(3, 2))
    expected = second(first(x)).data
    np.testing.assert_array_equal(model(x).data, expected)
    assert list(model.children()) == [first, second]


def test_linear_checks_weight_and_bias_with_their_messages():
    x = mg.Tensor(np.ones((2, 3), np.float32))
    weight = mg.Tensor(np.ones((4, 3), np.float32))
    with pytest.raises(DTypeError, match="linear: the input is float32 but weight is float64"):
        F.linear(x, mg.Tensor(np.ones((4, 3))))
    with pytest.raises(DTypeError, match="linear: the input is float32 but bias is float64"):
        F.linear(x, weight, mg.Tensor(np.ones(4)))
    with pytest.raises(ShapeError, match=r"linear: bias has shape \(3,\), expected \(4,\)"):
        F.linear(x, weight, mg.Tensor(np.ones(3, np.float32)))
    with pytest.raises(ShapeError, match=r"bias has shape \(1, 4\), expected \(4,\)"):
        F.linear(x, weight, mg.Tensor(np.ones((1, 4), np.float32)))
    out = F.linear(x, weight, mg.Tensor(np.ones(4, np.float32)))
    np.testing.assert_array_equal(out.data, np.full((2, 4), 4.0, np.float32))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_equals_log_softmax_and_nll(reduction):
    rng = np.random.default_rng(1)
    logits = mg.Tensor(rng.standard_normal((5, 4)), requires_grad=True)
    labels = np.array([0, 3, 1, 1, 2])
    loss = F.cross_entropy(logits, labels, reduction=reduction)
    picked = -F.log_softmax(logits, axis=1).data[np.arange(5), labels]
    expected = {"mean": picked.mean(), "sum": picked.sum(), "none": picked}[reduction]
    np.testing.assert_allclose(loss.data, expected, rtol=1e-12)
    (loss.sum() if reduction == "none" else loss).backward()
    softmax = np.exp(logits.data) / np.exp(logits.data).sum(axis=1, keepdims=True)
    one_hot = np.eye(4)[labels]
    scale = 1 / 5 if reduction == "mean" else 1.0
    np.testing.assert_allclose(logits.grad.data, (softmax - one_hot) * scale, rtol=1e-10)


def test_cross_entropy_still_checks_logits_and_labels():
    with pytest.raises(ValueError, match=r"logits must have shape \(N, C\)"):
        F.cross_entropy(mg.Tensor(np.ones(3)), np.array([0]))
    with pytest.raises(DTypeError, match="expected a floating-point input"):
        F.cross_entropy(mg.Tensor(np.ones((2, 3), np.int64)), np.array([0, 1]))
    with pytest.raises(IndexError, match=r"labels must lie in \[0, 3\)"):
        F.cross_entropy(mg.Tensor(np.ones((2, 3))), np.array([0, 3]))


def test_in_place_change_of_a_saved_output_still_raises():
    # LogSoftmax saves its own output; Relu saves a mask (a value, not an input).
    x = mg.Tensor(np.ones((2, 3)), requires_grad=True)
    out = F.log_softmax(x * 1.0, axis=1)
    loss = out.sum()
    with mg.no_grad():
        out.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation: output 0"):
        loss.backward()
    hidden = x * 1.0
    loss = hidden.relu().sum()
    with mg.no_grad():
        hidden.mul_(2.0)
    loss.backward()  # the mask does not view hidden: backward may run
    np.testing.assert_array_equal(x.grad.data, np.ones((2, 3)))


@pytest.mark.parametrize("fused", [True, False])
def test_training_steps_equal_with_the_array_backward_on_and_off(fused):
    rng = np.random.default_rng(0)
    x = mg.Tensor(rng.standard_normal((16, 8)).astype(np.float32))
    labels = mg.Tensor(rng.integers(0, 10, 16))
    results = []
    for arrays in (True, False):
        nn.manual_seed(3)
        model = build_model("mlp", input_shape=(8,), hidden=12, fused=fused)
        optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        previous = engine.array_backward(arrays)
        try:
            losses = [train_step(model, optimizer, x, labels) for _ in range(3)]
        finally:
            engine.array_backward(previous)
        results.append((losses, [p.data.copy() for p in model.parameters()]))
    (losses_on, params_on), (losses_off, params_off) = results
    assert [c for _, c in losses_on] == [c for _, c in losses_off]
    np.testing.assert_allclose([l for l, _ in losses_on], [l for l, _ in losses_off],
                               rtol=1e-6)
    for on, off in zip(params_on, params_off):
        np.testing.assert_allclose(on, off, rtol=1e-5, atol=1e-6)
