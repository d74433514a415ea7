"""Autograd semantics shared with PyTorch: freed graphs and retain_graph, version counters and
in-place ops, per-thread grad mode, 0-d leaves used twice, integer results, hooks and
retain_grad, and anomaly detection. Where PyTorch is installed the same snippets run through it
too, and the two libraries must agree."""
import inspect
import operator
import re
import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from conftest import FAST, shapes, values

WAIT = 5  # seconds a thread waits for the other before the test gives up (never reached)


@pytest.fixture
def torch():
    """PyTorch, or skip: only the comparisons need it."""
    return pytest.importorskip("torch")


def _leaf(lib, data, requires_grad=True):
    """A float64 leaf of ``lib`` (minigrad or torch) holding a copy of ``data``."""
    return lib.tensor(np.array(data, dtype=np.float64), requires_grad=requires_grad)


def _array(t):
    """A tensor of either library as a NumPy array (None stays None)."""
    if t is None:
        return None
    if isinstance(t, mg.Tensor):
        return np.array(t.data)
    return t.detach().numpy().copy()


def _assert_same(actual, expected, rtol=1e-12):
    if expected is None:
        assert actual is None
    else:
        assert actual is not None
        np.testing.assert_allclose(_array(actual), _array(expected), rtol=rtol, atol=1e-14)


# ----------------------------------------------------------------------------------------------
# Freed graphs and retain_graph
# ----------------------------------------------------------------------------------------------

def test_second_backward_through_a_freed_graph_raises():
    """After a backward the saved values are freed: a second one names retain_graph=True."""
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0, 6.0])
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0, 6.0])  # the failed call added nothing


def test_retain_graph_keeps_the_graph_and_gradients_accumulate():
    """retain_graph=True allows another backward (x.grad adds up); the default frees again."""
    x = mg.tensor([1.0, -2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad.data, 2 * 2 * x.data)
    y.backward()
    np.testing.assert_array_equal(x.grad.data, 3 * 2 * x.data)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_backward_takes_the_gradient_positionally_or_as_gradient():
    """backward(gradient, retain_graph=...): the upstream gradient by position or keyword."""
    x = mg.tensor([1.0, -2.0], requires_grad=True)
    y = x * x
    y.backward(mg.tensor([1.0, -1.0]), retain_graph=True)
    y.backward(gradient=mg.tensor([0.5, 0.5]))
    np.testing.assert_array_equal(x.grad.data, 2 * x.data * np.array([1.5, -0.5]))


def test_retain_graph_defaults_to_create_graph():
    """A backward with create_graph=True keeps the graph for the next backward."""
    x = mg.tensor([1.0, -2.0], requires_grad=True)
    y = (x * x * x).sum()
    y.backward(create_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * 3 * x.data ** 2, rtol=1e-15)


def test_a_graph_that_saved_nothing_may_be_backpropagated_twice():
    """As in PyTorch, only saved values are freed: (x + 1).sum() runs backward twice."""
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x + 1).sum()
    y.backward()
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0, 2.0])


def test_another_output_through_a_freed_node_raises():
    """A new graph built on a freed node cannot backpropagate through that node."""
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    y.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        (y * 2).sum().backward()


def test_mg_grad_frees_the_graph_unless_told_to_retain_it():
    """mg.grad frees the graph like backward; retain_graph=True keeps it."""
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    (first,) = mg.grad(y, [x], retain_graph=True)
    (second,) = mg.grad(y, [x])
    np.testing.assert_array_equal(first.data, [2.0, 4.0])
    np.testing.assert_array_equal(second.data, [2.0, 4.0])
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        mg.grad(y, [x])
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    assert x.grad is None


def test_mg_grad_with_create_graph_retains_by_default():
    """mg.grad(create_graph=True) leaves the graph usable for another mg.grad."""
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x * x).sum()
    (g,) = mg.grad(y, [x], create_graph=True)
    (again,) = mg.grad(y, [x])
    np.testing.assert_allclose(g.data, 3 * x.data ** 2, rtol=1e-15)
    np.testing.assert_allclose(again.data, 3 * x.data ** 2, rtol=1e-15)


def test_stale_graph_snippet_behaves_as_in_torch(torch):
    """The stale-graph snippet raises in both libraries, and retain_graph=True followed by a
    plain backward accumulates the same gradient in both."""
    grads = {}
    for lib in (torch, mg):
        x = _leaf(lib, [1.0, 2.0, 3.0])
        y = (x * x).sum()
        y.backward()
        with pytest.raises(RuntimeError, match="retain_graph=True"):
            y.backward()
        z = (x * x * x).sum()
        z.backward(retain_graph=True)
        z.backward()
        grads[lib] = x.grad
    _assert_same(grads[mg], grads[torch])


# ----------------------------------------------------------------------------------------------
# Version counters and in-place ops
# ----------------------------------------------------------------------------------------------

def test_every_new_tensor_starts_at_version_zero():
    """_version is an int and starts at 0 for leaves, op results and detached tensors."""
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    for t in (x, mg.tensor([1, 2]), x * 2, (x * 2).detach(), mg.tensor(3.0)):
        assert isinstance(t._version, int) and t._version == 0


# name, the minigrad call on (tensor, operand), and NumPy's result on (array, operand)
_ARITHMETIC = [
    ("add_", lambda t, o: t.add_(o), np.add),
    ("add_ alpha", lambda t, o: t.add_(o, alpha=-0.5), lambda a, o: a - 0.5 * o),
    ("sub_", lambda t, o: t.sub_(o), np.subtract),
    ("mul_", lambda t, o: t.mul_(o), np.multiply),
    ("div_", lambda t, o: t.div_(o), np.divide),
    ("+=", operator.iadd, np.add),
    ("-=", operator.isub, np.subtract),
    ("*=", operator.imul, np.multiply),
    ("/=", operator.itruediv, np.divide),
]


