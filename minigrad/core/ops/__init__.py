"""Primitive ops, forward and backward side by side, grouped by kind.

Each forward works on NumPy arrays; each backward is written with Tensor ops, so backpropagating
with ``create_graph=True`` records the backward itself (second derivatives). The functions
beside the op classes (``binary``, ``matmul``, ``getitem``, ...) check arguments where the user
called and insert explicit ``BroadcastTo`` nodes, so BroadcastTo's backward is the one place
where a broadcast gradient is summed back to its operand's shape.
"""
from .args import as_index, broadcast_shape, normalize_axis, operand, reduction_args
from .elementwise import (Abs, Add, Cast, Clamp, Cos, Div, Exp, Log, Maximum, Minimum, Mul, Neg,
                          Pow, Relu, Sigmoid, Sin, Sqrt, Sub, Tanh, Where, as_input, binary,
                          check_clamp_bounds, clamp, cos, maximum, minimum, power, replaced, sin,
                          where)
from .reduce import (LogSumExp, Max, Mean, Min, Sum, Var, arg_extremum, argmax, argmin,
                     logsumexp)
from .shape import (BroadcastTo, Concatenate, GetItem, Reshape, ScatterAdd, SetItem, Transpose,
                    broadcast_to, concatenate, getitem, reshape, setitem, stack, swapaxes,
                    transpose)
from .linalg import MatMul, matmul

__all__ = ["concatenate", "stack", "where", "sin", "cos", "maximum", "minimum", "logsumexp",
           "argmax", "argmin"]
