"""Compiled im2col and col2im, the two halves of convolution and average pooling (``Im2Col``
and ``Col2Im`` in ``minigrad.functional.conv`` call them when ``kernels.enabled()``).

NumPy's im2col pads the image (a full copy) and then copies a strided six-axis view; its
col2im makes KH * KW strided slice-adds into a zeroed, padded buffer and hands back a
non-contiguous view. Each kernel here works one image at a time in a small padded buffer
that stays in cache (so the padding needs no bounds checks): im2col writes every row once;
col2im reads every row once, adds it onto its patch, and writes the image once. Rows hold
their patch in (C, KH, KW) order, or in (KH, KW, C) order, conv2d's choice for an image in
channels-last memory: each kernel offset's channels are then one contiguous run on both
sides, a plain copy (measured 3x faster for im2col, 2.4x for col2im, at 16 channels).

Importing this module imports Numba (and loads or compiles the kernels), so the library
imports it only when a kernel is first used."""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["im2col", "col2im"]


# Loop order: Numba compiles these loops to scalar code, so what matters is that the
# innermost loop is long and touches memory that is already in cache. The rows of one output
# image row (b, oy) -- OW rows of C * KH * KW cells -- stay in L1 while the loops over
# (channel, kernel offset) fill or read them column by column, the innermost loop running
# along the image row (OW steps). Measured on this library's CNNs, 2-6x faster than the
# loops in row order.


@numba.njit(cache=True)
def _image_patches(image, out, first, kh, kw, sh, sw, oh, ow):
    """The patches of one (C, H, W) image, already padded, into rows first, first + 1, ..."""
    c = image.shape[0]
    for oy in range(oh):
        row = first + oy * ow  # the output row of patch (oy, 0)
        for ch in range(c):
            for i in range(kh):
                source = image[ch, oy * sh + i]
                for j in range(kw):
                    col = (ch * kh + i) * kw + j
                    for ox in range(ow):
                        out[row + ox, col] = source[ox * sw + j]