@FAST
@given(st.data())
def test_in_place_arithmetic_matches_numpy_on_the_same_object(data):
    """Each in-place op (method or operator) writes NumPy's result into the same Tensor,
    returns it and bumps its version; the operand may be a number or a broadcast tensor."""
    shape = data.draw(shapes(min_dims=0), label="shape")
    start = data.draw(values(shape), label="start")
    name, call, reference = data.draw(st.sampled_from(_ARITHMETIC), label="op")
    if data.draw(st.booleans(), label="tensor operand"):
        suffix = shape[data.draw(st.integers(0, len(shape)), label="cut"):]
        raw = data.draw(values(suffix), label="operand")
        operand = mg.tensor(raw)
    else:
        raw = operand = data.draw(st.sampled_from([-1.5, 0.5, 2.0, 3.0]), label="number")
    t = mg.tensor(start)
    identity, version = id(t), t._version
    result = call(t, operand)
    assert result is t and id(t) == identity
    assert t._version > version
    assert t.shape == shape and t.dtype == np.float64
    np.testing.assert_allclose(t.data, reference(start, raw), rtol=1e-15)


@FAST
@given(st.data())
def test_fill_zero_copy_and_clamp_match_numpy(data):
    """fill_, zero_, copy_ and clamp_ (min, max or both) write NumPy's result in place."""
    shape = data.draw(shapes(min_dims=0), label="shape")
    start = data.draw(values(shape), label="start")
    source = data.draw(values(shape), label="source")
    low = data.draw(st.floats(-1.0, 1.0), label="low")
    high = low + data.draw(st.floats(0.0, 1.0), label="width")
    value = data.draw(st.floats(-3.0, 3.0), label="value")
    cases = [
        (lambda t: t.fill_(value), np.full(shape, value)),
        (lambda t: t.zero_(), np.zeros(shape)),
        (lambda t: t.copy_(mg.tensor(source)), source),
        (lambda t: t.clamp_(min=low, max=high), np.clip(start, low, high)),
        (lambda t: t.clamp_(min=low), np.maximum(start, low)),
        (lambda t: t.clamp_(max=high), np.minimum(start, high)),
    ]
    for call, expected in cases:
        t = mg.tensor(start)
        assert call(t) is t
        assert t._version > 0 and t.shape == shape
        np.testing.assert_array_equal(t.data, expected)


@FAST
@given(st.data())
def test_setitem_matches_numpy(data):
    """t[idx] = value (basic or integer-array index; a number, array or tensor value) writes
    what NumPy writes, in place, and bumps the version."""
    shape = data.draw(shapes(min_dims=1), label="shape")
    start = data.draw(values(shape), label="start")
    if data.draw(st.booleans(), label="basic"):
        index = data.draw(hnp.basic_indices(shape), label="index")
        kind = data.draw(st.sampled_from(["number", "array", "tensor"]), label="kind")
    else:  # (indices may repeat: a number writes the same value whichever write wins)
        index = data.draw(hnp.integer_array_indices(shape), label="index")
        kind = "number"
    if kind == "number":
        raw = value = data.draw(st.floats(-5.0, 5.0), label="value")
    else:
        raw = data.draw(values(np.zeros(shape)[index].shape), label="value")
        value = raw if kind == "array" else mg.tensor(raw)
    expected = start.copy()
    expected[index] = raw
    t = mg.tensor(start)
    identity = id(t)
    t[index] = value
    assert id(t) == identity and t._version > 0
    np.testing.assert_array_equal(t.data, expected)


def test_in_place_methods_chain_and_each_bumps_the_version():
    """In-place methods return self, so they chain; every op counts."""
    t = mg.tensor([1.0, 2.0, 3.0])
    versions = [t._version]
    for step in (lambda: t.add_(1.0), lambda: t.mul_(2.0), lambda: t.sub_(1.0),
                 lambda: t.div_(2.0), lambda: t.clamp_(max=3.0), lambda: t.fill_(2.0),
                 lambda: t.zero_(), lambda: t.copy_(mg.tensor([4.0, 5.0, 6.0]))):
        assert step() is t
        versions.append(t._version)
    t += 1.0
    versions.append(t._version)
    t[0] = -1.0
    versions.append(t._version)
    assert versions == sorted(set(versions))  # strictly increasing
    np.testing.assert_array_equal(t.data, [-1.0, 6.0, 7.0])
    assert t.add_(1.0).mul_(2.0) is t
    np.testing.assert_array_equal(t.data, [0.0, 14.0, 16.0])


# Computations that modify a tensor saved for backward; each returns the loss. ``lib`` is
# minigrad or torch, ``x`` a leaf holding positive numbers.
def _modified_mul_input(lib, x):
    a = x * 1
    y = a * a
    a.add_(1)
    return y.sum()


def _modified_log_input(lib, x):
    a = x * 1
    y = a.log()
    a.mul_(2)
    return y.sum()


def _modified_pow_base(lib, x):
    a = x * 1
    y = a ** 3
    a.sub_(0.5)
    return y.sum()


def _modified_divisor(lib, x):
    a = x * 1
    y = x / a
    a.div_(2)
    return y.sum()


def _modified_exp_output(lib, x):
    y = (x * 1).exp()  # Exp saves its output
    y.add_(1)
    return y.sum()


def _modified_by_augmented_assignment(lib, x):
    a = x * 1
    y = a * a
    a += 1
    return y.sum()


def _modified_by_setitem(lib, x):
    a = x * 1
    y = a * a
    a[0] = 3.0
    return y.sum()


def _leaf_modified_under_no_grad(lib, x):
    y = x * x
    with lib.no_grad():
        x.mul_(5)
    return y.sum()


_MODIFIED_SAVED = [_modified_mul_input, _modified_log_input, _modified_pow_base, _modified_divisor,
                   _modified_exp_output, _modified_by_augmented_assignment, _modified_by_setitem,
                   _leaf_modified_under_no_grad]


