"""draw_graph and the other viz functions: clear errors for bad arguments, and a walk that stops
at the node limit, so a huge graph draws as fast as a small one."""
import re
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
from minigrad.core.errors import AxisError, ShapeError
from minigrad.viz import draw_graph, gradient_flow, outgoing_gradients, save_graph
from minigrad.viz import trace as trace_module
from minigrad.viz.batchnorm_paths import autograd_paths, batchnorm_invariants, batchnorm_paths
from minigrad.viz.trace import WALK_FACTOR, trace, walk_graph

_STATEMENT = re.compile(r"^\t+(\w+) \[", re.M)


def node_ids(source: str) -> list:
    return [n for n in _STATEMENT.findall(source) if n not in {"graph", "node", "edge"}]


def note_of(source: str) -> str:
    return re.search(r"^\t+elided \[.*$", source, re.M).group(0)


def small_graph():
    x = mg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    w = mg.tensor(np.ones(3), requires_grad=True)
    return (x * w).tanh().sum(), x, w


def chain(length, x=None):
    x = mg.tensor(np.ones(2), requires_grad=True) if x is None else x
    y = x
    for _ in range(length):
        y = y * 1.0
    return y.sum(), x


# -- the root --------------------------------------------------------------------------------------

@pytest.mark.parametrize("root", [None, np.ones(3), [1.0, 2.0], 3.0, "loss"],
                         ids=["None", "ndarray", "list", "float", "str"])
def test_drawing_something_that_is_not_a_tensor_is_a_type_error(root):
    with pytest.raises(TypeError, match="^draw_graph: root must be a Tensor, got "):
        draw_graph(root)


@pytest.mark.parametrize("function, args, expected", [
    (gradient_flow, (np.ones(2),), "gradient_flow: root must be a Tensor"),
    (outgoing_gradients, (None, None), "outgoing_gradients: root must be a Tensor"),
    (outgoing_gradients, ("tensor", None), "outgoing_gradients: root must be a Tensor")])
def test_gradient_functions_need_tensors(function, args, expected):
    with pytest.raises(TypeError, match=f"^{expected}, got "):
        function(*args)


def test_outgoing_gradients_needs_a_tensor_to_follow():
    loss, x, _ = small_graph()
    with pytest.raises(TypeError, match="^outgoing_gradients: tensor must be a Tensor, got "):
        outgoing_gradients(loss, x.data)


# -- options ---------------------------------------------------------------------------------------

# (option, bad value, exception class, message fragment after "draw_graph: ")
BAD_OPTIONS = [
    ("show_grad", "yes", TypeError, "show_grad must be True or False"),
    ("show_grad", 1, TypeError, "show_grad must be True or False"),
    ("show_grad", None, TypeError, "show_grad must be True or False"),
    ("show_data", "no", TypeError, "show_data must be True or False"),
    ("group_modules", 0, TypeError, "group_modules must be True or False"),
    ("legend", None, TypeError, "legend must be True or False"),
    ("rankdir", "sideways", ValueError, "rankdir must be one of 'TB', 'LR', 'BT', 'RL'"),
    ("rankdir", "tb", ValueError, "rankdir must be one of"),
    ("rankdir", None, ValueError, "rankdir must be one of"),
    ("rankdir", ["TB"], ValueError, "rankdir must be one of"),
    ("max_nodes", 0, ValueError, "max_nodes must be a positive integer"),
    ("max_nodes", -5, ValueError, "max_nodes must be a positive integer"),
    ("max_nodes", 1, ValueError, r"max_nodes must be None or an int >= 2"),
    ("max_nodes", 2.5, TypeError, "max_nodes must be a positive integer"),
    ("max_nodes", 300.0, TypeError, "max_nodes must be a positive integer"),
    ("max_nodes", "300", TypeError, "max_nodes must be a positive integer"),
    ("max_nodes", True, TypeError, "max_nodes must be a positive integer"),
    ("collapse", "BatchNorm1D", ValueError, r"collapse must be module class names \(known: .*"
                                            r"BatchNorm1d"),
    ("collapse", ("Linear", "Lineer"), ValueError, "collapse must be module class names"),
    ("collapse", 3, TypeError, "collapse must be a tuple of module classes"),
    ("collapse", {"Linear": 1}, TypeError, "collapse must be a tuple of module classes"),
    ("collapse", (3,), TypeError, "collapse must be module classes, modules or class names"),
    ("collapse", (int,), TypeError, "collapse must be module classes, modules or class names"),
    ("names", ["x"], TypeError, r"names must be a dict \{label: tensor\}"),
    ("names", {"x": 3}, TypeError, r"names\['x'\] must be a Tensor or an op node"),
    ("names", {3: None}, TypeError, "names must be a dict with string labels"),
    ("routes", [1], TypeError, r"routes must be a dict \{name: \(tensor, op node\)\}"),
    ("routes", {"r": None}, TypeError, r"routes\['r'\] must be a pair \(tensor, op node"),
    ("routes", {"r": ("x", "Mul")}, TypeError, r"routes\['r'\] must be a pair"),
    ("grad_output", "ones", TypeError, "grad_output must be None, a Tensor or an array of "
                                       "numbers"),
    ("grad_output", {"a": 1}, TypeError, "grad_output must be None, a Tensor or an array"),
    ("grad_output", np.ones(3), ShapeError, r"grad_output has shape \(3,\), the root has shape "
                                            r"\(\)"),
    ("title", 3, TypeError, "title must be None or a string"),
]


