"""Graph drawing: structure read back from the DOT source, gradient labels, module clusters,
BatchNorm's three paths, rendering with and without Graphviz's ``dot``, the CLI."""
import re
import shutil

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
from minigrad.viz import draw_graph, gradient_flow, save_graph
from minigrad.viz.batchnorm_paths import (PATHS, autograd_paths, batchnorm_invariants,
                                          batchnorm_paths)
from minigrad.viz.trace import trace

_STATEMENT = re.compile(r"^\t+(\w+) \[", re.M)
_EDGE = re.compile(r"^\t(\w+) -> (\w+)", re.M)
_DEFAULTS = {"graph", "node", "edge"}


def node_ids(source: str) -> list:
    return [n for n in _STATEMENT.findall(source) if n not in _DEFAULTS]


def edges(source: str) -> list:
    return _EDGE.findall(source)


def node_line(source: str, node_id: str) -> str:
    return re.search(rf"^\t+{node_id} \[.*$", source, re.M).group(0)


def scale_graph(seed=0):
    """loss = sum(x * w) with w (3,) broadcast over x (2, 3)."""
    rng = np.random.default_rng(seed)
    x = mg.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    w = mg.tensor(rng.standard_normal(3), requires_grad=True)
    return (x * w).sum(), x, w


def composed_batchnorm(x, weight, bias, eps=1e-5):
    axis = tuple(a for a in range(x.ndim) if a != 1)
    shape = tuple(n if a == 1 else 1 for a, n in enumerate(x.shape))
    mean = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, keepdims=True)
    return (x - mean) / (var + eps).sqrt() * weight.reshape(shape) + bias.reshape(shape)


# ----------------------------------------------------------------------------------------------
# Structure and determinism
# ----------------------------------------------------------------------------------------------

def test_known_graph_has_one_node_per_tensor_and_op():
    loss, x, w = scale_graph()
    source = draw_graph(loss, legend=False).source
    # tensors: x, w, broadcast w, x*w, loss; ops: BroadcastTo, Mul, Sum
    assert len(node_ids(source)) == 8
    assert len(edges(source)) == 7
    labels = "\n".join(node_line(source, n) for n in node_ids(source))
    for op in ("BroadcastTo", "Mul", "Sum"):
        assert labels.count(f"<b>{op}</b>") == 1
    assert "shape=(2, 3)" in labels  # the broadcast op's attribute
    assert len(node_ids(draw_graph(loss).source)) == 9  # plus the legend


def test_every_edge_joins_drawn_nodes_and_the_graph_ends_at_the_root():
    loss, x, w = scale_graph()
    picture = trace(loss)
    for tail, head in picture.edges:
        assert tail in picture.vertices and head in picture.vertices
    assert picture.vertices[picture.root].kind == "output"
    assert not any(tail == picture.root for tail, _ in picture.edges)


def test_dot_source_is_deterministic_and_free_of_addresses():
    first = draw_graph(scale_graph(seed=1)[0], show_data=True).source
    loss = scale_graph(seed=1)[0]
    assert draw_graph(loss, show_data=True).source == first  # a fresh, equal graph
    assert draw_graph(loss, show_data=True).source == first  # the same graph again
    assert not re.search(r"0x[0-9a-f]{6,}", first)


def test_reductions_and_broadcasts_are_styled_apart():
    x = mg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    source = draw_graph(x - x.mean(axis=0), legend=False).source
    assert "invtrapezium" in source and "trapezium" in source.replace("invtrapezium", "")
    styles = {(t, h): re.search(r"style=(\w+)", line).group(1) for line in source.splitlines()
              for t, h in _EDGE.findall(line)}
    assert sorted(styles.values()).count("dotted") == 1   # x into Mean
    assert sorted(styles.values()).count("dashed") == 1   # mean into BroadcastTo


def test_op_attributes_and_constants_are_shown():
    x = mg.tensor(np.ones((2, 3)), requires_grad=True)
    source = draw_graph((x.var(axis=1, keepdims=True, ddof=1) + 1e-5) ** 0.5).source
    assert "axis=(1,)" in source and "keepdims=True" in source and "ddof=1" in source
    assert "b=1e-05" in source and "exponent=0.5" in source