@pytest.mark.parametrize("computation", _MODIFIED_SAVED, ids=lambda f: f.__name__.strip("_"))
def test_backward_after_a_saved_tensor_was_modified_raises(computation):
    """Backward refuses to use a saved tensor whose version changed since it was saved."""
    x = mg.tensor([0.5, 1.5, 2.0], requires_grad=True)
    loss = computation(mg, x)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


@pytest.mark.parametrize("computation", _MODIFIED_SAVED, ids=lambda f: f.__name__.strip("_"))
def test_torch_also_refuses_those_modified_saved_tensors(torch, computation):
    """The cases above are the ones PyTorch refuses too (so none of them is stricter)."""
    x = _leaf(torch, [0.5, 1.5, 2.0])
    loss = computation(torch, x)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_the_inplace_error_names_the_op():
    """The message names the op whose saved tensor changed (here a Mul)."""
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    a = x * 1
    y = a * a
    a.add_(1)
    with pytest.raises(RuntimeError, match="inplace") as excinfo:
        y.sum().backward()
    assert "Mul" in str(excinfo.value)
    assert "modified by an inplace operation" in str(excinfo.value)


def test_leaf_modified_under_no_grad_snippet():
    """The original silent-wrong-gradient snippet: y = x * x, then x.mul_(5) under no_grad.
    The update is allowed and counted, and the stale backward now raises."""
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    with mg.no_grad():
        x.mul_(5)
    assert x._version == 1 and x.is_leaf and x.requires_grad
    np.testing.assert_array_equal(x.data, [5.0, 10.0])
    with pytest.raises(RuntimeError, match="inplace"):
        y.sum().backward()
    assert x.grad is None


_ON_A_LEAF = [
    ("add_", lambda t: t.add_(1.0)), ("sub_", lambda t: t.sub_(1.0)),
    ("mul_", lambda t: t.mul_(2.0)), ("div_", lambda t: t.div_(2.0)),
    ("zero_", lambda t: t.zero_()), ("fill_", lambda t: t.fill_(3.0)),
    ("copy_", lambda t: t.copy_(mg.tensor([5.0, 6.0]))), ("clamp_", lambda t: t.clamp_(min=1.5)),
    ("+=", lambda t: operator.iadd(t, 1.0)), ("-=", lambda t: operator.isub(t, 1.0)),
    ("*=", lambda t: operator.imul(t, 2.0)), ("/=", lambda t: operator.itruediv(t, 2.0)),
    ("setitem", lambda t: operator.setitem(t, 0, 9.0)),
]


@pytest.mark.parametrize("name, call", _ON_A_LEAF, ids=[n for n, _ in _ON_A_LEAF])
def test_in_place_on_a_leaf_that_requires_grad_raises(name, call):
    """Outside no_grad an in-place op on a leaf that requires grad is refused, untouched."""
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        call(x)
    np.testing.assert_array_equal(x.data, [1.0, 2.0])
    assert x._version == 0


@pytest.mark.parametrize("name, call", _ON_A_LEAF, ids=[n for n, _ in _ON_A_LEAF])
def test_in_place_on_a_leaf_is_allowed_under_no_grad(name, call):
    """Under no_grad the same ops run, bump the version and leave a leaf that requires grad."""
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with mg.no_grad():
        call(x)
    assert x._version > 0 and not np.array_equal(x.data, [1.0, 2.0])
    assert x.is_leaf and x.requires_grad and x.grad_fn is None


def test_in_place_ops_on_a_graph_tensor_are_recorded():
    """a = x * 2; a.mul_(3) differentiates as 6 x; a += x as 3 x."""
    x = mg.tensor([1.0, -2.0], requires_grad=True)
    a = x * 2
    a.mul_(3)
    a.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [6.0, 6.0])
    x.grad = None
    a = x * 2
    identity = id(a)
    a += x
    assert id(a) == identity
    (a * a).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * 3 * x.data * 3, rtol=1e-15)


def test_setitem_with_a_value_requiring_grad_passes_the_gradient_to_it():
    """a[0] = w * 2: the overwritten element gets no gradient, w gets it instead."""
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = mg.tensor(0.5, requires_grad=True)
    a = x * 1
    a[0] = w * 2
    a.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0, 1.0])
    assert w.grad.shape == () and w.grad.item() == 2.0


def test_setitem_into_a_constant_makes_it_part_of_the_graph():
    """Writing a value that requires grad into a plain tensor makes it require grad."""
    w = mg.tensor(1.5, requires_grad=True)
    z = mg.tensor(np.zeros(3))
    z[1] = w
    assert z.requires_grad and not z.is_leaf
    (z * z).sum().backward()
    assert w.grad.item() == 3.0


def test_in_place_on_a_tensor_no_op_saved_is_fine():
    """Only saved tensors are checked: Exp saved its output and Add saved nothing."""
    x = mg.tensor([0.5, -1.0], requires_grad=True)
    a = x * 2
    b = a.exp()
    a.add_(1)
    b.sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * np.exp(2 * x.data), rtol=1e-15)
    x.grad = None
    a = x * 2
    b = a + 1
    a.mul_(x)
    (a + b).sum().backward()  # 2 x**2 + 2 x + 1
    np.testing.assert_allclose(x.grad.data, 4 * x.data + 2, rtol=1e-15)


# In-place recipes on a = 2 x (a non-leaf); ``w`` is a 0-d leaf. Run in both libraries.
def _iadd(a, x, w):
    a += x * w
    return a


def _isub(a, x, w):
    a -= x
    return a


def _imul(a, x, w):
    a *= w
    return a


def _idiv(a, x, w):
    a /= w + x
    return a


def _setitem_number(a, x, w):
    a[1] = 5.0
    return a


def _setitem_tensor(a, x, w):
    a[0] = w * 2.0
    return a


def _setitem_slice(a, x, w):
    a[1:] = x[:2] * w
    return a


