"""The layers and functions against PyTorch, the numerics they promise to match: outputs and
gradients of BatchNorm (composed and fused, train and eval, running statistics over several
steps), LayerNorm, GroupNorm, Linear, Conv2d, cross_entropy, softmax. Skipped without torch."""
import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad import nn

torch = pytest.importorskip("torch")

TIGHT = dict(rtol=1e-10, atol=1e-12)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """These tensors are tiny: with a thread pool on a busy 2-core machine PyTorch spends
    ~0.1 s per op synchronising threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def t64(array, requires_grad=False):
    return torch.tensor(np.asarray(array), dtype=torch.float64, requires_grad=requires_grad)


def compare(ours, theirs, **tolerance):
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), **(tolerance or TIGHT))


def copy_parameters(ours: nn.Module, theirs):
    """Give the PyTorch module our parameters and buffers (by name: the layouts match)."""
    state = {name: torch.from_numpy(value) for name, value in ours.state_dict().items()}
    theirs.load_state_dict(state)


def forward_backward_both(ours, theirs, x, grad):
    """Run both modules on x with upstream gradient ``grad``; compare output and every
    gradient."""
    x_ours, x_theirs = mg.tensor(x, requires_grad=True), t64(x, requires_grad=True)
    ours.zero_grad()
    theirs.zero_grad()
    out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
    compare(out_ours, out_theirs)
    out_ours.backward(mg.tensor(grad))
    out_theirs.backward(t64(grad))
    compare(x_ours.grad, x_theirs.grad)
    theirs_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        compare(param.grad, theirs_params[name].grad)


BN_CASES = [(nn.BatchNorm1d, torch.nn.BatchNorm1d, (8, 4)),
            (nn.BatchNorm1d, torch.nn.BatchNorm1d, (5, 4, 3)),
            (nn.BatchNorm2d, torch.nn.BatchNorm2d, (3, 4, 3, 2))]
BN_IDS = ["1d-NC", "1d-NCL", "2d-NCHW"]


@pytest.mark.parametrize("fused", [False, True], ids=["composed", "fused"])
@pytest.mark.parametrize("momentum", [0.1, None], ids=["momentum=0.1", "cumulative"])
@pytest.mark.parametrize("ours_cls, theirs_cls, shape", BN_CASES, ids=BN_IDS)
def test_batchnorm_train_steps_then_eval(ours_cls, theirs_cls, shape, momentum, fused):
    rng = np.random.default_rng(0)
    channels = shape[1]
    ours = ours_cls(channels, momentum=momentum, fused=fused)
    ours.weight.data[...] = rng.uniform(0.5, 1.5, channels)
    ours.bias.data[...] = rng.standard_normal(channels)
    theirs = theirs_cls(channels, momentum=momentum).double()
    copy_parameters(ours, theirs)
    for step in range(4):
        x = rng.standard_normal(shape) * (step + 1) + step
        forward_backward_both(ours, theirs, x, rng.standard_normal(shape))
        compare(ours.running_mean, theirs.running_mean)
        compare(ours.running_var, theirs.running_var)
        assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item()
    ours.eval(), theirs.eval()
    forward_backward_both(ours, theirs, rng.standard_normal(shape), rng.standard_normal(shape))
    forward_backward_both(ours, theirs, rng.standard_normal((1,) + shape[1:]),
                          rng.standard_normal((1,) + shape[1:]))


@pytest.mark.parametrize("fused", [False, True], ids=["composed", "fused"])
@pytest.mark.parametrize("affine, track", [(False, True), (True, False), (False, False)])
def test_batchnorm_options(affine, track, fused):
    rng = np.random.default_rng(1)
    ours = nn.BatchNorm2d(3, affine=affine, track_running_stats=track, fused=fused)
    theirs = torch.nn.BatchNorm2d(3, affine=affine, track_running_stats=track).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for mode in (True, False):
        ours.train(mode), theirs.train(mode)
        x = rng.standard_normal((4, 3, 2, 2)) * 2 + 1
        forward_backward_both(ours, theirs, x, rng.standard_normal(x.shape))


def test_batchnorm_batch_of_one_raises_like_pytorch():
    x = np.ones((1, 3))
    with pytest.raises(ValueError) as theirs:
        torch.nn.BatchNorm1d(3)(t64(x))
    with pytest.raises(ValueError) as ours:
        nn.BatchNorm1d(3)(x)
    prefix = "Expected more than 1 value per channel when training"
    assert str(ours.value).startswith(prefix) and str(theirs.value).startswith(prefix)


def test_batchnorm_float32_matches_pytorch_float32():
    rng = np.random.default_rng(2)
    ours = nn.BatchNorm1d(16, fused=True).to(np.float32)
    theirs = torch.nn.BatchNorm1d(16)
    x = (rng.standard_normal((64, 16)) * 3 + 5).astype(np.float32)
    for _ in range(3):
        out = ours(mg.tensor(x))
        expected = theirs(torch.from_numpy(x))
        np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.running_var.data, theirs.running_var.numpy(), rtol=1e-5)


@pytest.mark.parametrize("shape, normalized_shape", [((4, 6), (6,)), ((2, 3, 4), (3, 4))])
def test_layer_norm(shape, normalized_shape):
    rng = np.random.default_rng(3)
    ours = nn.LayerNorm(normalized_shape)
    ours.weight.data[...] = rng.uniform(0.5, 1.5, normalized_shape)
    ours.bias.data[...] = rng.standard_normal(normalized_shape)
    theirs = torch.nn.LayerNorm(normalized_shape).double()
    copy_parameters(ours, theirs)
    forward_backward_both(ours, theirs, rng.standard_normal(shape) * 2 + 1,
                          rng.standard_normal(shape))


@pytest.mark.parametrize("shape, groups", [((3, 6), 3), ((2, 6, 4), 2), ((2, 4, 3, 3), 4)])
def test_group_norm(shape, groups):
    rng = np.random.default_rng(4)
    ours = nn.GroupNorm(groups, shape[1])
    ours.weight.data[...] = rng.uniform(0.5, 1.5, shape[1])
    ours.bias.data[...] = rng.standard_normal(shape[1])
    theirs = torch.nn.GroupNorm(groups, shape[1]).double()
    copy_parameters(ours, theirs)
    forward_backward_both(ours, theirs, rng.standard_normal(shape) - 1,
                          rng.standard_normal(shape))


def test_linear():
    rng = np.random.default_rng(5)
    ours, theirs = nn.Linear(5, 3), torch.nn.Linear(5, 3).double()
    copy_parameters(ours, theirs)
    forward_backward_both(ours, theirs, rng.standard_normal((4, 5)), rng.standard_normal((4, 3)))


@pytest.mark.parametrize("kernel, stride, padding", [(3, 1, 0), (3, 2, 1), ((2, 3), (1, 2), (1, 0))])
def test_conv2d(kernel, stride, padding):
    rng = np.random.default_rng(6)
    ours = nn.Conv2d(2, 3, kernel, stride=stride, padding=padding)
    theirs = torch.nn.Conv2d(2, 3, kernel, stride=stride, padding=padding).double()
    copy_parameters(ours, theirs)
    x = rng.standard_normal((2, 2, 7, 6))
    out_shape = theirs(t64(x)).shape
    forward_backward_both(ours, theirs, x, rng.standard_normal(tuple(out_shape)))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy(reduction):
    rng = np.random.default_rng(7)
    logits, labels = rng.standard_normal((6, 5)) * 3, rng.integers(0, 5, 6)
    ours, theirs = mg.tensor(logits, requires_grad=True), t64(logits, requires_grad=True)
    loss_ours = F.cross_entropy(ours, labels, reduction)
    loss_theirs = torch.nn.functional.cross_entropy(theirs, torch.from_numpy(labels),
                                                    reduction=reduction)
    compare(loss_ours, loss_theirs)
    weights = rng.standard_normal(loss_ours.shape)
    (loss_ours * mg.tensor(weights)).sum().backward()
    (loss_theirs * t64(weights)).sum().backward()
    compare(ours.grad, theirs.grad)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_and_log_softmax(axis):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 4)) * 5
    x[0, 0] = 1000.0
    for ours_fn, theirs_fn in ((F.softmax, torch.softmax), (F.log_softmax, torch.log_softmax)):
        ours, theirs = mg.tensor(x, requires_grad=True), t64(x, requires_grad=True)
        out_ours, out_theirs = ours_fn(ours, axis=axis), theirs_fn(theirs, dim=axis)
        compare(out_ours, out_theirs)
        grad = rng.standard_normal(x.shape)
        out_ours.backward(mg.tensor(grad))
        out_theirs.backward(t64(grad))
        compare(ours.grad, theirs.grad)


def test_mse_loss():
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    compare(F.mse_loss(a, b), torch.nn.functional.mse_loss(t64(a), t64(b)))


def test_a_pytorch_state_dict_loads_into_the_same_minigrad_model():
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6),
                                 torch.nn.ReLU(), torch.nn.Linear(6, 3)).double()
    x = np.random.default_rng(10).standard_normal((8, 4))
    theirs(t64(x))  # training step: running statistics move
    ours = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    ours.eval(), theirs.eval()
    compare(ours(x), theirs(t64(x)))
