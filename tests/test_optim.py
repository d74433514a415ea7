"""Optimizers and LR schedules: PyTorch's update rules, checked against hand-written NumPy
(always) and against torch.optim (when PyTorch is installed)."""
import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import optim

STEPS = 6


def _gradients(shape, dtype, seed=0, steps=STEPS):
    rng = np.random.default_rng(seed)
    start = rng.standard_normal(shape).astype(dtype)
    return start, [rng.standard_normal(shape).astype(dtype) for _ in range(steps)]


def _run_minigrad(make_optimizer, start, grads):
    """Positions of a parameter after each step when fed the given gradients."""
    param = mg.Tensor(start.copy(), requires_grad=True)
    optimizer = make_optimizer([param])
    path = []
    for grad in grads:
        param.grad = mg.Tensor(grad.copy())
        optimizer.step()
        path.append(param.data.copy())
    return path


def _sgd_reference(start, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                   nesterov=False):
    """SGD as the PyTorch documentation writes it, one step at a time."""
    param, velocity, path = start.astype(np.float64), None, []
    for t, grad in enumerate(grads):
        g = grad.astype(np.float64) + weight_decay * param
        if momentum:
            velocity = g if t == 0 else momentum * velocity + (1 - dampening) * g
            g = g + momentum * velocity if nesterov else velocity
        param = param - lr * g
        path.append(param)
    return path


