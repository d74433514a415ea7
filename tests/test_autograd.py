"""The autograd engine: accumulation, reuse, grad mode, deep graphs, custom Functions, mg.grad,
and the errors a user meets (raised where they called, naming the op and the shapes)."""
import time
import traceback

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad.autograd import backpropagate, module_scope, topological_order
from conftest import leaves

# ----------------------------------------------------------------------------------------------
# Accumulation and reuse
# ----------------------------------------------------------------------------------------------


def test_grad_is_none_before_backward_and_only_leaves_that_require_grad_get_one():
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    constant = mg.Tensor([3.0, 4.0])
    hidden = x * constant
    assert x.grad is None
    hidden.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 4.0])
    assert constant.grad is None and hidden.grad is None


def test_gradients_accumulate_across_backward_calls():
    x = mg.Tensor([1.0, -2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()  # the same graph again: kept by retain_graph
    np.testing.assert_array_equal(x.grad.data, 2 * 2 * x.data)
    (x * 10).sum().backward()  # another graph
    np.testing.assert_array_equal(x.grad.data, 4 * x.data + 10)
    x.grad = None
    (x * 10).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [10.0, 10.0])


def test_gradient_sums_over_every_use_of_a_reused_tensor():
    x = mg.Tensor([1.5, -0.5], requires_grad=True)
    square = x * x                       # used twice below: a diamond
    y = (square + square * x + x).sum()  # x**2 + x**3 + x
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * x.data + 3 * x.data ** 2 + 1, rtol=1e-15)


def test_leaf_gradients_are_writable_arrays_of_their_own():
    a, b = leaves([1.0, 2.0], [3.0, 4.0])
    upstream = mg.Tensor([1.0, 1.0])
    (a + b).backward(upstream)  # Add hands the same gradient to both inputs
    assert a.grad.data.flags.writeable and b.grad.data.flags.writeable
    a.grad.data[0] = 100.0
    assert b.grad.data[0] == 1.0 and upstream.data[0] == 1.0

    x, w = leaves(np.ones((2, 3)), np.ones(6))
    (x.reshape(6) + w).sum().backward()  # x's gradient a reshaped view of w's
    x.grad.data[0, 0] = 100.0
    assert w.grad.data[0] == 1.0
    (x.sum(axis=0)).sum().backward()  # a broadcast gradient is a real, writable array
    x.grad.data[...] = 0.0


def test_backward_on_a_leaf():
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    x.backward(mg.Tensor([3.0, 4.0]))
    np.testing.assert_array_equal(x.grad.data, [3.0, 4.0])


def test_on_edge_sees_every_edge_and_their_gradients_add_up():
    a, b = leaves([2.0], [5.0])
    y = a * b + a
    edges = []
    grads = backpropagate(y, mg.Tensor([1.0]),
                          on_edge=lambda node, i, t, g: edges.append((node.name, i, t, g.item())))
    assert sorted((name, i, g) for name, i, _, g in edges) == [
        ("Add", 0, 1.0), ("Add", 1, 1.0), ("Mul", 0, 5.0), ("Mul", 1, 2.0)]
    assert grads[a].item() == 6.0 and grads[b].item() == 2.0
    assert a.grad is None  # backpropagate returns gradients, it does not store them


def test_topological_order_lists_each_node_before_its_inputs():
    x = mg.Tensor([1.0], requires_grad=True)
    a = x.exp()
    b = a * x
    c = a + b
    order = topological_order(c.grad_fn)
    assert [n.name for n in order] == ["Add", "Mul", "Exp"]


def test_nodes_record_attributes_and_module_scope():
    x = mg.Tensor(np.ones((2, 3)), requires_grad=True)
    outer, inner = object(), object()
    with module_scope(outer):
        with module_scope(inner):
            y = x.sum(axis=1, keepdims=True)
        z = y * 2
    assert y.grad_fn.attrs == {"axis": (1,), "keepdims": True}
    assert y.grad_fn.scope == (outer, inner) and z.grad_fn.scope == (outer,)
    assert (z + 1).grad_fn.scope == ()