def _setitem_integer_array(a, x, w):
    a[[0, 2]] = w * x[[1, 2]]
    return a


def _after_a_use_that_saved_nothing(a, x, w):
    b = a + 1
    a.mul_(x)
    return a + b


_RECIPES = [
    ("mul_ number", lambda a, x, w: a.mul_(3.0)),
    ("mul_ tensor", lambda a, x, w: a.mul_(x)),
    ("add_ alpha", lambda a, x, w: a.add_(x * w, alpha=2.0)),
    ("sub_", lambda a, x, w: a.sub_(x * x)),
    ("div_ tensor", lambda a, x, w: a.div_(x * x + 1.0)),
    ("div_ number", lambda a, x, w: a.div_(4.0)),
    ("clamp_", lambda a, x, w: a.clamp_(min=-1.0, max=1.5)),
    ("clamp_ min", lambda a, x, w: a.clamp_(min=-1.0)),
    ("copy_", lambda a, x, w: a.copy_(x * w)),
    ("fill_", lambda a, x, w: a.fill_(0.5)),
    ("zero_", lambda a, x, w: a.zero_()),
    ("chain", lambda a, x, w: a.mul_(x).add_(1.0).div_(w)),
    ("+=", _iadd), ("-=", _isub), ("*=", _imul), ("/=", _idiv),
    ("setitem number", _setitem_number), ("setitem tensor", _setitem_tensor),
    ("setitem slice", _setitem_slice), ("setitem integer array", _setitem_integer_array),
    ("after a use that saved nothing", _after_a_use_that_saved_nothing),
]


def _run_recipe(lib, recipe):
    x = _leaf(lib, [0.4, -1.3, 2.1])
    w = _leaf(lib, 0.75)
    a = x * 2
    out = recipe(a, x, w)
    bumped = a._version > 0
    loss = (out * _leaf(lib, [1.0, -2.0, 3.0], requires_grad=False)).sum() + x.sum()
    loss.backward()
    return {"out": out, "x": x.grad, "w": w.grad, "bumped": bumped}


@pytest.mark.parametrize("name, recipe", _RECIPES, ids=[n for n, _ in _RECIPES])
def test_in_place_ops_on_graph_tensors_give_torch_values_and_gradients(torch, name, recipe):
    """Every in-place op on a non-leaf is recorded: values and the gradients reaching x and w
    (through the op's operand or the written value) are PyTorch's."""
    expected, actual = _run_recipe(torch, recipe), _run_recipe(mg, recipe)
    assert expected["bumped"] and actual["bumped"]
    for key in ("out", "x", "w"):
        _assert_same(actual[key], expected[key])


_OUT_OF_PLACE = [  # in-place call on (a, b), the same op out of place
    (lambda a, b: a.add_(b), operator.add), (lambda a, b: a.sub_(b), operator.sub),
    (lambda a, b: a.mul_(b), operator.mul), (lambda a, b: a.div_(b), operator.truediv),
    (operator.iadd, operator.add), (operator.isub, operator.sub),
    (operator.imul, operator.mul), (operator.itruediv, operator.truediv),
    (lambda a, b: a.add_(b, alpha=-2.0), lambda a, b: a - 2.0 * b),
]


@settings(FAST, max_examples=40)
@given(st.data())
def test_in_place_op_on_a_graph_tensor_differentiates_like_its_out_of_place_twin(data):
    """a.op_(b) in a graph gives the values and gradients (for x and for b) of a op b,
    with b broadcast over a's leading axes."""
    shape = data.draw(shapes(min_dims=1), label="shape")
    x_start = data.draw(values(shape), label="x")
    b_start = data.draw(values(shape[data.draw(st.integers(0, len(shape)), label="cut"):]),
                        label="b")
    in_place, out_of_place = data.draw(st.sampled_from(_OUT_OF_PLACE), label="op")
    results = []
    for step in (in_place, out_of_place):
        x, b = mg.tensor(x_start, requires_grad=True), mg.tensor(b_start, requires_grad=True)
        c = step(x * 1.5, b)
        (c * c).sum().backward()
        results.append((c.data.copy(), x.grad.data, b.grad.data))
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("make_optimizer", [
    lambda params: mg.optim.SGD(params, lr=0.1),
    lambda params: mg.optim.SGD(params, lr=0.1, momentum=0.9),
    lambda params: mg.optim.Adam(params, lr=0.01),
], ids=["SGD", "SGD momentum", "Adam"])
def test_optimizer_step_updates_in_place_and_a_stale_graph_is_caught(make_optimizer):
    """step() changes the same parameter objects in place and bumps their versions, so a
    backward through a graph recorded before the step raises."""
    lin = mg.nn.Linear(3, 2, rng=0)
    params = list(lin.parameters())
    before = [(p._version, p.data.copy()) for p in params]
    opt = make_optimizer(lin.parameters())
    x = mg.tensor(np.arange(12.0).reshape(4, 3) / 10, requires_grad=True)
    out = (lin(x) ** 2).sum()
    out.backward(retain_graph=True)
    opt.step()
    assert all(now is then for now, then in zip(lin.parameters(), params))
    for p, (version, data) in zip(params, before):
        assert p._version > version and not np.array_equal(p.data, data)
        assert p.is_leaf and p.requires_grad
    with pytest.raises(RuntimeError, match="inplace"):
        out.backward()
    opt.zero_grad()
    (lin(x) ** 2).sum().backward()  # a graph recorded after the step is fine
    assert all(p.grad is not None for p in params)


def test_torch_catches_the_stale_graph_after_a_step_too(torch):
    """PyTorch raises in the same situation (an input requiring grad, so the weight is saved)."""
    lin = torch.nn.Linear(3, 2, dtype=torch.float64)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    x = _leaf(torch, np.arange(12.0).reshape(4, 3) / 10)
    out = (lin(x) ** 2).sum()
    out.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="inplace"):
        out.backward()


