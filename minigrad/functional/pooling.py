"""Pooling: the maximum or the average of each window. Both are compositions of existing ops, so
their gradients, to any order, come from those ops' backwards. Max pooling chooses each
window's winner on the arrays (a choice, not differentiable) and gathers the input at those
flat indices: its gradient goes to the element each window picked through indexing's backward.
Average pooling sums the patches conv2d multiplies (``Im2Col``): its gradient is spread evenly
over the window."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import kernels
from ..core.checks import ArgumentTypeError, bad_argument, boolean, is_integer
from ..core.errors import DTypeError, OutOfMemoryError, ShapeError
from ..core.ops import concatenate
from ..core.tensor import Tensor
from .args import as_tensor
from .conv import Im2Col, channels_last_memory


def _window_pair(owner: str, name: str, value) -> tuple:
    """An int or a tuple of one or two ints, as PyTorch's pooling takes them, as a pair (ints
    of another count: PyTorch's RuntimeError)."""
    values = (value,) if is_integer(value) else value
    if not (isinstance(values, (tuple, list)) and all(is_integer(v) for v in values)):
        bad_argument(owner, name, "an int or a tuple of one or two ints", value,
                     ArgumentTypeError)
    if len(values) not in (1, 2):
        bad_argument(owner, name, "an int or a tuple of one or two ints", value, ShapeError)
    values = tuple(int(v) for v in values)
    return values * 2 if len(values) == 1 else values


def pool_geometry(owner: str, kernel_size, stride, padding) -> tuple:
    """(kernel_size, stride, padding) as pairs, checked as PyTorch checks them (a RuntimeError
    for a bad value; ShapeError is one): positive kernel and stride (None or () means the
    kernel size), padding from 0 to half the kernel, so every window holds an input element.
    Shared with ``nn.MaxPool2d`` and ``nn.AvgPool2d``; not in ``__all__``."""
    kernel = _window_pair(owner, "kernel_size", kernel_size)
    stride = kernel if stride is None or (isinstance(stride, (tuple, list)) and not stride) \
        else _window_pair(owner, "stride", stride)
    padding = _window_pair(owner, "padding", padding)
    for name, values, least in (("kernel_size", kernel, 1), ("stride", stride, 1),
                                ("padding", padding, 0)):
        if min(values) < least:
            bad_argument(owner, name, "positive" if least else "non-negative", values,
                         ShapeError)
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        bad_argument(owner, "padding", f"at most half the kernel size {kernel}", padding,
                     ShapeError)
    return kernel, stride, padding


