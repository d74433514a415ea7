"""What the engine offers users, under PyTorch's names: the ``Function`` base for custom ops,
``grad``, the grad-mode switches, hooks' handles and anomaly detection. The code lives in
``minigrad/core/`` (``function.py``, ``engine.py``, ``hooks.py``)."""
from .core.engine import (array_backward, backpropagate, current_scope, detect_anomaly,  # noqa
                          enable_grad, grad, graph_nodes, is_grad_enabled, module_scope, no_grad,
                          set_detect_anomaly, set_grad_enabled, topological_order)
from .core.function import Function  # noqa: F401
from .core.hooks import HookHandle  # noqa: F401

__all__ = ["Function", "grad", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
           "detect_anomaly", "set_detect_anomaly", "HookHandle", "module_scope", "current_scope",
           "topological_order", "graph_nodes", "backpropagate", "array_backward"]
