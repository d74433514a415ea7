"""The engine: grad mode, the graph's order, and the one backward traversal.

Grad mode, the module scope and anomaly mode are per thread (as in PyTorch): a thread sitting
in ``no_grad`` does not stop another thread from recording its graph.

The traversal visits each node once, after every node that consumes its output, so the
gradient it passes on is the sum over all paths. Hooks run on that sum. Unless the graph is
retained, each node frees what its forward saved as soon as its backward has run.

Speed lives here, in one switch: with ``array_backward`` on (the default), a first-order
backward hands the library's own ops (``runs_on_arrays``) plain NumPy arrays instead of Tensors.
Their backward formulas are the same expressions either way; the arrays skip a Tensor and a
graph check per intermediate. ``create_graph=True`` always uses Tensors, since the backward is
recorded then.
"""
from __future__ import annotations

import contextlib
import functools
import os
import threading
import traceback
import warnings

import numpy as np

from .checks import boolean
from .dtypes import to_array
from .hooks import run_hooks
from .tensor import Tensor, memory_owner

__all__ = ["is_grad_enabled", "set_grad_enabled", "no_grad", "enable_grad", "module_scope",
           "current_scope", "detect_anomaly", "set_detect_anomaly",
           "array_backward", "arrays_in_backward", "topological_order",
           "graph_nodes", "backpropagate", "grad", "seed_gradient", "accumulate"]


class _ThreadState(threading.local):
    def __init__(self):  # runs once in every thread that touches the state
        self.grad_enabled = True
        self.saved_modes = []   # grad modes to restore, innermost last
        self.scope = ()         # the modules whose forward is running, outermost first
        self.anomaly = False
        self.arrays = False     # inside a backward that hands library ops arrays


_state = thread_state = _ThreadState()  # (read directly by Function.apply and Module.__call__)


# ----------------------------------------------------------------------------------------------
# Grad mode
# ----------------------------------------------------------------------------------------------

def is_grad_enabled() -> bool:
    """True when new ops record the graph for backward (in this thread)."""
    return _state.grad_enabled


class no_grad(contextlib.ContextDecorator):
    """``with mg.no_grad():`` (or ``@mg.no_grad()``) -- ops inside build no graph: evaluation,
    optimizer updates."""

    mode = False

    def __enter__(self):
        _state.saved_modes.append(_state.grad_enabled)
        _state.grad_enabled = self.mode
        return self

    def __exit__(self, *exc):
        _state.grad_enabled = _state.saved_modes.pop()
        return False


class enable_grad(no_grad):
    """``with mg.enable_grad():`` -- record the graph again inside a ``no_grad`` block."""

    mode = True


class set_grad_enabled(no_grad):
    """Turn graph recording on or off: as a call (``mg.set_grad_enabled(False)``, in effect
    until changed), as a context manager (restored on exit) or as a decorator."""

    def __init__(self, mode: bool):
        self.mode = boolean("set_grad_enabled", "mode", mode)
        self.previous = _state.grad_enabled
        _state.grad_enabled = self.mode

    def __enter__(self):
        _state.saved_modes.append(self.previous)
        _state.grad_enabled = self.mode
        return self

    def __call__(self, func):
        _state.grad_enabled = self.previous  # decorating a function switches nothing
        mode = self.mode

        @functools.wraps(func)
        def with_mode(*args, **kwargs):
            with set_grad_enabled(mode):
                return func(*args, **kwargs)
        return with_mode


class module_scope:
    """``with module_scope(module):`` marks every node created inside the block as belonging
    to ``module`` (``node.scope``), so the graph drawer can cluster ops by module."""

    __slots__ = ("module", "outer")

    def __init__(self, module):
        self.module = module

    def __enter__(self):
        self.outer = _state.scope
        _state.scope = self.outer + (self.module,)
        return self

    def __exit__(self, *exc):
        _state.scope = self.outer
        return False


def current_scope() -> tuple:
    return _state.scope


# ----------------------------------------------------------------------------------------------
# Anomaly mode, the array switch
# ----------------------------------------------------------------------------------------------

