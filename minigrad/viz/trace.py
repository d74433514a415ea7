"""What a graph picture shows, before any Graphviz: the vertices (tensors, ops, collapsed
modules) and edges of an autograd graph, and the gradient that flows along every edge.

The picture is built in forward order (inputs before the ops that use them), so vertex ids are
numbered by traversal order and the same graph always gives the same ids.
"""
from __future__ import annotations

import inspect
import re
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..autograd import Function, backpropagate, graph_nodes, topological_order
from ..core.checks import bad_argument, boolean, positive_int
from ..core.errors import ArgumentTypeError, ShapeError
from ..core.tensor import Tensor, memory_owner
from .routes import norm_routes

__all__ = ["GradientFlow", "gradient_flow", "outgoing_gradients", "grad_norm", "Picture", "Vertex",
           "Edge", "Walk", "walk_graph", "trace", "WALK_FACTOR"]

TENSOR_KINDS = ("input", "parameter", "buffer", "constant", "tensor", "output")

# Tensors with at most this many elements show their values and gradient on their node, as
# micrograd does for its scalars: a few numbers read better than a norm.
SMALL_TENSOR = 16

# With ``max_nodes`` set, the walk from the root visits at most this many times ``max_nodes``
# op nodes: enough to fill the picture (an op and its output are two vertices), so a graph of
# a million ops costs no more to draw than one of a thousand.
WALK_FACTOR = 4


# ----------------------------------------------------------------------------------------------
# Gradient flow: one backward pass that records what flows along each edge.
# ----------------------------------------------------------------------------------------------

@dataclass
class GradientFlow:
    """The gradients of one backward pass from a root.

    ``edges[(node, index)]`` is what flowed from ``node`` into its input ``index``;
    ``tensors[key]`` is a tensor's total gradient, summed over all its uses, where ``key`` is
    the node that produced the tensor, or the tensor itself for a leaf (see ``tensor_key``).
    """
    edges: dict = field(default_factory=dict)
    tensors: dict = field(default_factory=dict)


def grad_norm(grad: np.ndarray | None) -> float | None:
    """The Euclidean norm of a gradient, in float64 whatever its dtype."""
    return None if grad is None else float(np.linalg.norm(grad.astype(np.float64, copy=False)))


def tensor_key(tensor: Tensor):
    """Identifies a tensor in the graph: ops may hand out several Tensor objects for one output
    (a saved output is re-attached to its node), but they all share the producing node."""
    return tensor.grad_fn if tensor.grad_fn is not None else tensor


def gradient_flow(root: Tensor, grad_output=None, owner: str = "gradient_flow") -> GradientFlow:
    """Backpropagate ``grad_output`` (ones by default) from ``root`` and keep every edge's
    gradient as a NumPy array. Leaves' ``.grad`` is neither read nor written."""
    require_tensor(owner, "root", root)
    grad_output = seed_gradient(owner, root, grad_output)
    flow = GradientFlow()
    if not root.requires_grad:
        return flow
    flow.tensors[tensor_key(root)] = grad_output.data

    def record(node, index, tensor, grad):
        flow.edges[node, index] = grad.data
        key = tensor_key(tensor)
        previous = flow.tensors.get(key)
        flow.tensors[key] = grad.data if previous is None else previous + grad.data

    if root.grad_fn is not None:
        if any(node.freed for node in graph_nodes((root,))):
            raise RuntimeError(f"{owner}: backward() has freed this graph's saved values, so "
                               "the gradients along its edges cannot be computed again. Call "
                               "backward(retain_graph=True) before drawing, draw before "
                               "backward, or pass show_grad=False")
        backpropagate(root, grad_output, retain_graph=True, on_edge=record)
    return flow


