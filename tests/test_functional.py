"""minigrad.functional against NumPy written out here, and against finite differences:
softmax/log_softmax, cross_entropy, mse_loss, linear, dropout, conv2d, layer_norm, group_norm."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
import minigrad.nn.functional as nn_F

SMALL = settings(max_examples=15, deadline=None)


def leaf(array):
    return mg.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def test_nn_functional_is_the_same_functions():
    assert nn_F.batch_norm is F.batch_norm and nn_F.cross_entropy is F.cross_entropy
    assert set(nn_F.__all__) == set(F.__all__)


# -- softmax family --------------------------------------------------------------------------------

def numpy_log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


@SMALL
@given(st.integers(1, 4), st.integers(1, 5), st.integers(0, 1), st.integers(0, 10**6))
def test_softmax_and_log_softmax_match_numpy_and_finite_differences(rows, cols, axis, seed):
    x = np.random.default_rng(seed).standard_normal((rows, cols)) * 3
    np.testing.assert_allclose(F.log_softmax(x, axis=axis).data, numpy_log_softmax(x, axis),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(F.softmax(x, axis=axis).data, np.exp(numpy_log_softmax(x, axis)),
                               rtol=1e-12, atol=1e-15)
    assert mg.gradcheck(lambda t: F.log_softmax(t, axis=axis), [leaf(x)])
    assert mg.gradcheck(lambda t: F.softmax(t, axis=axis), [leaf(x)])


def test_softmax_is_stable_for_logits_of_1000():
    logits = leaf([[1000.0, 0.0, -1000.0], [1000.0, 1000.0, 999.0]])
    log_probs = F.log_softmax(logits)
    assert np.all(np.isfinite(log_probs.data))
    np.testing.assert_allclose(log_probs.data[0], [0.0, -1000.0, -2000.0])
    probs = F.softmax(logits)
    np.testing.assert_allclose(probs.data.sum(axis=1), [1.0, 1.0])
    (log_probs[:, 0].sum()).backward()
    assert np.all(np.isfinite(logits.grad.data))
    np.testing.assert_allclose(logits.grad.data[0], [0.0, 0.0, 0.0], atol=1e-300)


def test_softmax_family_keeps_float32():
    logits = mg.tensor(np.random.default_rng(0).standard_normal((4, 3)), dtype=np.float32,
                       requires_grad=True)
    assert F.softmax(logits).dtype == F.log_softmax(logits).dtype == np.float32
    loss = F.cross_entropy(logits, [0, 1, 2, 0])
    loss.backward()
    assert loss.dtype == logits.grad.dtype == np.float32


def test_log_softmax_second_derivative():
    x = leaf(np.random.default_rng(0).standard_normal((2, 4)))
    assert mg.gradgradcheck(lambda t: F.log_softmax(t, axis=1), [x])


# -- losses ------------------------------------------------------------------------------------------

def test_cross_entropy_matches_numpy_for_every_reduction():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((6, 4)) * 2, np.array([0, 3, 1, 1, 2, 3])
    per_sample = -numpy_log_softmax(logits, 1)[np.arange(6), labels]
    for reduction, expected in (("none", per_sample), ("sum", per_sample.sum()),
                                ("mean", per_sample.mean())):
        np.testing.assert_allclose(F.cross_entropy(logits, labels, reduction).data, expected,
                                   rtol=1e-12)


def test_cross_entropy_gradient_is_softmax_minus_one_hot():
    rng = np.random.default_rng(1)
    logits, labels = leaf(rng.standard_normal((5, 3))), np.array([2, 0, 1, 1, 0])
    F.cross_entropy(logits, labels).backward()
    expected = (np.exp(numpy_log_softmax(logits.data, 1)) - np.eye(3)[labels]) / 5
    np.testing.assert_allclose(logits.grad.data, expected, rtol=1e-12, atol=1e-15)
    assert mg.gradcheck(lambda t: F.cross_entropy(t, labels, "sum"), [leaf(logits.data)])
    assert mg.gradgradcheck(lambda t: F.cross_entropy(t, labels), [leaf(logits.data)])


def test_cross_entropy_accepts_label_tensors_and_lists():
    logits = np.zeros((2, 3))
    expected = np.log(3.0)
    assert F.cross_entropy(logits, mg.Tensor(np.array([0, 2]))).item() == pytest.approx(expected)
    assert F.cross_entropy(logits, [1, 1]).item() == pytest.approx(expected)


@pytest.mark.parametrize("labels, error, message", [
    ([0, 3], ValueError, r"labels must lie in \[0, 3\) for 3 classes; label 3 at index 1"),
    ([-1, 0], ValueError, "label -1 at index 0"),
    ([0.0, 1.0], TypeError, "labels must be integer class indices, got dtype float64"),
    ([True, False], TypeError, "got dtype bool"),
    ([0, 1, 2], ValueError, r"labels must have shape \(2,\) for logits of shape \(2, 3\)"),
])
def test_cross_entropy_rejects_bad_labels(labels, error, message):
    with pytest.raises(error, match=message):
        F.cross_entropy(leaf(np.zeros((2, 3))), labels)


def test_cross_entropy_rejects_bad_logits_and_reduction():
    with pytest.raises(ValueError, match=r"logits must have shape \(N, C\)"):
        F.cross_entropy(np.zeros(3), [0])
    with pytest.raises(ValueError, match=r"got shape \(0, 3\)"):
        F.cross_entropy(np.zeros((0, 3)), np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match="reduction must be"):
        F.cross_entropy(np.zeros((1, 3)), [0], reduction="avg")


def test_mse_loss():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    np.testing.assert_allclose(F.mse_loss(a, b).data, np.mean((a - b) ** 2), rtol=1e-14)
    np.testing.assert_allclose(F.mse_loss(a, b, "sum").data, np.sum((a - b) ** 2), rtol=1e-14)
    assert F.mse_loss(a, b, "none").shape == (3, 2)
    assert mg.gradcheck(F.mse_loss, [leaf(a), leaf(b)])
    with pytest.raises(ValueError, match=r"input shape \(3,\) and target shape \(3, 1\)"):
        F.mse_loss(np.zeros(3), np.zeros((3, 1)))


# -- linear, dropout ----------------------------------------------------------------------------------

def test_linear_matches_numpy_and_finite_differences():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal(2)
    np.testing.assert_allclose(F.linear(x, mg.tensor(w), mg.tensor(b)).data, x @ w.T + b,
                               rtol=1e-14)
    assert mg.gradcheck(F.linear, [leaf(x), leaf(w), leaf(b)])
    assert mg.gradgradcheck(F.linear, [leaf(x), leaf(w), leaf(b)])
    batched = rng.standard_normal((2, 4, 3))
    np.testing.assert_allclose(F.linear(batched, mg.tensor(w)).data, batched @ w.T, rtol=1e-14)
    assert mg.gradcheck(F.linear, [leaf(batched), leaf(w), leaf(b)])
    assert mg.gradcheck(F.linear, [leaf(x[0]), leaf(w)])  # a single 1-D sample
    with pytest.raises(ValueError, match=r"bias has shape \(3,\), expected \(2,\)"):
        F.linear(x, mg.tensor(w), mg.tensor(np.zeros(3)))


def test_dropout_scales_kept_values_and_masks_gradients():
    x = leaf(np.ones((100, 100)))
    out = F.dropout(x, 0.2, rng=np.random.default_rng(0))
    kept = out.data != 0
    assert abs(kept.mean() - 0.8) < 0.02
    np.testing.assert_allclose(out.data[kept], 1.25)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.data, out.data)  # d out / d x is the mask itself
    assert F.dropout(x, 0.5, training=False) is x and F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).data, 0.0)
    assert F.dropout(x.astype(np.float32), 0.5).dtype == np.float32
    with pytest.raises(ValueError, match=r"probability in \[0, 1\]"):
        F.dropout(x, -0.1)


# -- conv2d -------------------------------------------------------------------------------------------

def numpy_conv2d(x, w, b, stride, padding):
    """The definition, one output element at a time."""
    (sh, sw), (ph, pw) = stride, padding
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, _, h, width = x.shape
    o, _, kh, kw = w.shape
    oh, ow = (h - kh) // sh + 1, (width - kw) // sw + 1
    out = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return out + b.reshape(1, -1, 1, 1)


@pytest.mark.parametrize("shape, kernel, stride, padding", [
    ((2, 3, 5, 5), (4, 3, 3, 3), 1, 0),
    ((2, 3, 5, 5), (4, 3, 3, 3), 1, 1),
    ((1, 2, 7, 6), (3, 2, 3, 2), 2, 1),
    ((2, 1, 6, 7), (2, 1, 2, 3), (2, 3), (0, 2)),
    ((1, 2, 4, 4), (2, 2, 1, 1), 1, 0),
])
def test_conv2d_matches_the_definition_and_finite_differences(shape, kernel, stride, padding):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal(shape), rng.standard_normal(kernel), rng.standard_normal(
        kernel[0])
    out = F.conv2d(x, mg.tensor(w), mg.tensor(b), stride, padding)
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    np.testing.assert_allclose(out.data, numpy_conv2d(x, w, b, pair(stride), pair(padding)),
                               rtol=1e-12, atol=1e-12)
    conv = lambda x, w, b: F.conv2d(x, w, b, stride, padding)  # noqa: E731
    assert mg.gradcheck(conv, [leaf(x), leaf(w), leaf(b)])


def test_conv2d_second_derivatives():
    rng = np.random.default_rng(1)
    x, w = leaf(rng.standard_normal((1, 2, 4, 4))), leaf(rng.standard_normal((2, 2, 3, 3)))
    assert mg.gradgradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1), [x, w])


def test_im2col_and_col2im_are_adjoint():
    """<im2col(x), c> == <x, col2im(c)>: each is the other's transpose."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 6, 5))
    attrs = dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1))
    cols = F.Im2Col.apply(mg.tensor(x), **attrs)
    c = rng.standard_normal(cols.shape)
    back = F.Col2Im.apply(mg.tensor(c), image_shape=x.shape, **attrs)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(cols.data * c), np.sum(x * back.data), rtol=1e-12)