class detect_anomaly(contextlib.ContextDecorator):
    """Inside the block, every op remembers where the forward created it, and a backward that
    produces NaN raises, naming the op and that place (``torch.autograd.detect_anomaly``).
    Slow: for hunting a NaN, not for training."""

    def __init__(self, check_nan: bool = True):
        self.check_nan = boolean("detect_anomaly", "check_nan", check_nan)
        self.outer = []

    def __enter__(self):
        self.outer.append(_state.anomaly)
        _state.anomaly = self.check_nan
        return self

    def __exit__(self, *exc):
        _state.anomaly = self.outer.pop()
        return False


def set_detect_anomaly(mode: bool) -> None:
    _state.anomaly = boolean("set_detect_anomaly", "mode", mode)


_array_backward = True


def array_backward(enabled: bool | None = None) -> bool:
    """Whether a first-order backward hands library ops arrays (the fast path); pass a bool to
    switch it (process-wide). Returns the setting before the call. Off, every backward gets
    Tensors: the plain path, which the tests check gives the same gradients."""
    global _array_backward
    previous = _array_backward
    if enabled is not None:
        _array_backward = bool(enabled)
    return previous


def arrays_in_backward() -> bool:
    """True while a backward in this thread hands library ops arrays."""
    return _state.arrays


# ----------------------------------------------------------------------------------------------
# The order of the graph
# ----------------------------------------------------------------------------------------------

def topological_order(root, within: set | None = None) -> list:
    """Nodes reachable from node ``root`` (through nodes of ``within`` only, if given), each
    listed before the nodes that produced its inputs. Iterative depth-first search, so a
    chain of 100,000 ops needs no recursion."""
    order, visited = [], {root}
    stack = [(root, iter(root.parents))]
    while stack:
        node, parents = stack[-1]
        for parent in parents:
            if parent is not None and parent not in visited and (
                    within is None or parent in within):
                visited.add(parent)
                stack.append((parent, iter(parent.parents)))
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


# ----------------------------------------------------------------------------------------------
# Backward: one traversal, shared by Tensor.backward, mg.grad, gradcheck and the graph drawer
# ----------------------------------------------------------------------------------------------

def backpropagate(root: Tensor, grad: Tensor, *, create_graph: bool = False,
                  retain_graph: bool = False, on_edge=None) -> dict:
    """Push ``grad`` (d loss / d root) back through the graph of ``root``.

    Returns ``{leaf tensor: gradient Tensor}`` summed over every path, after the leaves' hooks.
    ``on_edge(node, index, tensor, grad)``, if given, sees the gradient flowing along every edge
    (the graph drawer and mg.grad of intermediates use it). With ``create_graph`` the backward
    ops are themselves recorded. Unless ``retain_graph``, each node frees its saved values.
    """
    seed = grad if create_graph else grad.data
    leaf_grads: dict = {}   # id(leaf) -> [leaf, gradient so far]
    if root.grad_fn is None:
        leaf_grads[id(root)] = [root, seed]
        return _finish_leaves(leaf_grads, create_graph)
    arrays = _array_backward and not create_graph
    _state.saved_modes.append(_state.grad_enabled)
    outer_arrays, _state.grad_enabled, _state.arrays = _state.arrays, create_graph, arrays
    pending = {root.grad_fn: seed}  # node -> gradient of the node's output so far
    # ids of the sums of paths the pass made itself and still holds in ``pending``: nobody
    # else can see them, so later paths add into them in place.
    own_sums = set()
    try:
        for node in topological_order(root.grad_fn):
            out_grad = pending.pop(node, None)
            if out_grad is None:  # no path from the root reached this node with a gradient
                continue
            own_sums.discard(id(out_grad))  # (an id is unique only while the array lives)
            if node.hooks:
                out_grad = run_hooks(node.hooks, out_grad, create_graph)
            if not (arrays and node.runs_on_arrays) and type(out_grad) is not Tensor:
                out_grad = Tensor._make(out_grad, False, None)
            in_grads = node.backward(node, out_grad)
            if not retain_graph:
                node.release()
            if type(in_grads) is not tuple:
                in_grads = (in_grads,)
            if len(in_grads) != len(node.inputs):
                raise RuntimeError(f"{node.name}.backward returned {len(in_grads)} gradients, "
                                   f"expected {len(node.inputs)} (one per input, None allowed)")
            edges = zip(in_grads, node.needs_input_grad, node.inputs, node.parents)
            for index, (in_grad, needed, tensor, parent) in enumerate(edges):
                if in_grad is None or not needed:
                    continue
                in_grad = _conform(node, index, tensor, in_grad, create_graph)
                if on_edge is not None:
                    on_edge(node, index, tensor, in_grad if create_graph else
                            Tensor._make(in_grad, False, None))
                if parent is None:
                    entry = leaf_grads.get(id(tensor))
                    if entry is None:
                        leaf_grads[id(tensor)] = [tensor, in_grad]
                    else:
                        entry[1] = entry[1] + in_grad
                    continue
                so_far = pending.get(parent)
                if so_far is None:
                    pending[parent] = in_grad
                elif id(so_far) in own_sums:
                    so_far += in_grad
                else:
                    pending[parent] = total = so_far + in_grad
                    if not create_graph:
                        own_sums.add(id(total))
            in_grads = in_grad = None
    finally:
        _state.grad_enabled, _state.arrays = _state.saved_modes.pop(), outer_arrays
    return _finish_leaves(leaf_grads, create_graph)