def test_names_label_leaves_intermediates_op_outputs_and_the_root():
    x = mg.tensor(np.ones((2, 3)), requires_grad=True)
    x.name = "x"
    mean = x.mean(axis=0)
    centered = x - mean
    loss = (centered * centered).sum()
    loss.name = "loss"
    source = draw_graph(loss, names={"x - mean": centered, "mean": mean.grad_fn}).source
    for name in ("x", "x - mean", "mean", "loss"):
        assert f"<b>{name}</b>" in source


# ----------------------------------------------------------------------------------------------
# Gradients
# ----------------------------------------------------------------------------------------------

def test_gradient_labels_match_grad_norms_after_backward():
    loss, x, w = scale_graph()
    loss.backward(retain_graph=True)  # the drawing runs its own backward pass
    picture = trace(loss)
    by_kind = {v.title: v for v in picture.vertices.values() if v.kind == "input"}
    assert len(by_kind) == 1  # x and w are both unnamed inputs
    grads = {id(v): v.grad for v in picture.vertices.values() if v.kind == "input"}
    expected = sorted(np.linalg.norm(t.grad.data) for t in (x, w))
    assert sorted(np.linalg.norm(g) for g in grads.values()) == pytest.approx(expected, rel=1e-12)
    source = draw_graph(loss).source
    for t in (x, w):
        assert f"grad norm {np.linalg.norm(t.grad.data):.3g}" in source


def test_edge_gradients_sum_to_the_tensors_gradient_and_grad_is_untouched():
    x = mg.tensor(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True)
    loss = (composed_batchnorm(x, mg.tensor(np.ones(3)), mg.tensor(np.zeros(3))) ** 3).sum()
    flow = gradient_flow(loss)
    assert x.grad is None
    out_of_x = [g for (node, i), g in flow.edges.items() if node.inputs[i] is x]
    assert len(out_of_x) == 3  # into Sub, Mean and Var
    (expected,) = mg.grad(loss, [x], retain_graph=True)
    np.testing.assert_allclose(sum(out_of_x), expected.data, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(flow.tensors[x], expected.data, rtol=1e-12, atol=1e-12)
    draw_graph(loss)
    assert x.grad is None


def test_edge_labels_are_the_norms_flowing_along_them():
    x = mg.tensor(np.array([[1.0, -2.0], [3.0, 0.5]]), requires_grad=True)
    loss = (x * 3.0).sum() + (x * x).sum()
    picture = trace(loss)
    x_id = next(v.id for v in picture.vertices.values() if v.kind == "input")
    norms = sorted(np.linalg.norm(e.grad) for (tail, _), e in picture.edges.items()
                   if tail == x_id)
    # d/dx of 3x is 3; of x*x (both inputs of one Mul, one drawn edge) is 2x
    assert norms == pytest.approx(sorted([np.linalg.norm(np.full((2, 2), 3.0)),
                                          np.linalg.norm(2 * x.data)]))


def test_edge_colour_and_width_grow_with_the_gradient():
    x = mg.tensor(np.ones(3), requires_grad=True)
    loss = (x * 1e-4).sum() + (x * 1e2).sum()
    source = draw_graph(loss).source
    drawn = []  # (label, pen width, colour) of the edges into the two Muls
    for line in source.splitlines():
        match = re.search(r'label=" ([\d.e+-]+)".*penwidth=([\d.]+)', line)
        if match and "->" in line:
            colour = re.search(r'color="(#\w+)"', line).group(1)
            drawn.append((float(match.group(1)), float(match.group(2)), colour))
    small = next(d for d in drawn if d[0] == pytest.approx(1e-4 * 3 ** 0.5, rel=0.05))
    large = next(d for d in drawn if d[0] == pytest.approx(1e2 * 3 ** 0.5, rel=0.05))
    assert small[1] < large[1] and small[2] != large[2]


def test_float32_graphs_draw_with_float32_gradients():
    x = mg.tensor(np.ones((2, 2), dtype=np.float32), requires_grad=True)
    flow = gradient_flow((x * x).sum())
    assert flow.tensors[x].dtype == np.float32
    assert "float32" in draw_graph((x * x).sum()).source


def test_without_show_grad_no_gradient_is_computed():
    loss, x, w = scale_graph()
    source = draw_graph(loss, show_grad=False).source
    assert "grad norm" not in source and "gradient norm" not in source


# ----------------------------------------------------------------------------------------------
# Node limit
# ----------------------------------------------------------------------------------------------

def test_max_nodes_keeps_the_nodes_nearest_the_root_and_says_what_was_left_out():
    x = mg.tensor(np.ones(2), requires_grad=True)
    y = x
    for _ in range(30):
        y = y.tanh()
    loss = y.sum()
    full = trace(loss)
    assert len(full.vertices) == 1 + 2 * 31
    source = draw_graph(loss, max_nodes=10, legend=False).source
    ids = node_ids(source)
    assert len(ids) == 10 and "elided" in ids
    note = node_line(source, "elided")
    assert "54 more nodes not drawn" in note and "27 ops" in note and "27 tensors" in note
    assert "max_nodes=10" in note
    assert ("elided", ids[0]) in edges(source) or any(t == "elided" for t, _ in edges(source))
    assert "Sum" in source  # the end nearest the root is kept


def test_bad_arguments_give_clear_errors():
    loss, x, w = scale_graph()
    with pytest.raises(ValueError, match="rankdir"):
        draw_graph(loss, rankdir="sideways")
    with pytest.raises(ValueError, match="max_nodes"):
        draw_graph(loss, max_nodes=1)
    with pytest.raises(TypeError, match="draw_graph: root must be a Tensor"):
        draw_graph(np.ones(3))
    with pytest.raises(ValueError, match="grad_output has shape"):
        draw_graph(x * 2, grad_output=np.ones(3))
    with pytest.raises(ValueError, match=r"\.svg, \.png, \.pdf or \.dot"):
        save_graph(draw_graph(loss), "graph.jpg")


def test_a_leaf_and_a_constant_root_draw_as_one_node():
    x = mg.tensor(np.ones(2), requires_grad=True)
    assert len(node_ids(draw_graph(x, legend=False).source)) == 1
    assert len(node_ids(draw_graph(mg.tensor(np.ones(2)), legend=False).source)) == 1


# ----------------------------------------------------------------------------------------------
# BatchNorm's three paths
# ----------------------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(batch=st.integers(2, 9), channels=st.integers(1, 4), length=st.sampled_from([None, 3]),
       seed=st.integers(0, 2 ** 16), eps=st.sampled_from([1e-5, 1e-3, 0.0]))
