"""Argument checks the functions share."""
from __future__ import annotations

from ..core.checks import one_of
from ..core.errors import DTypeError, ShapeError
from ..core.dtypes import to_array
from ..core.tensor import Tensor


def as_tensor(x, owner: str = "Tensor", floating: bool = False) -> Tensor:
    """``x`` itself if it is a Tensor, else ``Tensor(x)``: what the functions here (and the
    layers of ``nn``) accept as input; ``owner`` (the function's name) is named in the error
    when ``x`` is not numbers, or, with ``floating``, not floating point (a softmax of integers
    has no integer result). Not in ``__all__``: a helper, not an op."""
    x = x if isinstance(x, Tensor) else Tensor._make(to_array(x, None, owner), False, None)
    if floating and x.dtype.kind != "f":
        raise DTypeError(f"{owner}: expected a floating-point input, got dtype {x.dtype} "
                         f"(convert with x.astype(np.float64))")
    return x


def as_parameter(value, x: Tensor, owner: str) -> Tensor | None:
    """A weight or bias for an op on ``x``: a Tensor as it is (its dtype is checked by
    ``_check_parameters``); None stays None; a list or array is a constant that takes ``x``'s
    float dtype, as constants in arithmetic do (``[[1, 2]]`` is a fine float64 weight)."""
    if value is None or isinstance(value, Tensor):
        return value
    array = to_array(value, None, owner)
    if x.dtype.kind == "f" and array.dtype.kind in "biuf":
        array = array.astype(x.dtype, copy=False)
    return Tensor._make(array, False, None)


def _check_parameters(op_name: str, x: Tensor, expected_shape: tuple | None, **tensors) -> None:
    """Each given tensor (None is skipped) must have ``expected_shape`` (unless None) and the
    input's dtype: mixing dtypes would silently promote float32 to float64."""
    for name, t in tensors.items():
        if t is None:
            continue
        if expected_shape is not None and t.shape != expected_shape:
            raise ShapeError(f"{op_name}: {name} has shape {t.shape}, expected "
                             f"{expected_shape} for an input of shape {x.shape}")
        if t.dtype != x.dtype:
            # Convert whichever is not floating point to the other's dtype; when both are, the
            # model (module.to) or the input.
            if x.dtype.kind != "f":
                advice = f"x.astype(np.{t.dtype})"
            elif t.dtype.kind != "f":
                advice = f"{name}.astype(np.{x.dtype})"
            else:
                advice = f"module.to(np.{x.dtype}) or x.astype(np.{t.dtype})"
            raise DTypeError(f"{op_name}: the input is {x.dtype} but {name} is {t.dtype}; "
                             f"convert with {advice}")


def _check_reduction(reduction: str, op_name: str) -> None:
    one_of(op_name, "reduction", reduction, ("mean", "sum", "none"))


def _reduce(losses: Tensor, reduction: str, op_name: str) -> Tensor:
    _check_reduction(reduction, op_name)
    if reduction == "mean":
        return losses.mean()
    return losses.sum() if reduction == "sum" else losses