# ----------------------------------------------------------------------------------------------
# Grad mode
# ----------------------------------------------------------------------------------------------

def test_no_grad_and_enable_grad_nest():
    x = mg.Tensor([1.0], requires_grad=True)
    assert mg.is_grad_enabled()
    with mg.no_grad():
        assert not mg.is_grad_enabled()
        y = x * 2
        with mg.enable_grad():
            z = x * 2
            with mg.no_grad():
                w = x * 2
        v = x * 2
    assert mg.is_grad_enabled()
    assert y.grad_fn is None and not y.requires_grad and v.grad_fn is None
    assert z.grad_fn is not None and w.grad_fn is None


def test_grad_mode_as_decorators():
    @mg.no_grad()
    def evaluate(t):
        return t * 2, mg.is_grad_enabled()

    @mg.enable_grad()
    def train(t):
        return t * 2

    x = mg.Tensor([1.0], requires_grad=True)
    y, enabled = evaluate(x)
    assert not enabled and y.grad_fn is None and mg.is_grad_enabled()
    with mg.no_grad():
        assert train(x).grad_fn is not None
        assert not mg.is_grad_enabled()


def test_grad_mode_is_restored_after_an_exception():
    with pytest.raises(KeyError):
        with mg.no_grad():
            raise KeyError("boom")
    assert mg.is_grad_enabled()
    with mg.set_grad_enabled(False):
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()


def test_no_grad_still_checks_shapes_and_computes_values():
    with mg.no_grad():
        x = mg.Tensor(np.ones((2, 3)), requires_grad=True)
        np.testing.assert_array_equal((x + mg.Tensor([1.0, 2.0, 3.0])).data[1], [2.0, 3.0, 4.0])
        with pytest.raises(ValueError, match="add"):
            x + mg.Tensor([1.0, 2.0])


# ----------------------------------------------------------------------------------------------
# A deep graph
# ----------------------------------------------------------------------------------------------

def test_chain_of_100000_ops_backpropagates_without_recursion():
    x = mg.Tensor(2.0, requires_grad=True)
    y = x
    started = time.perf_counter()
    for _ in range(50_000):  # two ops per step
        y = y * 1.00001 - 0.5
    y.backward()
    seconds = time.perf_counter() - started
    np.testing.assert_allclose(x.grad.item(), 1.00001 ** 50_000, rtol=1e-12)
    assert seconds < 30  # generous: this box is slow and shared; usually a second or two
    del y  # freeing the chain must not overflow the stack either


# ----------------------------------------------------------------------------------------------
# Custom Functions (the torch.autograd.Function protocol)
# ----------------------------------------------------------------------------------------------

