"""Unshared (locally connected) N-d correlation with groups: forward, gradient wrt inputs,
gradient wrt weights, as one GEMM per (output position, group) over a batch chunk.

An unshared convolution has its own filter bank at every output position ``p``:

    y[n, m, p] = sum_{c, tap} w[m, p, c, tap] * x[n, g(m) * Cg + c, window(p, tap)]

so it is a batch of ``P * groups`` independent matrix products ``(nb, K) @ (K, Mg)`` with
``K = Cg * taps`` (the patch of one image at ``p``) and ``Mg = M // groups``. The kernels
gather the patches of a chunk of images into a ``(P, groups, nb, K)`` buffer (each
``(nb, K)`` block contiguous, ready for BLAS) through ``im2col_into`` and a cache-friendly
transposing copy, copy each position's ``(Mg, K)`` weights into one small reused block, run
the GEMMs, and scatter the results (``col2im_add`` for the input gradient). Nothing as large
as the weights is allocated besides the outputs: fresh memory costs page faults, which on
these machines cost more than the GEMMs.

Layouts (lower-rank problems are reshaped by the caller, see :func:`as_3d_unshared`):
images ``(N, C, D, H, W)``, outputs ``(N, M, od, oh, ow)``, weights
``(M, od, oh, ow, C // groups, kd, kh, kw)``: the legacy unshared layout
``(out, *out_spatial, in // groups, *kernel)`` in three spatial dims. Geometry arguments are
3-tuples of ints as in ``kernels.corr`` (padding sizes resolved by the caller). Shapes are checked
before any loop touches memory; the batch is
processed in chunks whose patch buffer stays under ``buffer_bytes`` (at least one image).

The per-position GEMMs are small (a chunk of images by one position's patch): they run on
one BLAS thread unless they are large and the machine is quiet
(``kernels.blas_threads.limit_threads``).

These are correlations: flipping the kernels (true convolution) is the caller's business.
"""

from __future__ import annotations

import numba
import numpy as np

from pytensor_nnet.kernels.blas_threads import limit_threads, restore_threads
from pytensor_nnet.kernels.im2col import col2im_add, im2col_into
from pytensor_nnet.shapes.conv import conv_output_size_3d

REGION_MISMATCH = "the unshared filters' output region (filters.shape[1:-4]) must match the output's spatial shape"


@numba.njit(cache=True)
def _check_params(channels, in_per_group, n_filters, groups, stride, dilation):
    if groups < 1:
        raise ValueError("num_groups must be >= 1")
    if channels != in_per_group * groups:
        raise ValueError(
            "input channels must equal the unshared filters' input channels (filters.shape[-4]) * num_groups"
        )
    if n_filters % groups != 0:
        raise ValueError("num_groups must divide the number of filters (output channels)")
    for i in range(3):
        if stride[i] < 1:
            raise ValueError("subsample (stride) must be >= 1")
        if dilation[i] < 1:
            raise ValueError("filter_dilation must be >= 1")


@numba.njit(cache=True)
def _geometry(in_size, ksize, stride, pad_lo, pad_hi, dilation):
    out = conv_output_size_3d(in_size, ksize, stride, pad_lo, pad_hi, dilation)
    if out[0] < 1 or out[1] < 1 or out[2] < 1:
        raise ValueError("the (dilated) filter is larger than the padded input")
    return pad_lo, out


@numba.njit(cache=True)
def _chunk_size(batch, patch_elements, itemsize, buffer_bytes):
    """Images per chunk: as many as fit in ``buffer_bytes`` (bigger GEMMs), at least one."""
    fitting = buffer_bytes // max(patch_elements * itemsize, 1)
    return max(1, min(batch, fitting))


@numba.njit(cache=True)
def _gather_patches(x, n0, patches, cols, ksize, stride, pad, dilation, out):
    """``patches[p, g, i, (c, tap)] = x[n0 + i, g * Cg + c, window(p, tap)]`` (0 in the padding).

    Each image goes through ``im2col_into`` (rows ``(channel, tap)``, columns positions) into
    ``cols`` (C * taps, P), then each column block is copied to its position's row."""
    P, groups, nb, K = patches.shape
    for i in range(nb):
        im2col_into(x[n0 + i], cols, 0, ksize, stride, pad, dilation, out)
        for g in range(groups):
            block = cols[g * K : (g + 1) * K]
            for p in range(P):
                dst = patches[p, g, i]
                for k in range(K):
                    dst[k] = block[k, p]