def _adam_reference(start, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """Adam as Kingma & Ba write it (bias-corrected m-hat and v-hat), plus L2 in the gradient."""
    beta1, beta2 = betas
    param, m, v, path = start.astype(np.float64), 0.0, 0.0, []
    for t, grad in enumerate(grads, start=1):
        g = grad.astype(np.float64) + weight_decay * param
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g ** 2
        m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
        param = param - lr * m_hat / (np.sqrt(v_hat) + eps)
        path.append(param)
    return path


def _assert_same_path(path, reference, dtype, ulps=8):
    """Equal up to rounding: a few units in the last place of the parameter's scale.

    The rule itself is not allowed any slack: a wrong term (a missing bias correction, a
    dampened first step) moves the parameter by far more than rounding does."""
    eps = np.finfo(dtype).eps
    for step, (got, want) in enumerate(zip(path, reference)):
        assert got.dtype == dtype
        scale = np.abs(want).max()
        error = np.abs(got - want).max()
        assert error <= ulps * eps * scale * (step + 1), (step, error / (eps * scale))


SGD_SETTINGS = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, momentum=0.8, weight_decay=0.01),
    dict(lr=0.1, momentum=0.9, dampening=0.3),
    dict(lr=0.02, momentum=0.9, nesterov=True, weight_decay=0.05),
]
ADAM_SETTINGS = [
    dict(lr=0.01),
    dict(lr=0.1, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.01, weight_decay=0.1),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("settings", SGD_SETTINGS)
def test_sgd_matches_numpy_reference(settings, dtype):
    start, grads = _gradients((5, 7), dtype)
    path = _run_minigrad(lambda p: optim.SGD(p, **settings), start, grads)
    _assert_same_path(path, _sgd_reference(start, grads, **settings), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("settings", ADAM_SETTINGS)
def test_adam_matches_numpy_reference(settings, dtype):
    start, grads = _gradients((5, 7), dtype, seed=1)
    path = _run_minigrad(lambda p: optim.Adam(p, **settings), start, grads)
    _assert_same_path(path, _adam_reference(start, grads, **settings), dtype)


@pytest.mark.parametrize("settings", [dict(lr=0.25, momentum=0.5, weight_decay=0.125),
                                      dict(lr=0.5, momentum=0.25, nesterov=True),
                                      dict(lr=0.25, momentum=0.5, dampening=0.5)])
def test_sgd_is_exact_on_dyadic_numbers(settings):
    """With eighths and power-of-two settings every product and sum is exact in float64, so
    the rule must match the reference bit for bit: no rounding to hide behind."""
    rng = np.random.default_rng(2)
    start = rng.integers(-16, 16, size=(4, 3)) / 8.0
    grads = [rng.integers(-16, 16, size=(4, 3)) / 8.0 for _ in range(5)]
    path = _run_minigrad(lambda p: optim.SGD(p, **settings), start, grads)
    for got, want in zip(path, _sgd_reference(start, grads, **settings)):
        np.testing.assert_array_equal(got, want)


def test_first_momentum_step_is_undampened():
    """PyTorch starts the momentum buffer at the raw gradient, not at (1 - dampening) * g."""
    param = mg.Tensor(np.zeros(3), requires_grad=True)
    sgd = optim.SGD([param], lr=1.0, momentum=0.9, dampening=0.5)
    param.grad = mg.Tensor(np.ones(3))
    sgd.step()
    np.testing.assert_array_equal(param.data, -np.ones(3))


torch_settings = [("SGD", s) for s in SGD_SETTINGS] + [("Adam", s) for s in ADAM_SETTINGS]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, settings", torch_settings)
def test_matches_torch_optim(name, settings, dtype):
    """Same starting point, same gradients: the same path as torch.optim, up to rounding.

    Not bit for bit: PyTorch computes ``a + alpha * b`` with one fused multiply-add (a single
    rounding) on CPUs that have FMA, and NumPy cannot, so the last bit differs now and then."""
    torch = pytest.importorskip("torch")
    start, grads = _gradients((6, 9), dtype, seed=3, steps=10)
    path = _run_minigrad(lambda p: getattr(optim, name)(p, **settings), start, grads)
    tparam = torch.tensor(start.copy(), requires_grad=True)
    toptimizer = getattr(torch.optim, name)([tparam], **settings)
    reference = []
    for grad in grads:
        tparam.grad = torch.tensor(grad.copy())
        toptimizer.step()
        reference.append(tparam.detach().numpy().copy())
    _assert_same_path(path, reference, dtype, ulps=4)


def test_step_skips_parameters_without_grad_and_zero_grad_clears():
    a = mg.Tensor(np.ones(2), requires_grad=True)
    b = mg.Tensor(np.ones(2), requires_grad=True)
    sgd = optim.SGD([a, b], lr=0.5)
    (a * 3).sum().backward()
    sgd.step()
    np.testing.assert_array_equal(a.data, [-0.5, -0.5])
    np.testing.assert_array_equal(b.data, [1.0, 1.0])
    sgd.zero_grad()
    assert a.grad is None and b.grad is None


def test_update_is_in_place_and_keeps_dtype():
    param = mg.Tensor(np.ones(4, dtype=np.float32), requires_grad=True)
    array = param.data
    adam = optim.Adam([param], lr=0.1, weight_decay=0.1)
    param.grad = mg.Tensor(np.full(4, 2.0, dtype=np.float32))
    adam.step()
    assert param.data is array and param.dtype == np.float32
    assert adam.state[0]["exp_avg"].dtype == np.float32
    assert np.all(param.data < 1.0)


def test_lr_changes_take_effect_on_the_next_step():
    param = mg.Tensor(np.zeros(1), requires_grad=True)
    sgd = optim.SGD([param], lr=1.0)
    sgd.lr = 0.25
    param.grad = mg.Tensor(np.ones(1))
    sgd.step()
    assert param.data[0] == -0.25


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.SGD(p, lr=-0.1), "SGD: lr must be a non-negative number"),
    (lambda p: optim.SGD(p, lr="fast"), "SGD: lr must be a real number"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=-1), "SGD: momentum"),
    (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1e-4), "SGD: weight_decay"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "SGD: nesterov needs momentum > 0"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "dampening"),
    (lambda p: optim.Adam(p, betas=(0.9, 1.0)), r"Adam: betas\[1\] must be in"),
    (lambda p: optim.Adam(p, betas=0.9), "Adam: betas must be a pair"),
    (lambda p: optim.Adam(p, eps=float("nan")), "Adam: eps must be a finite number"),
    (lambda p: optim.Adam(p, weight_decay=-1), "Adam: weight_decay"),
])
def test_bad_settings_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make([mg.Tensor(np.ones(2), requires_grad=True)])


def test_bad_parameter_lists_are_named():
    param = mg.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match="SGD: got an empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="SGD: got an empty parameter list"):
        optim.SGD(iter([]), lr=0.1)
    with pytest.raises(TypeError, match="single tensor; wrap it in a list"):
        optim.SGD(param, lr=0.1)
    with pytest.raises(TypeError, match="Adam: parameter 1 is a ndarray"):
        optim.Adam([param, np.ones(2)])
    with pytest.raises(ValueError, match=r"parameter 0 \(shape \(3,\)\) must be a leaf"):
        optim.Adam([mg.Tensor(np.ones(3))])
    with pytest.raises(ValueError, match="more than once"):
        optim.Adam([param, param])


