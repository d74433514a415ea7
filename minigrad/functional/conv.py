"""Convolution: im2col turns it into one matrix product."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import kernels
from ..autograd import Function
from ..core.checks import ArgumentTypeError, bad_argument, is_integer
from ..core.errors import OutOfMemoryError, ShapeError
from ..core.tensor import Tensor
from .args import _check_parameters, as_parameter, as_tensor
from .basic import Linear


def _conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def channels_last_memory(array) -> bool:
    """Whether an (N, C, H, W) array views (N, H, W, C) C-contiguous memory (and not also
    (N, C, H, W) memory, as with one channel): the layout conv2d returns. Shared with
    max_pool2d; not in ``__all__``."""
    return array.transpose(0, 2, 3, 1).flags.c_contiguous and not array.flags.c_contiguous


def _kernel_for(array):
    """The compiled im2col/col2im module when the kernels are on and take ``array``'s dtype,
    else None (the NumPy code runs). Imported here, on first use, so that importing minigrad
    does not import Numba."""
    if not kernels.enabled():
        return None
    from ..kernels import conv
    return conv if conv.supports(array.dtype) else None


class Im2Col(Function):
    """Every (C, KH, KW) patch of a zero-padded (N, C, H, W) image as one row: the result has
    shape (N * OH * OW, C * KH * KW). With ``channels_last`` each row holds its patch in (KH,
    KW, C) order instead: for an image in channels-last memory, every kernel offset's C
    channels are then one contiguous run in the image and in the row, a plain copy. A linear
    op whose backward is Col2Im (and vice versa), so convolution can be differentiated any
    number of times."""

    runs_on_arrays = True

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, channels_last=False):
        ctx.save_for_backward(x.shape)
        (ph, pw), (sh, sw) = padding, stride
        compiled = _kernel_for(x)
        if compiled is not None:
            out_size = tuple(_conv_output_size(s, k, st, p) for s, k, st, p in
                             zip(x.shape[2:], kernel_size, stride, padding))
            return compiled.im2col(x, kernel_size, stride, padding, out_size, channels_last)
        # The reference: a strided view of the padded image, copied in row order.
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        windows = sliding_window_view(x, kernel_size, axis=(2, 3))[:, :, ::sh, ::sw]
        n, c, oh, ow, kh, kw = windows.shape
        order = (0, 2, 3, 4, 5, 1) if channels_last else (0, 2, 3, 1, 4, 5)
        return windows.transpose(order).reshape(n * oh * ow, c * kh * kw)

    @staticmethod
    def backward(ctx, grad):
        (shape,) = ctx.saved_tensors
        return Col2Im.apply(grad, image_shape=shape, **ctx.attrs)


class Col2Im(Function):
    """The adjoint of Im2Col: add every row back onto the patch of the image it came from
    (overlapping patches add up); ``channels_last`` as in Im2Col."""

    runs_on_arrays = True

    @staticmethod
    def forward(ctx, cols, image_shape, kernel_size, stride, padding, channels_last=False):
        n, c, h, w = image_shape
        (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
        oh, ow = _conv_output_size(h, kh, sh, ph), _conv_output_size(w, kw, sw, pw)
        compiled = _kernel_for(cols)
        if compiled is not None:
            return compiled.col2im(cols, image_shape, kernel_size, stride, padding, (oh, ow),
                                   channels_last)
        # The reference. Channels last, the layout of the rows: each of the KH * KW strided slice-adds below
        # (one per kernel offset, whatever the image size) then writes contiguous channels.
        padded = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=cols.dtype)
        patches = cols.reshape(n, oh, ow, kh, kw, c) if channels_last else \
            cols.reshape(n, oh, ow, c, kh, kw).transpose(0, 1, 2, 4, 5, 3)
        for i in range(kh):
            for j in range(kw):
                padded[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] += \
                    patches[:, :, :, i, j]
        return padded[:, ph:ph + h, pw:pw + w].transpose(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad):
        attrs = {k: v for k, v in ctx.attrs.items() if k != "image_shape"}
        return Im2Col.apply(grad, **attrs)


def pair(value, name: str, owner: str = "conv2d", minimum: int = 0) -> tuple:
    """An int or a pair of ints (a convolution's kernel size, stride or padding) as a pair of
    ints, each at least ``minimum``; a clear error naming ``owner`` and ``name`` otherwise.
    Shared with ``nn.Conv2d``; not in ``__all__``."""
    values = (value, value) if is_integer(value) else value
    if not (isinstance(values, (tuple, list)) and len(values) == 2
            and all(is_integer(v) for v in values)):
        bad_argument(owner, name, "an int or a pair of ints", value, ArgumentTypeError)
    if min(values) < minimum:
        bad_argument(owner, name, f"at least {minimum}", value)
    return tuple(int(v) for v in values)


def conv2d(x, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0) -> Tensor:
    """2-D cross-correlation (what deep learning calls convolution) of ``x`` (N, C, H, W) with
    ``weight`` (O, C, KH, KW), zero ``padding`` and ``stride``; the result is (N, O, OH, OW)."""
    x = as_tensor(x, "conv2d")
    if weight is None:
        bad_argument("conv2d", "weight", "a Tensor (or an array of numbers)", weight,
                     ArgumentTypeError)
    weight, bias = as_parameter(weight, x, "conv2d"), as_parameter(bias, x, "conv2d")
    stride, padding = pair(stride, "stride", minimum=1), pair(padding, "padding")
    if x.ndim != 4 or weight.ndim != 4 or x.shape[1] != weight.shape[1]:
        raise ShapeError(f"conv2d: expected an input (N, C, H, W) and a weight (O, C, KH, KW) "
                         f"with the same C, got input shape {x.shape} and weight shape "
                         f"{weight.shape}")
    _check_parameters("conv2d", x, None, weight=weight)
    _check_parameters("conv2d", x, weight.shape[:1], bias=bias)
    n, _, h, w = x.shape
    out_channels, _, kh, kw = weight.shape
    oh = _conv_output_size(h, kh, stride[0], padding[0])
    ow = _conv_output_size(w, kw, stride[1], padding[1])
    if oh < 1 or ow < 1:
        raise ShapeError(f"conv2d: a {kh}x{kw} kernel does not fit an input of shape {x.shape} "
                         f"with padding {padding}")
    # An input in channels-last memory (what conv2d itself returns, and the ops after it keep)
    # is read in that order, its patches laid out (KH, KW, C) to match: im2col and col2im then
    # copy contiguous runs of channels. The weight, tiny, is reordered to match.
    channels_last = channels_last_memory(x.data)
    try:
        cols = Im2Col.apply(x, kernel_size=(kh, kw), stride=stride, padding=padding,
                            channels_last=channels_last)
    except (MemoryError, ValueError) as error:  # NumPy: "array is too big", or out of memory
        raise OutOfMemoryError(f"conv2d: the patches of an input of shape {x.shape} with a "
                               f"{kh}x{kw} kernel and padding {padding} do not fit in memory "
                               f"({error})") from None
    rows = weight.transpose(0, 2, 3, 1) if channels_last else weight  # the patches' order
    out = Linear.apply(cols, rows.reshape(out_channels, -1), bias)  # every patch, one layer
    return out.reshape(n, oh, ow, out_channels).transpose(0, 3, 1, 2)