def _pooled_size(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """PyTorch's output size: whole windows (or, with ceil_mode, windows that start inside the
    input or its left padding)."""
    out = (size + 2 * padding - kernel + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _inside(out: int, kernel: int, stride: int, padding: int, low: int, high: int):
    """(out, kernel) booleans: whether each window position lies in [low, high) of the input's
    coordinates (the padding is at -padding .. -1 and size .. size + padding - 1)."""
    positions = np.arange(out)[:, None] * stride - padding + np.arange(kernel)
    return (positions >= low) & (positions < high)


def _output_size(owner: str, shape, kernel, stride, padding, ceil_mode: bool) -> tuple:
    """(OH, OW) of a pooling of an (N, C, H, W) input; a ShapeError if either is below 1."""
    c, h, w = shape[1:]
    out = tuple(_pooled_size(s, k, st, p, ceil_mode)
                for s, k, st, p in zip((h, w), kernel, stride, padding))
    if min(out) < 1:
        raise ShapeError(f"{owner}: given input size ({c}x{h}x{w}), the calculated output "
                         f"size ({c}x{out[0]}x{out[1]}) is too small (kernel {kernel}, "
                         f"stride {stride}, padding {padding})")
    return out


class _Windows:
    """The windows of a pooling, as a Tensor (N, OH, OW, C, KH * KW) of the zero-padded input,
    and which of their cells lie where."""

    def __init__(self, owner: str, x: Tensor, kernel, stride, padding, ceil_mode: bool):
        n, c, h, w = x.shape
        self.size, self.kernel, self.stride, self.padding = (h, w), kernel, stride, padding
        self.out = _output_size(owner, x.shape, kernel, stride, padding, ceil_mode)
        # ceil_mode's last windows may reach past the padding: zeros there, which no window
        # counts (see ``cells``).
        extra = [max(0, (o - 1) * st + k - (s + 2 * p))
                 for o, s, k, st, p in zip(self.out, (h, w), kernel, stride, padding)]
        for axis, rows in zip((2, 3), extra):
            if rows:
                shape = list(x.shape)
                shape[axis] = rows
                x = concatenate([x, Tensor(np.zeros(shape, dtype=x.dtype))], axis=axis)
        try:
            cols = Im2Col.apply(x, kernel_size=kernel, stride=stride, padding=padding)
        except (MemoryError, ValueError) as error:  # NumPy: "array is too big", out of memory
            raise OutOfMemoryError(f"{owner}: the windows of an input of shape {x.shape} with "
                                   f"a {kernel[0]}x{kernel[1]} kernel do not fit in memory "
                                   f"({error})") from None
        self.tensor = cols.reshape(n, self.out[0], self.out[1], c, kernel[0] * kernel[1])

    def cells(self, margin: tuple):
        """(OH, OW, 1, KH * KW) booleans: the window cells inside the input grown by ``margin``
        (rows, columns) on each side ((0, 0): the input itself; the padding: the padded
        input)."""
        rows, cols = (_inside(o, k, st, p, -grown, s + grown) for o, k, st, p, s, grown in
                      zip(self.out, self.kernel, self.stride, self.padding, self.size, margin))
        inside = rows[:, None, :, None] & cols[None, :, None, :]
        return inside.reshape(self.out[0], self.out[1], 1, -1)


def _pool(owner: str, x, kernel_size, stride, padding, ceil_mode, reduce, floating: bool):
    """Check the arguments, return ``reduce(x, kernel, stride, padding, ceil_mode)`` -> (N, C,
    OH, OW) for a batched ``x``, or (C, OH, OW) for an unbatched one."""
    x = as_tensor(x, owner, floating=floating)
    if x.dtype.kind not in "iuf":
        raise DTypeError(f"{owner}: expected a real input (floating point or integer), got "
                         f"dtype {x.dtype}")
    kernel, stride, padding = pool_geometry(owner, kernel_size, stride, padding)
    ceil_mode = boolean(owner, "ceil_mode", ceil_mode)
    if x.ndim not in (3, 4) or 0 in x.shape[-3:]:
        raise ShapeError(f"{owner}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input with "
                         f"non-zero C, H and W (N may be 0), got shape {x.shape}")
    batched = x.ndim == 4
    if not batched:
        x = x.reshape((1,) + x.shape)
    out = reduce(x, kernel, stride, padding, ceil_mode)
    return out if batched else out.reshape(out.shape[1:])


def _window_argmax_numpy(data, kernel, stride, padding, out_size, channels_last: bool):
    """The reference for ``kernels.pooling.window_argmax`` (same arguments, same result): every
    window copied out of the image padded with the lowest value, and its ``argmax``."""
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel, stride, padding, out_size
    image = data.transpose(0, 3, 1, 2) if channels_last else data  # (N, C, H, W)
    n, c, h, w = image.shape
    lowest = -np.inf if data.dtype.kind == "f" else np.iinfo(data.dtype).min
    # Padding far enough for every window: ceil_mode's last ones may reach past ``padding``.
    bottom, right = max(0, (oh - 1) * sh + kh - ph - h), max(0, (ow - 1) * sw + kw - pw - w)
    padded = np.pad(image, ((0, 0), (0, 0), (ph, bottom), (pw, right)), constant_values=lowest)
    windows = sliding_window_view(padded, kernel, axis=(2, 3))[:, :, ::sh, ::sw][:, :, :oh, :ow]
    best = windows.reshape(n, c, oh, ow, kh * kw).argmax(axis=-1)  # first of tied maxima
    # A padding cell can win only where every input element of the window is the lowest
    # value: the window's first input element is then the maximum (PyTorch's choice).
    rows, cols = _inside(oh, kh, sh, ph, 0, h), _inside(ow, kw, sw, pw, 0, w)
    real = (rows[:, None, :, None] & cols[None, :, None, :]).reshape(oh, ow, kh * kw)
    picked_real = real[np.arange(oh)[:, None], np.arange(ow), best]
    best = np.where(picked_real, best, real.argmax(axis=-1))
    y = np.arange(oh)[:, None] * sh - ph + best // kw  # (N, C, OH, OW) input coordinates
    x = np.arange(ow) * sw - pw + best % kw
    b, ch = np.arange(n)[:, None, None, None], np.arange(c)[:, None, None]
    if channels_last:
        return (((b * h + y) * w + x) * c + ch).transpose(0, 2, 3, 1)
    return ((b * c + ch) * h + y) * w + x


def _window_argmax(data, kernel, stride, padding, out_size, channels_last: bool):
    """The flat index of every window's maximum: compiled when the kernels are on and take the
    dtype, else the NumPy reference. Imported on first use, so importing minigrad does not
    import Numba."""
    if kernels.enabled():
        from ..kernels import pooling as compiled
        if compiled.supports(data.dtype):
            return compiled.window_argmax(data, kernel, stride, padding, out_size,
                                          channels_last)
    return _window_argmax_numpy(data, kernel, stride, padding, out_size, channels_last)


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode: bool = False) -> Tensor:
    """The maximum of each ``kernel_size`` window of ``x`` (N, C, H, W) or (C, H, W), moved by
    ``stride`` (default: the kernel size) over the input padded with -inf by ``padding`` (at
    most half the kernel). ``ceil_mode`` keeps a last, partial window at the bottom and right.

    The gradient goes to the element each window picked; on a tie, to the first of the tied
    elements in row-major order within the window, as PyTorch's CPU kernel picks. (A window
    holding several NaNs: PyTorch picks its last NaN, this the first; the output is NaN
    either way.)"""
    def take_max(x: Tensor, kernel, stride, padding, ceil_mode) -> Tensor:
        out_size = _output_size("max_pool2d", x.shape, kernel, stride, padding, ceil_mode)
        # Work in the input's memory order (channels last is what conv2d returns), so that
        # flattening it is a view, not a copy; the output then keeps that layout too.
        channels_last = channels_last_memory(x.data)
        source = x.transpose(0, 2, 3, 1) if channels_last else x
        try:
            index = _window_argmax(np.ascontiguousarray(source.data), kernel, stride, padding,
                                   out_size, channels_last)
        except (MemoryError, ValueError) as error:  # NumPy: "array is too big", out of memory
            raise OutOfMemoryError(f"max_pool2d: the windows of an input of shape {x.shape} "
                                   f"with a {kernel[0]}x{kernel[1]} kernel do not fit in "
                                   f"memory ({error})") from None
        # A gather: its gradient (indexing's backward) adds onto the picked elements. A 1-D
        # index, because np.add.at in that backward takes a fast path for it (measured 8x
        # faster than with the same index as a 4-D array).
        out = source.reshape(-1)[index.reshape(-1)].reshape(index.shape)
        return out.transpose(0, 3, 1, 2) if channels_last else out

    return _pool("max_pool2d", x, kernel_size, stride, padding, ceil_mode, take_max, False)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """The mean of each ``kernel_size`` window of ``x`` (N, C, H, W) or (C, H, W), moved by
    ``stride`` (default: the kernel size) over the input padded with zeros by ``padding`` (at
    most half the kernel). With ``count_include_pad`` (PyTorch's default) the zeros of the
    padding count in the mean; without, only the input's elements do. ``ceil_mode`` keeps a
    last, partial window, averaged over the cells it has."""
    count_include_pad = boolean("avg_pool2d", "count_include_pad", count_include_pad)

    def take_mean(windows: _Windows) -> Tensor:
        counted = windows.cells(windows.padding if count_include_pad else (0, 0))
        divisor = counted.sum(axis=-1).astype(windows.tensor.dtype)  # (OH, OW, 1)
        return windows.tensor.sum(axis=-1) / divisor

    def average(x: Tensor, kernel, stride, padding, ceil_mode) -> Tensor:
        windows = _Windows("avg_pool2d", x, kernel, stride, padding, ceil_mode)
        return take_mean(windows).transpose(0, 3, 1, 2)

    return _pool("avg_pool2d", x, kernel_size, stride, padding, ceil_mode, average, True)