def _conform(node, index, tensor, grad, create_graph: bool):
    """An input's gradient as the pass carries it (an array, or a Tensor under create_graph),
    checked: the input's shape, its dtype (mixed-dtype ops promote in forward), no NaN under
    detect_anomaly. A custom backward may return an array or a wrong shape: name the op."""
    expected = tensor.data
    if (type(grad) is np.ndarray and grad.shape == expected.shape and not create_graph
            and grad.dtype == expected.dtype and not _state.anomaly):
        return grad  # the common case, first order
    if not isinstance(grad, (np.ndarray, Tensor, int, float, np.generic)):
        raise TypeError(f"{node.name}.backward returned a {type(grad).__name__} for input "
                        f"{index}; expected an array or Tensor of shape {tensor.shape} (or None)")
    data = grad.data if isinstance(grad, Tensor) else np.asarray(grad)
    if data.shape != tensor.data.shape:
        raise RuntimeError(f"{node.name}.backward returned a gradient of shape {data.shape} for "
                           f"input {index}, whose shape is {tensor.shape}")
    if _state.anomaly and data.dtype.kind in "fc" and np.isnan(data).any():
        _report_nan(node, index)
    if data.dtype != tensor.data.dtype:
        if create_graph and isinstance(grad, Tensor):
            return grad.astype(tensor.data.dtype)
        data = data.astype(tensor.data.dtype)
    if not create_graph:
        return data
    return grad if isinstance(grad, Tensor) else Tensor._make(data, False, None)


def _report_nan(node, index: int):
    where = ""
    if node.created_at:
        forward = "".join(traceback.format_list(node.created_at))
        warnings.warn(f"Error detected in {node.name}. Traceback of the forward call that made "
                      f"it:\n{forward}", RuntimeWarning, stacklevel=3)
        # The innermost frame outside minigrad: the user's line that made the op.
        library = os.path.dirname(os.path.dirname(__file__))
        frames = [f for f in node.created_at if not f.filename.startswith(library)]
        frame = (frames or list(node.created_at))[-1]
        where = (f"\nThe op was created in the forward at {frame.filename}:{frame.lineno}, in "
                 f"{frame.name}: {frame.line}")
    raise RuntimeError(f"Function '{node.name}' returned nan values in its {index}th output."
                       f"{where}")


def _finish_leaves(leaf_grads: dict, create_graph: bool) -> dict:
    """``{leaf: gradient Tensor}``, each gradient after the leaf's hooks."""
    out = {}
    for leaf, g in leaf_grads.values():
        if leaf._hooks:
            g = run_hooks(leaf._hooks, g, create_graph)
        out[leaf] = g if isinstance(g, Tensor) else Tensor._make(g, False, None)
    return out


