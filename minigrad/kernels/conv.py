"""Compiled im2col and col2im, the two halves of convolution and pooling (``Im2Col`` and
``Col2Im`` in ``minigrad.functional.conv`` call them when ``kernels.enabled()``).

NumPy's im2col pads the image (a full copy) and then copies a strided six-axis view; its
col2im makes KH * KW strided slice-adds into a zeroed, padded buffer and hands back a
non-contiguous view. Each kernel here is one pass: im2col reads the image and writes every
row once, treating the padding as zeros without materialising it; col2im gathers, for each
image element, the few patch cells that cover it and writes the sum once, into a contiguous
(N, C, H, W) array.

Importing this module imports Numba (and loads or compiles the kernels), so the library
imports it only when a kernel is first used."""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["im2col", "col2im"]


@numba.njit(cache=True)
def _im2col(x, out, kh, kw, sh, sw, ph, pw, oh, ow):
    n, c, h, w = x.shape
    row = 0
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                col = 0
                for ch in range(c):
                    for i in range(kh):
                        y = oy * sh - ph + i
                        for j in range(kw):
                            xx = ox * sw - pw + j
                            if 0 <= y < h and 0 <= xx < w:
                                out[row, col] = x[b, ch, y, xx]
                            else:  # the zero padding
                                out[row, col] = 0
                            col += 1
                row += 1


@numba.njit(cache=True)
def _col2im(cols, out, kh, kw, sh, sw, ph, pw, oh, ow):
    n, c, h, w = out.shape
    for b in range(n):
        for y in range(h):
            for xx in range(w):
                # The patch rows covering (y, xx) are the same for every channel, and each
                # is a contiguous run of C * KH * KW cells: the channel loop stays inside them.
                for ch in range(c):
                    total = 0.0  # float64 whatever the dtype: float32 sums stay accurate
                    for i in range(kh):
                        t = y + ph - i
                        if t < 0 or t % sh != 0 or t // sh >= oh:
                            continue
                        oy = t // sh
                        for j in range(kw):
                            u = xx + pw - j
                            if u < 0 or u % sw != 0 or u // sw >= ow:
                                continue
                            total += cols[(b * oh + oy) * ow + u // sw, (ch * kh + i) * kw + j]
                    out[b, ch, y, xx] = total


def supports(dtype) -> bool:
    """Whether the kernels take arrays of ``dtype`` (float32 and float64; the NumPy code takes
    the rest, such as the integer images max pooling accepts)."""
    return dtype == np.float32 or dtype == np.float64


def im2col(x: np.ndarray, kernel_size, stride, padding, out_size) -> np.ndarray:
    """The (N * OH * OW, C * KH * KW) patches of ``x`` (N, C, H, W) zero-padded by ``padding``;
    ``out_size`` is (OH, OW), which may leave trailing rows or columns unused, as NumPy's
    strided view does."""
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel_size, stride, padding, out_size
    n, c = x.shape[:2]
    out = np.empty((n * oh * ow, c * kh * kw), dtype=x.dtype)
    _im2col(np.ascontiguousarray(x), out, kh, kw, sh, sw, ph, pw, oh, ow)
    return out


def col2im(cols: np.ndarray, image_shape, kernel_size, stride, padding, out_size) -> np.ndarray:
    """The adjoint of ``im2col``: a contiguous (N, C, H, W) image, each element the sum of the
    patch cells that came from it."""
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel_size, stride, padding, out_size
    out = np.empty(tuple(image_shape), dtype=cols.dtype)
    _col2im(np.ascontiguousarray(cols), out, kh, kw, sh, sw, ph, pw, oh, ow)
    return out
