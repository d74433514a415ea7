"""The engine a learner reads first, top to bottom: ``tensor`` (the Tensor), ``function`` (the
Function base and its graph node), ``engine`` (grad mode and the backward traversal) and
``ops/`` (the primitive ops, forward and backward side by side)."""
from .tensor import Tensor, tensor, set_default_dtype, get_default_dtype  # noqa: F401