def outgoing_gradients(root: Tensor, tensor: Tensor, grad_output=None) -> list:
    """``[(node, gradient)]``: the part of d root / d ``tensor`` that flows back along each edge
    from ``tensor`` into an op ``node`` that uses it, in graph order. The parts sum to the total
    gradient; for BatchNorm's input they are the three paths (see ``batchnorm_paths``)."""
    require_tensor("outgoing_gradients", "root", root)
    require_tensor("outgoing_gradients", "tensor", tensor)
    flow = gradient_flow(root, grad_output, owner="outgoing_gradients")
    key = tensor_key(tensor)
    return [(node, grad) for (node, index), grad in flow.edges.items()
            if tensor_key(node.inputs[index]) is key]


def require_tensor(owner: str, name: str, value) -> None:
    """A TypeError naming the argument when ``value`` is not a Tensor (an ndarray, a list)."""
    if not isinstance(value, Tensor):
        bad_argument(owner, name, "a Tensor", value, ArgumentTypeError)


def seed_gradient(owner: str, root: Tensor, grad_output) -> Tensor:
    """``grad_output`` as a Tensor of ``root``'s shape and dtype (ones when None), or a clear
    error: a ShapeError (RuntimeError and ValueError, as PyTorch) for the wrong shape."""
    if grad_output is None:
        return Tensor(np.ones_like(root.data))
    if not isinstance(grad_output, Tensor):
        array = np.asarray(grad_output) if isinstance(grad_output, (np.ndarray, list, tuple,
                                                                    int, float, np.number)) \
            else None
        if array is None or array.dtype.kind not in "biuf":
            bad_argument(owner, "grad_output", "None, a Tensor or an array of numbers",
                         grad_output, ArgumentTypeError)
        grad_output = Tensor(array.astype(root.dtype if root.dtype.kind == "f" else np.float64))
    if grad_output.shape != root.shape:
        raise ShapeError(f"{owner}: grad_output has shape {grad_output.shape}, the root has "
                         f"shape {root.shape}; expected the same shape")
    return grad_output


# ----------------------------------------------------------------------------------------------
# The walk: the nodes behind the root, nearest first, stopped at a limit.
# ----------------------------------------------------------------------------------------------

@dataclass
class Walk:
    """The op nodes a picture is built from, in forward order (each after the nodes that made
    its inputs). ``complete``: every node behind the root is there; otherwise ``frontier``
    holds the nodes found but not visited (the walk stopped at its limit)."""
    nodes: list
    complete: bool = True
    frontier: list = field(default_factory=list)


def walk_graph(root: Tensor, limit: int | None = None) -> Walk:
    """The nodes behind ``root``: all of them (``limit`` None), or at most ``limit``, visited
    breadth first against the data flow (the way the gradient travels), so those kept are the
    ones nearest the root. The walk never looks past the limit: its cost is O(limit)."""
    start = root.grad_fn
    if start is None:
        return Walk([])
    if limit is None:
        return Walk(graph_nodes((root,)))
    seen, queue, visited = {start}, deque([start]), []
    while queue and len(visited) < limit:
        node = queue.popleft()
        visited.append(node)
        for parent in node.parents:
            if parent is not None and parent not in seen:
                seen.add(parent)
                queue.append(parent)
    if not queue:  # everything fitted: the usual order, so ids match an unlimited picture
        return Walk(graph_nodes((root,)))
    # The walked nodes, each after the nodes that made its inputs (the engine's order, reversed)
    order = topological_order(start, within=set(visited))[::-1]
    return Walk(order, complete=False, frontier=list(queue))


# ----------------------------------------------------------------------------------------------
# The picture: vertices and edges, with module scopes.
# ----------------------------------------------------------------------------------------------

@dataclass
class Vertex:
    """One drawn node. ``kind`` picks its style: for tensors ``input``, ``parameter``,
    ``buffer``, ``constant``, ``tensor`` (an intermediate) or ``output``; for ops ``op``,
    ``reduction`` or ``broadcast``; ``module`` for a collapsed module; ``elided`` for the note
    that stands for what ``max_nodes`` left out."""
    id: str
    kind: str
    title: str
    lines: list
    scope: tuple = ()  # modules, outermost first: the clusters the vertex is drawn in
    grad: np.ndarray | None = None  # a tensor's total gradient


