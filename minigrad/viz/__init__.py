"""Pictures of autograd graphs (Graphviz) and the gradient flowing through them."""
from .draw import GRAPHVIZ_INSTALL_HINT, draw_graph, save_graph
from .trace import gradient_flow, outgoing_gradients
from .steps import save_steps  # (not in __all__: mg's star import stays as it was)

__all__ = ["draw_graph", "save_graph", "gradient_flow", "outgoing_gradients",
           "GRAPHVIZ_INSTALL_HINT"]
