"""The autograd engine: one ``Function`` base, grad mode, and one backward traversal.

Every op -- the library's primitives in ``ops.py`` and a user's custom op -- is a subclass of
``Function`` with the ``torch.autograd.Function`` protocol::

    class Cube(mg.Function):
        @staticmethod
        def forward(ctx, x):              # x is the input's NumPy array
            ctx.save_for_backward(x)
            return x * x * x              # return a NumPy array
        @staticmethod
        def backward(ctx, grad):          # grad is a Tensor
            (x,) = ctx.saved_tensors      # saved arrays come back as Tensors
            return grad * 3 * x * x       # one gradient (Tensor or None) per input

``forward`` works on NumPy arrays, so it is fast and cannot accidentally build a graph.
``backward`` works on Tensors, so it is itself differentiable: ``backward(create_graph=True)``
records the backward computation and gives higher-order gradients.

Speed without a second set of formulas: in a first-order backward the library's own ops run
those same formulas on plain arrays (``runs_on_arrays``), write into gradient arrays nobody else
holds (``writes_into_grad``), and sum a broadcast operand's gradient without visiting its
``BroadcastTo`` node (``broadcast_source``). ``create_graph=True`` and the graph drawer, which
reports every edge, see every node as recorded.

The ``ctx`` object *is* the graph node: an instance of the Function subclass, stored as the
output's ``grad_fn``, holding the inputs (``ctx.inputs``), the non-tensor attributes the op was
called with (``ctx.attrs``, shown by the graph drawer) and what forward saved.
"""
from __future__ import annotations

import contextlib
from sys import getrefcount

import numpy as np

__all__ = ["Function", "no_grad", "enable_grad", "is_grad_enabled", "set_grad_enabled",
           "module_scope", "topological_order", "graph_nodes", "backpropagate", "grad"]


# ----------------------------------------------------------------------------------------------
# Grad mode and module scope. Module-level globals (not thread-locals) because they are read on
# every op, and a plain global read is the cheapest thing Python has.
# ----------------------------------------------------------------------------------------------

_grad_enabled = True
# The modules whose forward is running, outermost first; every node created records it (as
# ``node.scope``) so the graph drawer can cluster ops by module.
_scope: tuple = ()


def is_grad_enabled() -> bool:
    """True when new ops record the graph for backward."""
    return _grad_enabled