@pytest.mark.parametrize("option, value, error, expected", BAD_OPTIONS,
                         ids=[f"{o}={v!r}" for o, v, _, _ in BAD_OPTIONS])
def test_bad_options_are_clear_errors(option, value, error, expected):
    loss, _, _ = small_graph()
    with pytest.raises(error, match=f"^draw_graph: {expected}"):
        draw_graph(loss, **{option: value})


def test_a_wrong_grad_output_shape_is_a_runtime_error_and_a_value_error():
    loss, x, _ = small_graph()
    with pytest.raises(RuntimeError, match="grad_output has shape"):
        draw_graph(x * 2, grad_output=np.ones(3))
    with pytest.raises(ValueError, match="grad_output has shape"):
        draw_graph(x * 2, grad_output=np.ones(3))


def test_a_route_from_an_edge_not_in_the_graph_is_named():
    loss, x, w = small_graph()
    other = (w * 3).sum()
    with pytest.raises(ValueError, match="^draw_graph: route 'r' starts at an edge .* not in "
                                         "the drawn graph"):
        draw_graph(loss, routes={"r": (w, other.grad_fn)})


def test_collapse_takes_one_class_or_name_alone_and_good_options_still_work():
    model = mg.nn.Sequential(mg.nn.Linear(3, 4, rng=0), mg.nn.ReLU(), mg.nn.Linear(4, 2, rng=1))
    loss = model(mg.tensor(np.ones((2, 3)))).sum()
    assert "box3d" not in draw_graph(loss).source
    for collapse in (mg.nn.Linear, "Linear", ("Linear",), [mg.nn.Linear], {"Linear"},
                     model[0]):
        expected = 1 if collapse is model[0] else 2
        assert draw_graph(loss, collapse=collapse).source.count("shape=box3d") == expected
    drawn = draw_graph(loss, rankdir="LR", show_data=True, title="mlp", names={"loss": loss},
                       grad_output=np.array(2.0), max_nodes=np.int64(50)).source
    assert "rankdir=LR" in drawn and "mlp" in drawn


# -- save_graph ------------------------------------------------------------------------------------

@pytest.mark.parametrize("graph, path, error, expected", [
    (None, "g.svg", TypeError, "graph must be a graphviz graph"),
    ("digraph {}", "g.svg", TypeError, "graph must be a graphviz graph"),
    ("draw", None, TypeError, "path must be a file name"),
    ("draw", 3, TypeError, "path must be a file name"),
    ("draw", "", TypeError, "path must be a file name"),
    ("draw", "graph.jpg", ValueError, r"path must be a file name ending in \.svg, \.png, \.pdf "
                                      r"or \.dot, got '.*graph.jpg'"),
    ("draw", "graph", ValueError, r"path must be a file name ending in \.svg"),
])
def test_save_graph_arguments(tmp_path, monkeypatch, graph, path, error, expected):
    if graph == "draw":
        graph = draw_graph(small_graph()[0])
    monkeypatch.chdir(tmp_path)  # a short relative path: the message quotes it whole
    with pytest.raises(error, match=f"^save_graph: {expected}"):
        save_graph(graph, path)
    assert list(tmp_path.iterdir()) == []  # nothing written on failure


