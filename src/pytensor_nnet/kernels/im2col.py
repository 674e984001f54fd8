"""N-d im2col / col2im (Caffe column layout), compiled with Numba.

Geometry is always 3-d: 1-d and 2-d problems are 3-d problems whose leading spatial axes
have size 1 (see :func:`as_3d_geometry`). One image ``img`` of shape ``(C, D, H, W)`` and a
kernel of ``(kd, kh, kw)`` taps give the column matrix

    cols[((c * kd + a) * kh + b) * kw + e, col0 + (z * oh + y) * ow + x]
        = img[c, z * sd - pd + a * dd, y * sh - ph + b * dh, x * sw - pw + e * dw]

(zero where the index falls in the padding), i.e. rows are ``(channel, *kernel)`` in C
order and columns are output positions in C order. ``col2im_add`` is its adjoint: it
scatter-adds columns back into an image (overlapping windows accumulate).

All geometry arguments are 3-tuples of ints; ``pad`` is the *before* padding (the after
padding only changes the output size, which the caller passes as ``out``).

The loops are serial on purpose: they are memory-bound, and Numba's parallel threads keep
spinning after a parallel region, fighting the BLAS threads of the GEMM that follows (measured:
2-3x slower GEMMs on 2 cores). BLAS owns the threads.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def valid_range(out_size, stride, offset, in_size):
    """Output indices ``x`` in ``[lo, hi)`` with ``0 <= x * stride + offset < in_size``."""
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride
    hi = 0
    if in_size - offset > 0:
        hi = (in_size - offset + stride - 1) // stride
    if hi > out_size:
        hi = out_size
    if lo > hi:
        lo = hi
    return lo, hi


@numba.njit(cache=True)
def im2col_into(img, cols, col0, ksize, stride, pad, dilation, out):
    """Write the columns of ``img`` (C, D, H, W) into ``cols[:, col0:col0 + prod(out)]``.

    ``cols`` has shape ``(C * kd * kh * kw, ncols)`` with ``ncols >= col0 + prod(out)``.
    """
    C, D, H, W = img.shape
    kd, kh, kw = ksize
    sd, sh, sw = stride
    pd, ph, pw = pad
    dd, dh, dw = dilation
    od, oh, ow = out
    ktaps = kd * kh * kw
    step = np.uint64(sw)
    for task in range(C * ktaps):
        c = task // ktaps
        tap = task % ktaps
        a = tap // (kh * kw)
        b = (tap // kw) % kh
        e = tap % kw
        dst = cols[task]
        x_off = e * dw - pw
        x_lo, x_hi = valid_range(ow, sw, x_off, W)
        for z in range(od):
            iz = z * sd - pd + a * dd
            for y in range(oh):
                iy = y * sh - ph + b * dh
                base = col0 + (z * oh + y) * ow
                if iz < 0 or iz >= D or iy < 0 or iy >= H:
                    dst[base : base + ow] = 0
                    continue
                src = img[c, iz, iy]
                # Unsigned indices (all >= 0 here): Numba then drops its negative-index
                # wraparound, and LLVM vectorises the copy (measured 2-3x faster).
                first = np.uint64(base + x_lo)
                src0 = np.uint64(x_lo * sw + x_off)
                for i in range(np.uint64(base), first):
                    dst[i] = 0
                for i in range(np.uint64(x_hi - x_lo)):
                    dst[first + i] = src[src0 + step * i]
                for i in range(np.uint64(base + x_hi), np.uint64(base + ow)):
                    dst[i] = 0


@numba.njit(cache=True)
def col2im_add(cols, col0, img, ksize, stride, pad, dilation, out):
    """Scatter-add ``cols[:, col0:col0 + prod(out)]`` into ``img`` (C, D, H, W); adjoint of im2col."""
    C, D, H, W = img.shape
    kd, kh, kw = ksize
    sd, sh, sw = stride
    pd, ph, pw = pad
    dd, dh, dw = dilation
    od, oh, ow = out
    ktaps = kd * kh * kw
    step = np.uint64(sw)
    for c in range(C):
        for tap in range(ktaps):
            a = tap // (kh * kw)
            b = (tap // kw) % kh
            e = tap % kw
            src = cols[c * ktaps + tap]
            x_off = e * dw - pw
            x_lo, x_hi = valid_range(ow, sw, x_off, W)
            for z in range(od):
                iz = z * sd - pd + a * dd
                if iz < 0 or iz >= D:
                    continue
                for y in range(oh):
                    iy = y * sh - ph + b * dh
                    if iy < 0 or iy >= H:
                        continue
                    dst = img[c, iz, iy]
                    # Unsigned indices, as in im2col_into (2-6x faster than signed ones).
                    dst0 = np.uint64(x_lo * sw + x_off)
                    src0 = np.uint64(col0 + (z * oh + y) * ow + x_lo)
                    for i in range(np.uint64(x_hi - x_lo)):
                        dst[dst0 + step * i] += src[src0 + i]


def as_3d_geometry(values, fill):
    """Left-pad a per-axis tuple of length 1-3 to length 3 with ``fill``."""
    values = tuple(int(v) for v in values)
    if not 1 <= len(values) <= 3:
        raise ValueError(f"only 1 to 3 spatial dimensions are supported; got {len(values)}")
    return (fill,) * (3 - len(values)) + values


def as_3d_array(x, n_lead):
    """View ``x`` of shape ``(*lead, *spatial)`` with ``len(lead) == n_lead`` as ``(*lead, D, H, W)``."""
    spatial = x.shape[n_lead:]
    x = np.ascontiguousarray(x)
    if not x.flags.writeable:  # read-only arrays are another Numba type: avoid a recompile
        x = x.copy()
    return x.reshape(x.shape[:n_lead] + (1,) * (3 - len(spatial)) + spatial)
