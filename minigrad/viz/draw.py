"""Draw an autograd graph with Graphviz: ``draw_graph`` returns a ``graphviz.Digraph`` (shown
inline by Jupyter), ``save_graph`` writes it to .dot and renders svg/png/pdf when the ``dot``
program is installed."""
from __future__ import annotations

import math
import os
import sys
from html import escape
from pathlib import Path

import graphviz

from ..core.checks import bad_argument, boolean, one_of
from ..core.errors import ArgumentTypeError
from .trace import Picture, grad_norm, trace

__all__ = ["draw_graph", "save_graph", "GRAPHVIZ_INSTALL_HINT"]

GRAPHVIZ_INSTALL_HINT = ("install Graphviz to render it (Debian/Ubuntu: apt-get install graphviz; "
                         "macOS: brew install graphviz; conda: conda install graphviz)")

_FONT = "Helvetica"

GRAPH_FORMATS = ("svg", "png", "pdf", "dot")

# Tensors are boxes, ops are ellipses (reductions and broadcasts are trapezia pointing the way
# the data shrinks or grows), collapsed modules are 3-D boxes.
_NODE_STYLES = {
    "input": {"shape": "box", "style": "filled,rounded", "fillcolor": "#cfe2f3"},
    "parameter": {"shape": "box", "style": "filled,rounded", "fillcolor": "#d9ead3"},
    "buffer": {"shape": "box", "style": "filled,rounded,dashed", "fillcolor": "#fff2cc"},
    # square corners and grey: a constant is not a tensor the gradient reaches
    "constant": {"shape": "box", "style": "filled", "fillcolor": "#e6e6e6",
                 "fontcolor": "#555555", "color": "#999999"},
    "tensor": {"shape": "box", "style": "filled,rounded", "fillcolor": "#ffffff",
               "color": "#999999"},
    "output": {"shape": "box", "style": "filled,rounded", "fillcolor": "#f4cccc",
               "peripheries": "2"},
    "op": {"shape": "ellipse", "style": "filled", "fillcolor": "#e8e8e8"},
    "reduction": {"shape": "invtrapezium", "style": "filled", "fillcolor": "#d9c2ec"},
    "broadcast": {"shape": "trapezium", "style": "filled", "fillcolor": "#bfe6d3"},
    "module": {"shape": "box3d", "style": "filled", "fillcolor": "#fce5cd",
               "margin": "0.15,0.06"},
    "elided": {"shape": "note", "style": "filled", "fillcolor": "#f3f3f3",
               "fontcolor": "#444444"},
}
_LEGEND_TEXT = {
    "input": "input (leaf tensor)",
    "parameter": "module parameter",
    "buffer": "module buffer (running statistics)",
    "constant": "constant (needs no gradient)",
    "tensor": "intermediate tensor",
    "output": "output (where backward starts)",
    "op": "op",
    "reduction": "reduction: sum, mean, var, max (narrowing trapezium, dotted input edge)",
    "broadcast": "broadcast (widening trapezium, dashed input edge)",
    "module": "collapsed module",
}
_EDGE_STYLES = {"data": "solid", "result": "solid", "broadcast": "dashed", "reduction": "dotted",
                "elided": "dotted"}

# Gradient norm on a log scale: faint blue for the smallest, dark red for the largest.
_GRAD_COLORS = ["#9ecae1", "#4a90c8", "#2b5aa8", "#6a51a3", "#c2185b", "#b71c1c", "#67000d"]
_NO_GRAD_COLOR = "#b0b0b0"
_OFF_ROUTE_COLOR = "#7f7f7f"
_MIN_DECADES = 2.0  # a narrower range of norms is spread over this many decades
# Norms further below the largest all get the faintest colour: one round-off-sized gradient
# (1e-17) must not squeeze every other edge into the darkest colour.
_MAX_DECADES = 6.0
_MIN_ROUTE_WIDTH = 1.6  # so that a route carrying a small gradient is still visible
_ROUTE_COLORS = ["#e6550d", "#1b9e77", "#7570b3", "#e7298a", "#66a61e"]
_CLUSTER_FILLS = ["#f7f9fc", "#eef2f8", "#e4eaf3"]
# Edges point the way the data flows (forward), so the picture reads like the code; the
# gradient flows back against them. The legend says so in these words.
DIRECTION_TEXT = ("arrows: forward, data flows along them; the gradient flows back against "
                  "them")