# -- BatchNorm's paths -----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, expected", [
    (dict(x="abc", grad_y=np.ones((4, 3))), TypeError, "x must be an array of "
                                                       "numbers"),
    (dict(x=np.ones((4, 3)), grad_y=None), TypeError, "grad_y must be an array"),
    (dict(x=np.ones((4, 3)), grad_y=np.ones((4, 2))), ShapeError, r"grad_y has "
                                                                  r"shape \(4, 2\), x has shape"),
    (dict(x=np.ones(4), grad_y=np.ones(4)), ShapeError, "has no channel axis 1"),
    (dict(x=np.ones((4, 3)), grad_y=np.ones((4, 3)), axis=2), AxisError, r"axis 2 is out of "
                                                                         r"range"),
    (dict(x=np.ones((4, 3)), grad_y=np.ones((4, 3)), axis="0"), TypeError, "axis must be an "
                                                                           "integer"),
    (dict(x=np.ones((4, 3)), grad_y=np.ones((4, 3)), weight=np.ones(4)), ShapeError,
     r"weight has shape \(4,\), expected one value per channel \(3\)"),
    (dict(x=np.ones((4, 3)), grad_y=np.ones((4, 3)), eps=-1.0), ValueError,
     "eps must be a non-negative number"),
])
def test_batchnorm_paths_arguments(kwargs, error, expected):
    with pytest.raises(error, match=f"^batchnorm_paths: (x of shape .* )?{expected}"):
        batchnorm_paths(**kwargs)


def test_batchnorm_invariants_and_autograd_paths_arguments():
    x = np.random.default_rng(0).standard_normal((4, 3))
    with pytest.raises(ShapeError, match=r"^batchnorm_invariants: dx has shape \(4, 2\)"):
        batchnorm_invariants(np.ones((4, 2)), x, np.ones((4, 3)))
    with pytest.raises(TypeError, match="^batchnorm_invariants: x must be an array"):
        batchnorm_invariants(np.ones((4, 3)), "x", np.ones((4, 3)))
    with pytest.raises(TypeError, match="^autograd_paths: root must be a Tensor"):
        autograd_paths(None, mg.tensor(x))
    with pytest.raises(TypeError, match="^autograd_paths: x must be a Tensor"):
        autograd_paths(mg.tensor(x, requires_grad=True).sum(), x)


# -- the bounded walk ------------------------------------------------------------------------------

class CountingDeque(deque):
    """The walk's queue, counting every node put on it: what the walk looked at."""
    pushed = 0

    def append(self, item):
        CountingDeque.pushed += 1
        super().append(item)

    def __init__(self, items=()):
        items = list(items)
        CountingDeque.pushed += len(items)
        super().__init__(items)


def test_a_huge_chain_is_walked_only_as_far_as_the_limit(monkeypatch):
    loss, _ = chain(100_000)
    max_nodes = 50

    def whole_graph(*args, **kwargs):
        raise AssertionError("the whole graph was walked")

    # Instrument: count the nodes the walk queues, and fail on any whole-graph traversal.
    CountingDeque.pushed = 0
    monkeypatch.setattr(trace_module, "deque", CountingDeque)
    monkeypatch.setattr(trace_module, "graph_nodes", whole_graph)
    monkeypatch.setattr(trace_module, "backpropagate", whole_graph)
    source = draw_graph(loss, max_nodes=max_nodes).source
    assert CountingDeque.pushed <= WALK_FACTOR * max_nodes + 1
    ids = node_ids(source)
    assert len([i for i in ids if i != "legend"]) == max_nodes and "elided" in ids
    note = note_of(source)
    count = int(re.search(r"at least (\d+) more nodes not drawn", note).group(1))
    assert max_nodes <= count <= 2 * 100_001 + 1 - (max_nodes - 1)
    assert f"stopped after {WALK_FACTOR * max_nodes} ops" in note and "max_nodes=50" in note
    assert "gradients not shown" in note and "grad norm" not in source
    assert "Sum" in source  # the end nearest the root is drawn
    assert re.search(r"^\telided -> t\d+ ", source, re.M)  # the drawn part hangs off the note


def test_walk_graph_counts_what_it_visits():
    loss, _ = chain(1000)
    walk = walk_graph(loss, limit=25)
    assert len(walk.nodes) == 25 and not walk.complete and len(walk.frontier) == 1
    assert walk.nodes[-1] is loss.grad_fn  # forward order: the root's op last
    whole = walk_graph(loss, limit=5000)
    assert whole.complete and len(whole.nodes) == 1001 and whole.frontier == []
    assert walk_graph(mg.tensor(np.ones(2)), limit=3).nodes == []


