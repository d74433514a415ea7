"""Step through backward: one self-contained HTML page that replays the engine's backward pass
node by node over the graph drawn by Graphviz.

The steps are recorded from the real traversal (``backpropagate``'s ``on_edge`` callback sees
every edge's gradient in the engine's order), so the page shows exactly what autograd computes:
for each op, the gradient arriving at its output, the local derivative it applies, what it
sends to each input, and, for a tensor reached by several edges, the sum of the paths so far.
"""
from __future__ import annotations

import json
import math
import os
import re
from html import escape
from pathlib import Path

import graphviz
import numpy as np

from ..autograd import backpropagate, graph_nodes
from ..core.checks import bad_argument
from ..core.errors import ArgumentTypeError
from ..core.tensor import Tensor
from .draw import GRAPHVIZ_INSTALL_HINT, draw_graph
from .trace import _names, require_tensor, seed_gradient, tensor_key

__all__ = ["save_steps", "steps_page", "backward_steps", "FORMULAS", "SMALL"]

# A tensor with at most this many elements shows its values; a larger one a norm and a heat map.
SMALL = 16
_HEAT_CELLS = 16  # a heat map has at most this many rows and columns

# Each op's backward as the learner would write it: g is the gradient arriving at the output.
FORMULAS = {
    # elementwise
    "Add": "d(a+b)/da = 1, d(a+b)/db = 1: both inputs get g (summed over broadcast axes)",
    "Sub": "d(a-b)/da = 1, d(a-b)/db = -1: a gets g, b gets -g",
    "Mul": "d(a·b)/da = b, d(a·b)/db = a: a gets g·b, b gets g·a",
    "Div": "d(a/b)/da = 1/b, d(a/b)/db = -a/b²: a gets g/b, b gets -g·a/b²",
    "Neg": "d(-x)/dx = -1: x gets -g",
    "Pow": "d(a^p)/da = p·a^(p-1), d(a^p)/dp = a^p·ln a",
    "Exp": "d(e^x)/dx = e^x: x gets g·e^x",
    "Log": "d(ln x)/dx = 1/x: x gets g/x",
    "Sqrt": "d(√x)/dx = 1/(2√x): x gets g/(2√x)",
    "Sin": "d(sin x)/dx = cos x",
    "Cos": "d(cos x)/dx = -sin x",
    "Abs": "d|x|/dx = sign(x) (0 at 0)",
    "Tanh": "d(tanh x)/dx = 1 - tanh²x",
    "Sigmoid": "dσ(x)/dx = σ(x)·(1 - σ(x))",
    "Relu": "d relu(x)/dx = 1 where x > 0, else 0: g passes where x was positive",
    "Maximum": "d max(a,b) goes to the larger input (split evenly on ties)",
    "Minimum": "d min(a,b) goes to the smaller input (split evenly on ties)",
    "Clamp": "d clamp(x, low, high)/dx = 1 inside [low, high], else 0",
    "Where": "where(c, a, b): a gets g where c is true, b gets g where it is false",
    "Cast": "a change of dtype: g is cast back to the input's dtype",
    # linear algebra
    "MatMul": "d(A@B)/dA: A gets g @ Bᵀ; d(A@B)/dB: B gets Aᵀ @ g",
    # reductions
    "Sum": "d(Σ x)/dx_i = 1: every x_i gets g (broadcast back over the summed axes)",
    "Mean": "d(mean x)/dx_i = 1/n: every x_i gets g/n",
    "Var": "d var(x)/dx_i = 2(x_i - mean)/(n - ddof): x_i gets g·2(x_i - mean)/(n - ddof)",
    "Max": "d max(x)/dx_i = 1 for the largest x_i (split on ties), 0 elsewhere",
    "Min": "d min(x)/dx_i = 1 for the smallest x_i (split on ties), 0 elsewhere",
    "LogSumExp": "d logΣe^x/dx_i = softmax(x)_i: x gets g·softmax(x)",
    # shape
    "Reshape": "a reshape moves no values: g is reshaped back to x's shape",
    "Transpose": "x gets g transposed back (the inverse permutation)",
    "BroadcastTo": "a broadcast copies x: x gets g summed over the broadcast axes",
    "GetItem": "x[index]: g is scattered back into zeros of x's shape (repeats add)",
    "ScatterAdd": "the values get g read at the index",
    "SetItem": "x[index] = v: x gets g with the index zeroed, v gets g[index]",
    "Concatenate": "each input gets its own slice of g",
    # functional ops
    "Linear": "y = x Wᵀ + b: x gets g @ W, W gets gᵀ @ x, b gets Σ_batch g",
    "LogSoftmax": "d log softmax(x): x gets g - softmax(x)·Σ g",
    "NLLLoss": "-mean log p[label]: log_probs get -g/n at each label, 0 elsewhere",
    "LeakyRelu": "d/dx = 1 where x > 0, else the negative slope",
    "Erf": "d erf(x)/dx = 2/√π·e^(-x²)",
    "Softplus": "d softplus(x)/dx = σ(βx) (1 above the threshold)",
    "Im2Col": "cols gathered from the image: the image gets g's columns added back (col2im)",
    "Col2Im": "the image summed from columns: cols get g gathered back (im2col)",
    "FusedBatchNorm": "dx = (g - mean(g) - x̂·mean(g·x̂))·γ/σ, dγ = Σ g·x̂, dβ = Σ g",
}
GENERIC_FORMULA = "the op's backward: each input gets g times the op's local derivative"


