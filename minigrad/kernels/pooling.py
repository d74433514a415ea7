"""Compiled choice of max pooling's winners: for every window, the flat index (into the input's
memory) of its maximum. ``minigrad.functional.pooling.max_pool2d`` calls ``window_argmax``
when ``kernels.enabled()``; its NumPy code, which stays the reference, copies every window out
of a padded image and takes ``argmax``. Here each window is read where it lies, clipped to the
image (so the padding is never read, and needs no buffer), in one pass over the input.

The choice is PyTorch's: the first maximum in row-major window order; a NaN wins over any
number, and the first NaN stays (PyTorch keeps the last one; the output is NaN either way).
Only the input's own elements are candidates, so a window whose elements all equal the lowest
value picks its first element, never the -inf padding.

Importing this module imports Numba (and loads or compiles the kernels), so the library
imports it only when a kernel is first used."""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["window_argmax"]


@numba.njit(cache=True)
def _inside(start, length, size):
    """The part [first, stop) of a window [start, start + length) that lies inside 0..size-1
    (the rest is padding, which never wins)."""
    return max(0, start), min(size, start + length)


@numba.njit(cache=True)
def _argmax_channels_first(x, out, kh, kw, sh, sw, ph, pw):
    """``out[b, c, oy, ox]``: the flat index into ``x`` (N, C, H, W), C-contiguous, of the
    maximum of window (oy, ox) of channel c."""
    n, c, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    for b in range(n):
        for ch in range(c):
            plane = x[b, ch]
            offset = (b * c + ch) * h * w
            for oy in range(oh):
                y0, y1 = _inside(oy * sh - ph, kh, h)
                for ox in range(ow):
                    x0, x1 = _inside(ox * sw - pw, kw, w)
                    best_y, best_x = y0, x0
                    best = plane[y0, x0]
                    for y in range(y0, y1):
                        for xx in range(x0, x1):
                            v = plane[y, xx]
                            # Strictly greater keeps the first of tied maxima; a NaN wins
                            # once, then nothing compares greater than it.
                            if v > best or (v != v and best == best):
                                best, best_y, best_x = v, y, xx
                    out[b, ch, oy, ox] = offset + best_y * w + best_x


@numba.njit(cache=True)
def _argmax_channels_last(x, out, best, kh, kw, sh, sw, ph, pw):
    """``out[b, oy, ox, c]``: the flat index into ``x`` (N, H, W, C), C-contiguous, of the
    maximum of window (oy, ox) of channel c. The innermost loop runs over one pixel's C
    contiguous channels, keeping their running maxima in ``best`` (C,)."""
    n, h, w, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    for b in range(n):
        for oy in range(oh):
            y0, y1 = _inside(oy * sh - ph, kh, h)
            for ox in range(ow):
                x0, x1 = _inside(ox * sw - pw, kw, w)
                target = out[b, oy, ox]
                source = x[b, y0, x0]
                base = ((b * h + y0) * w + x0) * c
                for ch in range(c):
                    best[ch] = source[ch]
                    target[ch] = base + ch
                for y in range(y0, y1):
                    for xx in range(x0, x1):
                        source = x[b, y, xx]
                        base = ((b * h + y) * w + xx) * c
                        for ch in range(c):
                            v = source[ch]
                            if v > best[ch] or (v != v and best[ch] == best[ch]):
                                best[ch] = v
                                target[ch] = base + ch


def supports(dtype) -> bool:
    """Whether the kernel takes arrays of ``dtype``: real floats and integers (what max pooling
    accepts)."""
    return np.dtype(dtype).kind in "iuf" and np.dtype(dtype) != np.float16


def window_argmax(x: np.ndarray, kernel_size, stride, padding, out_size,
                  channels_last: bool) -> np.ndarray:
    """The flat index of every window's maximum. ``channels_last``: ``x`` is (N, H, W, C) and
    the result (N, OH, OW, C); else ``x`` is (N, C, H, W) and the result (N, C, OH, OW). ``x``
    is C-contiguous; the indices point into ``x.reshape(-1)``."""
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel_size, stride, padding, out_size
    if channels_last:
        n, _, _, c = x.shape
        out = np.empty((n, oh, ow, c), dtype=np.intp)
        _argmax_channels_last(x, out, np.empty(c, dtype=x.dtype), kh, kw, sh, sw, ph, pw)
    else:
        n, c = x.shape[:2]
        out = np.empty((n, c, oh, ow), dtype=np.intp)
        _argmax_channels_first(x, out, kh, kw, sh, sw, ph, pw)
    return out