# ----------------------------------------------------------------------------------------------
# Schedules
# ----------------------------------------------------------------------------------------------

def _lrs(scheduler, epochs):
    lrs = [scheduler.optimizer.lr]
    for _ in range(epochs):
        scheduler.optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    return lrs


def _sgd(lr=0.5):
    return optim.SGD([mg.Tensor(np.ones(1), requires_grad=True)], lr=lr)


def test_step_lr():
    lrs = _lrs(optim.StepLR(_sgd(0.5), step_size=3, gamma=0.1), 9)
    np.testing.assert_allclose(lrs, [0.5] * 3 + [0.05] * 3 + [0.005] * 3 + [0.0005])


def test_cosine_lr_hits_its_ends_and_midpoint():
    lrs = _lrs(optim.CosineAnnealingLR(_sgd(0.5), T_max=10, eta_min=0.1), 10)
    assert lrs[0] == 0.5
    assert lrs[5] == pytest.approx(0.3)
    assert lrs[10] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


@pytest.mark.parametrize("name, kwargs", [("StepLR", dict(step_size=2, gamma=0.5)),
                                          ("CosineAnnealingLR", dict(T_max=7, eta_min=0.01))])
def test_schedules_match_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    ours = _lrs(getattr(optim, name)(_sgd(0.3), **kwargs), 12)
    tparam = torch.zeros(1, requires_grad=True)
    toptimizer = torch.optim.SGD([tparam], lr=0.3)
    tscheduler = getattr(torch.optim.lr_scheduler, name)(toptimizer, **kwargs)
    theirs = [0.3]
    for _ in range(12):
        toptimizer.step()
        tscheduler.step()
        theirs.append(tscheduler.get_last_lr()[0])
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


def test_bad_schedule_settings():
    with pytest.raises(ValueError, match="StepLR: step_size must be a positive integer"):
        optim.StepLR(_sgd(), step_size=0)
    with pytest.raises(ValueError, match="CosineAnnealingLR: T_max"):
        optim.CosineAnnealingLR(_sgd(), T_max=2.5)
    with pytest.raises(TypeError, match="StepLR: expected a minigrad optimizer"):
        optim.StepLR(object(), step_size=1)
    assert math.isfinite(optim.CosineAnnealingLR(_sgd(), T_max=1).lr_at(3))


# ----------------------------------------------------------------------------------------------
# state_dict / load_state_dict: resuming gives exactly the uninterrupted run
# ----------------------------------------------------------------------------------------------

RESUMABLE = {
    "sgd nesterov": lambda params: optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True),
    "adam": lambda params: optim.Adam(params, lr=0.01, weight_decay=0.01),
}