class set_grad_enabled(contextlib.ContextDecorator):
    """Context manager / decorator that turns graph recording on or off inside its block."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self.previous: list[bool] = []

    def __enter__(self):
        global _grad_enabled
        self.previous.append(_grad_enabled)
        _grad_enabled = self.mode
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.previous.pop()
        return False


class no_grad(set_grad_enabled):
    """``with mg.no_grad():`` -- ops inside build no graph (evaluation, optimizer updates)."""

    def __init__(self):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """``with mg.enable_grad():`` -- record the graph again inside a ``no_grad`` block."""

    def __init__(self):
        super().__init__(True)


class module_scope:
    """``with module_scope(module):`` marks every node created inside the block as belonging
    to ``module``. (A class, not a generator: every module call enters one.)"""

    __slots__ = ("module", "outer")

    def __init__(self, module):
        self.module = module

    def __enter__(self):
        global _scope
        self.outer = _scope
        _scope = self.outer + (self.module,)
        return self

    def __exit__(self, *exc):
        global _scope
        _scope = self.outer
        return False


# ----------------------------------------------------------------------------------------------
# Function: an op's forward and backward, and the graph node that remembers one application.
# ----------------------------------------------------------------------------------------------

class Function:
    """Base class of every differentiable op. Subclass it and call ``YourOp.apply(...)``.

    Positional arguments that are Tensors are the op's differentiable inputs; anything else
    (Python numbers, axes, shapes) is passed through to ``forward`` unchanged and gets no
    gradient. Keyword arguments are the op's attributes; ``backward`` reads them from
    ``ctx.attrs`` if it needs them.
    """

    # Set for nodes that are part of a graph (when an input requires grad and grad mode is on).
    inputs: tuple = ()
    attrs: dict = {}
    scope: tuple = ()
    needs_input_grad: list = []
    _saved: tuple = ()
    _returned = _output = None

    # An op whose backward uses only what NumPy arrays and Tensors share -- operators, .sum,
    # .reshape, .transpose, .T, other ops' apply -- sets this. Its first-order backward (no
    # create_graph, so nothing to record) then gets and returns plain arrays: the same formula,
    # without a Tensor and a graph check per intermediate. With create_graph it gets Tensors.
    # The library's ops set it; a custom Function's backward always gets Tensors.
    runs_on_arrays = False
    # An op whose array backward can write its result into ``grad`` sets ``writes_into_grad``;
    # the backward pass then sets ``owns_grad`` before calling it: True when ``grad`` is an
    # array nobody but the pass holds, so the backward may do so (see _ONE_LOCAL).
    writes_into_grad = False
    owns_grad = False
    # Only BroadcastTo sets it; ``binary`` marks the nodes of ops it gave a broadcast input,
    # so only they look for a shortcut (see broadcast_source).
    is_broadcast = False
    broadcast_inputs = False

    @staticmethod
    def forward(ctx, *args, **attrs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **attrs):
        # The hot path of the whole library: every op of every forward and backward runs it.
        if not _grad_enabled:  # e.g. inside a backward pass: nothing to record
            out = cls.forward(_UNRECORDED, *[a.data if isinstance(a, Tensor) else a for a in args],
                              **attrs)
            if type(out) is not np.ndarray:
                out = out.data if isinstance(out, Tensor) else np.asarray(out)
            return Tensor._make(out, False, None)
        arrays = []
        needs = []
        for arg in args:
            if isinstance(arg, Tensor):
                arrays.append(arg.data)
                needs.append(arg.requires_grad)
            else:
                arrays.append(arg)
                needs.append(False)
        track = True in needs
        if track:
            ctx = cls()
            ctx.inputs = args
            ctx.attrs = attrs
            ctx.scope = _scope
            ctx.needs_input_grad = needs
            ctx._arrays = arrays
        returned = cls.forward(ctx if track else _UNRECORDED, *arrays, **attrs)
        out = returned
        if type(out) is not np.ndarray:  # e.g. a NumPy scalar from a 0-d computation
            out = out.data if isinstance(out, Tensor) else np.asarray(out)
        if not track:
            return Tensor._make(out, False, None)
        # forward may have saved what it returned, before the conversion above; keep both to
        # recognise it in saved_tensors.
        ctx._returned, ctx._output = returned, out
        return Tensor._make(out, True, ctx)

    # -- what forward hands to backward ----------------------------------------------------------

    @property
    def recording(self) -> bool:
        """Whether this forward is recorded, so a backward may run: work only the backward
        needs (a mask, a sign) can be skipped when not (under no_grad, in evaluation)."""
        return bool(self.inputs)

    def save_for_backward(self, *items):
        """Keep values for backward. Pass the forward's input arrays, its output array or any
        other array; ``saved_tensors`` gives them back as Tensors connected to the graph, so a
        backward written with them is itself differentiable."""
        if not self.recording:  # nothing will call backward
            return
        saved = []
        for item in items:
            for index, array in enumerate(self._arrays):
                if item is array:
                    saved.append((index, None))
                    break
            else:
                saved.append((None, item))
        self._saved = saved

    @property
    def saved_tensors(self) -> tuple:
        if self.runs_on_arrays and not _grad_enabled:  # a first-order backward: see above
            return tuple(self._arrays[index] if index is not None else
                         self._output if item is self._returned else item
                         for index, item in self._saved)
        out = []
        for index, item in self._saved:
            if index is not None:
                value = self.inputs[index]
            elif item is self._returned:
                # The op's own output, re-attached to this node: d(output)/d(input) then flows
                # through this node again in a higher-order backward (PyTorch does the same).
                value = Tensor._make(self._output, True, self)
            elif type(item) is np.ndarray:
                value = Tensor._make(item, False, None)
            else:
                value = item
            out.append(value)
        return tuple(out)

    def broadcast_source(self, index: int):
        """The shape input ``index`` had before a BroadcastTo made it, when this backward may
        sum its gradient straight down to that shape and return it as ``PastBroadcast(...)``
        -- for a product, one einsum instead of a full-size product and then a sum. None
        otherwise: in a backward that records a graph (create_graph), and in a pass that
        reports every edge's gradient (the graph drawer, ``grad`` of intermediates)."""
        if not _may_skip_broadcasts:
            return None
        producer = self.inputs[index].grad_fn
        if producer is None or not producer.is_broadcast:
            return None
        return producer._arrays[0].shape

    # -- description (graph drawing, error reports) ------------------------------------------------

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self):
        attrs = ", ".join(f"{k}={v!r}" for k, v in self.attrs.items())
        return f"<{self.name}({attrs})>"