@dataclass
class Edge:
    """A drawn edge, data flowing ``tail -> head``; ``grad`` flows back the other way.
    ``kind`` is ``data`` (a tensor into an op), ``broadcast`` (into a broadcast op),
    ``reduction`` (into a reduction), ``result`` (an op to its output) or ``elided``;
    ``routes`` lists the highlighted routes it belongs to."""
    tail: str
    head: str
    kind: str = "data"
    grad: np.ndarray | None = None
    routes: list = field(default_factory=list)


@dataclass
class Picture:
    vertices: dict  # id -> Vertex, in traversal order
    edges: dict  # (tail, head) -> Edge, in traversal order
    root: str  # id of the root tensor's vertex
    module_labels: dict  # module -> cluster label, e.g. "bn1: BatchNorm1d(4)"
    routes: list = field(default_factory=list)  # names of highlighted routes, in order
    elided: dict = field(default_factory=dict)  # "ops"/"tensors" -> how many max_nodes dropped
    walked: int = 0  # op nodes the walk visited
    complete: bool = True  # False: the walk stopped at its limit, the graph goes on


def trace(root: Tensor, *, show_grad=True, show_data=False, group_modules=True, collapse=(),
          max_nodes=None, names=None, routes=None, grad_output=None,
          show_values=True) -> Picture:
    """Build the picture of ``root``'s graph (see ``draw_graph`` for the options; errors name
    ``draw_graph``, whose work this is).

    With ``max_nodes``, at most ``WALK_FACTOR * max_nodes`` op nodes are visited. When the graph
    is larger, the picture shows the part nearest the root, without gradients (they would need
    a backward pass through the whole graph), and its note says so."""
    owner = "draw_graph"
    require_tensor(owner, "root", root)
    show_grad = boolean(owner, "show_grad", show_grad)
    show_data = boolean(owner, "show_data", show_data)
    show_values = boolean(owner, "show_values", show_values)
    group_modules = boolean(owner, "group_modules", group_modules)
    max_nodes = _node_limit(owner, max_nodes)
    collapse = _collapse_items(owner, collapse)
    names = _names(owner, names)
    routes = _routes(owner, routes)
    if show_grad:
        grad_output = seed_gradient(owner, root, grad_output)
    walk = walk_graph(root, None if max_nodes is None else WALK_FACTOR * max_nodes)
    flow = (gradient_flow(root, grad_output, owner) if show_grad and walk.complete
            else GradientFlow())
    builder = _Builder(root, walk.nodes, flow, show_data, group_modules, collapse, names,
                       show_values)
    picture = builder.build()
    picture.walked, picture.complete = len(walk.nodes), walk.complete
    if routes is True:  # every norm sub-graph that is drawn op by op (not collapsed, walked)
        groups = [group for group in norm_routes(root, walk.nodes)
                  if all(node in builder.walked and builder.owner(node) is None
                         for _, node in group.values())]
        _mark_routes(picture, groups, builder.edge_of)
    elif routes:
        _mark_routes(picture, [routes], builder.edge_of)
    if max_nodes is not None and (len(picture.vertices) > max_nodes or not walk.complete):
        beyond = builder.undrawn(walk.frontier)
        _elide(picture, max_nodes, cut=builder.cut, beyond=beyond,
               gradients_left_out=show_grad and not walk.complete)
    return picture


# -- draw_graph's options, checked before any work -----------------------------------------------

def _node_limit(owner: str, max_nodes) -> int | None:
    """None, or an int of at least 2: the root and the note for what is left out."""
    if max_nodes is None:
        return None
    max_nodes = positive_int(owner, "max_nodes", max_nodes)
    if max_nodes < 2:
        bad_argument(owner, "max_nodes", "None or an int >= 2 (the root and the note for what "
                     "is left out)", max_nodes)
    return max_nodes