class Cube(mg.Function):
    """The example from the design notes."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x * x


class ScaledAdd(mg.Function):
    """a + alpha * b, with a non-tensor positional argument and a keyword attribute."""

    @staticmethod
    def forward(ctx, a, b, alpha, *, offset=0.0):
        ctx.seen_needs = tuple(ctx.needs_input_grad)
        return a + alpha * b + offset

    @staticmethod
    def backward(ctx, grad):
        alpha = ctx.inputs[2]
        need_a, need_b, _ = ctx.needs_input_grad
        return (grad if need_a else None), (grad * alpha if need_b else None), None


class SavesOutput(mg.Function):
    """exp, saving its own output: the output comes back attached to the graph."""

    @staticmethod
    def forward(ctx, x):
        out = np.exp(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out


def test_custom_function_cube():
    x = mg.Tensor([-1.5, 0.5, 2.0], requires_grad=True)
    y = Cube.apply(x)
    assert isinstance(y, mg.Tensor) and y.grad_fn.name == "Cube"
    np.testing.assert_allclose(y.data, x.data ** 3, rtol=1e-15)
    (g,) = mg.grad(y.sum(), [x], create_graph=True)
    np.testing.assert_allclose(g.data, 3 * x.data ** 2, rtol=1e-15)
    (gg,) = mg.grad(g.sum(), [x])
    np.testing.assert_allclose(gg.data, 6 * x.data, rtol=1e-15)
    assert mg.gradcheck(Cube.apply, leaves(x.data))
    assert mg.gradgradcheck(Cube.apply, leaves(x.data))


def test_custom_function_with_several_inputs_and_non_tensor_arguments():
    a, b = leaves([1.0, 2.0], [3.0, 4.0])
    y = ScaledAdd.apply(a, b, 0.5, offset=10.0)
    np.testing.assert_allclose(y.data, [12.5, 14.0])
    assert y.grad_fn.attrs == {"offset": 10.0}
    assert y.grad_fn.seen_needs == (True, True, False)
    y.sum().backward()
    np.testing.assert_allclose(a.grad.data, [1.0, 1.0])
    np.testing.assert_allclose(b.grad.data, [0.5, 0.5])
    assert mg.gradcheck(lambda s, t: ScaledAdd.apply(s, t, -2.0), leaves([1.0, 2.0], [3.0, 4.0]))

    constant = mg.Tensor([3.0, 4.0])
    z = ScaledAdd.apply(a, constant, 2.0)
    assert z.grad_fn.seen_needs == (True, False, False)


def test_custom_function_saving_its_output_has_second_derivatives():
    assert mg.gradgradcheck(SavesOutput.apply, leaves([[0.5, -1.0], [1.5, 0.0]]))


def test_custom_function_without_grad_builds_no_node():
    y = Cube.apply(mg.Tensor([2.0]))
    assert y.grad_fn is None and y.data[0] == 8.0
    with mg.no_grad():
        assert Cube.apply(mg.Tensor([2.0], requires_grad=True)).grad_fn is None


@pytest.mark.parametrize("returned", [np.array(["a", "b"]), "ab", np.array([None, 1.0])])
def test_a_forward_that_returns_no_numbers_is_a_clear_error(returned):
    """A custom forward's result must be numbers, whether it comes as an array or not."""
    class Broken(mg.Function):
        @staticmethod
        def forward(ctx, x):
            return returned

        @staticmethod
        def backward(ctx, grad):
            return grad

    with pytest.raises(TypeError, match="Broken.forward returned .* expected a NumPy array of "
                                        "numbers"):
        Broken.apply(mg.tensor([1.0, 2.0], requires_grad=True))


def test_custom_backward_may_return_an_array():
    class Double(mg.Function):
        @staticmethod
        def forward(ctx, x):
            return 2 * x

        @staticmethod
        def backward(ctx, grad):
            return 2 * grad.data

    x = mg.Tensor(np.ones(3, np.float32), requires_grad=True)
    Double.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0, 2.0])
    assert x.grad.dtype == np.float32


@pytest.mark.parametrize("wrong, message", [
    (lambda grad: (grad, grad), r"Bad\.backward returned 2 gradients, expected 1"),
    (lambda grad: grad.sum(), r"Bad\.backward returned a gradient of shape \(\) for input 0, "
                              r"whose shape is \(3,\)"),
])
def test_custom_backward_mistakes_name_the_op(wrong, message):
    class Bad(mg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, grad):
            return wrong(grad)

    x = mg.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=message):
        Bad.apply(x).sum().backward()


# ----------------------------------------------------------------------------------------------
# mg.grad
# ----------------------------------------------------------------------------------------------