def test_three_paths_match_their_closed_forms_and_sum_to_autograds_gradient(
        batch, channels, length, seed, eps):
    rng = np.random.default_rng(seed)
    shape = (batch, channels) if length is None else (batch, channels, length)
    x = mg.tensor(rng.standard_normal(shape) * 3 + 1, requires_grad=True)
    weight = mg.tensor(rng.uniform(0.5, 2.0, channels), requires_grad=True)
    bias = mg.tensor(rng.standard_normal(channels), requires_grad=True)
    grad_y = rng.standard_normal(shape)
    loss = (composed_batchnorm(x, weight, bias, eps) * mg.tensor(grad_y)).sum()
    parts, nodes = autograd_paths(loss, x)
    loss.backward()
    closed = batchnorm_paths(x.data, grad_y, weight.data, eps)
    for path in PATHS:
        np.testing.assert_allclose(getattr(parts, path), getattr(closed, path), rtol=0,
                                   atol=1e-12)
    np.testing.assert_allclose(parts.total, x.grad.data, rtol=0, atol=1e-12)
    np.testing.assert_allclose(closed.total, x.grad.data, rtol=0, atol=1e-12)
    invariants = batchnorm_invariants(x.grad.data, x.data, grad_y, weight.data, eps)
    np.testing.assert_allclose(invariants["sum"], 0, atol=1e-12)
    np.testing.assert_allclose(invariants["dot_x_hat"], invariants["expected_dot_x_hat"],
                               rtol=1e-7, atol=1e-12)
    if eps == 0:
        np.testing.assert_allclose(invariants["dot_x_hat"], 0, atol=1e-11)


def test_the_variance_path_is_the_only_one_that_changes_with_eps_in_direction():
    # The mean path is constant over the batch and the variance path is along x_hat.
    rng = np.random.default_rng(3)
    x, grad_y = rng.standard_normal((6, 2)), rng.standard_normal((6, 2))
    paths = batchnorm_paths(x, grad_y)
    assert np.allclose(paths.through_mean, paths.through_mean[:1])
    x_hat = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)
    ratio = paths.through_variance / x_hat
    assert np.allclose(ratio, ratio[:1])


