"""``minigrad.nn.functional``: the functions of ``minigrad.functional``, re-exported so that
PyTorch's ``import ...nn.functional as F`` spelling works too."""
from ..functional import *  # noqa: F401,F403
from ..functional import __all__  # noqa: F401