def test_grad_returns_gradients_without_touching_dot_grad():
    x, unused = leaves([1.0, 2.0], [3.0])
    # An input the output does not depend on is an error unless allowed (PyTorch's default).
    with pytest.raises(RuntimeError, match=r"grad: input 1 \(shape \(1,\)\) was not used.*"
                                           r"allow_unused=True"):
        mg.grad((x * x).sum(), [x, unused])
    gx, gu = mg.grad((x * x).sum(), [x, unused], allow_unused=True)
    np.testing.assert_array_equal(gx.data, [2.0, 4.0])
    assert gu is None and x.grad is None and unused.grad is None
    (gx,) = mg.grad(x * x, [x], grad_outputs=mg.Tensor([1.0, -1.0]))
    np.testing.assert_array_equal(gx.data, [2.0, -4.0])


def test_grad_of_a_non_scalar_needs_grad_output():
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"grad: .*single-element.*\(2,\)"):
        mg.grad(x * x, [x])


# ----------------------------------------------------------------------------------------------
# Gradient checking catches wrong backwards (so the checks in the other files mean something)
# ----------------------------------------------------------------------------------------------

class WrongCube(Cube):
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x  # should be 3 x^2


class ConstantDerivativeCube(Cube):
    """Right first derivative, but computed from raw arrays: not differentiable again."""

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * mg.Tensor(3 * x.data ** 2)


def test_gradcheck_detects_a_wrong_backward():
    x = leaves([0.5, 2.0, -1.5])
    with pytest.raises(mg.GradcheckError, match="input 0"):
        mg.gradcheck(WrongCube.apply, x)
    assert mg.gradcheck(WrongCube.apply, x, raise_exception=False) is False
    assert mg.gradcheck(ConstantDerivativeCube.apply, x)
    with pytest.raises(mg.GradcheckError):
        mg.gradgradcheck(ConstantDerivativeCube.apply, x)


# ----------------------------------------------------------------------------------------------
# Bad input: clear errors, raised where the user called
# ----------------------------------------------------------------------------------------------

def _raised_inside_a_backward(excinfo) -> bool:
    return any(frame.name == "backward" for frame in traceback.extract_tb(excinfo.tb))


@pytest.mark.parametrize("name, op", [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b), ("pow", lambda a, b: a ** b),
])
def test_binary_shape_mismatch_names_the_op_and_both_shapes(name, op):
    a = mg.Tensor(np.ones((2, 3)), requires_grad=True)
    b = mg.Tensor(np.ones(4), requires_grad=True)
    with pytest.raises(ValueError, match=rf"{name}.*\(2, 3\).*\(4,\)") as excinfo:
        op(a, b)
    assert not _raised_inside_a_backward(excinfo)
    with pytest.raises(ValueError, match=rf"{name}.*\(2, 3\).*\(4,\)"):
        op(a, np.ones(4))  # an ndarray operand too


@pytest.mark.parametrize("shape_a, shape_b", [
    ((2, 3), (4, 2)), ((3,), (4,)), ((2, 3), (2,)), ((5, 3), (2, 4, 2)),
    ((2, 3, 4), (5, 4, 2)),  # inner dims agree, batch dims do not broadcast
])
def test_matmul_shape_mismatch_names_the_op_and_both_shapes(shape_a, shape_b):
    a = mg.Tensor(np.ones(shape_a), requires_grad=True)
    with pytest.raises(ValueError, match=rf"matmul.*{shape_a}.*{shape_b}".replace("(", r"\(")
                       .replace(")", r"\)")):
        a @ mg.Tensor(np.ones(shape_b))


@pytest.mark.parametrize("operand", [mg.Tensor(2.0), 2.0])
def test_matmul_with_a_scalar_is_refused(operand):
    x = mg.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"matmul.*at least 1 dim"):
        x @ operand
    with pytest.raises(ValueError, match=r"matmul.*at least 1 dim"):
        operand @ x


def test_backward_without_any_tensor_requiring_grad():
    y = (mg.Tensor([1.0, 2.0]) * 3).sum()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()
    with mg.no_grad():
        z = (mg.Tensor([1.0], requires_grad=True) * 3).sum()
    with pytest.raises(RuntimeError, match="does not require grad"):
        z.backward()


