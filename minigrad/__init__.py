"""minigrad: a small tensor library with reverse-mode autodiff on NumPy.

Its showcase is Batch Normalization composed from the library's own ops, so every gradient path
through it can be watched, checked by finite differences and drawn.
"""
from .core.tensor import Tensor, tensor, set_default_dtype, get_default_dtype
from . import autograd
from .autograd import (Function, no_grad, enable_grad, is_grad_enabled, set_grad_enabled, grad,
                       detect_anomaly)
from .core.ops import (concatenate, stack, where, clamp, sin, cos, maximum, minimum, logsumexp,
                       argmax, argmin)
from .core.creation import (zeros, ones, full, empty, arange, linspace, eye, rand, randn,
                            randint, zeros_like, ones_like, full_like, rand_like, randn_like)
from .core.random import manual_seed
from .gradcheck import (gradcheck, gradgradcheck, GradcheckError, GradcheckResult,
                        GradcheckWarning, check_gradients, gradcheck_module, locate_bad_gradient)
from .serialization import save, load
from . import optim
from . import functional, nn

__version__ = "0.1.0"


def __getattr__(name):
    # mg.draw_graph imports the drawing code (and graphviz) on first use, not with minigrad.
    if name == "draw_graph":
        from .viz import draw_graph
        return draw_graph
    if name == "viz":  # mg.viz.save_steps, mg.viz.gradient_flow, ...
        from . import viz
        return viz
    raise AttributeError(f"module 'minigrad' has no attribute {name!r}")