def _collapse_items(owner: str, collapse) -> tuple:
    """``collapse`` as a tuple of module classes, instances or class names. One class, module
    or name alone counts as one item (``tuple("ReLU")`` would be its letters). A name that no
    module class has is a ValueError listing the known ones: a typo would collapse nothing."""
    from ..nn import Module  # here: nn imports the core this module is built on

    if collapse is None:
        return ()
    if isinstance(collapse, (str, type, Module)):
        collapse = (collapse,)
    elif not isinstance(collapse, (tuple, list, set, frozenset)):
        bad_argument(owner, "collapse", "a tuple of module classes, modules or class names",
                     collapse, ArgumentTypeError)
    known = _module_class_names(Module)
    for item in collapse:
        if isinstance(item, str):
            if item not in known:
                bad_argument(owner, "collapse", f"module class names (known: "
                             f"{', '.join(sorted(known))})", item)
        elif not (isinstance(item, Module) or isinstance(item, type)
                  and issubclass(item, Module)):
            bad_argument(owner, "collapse", "module classes, modules or class names", item,
                         ArgumentTypeError)
    return tuple(collapse)


def _module_class_names(base) -> set:
    """The names of every subclass of ``base`` defined so far (a user's own modules too)."""
    names, stack = set(), [base]
    while stack:
        cls = stack.pop()
        names.add(cls.__name__)
        stack.extend(cls.__subclasses__())
    return names


def _names(owner: str, names) -> dict:
    """``{label: tensor or op node}``."""
    if names is None:
        return {}
    if not isinstance(names, dict):
        bad_argument(owner, "names", "a dict {label: tensor}", names, ArgumentTypeError)
    for label, target in names.items():
        if not isinstance(label, str):
            bad_argument(owner, "names", "a dict with string labels", label, ArgumentTypeError)
        if not isinstance(target, (Tensor, Function)):
            bad_argument(owner, f"names[{label!r}]", "a Tensor or an op node (a grad_fn)",
                         target, ArgumentTypeError)
    return names


def _routes(owner: str, routes):
    """``{name: (tensor, op node)}``: the edge each route starts from; or True: find the norm
    sub-graphs (see ``routes.find_norm_sites``)."""
    if routes is None or routes is False:
        return {}
    if routes is True:
        return True
    if not isinstance(routes, dict):
        bad_argument(owner, "routes", "a dict {name: (tensor, op node)} or True", routes,
                     ArgumentTypeError)
    for name, start in routes.items():
        if not (isinstance(start, (tuple, list)) and len(start) == 2
                and isinstance(start[0], Tensor) and isinstance(start[1], Function)):
            bad_argument(owner, f"routes[{name!r}]", "a pair (tensor, op node it feeds)", start,
                         ArgumentTypeError)
    return routes