def test_writing_into_data_is_the_unchecked_escape_hatch():
    """x.data[...] = v changes the values behind autograd's back: no version bump, no error."""
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    x.data[...] = 5.0
    assert x._version == 0
    y.sum().backward()
    assert x.grad is not None and x.grad.shape == (2,)


@pytest.mark.parametrize("call", [
    lambda t: t.add_(0.5), lambda t: operator.iadd(t, 0.5), lambda t: t.mul_(1.5),
    lambda t: t.div_(2), lambda t: operator.itruediv(t, 2),
    lambda t: t.sub_(mg.tensor([0.5, 0.5])),
], ids=["add_", "+=", "mul_", "div_", "/=", "sub_ tensor"])
def test_in_place_cannot_turn_an_integer_tensor_into_floats(call):
    """A float result cannot be written into an int64 tensor: RuntimeError, nothing changed."""
    t = mg.tensor([1, 2])
    assert t.dtype == np.int64
    with pytest.raises(RuntimeError):
        call(t)
    np.testing.assert_array_equal(t.data, [1, 2])
    assert t.dtype == np.int64 and t._version == 0


def test_integer_in_place_with_an_integer_result_works():
    """An int64 tensor takes integer in-place results and stays int64."""
    t = mg.tensor([1, 2])
    t.mul_(3)
    t += 1
    np.testing.assert_array_equal(t.data, [4, 7])
    assert t.dtype == np.int64


_SHAPE_ERRORS = [
    ("add_", (2, 3), (4,), lambda t, o: t.add_(o)),
    ("mul_", (2, 3), (4,), lambda t, o: t.mul_(o)),
    ("copy_", (2, 3), (4,), lambda t, o: t.copy_(o)),
    ("sub_ would grow", (3,), (2, 3), lambda t, o: t.sub_(o)),
    ("+= would grow", (3,), (2, 3), operator.iadd),
]


@pytest.mark.parametrize("name, shape, other, call", _SHAPE_ERRORS,
                         ids=[n for n, *_ in _SHAPE_ERRORS])
def test_in_place_shape_mismatch_raises(name, shape, other, call):
    """An operand that does not broadcast to the tensor's own shape is a RuntimeError."""
    t = mg.tensor(np.zeros(shape))
    with pytest.raises(RuntimeError):
        call(t, mg.tensor(np.ones(other)))
    assert t.shape == shape and t._version == 0
    np.testing.assert_array_equal(t.data, np.zeros(shape))


@pytest.mark.parametrize("name, shape, other, call", _SHAPE_ERRORS,
                         ids=[n for n, *_ in _SHAPE_ERRORS])
def test_torch_raises_the_same_class_for_in_place_mistakes(torch, name, shape, other, call):
    """PyTorch raises RuntimeError for the same shape and dtype mistakes."""
    with pytest.raises(RuntimeError):
        call(torch.zeros(shape, dtype=torch.float64), torch.ones(other, dtype=torch.float64))
    with pytest.raises(RuntimeError):
        torch.tensor([1, 2]).add_(0.5)


# ----------------------------------------------------------------------------------------------
# Grad mode: plain call, context manager, decorator; per thread
# ----------------------------------------------------------------------------------------------

def test_set_grad_enabled_as_a_plain_call():
    """mg.set_grad_enabled(False) turns recording off until turned back on."""
    x = mg.tensor([1.0], requires_grad=True)
    try:
        mg.set_grad_enabled(False)
        assert not mg.is_grad_enabled()
        assert (x * 2).grad_fn is None
        with mg.set_grad_enabled(True):
            assert mg.is_grad_enabled() and (x * 2).requires_grad
        assert not mg.is_grad_enabled()  # the block restores the mode it found
    finally:
        mg.set_grad_enabled(True)
    assert mg.is_grad_enabled() and (x * 2).requires_grad


def test_set_grad_enabled_as_context_manager_and_decorator():
    """As a block or a decorator it applies inside only; decorating changes nothing outside."""
    x = mg.tensor([1.0], requires_grad=True)
    with mg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert mg.is_grad_enabled()

    @mg.set_grad_enabled(False)
    def evaluate():
        return mg.is_grad_enabled(), x * 2

    assert mg.is_grad_enabled()
    enabled, y = evaluate()
    assert not enabled and y.grad_fn is None
    assert mg.is_grad_enabled() and (x * 2).requires_grad


def _start(target, on_error=None):
    """Run ``target`` in a thread; its exception (if any) is kept for the test to re-raise,
    after ``on_error()`` has released whoever waits for the thread."""
    errors = []

    def run():
        try:
            target()
        except BaseException as error:  # noqa: BLE001 (re-raised in the main thread)
            errors.append(error)
            if on_error is not None:
                on_error()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def _finish(thread, errors):
    thread.join(WAIT)
    assert not thread.is_alive()
    if errors:
        raise errors[0]


def test_no_grad_in_another_thread_does_not_stop_this_one():
    """While a thread sits inside no_grad, the main thread still records graphs."""
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    inside, release = threading.Event(), threading.Event()
    seen = {}

    def worker():
        with mg.no_grad():
            inside.set()
            assert release.wait(WAIT)
            seen["enabled"], seen["recorded"] = mg.is_grad_enabled(), (x * 2).requires_grad
        seen["after"] = mg.is_grad_enabled()

    thread, errors = _start(worker, on_error=inside.set)
    try:
        assert inside.wait(WAIT)
        assert mg.is_grad_enabled()
        y = x * 2
        assert y.requires_grad is True and y.grad_fn is not None
        y.sum().backward()
        np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])
    finally:
        release.set()
    _finish(thread, errors)
    assert seen == {"enabled": False, "recorded": False, "after": True}


