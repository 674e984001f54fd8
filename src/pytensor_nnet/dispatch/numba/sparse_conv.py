"""Numba registrations for the sparse-convolution and sparse max-pooling Ops.

Each implementation validates its inputs (shapes, compressed indices) in nopython mode, then
calls the cached kernels of ``pytensor_nnet.kernels.sparse_conv``. The cache keys follow the code
(see ``fingerprint``): this module and the kernels it calls.
"""

from __future__ import annotations

import sys

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import (
    default_hash_key_from_props,
    register_funcify_and_cache_key,
)
from pytensor.tensor import get_vector_length

from pytensor_nnet.dispatch.numba.fingerprint import source_fingerprint
from pytensor_nnet.kernels import blas_threads
from pytensor_nnet.kernels import sparse_conv as kernels
from pytensor_nnet.sparse.convolution import (
    ConvolutionIndices,
    SparseConv,
    SparseConvGradImages,
    SparseConvGradKernels,
    SparseMaxPool,
    SparseMaxPoolGrad,
)

CACHE_VERSION = 1
KERNEL_FINGERPRINT = source_fingerprint(sys.modules[__name__], kernels, blas_threads)

_check_compressed = kernels.check_compressed
_geometry = kernels.geometry
_patch_sources = kernels.patch_sources
_csc_from_sources = kernels.csc_from_sources
_local_csc_from_sources = kernels.local_csc_from_sources
_BAD_STEP = kernels.GEOMETRY_BAD_STEP
_BAD_SIZE = kernels.GEOMETRY_BAD_SIZE
_TOO_LARGE = kernels.GEOMETRY_KERNEL_TOO_LARGE


def _cache_key(op, **fields):
    return default_hash_key_from_props(op, cache_version=CACHE_VERSION, kernels=KERNEL_FINGERPRINT, **fields)


def _csr_parts(fmt):
    """A nopython function: validated CSR ``(data, indices, indptr, n_rows, n_cols)`` of a
    ``fmt`` patch matrix."""
    if fmt == "csr":

        @numba_basic.numba_njit
        def parts(M):
            n_rows, n_cols = M.shape
            _check_compressed(M.indptr, M.indices, n_rows, n_cols)
            return M.data, M.indices, M.indptr, n_rows, n_cols

    else:

        @numba_basic.numba_njit
        def parts(M):
            n_rows, n_cols = M.shape
            _check_compressed(M.indptr, M.indices, n_cols, n_rows)
            csr = M.tocsr()
            return csr.data, csr.indices, csr.indptr, n_rows, n_cols

    return parts


# ---------------------------------------------------------------------------------------
# ConvolutionIndices
# ---------------------------------------------------------------------------------------


@register_funcify_and_cache_key(ConvolutionIndices)
def numba_funcify_ConvolutionIndices(op, node, **kwargs):
    nd = get_vector_length(node.inputs[1])
    has_channels = get_vector_length(node.inputs[0]) == nd + 1
    full = op.mode == "full"

    @numba_basic.numba_njit
    def sources(inshp, kshp, strides):
        inshp = inshp.astype(np.int64)
        if has_channels:
            channels = inshp[0]
            in_sp = inshp[1:]
        else:
            channels = np.int64(1)
            in_sp = inshp
        k_sp = kshp.astype(np.int64)
        axis_strides = strides[::-1].astype(np.int64)
        pads, out_sp, code = _geometry(in_sp, k_sp, axis_strides, full)
        if channels < 1 or code == _BAD_SIZE:
            raise ValueError("ConvolutionIndices: inshp and kshp entries must be positive")
        if code == _BAD_STEP:
            raise ValueError("ConvolutionIndices: strides must be positive")
        if code == _TOO_LARGE:
            raise ValueError("ConvolutionIndices: kshp is larger than inshp in mode 'valid'")
        src = _patch_sources(channels, in_sp, k_sp, axis_strides, pads, out_sp)
        in_size = channels * np.prod(in_sp)
        ksize = channels * np.prod(k_sp)
        return src, in_size, ksize, np.prod(out_sp), out_sp

    if op.ws:

        @numba_basic.numba_njit
        def convolution_indices(inshp, kshp, strides, nkern):
            src, in_size, ksize, outsize, out_sp = sources(inshp, kshp, strides)
            indices, indptr = _csc_from_sources(src, in_size)
            shape = np.array([outsize * ksize, in_size], dtype=np.int32)
            return indices, indptr, shape, out_sp

    else:

        @numba_basic.numba_njit
        def convolution_indices(inshp, kshp, strides, nkern):
            n = nkern.item()
            if n < 1:
                raise ValueError("ConvolutionIndices: nkern must be positive")
            src, in_size, ksize, outsize, out_sp = sources(inshp, kshp, strides)
            indices, indptr, kmap = _local_csc_from_sources(src, n, ksize, in_size)
            shape = np.array([n * outsize, in_size], dtype=np.int32)
            return indices, indptr, shape, out_sp, kmap

    return convolution_indices, _cache_key(op, nd=nd, has_channels=has_channels)