def test_autograd_paths_explains_a_graph_that_is_not_a_batchnorm():
    x = mg.tensor(np.ones((3, 2)), requires_grad=True)
    with pytest.raises(ValueError, match="one Mean, one Var and one other op"):
        autograd_paths((x * 2).sum(), x)


def test_routes_are_coloured_until_they_merge():
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    loss = (composed_batchnorm(x, mg.tensor(np.ones(3)), mg.tensor(np.zeros(3))) ** 2).sum()
    _, nodes = autograd_paths(loss, x)
    picture = trace(loss, routes={p: (x, nodes[p]) for p in PATHS})
    on_route = {p: [e for e in picture.edges.values() if p in e.routes] for p in PATHS}
    assert len(on_route["direct"]) == 3  # x -> Sub -> (x - mean) -> Div
    # x -> Mean -> mean -> BroadcastTo -> broadcast mean -> Sub, then on as the direct route
    assert len(on_route["through_mean"]) == 7
    # x -> Var -> var -> Add -> var + eps -> Sqrt -> std -> BroadcastTo -> broadcast std -> Div
    assert len(on_route["through_variance"]) == 9
    shared = [e for e in picture.edges.values() if len(e.routes) == 2]
    assert len(shared) == 2
    source = draw_graph(loss, routes={p: (x, nodes[p]) for p in PATHS}).source
    assert source.count('color="#e6550d:#1b9e77"') == 2  # drawn in both colours
    with pytest.raises(ValueError, match="not in the drawn graph"):
        draw_graph(loss, routes={"nowhere": (mg.tensor(np.ones(2)), nodes["direct"])})


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")
def test_renders_svg_and_always_writes_the_dot_source(tmp_path):
    loss, _, _ = scale_graph()
    written = save_graph(draw_graph(loss), tmp_path / "g.svg")
    assert written == tmp_path / "g.svg"
    assert "<svg" in written.read_text()
    assert (tmp_path / "g.dot").read_text() == draw_graph(loss).source


