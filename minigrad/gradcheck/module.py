"""``gradcheck_module``: the gradient of a loss with respect to every parameter of a model."""
from __future__ import annotations

import contextlib

import numpy as np

from ..core.checks import bad_argument, boolean
from ..core.errors import ArgumentTypeError
from ..core.tensor import Tensor
from .check import finish
from .core import check_settings, run_check
from .locate import check_ops
from .report import GradcheckResult
from .state import preserved_modules

__all__ = ["gradcheck_module", "FAST_MODE_ABOVE"]

# Models with more parameter elements than this are checked in fast mode unless told otherwise:
# full mode costs two forward passes per element.
FAST_MODE_ABOVE = 2000


def gradcheck_module(model, loss_fn=None, *batch, eps: float = 1e-6, atol: float = 1e-5,
                     rtol: float = 1e-3, nondet_tol: float = 0.0, fast_mode: bool | None = None,
                     locate: bool = False, raise_exception: bool = True) -> GradcheckResult:
    """Check d loss / d parameter for every parameter of ``model`` that requires grad.

    The loss is ``loss_fn(model(batch[0]), *batch[1:])`` -- e.g. ``gradcheck_module(model,
    F.cross_entropy, x, labels)`` -- or, without ``loss_fn``, every output of ``model(*batch)``.
    Batch tensors that require grad are checked too. The model runs in the mode it is in (train
    or eval). ``fast_mode=None`` picks fast mode above ``FAST_MODE_ABOVE`` parameter elements.

    For the check, parameters, buffers and floating batch tensors are swapped for float64
    copies; afterwards every one of them gets its original array back, so the model's weights
    and running statistics (which a training-mode BatchNorm updates on each of the check's
    forward passes) are exactly as before; so are those of any other module ``loss_fn`` uses.
    The sub-checks of ``gradcheck`` apply (``nondet_tol`` included). Returns a
    ``GradcheckResult`` (true when it passed);
    a failure raises ``GradcheckError`` unless ``raise_exception=False``.

    The arguments are checked before any work, as for ``gradcheck``; a NaN or inf in a
    parameter is a ValueError naming the parameter and the element.
    """
    owner = "gradcheck_module"
    if not callable(model) or not callable(getattr(model, "named_parameters", None)):
        bad_argument(owner, "model", "an nn.Module", model, ArgumentTypeError)
    if loss_fn is not None and not callable(loss_fn):
        bad_argument(owner, "loss_fn", "None or a callable (output, *targets) -> loss", loss_fn,
                     ArgumentTypeError)
    if loss_fn is not None and not batch:
        bad_argument(owner, "batch", "at least the model's input when loss_fn is given", batch)
    # (None, "pick by size", is decided below, once the parameters are known)
    settings = check_settings(owner, eps=eps, atol=atol, rtol=rtol,
                              fast_mode=False if fast_mode is None else fast_mode,
                              nondet_tol=nondet_tol)
    locate = boolean(owner, "locate", locate)
    raise_exception = boolean(owner, "raise_exception", raise_exception)
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    named += [(f"batch[{j}]", t) for j, t in enumerate(batch)
              if isinstance(t, Tensor) and t.requires_grad]
    if not named:
        raise ValueError(f"gradcheck_module: {type(model).__name__} has no parameter that "
                         f"requires grad, and no batch tensor requires grad")
    if fast_mode is None:
        settings["fast_mode"] = sum(t.size for _, t in named) > FAST_MODE_ABOVE

    def loss(*_):  # reads the (perturbed) parameters through the model itself
        if loss_fn is None:
            return model(*batch)
        return loss_fn(model(batch[0]), *batch[1:])

    loss.__name__ = f"{type(model).__name__} loss"
    tensors = [t for _, t in named]
    with preserved_modules(model, loss_fn, batch), _float64_state(model, batch) as restored:
        result = run_check(loss, tensors, list(range(len(tensors))),
                           input_names=[name for name, _ in named],
                           output_names=None if loss_fn is None else ["loss"], owner=owner,
                           **settings)
        if locate and not result.ok:
            result.op_checks = check_ops(loss, tensors, module_names=_module_names(model),
                                         **settings)
    mode = "train" if model.training else "eval"
    result.notes.append(f"{type(model).__name__} checked in {mode} mode; {restored}")
    return finish(result, raise_exception)


@contextlib.contextmanager
def _float64_state(model, batch):
    """Run the block with float64 copies of every parameter, buffer and floating batch tensor,
    then hand each tensor its original array back (undoing whatever the block did to them)."""
    snapshot = model.state_dict()
    buffers = [name for name, _ in model.named_buffers()]
    tensors = {id(t): t for t in list(model.parameters()) + list(model.buffers())}
    tensors.update({id(t): t for t in batch if isinstance(t, Tensor) and t.dtype.kind == "f"})
    originals = [(t, t.data) for t in tensors.values()]
    for t, data in originals:
        t.data = np.array(data, dtype=np.float64 if data.dtype.kind == "f" else data.dtype)
    try:
        yield (f"parameters and buffers ({', '.join(buffers)}) restored afterwards" if buffers
               else "parameters restored afterwards")
    finally:
        for t, data in originals:
            t.data = data
        if not _same_state(model.state_dict(), snapshot):
            # A layer replaced a buffer tensor instead of updating it: put the values back.
            model.load_state_dict(snapshot)


def _same_state(state, snapshot) -> bool:
    return state.keys() == snapshot.keys() and all(
        state[k].dtype == snapshot[k].dtype
        and np.array_equal(state[k], snapshot[k], equal_nan=True) for k in state)


def _module_names(model) -> dict:
    return {id(m): name or type(m).__name__ for name, m in model.named_modules()}