def test_a_new_thread_starts_with_grad_enabled_while_this_one_is_in_no_grad():
    """no_grad in the main thread does not reach a thread started inside it, and the thread's
    own graph building leaves the main thread's no_grad in force."""
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    built, release = threading.Event(), threading.Event()
    seen = {}

    def worker():
        seen["enabled"] = mg.is_grad_enabled()
        y = (x * 3).sum()
        seen["recorded"] = y.requires_grad
        (seen["grad"],) = mg.grad(y, [x])
        built.set()
        assert release.wait(WAIT)

    with mg.no_grad():
        thread, errors = _start(worker, on_error=built.set)
        try:
            assert built.wait(WAIT)
            assert not mg.is_grad_enabled() and (x * 2).grad_fn is None
        finally:
            release.set()
        _finish(thread, errors)
    assert seen["enabled"] is True and seen["recorded"] is True
    np.testing.assert_array_equal(seen["grad"].data, [3.0, 3.0])


def test_overlapping_no_grad_blocks_in_two_threads_each_restore_their_own_mode():
    """Thread A enters no_grad, then B; A leaves, then B: both end with grad enabled (a shared
    mode would be left off by B restoring what it saw on entry)."""
    x = mg.tensor([1.0], requires_grad=True)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def thread_a():
        with mg.no_grad():
            a_in.set()
            assert b_in.wait(WAIT)
        a_out.set()
        seen["a"] = mg.is_grad_enabled(), (x * 2).requires_grad

    def thread_b():
        assert a_in.wait(WAIT)
        with mg.no_grad():
            b_in.set()
            assert a_out.wait(WAIT)
        seen["b"] = mg.is_grad_enabled(), (x * 2).requires_grad

    def release_all():
        for event in (a_in, b_in, a_out):
            event.set()

    started = [_start(thread_a, release_all), _start(thread_b, release_all)]
    for thread, errors in started:
        _finish(thread, errors)
    assert seen == {"a": (True, True), "b": (True, True)}
    assert mg.is_grad_enabled()


def test_a_plain_set_grad_enabled_call_stays_in_its_thread():
    """A thread that turns grad off with a plain call does not turn it off for others."""
    done = threading.Event()

    def worker():
        mg.set_grad_enabled(False)
        assert not mg.is_grad_enabled()
        done.set()

    thread, errors = _start(worker, on_error=done.set)
    assert done.wait(WAIT)
    _finish(thread, errors)
    assert mg.is_grad_enabled()
    assert (mg.tensor([1.0], requires_grad=True) * 2).requires_grad


def _train(seed, barrier=None, steps=3):
    """A few SGD steps of a tiny Linear model; returns each step's weight and bias gradients.
    With a barrier, it meets another thread inside forward, inside backward and inside an
    evaluation under no_grad."""

    class Meet(mg.Function):
        @staticmethod
        def forward(ctx, x):
            if barrier is not None:
                barrier.wait()
            return x.copy()

        @staticmethod
        def backward(ctx, grad):
            if barrier is not None:
                barrier.wait()
            return grad

    rng = np.random.default_rng(seed)
    lin = mg.nn.Linear(3, 2, rng=seed)
    opt = mg.optim.SGD(lin.parameters(), lr=0.1)
    x, target = mg.tensor(rng.normal(size=(5, 3))), mg.tensor(rng.normal(size=(5, 2)))
    grads = []
    for _ in range(steps):
        loss = ((Meet.apply(lin(x)) - target) ** 2).mean()
        loss.backward()
        grads.append([p.grad.data.copy() for p in lin.parameters()])
        opt.step()
        opt.zero_grad()
        with mg.no_grad():
            if barrier is not None:
                barrier.wait()
            assert lin(x).grad_fn is None
    return grads


def test_two_threads_training_concurrently_get_single_threaded_gradients():
    """Two threads training their own model at the same time (forced to overlap in forward,
    backward and no_grad) compute exactly what each computes alone."""
    expected = {seed: _train(seed) for seed in (1, 2)}
    barrier = threading.Barrier(2, timeout=WAIT)
    got = {}

    def worker(seed):
        def run():
            got[seed] = _train(seed, barrier)
        return run

    started = [_start(worker(seed), on_error=barrier.abort) for seed in (1, 2)]
    for thread, errors in started:
        _finish(thread, errors)
    for seed in (1, 2):
        for got_step, want_step in zip(got[seed], expected[seed], strict=True):
            for g, want in zip(got_step, want_step, strict=True):
                np.testing.assert_allclose(g, want, rtol=1e-12)
    assert mg.is_grad_enabled()


# ----------------------------------------------------------------------------------------------
# 0-d leaves used more than once
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, loss, expected", [
    ("s + s", lambda s: s + s, 2.0),
    ("s * s", lambda s: s * s, 3.0),
    ("stack", lambda s: mg.stack([s, s]).sum(), 2.0),
    ("broadcast", lambda s: s.broadcast_to((3,)).sum() + s, 4.0),
], ids=["s + s", "s * s", "stack", "broadcast"])
def test_a_0d_leaf_used_twice_gets_the_summed_gradient(name, loss, expected):
    """Both uses of a 0-d leaf add into one 0-d Tensor gradient."""
    s = mg.tensor(1.5, requires_grad=True)
    loss(s).backward()
    assert isinstance(s.grad, mg.Tensor) and s.grad.shape == ()
    assert s.grad.item() == expected


def test_mg_grad_of_a_0d_leaf_returns_a_tensor():
    """mg.grad hands back Tensors (not NumPy scalars), 0-d for a 0-d input."""
    s = mg.tensor(1.5, requires_grad=True)
    grads = mg.grad(s + s, [s])
    assert isinstance(grads, tuple) and len(grads) == 1
    (g,) = grads
    assert isinstance(g, mg.Tensor) and g.shape == () and g.item() == 2.0
    assert s.grad is None