def test_conv2d_keeps_float32():
    x = mg.tensor(np.ones((1, 1, 4, 4)), dtype=np.float32, requires_grad=True)
    w = mg.tensor(np.ones((1, 1, 3, 3)), dtype=np.float32, requires_grad=True)
    out = F.conv2d(x, w, padding=1)
    out.sum().backward()
    assert out.dtype == x.grad.dtype == w.grad.dtype == np.float32


@pytest.mark.parametrize("x_shape, w_shape, kwargs, message", [
    ((1, 3, 5, 5), (2, 2, 3, 3), {}, r"same C, got input shape \(1, 3, 5, 5\) and weight shape"),
    ((3, 5, 5), (2, 3, 3, 3), {}, r"input shape \(3, 5, 5\)"),
    ((1, 3, 2, 2), (2, 3, 3, 3), {}, "a 3x3 kernel does not fit"),
    ((1, 3, 5, 5), (2, 3, 3, 3), {"stride": 0}, "stride must be at least 1"),
    ((1, 3, 5, 5), (2, 3, 3, 3), {"padding": (1, 2, 3)}, "padding must be an int or a pair"),
])
def test_conv2d_rejects_bad_shapes(x_shape, w_shape, kwargs, message):
    with pytest.raises(ValueError, match=message):
        F.conv2d(np.zeros(x_shape), mg.tensor(np.zeros(w_shape)), **kwargs)