@numba.njit(cache=True)
def _scatter_patches_add(dpatches, n0, dx, cols, ksize, stride, pad, dilation, out):
    """Adjoint of :func:`_gather_patches`: add ``dpatches`` back into ``dx[n0:n0 + nb]``."""
    P, groups, nb, K = dpatches.shape
    for i in range(nb):
        for g in range(groups):
            block = cols[g * K : (g + 1) * K]
            for p in range(P):
                src = dpatches[p, g, i]
                for k in range(K):
                    block[k, p] = src[k]
        col2im_add(cols, 0, dx[n0 + i], ksize, stride, pad, dilation, out)


@numba.njit(cache=True)
def _top_by_position(top3, n0, nb, groups, transpose):
    """``top3[n0:n0 + nb]`` (N, M, P) -> ``(P, groups, nb, Mg)``, or ``(P, groups, Mg, nb)`` (``transpose``)."""
    M, P = top3.shape[1], top3.shape[2]
    Mg = M // groups
    if transpose:
        buf = np.empty((P, groups, Mg, nb), dtype=top3.dtype)
    else:
        buf = np.empty((P, groups, nb, Mg), dtype=top3.dtype)
    for i in range(nb):
        for m in range(M):
            g, j = m // Mg, m % Mg
            src = top3[n0 + i, m]
            for p in range(P):
                if transpose:
                    buf[p, g, j, i] = src[p]
                else:
                    buf[p, g, i, j] = src[p]
    return buf


@numba.njit(cache=True)
def unshared_forward(x, w, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes):
    """Unshared correlation of ``x`` (N, C, D, H, W) with ``w`` (M, od, oh, ow, C // groups, kd, kh, kw).

    Returns ``y`` (N, M, od, oh, ow). ``(od, oh, ow)`` of ``w`` must be the output size.
    """
    N, C, D, H, W = x.shape
    M, wd, wh, ww, Cg, kd, kh, kw = w.shape
    _check_params(C, Cg, M, groups, stride, dilation)
    ksize = (kd, kh, kw)
    pad, out = _geometry((D, H, W), ksize, stride, pad_lo, pad_hi, dilation)
    if wd != out[0] or wh != out[1] or ww != out[2]:
        raise ValueError(REGION_MISMATCH)
    P = out[0] * out[1] * out[2]
    K = Cg * kd * kh * kw
    Mg = M // groups
    y = np.empty((N, M) + out, dtype=x.dtype)
    if N == 0 or M == 0:
        return y
    yv = y.reshape((N, M, P))
    w3 = np.ascontiguousarray(w).reshape((M, P, K))
    block = np.empty((Mg, K), dtype=x.dtype)
    cols = np.empty((C * kd * kh * kw, P), dtype=x.dtype)
    chunk = _chunk_size(N, P * C * kd * kh * kw, x.itemsize, buffer_bytes)
    threads = limit_threads(2 * chunk * K * Mg)
    for n0 in range(0, N, chunk):
        nb = min(chunk, N - n0)
        patches = np.empty((P, groups, nb, K), dtype=x.dtype)
        _gather_patches(x, n0, patches, cols, ksize, stride, pad, dilation, out)
        res = np.empty((P, groups, nb, Mg), dtype=x.dtype)
        for p in range(P):
            for g in range(groups):
                block[:] = w3[g * Mg : (g + 1) * Mg, p]
                np.dot(patches[p, g], block.T, res[p, g])
        for i in range(nb):
            for m in range(M):
                g, j = m // Mg, m % Mg
                dst = yv[n0 + i, m]
                for p in range(P):
                    dst[p] = res[p, g, i, j]
    restore_threads(threads)
    return y


