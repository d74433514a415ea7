"""Gradient verification by finite differences, with reports that point at the wrong element
and the wrong op.

- ``gradcheck`` / ``gradgradcheck``: PyTorch's signatures and defaults; True, or a
  ``GradcheckError`` whose message is the report. PyTorch's sub-checks too: a backward linear
  in its output gradient, reentrant within ``nondet_tol``, outputs that keep shape and dtype;
  no differentiable output passes; modules ``fn`` uses keep their buffers (``state.py``).
- ``check_gradients``: the same check, returning a ``GradcheckResult`` to inspect or print.
- ``locate_bad_gradient``: check every op of a graph on its own and name those whose backward
  is wrong.
- ``gradcheck_module``: every parameter of a model through a loss, its buffers left untouched.
- ``minigrad.gradcheck.suite``: the library's self-test, a sample case for every op, layer and
  function (``check_all``, ``CASES``, ``registry``). Import it by name: it imports ``nn`` and
  ``functional``, so this package does not.

How finite differences work and how to read a report: docs/gradcheck.md.
"""
from .check import check_gradients, gradcheck, gradgradcheck
from .locate import locate_bad_gradient
from .module import gradcheck_module
from .report import (Comparison, Element, GradcheckArgumentError, GradcheckError,
                     GradcheckResult, GradcheckWarning, OpCheck)

__all__ = ["gradcheck", "gradgradcheck", "check_gradients", "locate_bad_gradient",
           "gradcheck_module", "GradcheckError", "GradcheckArgumentError", "GradcheckResult", "GradcheckWarning",
           "Comparison", "Element", "OpCheck"]
