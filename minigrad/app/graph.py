"""``minigrad graph``: draw a computation graph with its gradients (Graphviz).

``minigrad graph batchnorm`` also prints how dL/dx splits into BatchNorm's three paths, each
checked against its closed form, and the invariants dL/dx satisfies per channel.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

import minigrad as mg
from ..autograd import graph_nodes, topological_order
from ..viz import draw_graph, save_graph
from ..viz.draw import graph_format
from ..viz.batchnorm_paths import (PATH_TITLES, PATHS, autograd_paths, batchnorm_invariants,
                                   batchnorm_paths, site_paths)
from ..viz.routes import find_norm_sites
from . import arguments

EXAMPLES = ("batchnorm", "layernorm", "mlp")
# Parts of dL/dx that disagree with the closed form by more than this (relative to the largest
# part) mean the graph or the formulas are wrong, not rounding.
_TOLERANCE = 1e-10


def add_arguments(parser) -> None:
    parser.add_argument("what", metavar="GRAPH", type=_graph_source,
                        help="batchnorm, layernorm, mlp, or path/to/script.py:function (called "
                             "with no arguments, it returns the tensor to draw)")
    parser.add_argument("-o", "--output", type=_output_path, default=None,
                        help="file to write: .svg, .png or .pdf; the .dot source is always "
                             "written next to it (default: out/GRAPH.svg)")
    parser.add_argument("--collapse", nargs="+", default=(), metavar="CLASS",
                        help="draw every module of these classes as one node, e.g. BatchNorm1d "
                             "(each must be the class of a module in the graph)")
    parser.add_argument("--expand", action="store_true",
                        help="mlp: draw its BatchNorm layers op by op, with their three "
                             "gradient routes coloured (by default each is one node)")
    parser.add_argument("--show-data", action="store_true",
                        help="show tensor values (or mean, std and range)")
    parser.add_argument("--no-grad", action="store_true", help="do not show gradients")
    parser.add_argument("--rankdir", choices=("TB", "LR", "BT", "RL"), default="TB",
                        help="layout direction (default: TB, top to bottom)")
    parser.add_argument("--max-nodes", type=arguments.at_least(2), default=300,
                        help="draw at most this many nodes (default: 300)")
    parser.add_argument("--seed", type=arguments.non_negative_int, default=0,
                        help="seed of the example's data")
    parser.add_argument("--steps", action="store_true",
                        help="write a page that steps through backward node by node (-o "
                             "FILE.html, default out/GRAPH_steps.html) instead of the picture")


def _graph_source(text: str) -> str:
    """GRAPH: an example's name, or path/to/script.py:function naming a script that exists
    (whether it defines the function is known only once it has run)."""
    if text in EXAMPLES:
        return text
    path, _, function_name = text.rpartition(":")
    expected = f"{', '.join(EXAMPLES[:-1])}, {EXAMPLES[-1]} or path/to/script.py:function"
    if not path or not function_name.isidentifier():
        arguments.reject(expected, text)
    if not path.endswith(".py"):
        arguments.reject(f"{expected}, with a script whose name ends in .py", text)
    if not Path(path).is_file():
        arguments.reject(f"{expected}, with a script that exists (no file {path!r})", text)
    return text


def _output_path(text: str) -> Path:
    """-o: a .svg, .png, .pdf or .dot file that can be written (and its .dot next to it)."""
    if text.lower().endswith(".html"):  # the --steps page (run checks --steps was given)
        return arguments.writable_file(text)
    try:
        graph_format(text)
    except ValueError:
        arguments.reject("a file name ending in .svg, .png, .pdf or .dot", text)
    arguments.writable_file(str(Path(text).with_suffix(".dot")))
    return arguments.writable_file(text)


def run(args) -> int:
    name = args.what if args.what in EXAMPLES else args.what.rpartition(":")[2]
    is_page = args.output is not None and args.output.suffix.lower() == ".html"
    if getattr(args, "steps", False) or is_page:  # the step-through page, not the picture
        from ..viz.steps import save_steps
        if not getattr(args, "steps", False) or (args.output is not None and not is_page):
            raise arguments.usage_error("-o/--output", "a .html file with --steps (and .svg, "
                                        ".png, .pdf or .dot without)", str(args.output))
        output = args.output or arguments.check_writable_file(
            Path("out") / f"{name}_steps.html", "-o/--output")
        if args.what == "batchnorm":
            root = batchnorm_example(args.seed).loss
        elif args.what in ("layernorm", "mlp"):
            root = (layernorm_example if args.what == "layernorm" else mlp_example)(args.seed)
        else:
            root = load_entry(args.what)
        arguments.make_parent_dir(output, "-o/--output")
        print(f"wrote {save_steps(root, output)}")
        return 0
    output = args.output
    if output is None:  # the default is checked like a given -o
        output = arguments.check_writable_file(Path("out") / f"{name}.svg", "-o/--output")
        arguments.check_writable_file(output.with_suffix(".dot"), "-o/--output")
    options = dict(show_grad=not args.no_grad, show_data=args.show_data, rankdir=args.rankdir,
                   collapse=tuple(args.collapse), max_nodes=args.max_nodes)
    ok = True
    if args.what == "batchnorm":
        # The same example batchnorm_figure draws: its modules are what --collapse may name.
        check_collapse(batchnorm_example(args.seed).loss, args.collapse)
        arguments.make_parent_dir(output, "-o/--output")
        graph, ok = batchnorm_figure(args.seed, **options)
    elif args.what == "layernorm":
        check_collapse(layernorm_example(args.seed), args.collapse)
        arguments.make_parent_dir(output, "-o/--output")
        graph, ok = layernorm_figure(args.seed, **options)
    else:
        root = mlp_example(args.seed) if args.what == "mlp" else load_entry(args.what)
        check_collapse(root, args.collapse)
        if args.what == "mlp" and not args.expand and not args.collapse:
            # 3 BatchNorms op by op are most of the picture: one node each unless --expand
            options["collapse"] = ("BatchNorm1d",)
        arguments.make_parent_dir(output, "-o/--output")
        graph = draw_graph(root, routes=True, **options)
    written = save_graph(graph, output)
    dot_path = output.with_suffix(".dot")
    print(f"wrote {written}" + (f" and {dot_path}" if written != dot_path else ""))
    return 0 if ok else 1


# ----------------------------------------------------------------------------------------------
# The examples
# ----------------------------------------------------------------------------------------------

def _upstream_loss(y, rng):
    """loss = sum(y * r) with a random r, so dL/dy = r: an arbitrary upstream gradient."""
    r = mg.tensor(rng.standard_normal(y.shape))
    r.name = "r (random)"
    loss = (y * r).sum()
    loss.name = "loss = sum(y * r)"
    return loss, r


class BatchNormExample(NamedTuple):
    loss: mg.Tensor
    x: mg.Tensor
    y: mg.Tensor
    grad_y: np.ndarray  # dL/dy
    layer: object


def batchnorm_example(seed: int = 0, batch: int = 8, channels: int = 4) -> BatchNormExample:
    """One composed BatchNorm1d layer in training mode, on a small float64 batch, with random
    weight and bias."""
    from .. import nn
    rng = np.random.default_rng(seed)
    layer = nn.BatchNorm1d(channels)
    layer.weight.data[...] = rng.uniform(0.5, 1.5, channels)
    layer.bias.data[...] = rng.standard_normal(channels) * 0.1
    x = mg.tensor(rng.standard_normal((batch, channels)) * 2 + 1, requires_grad=True)
    x.name = "x"
    y = layer(x)
    loss, r = _upstream_loss(y, rng)
    return BatchNormExample(loss, x, y, r.data, layer)


def layernorm_example(seed: int = 0):
    """One composed LayerNorm over 6 features, on a batch of 4."""
    return layernorm_setup(seed).loss


def layernorm_setup(seed: int = 0) -> BatchNormExample:
    """The LayerNorm example with what its check needs: x, y, dL/dy and the layer (random
    weight and bias, so the closed form's g = weight * dL/dy is not just dL/dy)."""
    from .. import nn
    rng = np.random.default_rng(seed)
    layer = nn.LayerNorm(6)
    layer.weight.data[...] = rng.uniform(0.5, 1.5, 6)
    layer.bias.data[...] = rng.standard_normal(6) * 0.1
    x = mg.tensor(rng.standard_normal((4, 6)), requires_grad=True)
    x.name = "x"
    y = layer(x)
    loss, r = _upstream_loss(y, rng)
    return BatchNormExample(loss, x, y, r.data, layer)


def mlp_example(seed: int = 0):
    """A small MLP with BatchNorm after each hidden Linear, and a cross-entropy loss."""
    from .. import nn
    import minigrad.functional as F

    class MLP(nn.Module):
        def __init__(self, rng):
            super().__init__()
            self.fc1, self.bn1 = nn.Linear(8, 16, rng=rng), nn.BatchNorm1d(16)
            self.fc2, self.bn2 = nn.Linear(16, 16, rng=rng), nn.BatchNorm1d(16)
            self.fc3, self.bn3 = nn.Linear(16, 16, rng=rng), nn.BatchNorm1d(16)
            self.head = nn.Linear(16, 3, rng=rng)

        def forward(self, x):
            for fc, bn in ((self.fc1, self.bn1), (self.fc2, self.bn2), (self.fc3, self.bn3)):
                x = F.relu(bn(fc(x)))
            return self.head(x)

    rng = np.random.default_rng(seed)
    x = mg.tensor(rng.standard_normal((16, 8)))
    x.name = "x"
    labels = rng.integers(0, 3, 16)
    loss = F.cross_entropy(MLP(rng)(x), labels)
    loss.name = "loss"
    return loss


def load_entry(entry: str):
    """Call ``function`` from ``path/to/script.py:function`` and return the tensor it makes.
    A script without that function, or a function that returns no Tensor, is a UsageError
    (a bad GRAPH argument); an error inside the user's script is theirs, shown as it is."""
    path, _, function_name = _graph_source(entry).rpartition(":")
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise arguments.usage_error(
            "GRAPH", f"a function of the script, but {path} has no function "
            f"{function_name!r}", entry)
    result = function()
    if not isinstance(result, mg.Tensor):
        raise arguments.usage_error(
            "GRAPH", f"a function that returns the Tensor to draw, but it returned a "
            f"{type(result).__name__}", entry)
    return result


def check_collapse(root, names) -> None:
    """A UsageError unless every class name in ``names`` (--collapse) is the class of a module
    that made part of ``root``'s graph; it lists those classes."""
    present = sorted({type(module).__name__ for node in graph_nodes((root,))
                      for module in node.scope})
    for name in names:
        if name not in present:
            valid = ", ".join(present) if present else "none: this graph was made by no module"
            raise arguments.usage_error("--collapse", f"a module class of this graph ({valid})",
                                        name)


# ----------------------------------------------------------------------------------------------
# BatchNorm's three paths: the figure and the printed check
# ----------------------------------------------------------------------------------------------

def batchnorm_figure(seed: int = 0, **options):
    """Draw the composed BatchNorm with its three paths highlighted and print the check.
    Returns (graph, whether every check passed)."""
    loss, x, y, grad_y, layer = batchnorm_example(seed)
    parts, nodes = autograd_paths(loss, x)
    routes = {PATH_TITLES[path]: (x, nodes[path]) for path in PATHS}
    centered = nodes["direct"]
    names = {"batch mean": nodes["through_mean"], "batch var": nodes["through_variance"],
             "x - mean": centered, "x_hat": _consumer(loss, centered),
             "y": y}
    graph = draw_graph(loss, routes=routes, names=names, title="BatchNorm composed from mean, "
                       "var, sqrt: the three paths from the loss to x", **options)
    loss.backward()
    ok = print_batchnorm_check(parts, x, grad_y, layer)
    return graph, ok


def _consumer(root, node):
    """The first op (in backward order) of ``root``'s graph that uses ``node``'s output."""
    return next(user for user in topological_order(root.grad_fn)
                if any(getattr(t, "grad_fn", None) is node for t in user.inputs))


def layernorm_figure(seed: int = 0, **options):
    """Draw the composed LayerNorm with its three routes coloured and print how dL/dx splits
    into them, checked against LayerNorm's closed form. Returns (graph, whether it agrees)."""
    loss, x, y, grad_y, layer = layernorm_setup(seed)
    site, = find_norm_sites(loss)
    parts = site_paths(loss, site)
    graph = draw_graph(loss, routes=True, names={"y": y}, title="LayerNorm composed from mean, "
                       "var, sqrt: the three routes from the loss to x", **options)
    loss.backward()
    ok = print_layernorm_check(parts, x, grad_y, layer)
    return graph, ok


def _print_parts(rows, scale: float, word: str, out) -> bool:
    """The table of (title, autograd's part, closed form) rows; whether every part agrees."""
    print(f"dL/dx along each {word}: autograd (the gradient on x's edge into Sub, Mean or Var) "
          "vs the closed form", file=out)
    print(f"  {word:<38}{'|part|':>10}{'max |difference|':>20}", file=out)
    ok = True
    for title, autograd_part, expected in rows:
        difference = float(np.abs(autograd_part - expected).max())
        ok &= difference <= _TOLERANCE * scale
        print(f"  {title:<38}{np.linalg.norm(autograd_part):>10.3g}{difference:>20.2e}", file=out)
    return ok


def _rows_against_closed_forms(parts, closed, total, over: str):
    """The rows ``_print_parts`` prints -- each path's part next to its closed form (titles
    with the means taken over ``over``: "batch" or "sample's"), then their sum next to
    autograd's total -- and the scale the differences are judged against."""
    scale = max(float(np.abs(getattr(closed, p)).max()) for p in PATHS)
    rows = [(PATH_TITLES[p].replace("batch", over), getattr(parts, p), getattr(closed, p))
            for p in PATHS]
    rows.append(("sum of the three vs autograd's dL/dx", parts.total, total))
    return rows, scale


def print_layernorm_check(parts, x, grad_y, layer, out=None) -> bool:
    """LayerNorm's three parts of dL/dx (autograd's, off x's edges into Sub, Mean and Var)
    next to the closed form: BatchNorm's formulas with the means over each sample's features
    and g = weight * dL/dy elementwise. Per sample, dL/dx sums to 0. Returns whether all
    agree."""
    out = out or sys.stdout
    axis = tuple(range(x.ndim - len(layer.normalized_shape), x.ndim))
    g = grad_y * (layer.weight.data if layer.weight is not None else 1.0)
    closed = batchnorm_paths(x.data, g, None, layer.eps, axis=axis)
    total = x.grad.data
    rows, scale = _rows_against_closed_forms(parts, closed, total, "sample's")
    print(f"{layer!r}, {x.shape[0]} samples, float64; loss = sum(y * r) with r random, so "
          f"dL/dy = r", file=out)
    ok = _print_parts(rows, scale, "route", out)
    print("  closed forms (per sample: s = sqrt(var + eps), g = weight * dL/dy, means over its "
          "features):\n    direct g/s;  mean -mean(g)/s;  variance -x_hat * mean(g * x_hat)/s",
          file=out)
    sums = total.sum(axis=axis)
    print(f"Per sample, dL/dx sums to 0: largest |sum| {np.abs(sums).max():.2e}", file=out)
    ok &= bool(np.all(np.abs(sums) <= _TOLERANCE * scale * total[0].size))
    print("all checks pass" if ok else "CHECK FAILED", file=out)
    return ok


def print_batchnorm_check(parts, x, grad_y, layer, out=None) -> bool:
    """Print the three parts of dL/dx next to their closed forms, their sum next to autograd's
    total (``x.grad``), and the per-channel invariants. Returns whether all agree."""
    out = out or sys.stdout
    closed = batchnorm_paths(x.data, grad_y, layer.weight.data, layer.eps)
    total = x.grad.data
    rows, scale = _rows_against_closed_forms(parts, closed, total, "batch")
    batch, channels = x.shape
    print(f"{layer!r} in training mode, batch of {batch}, float64; loss = sum(y * r) with r "
          f"random, so dL/dy = r", file=out)
    ok = _print_parts(rows, scale, "path", out)
    print("  closed forms (s = sqrt(var + eps), g = dL/dx_hat = weight * dL/dy, means over the "
          "batch):\n    direct g/s;  mean -mean(g)/s;  variance -x_hat * mean(g * x_hat)/s",
          file=out)
    invariants = batchnorm_invariants(total, x.data, grad_y, layer.weight.data, layer.eps)
    print("Per channel, dL/dx sums to 0, and its projection on x_hat is "
          "eps/(var+eps) * sum(g * x_hat)/s (0 if eps were 0):", file=out)
    print(f"  {'channel':<9}{'sum_n dx':>12}{'sum_n dx*x_hat':>18}{'expected':>14}", file=out)
    for channel in range(channels):
        values = [invariants[k][channel] for k in ("sum", "dot_x_hat", "expected_dot_x_hat")]
        print(f"  {channel:<9}{values[0]:>12.2e}{values[1]:>18.3e}{values[2]:>14.3e}", file=out)
    ok &= bool(np.all(np.abs(invariants["sum"]) <= _TOLERANCE * scale * batch))
    ok &= bool(np.allclose(invariants["dot_x_hat"], invariants["expected_dot_x_hat"],
                           rtol=1e-6, atol=_TOLERANCE * scale * batch))
    print("all checks pass" if ok else "CHECK FAILED", file=out)
    return ok