@numba.njit(cache=True)
def unshared_grad_inputs(w, top, in_size, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes):
    """Gradient wrt the images of :func:`unshared_forward`: ``dx`` (N, C, *in_size) from ``top``."""
    M, wd, wh, ww, Cg, kd, kh, kw = w.shape
    N, Mt, od, oh, ow = top.shape
    if Mt != M:
        raise ValueError("output gradient channels (topgrad.shape[1]) must equal the number of filters")
    C = Cg * groups
    _check_params(C, Cg, M, groups, stride, dilation)
    for i in range(3):
        if in_size[i] < 1:
            raise ValueError("input shape must be positive")
    ksize = (kd, kh, kw)
    pad, out = _geometry(in_size, ksize, stride, pad_lo, pad_hi, dilation)
    if out[0] != od or out[1] != oh or out[2] != ow:
        raise ValueError("the output gradient's spatial shape does not match a convolution of the given input shape")
    if wd != od or wh != oh or ww != ow:
        raise ValueError(REGION_MISMATCH)
    P = od * oh * ow
    K = Cg * kd * kh * kw
    dx = np.zeros((N, C) + (in_size[0], in_size[1], in_size[2]), dtype=top.dtype)
    if N == 0 or M == 0:
        return dx
    Mg = M // groups
    w3 = np.ascontiguousarray(w).reshape((M, P, K))
    block = np.empty((Mg, K), dtype=top.dtype)
    top3 = np.ascontiguousarray(top).reshape((N, M, P))
    cols = np.empty((C * kd * kh * kw, P), dtype=top.dtype)
    chunk = _chunk_size(N, P * C * kd * kh * kw, top.itemsize, buffer_bytes)
    threads = limit_threads(2 * chunk * K * Mg)
    for n0 in range(0, N, chunk):
        nb = min(chunk, N - n0)
        dy = _top_by_position(top3, n0, nb, groups, False)
        dpatches = np.empty((P, groups, nb, K), dtype=top.dtype)
        for p in range(P):
            for g in range(groups):
                block[:] = w3[g * Mg : (g + 1) * Mg, p]
                np.dot(dy[p, g], block, dpatches[p, g])
        _scatter_patches_add(dpatches, n0, dx, cols, ksize, stride, pad, dilation, out)
    restore_threads(threads)
    return dx


@numba.njit(cache=True)
def unshared_grad_weights(x, top, ksize, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes):
    """Gradient wrt the filters of :func:`unshared_forward`: (M, od, oh, ow, C // groups, *ksize)."""
    N, C, D, H, W = x.shape
    Nt, M, od, oh, ow = top.shape
    if Nt != N:
        raise ValueError("output gradient batch size (topgrad.shape[0]) must equal the input batch size")
    if groups < 1 or C % groups != 0:
        raise ValueError("num_groups must divide the input channels")
    Cg = C // groups
    _check_params(C, Cg, M, groups, stride, dilation)
    for i in range(3):
        if ksize[i] < 1:
            raise ValueError("filter shape must be positive")
    pad, out = _geometry((D, H, W), ksize, stride, pad_lo, pad_hi, dilation)
    if out[0] != od or out[1] != oh or out[2] != ow:
        raise ValueError("the output gradient's spatial shape does not match a convolution with the given filter shape")
    kd, kh, kw = ksize
    P = od * oh * ow
    K = Cg * kd * kh * kw
    Mg = M // groups
    dw = np.zeros((M, P, K), dtype=x.dtype)  # stays zero for an empty batch
    block = np.empty((Mg, K), dtype=x.dtype)
    if N > 0 and M > 0:
        top3 = np.ascontiguousarray(top).reshape((N, M, P))
        cols = np.empty((C * kd * kh * kw, P), dtype=x.dtype)
        chunk = _chunk_size(N, P * C * kd * kh * kw, x.itemsize, buffer_bytes)
        threads = limit_threads(2 * chunk * K * Mg)
        for n0 in range(0, N, chunk):
            nb = min(chunk, N - n0)
            patches = np.empty((P, groups, nb, K), dtype=x.dtype)
            _gather_patches(x, n0, patches, cols, ksize, stride, pad, dilation, out)
            dyt = _top_by_position(top3, n0, nb, groups, True)
            for p in range(P):
                for g in range(groups):
                    np.dot(dyt[p, g], patches[p, g], block)
                    dw[g * Mg : (g + 1) * Mg, p] += block
        restore_threads(threads)
    return dw.reshape((M, od, oh, ow, Cg, kd, kh, kw))


def as_3d_unshared(w, convdim):
    """View unshared weights ``(M, *out, Cg, *kernel)`` with ``convdim`` spatial dims as
    ``(M, od, oh, ow, Cg, kd, kh, kw)`` (size-1 leading spatial axes; contiguous, writeable)."""
    w = np.ascontiguousarray(w)
    if not w.flags.writeable:  # read-only arrays are another Numba type: avoid a recompile
        w = w.copy()
    ones = (1,) * (3 - convdim)
    M, out, Cg, k = w.shape[0], w.shape[1 : 1 + convdim], w.shape[1 + convdim], w.shape[2 + convdim :]
    return w.reshape((M,) + ones + tuple(out) + (Cg,) + ones + tuple(k))


def from_3d_unshared(w, convdim):
    """Inverse of :func:`as_3d_unshared`."""
    M, Cg = w.shape[0], w.shape[4]
    return w.reshape((M,) + w.shape[4 - convdim : 4] + (Cg,) + w.shape[8 - convdim :])