def test_a_graph_within_the_walk_limit_keeps_its_gradients():
    loss, _ = chain(3 * 10)  # 31 ops <= 4 * 10
    source = draw_graph(loss, max_nodes=10).source
    assert "at least" not in source and "grad norm" in source
    assert "more nodes not drawn" in note_of(source)


def test_a_cut_walk_with_collapsed_modules_still_counts_a_lower_bound():
    layers = [mg.nn.Linear(2, 2, rng=i) for i in range(60)]
    model = mg.nn.Sequential(*[m for layer in layers for m in (layer, mg.nn.Tanh())])
    loss = model(mg.tensor(np.ones((1, 2)))).sum()
    whole = len(trace(loss, collapse=("Linear",), show_grad=False).vertices)
    source = draw_graph(loss, collapse=("Linear",), max_nodes=20, show_grad=False,
                        legend=False).source
    drawn = len(node_ids(source)) - 1  # without the note
    assert drawn <= 19
    count = int(re.search(r"at least (\d+) more", note_of(source)).group(1))
    assert 0 < count <= whole - drawn


def random_graph(draw, size):
    """A random DAG of unary and binary ops over two leaves."""
    tensors = [mg.tensor(np.ones(2), requires_grad=True), mg.tensor(np.full(2, 0.5))]
    for _ in range(size):
        a = tensors[draw(st.integers(0, len(tensors) - 1))]
        if draw(st.booleans()):
            tensors.append(a.tanh())
        else:
            tensors.append(a * tensors[draw(st.integers(0, len(tensors) - 1))])
    return tensors[-1].sum()


@settings(max_examples=60, deadline=None)
@given(data=st.data(), size=st.integers(1, 60), max_nodes=st.integers(2, 12))
def test_the_note_never_overstates_what_is_left_out(data, size, max_nodes):
    loss = random_graph(data.draw, size)
    whole = len(trace(loss, show_grad=False).vertices)
    source = draw_graph(loss, max_nodes=max_nodes, show_grad=False, legend=False).source
    ids = node_ids(source)
    assert len(ids) <= max_nodes
    if whole <= max_nodes:
        assert "elided" not in ids and len(ids) == whole
        return
    left_out = whole - (len(ids) - 1)
    note = note_of(source)
    at_least = re.search(r"at least (\d+) more", note)
    if at_least:
        assert 1 <= int(at_least.group(1)) <= left_out
    else:
        assert f"{left_out} more nodes not drawn" in note


# -- random bad arguments --------------------------------------------------------------------------

BAD_VALUES = {
    "root": st.one_of(st.none(), st.integers(), st.text(max_size=4),
                      st.lists(st.floats(allow_nan=False), max_size=3), st.just(np.ones(2))),
    "show_grad": st.one_of(st.none(), st.integers(), st.text(max_size=3)),
    "show_data": st.one_of(st.none(), st.integers(), st.floats()),
    "rankdir": st.text(max_size=3).filter(lambda t: t not in ("TB", "LR", "BT", "RL")),
    "max_nodes": st.one_of(st.integers(max_value=1), st.floats(), st.text(max_size=3),
                           st.booleans()),
    "collapse": st.one_of(st.integers(), st.text(min_size=1, max_size=6).filter(
        lambda t: t not in trace_module._module_class_names(mg.nn.Module)),
        st.lists(st.integers(), min_size=1, max_size=2)),
    "names": st.one_of(st.integers(), st.lists(st.integers(), max_size=2),
                       st.dictionaries(st.text(max_size=2), st.integers(), min_size=1,
                                       max_size=2)),
    "routes": st.one_of(st.integers(), st.text(max_size=3),
                        st.dictionaries(st.text(max_size=2), st.integers(), min_size=1,
                                        max_size=2)),
    "title": st.one_of(st.integers(), st.floats(), st.lists(st.text(max_size=2), max_size=2)),
}


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_random_bad_arguments_raise_only_clear_errors(data):
    names = data.draw(st.lists(st.sampled_from(sorted(BAD_VALUES)), min_size=1, max_size=3,
                               unique=True))
    bad = {name: data.draw(BAD_VALUES[name], label=name) for name in names}
    loss, _, _ = small_graph()
    root = bad.pop("root", loss)
    with pytest.raises((TypeError, ValueError)) as raised:
        draw_graph(root, **bad)
    message = str(raised.value)
    assert any(message.startswith(f"draw_graph: {name}") for name in names), message