# -- layer_norm, group_norm ----------------------------------------------------------------------------

def numpy_normalize(x, axes, eps=1e-5):
    return (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)


@pytest.mark.parametrize("shape, normalized_shape", [((4, 5), (5,)), ((2, 3, 4), (3, 4)),
                                                      ((2, 3, 4), 4)])
def test_layer_norm_matches_numpy_and_finite_differences(shape, normalized_shape):
    rng = np.random.default_rng(0)
    k = 1 if isinstance(normalized_shape, int) else len(normalized_shape)
    trailing = shape[-k:]
    x = rng.standard_normal(shape) * 3 + 1
    w, b = rng.uniform(0.5, 1.5, trailing), rng.standard_normal(trailing)
    out = F.layer_norm(x, normalized_shape, mg.tensor(w), mg.tensor(b))
    axes = tuple(range(len(shape) - k, len(shape)))
    np.testing.assert_allclose(out.data, numpy_normalize(x, axes) * w + b, rtol=1e-12,
                               atol=1e-12)
    ln = lambda x, w, b: F.layer_norm(x, normalized_shape, w, b)  # noqa: E731
    assert mg.gradcheck(ln, [leaf(x), leaf(w), leaf(b)])
    assert mg.gradgradcheck(ln, [leaf(x), leaf(w), leaf(b)])


