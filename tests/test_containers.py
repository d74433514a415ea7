"""ModuleList and ModuleDict: list and dict methods, registration (parameters, state_dict keys,
train/eval, dtype) as PyTorch's, random sequences of edits against PyTorch's containers, and
the errors PyTorch raises for bad keys, indices and items."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import minigrad as mg
from minigrad import nn

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
EDITS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


def linear(n):
    """A layer told apart by its shape (n inputs)."""
    return nn.Linear(n, 1, rng=n)


def sizes(container):
    return [m.in_features for m in container]


# -- ModuleList ---------------------------------------------------------------------------------

def test_module_list_behaves_as_a_list():
    layers = nn.ModuleList([linear(1), linear(2)])
    assert layers.append(linear(3)) is layers and layers.extend([linear(4)]) is layers
    layers.insert(0, linear(5))
    layers.insert(-1, linear(6))
    layers.insert(100, linear(7))
    assert sizes(layers) == [5, 1, 2, 3, 6, 4, 7] and len(layers) == 7
    assert layers[0].in_features == 5 and layers[-1].in_features == 7
    part = layers[1:5:2]
    assert isinstance(part, nn.ModuleList) and sizes(part) == [1, 3]
    assert part[0] is layers[1]  # the same modules, not copies
    layers[2] = linear(8)
    del layers[0]
    del layers[-2:]
    assert sizes(layers) == [1, 8, 3, 6]
    assert layers.pop().in_features == 6 and layers.pop(0).in_features == 1
    assert sizes(layers) == [8, 3]
    layers += [linear(9)]
    joined = layers + nn.ModuleList([linear(10)])
    assert sizes(joined) == [8, 3, 9, 10] and sizes(layers) == [8, 3, 9]
    assert sizes(nn.ModuleList()) == [] and len(nn.ModuleList(None)) == 0
    assert sizes(nn.ModuleList(nn.Sequential(linear(1), linear(2)))) == [1, 2]


def test_module_list_names_are_renumbered_and_registered():
    layers = nn.ModuleList([linear(1), nn.ReLU(), linear(2)])
    del layers[0]
    layers.insert(1, linear(3))
    assert list(layers.state_dict()) == ["1.weight", "1.bias", "2.weight", "2.bias"]
    assert [name for name, _ in layers.named_children()] == ["0", "1", "2"]
    assert [p.shape for p in layers.parameters()] == [(1, 3), (1,), (1, 2), (1,)]


def test_a_model_holding_containers_reaches_their_modules():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(3, 3, rng=0), nn.BatchNorm1d(3)])
            self.heads = nn.ModuleDict({"a": nn.Linear(3, 2, rng=1), "b": nn.Dropout(0.5)})

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return self.heads["a"](self.heads["b"](x))

    model = Model()
    assert list(model.state_dict()) == [
        "blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias",
        "blocks.1.running_mean", "blocks.1.running_var", "blocks.1.num_batches_tracked",
        "heads.a.weight", "heads.a.bias"]
    model.eval()
    assert not model.blocks[1].training and not model.heads["b"].training
    model.to(np.float32)
    assert all(p.dtype == np.float32 for p in model.parameters())
    x = mg.tensor(np.ones((4, 3), dtype=np.float32), requires_grad=True)
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    fresh = Model()
    fresh.load_state_dict(model.state_dict())  # (float32 values into float64 tensors)
    np.testing.assert_allclose(fresh.heads["a"].weight.data, model.heads["a"].weight.data)


def test_the_same_module_twice_is_one_set_of_parameters_and_two_entries():
    shared = linear(2)
    layers = nn.ModuleList([shared, shared])
    assert len(layers) == 2 and len(list(layers.parameters())) == 2
    assert list(layers.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]


@pytest.mark.parametrize("call, error, message", [
    (lambda: nn.ModuleList([1]), TypeError, "nn.Module"),
    (lambda: nn.ModuleList([None]), TypeError, "nn.Module"),
    (lambda: nn.ModuleList(3), TypeError, "iterable"),
    (lambda: nn.ModuleList().extend(linear(1)), TypeError, "iterable"),
    (lambda: nn.ModuleList([linear(1)])["0"], TypeError, "index"),
    (lambda: nn.ModuleList([linear(1)])[1.0], TypeError, "index"),
    (lambda: nn.ModuleList([linear(1)])[3], IndexError, "out of range"),
    (lambda: nn.ModuleList([linear(1)])[-2], IndexError, "out of range"),
    (lambda: nn.ModuleList().pop(), IndexError, "out of range"),
    (lambda: nn.ModuleList([linear(1)]).__setitem__(0, "relu"), TypeError, "nn.Module"),
    (lambda: nn.ModuleList([linear(1)]).__delitem__(5), IndexError, "out of range"),
    (lambda: nn.ModuleList().insert("0", linear(1)), TypeError, "index"),
    (lambda: nn.ModuleList()(mg.tensor([1.0])), NotImplementedError, "forward"),
])
def test_module_list_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


# -- ModuleDict ---------------------------------------------------------------------------------

def test_module_dict_behaves_as_a_dict():
    heads = nn.ModuleDict({"b": linear(1), "a": linear(2)})
    heads["c"] = linear(3)
    heads["b"] = linear(4)  # replaced where it was
    assert heads.keys() == ["b", "a", "c"] and list(heads) == ["b", "a", "c"]
    assert sizes(heads.values()) == [4, 2, 3]
    assert [(k, m.in_features) for k, m in heads.items()] == [("b", 4), ("a", 2), ("c", 3)]
    assert "a" in heads and "z" not in heads and "training" not in heads and len(heads) == 3
    assert heads.pop("a").in_features == 2
    del heads["b"]
    heads.update([("d", linear(5))])
    heads.update(nn.ModuleDict({"e": linear(6)}))
    heads.update({"c": linear(7)})
    assert [(k, m.in_features) for k, m in heads.items()] == [("c", 7), ("d", 5), ("e", 6)]
    assert list(heads.state_dict())[:2] == ["c.weight", "c.bias"]
    heads.clear()
    assert len(heads) == 0 and heads.state_dict() == {}


@pytest.mark.parametrize("call, error, message", [
    (lambda: nn.ModuleDict({"a.b": linear(1)}), KeyError, "without"),
    (lambda: nn.ModuleDict({"": linear(1)}), KeyError, "non-empty"),
    (lambda: nn.ModuleDict({"training": linear(1)}), KeyError, "already used"),
    (lambda: nn.ModuleDict({"keys": linear(1)}), KeyError, "already used"),
    (lambda: nn.ModuleDict({1: linear(1)}), TypeError, "string"),
    (lambda: nn.ModuleDict({"a": 3}), TypeError, "nn.Module"),
    (lambda: nn.ModuleDict()["x"], KeyError, "x"),
    (lambda: nn.ModuleDict().__delitem__("x"), KeyError, "x"),
    (lambda: nn.ModuleDict().pop("x"), KeyError, "x"),
    (lambda: nn.ModuleDict(3), TypeError, "mapping"),
    (lambda: nn.ModuleDict("ab"), TypeError, "mapping"),
    (lambda: nn.ModuleDict([("a",)]), ValueError, "length 2"),
    (lambda: nn.ModuleDict([3]), TypeError, "pair"),
])
def test_module_dict_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


@needs_torch
@pytest.mark.parametrize("call", [
    lambda m: m.ModuleList([1]), lambda m: m.ModuleList(3),
    lambda m: m.ModuleList([m.ReLU()])["a"], lambda m: m.ModuleList([m.ReLU()])[3],
    lambda m: m.ModuleDict({"a.b": m.ReLU()}), lambda m: m.ModuleDict({"": m.ReLU()}),
    lambda m: m.ModuleDict({"training": m.ReLU()}), lambda m: m.ModuleDict({1: m.ReLU()}),
    lambda m: m.ModuleDict({"a": 3}), lambda m: m.ModuleDict()["x"],
    lambda m: m.ModuleDict(3), lambda m: m.ModuleDict([("a",)]), lambda m: m.ModuleDict([3]),
    lambda m: m.ModuleList()(1),
])
def test_errors_are_pytorchs_classes(call):
    with pytest.raises(Exception) as theirs:
        call(torch.nn)
    with pytest.raises(type(theirs.value)):
        call(nn)


# -- random edits against PyTorch's containers ------------------------------------------------

LIST_EDITS = st.lists(st.one_of(
    st.tuples(st.just("append"), st.integers(1, 9)),
    st.tuples(st.just("extend"), st.lists(st.integers(1, 9), max_size=3)),
    st.tuples(st.just("insert"), st.integers(0, 8), st.integers(1, 9)),
    st.tuples(st.just("set"), st.integers(-8, 8), st.integers(1, 9)),
    st.tuples(st.just("del"), st.integers(-8, 8)),
    st.tuples(st.just("del slice"), st.integers(-8, 8), st.integers(-8, 8)),
    st.tuples(st.just("pop"), st.integers(-8, 8))), max_size=10)


def _edit_list(layers, library, edit):
    kind, *args = edit
    make = (lambda n: library.Linear(n, 1))
    if kind == "append":
        layers.append(make(args[0]))
    elif kind == "extend":
        layers.extend([make(n) for n in args[0]])
    elif kind == "insert":
        # PyTorch's insert takes positions from 0 to len (it does not read negative ones)
        layers.insert(min(args[0], len(layers)), make(args[1]))
    elif not len(layers):
        return
    elif kind == "set":
        layers[args[0] % len(layers)] = make(args[1])
    elif kind == "del":
        del layers[args[0] % len(layers)]
    elif kind == "del slice":
        del layers[args[0]:args[1]]
    else:
        layers.pop(args[0] % len(layers))


def _layout(state) -> list:
    return [(name, tuple(value.shape)) for name, value in state.items()]


@needs_torch
@EDITS
@given(LIST_EDITS)
def test_random_list_edits_give_pytorchs_state_dict_keys(edits):
    ours, theirs = nn.ModuleList([linear(1)]), torch.nn.ModuleList([torch.nn.Linear(1, 1)])
    for edit in edits:
        _edit_list(ours, nn, edit)
        _edit_list(theirs, torch.nn, edit)
    assert len(ours) == len(theirs)
    assert _layout(ours.state_dict()) == _layout(theirs.state_dict())
    assert [name for name, _ in ours.named_parameters()] == \
        [name for name, _ in theirs.named_parameters()]
    assert _layout(ours[1:].state_dict()) == _layout(theirs[1:].state_dict())


DICT_EDITS = st.lists(st.one_of(
    st.tuples(st.just("set"), st.sampled_from("abcd"), st.integers(1, 9)),
    st.tuples(st.just("update"), st.lists(st.tuples(st.sampled_from("abcd"),
                                                    st.integers(1, 9)), max_size=3)),
    st.tuples(st.just("del"), st.sampled_from("abcd")),
    st.tuples(st.just("pop"), st.sampled_from("abcd"))), max_size=10)


def _edit_dict(heads, library, edit):
    kind, *args = edit
    if kind == "set":
        heads[args[0]] = library.Linear(args[1], 1)
    elif kind == "update":
        heads.update([(key, library.Linear(n, 1)) for key, n in args[0]])
    elif args[0] in heads:
        if kind == "del":
            del heads[args[0]]
        else:
            heads.pop(args[0])


@needs_torch
@EDITS
@given(DICT_EDITS)
def test_random_dict_edits_give_pytorchs_keys_and_state_dict(edits):
    ours, theirs = nn.ModuleDict(), torch.nn.ModuleDict()
    for edit in edits:
        _edit_dict(ours, nn, edit)
        _edit_dict(theirs, torch.nn, edit)
    assert list(ours.keys()) == list(theirs.keys()) and len(ours) == len(theirs)
    assert _layout(ours.state_dict()) == _layout(theirs.state_dict())
    assert all((key in ours) == (key in theirs) for key in "abcd")