def test_0d_leaves_used_twice_match_torch(torch):
    """The 0-d snippets give PyTorch's gradients (value and shape)."""
    cases = [lambda s, lib: s + s, lambda s, lib: s * s,
             lambda s, lib: lib.stack([s, s]).sum(),
             lambda s, lib: s.broadcast_to((3,)).sum() + s,
             lambda s, lib: (s * s + s) * s]
    for case in cases:
        grads = {}
        for lib in (torch, mg):
            s = _leaf(lib, 1.5)
            case(s, lib).backward()
            assert tuple(s.grad.shape) == ()
            grads[lib] = s.grad
        _assert_same(grads[mg], grads[torch])


# ----------------------------------------------------------------------------------------------
# Integer and bool results
# ----------------------------------------------------------------------------------------------

def test_integer_and_bool_results_never_require_grad():
    """Casts to integers or bools and comparisons are constants, with no grad_fn."""
    x = mg.tensor([1.5, -2.0, 0.0], requires_grad=True)
    results = [x.astype(np.int64), x.astype(np.int32), x.astype(np.bool_),
               x > 0, x >= 0, x < 0, x <= 0, x == 0, x != 0]
    for r in results:
        assert r.requires_grad is False and r.grad_fn is None
    assert x.astype(np.int64).dtype == np.int64
    np.testing.assert_array_equal(x.astype(np.int64).data, [1, -2, 0])
    assert x.astype(np.float32).requires_grad  # a float cast stays in the graph


def test_integer_results_match_torch(torch):
    """PyTorch's integer casts and comparisons do not require grad either."""
    x = _leaf(torch, [1.5, -2.0, 0.0])
    for r in (x.to(torch.int64), x > 0, x == 0):
        assert r.requires_grad is False and r.grad_fn is None


# ----------------------------------------------------------------------------------------------
# Seeing intermediate gradients: is_leaf, hooks, retain_grad
# ----------------------------------------------------------------------------------------------

def test_is_leaf():
    """Leaves: tensors made by the user, detached ones, results under no_grad; not op results."""
    x = mg.tensor([1.0], requires_grad=True)
    assert x.is_leaf and mg.tensor([1.0]).is_leaf and (x * 2).detach().is_leaf
    assert not (x * 2).is_leaf
    assert (mg.tensor([1.0]) * 2).is_leaf  # no input requires grad: nothing recorded
    with mg.no_grad():
        assert (x * 2).is_leaf


def test_hook_on_a_non_leaf_sees_the_total_gradient_once():
    """A hook on an intermediate runs once, with the gradient summed over all its uses."""
    x = mg.tensor([1.0, -2.0], requires_grad=True)
    a = x * 2
    calls = []
    a.register_hook(lambda g: calls.append(g.data.copy()))
    (a * a + a).sum().backward()
    assert len(calls) == 1
    np.testing.assert_array_equal(calls[0], 2 * a.data + 1)
    np.testing.assert_array_equal(x.grad.data, 2 * (2 * a.data + 1))


def test_hook_on_a_leaf_sees_each_new_gradient_before_it_is_accumulated():
    """A leaf's hook gets only this backward's gradient, and its return is what accumulates."""
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    seen = []
    handle = x.register_hook(lambda g: (seen.append(g.data.copy()), g * 2)[1])
    (x * 3).sum().backward()
    np.testing.assert_array_equal(seen[0], [3.0, 3.0])
    np.testing.assert_array_equal(x.grad.data, [2.0 + 6.0, 4.0 + 6.0])
    handle.remove()
    (x * 3).sum().backward()
    assert len(seen) == 1
    np.testing.assert_array_equal(x.grad.data, [11.0, 13.0])


def test_a_hook_returning_none_keeps_the_gradient():
    """A hook that only looks changes nothing."""
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    a = x * x
    a.register_hook(lambda g: None)
    x.register_hook(lambda g: None)
    a.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0])


def test_removed_hook_no_longer_runs():
    """handle.remove() unregisters the hook: it neither runs nor changes the gradient."""
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    a = x * 3
    calls = []
    handle = a.register_hook(lambda g: calls.append(1) or g * 10)
    handle.remove()
    a.sum().backward()
    assert calls == []
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])