def save_steps(loss, path, *, names=None, grad_output=None) -> Path:
    """Write the step-through page of ``loss``'s backward pass to ``path`` (an .html file) and
    return its path. ``names``: ``{label: tensor}`` labels for tensors, as in ``draw_graph``;
    ``grad_output``: the gradient to start from (ones by default). The graph is retained and
    nobody's ``.grad`` changes."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        bad_argument("save_steps", "path", "a file name (str or Path)", path, ArgumentTypeError)
    page = steps_page(loss, names=names, grad_output=grad_output)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def steps_page(loss, *, names=None, grad_output=None, title: str | None = None) -> str:
    """The page ``save_steps`` writes, as a string (e.g. for an iframe's ``srcdoc``)."""
    steps = backward_steps(loss, names=names, grad_output=grad_output)
    try:
        graph = draw_graph(loss, names=names, grad_output=grad_output, max_nodes=None)
        svg = _inline_svg(graph.pipe(format="svg").decode("utf-8"))
    except graphviz.ExecutableNotFound:
        svg = f"<p>The graph is not drawn: {escape(GRAPHVIZ_INSTALL_HINT)}.</p>"
    return _PAGE.format(title=escape(title or "minigrad: step through backward"), svg=svg,
                        data=_script_json(steps), script=_SCRIPT, style=_STYLE)


def backward_steps(loss, *, names=None, grad_output=None) -> list:
    """The steps of the backward pass from ``loss``, in the engine's order: one dict per op
    node, ``{"node", "op", "output", "output_name", "grad_in", "formula", "grads_out"}``, where
    ``node`` and ``output`` are the ids draw_graph gives the op and its output tensor. Each entry
    of ``grads_out`` is one edge: ``{"input", "target", "name", "grad", "sum", "paths",
    "paths_total"}`` -- ``sum`` is the target tensor's gradient summed over the ``paths``
    edges reached so far, of ``paths_total``."""
    owner = "save_steps"
    require_tensor(owner, "loss", loss)
    names = _names(owner, names)
    seed = seed_gradient(owner, loss, grad_output)
    if not loss.requires_grad or loss.grad_fn is None:
        return []
    nodes = graph_nodes((loss,))
    if any(node.freed for node in nodes):
        raise RuntimeError(f"{owner}: backward() has freed this graph's saved values, so its "
                           "backward cannot be replayed. Call backward(retain_graph=True) "
                           "first, or call save_steps before backward")
    op_ids, tensor_ids = _vertex_ids(nodes, loss)
    labels = _labels(names, loss)
    arriving = {loss.grad_fn: np.array(seed.data)}  # node -> gradient of its output so far
    running, paths = {}, {}  # tensor key -> sum of the edges so far, how many edges
    steps = []

    def record(node, index, tensor, grad):
        if not steps or steps[-1]["_node"] is not node:  # the engine moved on to this node
            steps.append({"_node": node, "node": op_ids[node], "op": node.name,
                          "output": tensor_ids.get(node), "output_name": labels(node),
                          "grad_in": _summary(arriving.pop(node)),
                          "formula": FORMULAS.get(type(node).__name__, GENERIC_FORMULA),
                          "grads_out": []})
        key = tensor_key(tensor)
        edge = np.array(grad.data)  # a copy: the engine may add into its own sums in place
        running[key] = edge.copy() if key not in running else running[key] + edge
        paths[key] = paths.get(key, 0) + 1
        if tensor.grad_fn is not None:  # what the producing op will receive
            so_far = arriving.get(tensor.grad_fn)
            arriving[tensor.grad_fn] = edge.copy() if so_far is None else so_far + edge
        steps[-1]["grads_out"].append({
            "input": index, "target": tensor_ids.get(key), "name": labels(key),
            "grad": _summary(edge), "sum": _summary(running[key]), "paths": paths[key],
            "_key": key})

    backpropagate(loss, seed, retain_graph=True, on_edge=record)
    for step in steps:  # now every edge is known: how many paths meet at each tensor
        del step["_node"]
        for out in step["grads_out"]:
            out["paths_total"] = paths[out.pop("_key")]
    return steps


# ----------------------------------------------------------------------------------------------
# Ids and labels: the same ones draw_graph gives (its ids follow the traversal order)
# ----------------------------------------------------------------------------------------------

def _vertex_ids(nodes, root):
    """{node: "opK"}, {tensor key: "tK"}: draw_graph (no collapsed modules, no node limit)
    numbers op vertices in forward order and tensor vertices as they first appear -- a node's
    inputs, then its output."""
    op_ids, tensor_ids = {}, {}

    def see(tensor):
        key = tensor_key(tensor)
        if key not in tensor_ids:
            tensor_ids[key] = f"t{len(tensor_ids)}"

    for number, node in enumerate(nodes):
        for value in node.inputs:
            if isinstance(value, Tensor):
                see(value)
        op_ids[node] = f"op{number}"
        tensor_ids.setdefault(node, f"t{len(tensor_ids)}")
    see(root)
    return op_ids, tensor_ids


def _labels(names: dict, root):
    """A function from a tensor key to its label: the names given, else a leaf's or the
    root's own ``.name``, else ""."""
    given = {tensor_key(t) if isinstance(t, Tensor) else t: label for label, t in names.items()}
    if root.name:
        given.setdefault(tensor_key(root), root.name)

    def label(key) -> str:
        if key in given:
            return given[key]
        return (key.name or "") if isinstance(key, Tensor) else ""
    return label


# ----------------------------------------------------------------------------------------------
# Gradients as JSON: values when small, else a norm and a coarse heat map
# ----------------------------------------------------------------------------------------------

def _number(x: float):
    """A float JSON can hold: nan and infinities as strings."""
    return x if math.isfinite(x) else str(x)


def _summary(grad: np.ndarray) -> dict:
    data = np.asarray(grad)
    if data.dtype.kind == "c":
        data = data.real
    data = data.astype(np.float64, copy=False)
    out = {"shape": list(data.shape), "norm": _number(float(np.linalg.norm(data)))}
    if data.size <= SMALL:
        out["values"] = [_number(float(v)) for v in data.ravel()]
    else:
        out["heat"] = _heat(data)
    return out


def _heat(data: np.ndarray) -> dict:
    """The values as a matrix (leading axes flattened into rows) averaged down to at most
    ``_HEAT_CELLS`` x ``_HEAT_CELLS`` blocks, with the largest magnitude for the colour scale."""
    matrix = data.reshape(1, -1) if data.ndim < 2 else data.reshape(-1, data.shape[-1])
    rows = [block.mean(axis=0) for block in np.array_split(matrix, min(_HEAT_CELLS,
                                                                      matrix.shape[0]), axis=0)]
    cells = [[float(b.mean()) for b in np.array_split(row, min(_HEAT_CELLS, row.shape[0]))]
             for row in rows]
    finite = np.asarray(cells)[np.isfinite(cells)]
    scale = float(np.abs(finite).max()) if finite.size else 0.0
    return {"cells": [[_number(v) for v in row] for row in cells], "scale": scale}


def _script_json(value) -> str:
    """JSON safe inside a <script> element: no "</" can end it early."""
    return json.dumps(value, allow_nan=False).replace("</", "<\\/")


# ----------------------------------------------------------------------------------------------
# The page
# ----------------------------------------------------------------------------------------------

def _inline_svg(svg: str) -> str:
    """Graphviz's SVG made fit to sit inside the page: no XML prolog or DOCTYPE, no namespace
    URLs (HTML needs none, and the page refers to no address), and each node's group id set to
    its DOT name (``op3``, ``t5``) so the steps can find it."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg)
    return re.sub(r'<g id="node\d+" class="node">(\s*)<title>([^<]*)</title>',
                  lambda m: f'<g id="{m.group(2)}" class="node">{m.group(1)}'
                            f'<title>{m.group(2)}</title>', svg)


_STYLE = """
body { font-family: Helvetica, Arial, sans-serif; margin: 0; display: flex; height: 100vh; }
#graph { flex: 1 1 60%; overflow: auto; border-right: 1px solid #ccc; padding: 8px; }
#graph svg { max-width: 100%; height: auto; }
#panel { flex: 1 1 40%; overflow: auto; padding: 12px; font-size: 14px; }
#controls { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; }
#controls input[type=range] { flex: 1; }
#node-title { margin: 10px 0 2px; }
.formula { background: #f4f4f8; padding: 6px 8px; border-left: 3px solid #7570b3; }
.values { font-family: monospace; font-size: 12px; overflow-wrap: normal; }
.out { border-top: 1px solid #ddd; margin-top: 8px; padding-top: 6px; }
.meet { color: #b71c1c; }
.hint { color: #666; font-size: 12px; }
.node.current ellipse, .node.current polygon, .node.current path {
  stroke: #d62728; stroke-width: 4px; }
.node.arriving polygon, .node.arriving path { stroke: #e6550d; stroke-width: 3px; }
.node.target polygon, .node.target path { stroke: #1b9e77; stroke-width: 3px; }
.node.done ellipse, .node.done polygon { opacity: 0.55; }
"""

_SCRIPT = r"""
(function () {
  var steps = JSON.parse(document.getElementById("steps-data").textContent);
  var n = steps.length, k = 0, timer = null;
  var slider = document.getElementById("slider");
  slider.max = Math.max(n - 1, 0);

  function fmt(v) { return typeof v === "number" ? Number(v.toPrecision(4)).toString() : v; }
  function shape(s) { return "(" + s.shape.join(", ") + (s.shape.length === 1 ? "," : "") + ")"; }
  function heat(h) {
    var rows = h.cells.length, cols = h.cells[0].length, size = 12, svg =
      '<svg width="' + cols * size + '" height="' + rows * size + '">';
    h.cells.forEach(function (row, i) {
      row.forEach(function (v, j) {
        var t = (typeof v === "number" && h.scale > 0) ? v / h.scale : 0;
        var c = t >= 0 ? [255, Math.round(255 * (1 - t)), Math.round(255 * (1 - t))]
                       : [Math.round(255 * (1 + t)), Math.round(255 * (1 + t)), 255];
        svg += '<rect x="' + j * size + '" y="' + i * size + '" width="' + size +
          '" height="' + size + '" fill="rgb(' + c.join(",") + ')"><title>' + fmt(v) +
          '</title></rect>';
      });
    });
    return svg + "</svg>";
  }
  function describe(s) {
    var head = "shape " + shape(s) + ", norm " + fmt(s.norm);
    if (s.values) return head + '<div class="values">[' + s.values.map(fmt).join(", ") + "]</div>";
    return head + "<div>" + heat(s.heat) + '</div><div class="hint">heat map: block means, ' +
      "red positive, blue negative, up to ±" + fmt(s.heat.scale) + "</div>";
  }
  function esc(t) {
    return String(t).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }
  function mark(id, cls) {
    var g = id && document.getElementById(id);
    if (g) g.classList.add(cls);
  }

  function show(i) {
    if (n === 0) return;
    k = Math.min(Math.max(i, 0), n - 1);
    var s = steps[k];
    slider.value = k;
    document.getElementById("step-index").textContent = (k + 1) + " / " + n;
    document.getElementById("node-title").textContent = s.op;
    document.getElementById("output-name").textContent = s.output_name ?
      "output: " + s.output_name : "";
    document.getElementById("formula").textContent = s.formula;
    var gin = document.getElementById("grad-in");
    gin.removeAttribute("data-values");
    gin.removeAttribute("data-norm");
    if (s.grad_in.values) gin.setAttribute("data-values", JSON.stringify(s.grad_in.values));
    else gin.setAttribute("data-norm", JSON.stringify(s.grad_in.norm));
    gin.innerHTML = describe(s.grad_in);
    var html = "";
    s.grads_out.forEach(function (o) {
      html += '<div class="out"><b>to input ' + o.input + (o.name ? " (" + esc(o.name) + ")" : "") +
        "</b>: " + describe(o.grad);
      if (o.paths_total > 1) {
        html += '<div class="meet">paths meet here: edge ' + o.paths + " of " + o.paths_total +
          " into this tensor; its gradient so far (the sum of " + o.paths + "):</div>" +
          describe(o.sum);
      }
      html += "</div>";
    });
    document.getElementById("grads-out").innerHTML = html;
    document.querySelectorAll("g.node").forEach(function (g) {
      g.classList.remove("current", "arriving", "target", "done");
    });
    for (var j = 0; j < k; j++) mark(steps[j].node, "done");
    mark(s.node, "current");
    var current = document.getElementById(s.node);  // keep the lit node in view
    if (current && current.scrollIntoView) current.scrollIntoView({block: "center", inline: "center"});
    mark(s.output, "arriving");
    s.grads_out.forEach(function (o) { mark(o.target, "target"); });
  }
  function play() {
    var button = document.getElementById("play");
    if (timer) { clearInterval(timer); timer = null; button.textContent = "play"; return; }
    if (k >= n - 1) show(0);
    button.textContent = "pause";
    timer = setInterval(function () {
      if (k >= n - 1) { play(); return; }
      show(k + 1);
    }, 1200);
  }
  document.getElementById("prev").addEventListener("click", function () { show(k - 1); });
  document.getElementById("next").addEventListener("click", function () { show(k + 1); });
  document.getElementById("play").addEventListener("click", play);
  slider.addEventListener("input", function () { show(parseInt(slider.value, 10)); });
  document.addEventListener("keydown", function (e) {
    if (e.target === slider && (e.key === "ArrowLeft" || e.key === "ArrowRight")) return;
    if (e.key === "ArrowLeft") { show(k - 1); e.preventDefault(); }
    else if (e.key === "ArrowRight") { show(k + 1); e.preventDefault(); }
    else if (e.key === " ") { play(); e.preventDefault(); }
  });
  if (n === 0) document.getElementById("step-index").textContent = "0 / 0";
  show(0);
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<div id="graph">{svg}</div>
<div id="panel">
  <div id="controls">
    <button id="prev" type="button">&larr; prev</button>
    <button id="play" type="button">play</button>
    <button id="next" type="button">next &rarr;</button>
    <input id="slider" type="range" min="0" max="0" step="1" value="0">
    <span id="step-index"></span>
  </div>
  <div class="hint">Left / Right arrows step, Space plays. Red: the op running its backward;
  orange: its output, where the gradient arrives; green: the inputs it sends gradients to.</div>
  <h2 id="node-title"></h2>
  <div id="output-name" class="hint"></div>
  <h3>gradient arriving at the output (g)</h3>
  <div id="grad-in"></div>
  <h3>local derivative applied</h3>
  <div id="formula" class="formula"></div>
  <h3>gradients sent to the inputs</h3>
  <div id="grads-out"></div>
</div>
<script id="steps-data" type="application/json">{data}</script>
<script>{script}</script>
</body>
</html>
"""
