"""Localisation: check every node of a graph on its own, to name the op whose backward is wrong.

A node's backward only calls other ops' *forwards* (it is written with Tensor ops), and finite
differences trust forwards too, so a node that fails its own check has a wrong backward -- no
matter what the rest of the graph does. The first such node in evaluation order (nearest the
inputs) is reported as the culprit; a user's custom Function buried in a model shows up there.
"""
from __future__ import annotations

from ..autograd import enable_grad, graph_nodes
from ..core.checks import integer, one_of
from ..core.tensor import Tensor
from .core import (as_inputs, check_function, check_settings, float64_copies,
                   require_finite_inputs, run_check)
from .guards import kink_warnings
from .numeric import as_outputs
from .report import OpCheck
from .state import preserved_modules

__all__ = ["locate_bad_gradient", "check_ops"]


def locate_bad_gradient(fn, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                        nondet_tol: float = 0.0, fast_mode: bool = False,
                        order: int = 1) -> list[OpCheck]:
    """The nodes of ``fn(*inputs)``'s graph whose op's backward disagrees with finite differences
    of its forward at the values the node saw, nearest the inputs first (empty: none). With
    ``order=2``: whose backward's own gradient (the op's double backward) is wrong. A backward
    that fails one of gradcheck's other sub-checks (not linear in its output gradient, not
    reentrant within ``nondet_tol``) is wrong too. Modules ``fn`` uses are left as they were.

    ``print(*result[0].describe(), sep="\\n")`` shows the first one with its worst elements."""
    owner = "locate_bad_gradient"
    check_function(owner, fn)
    inputs = as_inputs(inputs, owner)
    settings = check_settings(owner, eps=eps, atol=atol, rtol=rtol, fast_mode=fast_mode,
                              nondet_tol=nondet_tol)
    order = one_of(owner, "order", integer(owner, "order", order), (1, 2))
    require_finite_inputs(owner, inputs, [i for i, t in enumerate(inputs)
                                          if isinstance(t, Tensor) and t.requires_grad])
    with preserved_modules(fn, inputs):
        checks = check_ops(fn, float64_copies(inputs), order=order, **settings)
    return [c for c in checks if c.status == "wrong"]


def check_ops(fn, inputs, *, eps, atol, rtol, fast_mode, nondet_tol=0.0, order=1,
              module_names=None) -> list[OpCheck]:
    """An ``OpCheck`` for every node behind ``fn(*inputs)``, in evaluation order.

    ``module_names`` maps ``id(module)`` to its name in the model, to say where a node sits."""
    with enable_grad():
        nodes = graph_nodes(as_outputs(fn(*inputs), fn))
    return [_check_node(node, position, len(nodes), module_names or {}, eps=eps, atol=atol,
                        rtol=rtol, fast_mode=fast_mode, nondet_tol=nondet_tol, order=order)
            for position, node in enumerate(nodes, 1)]


def _check_node(node, position, total, module_names, **settings) -> OpCheck:
    op = type(node)
    attrs = node.attrs
    args = float64_copies(node.inputs)
    checked = [i for i, need in enumerate(node.needs_input_grad) if need]

    def replay(*replayed):
        return op.apply(*replayed, **attrs)

    replay.__name__ = f"{op.__name__}.forward"
    check = OpCheck(node.name, position, total, _where(node, module_names), status="ok")
    try:
        check.result = run_check(replay, args, checked, **settings)
    except Exception as error:  # noqa: BLE001 -- e.g. a forward that is random; report, go on
        check.status, check.reason = "skipped", f"{type(error).__name__}: {error}"
        return check
    if not check.result.ok:
        check.status = "kink" if kink_warnings([node], settings["eps"]) else "wrong"
    return check


def _where(node, module_names) -> str:
    module = type(node).__module__
    where = "built-in op" if module.startswith("minigrad.") else f"custom Function from {module}"
    if node.scope:
        innermost = node.scope[-1]
        name = module_names.get(id(innermost))
        where += (f", inside {name} ({type(innermost).__name__})" if name else
                  ", inside " + " > ".join(type(m).__name__ for m in node.scope))
    return where