def test_backward_of_a_non_scalar_needs_a_grad():
    y = mg.Tensor([1.0, 2.0], requires_grad=True) * 3
    with pytest.raises(RuntimeError, match=r"\(2,\)"):
        y.backward()
    with pytest.raises(RuntimeError, match=r"\(3,\).*\(2,\)"):
        y.backward(mg.Tensor([1.0, 1.0, 1.0]))


@pytest.mark.parametrize("call, error, message", [
    (lambda x: x.reshape(4, 2), ValueError, r"reshape.*\(2, 3\).*\(4, 2\)"),
    (lambda x: x.reshape(-1, -1), ValueError, r"reshape"),
    (lambda x: x.transpose((0, 0)), ValueError, r"transpose.*\(2, 3\)"),
    (lambda x: x.transpose(0, 2), IndexError, r"transpose: axis 2 is out of range"),
    (lambda x: x.broadcast_to((3, 3)), ValueError, r"broadcast_to.*\(2, 3\).*\(3, 3\)"),
    (lambda x: x.sum(axis=2), ValueError, r"sum: axis 2.*2 dims"),
    (lambda x: x.mean(axis=(0, -2)), ValueError, r"mean: repeated axis"),
    (lambda x: x.var(axis=-3), ValueError, r"var: axis -3"),
    (lambda x: x.max(axis=5), ValueError, r"max: axis 5"),
    (lambda x: x[5], IndexError, r"\(2, 3\)"),
    (lambda x: x[:, [0, 3]], IndexError, r"\(2, 3\)"),
    (lambda x: mg.concatenate([x, mg.Tensor(np.ones((2, 2)))]), ValueError, r"concatenate"),
    (lambda x: mg.stack([x, x.T]), ValueError, r"stack.*\(2, 3\).*\(3, 2\)"),
    (lambda x: mg.where(np.ones(4, bool), x, 0.0), ValueError, r"where.*\(4,\).*\(2, 3\)"),
])
def test_bad_arguments_raise_at_the_call(call, error, message):
    x = mg.Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(error, match=message) as excinfo:
        call(x)
    assert not _raised_inside_a_backward(excinfo)


# ----------------------------------------------------------------------------------------------
# Numerical stability
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype, offset, noise", [(np.float64, 1e8, 1e-2), (np.float32, 1e4, 1e-1)])
def test_var_is_stable_far_from_zero(dtype, offset, noise):
    rng = np.random.default_rng(0)
    deviations = rng.standard_normal(1000) * noise
    x = mg.Tensor((offset + deviations).astype(dtype), requires_grad=True)
    v = x.var()
    exact = np.var(x.data.astype(np.float64) - offset)  # the shift itself is exact
    np.testing.assert_allclose(v.item(), exact, rtol=1e-4 if dtype == np.float32 else 1e-9)
    np.testing.assert_allclose(v.item(), np.var(x.data), rtol=1e-4 if dtype == np.float32 else 1e-9)
    v.backward()
    centered = x.data.astype(np.float64) - offset
    # The mean itself is only known to about one ulp of the offset.
    np.testing.assert_allclose(x.grad.data, 2 * (centered - centered.mean()) / 1000,
                               rtol=1e-3, atol=2 * np.spacing(dtype(offset)) / 1000)


def test_grad_of_an_intermediate_tensor():
    """mg.grad also answers for tensors inside the graph, summing every edge into them."""
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    z = y * 3 + y
    grad_y, grad_x = mg.grad(z.sum(), [y, x])
    np.testing.assert_array_equal(grad_y.data, [4.0, 4.0])
    np.testing.assert_array_equal(grad_x.data, [8.0, 8.0])


def test_power_zero_has_zero_slope_even_at_zero():
    z = mg.tensor([0.0, 1.0], requires_grad=True)
    (z ** 0).sum().backward()
    np.testing.assert_array_equal(z.grad.data, [0.0, 0.0])
    z.grad = None
    (z ** mg.tensor([0.0, 2.0])).sum().backward()
    np.testing.assert_array_equal(z.grad.data, [0.0, 2.0])


