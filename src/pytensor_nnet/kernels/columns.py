"""Whole-batch im2col / col2im in the column layout of the public toolkit (``pytensor_nnet.im2col``).

Images are 5-d ``(N, C, D, H, W)`` (1-d and 2-d problems have unit leading spatial axes).
The column matrix of the batch is ``(C * kd * kh * kw, od * oh * ow * N)``:

    cols[((c * kd + a) * kh + b) * kw + e, ((z * oh + y) * ow + x) * N + n]
        = img[n, c, z * sd - pd + a * dd, y * sh - ph + b * dh, x * sw - pw + e * dw]

(zero in the padding): rows are ``(channel, *kernel taps)`` as in ``kernels.im2col``, columns
are ``(*output position, image)`` in C order, the image index fastest - the layout of the
CS231n ``im2col_cython`` helpers that CS231n-style hand-written backprop code uses, so that
``dout.transpose(1, 2, 3, 0).reshape(F, -1)`` lines up with the columns.

Both functions run the per-image kernels of ``kernels.im2col`` on blocks of ``BLOCK`` images
and interleave (or de-interleave) the blocks' columns, so writes stay contiguous.
"""

from __future__ import annotations

import numba
import numpy as np

from pytensor_nnet.kernels.im2col import col2im_add, im2col_into

#: Images per block: the interleaved writes touch ``BLOCK`` consecutive columns at a time.
BLOCK = 16


@numba.njit(cache=True)
def im2col_batch(x, ksize, stride, pad, dilation, out):
    """Columns ``(C * prod(ksize), prod(out) * N)`` of the images ``x`` (N, C, D, H, W).

    ``pad`` is the before-padding per axis; ``out`` the output size (which fixes the
    after-padding).
    """
    N, C = x.shape[0], x.shape[1]
    rows = C * ksize[0] * ksize[1] * ksize[2]
    P = out[0] * out[1] * out[2]
    cols = np.empty((rows, P * N), dtype=x.dtype)
    if N == 0 or rows == 0 or P == 0:
        return cols
    nb = min(BLOCK, N)
    buf = np.empty((rows, nb * P), dtype=x.dtype)
    for n0 in range(0, N, nb):
        m = min(nb, N - n0)
        for i in range(m):
            im2col_into(x[n0 + i], buf, i * P, ksize, stride, pad, dilation, out)
        for r in range(rows):
            src = buf[r]
            dst = cols[r]
            for p in range(P):
                for i in range(m):
                    dst[p * N + n0 + i] = src[i * P + p]
    return cols


@numba.njit(cache=True)
def col2im_batch(cols, x_shape, ksize, stride, pad, dilation, out):
    """Adjoint of :func:`im2col_batch`: scatter-add the columns into images of ``x_shape``
    (N, C, D, H, W); overlapping windows accumulate, padding is dropped."""
    N, C, D, H, W = x_shape
    rows = C * ksize[0] * ksize[1] * ksize[2]
    P = out[0] * out[1] * out[2]
    if cols.shape[0] != rows or cols.shape[1] != P * N:
        raise ValueError("col2im: cols.shape does not fit x_shape, kernel_shape and the output size")
    x = np.zeros((N, C, D, H, W), dtype=cols.dtype)
    if N == 0 or rows == 0 or P == 0:
        return x
    nb = min(BLOCK, N)
    buf = np.empty((rows, nb * P), dtype=cols.dtype)
    for n0 in range(0, N, nb):
        m = min(nb, N - n0)
        for r in range(rows):
            src = cols[r]
            dst = buf[r]
            for p in range(P):
                for i in range(m):
                    dst[i * P + p] = src[p * N + n0 + i]
        for i in range(m):
            col2im_add(buf, i * P, x[n0 + i], ksize, stride, pad, dilation, out)
    return x
