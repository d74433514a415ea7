"""draw_graph(routes=True): every norm sub-graph's three routes found and coloured (BatchNorm of
any dimensionality, LayerNorm, GroupNorm, inside a bigger model); the split of dL/dx read off
autograd's edges against the closed forms; values on small tensors; the readability fixes.
Everything is read back from the DOT source."""
import re

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.app import cli
from minigrad.viz import draw_graph
from minigrad.viz.batchnorm_paths import PATHS, batchnorm_paths, site_paths
from minigrad.viz.draw import _NODE_STYLES, _ROUTE_COLORS, DIRECTION_TEXT
from minigrad.viz.routes import ROUTE_NAMES, find_norm_sites
from minigrad.viz.trace import trace

_NODE = re.compile(r"^\t+(\w+) \[label=<(.*?)>( .*)?\]$", re.M)
_EDGE = re.compile(r"^\t+(\w+) -> (\w+) \[(.*)\]$", re.M)
_ATTR = re.compile(r'(\w+)=("[^"]*"|\S+)')


def attrs(text: str) -> dict:
    return {k: v.strip('"') for k, v in _ATTR.findall(text or "")}


def nodes(source: str) -> dict:
    """id -> (label, attributes) for every node but the legend."""
    return {m[0]: (m[1], attrs(m[2])) for m in _NODE.findall(source) if m[0] != "legend"}


def edge_colors(source: str) -> list:
    return [attrs(m[2]).get("color", "") for m in _EDGE.findall(source)]


def legend(source: str) -> str:
    return re.search(r"^\tlegend \[label=<(.*)> ", source, re.M).group(1)


def route_color(path: str) -> str:
    return _ROUTE_COLORS[list(ROUTE_NAMES).index(path)]


def upstream(y, seed=1):
    r = np.random.default_rng(seed).standard_normal(y.shape)
    return (y * mg.tensor(r)).sum(), r


X_SHAPES = {"BatchNorm1d (N, C)": (lambda: nn.BatchNorm1d(3), (6, 3)),
            "BatchNorm1d (N, C, L)": (lambda: nn.BatchNorm1d(3), (4, 3, 5)),
            "BatchNorm2d": (lambda: nn.BatchNorm2d(2), (3, 2, 2, 3)),
            "LayerNorm": (lambda: nn.LayerNorm(5), (4, 5)),
            "GroupNorm": (lambda: nn.GroupNorm(2, 4), (3, 4, 2))}


@pytest.mark.parametrize("case", list(X_SHAPES))
def test_each_norm_has_its_three_routes_coloured_and_its_parts_match_the_closed_form(case):
    make, shape = X_SHAPES[case]
    rng = np.random.default_rng(0)
    layer = make()
    if layer.weight is not None:
        layer.weight.data[...] = rng.uniform(0.5, 1.5, layer.weight.shape)
    x = mg.tensor(rng.standard_normal(shape), requires_grad=True)
    loss, r = upstream(layer(x))
    site, = find_norm_sites(loss)
    assert site.module is layer
    source = draw_graph(loss, routes=True).source
    colors = edge_colors(source)
    for path in PATHS:
        assert any(route_color(path) in c for c in colors), path
        assert f"route: {ROUTE_NAMES[path]}" in legend(source)
    # The parts autograd sends along x's three edges are the closed form's, over the norm's axes
    parts = site_paths(loss, site)
    statistics_input = site.x.data
    if case == "GroupNorm":  # the weight applies after the reshape back: dL/dx_hat per channel
        g = (r * layer.weight.data.reshape(1, -1, 1)).reshape(statistics_input.shape)
    else:
        w = layer.weight.data
        g = r * (w.reshape((-1,) + (1,) * (len(shape) - 2)) if "BatchNorm" in case else w)
    closed = batchnorm_paths(statistics_input, g, None, layer.eps, axis=site.axis)
    for path in PATHS:
        np.testing.assert_allclose(getattr(parts, path), getattr(closed, path), atol=1e-12)
    loss.backward()
    np.testing.assert_allclose(parts.total.reshape(shape), x.grad.data, atol=1e-12)


def test_a_users_model_has_every_norm_found_and_each_ones_routes_stop_where_they_merge():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(4, 3, rng=rng), nn.BatchNorm1d(3), nn.ReLU(),
                          nn.Linear(3, 5, rng=rng), nn.LayerNorm(5))
    x = mg.tensor(rng.standard_normal((6, 4)))
    loss, _ = upstream(model(x))
    sites = find_norm_sites(loss)
    assert [type(s.module).__name__ for s in sites] == ["BatchNorm1d", "LayerNorm"]
    picture = trace(loss, routes=True)
    assert picture.routes == list(ROUTE_NAMES.values())  # three names, shared by both norms
    direct = [e for e in picture.edges.values() if ROUTE_NAMES["direct"] in e.routes]
    # per norm: x -> Sub -> (x - mean) -> Mul, the direct route's three edges
    assert len(direct) == 6
    # Nothing between the two norms is on a route: the BatchNorm's stop where they merge
    on_route = {e.head for e in picture.edges.values() if e.routes}
    relu = [v.id for v in picture.vertices.values() if v.title.lower() == "relu"]
    assert relu and relu[0] not in on_route


