"""Kernels of the sparse-matrix convolution and sparse max pooling (numpy + Numba).

The sparse-matrix convolution turns an image batch into a *patch stack* with one sparse
matrix ``M``. For an image of ``C`` channels and spatial shape ``in_sp``, a kernel of spatial
shape ``k_sp`` (``ksize = C * prod(k_sp)`` taps, channel first) and ``outsize`` output
positions, ``M`` has shape ``(outsize * ksize, C * prod(in_sp))`` and

    (M @ image)[o * ksize + t] = image[pixel read by tap t of output position o]

(zero when that tap falls in the zero padding of ``mode="full"``), so ``M`` holds at most one
1 per row. Everything here is N-d: geometry is computed on 3-d shapes whose leading axes have
size 1, so a single loop nest serves 1-d, 2-d and 3-d.

Argument orders here are *axis order* (..., rows, cols). The legacy public API orders steps
the other way round (``(dx, dy)``: column step first); ``pytensor_nnet.sparse.convolution``
does that conversion.

Sparse matrices are passed as their compressed parts ``(data, indices, indptr)``;
``check_compressed`` validates them before any loop indexes with them, so no kernel reads or
writes out of bounds. Loops are serial: they are memory-bound, and BLAS (``np.dot``) owns
the threads; its per-image GEMMs run on one BLAS thread unless they are large and the machine
is quiet (``kernels.blas_threads.limit_threads``).
"""

from __future__ import annotations

import numba
import numpy as np

from pytensor_nnet.kernels.blas_threads import limit_threads, restore_threads

__all__ = [
    "GEOMETRY_OK",
    "GEOMETRY_BAD_STEP",
    "GEOMETRY_KERNEL_TOO_LARGE",
    "GEOMETRY_BAD_SIZE",
    "geometry",
    "patch_sources",
    "csr_from_sources",
    "csc_from_sources",
    "local_csc_from_sources",
    "group_entries",
    "check_compressed",
    "sparse_conv_forward",
    "sparse_conv_grad_images",
    "sparse_conv_grad_kerns",
    "sparse_max_pool_forward",
    "sparse_max_pool_grad",
]

# ---------------------------------------------------------------------------------------
# Geometry and the index builder
# ---------------------------------------------------------------------------------------

GEOMETRY_OK = 0
GEOMETRY_BAD_STEP = 1
GEOMETRY_KERNEL_TOO_LARGE = 2
GEOMETRY_BAD_SIZE = 3


@numba.njit(cache=True)
def geometry(in_sp, k_sp, strides, full):
    """Padding and output shape of a valid/full correlation, one spatial axis at a time.

    Parameters
    ----------
    in_sp, k_sp, strides : int64 arrays of shape (ndim,)
        Image shape, kernel shape and steps, in axis order.
    full : bool
        ``True`` for ``mode="full"`` (zero padding of ``k - 1`` on both sides).

    Returns
    -------
    pads : int64 array (ndim,)
        Padding before each axis.
    out_sp : int64 array (ndim,)
        Output shape: ``(n + 2 * pad - k) // step + 1``.
    code : int
        ``GEOMETRY_OK`` or the first problem found (``GEOMETRY_BAD_SIZE``: a size < 1,
        ``GEOMETRY_BAD_STEP``: a step < 1, ``GEOMETRY_KERNEL_TOO_LARGE``: valid mode and a
        kernel longer than the image).
    """
    nd = in_sp.shape[0]
    pads = np.zeros(nd, np.int64)
    out_sp = np.ones(nd, np.int64)
    for d in range(nd):
        if in_sp[d] < 1 or k_sp[d] < 1:
            return pads, out_sp, GEOMETRY_BAD_SIZE
        if strides[d] < 1:
            return pads, out_sp, GEOMETRY_BAD_STEP
    for d in range(nd):
        if full:
            pads[d] = k_sp[d] - 1
        elif k_sp[d] > in_sp[d]:
            return pads, out_sp, GEOMETRY_KERNEL_TOO_LARGE
        out_sp[d] = (in_sp[d] + 2 * pads[d] - k_sp[d]) // strides[d] + 1
    return pads, out_sp, GEOMETRY_OK


@numba.njit(cache=True)
def _as_3d(shape, fill):
    out = np.full(3, fill, np.int64)
    nd = shape.shape[0]
    for d in range(nd):
        out[3 - nd + d] = shape[d]
    return out