def draw_graph(root, *, show_grad: bool = True, show_data: bool = False, rankdir: str = "TB",
               group_modules: bool = True, collapse=(), max_nodes: int | None = 300,
               names=None, routes=None, grad_output=None, legend: bool = True,
               title: str | None = None, show_values: bool = True) -> graphviz.Digraph:
    """Draw the graph that computed ``root``: one node per tensor and per op, data flowing
    from the inputs down to ``root``.

    - ``show_grad``: run one backward pass from ``root`` (seeded with ``grad_output``, ones by
      default; nobody's ``.grad`` is touched) and label every edge with the norm of the
      gradient flowing back along it; pen width and colour follow the norm on a log scale.
      Tensors show their total gradient's norm. Arrows point forward (the data flow); the
      gradient travels against them.
    - ``show_values``: tensors of at most 16 elements show their values and gradient
      (``data [...]``, ``grad [...]``), as micrograd does.
    - ``show_data``: larger tensors show their mean, std and range.
    - ``group_modules``: ops run inside a module's forward sit in a cluster labelled like
      ``bn1: BatchNorm1d(256)``, nested as the modules are; parameters (``bn1.weight``) and
      buffers sit in their module's cluster.
    - ``collapse``: module classes, instances or class names drawn as one node each, e.g.
      ``collapse=(nn.BatchNorm1d,)``.
    - ``max_nodes``: draw at most this many nodes (an int >= 2), those nearest ``root``; one
      note says what was left out. The walk from ``root`` stops after ``4 * max_nodes`` ops, so
      a huge graph draws as fast as a small one: its note then says "at least N more", and no
      gradients are shown (they would need a backward pass through the whole graph). None
      draws everything.
    - ``names``: ``{name: tensor}`` labels for tensors (intermediates too; an op node stands
      for its output); otherwise a tensor's own ``.name`` is used (``x.name = "x"``).
    - ``routes``: True finds every normalization sub-graph drawn op by op (BatchNorm of any
      dimensionality, LayerNorm, GroupNorm, or a hand-written ``(x - mean) / sqrt(var +
      eps)``) and colours the three routes by which the gradient reaches its input: direct,
      through the mean, through the variance (the same three colours for every norm).
      ``{name: (tensor, op)}`` colours the routes that leave ``tensor`` through the edge into
      ``op`` (a ``grad_fn`` node), up to where they merge.
    - ``rankdir``: "TB" (top to bottom), "LR", "BT" or "RL".

    The DOT source is deterministic: node ids follow the traversal order. Every option is
    checked before any work; a bad one is a clear error naming it (TypeError for the wrong
    kind, ValueError for a bad value).
    """
    owner = "draw_graph"
    rankdir = one_of(owner, "rankdir", rankdir, ("TB", "LR", "BT", "RL"))
    legend = boolean(owner, "legend", legend)
    if title is not None and not isinstance(title, str):
        bad_argument(owner, "title", "None or a string", title, ArgumentTypeError)
    picture = trace(root, show_grad=show_grad, show_data=show_data, group_modules=group_modules,
                    collapse=collapse, max_nodes=max_nodes, names=names, routes=routes,
                    grad_output=grad_output, show_values=show_values)
    graph = graphviz.Digraph("minigrad")
    graph.attr(rankdir=rankdir, fontname=_FONT, nodesep="0.25", ranksep="0.35")
    if title:
        graph.attr(label=title, labelloc="t", fontsize="16")
    graph.attr("node", fontname=_FONT, fontsize="10", margin="0.08,0.03", height="0.3")
    graph.attr("edge", fontname=_FONT, fontsize="8", arrowsize="0.6")
    _add_vertices(graph, picture)
    scale = _GradScale(picture)
    for edge in picture.edges.values():
        graph.edge(edge.tail, edge.head, **_edge_attrs(edge, scale, picture.routes))
    if legend:
        graph.node("legend", _legend(picture, scale), shape="plaintext", margin="0")
    return graph


def graph_format(path) -> str:
    """The format a graph file's name asks for: svg, png, pdf or dot (its suffix); a
    ValueError naming the file for anything else."""
    fmt = Path(path).suffix.lstrip(".").lower()
    if fmt not in GRAPH_FORMATS:
        raise ValueError(f"cannot write {Path(path).name!r}: the file name must end in .svg, "
                         f".png, .pdf or .dot")
    return fmt


