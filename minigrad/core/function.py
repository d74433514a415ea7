"""Function: the one base of every differentiable op, and the graph node it leaves behind.

Every op -- the library's primitives in ``ops/`` and a user's custom op -- subclasses
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

``forward`` works on NumPy arrays, so it cannot accidentally build a graph. ``backward`` works
on Tensors, so it is itself differentiable: ``backward(create_graph=True)`` records it and
gives higher-order gradients.

The ``ctx`` object *is* the graph node: an instance of the Function subclass, stored as the
output's ``grad_fn``, holding the inputs (``ctx.inputs``), the non-tensor attributes the op was
called with (``ctx.attrs``, shown by the graph drawer) and what forward saved. Saved values
remember the version of the tensor they came from, so a backward after an in-place change of
that tensor raises instead of computing with the new values; backward frees them unless asked
to retain the graph.
"""
from __future__ import annotations

import traceback

import numpy as np

from . import engine
from .tensor import Tensor, memory_owner

__all__ = ["Function"]

# What ``_saved`` holds once backward has freed it.
_FREED = object()


class Function:
    """Base class of every differentiable op. Subclass it and call ``YourOp.apply(...)``.

    Positional arguments that are Tensors are the op's differentiable inputs; anything else
    (Python numbers, axes, shapes) is passed through to ``forward`` unchanged and gets no
    gradient. Keyword arguments are the op's attributes; ``backward`` reads them from
    ``ctx.attrs`` if it needs them.
    """

    # What the graph drawer and gradcheck need to know about an op, declared on its class:
    # ``category`` groups ops in drawings ("elementwise", "reduction", "movement", "broadcast",
    # "linalg", "layer"); an op with a kink (a point where it is not differentiable) names it
    # and says how far an input is from it, so gradcheck can warn that finite differences
    # straddle it there.
    category = "op"
    kink = None  # e.g. ("inputs", "relu's kink at 0")

    @staticmethod
    def distance_to_kink(x, **attrs):
        """For the op's first input ``x``: each element's distance from the kink."""
        return None

    # A library op whose backward uses only what NumPy arrays and Tensors share (operators,
    # .sum, .reshape, .transpose, .T, other ops' apply) sets this; the engine may then run its
    # first-order backward on plain arrays (see engine.array_backward).
    runs_on_arrays = False

    # Set on nodes that are part of a graph.
    inputs: tuple = ()
    attrs: dict = {}
    scope: tuple = ()
    needs_input_grad: tuple = ()
    parents: tuple = ()
    hooks = None           # {id: fn} on this node's output gradient (Tensor.register_hook)
    created_at = None      # the forward's stack, kept under detect_anomaly
    _saved = ()
    _saved_values = False  # whether forward saved anything but its inputs
    _output = None
    _output_box = None     # the output tensor's version counter

    @staticmethod
    def forward(ctx, *args, **attrs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **attrs):
        # The hot path of the whole library: every op of every forward runs it.
        ctx = cls()
        arrays, needs, parents = [], [], []
        for arg in args:
            if isinstance(arg, Tensor):
                arrays.append(arg.data)
                needs.append(arg.requires_grad)
                parents.append(arg.grad_fn)
            else:
                arrays.append(arg)
                needs.append(False)
                parents.append(None)
        state = engine.thread_state
        record = state.grad_enabled and True in needs
        if record:
            ctx.inputs = args
            ctx.attrs = attrs
            ctx.scope = state.scope
            ctx.needs_input_grad = needs
            # The node that made each input, as it was now: an in-place op later gives the
            # input tensor a new grad_fn, but this node used the value before it.
            ctx.parents = parents
            ctx._arrays = arrays
            if state.anomaly:
                ctx.created_at = traceback.extract_stack()[:-1]
        returned = cls.forward(ctx, *arrays, **attrs)
        out = returned if type(returned) is np.ndarray else _as_output(returned)
        kind = out.dtype.kind
        if kind not in "biufc":
            raise TypeError(f"{cls.__name__}.forward returned {type(returned).__name__} of dtype "
                            f"{out.dtype}; expected a NumPy array of numbers")
        # An output that views an input's memory (reshape, transpose, basic indexing) shares
        # its version counter: an in-place change of either is a change of both. Only a view
        # of an ndarray can (an array with another base, like a compiled kernel's result,
        # owns its memory: memory_owner stops there).
        box = None
        if isinstance(out.base, np.ndarray) or _index_of(out, arrays, args) is not None:
            box = _shared_version_box(out, args)
        # Integer and boolean results (casts, comparisons, argmax) are never differentiable.
        record = record and kind in "fc"
        result = Tensor._make(out, record, ctx if record else None, box)
        if record:
            ctx._output = out
            if ctx._saved_values:
                ctx._note_saved_output(returned, result)
        return result

    def _note_saved_output(self, returned, result) -> None:
        """If forward saved its own output, track the output tensor's version too (and keep
        the array it became, where forward returned a scalar or a Tensor)."""
        for position, (kind, item, box, version) in enumerate(self._saved):
            if kind == "value" and item is returned:
                self._saved[position] = (kind, self._output, box, version)
                self._output_box = result._versions()

    # -- what forward hands to backward ----------------------------------------------------------

    @property
    def recording(self) -> bool:
        """Whether this forward is recorded, so a backward may run: work only the backward
        needs (a mask, a sign) can be skipped when not (under no_grad, in evaluation)."""
        return bool(self.inputs)

    def save_for_backward(self, *items):
        """Keep values for backward: the forward's input arrays, its output array or any other
        array. ``saved_tensors`` gives them back as Tensors connected to the graph, so a
        backward written with them is itself differentiable. Each remembers the version of the
        tensor whose memory it is, to catch in-place changes made before backward."""
        if not self.recording:  # nothing will call backward
            return
        saved = []
        for item in items:
            index = _index_of(item, self._arrays, self.inputs)
            if index is not None:
                box = self.inputs[index]._versions()
                saved.append(("input", index, box, box[0]))
                continue
            # An array viewing an input's memory changes with it: track that input's version.
            # (A fresh array -- most of what forward saves -- views nothing.)
            index = (_viewed_input(item, self.inputs) if isinstance(item, np.ndarray)
                     and isinstance(item.base, np.ndarray) else None)
            box = None if index is None else self.inputs[index]._versions()
            saved.append(("value", item, box, None if box is None else box[0]))
            self._saved_values = True
        self._saved = saved

    @property
    def saved_tensors(self) -> tuple:
        """What forward saved, checked: raises if backward freed it or an in-place op has
        changed a tensor it came from since."""
        if self._saved is _FREED:
            raise RuntimeError(
                f"{self.name}: trying to backward through the graph a second time (or to read "
                f"saved values after they have been freed). Saved values are freed when you "
                f"call .backward() or mg.grad(); pass retain_graph=True to the first call if "
                f"you need to backward through the graph again.")
        as_arrays = self.runs_on_arrays and engine.arrays_in_backward()
        out = []
        for kind, item, box, version in self._saved:
            if kind == "input":
                tensor = self.inputs[item]
                if box[0] != version:  # (tested here: the message is built only to raise)
                    self._version_error(f"input {item}", tensor, box, version)
                out.append(self._arrays[item] if as_arrays else tensor)
            elif item is self._output:
                if self._output_box is not None and self._output_box[0] != 0:
                    self._version_error("output 0", item, self._output_box, 0)
                # The op's own output, re-attached to this node: d(output)/d(input) then flows
                # through this node again in a higher-order backward (PyTorch does the same).
                out.append(item if as_arrays else Tensor._make(item, True, self))
            else:
                if box is not None and box[0] != version:
                    self._version_error("a saved view of an input", item, box, version)
                if as_arrays or type(item) is not np.ndarray:
                    out.append(item)
                else:
                    out.append(Tensor._make(item, False, None))
        return tuple(out)

    def _version_error(self, what: str, value, box, version):
        """Raise: ``what`` (a saved value) has seen in-place changes since forward used it."""
        shape = getattr(value, "shape", "?")
        raise RuntimeError(
            f"one of the values needed for gradient computation has been modified by an "
            f"inplace operation: {what} of {self.name} (shape {tuple(shape)}) is at version "
            f"{box[0]}; expected version {version}. An in-place op (add_, +=, t[i] = v, an "
            f"optimizer's step) changed it after {self.name} used it; recompute the forward, "
            f"or change a copy instead (x = x + 1).")

    def release(self) -> None:
        """Free what forward saved (backward calls this unless the graph is retained)."""
        if self._saved:
            self._saved = _FREED

    @property
    def freed(self) -> bool:
        """Whether a backward has freed what forward saved."""
        return self._saved is _FREED

    @property
    def saved_arrays(self) -> list:
        """The arrays forward saved (inputs, the output or new ones), for measuring memory;
        empty once freed."""
        if self._saved is _FREED:
            return []
        return [self._arrays[item] if kind == "input" else item
                for kind, item, _, _ in self._saved if kind == "input"
                or isinstance(item, np.ndarray)]

    @property
    def output(self):
        """The array this node computed (for drawing and checking tools)."""
        return self._output

    def output_tensor(self) -> Tensor:
        """This node's output as a Tensor whose grad_fn is this node."""
        return Tensor._make(self._output, True, self)

    # -- description (graph drawing, error reports) ------------------------------------------------

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self):
        attrs = ", ".join(f"{k}={v!r}" for k, v in self.attrs.items())
        return f"<{self.name}({attrs})>"


def _as_output(returned) -> np.ndarray:
    """forward's result as an ndarray (a 0-d computation gives a NumPy scalar)."""
    return np.asarray(returned.data if isinstance(returned, Tensor) else returned)


def _index_of(item, arrays, inputs):
    """The position of the tensor input whose array ``item`` is, or None."""
    for index, array in enumerate(arrays):
        if item is array and isinstance(inputs[index], Tensor):
            return index
    return None


def _shared_version_box(out: np.ndarray, args):
    index = _viewed_input(out, args)
    return None if index is None else args[index]._versions()


def _viewed_input(array: np.ndarray, inputs):
    """The index of the tensor input whose memory ``array`` uses, if any."""
    owner = memory_owner(array)
    for index, tensor in enumerate(inputs):
        if isinstance(tensor, Tensor) and memory_owner(tensor.data) is owner:
            return index
    return None