@numba.njit(cache=True)
def patch_sources(channels, in_sp, k_sp, strides, pads, out_sp):
    """Input pixel read by each (output position, tap), ``-1`` in the zero padding.

    Returns an int64 array ``src`` of length ``outsize * ksize`` with
    ``src[o * ksize + t]`` the raster index (channel first) of the pixel that tap ``t``
    (``(c, *kernel offsets)`` in C order) of output position ``o`` (C order) reads.
    All shape arguments are int64 arrays in axis order, of the same length (1 to 3).
    """
    i3 = _as_3d(in_sp, 1)
    k3 = _as_3d(k_sp, 1)
    s3 = _as_3d(strides, 1)
    p3 = _as_3d(pads, 0)
    o3 = _as_3d(out_sp, 1)
    in_size = i3[0] * i3[1] * i3[2]
    ksize = channels * k3[0] * k3[1] * k3[2]
    outsize = o3[0] * o3[1] * o3[2]
    src = np.empty(outsize * ksize, np.int64)
    r = 0
    for oz in range(o3[0]):
        for oy in range(o3[1]):
            for ox in range(o3[2]):
                for c in range(channels):
                    for a in range(k3[0]):
                        z = oz * s3[0] - p3[0] + a
                        for b in range(k3[1]):
                            y = oy * s3[1] - p3[1] + b
                            for e in range(k3[2]):
                                x = ox * s3[2] - p3[2] + e
                                if 0 <= z < i3[0] and 0 <= y < i3[1] and 0 <= x < i3[2]:
                                    src[r] = c * in_size + (z * i3[1] + y) * i3[2] + x
                                else:
                                    src[r] = -1
                                r += 1
    return src


@numba.njit(cache=True)
def csr_from_sources(src):
    """CSR ``(indices, indptr)`` (int32) of the 0/1 patch matrix whose row ``r`` reads ``src[r]``."""
    n = src.shape[0]
    indptr = np.zeros(n + 1, np.int32)
    nnz = 0
    for r in range(n):
        if src[r] >= 0:
            nnz += 1
        indptr[r + 1] = nnz
    indices = np.empty(nnz, np.int32)
    k = 0
    for r in range(n):
        if src[r] >= 0:
            indices[k] = src[r]
            k += 1
    return indices, indptr


@numba.njit(cache=True)
def group_entries(keys, n_groups):
    """Counting sort: entries ``k`` with ``keys[k] >= 0`` grouped by key, stable.

    Returns ``order`` (int64, the entries of group ``g`` are
    ``order[ptr[g]:ptr[g + 1]]`` in increasing ``k``) and ``ptr`` (int32, n_groups + 1).
    """
    ptr = np.zeros(n_groups + 1, np.int32)
    for k in range(keys.shape[0]):
        if keys[k] >= 0:
            ptr[keys[k] + 1] += 1
    for j in range(n_groups):
        ptr[j + 1] += ptr[j]
    fill = ptr[:-1].copy()
    order = np.empty(ptr[n_groups], np.int64)
    for k in range(keys.shape[0]):
        j = keys[k]
        if j >= 0:
            order[fill[j]] = k
            fill[j] += 1
    return order, ptr


@numba.njit(cache=True)
def csc_from_sources(src, in_size):
    """CSC ``(indices, indptr)`` (int32, rows sorted) of the patch matrix of ``src``.

    This is the layout of the legacy ``ConvolutionIndices.evaluate`` with weight sharing.
    """
    order, indptr = group_entries(src, in_size)
    return order.astype(np.int32), indptr


@numba.njit(cache=True)
def local_csc_from_sources(src, nkern, ksize, in_size):
    """CSC parts of the sparse-local-connections matrix (no weight sharing).

    The matrix has shape ``(nkern * outsize, in_size)``: row ``n * outsize + o`` is output
    unit ``o`` of feature map ``n`` and holds one weight per tap of its receptive field.
    Weights are numbered ``(n * outsize + o) * ksize + t``; ``kmap[k]`` is the weight
    stored at CSC entry ``k`` (rows sorted within each column).
    """
    m = src.shape[0]
    cols = np.empty(nkern * m, np.int64)
    for n in range(nkern):
        cols[n * m : (n + 1) * m] = src
    order, indptr = group_entries(cols, in_size)
    indices = np.empty(order.shape[0], np.int32)
    for k in range(order.shape[0]):
        indices[k] = order[k] // ksize
    return indices, indptr, order


@numba.njit(cache=True)
def check_compressed(indptr, indices, n_major, n_minor):
    """Raise ``ValueError`` unless ``(indices, indptr)`` is a valid compressed pattern.

    ``n_major`` is the number of rows (CSR) or columns (CSC), ``n_minor`` the other size.
    """
    if indptr.shape[0] != n_major + 1:
        raise ValueError("sparse matrix: indptr does not have n_major + 1 entries")
    if indptr[0] != 0 or indptr[n_major] > indices.shape[0]:
        raise ValueError("sparse matrix: indptr is out of range")
    for i in range(n_major):
        if indptr[i + 1] < indptr[i]:
            raise ValueError("sparse matrix: indptr is not non-decreasing")
    for k in range(indptr[n_major]):
        if indices[k] < 0 or indices[k] >= n_minor:
            raise ValueError("sparse matrix: an index is out of range")


# ---------------------------------------------------------------------------------------
# Convolution by the patch matrix M (CSR parts), and its two gradients
# ---------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _gather_patches(image, data, indices, indptr, patches):
    """``patches.ravel() = M @ image`` for one raster image (M in CSR parts)."""
    flat = patches.reshape(-1)
    for r in range(flat.shape[0]):
        acc = 0.0
        for k in range(indptr[r], indptr[r + 1]):
            acc += data[k] * image[indices[k]]
        flat[r] = acc