@pytest.mark.parametrize("shape, groups", [((3, 4), 2), ((2, 6, 3), 3), ((2, 4, 2, 3), 2),
                                           ((2, 4, 2, 2), 4), ((2, 4, 3), 1)])
def test_group_norm_matches_numpy_and_finite_differences(shape, groups):
    rng = np.random.default_rng(0)
    channels = shape[1]
    x = rng.standard_normal(shape) * 2 - 1
    w, b = rng.uniform(0.5, 1.5, channels), rng.standard_normal(channels)
    grouped = x.reshape(shape[0], groups, -1)
    expected = numpy_normalize(grouped, (2,)).reshape(shape)
    expected = expected * w.reshape((1, -1) + (1,) * (len(shape) - 2)) + b.reshape(
        (1, -1) + (1,) * (len(shape) - 2))
    out = F.group_norm(x, groups, mg.tensor(w), mg.tensor(b))
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    gn = lambda x, w, b: F.group_norm(x, groups, w, b)  # noqa: E731
    assert mg.gradcheck(gn, [leaf(x), leaf(w), leaf(b)])
    assert mg.gradgradcheck(gn, [leaf(x), leaf(w), leaf(b)])


def test_group_norm_ignores_the_batch_and_layer_norm_the_other_samples():
    """Each sample is normalized on its own: the result for one sample does not depend on the
    others -- unlike BatchNorm."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 4, 3))
    for norm in (lambda t: F.group_norm(t, 2), lambda t: F.layer_norm(t, (4, 3))):
        np.testing.assert_allclose(norm(x).data[:1], norm(x[:1]).data, rtol=1e-12, atol=1e-15)


def test_norm_layers_reject_bad_shapes():
    with pytest.raises(ValueError, match=r"layer_norm: the input must be of shape \(\*, 3, 4\) "
                                          r".*got Tensor of shape \(2, 4, 3\)"):
        F.layer_norm(np.zeros((2, 4, 3)), (3, 4))
    with pytest.raises(ValueError, match=r"C divisible by num_groups=3, got Tensor of shape \(2, 4\)"):
        F.group_norm(np.zeros((2, 4)), 3)
    with pytest.raises(ValueError, match=r"weight has shape \(3,\), expected \(4,\)"):
        F.group_norm(np.zeros((2, 4)), 2, mg.tensor(np.ones(3)))
    from minigrad import nn
    with pytest.raises(ValueError, match=r"GroupNorm\(2, 4\): the input must be of shape "
                                          r"\(N, 4, ...\), got Tensor of shape \(2, 6\)"):
        nn.GroupNorm(2, 4)(np.zeros((2, 6)))
    with pytest.raises(ValueError, match="must be divisible by num_groups=3"):
        nn.GroupNorm(3, 4)


def test_norm_modules_use_the_functional_forms():
    from minigrad import nn
    x = np.random.default_rng(0).standard_normal((2, 4, 3))
    ln, gn = nn.LayerNorm((4, 3)), nn.GroupNorm(2, 4)
    assert ln.weight.shape == (4, 3) and gn.weight.shape == (4,)
    np.testing.assert_array_equal(ln(x).data, F.layer_norm(x, (4, 3), ln.weight, ln.bias).data)
    np.testing.assert_array_equal(gn(x).data, F.group_norm(x, 2, gn.weight, gn.bias).data)
    assert repr(ln) == "LayerNorm((4, 3), eps=1e-05, elementwise_affine=True)"
    assert repr(gn) == "GroupNorm(2, 4, eps=1e-05, affine=True)"
    assert list(nn.LayerNorm(3, elementwise_affine=False).parameters()) == []
