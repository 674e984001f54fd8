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

# Padding codes resolved against the (dilated) kernel size at run time, so that "full" and
# "half" work when the kernel size is not known when the graph is built.
PAD_FULL = -1
PAD_HALF = -2


@numba.njit(cache=True, inline="always")
def _valid_range(out_size, stride, offset, in_size):
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
    # Specialisations of one loop nest (``row_stride`` is a constant after inlining): with a
    # unit stride along the rows each run of valid pixels is one block copy (measured
    # 1.5-2.5x faster), with stride 2 LLVM vectorises the strided loads (~15% faster). A
    # run-time branch on the stride inside the loop nest slows the strided copy by ~25%.
    if stride[2] == 1:
        _im2col_rows(img, cols, col0, ksize, stride, pad, dilation, out, 1)
    elif stride[2] == 2:
        _im2col_rows(img, cols, col0, ksize, stride, pad, dilation, out, 2)
    else:
        _im2col_rows(img, cols, col0, ksize, stride, pad, dilation, out, 0)


@numba.njit(cache=True, inline="always")
def _im2col_rows(img, cols, col0, ksize, stride, pad, dilation, out, row_stride):
    C, D, H, W = img.shape
    kd, kh, kw = ksize
    sd, sh, sw = stride
    pd, ph, pw = pad
    dd, dh, dw = dilation
    od, oh, ow = out
    ktaps = kd * kh * kw
    for task in range(C * ktaps):
        c = task // ktaps
        tap = task % ktaps
        a = tap // (kh * kw)
        b = (tap // kw) % kh
        e = tap % kw
        row = task
        x_off = e * dw - pw
        x_lo, x_hi = _valid_range(ow, sw, x_off, W)
        for z in range(od):
            iz = z * sd - pd + a * dd
            for y in range(oh):
                iy = y * sh - ph + b * dh
                base = col0 + (z * oh + y) * ow
                if iz < 0 or iz >= D or iy < 0 or iy >= H:
                    for x in range(ow):
                        cols[row, base + x] = 0
                    continue
                for x in range(x_lo):
                    cols[row, base + x] = 0
                src = img[c, iz, iy]
                if row_stride == 1:
                    cols[row, base + x_lo:base + x_hi] = src[x_lo + x_off:x_hi + x_off]
                elif row_stride == 2:
                    for x in range(x_lo, x_hi):
                        cols[row, base + x] = src[x * 2 + x_off]
                else:
                    for x in range(x_lo, x_hi):
                        cols[row, base + x] = src[x * sw + x_off]
                for x in range(x_hi, ow):
                    cols[row, base + x] = 0


@numba.njit(cache=True)
def col2im_add(cols, col0, img, ksize, stride, pad, dilation, out):
    """Scatter-add ``cols[:, col0:col0 + prod(out)]`` into ``img`` (C, D, H, W); adjoint of im2col."""
    # Specialised on the row stride like im2col_into (stride 2: ~20% faster).
    if stride[2] == 1:
        _col2im_rows(cols, col0, img, ksize, stride, pad, dilation, out, 1)
    elif stride[2] == 2:
        _col2im_rows(cols, col0, img, ksize, stride, pad, dilation, out, 2)
    else:
        _col2im_rows(cols, col0, img, ksize, stride, pad, dilation, out, 0)


@numba.njit(cache=True, inline="always")
def _col2im_rows(cols, col0, img, ksize, stride, pad, dilation, out, row_stride):
    C, D, H, W = img.shape
    kd, kh, kw = ksize
    sd, sh, sw = stride
    pd, ph, pw = pad
    dd, dh, dw = dilation
    od, oh, ow = out
    ktaps = kd * kh * kw
    for c in range(C):
        for tap in range(ktaps):
            a = tap // (kh * kw)
            b = (tap // kw) % kh
            e = tap % kw
            row = c * ktaps + tap
            x_off = e * dw - pw
            x_lo, x_hi = _valid_range(ow, sw, x_off, W)
            for z in range(od):
                iz = z * sd - pd + a * dd
                if iz < 0 or iz >= D:
                    continue
                for y in range(oh):
                    iy = y * sh - ph + b * dh
                    if iy < 0 or iy >= H:
                        continue
                    base = col0 + (z * oh + y) * ow
                    dst = img[c, iz, iy]
                    if row_stride == 1:
                        for x in range(x_lo, x_hi):
                            dst[x + x_off] += cols[row, base + x]
                    elif row_stride == 2:
                        for x in range(x_lo, x_hi):
                            dst[x * 2 + x_off] += cols[row, base + x]
                    else:
                        for x in range(x_lo, x_hi):
                            dst[x * sw + x_off] += cols[row, base + x]


@numba.njit(cache=True)
def resolve_pads(pad_before, pad_after, ksize, dilation):
    """Turn padding codes (``PAD_FULL``, ``PAD_HALF`` or a size) into sizes, per axis."""
    lo = [0, 0, 0]
    hi = [0, 0, 0]
    for i in range(3):
        dk = (ksize[i] - 1) * dilation[i] + 1
        for side in range(2):
            code = pad_before[i] if side == 0 else pad_after[i]
            if code == PAD_FULL:
                value = dk - 1
            elif code == PAD_HALF:
                value = dk // 2
            else:
                value = code
            if side == 0:
                lo[i] = value
            else:
                hi[i] = value
    return (lo[0], lo[1], lo[2]), (hi[0], hi[1], hi[2])


@numba.njit(cache=True)
def conv_out_size(in_size, ksize, stride, pad_lo, pad_hi, dilation):
    """Output spatial size ``(od, oh, ow)`` of a correlation; entries < 1 mean no output."""
    res = [0, 0, 0]
    for i in range(3):
        dk = (ksize[i] - 1) * dilation[i] + 1
        span = in_size[i] + pad_lo[i] + pad_hi[i] - dk
        if span < 0:
            res[i] = 0
        else:
            res[i] = span // stride[i] + 1
    return (res[0], res[1], res[2])


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