def test_collapsed_norms_have_no_routes_and_explicit_routes_still_work():
    rng = np.random.default_rng(0)
    layer = nn.BatchNorm1d(3)
    x = mg.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    loss, _ = upstream(layer(x))
    picture = trace(loss, routes=True, collapse=(nn.BatchNorm1d,))
    assert picture.routes == [] and not any(e.routes for e in picture.edges.values())
    site, = find_norm_sites(loss)
    source = draw_graph(loss, routes={"only the mean": (x, site.mean)}).source
    assert sum(_ROUTE_COLORS[0] in c for c in edge_colors(source)) == 1  # alone: its first edge
    assert "route: only the mean" in legend(source)
    assert trace(loss, routes=False).routes == []


def test_a_graph_without_norms_draws_with_routes_true():
    x = mg.tensor(np.ones((2, 2)), requires_grad=True)
    source = draw_graph((x * 3).sum(), routes=True).source
    assert "route:" not in legend(source)


def test_small_tensors_show_data_and_grad_large_ones_only_the_norm():
    x = mg.tensor(np.array([[1.0, -2.0], [0.5, 4.0]]), requires_grad=True)
    x.name = "x"
    big = mg.tensor(np.ones((5, 4)), requires_grad=True)
    big.name = "big"
    loss = (x * 3).sum() + (big * 2).sum()
    by_title = {}
    for label, _ in nodes(draw_graph(loss).source).values():
        title = re.match(r"<b>(.*?)</b>", label)
        if title:
            by_title[title.group(1)] = label
    assert "data [1, -2]" in by_title["x"] and "[0.5, 4]" in by_title["x"]
    assert "grad [3, 3]" in by_title["x"]  # d loss / d x = 3 everywhere
    assert "data [" not in by_title["big"] and "grad norm" in by_title["big"]
    hidden = draw_graph(loss, show_values=False).source
    assert "data [" not in hidden and "grad [" not in hidden


def test_reciprocal_is_labelled_1_over_x_and_a_plain_div_keeps_its_name():
    x = mg.tensor(np.array([2.0, 4.0]), requires_grad=True)
    labels = [label for label, _ in nodes(draw_graph((1.0 / x).sum()).source).values()]
    assert any(label.startswith("<b>1/x</b>") for label in labels)
    assert not any("a=1" in label for label in labels)
    labels = [label for label, _ in nodes(draw_graph((2.0 / x).sum()).source).values()]
    assert any(label.startswith("<b>Div</b>") for label in labels)


def test_swatches_differ_and_the_legend_shows_them_and_the_arrow_direction():
    styles = {k: _NODE_STYLES[k]["fillcolor"] for k in ("constant", "tensor", "reduction",
                                                          "broadcast")}
    assert styles["constant"] != styles["tensor"]
    assert styles["reduction"] != styles["broadcast"]
    x = mg.tensor(np.ones((2, 3)), requires_grad=True)
    c = mg.tensor(np.full(3, 2.0))  # a constant
    w = mg.tensor(np.ones(3), requires_grad=True)  # broadcast, then a reduction
    source = draw_graph((x * c + w).sum()).source
    text = legend(source)
    for kind in styles:
        assert f'bgcolor="{styles[kind]}"' in text, kind
    assert DIRECTION_TEXT in text
    fills = {a.get("fillcolor") for _, a in nodes(source).values()}
    assert set(styles.values()) <= fills


def test_a_users_tensor_names_label_intermediates():
    x = mg.tensor(np.ones((2, 2)), requires_grad=True)
    hidden = x * 2
    hidden.name = "hidden"
    out = (hidden + 1).sum()
    labels = [label for label, _ in nodes(draw_graph(out).source).values()]
    assert any(label.startswith("<b>hidden</b>") for label in labels)
    labels = [label for label, _ in nodes(draw_graph(out, names={"h2": hidden}).source).values()]
    assert any(label.startswith("<b>h2</b>") for label in labels)


def test_graph_layernorm_prints_its_checked_decomposition(tmp_path, capsys):
    assert cli.main(["graph", "layernorm", "-o", str(tmp_path / "ln.dot")]) == 0
    out = capsys.readouterr().out
    assert "all checks pass" in out
    for words in ("directly through x-hat", "through the sample's mean",
                  "through the sample's variance"):
        assert words in out
    source = (tmp_path / "ln.dot").read_text()
    for path in PATHS:
        assert any(route_color(path) in c for c in edge_colors(source))


def test_graph_mlp_collapses_its_norms_unless_expanded(tmp_path, capsys):
    assert cli.main(["graph", "mlp", "-o", str(tmp_path / "mlp.dot")]) == 0
    collapsed = (tmp_path / "mlp.dot").read_text()
    modules = [label for label, a in nodes(collapsed).values() if a.get("shape") == "box3d"]
    assert len(modules) == 3 and all("BatchNorm1d" in label for label in modules)
    assert cli.main(["graph", "mlp", "--expand", "-o", str(tmp_path / "mlpx.dot")]) == 0
    expanded = (tmp_path / "mlpx.dot").read_text()
    assert not any(a.get("shape") == "box3d" for _, a in nodes(expanded).values())
    colors = edge_colors(expanded)
    # three norms, each with its direct route's first edge (the next two are shared with the
    # route through the mean, drawn in both colours)
    assert sum(c == route_color("direct") for c in colors) == 3
    assert sum(c == f'{route_color("direct")}:{route_color("through_mean")}'
               for c in colors) == 3 * 2