def test_without_dot_the_dot_file_is_written_and_one_line_says_how_to_install(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    loss, _, _ = scale_graph()
    written = save_graph(draw_graph(loss), tmp_path / "g.png")
    assert written == tmp_path / "g.dot" and written.exists()
    assert not (tmp_path / "g.png").exists()
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert "dot" in message and "install Graphviz" in message and "apt-get install graphviz" \
        in message


# ----------------------------------------------------------------------------------------------
# Modules: clusters, parameter paths, buffers, collapse
# ----------------------------------------------------------------------------------------------

def mlp_with_batchnorm(seed=0):
    from minigrad import nn
    import minigrad.functional as F

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            rng = np.random.default_rng(seed)
            self.fc1, self.bn1 = nn.Linear(5, 6, rng=rng), nn.BatchNorm1d(6)
            self.fc2, self.bn2 = nn.Linear(6, 6, rng=rng), nn.BatchNorm1d(6)
            self.head = nn.Linear(6, 3, rng=rng)

        def forward(self, x):
            x = F.relu(self.bn1(self.fc1(x)))
            return self.head(F.relu(self.bn2(self.fc2(x))))

    net = Net()
    x = mg.tensor(np.random.default_rng(seed).standard_normal((7, 5)))
    return net, x


def cluster_labels(source: str) -> dict:
    """label -> nesting depth (1 = a top-level cluster) of every cluster in the DOT source."""
    lines = source.splitlines()
    found = {}
    for line, attributes in zip(lines, lines[1:]):
        opening = re.match(r"(\t+)subgraph cluster_\d+ \{$", line)
        if opening:
            label = re.search(r'label=("[^"]*"|\S+)', attributes).group(1).strip('"')
            found[label] = len(opening.group(1))
    return found


def test_modules_become_nested_labelled_clusters_with_parameter_paths():
    net, x = mlp_with_batchnorm()
    loss = net(x).sum()
    source = draw_graph(loss).source
    labels = cluster_labels(source)
    assert labels["Net"] == 1
    assert labels["bn1: BatchNorm1d(6)"] == 2 and labels["fc1: Linear(in_features=5, " \
        "out_features=6, bias=True)"] == 2
    for name in ("fc1.weight", "fc1.bias", "bn1.weight", "bn2.bias", "head.weight"):
        assert f"<b>{name}</b>" in source
    picture = trace(loss)
    var_ops = [v for v in picture.vertices.values() if v.title == "Var"]
    assert [tuple(type(m).__name__ for m in v.scope) for v in var_ops] == \
        [("Net", "BatchNorm1d")] * 2
    params = {v.title: v for v in picture.vertices.values() if v.kind == "parameter"}
    assert params["bn1.weight"].scope == (net, net.bn1)
    assert len(params) == 10


def test_parameter_gradient_labels_match_their_grad_after_backward():
    net, x = mlp_with_batchnorm()
    loss = (net(x) ** 2).mean()
    loss.backward(retain_graph=True)
    picture = trace(loss)
    params = dict(net.named_parameters())
    for vertex in picture.vertices.values():
        if vertex.kind == "parameter":
            np.testing.assert_allclose(vertex.grad, params[vertex.title].grad.data, rtol=1e-12,
                                       atol=1e-15)
            assert f"grad norm {np.linalg.norm(params[vertex.title].grad.data):.3g}" in \
                "\n".join(vertex.lines)


def test_buffers_and_views_of_them_are_drawn_as_buffers():
    from minigrad import nn

    class Shift(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("offset", mg.tensor(np.arange(3.0)))

        def forward(self, x):
            return x - self.offset.reshape(1, 3)  # a view of the buffer's memory

    shift = Shift()
    picture = trace(shift(mg.tensor(np.ones((2, 3)), requires_grad=True)).sum())
    (buffer,) = [v for v in picture.vertices.values() if v.kind == "buffer"]
    assert buffer.title == "offset" and buffer.lines[0] == "(1, 3) float64"
    assert buffer.scope == (shift,)
    net, x = mlp_with_batchnorm()
    net.eval()
    picture = trace(net(x).sum())
    buffers = {v.title for v in picture.vertices.values() if v.kind == "buffer"}
    assert {"bn1.running_mean", "bn2.running_mean"} <= buffers


def test_collapse_draws_each_module_as_one_node():
    from minigrad import nn
    net, x = mlp_with_batchnorm()
    loss = net(x).sum()
    full = draw_graph(loss, legend=False).source
    for collapse in ((nn.BatchNorm1d,), ("BatchNorm1d",), (net.bn1, net.bn2)):
        source = draw_graph(loss, collapse=collapse, legend=False).source
        assert source.count("box3d") == 2
        assert "<b>bn1: BatchNorm1d(6)</b>" in source and "<b>Var</b>" not in source
        assert "bn1: BatchNorm1d(6)" not in cluster_labels(source)
        assert len(node_ids(source)) < len(node_ids(full))
        assert "<b>bn2.weight</b>" in source  # parameters still enter the collapsed node
    picture = trace(loss, collapse=(nn.BatchNorm1d,))
    module_ids = [v.id for v in picture.vertices.values() if v.kind == "module"]
    for module_id in module_ids:
        into = [t for t, h in picture.edges if h == module_id]
        out_of = [h for t, h in picture.edges if t == module_id]
        assert len(into) == 3 and len(out_of) == 1  # input, weight, bias -> one output


def test_collapsed_edges_carry_the_summed_gradient():
    from minigrad import nn
    net, x = mlp_with_batchnorm()
    loss = (net(x) ** 2).sum()
    loss.backward(retain_graph=True)
    picture = trace(loss, collapse=(nn.BatchNorm1d,))
    weight = next(v for v in picture.vertices.values() if v.title == "bn1.weight")
    (edge,) = [e for (t, _), e in picture.edges.items() if t == weight.id]
    np.testing.assert_allclose(edge.grad, net.bn1.weight.grad.data, rtol=1e-12, atol=1e-15)


def test_group_modules_false_draws_no_clusters():
    net, x = mlp_with_batchnorm()
    source = draw_graph(net(x).sum(), group_modules=False).source
    assert "subgraph" not in source and "<b>fc1.weight</b>" in source


# ----------------------------------------------------------------------------------------------
# The command line
# ----------------------------------------------------------------------------------------------

def test_graph_batchnorm_command_prints_the_checked_decomposition(tmp_path, capsys):
    from minigrad.app.cli import main
    assert main(["graph", "batchnorm", "-o", str(tmp_path / "bn.svg")]) == 0
    out = capsys.readouterr().out
    for line in ("directly through x-hat", "through the batch mean",
                 "through the batch variance", "sum of the three vs autograd", "all checks pass"):
        assert line in out
    differences = [float(m) for m in re.findall(r"\s(\d\.\d\de[-+]\d\d)\n", out)]
    assert len(differences) >= 4 and max(differences[:4]) < 1e-12
    assert (tmp_path / "bn.dot").exists()
    source = (tmp_path / "bn.dot").read_text()
    assert source.count("route:") == 3 and "BatchNorm1d(4)" in source
    if shutil.which("dot"):
        assert "<svg" in (tmp_path / "bn.svg").read_text()


def test_graph_command_draws_examples_and_a_users_script(tmp_path, capsys):
    from minigrad.app.cli import main
    script = tmp_path / "model.py"
    script.write_text("import minigrad as mg\n"
                      "def build():\n"
                      "    x = mg.tensor([1.0, 2.0], requires_grad=True)\n"
                      "    return (x * x).sum()\n")
    assert main(["graph", f"{script}:build", "-o", str(tmp_path / "user.dot")]) == 0
    assert "<b>Mul</b>" in (tmp_path / "user.dot").read_text()
    assert main(["graph", "mlp", "--collapse", "BatchNorm1d", "-o",
                 str(tmp_path / "mlp.dot")]) == 0
    assert (tmp_path / "mlp.dot").read_text().count("box3d") == 3
    with pytest.raises(SystemExit, match="has no function 'missing'"):
        main(["graph", f"{script}:missing", "-o", str(tmp_path / "x.dot")])
    with pytest.raises(SystemExit, match="must be batchnorm, layernorm, mlp or path"):
        main(["graph", "resnet", "-o", str(tmp_path / "x.dot")])
    capsys.readouterr()
    for bad, message in ((["-o", "graph.jpg"], "ending in .svg, .png, .pdf or .dot"),
                         (["--max-nodes", "1"], "at least 2")):
        with pytest.raises(SystemExit):
            main(["graph", "mlp"] + bad)
        assert message in capsys.readouterr().err


def test_graph_command_without_dot_writes_the_dot_file_and_says_how_to_install(
        tmp_path, monkeypatch, capsys):
    from minigrad.app.cli import main
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["graph", "layernorm", "-o", str(tmp_path / "ln.svg")]) == 0
    captured = capsys.readouterr()
    assert (tmp_path / "ln.dot").exists() and not (tmp_path / "ln.svg").exists()
    assert "install Graphviz" in captured.err


@pytest.mark.parametrize("layer_name, shape", [("BatchNorm1d", (6, 3)), ("BatchNorm1d", (4, 3, 5)),
                                                ("BatchNorm2d", (3, 2, 4, 4))])
def test_three_paths_of_the_library_batchnorm_sum_to_its_fused_gradient(layer_name, shape):
    from minigrad import nn
    rng = np.random.default_rng(7)
    data, grad_y = rng.standard_normal(shape) * 2 - 1, rng.standard_normal(shape)
    weight, bias = rng.uniform(0.5, 1.5, shape[1]), rng.standard_normal(shape[1])
    grads = {}
    for fused in (False, True):
        layer = getattr(nn, layer_name)(shape[1], fused=fused)
        layer.weight.data[...], layer.bias.data[...] = weight, bias
        x = mg.tensor(data, requires_grad=True)
        loss = (layer(x) * mg.tensor(grad_y)).sum()
        if not fused:
            parts, _ = autograd_paths(loss, x)
        loss.backward()
        grads[fused] = x.grad.data
    closed = batchnorm_paths(data, grad_y, weight, layer.eps)
    for path in PATHS:
        np.testing.assert_allclose(getattr(parts, path), getattr(closed, path), atol=1e-12)
    np.testing.assert_allclose(parts.total, grads[False], atol=1e-12)
    np.testing.assert_allclose(parts.total, grads[True], atol=1e-12)


def test_drawing_gradients_of_a_freed_graph_says_how_to_keep_it():
    """backward() frees saved values; the drawer cannot recompute edge gradients and says so."""
    loss, x, w = scale_graph()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        draw_graph(loss)
    assert "digraph" in draw_graph(loss, show_grad=False).source