def test_integer_constants_take_the_float_dtype():
    """As in PyTorch: float32 combined with integer tensors or float64 constants stays float32."""
    x = mg.tensor(np.float32([1, 2, 3]), requires_grad=True)
    assert (x * mg.Tensor([1, 2, 3])).dtype == np.float32
    assert mg.concatenate([x, [1.0]]).dtype == np.float32
    assert mg.stack([x, np.ones(3)]).dtype == np.float32
    assert (mg.Tensor([1, 2]) * mg.Tensor([3, 4])).dtype == np.int64


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.integers(0, 3), max_size=4).map(tuple), min_size=1, max_size=3))
def test_broadcast_shape_agrees_with_numpy(shapes):
    from minigrad.core.ops import broadcast_shape
    try:
        expected = np.broadcast_shapes(*shapes)
    except ValueError:
        with pytest.raises(ValueError, match="cannot be broadcast together"):
            broadcast_shape("op", *shapes)
    else:
        assert broadcast_shape("op", *shapes) == expected


def test_custom_function_backward_always_gets_tensors():
    """Library ops may run a first-order backward on plain arrays (runs_on_arrays); a user's
    Function is written against Tensors and must always get them, as the contract says."""
    seen = []

    class Spy(mg.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * 2.0

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            seen.append((type(grad), type(x)))
            return grad * 2.0

    x = mg.tensor([1.0, 2.0], requires_grad=True)
    (Spy.apply(x * 3.0).exp()).sum().backward()
    mg.grad(Spy.apply(x).sum(), [x], create_graph=True)
    assert seen == [(mg.Tensor, mg.Tensor)] * 2


def test_first_order_gradients_agree_with_the_differentiable_backward():
    """The same backward formulas run on arrays (first order) and on Tensors (create_graph)."""
    rng = np.random.default_rng(3)
    x = mg.tensor(rng.uniform(0.5, 2.0, (3, 4)), requires_grad=True)
    w = mg.tensor(rng.standard_normal((4, 2)), requires_grad=True)

    def f():
        h = (x @ w).tanh() + x[:, :2] ** 2 - x.var(axis=0, keepdims=True)[:, 1:3]
        return (mg.concatenate([h, x.sqrt()], axis=1).max(axis=1) * x.mean()).sum()

    fast = mg.grad(f(), [x, w])
    differentiable = mg.grad(f(), [x, w], create_graph=True)
    for a, b in zip(fast, differentiable):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-14)


def test_summing_paths_never_touches_a_shared_gradient():
    """Backward sums three paths' gradients; the gradient arrays it was handed (here one array,
    given by Add to both inputs, and the caller's) stay unchanged."""
    x = mg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    a = x * 1.5
    b = (a + a) + a
    upstream = np.full((2, 3), 2.0)
    b.backward(mg.tensor(upstream))
    np.testing.assert_array_equal(x.grad.data, np.full((2, 3), 9.0))
    np.testing.assert_array_equal(upstream, np.full((2, 3), 2.0))
    a = x * 1.5  # (backward freed the first graph)
    c = (a + a) * a  # the same array reaches a by two routes and is then reused
    x.grad = None
    c.sum().backward()
    np.testing.assert_allclose(x.grad.data, 1.5 * (2 * a.data + 2 * a.data))


# ----------------------------------------------------------------------------------------------
# The engine's one speed switch: library ops' first-order backward on arrays
# ----------------------------------------------------------------------------------------------

@st.composite
def broadcast_pair(draw):
    """A full shape and a shape that broadcasts to it (fewer dims, or 1s)."""
    full = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    kept = draw(st.integers(0, len(full)))
    small = tuple(n if draw(st.booleans()) else 1 for n in full[len(full) - kept:])
    return full, small