def save_graph(graph: graphviz.Digraph, path) -> Path:
    """Write ``graph`` to ``path`` (.svg, .png, .pdf or .dot). The DOT source is always
    written next to it (``path`` with suffix .dot); without Graphviz's ``dot`` program only
    that is written, and one line on stderr says how to install Graphviz. Returns the path of
    the file that was written last (the rendered one, or the .dot)."""
    owner = "save_graph"
    if not isinstance(graph, graphviz.graphs.BaseGraph):
        bad_argument(owner, "graph", "a graphviz graph (what draw_graph returns)", graph,
                     ArgumentTypeError)
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        bad_argument(owner, "path", "a file name (str or Path)", path, ArgumentTypeError)
    path = Path(path)
    fmt = Path(path).suffix.lstrip(".").lower()
    if fmt not in GRAPH_FORMATS:
        bad_argument(owner, "path", "a file name ending in .svg, .png, .pdf or .dot",
                     str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    dot_path = path.with_suffix(".dot")
    dot_path.write_text(graph.source, encoding="utf-8")
    if fmt == "dot":
        return dot_path
    try:
        graphviz.render("dot", fmt, str(dot_path), outfile=str(path), quiet=True)
    except graphviz.ExecutableNotFound:
        print(f"note: Graphviz's 'dot' program was not found, so only {dot_path} was written; "
              f"{GRAPHVIZ_INSTALL_HINT}", file=sys.stderr)
        return dot_path
    return path


# ----------------------------------------------------------------------------------------------
# Vertices, nested in module clusters
# ----------------------------------------------------------------------------------------------

def _add_vertices(graph, picture: Picture) -> None:
    """Emit each vertex inside the clusters of its module chain. Clusters are numbered in the
    order their first vertex appears, so the output is deterministic."""
    tree = _ClusterTree()
    for vertex in picture.vertices.values():
        tree.add(vertex)
    tree.emit(graph, picture.module_labels, depth=0)


class _ClusterTree:
    def __init__(self, number: int = 0, counter=None):
        self.number = number
        self.counter = counter if counter is not None else [0]
        self.vertices: list = []
        self.children: dict = {}  # module -> _ClusterTree, in order of appearance

    def add(self, vertex, depth: int = 0) -> None:
        if depth == len(vertex.scope):
            self.vertices.append(vertex)
            return
        module = vertex.scope[depth]
        if module not in self.children:
            self.counter[0] += 1
            self.children[module] = _ClusterTree(self.counter[0], self.counter)
        self.children[module].add(vertex, depth + 1)

    def emit(self, graph, labels, depth: int) -> None:
        for vertex in self.vertices:
            graph.node(vertex.id, _vertex_label(vertex), **_NODE_STYLES[vertex.kind])
        for module, child in self.children.items():
            # Built bottom-up: Digraph.subgraph copies the child's body when called.
            cluster = graphviz.Digraph(name=f"cluster_{child.number}")
            cluster.attr(label=labels.get(module, type(module).__name__), labeljust="l",
                         style="rounded,filled", color="#8c9db5",
                         fillcolor=_CLUSTER_FILLS[depth % len(_CLUSTER_FILLS)],
                         fontname=_FONT, fontsize="11")
            child.emit(cluster, labels, depth + 1)
            graph.subgraph(cluster)


def _vertex_label(vertex) -> str:
    """An HTML-like label: the title in bold, details below in a smaller font."""
    parts = []
    if vertex.title:
        parts.append(f"<b>{escape(vertex.title)}</b>")
    for line in vertex.lines:
        for piece in line.split("\n"):
            parts.append(f'<font point-size="8">{escape(piece)}</font>')
    return "<" + "<br/>".join(parts) + ">"


# ----------------------------------------------------------------------------------------------
# Edges: gradient norm as colour and width, log scale
# ----------------------------------------------------------------------------------------------

class _GradScale:
    """Maps a gradient norm to a position in [0, 1] on a log scale spanning the picture's
    smallest and largest non-zero norms (at least ``_MIN_DECADES`` decades wide, at most
    ``_MAX_DECADES``)."""

    def __init__(self, picture: Picture):
        logs = [math.log10(n) for n in (grad_norm(e.grad) for e in picture.edges.values())
                if n is not None and n > 0]
        self.empty = not logs
        if self.empty:
            return
        self.high = max(logs)
        self.low = max(min(logs), self.high - _MAX_DECADES)
        if self.high - self.low < _MIN_DECADES:
            middle = (self.high + self.low) / 2
            self.low, self.high = middle - _MIN_DECADES / 2, middle + _MIN_DECADES / 2

    def position(self, norm: float) -> float:
        return min(max((math.log10(norm) - self.low) / (self.high - self.low), 0.0), 1.0)

    def color(self, position: float) -> str:
        return _GRAD_COLORS[round(position * (len(_GRAD_COLORS) - 1))]

    def norm_at(self, position: float) -> float:
        return 10 ** (self.low + position * (self.high - self.low))


def _edge_attrs(edge, scale: _GradScale, route_names) -> dict:
    attrs = {"style": _EDGE_STYLES[edge.kind], "color": _NO_GRAD_COLOR, "penwidth": "0.8"}
    norm = grad_norm(edge.grad) if edge.kind != "elided" else None
    if norm == 0:
        attrs.update(label=" 0", fontcolor="#777777")
    elif norm is not None:
        position = scale.position(norm)
        attrs["penwidth"] = f"{0.8 + 3.2 * position:.2f}"
        # With routes drawn, colour marks the routes and the width alone shows the norm.
        attrs["color"] = _OFF_ROUTE_COLOR if route_names else scale.color(position)
        if edge.kind != "result":  # an op's output edge: its tensor's node shows the norm
            attrs.update(label=f" {norm:.2g}", fontcolor="#333333")
    if edge.routes:
        attrs["color"] = ":".join(_route_color(route_names.index(r)) for r in edge.routes)
        attrs["penwidth"] = f"{max(float(attrs['penwidth']), _MIN_ROUTE_WIDTH):.2f}"
    return attrs


def _route_color(index: int) -> str:
    return _ROUTE_COLORS[index % len(_ROUTE_COLORS)]


# ----------------------------------------------------------------------------------------------
# Legend: only what the picture uses
# ----------------------------------------------------------------------------------------------

def _legend(picture: Picture, scale: _GradScale) -> str:
    kinds = [k for k in _LEGEND_TEXT if any(v.kind == k for v in picture.vertices.values())]
    rows = []
    for kind in kinds:
        style = _NODE_STYLES[kind]
        rows.append(f'<tr><td bgcolor="{style["fillcolor"]}" border="1" width="28"></td>'
                    f'<td align="left" colspan="{len(_GRAD_COLORS) - 1}">'
                    f'{escape(_LEGEND_TEXT[kind])}</td></tr>')
    rows.append(f'<tr><td colspan="{len(_GRAD_COLORS)}" align="left">'
                f'{escape(DIRECTION_TEXT)}</td></tr>')
    for index, name in enumerate(picture.routes):
        rows.append(f'<tr><td bgcolor="{_route_color(index)}" width="28"></td>'
                    f'<td align="left" colspan="{len(_GRAD_COLORS) - 1}">route: '
                    f'{escape(name)}</td></tr>')
    if not scale.empty and picture.routes:
        rows.append(f'<tr><td colspan="{len(_GRAD_COLORS)}" align="left">edge width: gradient '
                    f'norm, log scale, {scale.norm_at(0):.1e} to {scale.norm_at(1):.1e}</td></tr>')
    elif not scale.empty:
        steps = len(_GRAD_COLORS)
        cells = "".join(f'<td bgcolor="{c}" width="28"></td>' for c in _GRAD_COLORS)
        ends = (f'<td align="left" colspan="{steps // 2}">{scale.norm_at(0):.1e}</td>'
                f'<td align="right" colspan="{steps - steps // 2}">{scale.norm_at(1):.1e}</td>')
        rows.append(f'<tr><td colspan="{steps}" align="left">gradient norm per edge '
                    f'(width and colour, log scale)</td></tr><tr>{cells}</tr><tr>{ends}</tr>')
    return ('<<table border="0" cellborder="0" cellspacing="2" cellpadding="2">'
            f'<tr><td colspan="{len(_GRAD_COLORS)}" align="left"><b>legend</b></td></tr>' + "".join(rows)
            + "</table>>")