@numba.njit(cache=True)
def _im2col(x, out, kh, kw, sh, sw, ph, pw, oh, ow):
    n, c, h, w = x.shape
    if ph == 0 and pw == 0:  # read the images where they are, whatever their strides
        for b in range(n):
            _image_patches(x[b], out, b * oh * ow, kh, kw, sh, sw, oh, ow)
        return
    # One image at a time, copied into a zero-padded buffer that stays in cache: the copy
    # loops then need no bounds checks for the padding.
    padded = np.zeros((c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    for b in range(n):
        padded[:, ph:ph + h, pw:pw + w] = x[b]
        _image_patches(padded, out, b * oh * ow, kh, kw, sh, sw, oh, ow)


@numba.njit(cache=True)
def _image_patches_channels_last(image, out, first, kh, kw, sh, sw, oh, ow, offset_major):
    """As ``_image_patches``, from one (H, W, C) image: the innermost loop reads one pixel's
    C contiguous channels. Rows in (C, KH, KW) order, or (KH, KW, C) with ``offset_major``,
    where each kernel offset's C channels are a contiguous run in the row too: a plain copy."""
    c = image.shape[2]
    for oy in range(oh):
        for ox in range(ow):
            target = out[first + oy * ow + ox]
            for i in range(kh):
                for j in range(kw):
                    source = image[oy * sh + i, ox * sw + j]
                    start, step = ((i * kw + j) * c, 1) if offset_major else (i * kw + j, kh * kw)
                    for ch in range(c):
                        target[start + ch * step] = source[ch]


@numba.njit(cache=True)
def _im2col_channels_last(x, out, kh, kw, sh, sw, ph, pw, oh, ow, offset_major):
    n, h, w, c = x.shape
    if ph == 0 and pw == 0:
        for b in range(n):
            _image_patches_channels_last(x[b], out, b * oh * ow, kh, kw, sh, sw, oh, ow,
                                         offset_major)
        return
    padded = np.zeros((h + 2 * ph, w + 2 * pw, c), dtype=x.dtype)
    for b in range(n):
        padded[ph:ph + h, pw:pw + w] = x[b]
        _image_patches_channels_last(padded, out, b * oh * ow, kh, kw, sh, sw, oh, ow,
                                     offset_major)


@numba.njit(cache=True)
def _col2im_few_channels(cols, out, kh, kw, sh, sw, ph, pw, oh, ow):
    n, c, h, w = out.shape
    # One image at a time, summed in a padded (C, H, W) buffer in float64 whatever the dtype,
    # so float32 sums stay accurate; its inside is then the image.
    total = np.empty((c, h + 2 * ph, w + 2 * pw))
    for b in range(n):
        total[:] = 0.0
        for oy in range(oh):
            first = (b * oh + oy) * ow
            for ch in range(c):
                for i in range(kh):
                    target = total[ch, oy * sh + i]
                    for j in range(kw):
                        col = (ch * kh + i) * kw + j
                        for ox in range(ow):
                            target[ox * sw + j] += cols[first + ox, col]
        out[b] = total[:, ph:ph + h, pw:pw + w]


@numba.njit(cache=True)
def _col2im_many_channels(cols, out, kh, kw, sh, sw, ph, pw, oh, ow, offset_major):
    n, h, w, c = out.shape
    # As above, but channels last, in the buffer and in ``out`` (N, H, W, C): the innermost
    # loop adds one patch row's cells of one kernel offset onto the C contiguous channels of
    # one pixel (faster once C is 8 or more). Rows in (C, KH, KW) order, or (KH, KW, C) with
    # ``offset_major``: then the row's cells are a contiguous run too.
    total = np.empty((h + 2 * ph, w + 2 * pw, c))
    for b in range(n):
        total[:] = 0.0
        for oy in range(oh):
            for ox in range(ow):
                source = cols[(b * oh + oy) * ow + ox]
                for i in range(kh):
                    for j in range(kw):
                        target = total[oy * sh + i, ox * sw + j]
                        start, step = (((i * kw + j) * c, 1) if offset_major
                                       else (i * kw + j, kh * kw))
                        for ch in range(c):
                            target[ch] += source[start + ch * step]
        out[b] = total[ph:ph + h, pw:pw + w]


def supports(dtype) -> bool:
    """Whether the kernels take arrays of ``dtype`` (float32 and float64; the NumPy code takes
    the rest, such as the integer images max pooling accepts)."""
    return dtype == np.float32 or dtype == np.float64


def im2col(x: np.ndarray, kernel_size, stride, padding, out_size,
           channels_last: bool = False) -> np.ndarray:
    """The (N * OH * OW, C * KH * KW) patches of ``x`` (N, C, H, W) zero-padded by ``padding``,
    each row in (C, KH, KW) order, or (KH, KW, C) with ``channels_last``; ``out_size`` is (OH,
    OW), which may leave trailing rows or columns unused, as NumPy's strided view does."""
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel_size, stride, padding, out_size
    n, c = x.shape[:2]
    out = np.empty((n * oh * ow, c * kh * kw), dtype=x.dtype)
    layout = x.transpose(0, 2, 3, 1)
    if channels_last or (layout.flags.c_contiguous and not x.flags.c_contiguous):
        # (N, C, H, W) viewing channels-last memory, as conv2d's own output does: read it in
        # its memory order rather than striding C elements per step along a row.
        _im2col_channels_last(layout, out, kh, kw, sh, sw, ph, pw, oh, ow, channels_last)
    else:
        _im2col(x, out, kh, kw, sh, sw, ph, pw, oh, ow)
    return out


def col2im(cols: np.ndarray, image_shape, kernel_size, stride, padding, out_size,
           channels_last: bool = False) -> np.ndarray:
    """The adjoint of ``im2col``: an (N, C, H, W) image, each element the sum of the patch
    cells that came from it; in (N, H, W, C) memory from 8 channels or with
    ``channels_last``, else contiguous."""
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel_size, stride, padding, out_size
    n, c, h, w = image_shape
    if channels_last or c >= 8:
        # Channels-last memory, viewed as (N, C, H, W): the layout the NumPy code returns.
        out = np.empty((n, h, w, c), dtype=cols.dtype)
        _col2im_many_channels(cols, out, kh, kw, sh, sw, ph, pw, oh, ow, channels_last)
        return out.transpose(0, 3, 1, 2)
    out = np.empty((n, c, h, w), dtype=cols.dtype)
    _col2im_few_channels(cols, out, kh, kw, sh, sw, ph, pw, oh, ow)
    return out