class _Builder:
    """Walks the autograd graph in forward order and makes one vertex per tensor and per op
    (or per collapsed module), and one edge per (tail, head) pair with their gradients summed."""

    def __init__(self, root, nodes, flow, show_data, group_modules, collapse, names,
                 show_values=True):
        self.root, self.flow, self.show_data = root, flow, show_data
        self.show_values = show_values
        self.group_modules = group_modules
        self.collapse = tuple(collapse)
        # A name may be given for a tensor or for the op node whose output it is.
        self.names = {tensor_key(t) if isinstance(t, Tensor) else t: name
                      for name, t in (names or {}).items()}
        if root.name:  # the root Tensor is at hand; other intermediates are known by node only
            self.names.setdefault(tensor_key(root), root.name)
        # The user's own Tensor objects (``h.name = "h"``) are the ones ops took as inputs:
        # the node's output_tensor() may be another object for the same value.
        for node in nodes:
            for tensor in node.inputs:
                if isinstance(tensor, Tensor) and tensor.name:
                    self.names.setdefault(tensor_key(tensor), tensor.name)
        self.nodes = nodes
        self.walked = set(nodes)
        self.cut: list = []  # vertices of tensors made by nodes the walk did not reach
        self.modules = _ModuleNames(self.nodes)
        self.vertices: dict = {}
        self.edges: dict = {}
        self.vertex_of: dict = {}  # tensor key -> vertex id
        self.op_vertex_of: dict = {}  # op node or collapsed module -> vertex id
        self.counts = {"t": 0, "op": 0, "m": 0}
        self.collapsed_ops: dict = {}  # collapsed module vertex id -> how many ops it holds
        self.edge_of: dict = {}  # (tensor key, op node) -> the drawn edge carrying that input

    def build(self) -> Picture:
        for node in self.nodes:
            owner = self.owner(node)
            tails = [(index, tensor, self.tensor_vertex(tensor))
                     for index, tensor in enumerate(node.inputs)
                     if isinstance(tensor, Tensor) and not self.inside(tensor, owner)]
            head = self.op_vertex(node, owner)
            kind = "data" if owner is not None else _edge_kind(node)
            for index, tensor, tail in tails:
                self.edge_of[tensor_key(tensor), node] = self.add_edge(
                    tail, head, kind, self.flow.edges.get((node, index)))
            if owner is None:
                self.tensor_vertex(_output_of(node))
        root_id = self.tensor_vertex(self.root)
        if self.vertices[root_id].kind == "tensor":
            self.vertices[root_id].kind = "output"
        for vertex_id, count in self.collapsed_ops.items():
            self.vertices[vertex_id].lines.append(f"{count} ops")
        return Picture(self.vertices, self.edges, root_id, self.modules.labels)

    def undrawn(self, nodes) -> int:
        """How many vertices ``nodes`` (not walked) would add: one per op, one per collapsed
        module that has no vertex yet."""
        return len({owner or node for node in nodes
                    for owner in (self.owner(node),) if owner not in self.op_vertex_of})

    # -- where things go ------------------------------------------------------------------------

    def owner(self, node):
        """The outermost module in the node's scope that is drawn collapsed, or None."""
        for module in node.scope:
            if self.collapses(module):
                return module
        return None

    def inside(self, tensor, owner) -> bool:
        """Whether ``tensor`` is made inside the collapsed module ``owner``, so not drawn."""
        return owner is not None and tensor.grad_fn is not None and \
            self.owner(tensor.grad_fn) is owner

    def collapses(self, module) -> bool:
        """``collapse`` holds module classes, instances, or class names (for the CLI)."""
        return any(module is c or (isinstance(c, type) and isinstance(module, c))
                   or (isinstance(c, str) and type(module).__name__ == c)
                   for c in self.collapse)

    def drawn_scope(self, chain) -> tuple:
        """The clusters a vertex sits in: its module chain, cut before a collapsed module."""
        if not self.group_modules:
            return ()
        for depth, module in enumerate(chain):
            if self.collapses(module):
                return tuple(chain[:depth])
        return tuple(chain)

    # -- vertices and edges ---------------------------------------------------------------------

    def new_vertex(self, prefix, kind, title, lines, scope, grad=None) -> str:
        vertex_id = f"{prefix}{self.counts[prefix]}"
        self.counts[prefix] += 1
        self.vertices[vertex_id] = Vertex(vertex_id, kind, title, lines, scope, grad)
        return vertex_id

    def add_edge(self, tail, head, kind, grad) -> tuple:
        key = (tail, head)
        edge = self.edges.get(key)
        if edge is None:
            self.edges[key] = Edge(tail, head, kind, grad)
        elif grad is not None:
            edge.grad = grad if edge.grad is None else edge.grad + grad
        return key

    def op_vertex(self, node, owner) -> str:
        if owner is not None:
            if owner not in self.op_vertex_of:
                vertex_id = self.new_vertex("m", "module", self.modules.labels[owner], [],
                                            self.drawn_scope(node.scope))
                self.op_vertex_of[owner] = vertex_id
                self.collapsed_ops[vertex_id] = 0
            self.collapsed_ops[self.op_vertex_of[owner]] += 1
            return self.op_vertex_of[owner]
        kind = _edge_kind(node)
        kind = "op" if kind == "data" else kind
        title, lines = node.name, _op_lines(node)
        if _is_reciprocal(node):  # 1 / x is how 1 / sqrt(var + eps) is recorded
            title, lines = "1/x", [line for line in lines if line != "a=1"]
        vertex_id = self.new_vertex("op", kind, title, lines, self.drawn_scope(node.scope))
        self.op_vertex_of[node] = vertex_id
        return vertex_id

    def tensor_vertex(self, tensor: Tensor) -> str:
        key = tensor_key(tensor)
        if key in self.vertex_of:
            return self.vertex_of[key]
        grad = self.flow.tensors.get(key)
        lines = [f"{_format_shape(tensor.shape)} {tensor.dtype}"]
        small = self.show_values and tensor.size <= SMALL_TENSOR
        if small:
            lines.append(_values("data", tensor.data))
        elif self.show_data:
            lines.append(_summarize(tensor.data))
        if grad is not None:
            lines.append(f"grad norm {_format_number(grad_norm(grad))}")
            if small:
                lines.append(_values("grad", grad))
        producer = tensor.grad_fn
        if producer is not None and producer not in self.walked:
            # The walk stopped before the op that made it: the tensor ends the picture.
            title = self.names.get(key, tensor.name or "")
            vertex_id = self.new_vertex("t", "tensor", title, lines,
                                        self.drawn_scope(producer.scope), grad)
            self.vertex_of[key] = vertex_id
            self.cut.append(vertex_id)
            return vertex_id
        if producer is not None:
            title = self.names.get(key, tensor.name or "")
            vertex_id = self.new_vertex("t", "tensor", title, lines,
                                        self.drawn_scope(producer.scope), grad)
            self.vertex_of[key] = vertex_id
            self.add_edge(self.op_vertex_of[self.owner(producer) or producer], vertex_id,
                          "result", grad)
            return vertex_id
        kind, title, chain = self.modules.describe_leaf(tensor)
        title = self.names.get(key) or tensor.name or title
        vertex_id = self.new_vertex("t", kind, title, lines, self.drawn_scope(chain), grad)
        self.vertex_of[key] = vertex_id
        return vertex_id


