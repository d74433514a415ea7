"""Shared strategies, fixtures and checks for the tests.

The core tests draw shapes, axes and values with hypothesis and compare every op twice: its
forward value against NumPy, and its gradient against finite differences (``mg.gradcheck``).
Values are kept away from the points where an op is not differentiable (0 for abs/relu, near
ties for max) or not defined (log/sqrt of non-positive numbers), because finite differences
straddling such a point measure nothing meaningful.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg

# gradcheck evaluates the function twice per input element: few, small examples keep each test
# file to seconds. No deadline: the first example of a run pays for imports and warm-up.
FAST = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def shapes(min_dims=0, max_dims=3, max_side=3):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


def values(shape, low=0.3, high=2.0, positive=False):
    """float64 arrays whose magnitudes lie in [low, high]; signed unless ``positive``."""
    magnitude = st.floats(low, high)
    element = magnitude if positive else st.one_of(magnitude, magnitude.map(lambda v: -v))
    return hnp.arrays(np.float64, shape, elements=element)


def distinct(shape):
    """float64 arrays whose elements differ pairwise by at least 0.25 (no near-ties for max)."""
    size = int(np.prod(shape, dtype=int))
    return st.permutations(range(size)).map(
        lambda order: (np.array(order, dtype=np.float64) * 0.25 - 1.0).reshape(shape))


def axes(ndim):
    """What a reduction's ``axis`` accepts: None, an int (negative too), or a tuple of ints."""
    choices = [st.none(), hnp.valid_tuple_axes(ndim)]
    if ndim:
        choices.append(st.integers(-ndim, ndim - 1))
    return st.one_of(choices)


def leaves(*arrays):
    """float64 tensors that require grad, one per array."""
    return [mg.Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]


def check_op(fn, reference, *arrays, rtol=1e-12):
    """``fn`` on tensors matches ``reference`` on the same arrays in NumPy, and its gradient
    with respect to every argument matches finite differences."""
    inputs = leaves(*arrays)
    out = fn(*inputs)
    expected = reference(*[np.array(a, dtype=np.float64) for a in arrays])
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=rtol, atol=1e-14)
    assert mg.gradcheck(fn, inputs)


@pytest.fixture
def default_float32():
    """Make float32 the default dtype for one test, and restore the previous default after."""
    previous = mg.get_default_dtype()
    mg.set_default_dtype(np.float32)
    yield
    mg.set_default_dtype(previous)


def both_paths(fn):
    """fn() with the compiled kernels on, then off: (on, off), to compare the two paths."""
    from minigrad import kernels
    with kernels.use_kernels(True):
        on = fn()
    with kernels.use_kernels(False):
        off = fn()
    return on, off