# The ctx handed to forward when nothing is recorded: its save_for_backward keeps nothing.
_UNRECORDED = Function()


class PastBroadcast:
    """A gradient a backward has already summed down through the BroadcastTo node that made
    its input (see ``Function.broadcast_source``): the pass hands it on to that node's input."""

    __slots__ = ("grad",)

    def __init__(self, grad):
        self.grad = grad


# Whether the running backward pass lets ops skip BroadcastTo nodes (see broadcast_source).
_may_skip_broadcasts = False


def _held_by_one_local() -> int:
    array = np.empty(0)
    return getrefcount(array)


# What sys.getrefcount reports for an array that one local variable alone holds (the call adds
# its own reference; how many differs between Python versions). The backward pass writes into
# a gradient array only when it owns its memory (``base is None``) and the count says nothing
# but its own variables reach it, so no one else can see the change. NumPy asks the same
# question before it reuses a temporary in ``a + b + c``.
_ONE_LOCAL = _held_by_one_local()


# ----------------------------------------------------------------------------------------------
# Backward: one iterative traversal, shared by Tensor.backward, gradcheck and the graph drawer.
# ----------------------------------------------------------------------------------------------

def topological_order(root: Function) -> list:
    """Nodes reachable from ``root``, each listed before the nodes that produced its inputs.

    Iterative depth-first search, so a chain of 100,000 ops needs no recursion."""
    order, visited = [], {root}
    stack = [(root, iter(root.inputs))]
    while stack:
        node, inputs = stack[-1]
        for tensor in inputs:
            parent = tensor.grad_fn if isinstance(tensor, Tensor) else None
            if parent is not None and parent not in visited:
                visited.add(parent)
                stack.append((parent, iter(parent.inputs)))
                break
        else:
            stack.pop()
            order.append(node)
    order.reverse()
    return order


def graph_nodes(outputs) -> list:
    """Every node behind ``outputs``, each after the nodes that produced its inputs (so the
    node nearest the inputs comes first)."""
    seen, nodes = set(), []
    for out in outputs:
        if out.grad_fn is None:
            continue
        for node in reversed(topological_order(out.grad_fn)):
            if id(node) not in seen:
                seen.add(id(node))
                nodes.append(node)
    return nodes