def seed_gradient(root: Tensor, gradient, op_name: str) -> Tensor:
    """d(loss)/d(root) to start from: ones for a one-element root, else ``gradient`` checked."""
    if gradient is None:
        if root.data.size != 1:
            raise RuntimeError(f"{op_name}: grad can be implicitly created only for a "
                               f"single-element output, this one has shape {root.shape}; pass "
                               f"a gradient of the same shape (or call .sum() first)")
        shape, dtype = root.data.shape, root.data.dtype  # (np.array is faster for a 0-d loss)
        ones = np.array(1, dtype) if shape == () else np.ones(shape, dtype)
        return Tensor._make(ones, False, None)
    if not isinstance(gradient, Tensor):
        gradient = Tensor._make(to_array(gradient, root.dtype, op_name), False, None)
    if gradient.shape != root.shape:
        raise RuntimeError(f"{op_name}: the gradient has shape {gradient.shape}, the tensor "
                           f"has shape {root.shape}")
    return gradient


def accumulate(leaf_grads: dict, seed: Tensor, create_graph: bool) -> None:
    """Add each gradient into its leaf's ``.grad``. Add hands one gradient array to both its
    inputs, Reshape a view of it: every leaf gets memory of its own (not shared with another
    leaf or the caller's seed), so writing into one ``.grad`` cannot change another."""
    handed_out = {id(memory_owner(seed.data))}
    for leaf, g in leaf_grads.items():
        if not leaf.requires_grad:
            continue
        if not create_graph:
            owner = id(memory_owner(g.data))
            if g.requires_grad or not g.data.flags.writeable or owner in handed_out:
                g = Tensor._make(np.array(g.data), False, None)
                owner = id(g.data)
            handed_out.add(owner)
        leaf._grad = g if leaf._grad is None else leaf._grad + g


def grad(outputs: Tensor, inputs, grad_outputs=None, retain_graph=None,
         create_graph: bool = False, allow_unused: bool | None = None) -> tuple:
    """d(outputs)/d(inputs), returned rather than accumulated into ``.grad`` (like
    ``torch.autograd.grad``). ``inputs`` may be leaves or intermediate tensors of the graph. An
    input the output does not depend on is an error (often a sign of a broken graph), unless
    ``allow_unused=True``: then it gets None. Frees the graph unless ``retain_graph``."""
    single = isinstance(inputs, Tensor)
    inputs = (inputs,) if single else tuple(inputs)
    if not isinstance(outputs, Tensor):
        raise TypeError(f"grad: outputs must be a Tensor, got {type(outputs).__name__}")
    if not inputs or not all(isinstance(t, Tensor) for t in inputs):
        raise TypeError("grad: inputs must be a Tensor or a non-empty sequence of Tensors")
    results = _gradients(outputs, inputs, grad_outputs, retain_graph, create_graph)
    if not allow_unused:
        for index, (t, result) in enumerate(zip(inputs, results)):
            if result is None:
                raise RuntimeError(f"grad: input {index} (shape {t.shape}) was not used to "
                                   f"compute the output; pass allow_unused=True to get None "
                                   f"for it")
    return results


def _gradients(outputs, inputs, grad_outputs, retain_graph, create_graph) -> tuple:
    """``grad``'s work: one backward that collects the gradients of ``inputs``."""
    if not outputs.requires_grad:
        raise RuntimeError("grad: the output does not require grad (no input of it does)")
    grad_outputs = seed_gradient(outputs, grad_outputs, "grad")
    create_graph = boolean("grad", "create_graph", create_graph)
    retain_graph = create_graph if retain_graph is None else boolean(
        "grad", "retain_graph", retain_graph)
    if outputs.grad_fn is None:
        return tuple(grad_outputs if t is outputs else None for t in inputs)
    wanted = {id(t): None for t in inputs if t.grad_fn is not None}

    def collect(node, index, tensor, edge_grad):  # an intermediate's gradient: all edges into it
        if id(tensor) in wanted:
            so_far = wanted[id(tensor)]
            wanted[id(tensor)] = edge_grad if so_far is None else so_far + edge_grad

    leaf_grads = backpropagate(outputs, grad_outputs, create_graph=create_graph,
                               retain_graph=retain_graph, on_edge=collect if wanted else None)
    return tuple(grad_outputs if t is outputs else
                 wanted[id(t)] if t.grad_fn is not None else leaf_grads.get(t) for t in inputs)