GRAPHS = {
    "broadcast arithmetic": lambda x, w: ((x.tanh() * 2.0 - w).relu() + x.sigmoid() * w).exp() - w,
    "reductions": lambda x, w: (x * w).var(axis=0, keepdims=True) + x.max(axis=-1, keepdims=True)
    - (x / (w * w + 1.0)).mean(),
    "movement": lambda x, w: mg.concatenate([x[..., :1] ** 3, (x + w).abs().sqrt()], axis=-1),
    "batchnorm, composed and fused": lambda x, w: (
        (x - x.mean(axis=0)) / (x.var(axis=0) + 1e-5).sqrt() * w
        + mg.functional.batch_norm(x.reshape(x.shape[0], -1), None, None, training=True,
                                   fused=True).reshape(x.shape) * w) if x.shape[0] > 1 else x * w,
}


@settings(max_examples=60, deadline=None)
@given(broadcast_pair(), st.sampled_from(sorted(GRAPHS)), st.integers(0, 2**31 - 1))
def test_array_backward_equals_the_plain_tensor_backward(shapes, graph, seed):
    """The engine's fast path (library ops' first-order backward on NumPy arrays) gives the
    gradients of the plain path (every backward on Tensors) and of ``create_graph=True``, and
    leaves the caller's gradient and the inputs untouched."""
    full, small = shapes
    rng = np.random.default_rng(seed)
    x_data, w_data = rng.uniform(0.5, 2.0, full), rng.uniform(0.5, 2.0, small)
    with mg.no_grad():
        shape = GRAPHS[graph](mg.tensor(x_data), mg.tensor(w_data)).shape
    upstream = rng.standard_normal(shape)
    kept = (x_data.copy(), w_data.copy(), upstream.copy())

    def gradients(array_backward, create_graph=False):
        previous = mg.autograd.array_backward(array_backward)
        try:
            x, w = mg.tensor(x_data, requires_grad=True), mg.tensor(w_data, requires_grad=True)
            GRAPHS[graph](x, w).backward(mg.tensor(upstream), create_graph=create_graph)
        finally:
            mg.autograd.array_backward(previous)
        return x.grad.data, w.grad.data

    fast, plain, recorded = gradients(True), gradients(False), gradients(True, True)
    for a, b, c in zip(fast, plain, recorded):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)
    for before, after in zip(kept, (x_data, w_data, upstream)):
        np.testing.assert_array_equal(before, after)


def test_the_switch_decides_what_a_library_backward_receives(monkeypatch):
    """array_backward(True): a library op's first-order backward gets arrays; off, Tensors."""
    from minigrad.core.ops import Mul
    seen = []
    original = Mul.backward

    def spy(ctx, grad):
        seen.append(type(grad))
        return original(ctx, grad)

    monkeypatch.setattr(Mul, "backward", staticmethod(spy))
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    (x * 3.0).sum().backward()
    previous = mg.autograd.array_backward(False)
    try:
        (x * 3.0).sum().backward()
    finally:
        assert mg.autograd.array_backward(previous) is False
    assert seen == [np.ndarray, mg.Tensor]


def test_a_gradient_someone_holds_is_never_written_into():
    """mg.grad keeps each intermediate's gradient as it flows past; the ops further down must
    then leave those arrays alone (the pass sees the extra reference) and make new ones."""
    x = mg.tensor(np.full(3, 2.0), requires_grad=True)
    h1 = x * 3.0
    h2 = h1.exp() * 5.0
    h3 = (h2 * 7.0).relu()
    grad_x, grad_h1, grad_h2, grad_h3 = mg.grad(h3.sum(), [x, h1, h2, h3])
    np.testing.assert_allclose(grad_h3.data, np.ones(3))
    np.testing.assert_allclose(grad_h2.data, np.full(3, 7.0))
    np.testing.assert_allclose(grad_h1.data, np.full(3, 35.0) * np.exp(6.0))
    np.testing.assert_allclose(grad_x.data, np.full(3, 105.0) * np.exp(6.0))