def backpropagate(root: Tensor, grad: Tensor, *, create_graph: bool = False, on_edge=None):
    """Push ``grad`` (d loss / d root) back through the graph of ``root``.

    Returns ``{leaf tensor: gradient}`` summed over every path. ``on_edge(node, index, tensor,
    grad)``, if given, sees the gradient flowing along every edge (the graph drawer uses it).
    With ``create_graph`` the backward ops are themselves recorded.
    """
    global _grad_enabled, _may_skip_broadcasts
    leaves: dict = {}      # id(leaf) -> leaf
    leaf_grads: dict = {}  # id(leaf) -> its gradient so far
    pending = {root.grad_fn: grad}  # node -> gradient of the node's output so far
    arrays = not create_graph  # library ops' backward runs on arrays (Function.runs_on_arrays)
    previous = _grad_enabled, _may_skip_broadcasts
    _grad_enabled, _may_skip_broadcasts = create_graph, arrays and on_edge is None
    try:
        for node in topological_order(root.grad_fn):
            out_grad = pending.pop(node, None)
            if out_grad is None:  # no path from the root reached this node with a gradient
                continue
            if node.runs_on_arrays and arrays:
                out_grad = out_grad.data if type(out_grad) is Tensor else out_grad
                if node.writes_into_grad:
                    # Held only by this local (popped from ``pending``, no other path's sum):
                    # the backward may write into it instead of making a new full-size array.
                    node.owns_grad = (type(out_grad) is np.ndarray and out_grad.base is None
                                      and getrefcount(out_grad) == _ONE_LOCAL)
            else:
                node.owns_grad = False
                if type(out_grad) is not Tensor:
                    out_grad = Tensor._make(out_grad, False, None)
            in_grads = node.backward(node, out_grad)
            if type(in_grads) is not tuple:
                in_grads = (in_grads,)
            inputs, needs = node.inputs, node.needs_input_grad
            if len(in_grads) != len(inputs):
                raise RuntimeError(f"{node.name}.backward returned {len(in_grads)} gradients, "
                                   f"expected {len(inputs)} (one per input, None allowed)")
            for index, in_grad in enumerate(in_grads):
                if in_grad is None or not needs[index]:
                    continue
                tensor = inputs[index]
                if type(in_grad) is PastBroadcast:  # summed already: skip the BroadcastTo node
                    tensor, in_grad = tensor.grad_fn.inputs[0], in_grad.grad
                data = in_grad.data if type(in_grad) is Tensor else in_grad
                if (type(data) is not np.ndarray or data.shape != tensor.data.shape
                        or data.dtype != tensor.data.dtype):
                    in_grad = _conform_gradient(node, index, tensor, in_grad)
                if on_edge is not None:
                    on_edge(node, index, tensor, _as_tensor(in_grad))
                parent = tensor.grad_fn
                if parent is None:
                    key, target = id(tensor), leaf_grads
                    leaves[key] = tensor
                else:
                    key, target = parent, pending
                so_far = target.get(key)
                if so_far is None:
                    target[key] = in_grad
                elif (type(in_grad) is np.ndarray and type(so_far) is np.ndarray
                      and so_far.base is None and getrefcount(so_far) == _ONE_LOCAL + 1):
                    so_far += in_grad  # held by so_far and the dict only: add in place
                else:
                    target[key] = so_far + in_grad
            # Drop this node's references, so that a later backward can own these gradients.
            in_grads = in_grad = data = so_far = None
    finally:
        _grad_enabled, _may_skip_broadcasts = previous
    return {leaves[key]: Tensor._make(g, False, None) if type(g) is np.ndarray else g
            for key, g in leaf_grads.items()}


def _as_tensor(grad) -> Tensor:
    """A gradient as a Tensor (an array-running backward hands out plain arrays)."""
    return grad if isinstance(grad, Tensor) else Tensor._make(grad, False, None)


def grad(output: Tensor, inputs, grad_output=None, *, create_graph: bool = False) -> tuple:
    """d(output)/d(inputs), returned rather than accumulated into ``.grad`` (like
    ``torch.autograd.grad``). ``inputs`` may be leaves or intermediate tensors of the graph; one
    the output does not depend on gets None."""
    inputs = tuple(inputs)
    if grad_output is None:
        if output.data.size != 1:
            raise RuntimeError(f"grad: grad_output is needed for an output of shape {output.shape}")
        grad_output = Tensor._make(np.ones_like(output.data), False, None)
    if not output.requires_grad:
        raise RuntimeError("grad: the output does not require grad (no input of it does)")
    if output.grad_fn is None:
        return tuple(grad_output if t is output else None for t in inputs)
    wanted = {id(t): None for t in inputs if t.grad_fn is not None}

    def collect(node, index, tensor, edge_grad):  # an intermediate's gradient: all edges into it
        if id(tensor) in wanted:
            so_far = wanted[id(tensor)]
            wanted[id(tensor)] = edge_grad if so_far is None else so_far + edge_grad

    leaf_grads = backpropagate(output, grad_output, create_graph=create_graph,
                               on_edge=collect if wanted else None)
    return tuple(grad_output if t is output else
                 wanted[id(t)] if t.grad_fn is not None else leaf_grads.get(t) for t in inputs)


def _conform_gradient(node, index, tensor, grad):
    """A custom backward may return an array, or a gradient of the wrong shape: name the op that
    did it. A gradient always takes its input's dtype (mixed-dtype ops promote in forward)."""
    if not isinstance(grad, Tensor):
        grad = Tensor._make(np.asarray(grad, dtype=tensor.dtype), False, None)
    if grad.shape != tensor.shape:
        raise RuntimeError(f"{node.name}.backward returned a gradient of shape {grad.shape} for "
                           f"input {index}, whose shape is {tensor.shape}")
    if grad.dtype != tensor.dtype:
        grad = grad.astype(tensor.dtype)
    return grad


from .tensor import Tensor  # noqa: E402  (tensor.py imports this module's grad mode first)