def _params(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [mg.Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
            for shape in [(3, 2), (2,), (4,)]]


def _feed(optimizer, params, grads):
    for step_grads in grads:
        for param, grad in zip(params, step_grads):
            param.grad = mg.Tensor(grad.copy())
        optimizer.step()


@pytest.mark.parametrize("kind", sorted(RESUMABLE))
def test_resuming_from_a_saved_state_equals_the_uninterrupted_run(kind, tmp_path):
    rng = np.random.default_rng(1)
    grads = [[rng.standard_normal(p.shape).astype(np.float32) for p in _params()]
             for _ in range(8)]
    params = _params()
    uninterrupted = RESUMABLE[kind](params)
    _feed(uninterrupted, params, grads)

    params = _params()
    first = RESUMABLE[kind](params)
    # The last parameter gets no gradient at first: it has no state yet, and that is kept.
    _feed(first, params[:2], [g[:2] for g in grads[:5]])
    first.lr /= 2  # as a schedule would: lr is saved too
    mg.save(first.state_dict(), tmp_path / "optimizer.npz")
    saved_params = [p.data.copy() for p in params]
    _feed(first, params, grads[5:6])  # later steps do not reach the saved copy

    resumed_params = [mg.Tensor(data, requires_grad=True) for data in saved_params]
    resumed = RESUMABLE[kind](resumed_params)
    resumed.load_state_dict(mg.load(tmp_path / "optimizer.npz"))
    _feed(resumed, resumed_params, grads[5:])

    reference = _params()
    replay = RESUMABLE[kind](reference)
    _feed(replay, reference[:2], [g[:2] for g in grads[:5]])
    replay.lr /= 2
    _feed(replay, reference, grads[5:])
    for got, expected in zip(resumed_params, reference):
        np.testing.assert_array_equal(got.data, expected.data)
        assert got.data.dtype == np.float32


def test_state_dict_names_each_buffer_by_parameter_index():
    params = _params()
    adam = optim.Adam(params, lr=0.5)
    _feed(adam, params[:1], [[np.ones((3, 2), np.float32)]])
    state = adam.state_dict()
    assert sorted(state) == ["0.exp_avg", "0.exp_avg_sq", "0.step", "lr"]
    assert state["0.step"] == 1 and float(state["lr"]) == 0.5
    adam.state[0]["exp_avg"] += 1.0
    assert not np.array_equal(state["0.exp_avg"], adam.state[0]["exp_avg"])  # a copy


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("lr"), "expected a number 'lr'"),
    (lambda s: s.update({"lr": np.array(-1.0)}), "lr must be a non-negative number"),
    (lambda s: s.update({"9.exp_avg": np.zeros(2, np.float32)}), "unexpected entry '9.exp_avg'"),
    (lambda s: s.update({"0.velocity": np.zeros((3, 2), np.float32)}), "unexpected entry"),
    (lambda s: s.update({"0.exp_avg": np.zeros((2, 3), np.float32)}), r"shape \(2, 3\)"),
    (lambda s: s.update({"0.exp_avg": np.zeros((3, 2), np.float64)}), "dtype float64"),
    (lambda s: s.update({"0.step": np.array(-2)}), "must be a count"),
    (lambda s: s.pop("0.exp_avg_sq"), "expected all of"),
])
def test_a_bad_optimizer_state_is_refused_and_changes_nothing(change, message):
    params = _params()
    adam = optim.Adam(params, lr=0.5)
    _feed(adam, params[:1], [[np.ones((3, 2), np.float32)]])
    state = adam.state_dict()
    change(state)
    before = adam.state_dict()
    with pytest.raises(ValueError, match=message):
        adam.load_state_dict(state)
    after = adam.state_dict()
    assert sorted(before) == sorted(after)
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])


@pytest.mark.parametrize("make", [lambda o: optim.StepLR(o, step_size=2, gamma=0.5),
                                  lambda o: optim.CosineAnnealingLR(o, T_max=5, eta_min=0.01)])
def test_a_schedule_resumes_where_it_stood(make, tmp_path):
    params = _params()
    optimizer = optim.SGD(params, lr=0.4)
    schedule = make(optimizer)
    for _ in range(3):
        schedule.step()
    mg.save(schedule.state_dict(), tmp_path / "schedule.npz")
    mg.save(optimizer.state_dict(), tmp_path / "optimizer.npz")
    expected = []
    for _ in range(4):
        schedule.step()
        expected.append(optimizer.lr)

    resumed_optimizer = optim.SGD(_params(), lr=0.4)
    resumed = make(resumed_optimizer)
    resumed_optimizer.load_state_dict(mg.load(tmp_path / "optimizer.npz"))
    resumed.load_state_dict(mg.load(tmp_path / "schedule.npz"))
    assert resumed.last_epoch == 3
    got = []
    for _ in range(4):
        resumed.step()
        got.append(resumed_optimizer.lr)
    assert got == expected


@pytest.mark.parametrize("state, message", [
    ({"last_epoch": np.array(2)}, "expected the entries"),
    ({"last_epoch": np.array(-1), "base_lr": np.array(0.1)}, "count >= 0"),
    ({"last_epoch": np.array(1.5), "base_lr": np.array(0.1)}, "count >= 0"),
    ({"last_epoch": np.array(1), "base_lr": np.array([0.1, 0.2])}, "must be a number"),
    ({"last_epoch": np.array(1), "base_lr": np.array(-0.1)}, "base_lr must be a non-negative number"),
])
def test_a_bad_schedule_state_is_refused_and_changes_nothing(state, message):
    schedule = optim.StepLR(optim.SGD(_params(), lr=0.4), step_size=2)
    schedule.step()
    with pytest.raises(ValueError, match=message):
        schedule.load_state_dict(state)
    assert schedule.last_epoch == 1 and schedule.base_lr == 0.4
