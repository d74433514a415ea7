"""Bad input to tensors, ops, functions and layers: each mistake named, with the exception class
PyTorch raises for the same mistake (compared with PyTorch where it is installed)."""
from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
import minigrad.nn as nn
from minigrad import data, optim
from minigrad.core.errors import ArgumentTypeError

try:
    import torch
except ImportError:  # the PyTorch columns are skipped
    torch = None


def _t(*shape):
    return mg.tensor(np.arange(float(np.prod(shape))).reshape(shape))


# (minigrad call, PyTorch call or None, expected class, message pattern)
CASES = {
    "transpose(1, 2) of 2-D": (lambda: _t(2, 3).transpose(1, 2),
                               lambda: torch.zeros(2, 3).transpose(1, 2),
                               IndexError, r"transpose: axis 2 is out of range"),
    "transpose(0, 5)": (lambda: _t(2, 3).transpose(0, 5),
                        lambda: torch.zeros(2, 3).transpose(0, 5),
                        IndexError, r"transpose: axis 5 is out of range .*2 dims"),
    "transpose('a', 'b')": (lambda: _t(2, 3).transpose("a", "b"),
                            lambda: torch.zeros(2, 3).transpose("a", "b"),
                            TypeError, r"transpose: axes must be an integer, got 'a'"),
    "Flatten(start_dim=5) of 4-D": (lambda: nn.Flatten(start_dim=5)(_t(2, 3, 4, 5)),
                                    lambda: torch.nn.Flatten(start_dim=5)(torch.zeros(2, 3, 4, 5)),
                                    IndexError, r"Flatten: axis 5 is out of range"),
    "Flatten end before start": (lambda: nn.Flatten(2, 1)(_t(2, 3, 4, 5)),
                                 lambda: torch.nn.Flatten(2, 1)(torch.zeros(2, 3, 4, 5)),
                                 RuntimeError, r"Flatten: start_dim \(2\) cannot come after"),
    "sum(axis=1.5)": (lambda: _t(2, 3).sum(axis=1.5), None,
                      TypeError, r"sum: axis must be None, an int or a tuple of ints"),
    "sum(axis=2) of 2-D": (lambda: _t(2, 3).sum(axis=2), lambda: torch.zeros(2, 3).sum(dim=2),
                           IndexError, r"sum: axis 2 is out of range"),
    "softmax axis 5": (lambda: F.softmax(_t(2, 3), axis=5),
                       lambda: torch.softmax(torch.zeros(2, 3), dim=5),
                       IndexError, r"softmax: axis 5 is out of range"),
    "concatenate axis 2": (lambda: mg.concatenate([_t(2, 3), _t(2, 3)], axis=2),
                           lambda: torch.cat([torch.zeros(2, 3)] * 2, dim=2),
                           IndexError, r"concatenate: axis 2 is out of range"),
    "stack axis 4": (lambda: mg.stack([_t(2, 3), _t(2, 3)], axis=4),
                     lambda: torch.stack([torch.zeros(2, 3)] * 2, dim=4),
                     IndexError, r"stack: axis 4 is out of range"),
    "reshape(-2, -2)": (lambda: _t(2, 3).reshape(-2, -2),
                        lambda: torch.zeros(2, 3).reshape(-2, -2),
                        RuntimeError, r"reshape: cannot reshape a tensor of shape \(2, 3\)"),
    "reshape(garbage)": (lambda: _t(2, 3).reshape(object()), None,
                         TypeError, r"reshape: shape must be a tuple of ints"),
    "linear with a list weight": (lambda: F.linear(_t(2, 2), [[1, 2]]), None, None, None),
    "linear with an integer tensor weight": (
        lambda: F.linear(_t(2, 2), mg.tensor([[1, 2]])), None, RuntimeError,
        r"linear: the input is float64 but weight is int64; convert with "
        r"weight\.astype\(np\.float64\)"),
    "linear shape mismatch": (lambda: F.linear(_t(2, 3), _t(4, 5)),
                              lambda: torch.nn.functional.linear(torch.zeros(2, 3),
                                                                 torch.zeros(4, 5)),
                              RuntimeError, r"linear: the input's last dim must equal"),
    "linear int input": (lambda: nn.Linear(3, 2)(mg.tensor(np.ones((2, 3), dtype=np.int64))),
                         lambda: torch.nn.Linear(3, 2)(torch.ones(2, 3, dtype=torch.int64)),
                         RuntimeError, r"linear: the input is int64 .*convert with "
                                       r"x\.astype\(np\.float64\)$"),
    "Conv2d(3, 4, 0)": (lambda: nn.Conv2d(3, 4, 0), None,
                        ValueError, r"Conv2d: kernel_size must be at least 1, got 0"),
    "Conv2d stride 0": (lambda: nn.Conv2d(3, 4, 3, stride=0), None,
                        ValueError, r"Conv2d: stride must be at least 1, got 0"),
    "Conv2d padding -1": (lambda: nn.Conv2d(3, 4, 3, padding=-1), None,
                          ValueError, r"Conv2d: padding must be at least 0, got -1"),
    "conv2d channel mismatch": (lambda: nn.Conv2d(3, 4, 3)(_t(1, 5, 8, 8)),
                                lambda: torch.nn.Conv2d(3, 4, 3)(torch.zeros(1, 5, 8, 8)),
                                RuntimeError, r"conv2d: expected an input \(N, C, H, W\)"),
    "conv2d kernel bigger than input": (lambda: nn.Conv2d(3, 4, 3)(_t(1, 3, 2, 2)),
                                        lambda: torch.nn.Conv2d(3, 4, 3)(torch.zeros(1, 3, 2, 2)),
                                        RuntimeError, r"conv2d: a 3x3 kernel does not fit"),
    "ragged nested list": (lambda: mg.tensor([[1.0, 2.0], [3.0]]),
                           lambda: torch.tensor([[1.0, 2.0], [3.0]]),
                           ValueError, r"Tensor: data must be numbers in a regular \(non-ragged\)"),
    "None inside a list": (lambda: mg.tensor([1.0, None], dtype=np.float64), None,
                           TypeError, r"Tensor: data must be numbers"),
    "a string": (lambda: mg.tensor("abc"), None, TypeError, r"Tensor: data must be numbers"),
    "dtype banana": (lambda: mg.tensor([1.0], dtype="banana"), None,
                     TypeError, r"Tensor: dtype must be a numeric dtype.*got 'banana'"),
    "integer tensor requires grad": (lambda: mg.tensor([1, 2], requires_grad=True),
                                     lambda: torch.tensor([1, 2], requires_grad=True),
                                     RuntimeError, r"only floating-point tensors can require"),
    "requires_grad='yes'": (lambda: mg.tensor([1.0], requires_grad="yes"), None,
                            TypeError, r"Tensor: requires_grad must be True or False"),
    "Linear with an integer dtype": (lambda: nn.Linear(3, 4, dtype=np.int64),
                                     lambda: torch.nn.Linear(3, 4, dtype=torch.int64),
                                     RuntimeError, r"Linear: dtype must be a floating-point "
                                                   r"dtype"),
    "Linear(2.5, 4)": (lambda: nn.Linear(2.5, 4), lambda: torch.nn.Linear(2.5, 4),
                       TypeError, r"Linear: in_features must be a positive integer, got 2.5"),
    "Linear too big to allocate": (lambda: nn.Linear(10 ** 12, 2), None,
                                   RuntimeError, r"Linear: cannot allocate an array of shape"),
    "set_default_dtype(int64)": (lambda: mg.set_default_dtype(np.int64),
                                 lambda: torch.set_default_dtype(torch.int64),
                                 TypeError, r"set_default_dtype: dtype must be a floating"),
    "item of many": (lambda: _t(2, 3).item(), lambda: torch.zeros(2, 3).item(),
                     RuntimeError, r"item: only a one-element tensor"),
    "label out of range": (lambda: F.cross_entropy(_t(2, 3), np.array([0, 5])),
                           lambda: torch.nn.functional.cross_entropy(torch.zeros(2, 3),
                                                                     torch.tensor([0, 5])),
                           IndexError, r"cross_entropy: labels must lie in \[0, 3\)"),
    "mse_loss shapes": (lambda: F.mse_loss(_t(2, 3), _t(3, 2)),
                        lambda: torch.nn.functional.mse_loss(torch.zeros(2, 3),
                                                             torch.zeros(3, 2)),
                        RuntimeError, r"mse_loss: input shape \(2, 3\) and target shape"),
    "softmax of integers": (lambda: F.softmax(mg.tensor([1, 2, 3])),
                            lambda: torch.softmax(torch.tensor([1, 2, 3]), dim=0),
                            RuntimeError, r"softmax: expected a floating-point input"),
    "SGD(None)": (lambda: optim.SGD(None, lr=0.1), lambda: torch.optim.SGD(None, lr=0.1),
                  TypeError, r"SGD: params must be an iterable of tensors"),
    "SGD lr -1": (lambda: optim.SGD([nn.Parameter(np.zeros(2))], lr=-1),
                  lambda: torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=-1),
                  ValueError, r"SGD: lr must be a non-negative number, got -1"),
    "mg.grad of an unused input": (
        lambda: mg.grad((mg.tensor([1.0], requires_grad=True) * 2).sum(),
                        mg.tensor([1.0], requires_grad=True)),
        lambda: torch.autograd.grad((torch.ones(1, requires_grad=True) * 2).sum(),
                                    torch.ones(1, requires_grad=True)),
        RuntimeError, r"grad: input 0 .* was not used"),
    "iterating a 0-d tensor": (lambda: list(mg.tensor(1.0)), lambda: list(torch.tensor(1.0)),
                               TypeError, r"iteration over a 0-d tensor"),
    "copy_ of a wrong shape": (lambda: mg.tensor([1.0, 2.0]).copy_(mg.tensor([1.0, 2, 3])),
                               lambda: torch.zeros(2).copy_(torch.zeros(3)),
                               RuntimeError, r"copy_: the value does not fit the tensor's shape"),
    "setitem out of range": (lambda: mg.tensor([1.0]).__setitem__(5, 1.0),
                             lambda: torch.zeros(1).__setitem__(5, 1.0),
                             IndexError, r"setitem: index 5 is out of bounds"),
    "backward(retain_graph='x')": (
        lambda: (mg.tensor([1.0], requires_grad=True) * 2).sum().backward(retain_graph="x"),
        None, TypeError, r"backward: retain_graph must be True or False"),
    "set_grad_enabled('yes')": (lambda: mg.set_grad_enabled("yes"),
                                lambda: torch.set_grad_enabled("yes"),
                                TypeError, r"set_grad_enabled: mode must be True or False"),
}