def _output_of(node) -> Tensor:
    return node.output_tensor()


def _is_reciprocal(node) -> bool:
    """``Div`` of the number 1 by a tensor: drawn as ``1/x``, what it is."""
    return type(node).__name__ == "Div" and len(node.inputs) == 2 and \
        not isinstance(node.inputs[0], Tensor) and np.ndim(node.inputs[0]) == 0 and \
        node.inputs[0] == 1


def _edge_kind(node) -> str:
    return node.category if node.category in ("broadcast", "reduction") else "data"


# ----------------------------------------------------------------------------------------------
# Names of modules, parameters and buffers, from the root modules found in the nodes' scopes.
# ----------------------------------------------------------------------------------------------

class _ModuleNames:
    def __init__(self, nodes):
        roots = list(dict.fromkeys(node.scope[0] for node in nodes if node.scope))
        self.labels: dict = {}  # module -> "path: Summary(...)"
        self.leaves: dict = {}  # parameter or buffer -> (kind, dotted path, module chain)
        # id of the array owning a parameter's or buffer's memory -> the same description:
        # a layer may hand an op a reshaped view of a buffer (running_mean as (1, C)).
        self.storage: dict = {}
        for root in roots:
            by_path = dict(_named(root, "named_modules", [("", root)]))
            for path, module in by_path.items():
                label = _module_summary(module)
                self.labels.setdefault(module, f"{path}: {label}" if path else label)
            for kind, method in (("parameter", "named_parameters"), ("buffer", "named_buffers")):
                for path, tensor in _named(root, method, []):
                    if isinstance(tensor, Tensor):
                        about = (kind, path, _chain(root, by_path, path))
                        self.leaves.setdefault(tensor, about)
                        self.storage.setdefault(id(memory_owner(tensor.data)), about)
        for node in nodes:  # modules called outside their root's tree still get a label
            for module in node.scope:
                self.labels.setdefault(module, _module_summary(module))

    def describe_leaf(self, tensor: Tensor) -> tuple:
        """(kind, title, module chain) for a leaf tensor; a constant that is a view of a
        buffer's memory (running_mean reshaped to (1, C)) is named after the buffer."""
        if tensor in self.leaves:
            return self.leaves[tensor]
        if tensor.requires_grad:
            return "input", "input", ()
        if id(memory_owner(tensor.data)) in self.storage:
            return self.storage[id(memory_owner(tensor.data))]
        return "constant", "constant", ()