@numba.njit(cache=True)
def _scatter_patches(dpatches, data, indices, indptr, dimage):
    """``dimage += M.T @ dpatches.ravel()`` (the adjoint of ``_gather_patches``)."""
    flat = dpatches.reshape(-1)
    for r in range(flat.shape[0]):
        v = flat[r]
        for k in range(indptr[r], indptr[r + 1]):
            dimage[indices[k]] += data[k] * v


@numba.njit(cache=True)
def sparse_conv_forward(kerns, images, data, indices, indptr):
    """Feature maps of a sparse-matrix convolution.

    Parameters
    ----------
    kerns : (nkern, ksize) array
    images : (batch, in_size) array, raster order, channel first
    data, indices, indptr : CSR parts of M, shape ``(outsize * ksize, in_size)``

    Returns
    -------
    (batch, nkern, outsize) array: ``out[b] = kerns @ (M @ images[b]).reshape(outsize, ksize).T``
    """
    kerns = np.ascontiguousarray(kerns)
    batch = images.shape[0]
    nkern, ksize = kerns.shape
    outsize = (indptr.shape[0] - 1) // ksize
    out = np.empty((batch, nkern, outsize), kerns.dtype)
    patches = np.empty((outsize, ksize), kerns.dtype)
    threads = limit_threads(2 * nkern * ksize * outsize)
    for b in range(batch):
        _gather_patches(images[b], data, indices, indptr, patches)
        np.dot(kerns, patches.T, out[b])
    restore_threads(threads)
    return out


@numba.njit(cache=True)
def sparse_conv_grad_images(kerns, gout, data, indices, indptr, in_size):
    """Gradient of ``sparse_conv_forward`` wrt ``images``: ``(batch, in_size)``.

    ``gout`` is ``(batch, nkern, outsize)``.
    """
    kerns = np.ascontiguousarray(kerns)
    batch, nkern, outsize = gout.shape
    ksize = kerns.shape[1]
    dimages = np.zeros((batch, in_size), kerns.dtype)
    dpatches = np.empty((outsize, ksize), kerns.dtype)
    threads = limit_threads(2 * nkern * ksize * outsize)
    for b in range(batch):
        np.dot(np.ascontiguousarray(gout[b]).T, kerns, dpatches)
        _scatter_patches(dpatches, data, indices, indptr, dimages[b])
    restore_threads(threads)
    return dimages


@numba.njit(cache=True)
def sparse_conv_grad_kerns(images, gout, data, indices, indptr, ksize):
    """Gradient of ``sparse_conv_forward`` wrt ``kerns``: ``(nkern, ksize)``."""
    batch, nkern, outsize = gout.shape
    dkerns = np.zeros((nkern, ksize), gout.dtype)
    patches = np.empty((outsize, ksize), gout.dtype)
    step = np.empty((nkern, ksize), gout.dtype)
    threads = limit_threads(2 * nkern * ksize * outsize)
    for b in range(batch):
        _gather_patches(images[b], data, indices, indptr, patches)
        np.dot(np.ascontiguousarray(gout[b]), patches, step)
        dkerns += step
    restore_threads(threads)
    return dkerns


# ---------------------------------------------------------------------------------------
# Max pooling over the windows of a patch matrix
# ---------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _window_argmax(image, data, indices, indptr, r0, ksize):
    """Row (of M) holding the max of the ``ksize`` patch values starting at row ``r0``.

    Ties go to the first tap in raster order. Returns ``(row, value)``.
    """
    best_r = r0
    best = 0.0
    for t in range(ksize):
        r = r0 + t
        acc = 0.0
        for k in range(indptr[r], indptr[r + 1]):
            acc += data[k] * image[indices[k]]
        if t == 0 or acc > best:
            best = acc
            best_r = r
    return best_r, best


@numba.njit(cache=True)
def sparse_max_pool_forward(images, data, indices, indptr, ksize):
    """Max over each window of ``ksize`` consecutive patch rows: ``(n, outsize)``."""
    n = images.shape[0]
    outsize = (indptr.shape[0] - 1) // ksize
    out = np.empty((n, outsize), images.dtype)
    for i in range(n):
        for o in range(outsize):
            _, out[i, o] = _window_argmax(images[i], data, indices, indptr, o * ksize, ksize)
    return out


@numba.njit(cache=True)
def sparse_max_pool_grad(images, gout, data, indices, indptr, ksize):
    """Gradient of ``sparse_max_pool_forward`` wrt ``images`` (argmax routing)."""
    n, in_size = images.shape
    outsize = gout.shape[1]
    dimages = np.zeros((n, in_size), gout.dtype)
    for i in range(n):
        image = images[i]
        for o in range(outsize):
            r, _ = _window_argmax(image, data, indices, indptr, o * ksize, ksize)
            g = gout[i, o]
            for k in range(indptr[r], indptr[r + 1]):
                dimages[i, indices[k]] += data[k] * g
    return dimages


def as_int_array(values):
    """``np.int64`` array of a tuple of ints (a helper for callers of the kernels)."""
    return np.asarray(values, dtype=np.int64).reshape(-1)