# ---------------------------------------------------------------------------------------
# Convolution and max pooling
# ---------------------------------------------------------------------------------------


@register_funcify_and_cache_key(SparseConv)
def numba_funcify_SparseConv(op, node, **kwargs):
    fmt = node.inputs[2].type.format
    parts = _csr_parts(fmt)
    forward = kernels.sparse_conv_forward

    @numba_basic.numba_njit
    def sparse_conv(kerns, images, M):
        data, indices, indptr, n_rows, n_cols = parts(M)
        if n_rows % kerns.shape[1] != 0:
            raise ValueError("SparseConv: the patch matrix rows are not a multiple of kerns.shape[1]")
        if images.shape[1] != n_cols:
            raise ValueError("SparseConv: images.shape[1] differs from the patch matrix columns")
        return forward(kerns, images, data, indices, indptr)

    return sparse_conv, _cache_key(op, fmt=fmt)


@register_funcify_and_cache_key(SparseConvGradImages)
def numba_funcify_SparseConvGradImages(op, node, **kwargs):
    fmt = node.inputs[2].type.format
    parts = _csr_parts(fmt)
    grad_images = kernels.sparse_conv_grad_images

    @numba_basic.numba_njit
    def sparse_conv_grad_images(kerns, gout, M):
        data, indices, indptr, n_rows, n_cols = parts(M)
        ksize = kerns.shape[1]
        if n_rows % ksize != 0 or gout.shape[1] != kerns.shape[0] or gout.shape[2] * ksize != n_rows:
            raise ValueError("SparseConvGradImages: gout, kerns and the patch matrix do not fit")
        return grad_images(kerns, gout, data, indices, indptr, n_cols)

    return sparse_conv_grad_images, _cache_key(op, fmt=fmt)


@register_funcify_and_cache_key(SparseConvGradKernels)
def numba_funcify_SparseConvGradKernels(op, node, **kwargs):
    fmt = node.inputs[2].type.format
    parts = _csr_parts(fmt)
    grad_kerns = kernels.sparse_conv_grad_kerns

    @numba_basic.numba_njit
    def sparse_conv_grad_kerns(images, gout, M):
        data, indices, indptr, n_rows, n_cols = parts(M)
        outsize = gout.shape[2]
        if images.shape[1] != n_cols:
            raise ValueError("SparseConvGradKernels: images.shape[1] differs from the patch matrix columns")
        if gout.shape[0] != images.shape[0] or outsize == 0 or n_rows % outsize != 0:
            raise ValueError("SparseConvGradKernels: gout, images and the patch matrix do not fit")
        return grad_kerns(images, gout, data, indices, indptr, n_rows // outsize)

    return sparse_conv_grad_kerns, _cache_key(op, fmt=fmt)


@register_funcify_and_cache_key(SparseMaxPool)
def numba_funcify_SparseMaxPool(op, node, **kwargs):
    fmt = node.inputs[1].type.format
    parts = _csr_parts(fmt)
    ksize = op.ksize
    pool = kernels.sparse_max_pool_forward

    @numba_basic.numba_njit
    def sparse_max_pool(images, M):
        data, indices, indptr, n_rows, n_cols = parts(M)
        if n_rows % ksize != 0:
            raise ValueError("SparseMaxPool: the patch matrix rows are not a multiple of ksize")
        if images.shape[1] != n_cols:
            raise ValueError("SparseMaxPool: images.shape[1] differs from the patch matrix columns")
        return pool(images, data, indices, indptr, ksize)

    return sparse_max_pool, _cache_key(op, fmt=fmt)


@register_funcify_and_cache_key(SparseMaxPoolGrad)
def numba_funcify_SparseMaxPoolGrad(op, node, **kwargs):
    fmt = node.inputs[2].type.format
    parts = _csr_parts(fmt)
    ksize = op.ksize
    pool_grad = kernels.sparse_max_pool_grad

    @numba_basic.numba_njit
    def sparse_max_pool_grad(images, gout, M):
        data, indices, indptr, n_rows, n_cols = parts(M)
        if n_rows % ksize != 0 or images.shape[1] != n_cols:
            raise ValueError("SparseMaxPoolGrad: images and the patch matrix do not fit")
        if gout.shape[0] != images.shape[0] or gout.shape[1] * ksize != n_rows:
            raise ValueError("SparseMaxPoolGrad: gout does not fit images and the patch matrix")
        return pool_grad(images, gout, data, indices, indptr, ksize)

    return sparse_max_pool_grad, _cache_key(op, fmt=fmt)