@pytest.mark.parametrize("name", CASES)
def test_the_mistake_is_named_with_pytorchs_class(name):
    call, torch_call, expected, pattern = CASES[name]
    if expected is None:  # not a mistake: a list is a fine weight
        assert call() is not None
        return
    with pytest.raises(expected, match=pattern):
        call()
    if torch is not None and torch_call is not None:
        with pytest.raises(expected):
            torch_call()


def test_a_list_weight_gives_the_same_as_a_tensor():
    x = _t(2, 2)
    np.testing.assert_array_equal(F.linear(x, [[1, 2]]).data,  # an int list takes x's dtype
                                  F.linear(x, mg.tensor([[1.0, 2.0]])).data)
    assert F.linear(x.astype(np.float32), [[1, 2]], [0]).dtype == np.float32


def test_wrong_kinds_are_both_type_and_value_errors():
    """PyTorch raises TypeError for some wrong kinds (nn.Linear(2.5, 4)) and ValueError for
    others (DataLoader(batch_size=2.5)); minigrad's one class is caught by either."""
    for call in (lambda: nn.Linear(2.5, 4), lambda: data.DataLoader((np.zeros(4),), batch_size=2.5)):
        with pytest.raises(ArgumentTypeError) as info:
            call()
        assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


@pytest.mark.skipif(torch is None, reason="PyTorch not installed")
@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4), (1, 2, 3, 4)])
def test_transpose_of_two_dims_matches_pytorch_for_every_pair(shape):
    x = np.arange(float(np.prod(shape))).reshape(shape)
    for first in range(-len(shape), len(shape)):
        for second in range(-len(shape), len(shape)):
            np.testing.assert_array_equal(
                mg.tensor(x).transpose(first, second).data,
                torch.tensor(x).transpose(first, second).numpy())


def test_a_0d_tensor_flattens_to_one_element_and_softmax_of_empty_is_empty():
    assert nn.Flatten(0)(mg.tensor(3.0)).shape == (1,)
    assert F.softmax(mg.tensor(np.zeros((0, 3)))).shape == (0, 3)