def test_hook_on_a_tensor_that_does_not_require_grad_raises():
    """There is no gradient to watch on a constant."""
    with pytest.raises(RuntimeError):
        mg.tensor([1.0, 2.0]).register_hook(lambda g: g)
    with mg.no_grad():
        y = mg.tensor([1.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError):
        y.register_hook(lambda g: g)


def _hooked(lib):
    """An intermediate used twice with a doubling hook, plus a direct path from x; and two
    hooks chained on another intermediate (the second sees the first's result)."""
    x = _leaf(lib, [0.5, -1.0, 2.0])
    a = x * 3
    a.register_hook(lambda g: g * 2)
    b = x.tanh()
    b.register_hook(lambda g: g + 1)
    b.register_hook(lambda g: g * 10)
    loss = (a * a).sum() + (x * x).sum() + (a * b).sum()
    loss.backward()
    return x.grad


def test_hooks_replacing_gradients_change_what_reaches_the_leaves(torch):
    """Gradients replaced by hooks (chained in registration order) flow on as in PyTorch."""
    _assert_same(_hooked(mg), _hooked(torch))


def test_a_doubling_hook_on_the_only_path_doubles_the_leaf_gradient():
    """Without torch too: a hook returning grad * 2 on the only path doubles x.grad."""
    x = mg.tensor([1.0, -2.0], requires_grad=True)
    a = x * x
    a.register_hook(lambda g: g * 2)
    a.sum().backward()
    np.testing.assert_array_equal(x.grad.data, 2 * 2 * x.data)


def _graph(x):
    h = x.tanh()
    u = h * x
    return h, u, (u * u).sum() + (h * 3).sum()


@FAST
@given(st.data())
def test_hooks_and_retain_grad_see_what_mg_grad_returns(data):
    """For random inputs, what hooks receive and what retain_grad keeps equal mg.grad's
    gradients of the same intermediates, and x.grad equals mg.grad's leaf gradient."""
    start = data.draw(values(data.draw(shapes(min_dims=0), label="shape")), label="x")
    x = mg.tensor(start, requires_grad=True)
    h, u, loss = _graph(x)
    seen = {"h": [], "u": []}
    h.register_hook(lambda g: seen["h"].append(g.data.copy()))
    u.register_hook(lambda g: seen["u"].append(g.data.copy()))
    h.retain_grad()
    u.retain_grad()
    loss.backward()
    x2 = mg.tensor(start, requires_grad=True)
    h2, u2, loss2 = _graph(x2)
    gh, gu, gx = mg.grad(loss2, [h2, u2, x2])
    assert len(seen["h"]) == 1 and len(seen["u"]) == 1
    np.testing.assert_allclose(seen["h"][0], gh.data, rtol=1e-12)
    np.testing.assert_allclose(seen["u"][0], gu.data, rtol=1e-12)
    np.testing.assert_allclose(h.grad.data, gh.data, rtol=1e-12)
    np.testing.assert_allclose(u.grad.data, gu.data, rtol=1e-12)
    np.testing.assert_allclose(x.grad.data, gx.data, rtol=1e-12)


def _normalized(lib, data):
    """Batch normalization by hand, its four intermediates retaining their gradients."""
    x = _leaf(lib, data)
    m = x.mean(0)
    c = x - m
    v = (c * c).mean(0)
    y = c / (v + 1e-5).sqrt()
    for t in (m, c, v, y):
        t.retain_grad()
    (y ** 3).sum().backward()
    return {"m": m.grad, "c": c.grad, "v": v.grad, "y": y.grad, "x": x.grad}


def test_retain_grad_on_a_batchnorm_computation_matches_torch(torch):
    """retain_grad keeps every intermediate's gradient, equal to PyTorch's."""
    data = np.random.default_rng(0).normal(size=(4, 3))
    expected, actual = _normalized(torch, data), _normalized(mg, data)
    for name in expected:
        _assert_same(actual[name], expected[name], rtol=1e-10)


def test_retain_grad_keeps_the_gradient_of_a_non_leaf():
    """Without torch too: c = x * 2 retains d(loss)/dc."""
    x = mg.tensor([1.0, -2.0], requires_grad=True)
    c = x * 2
    c.retain_grad()
    (c * c).sum().backward()
    np.testing.assert_array_equal(c.grad.data, 2 * c.data)
    assert isinstance(c.grad, mg.Tensor)


def test_reading_the_grad_of_a_non_leaf_warns_and_gives_none():
    """A non-leaf keeps no gradient unless asked: reading .grad warns, as in PyTorch; a leaf's
    .grad and a retaining non-leaf's .grad are read silently."""
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    a = x * 2
    kept = x * 3
    kept.retain_grad()
    (a * kept).sum().backward()
    with pytest.warns(UserWarning):
        assert a.grad is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(x.grad.data, [12.0, 24.0])
        np.testing.assert_array_equal(kept.grad.data, a.data)
        assert mg.tensor([1.0]).grad is None  # a leaf that does not require grad


def test_torch_warns_for_the_grad_of_a_non_leaf(torch):
    """PyTorch's behaviour the previous test follows."""
    x = _leaf(torch, [1.0, 2.0])
    a = x * 2
    (a * a).sum().backward()
    with pytest.warns(UserWarning):
        assert a.grad is None


# ----------------------------------------------------------------------------------------------
# Anomaly detection
# ----------------------------------------------------------------------------------------------

def _sqrt_times_zero(x):
    return (x.sqrt() * 0).sum()  # d/dx sqrt at 0, times 0: 0 / 0


def _x_over_x(x):
    return (x / x).sum()  # the divisor's gradient at 0: -0 / 0


_NAN_BACKWARDS = [(_sqrt_times_zero, "Sqrt", 0), (_x_over_x, "Div", 1)]


def _line_of(function, text):
    """The line number in this file where ``text`` appears inside ``function``."""
    lines, first = inspect.getsourcelines(function)
    return first + next(i for i, line in enumerate(lines) if text in line)


@pytest.mark.parametrize("forward, op, index", _NAN_BACKWARDS, ids=["Sqrt", "Div"])
def test_detect_anomaly_names_the_op_the_output_and_where_it_was_created(forward, op, index):
    """Under detect_anomaly a NaN gradient raises, naming the backward's op and output index,
    and the report shows the file and line of the forward that created the op."""
    x = mg.tensor([0.0, 1.0], requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with mg.autograd.detect_anomaly():
            y = forward(x)
            with pytest.raises(RuntimeError) as excinfo:
                y.backward()
    message = str(excinfo.value)
    assert f"Function '{op}' returned nan values in its {index}th output" in message
    report = "\n".join([message] + [str(w.message) for w in caught])
    line = _line_of(forward, "return")
    assert re.search(rf'test_autograd_semantics\.py"?(, line |:){line}\b', report), report


@pytest.mark.parametrize("forward, op, index", _NAN_BACKWARDS, ids=["Sqrt", "Div"])
def test_without_detect_anomaly_the_nan_backward_runs(forward, op, index):
    """Outside detect_anomaly (including after leaving it) the same backward gives NaN."""
    x = mg.tensor([0.0, 1.0], requires_grad=True)
    with mg.autograd.detect_anomaly():
        pass
    with np.errstate(divide="ignore", invalid="ignore"):
        forward(x).backward()
    assert np.isnan(x.grad.data[0]) and x.grad.data[1] == 0.0


@pytest.mark.parametrize("forward, op, index", _NAN_BACKWARDS, ids=["Sqrt", "Div"])
def test_torch_reports_the_same_output_index(torch, forward, op, index):
    """The output indices above are the ones PyTorch reports for the same forwards."""
    x = _leaf(torch, [0.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autograd.detect_anomaly():
            y = forward(x)
            with pytest.raises(RuntimeError,
                               match=rf"Function '{op}Backward0' returned nan values in its "
                                     rf"{index}th output"):
                y.backward()