def _named(module, method, default):
    named = getattr(module, method, None)
    return list(named()) if callable(named) else default


def _chain(root, by_path, member_path: str) -> tuple:
    """The modules from ``root`` down to the one holding ``member_path`` ("fc1.weight")."""
    names = member_path.split(".")[:-1]
    prefixes = (".".join(names[:depth]) for depth in range(1, len(names) + 1))
    return (root,) + tuple(by_path[p] for p in prefixes if p in by_path)


def _module_summary(module) -> str:
    """``BatchNorm1d(256)``: the class and its positional settings, without the keyword ones,
    so cluster labels stay short."""
    text = repr(module)
    name = type(module).__name__
    if "\n" in text or not text.startswith(name + "("):
        return name
    inner = text[len(name) + 1:-1]
    positional = [part for part in _split_top_level(inner) if not re.match(r"\w+=", part)]
    if positional:
        return f"{name}({', '.join(positional)})"
    return text if len(text) <= 60 else name


def _split_top_level(text: str) -> list:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


# ----------------------------------------------------------------------------------------------
# Labels: op attributes and value summaries
# ----------------------------------------------------------------------------------------------

_ARG_NAMES: dict = {}


def _op_lines(node) -> list:
    """An op's attributes (``axis=(0,)``) and its non-tensor positional arguments (``b=1e-05``,
    named after ``forward``'s parameters). False and None are left out: they are defaults."""
    cls = type(node)
    if cls not in _ARG_NAMES:
        parameters = list(inspect.signature(cls.forward).parameters.values())[1:]
        _ARG_NAMES[cls] = [p.name for p in parameters
                           if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    arg_names = _ARG_NAMES[cls]
    items = []
    for index, value in enumerate(node.inputs):
        if not isinstance(value, Tensor):
            name = arg_names[index] if index < len(arg_names) else f"arg{index}"
            items.append((name, value))
    items += [(k, v) for k, v in node.attrs.items() if v is not None and v is not False]
    return [f"{name}={_format_value(value)}" for name, value in items]


def _format_value(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        return _format_number(float(value))
    if isinstance(value, slice):
        parts = ["" if v is None else str(v) for v in (value.start, value.stop, value.step)]
        return ":".join(parts[:2] if value.step is None else parts)
    if value is Ellipsis:
        return "..."
    if isinstance(value, np.ndarray):
        return f"array{_format_shape(value.shape)}" if value.size > 4 else str(value.tolist())
    if isinstance(value, np.dtype):
        return str(value)
    if isinstance(value, tuple):
        inner = ", ".join(_format_value(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    text = str(value)
    return text if len(text) <= 30 else text[:29] + "…"


def _format_shape(shape) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _format_number(x: float) -> str:
    return f"{x:.3g}"


def _values(label: str, data: np.ndarray) -> str:
    """``data [0.1, 2]`` for a small tensor: one line per row of a matrix, else 4 a line."""
    values = np.asarray(data, dtype=np.float64)
    matrix = values.ndim == 2 and values.shape[1] > 1  # a (C, 1) column reads better flat
    rows = values if matrix else None
    if not matrix:
        flat = values.ravel()
        rows = [flat[i:i + 4] for i in range(0, len(flat), 4)] or [flat]
    text = "\n".join("[" + ", ".join(_format_number(float(v)) for v in row) + "]"
                     for row in rows)
    return f"{label} {text}"


def _summarize(data: np.ndarray) -> str:
    """A tensor's values when there are few, else their mean, std and range."""
    if data.size <= 4:
        return "[" + ", ".join(_format_number(float(v)) for v in data.ravel()) + "]"
    values = data.astype(np.float64, copy=False)
    return (f"mean {_format_number(values.mean())} std {_format_number(values.std())}\n"
            f"range [{_format_number(values.min())}, {_format_number(values.max())}]")


# ----------------------------------------------------------------------------------------------
# Highlighted routes and the node limit
# ----------------------------------------------------------------------------------------------

def _mark_routes(picture: Picture, groups, edge_of) -> None:
    """Mark each route's edges: from its first edge (tensor -> op) onward, until the routes of
    its group have merged. ``groups`` is a list of ``{name: (tensor, op node)}``: one per norm
    sub-graph with ``routes=True``, so each norm's routes stop where that norm's merge. An edge
    shared by two routes carries both. ``picture.routes`` lists the names, each once."""
    successors: dict = {}
    for tail, head in picture.edges:
        successors.setdefault(tail, []).append(head)
    names: dict = {}
    for routes in groups:
        starts, reached = {}, {}
        for name, (tensor, node) in routes.items():
            key = edge_of.get((tensor_key(tensor), node))
            if key is None:
                raise ValueError(f"draw_graph: route {name!r} starts at an edge (tensor -> "
                                 f"{getattr(node, 'name', node)}) that is not in the drawn "
                                 f"graph" + ("" if picture.complete else
                                             f" (only the {picture.walked} ops nearest the root "
                                             f"were walked: raise max_nodes, or pass None)"))
            starts[name] = key
            reached[name] = _reachable(key[1], successors)
            names.setdefault(name, None)
        merged = set.intersection(*reached.values())
        for name, key in starts.items():
            picture.edges[key].routes.append(name)
            for (tail, head), edge in picture.edges.items():
                if tail in reached[name] and tail not in merged and head in reached[name] \
                        and name not in edge.routes:
                    edge.routes.append(name)
    picture.routes = list(names)


def _reachable(start, successors) -> set:
    seen, stack = {start}, [start]
    while stack:
        for nxt in successors.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _elide(picture: Picture, max_nodes: int, cut=(), beyond: int = 0,
           gradients_left_out: bool = False) -> None:
    """Keep the ``max_nodes - 1`` vertices nearest the root (breadth first, against the data
    flow, the way the gradient travels); one note vertex stands for the rest. ``cut`` are the
    vertices of tensors whose producers the walk did not reach, ``beyond`` how many nodes it
    found but did not visit: then the note can only say "at least"."""
    predecessors: dict = {}
    for tail, head in picture.edges:
        predecessors.setdefault(head, []).append(tail)
    keep, queue = {picture.root: None}, [picture.root]
    limit = max(max_nodes - 1, 1)
    for vertex_id in queue:
        for tail in predecessors.get(vertex_id, ()):
            if len(keep) < limit and tail not in keep:
                keep[tail] = None
                queue.append(tail)
    dropped = [v for v in picture.vertices.values() if v.id not in keep]
    picture.elided = {}
    for vertex in dropped:
        group = "tensors" if vertex.kind in TENSOR_KINDS else "ops"
        picture.elided[group] = picture.elided.get(group, 0) + 1
    counts = ", ".join(f"{n} {group}" for group, n in sorted(picture.elided.items()))
    if picture.complete:
        title = f"{len(dropped)} more nodes not drawn"
        lines = [f"({counts}; max_nodes={max_nodes})"]
    else:
        title = f"at least {len(dropped) + beyond} more nodes not drawn"
        lines = [f"(the walk from the root stopped after {picture.walked} ops; "
                 f"max_nodes={max_nodes})"]
        if gradients_left_out:
            lines.append("gradients not shown: they need a backward pass through the whole "
                         "graph (max_nodes=None draws all of it)")
    note = Vertex("elided", "elided", title, lines)
    picture.vertices = {k: v for k, v in picture.vertices.items() if k in keep}
    picture.vertices["elided"] = note
    edges = {}
    for (tail, head), edge in picture.edges.items():
        if head not in keep:
            continue
        if tail not in keep:  # into what is drawn from what is not: one edge from the note
            tail = "elided"
            edge = Edge("elided", head, "elided")
        edges.setdefault((tail, head), edge)
    for vertex_id in cut:  # a tensor whose producer was never reached comes from the note too
        if vertex_id in keep:
            edges.setdefault(("elided", vertex_id), Edge("elided", vertex_id, "elided"))
    picture.edges = edges
