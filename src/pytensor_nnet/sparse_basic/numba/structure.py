"""Numba implementations of the structural sparse Ops and conversions: ``CSMGrad``,
``EnsureSortedIndices``, ``Remove0``, ``ConstructSparseFromList``, ``SparseBlockDiagonal``,
``Cast``, ``DenseFromSparse`` and the ``GetItem2dGrad`` of :mod:`pytensor_nnet.sparse_basic.ops`.
"""

from __future__ import annotations

import numpy as np
import pytensor.sparse.basic as psb
import scipy.sparse as sp
from numba import literal_unroll
from numba.extending import overload
from pytensor.link.numba.dispatch.basic import numba_njit
from pytensor.link.numba.dispatch.sparse.variable import CSCMatrixType, CSRMatrixType
from pytensor.sparse.linalg import SparseBlockDiagonal

from pytensor_nnet.sparse_basic import kernels as ks
from pytensor_nnet.sparse_basic.numba.helpers import (
    array_checker,
    as_dtype,
    builder,
    dtype_of,
    make_checker,
    status_raiser,
)
from pytensor_nnet.sparse_basic.numba.registry import register_sparse
from pytensor_nnet.sparse_basic.ops import GetItem2dGrad


@register_sparse(psb.CSMGrad, version=1)
def numba_funcify_CSMGrad(op, node, **kwargs):
    out_dtype = dtype_of(node.outputs[0])
    check_x = array_checker("CSMGrad: x", "csr")
    check_g = array_checker("CSMGrad: gradient", "csr")
    m_length = "CSMGrad: shapes must have length 2 (len(x_shape), len(g_shape)):"
    m_shape = "CSMGrad: the gradient and the matrix have different shapes:"
    m_major = "CSMGrad: len(indptr) - 1 is neither the number of rows nor of columns (len(indptr) - 1, rows, columns):"
    m_mixed = (
        "CSMGrad: the gradient and the matrix have different numbers of major slices "
        "(mixed formats: csr matrix with a csc gradient or the reverse):"
    )

    @numba_njit
    def csm_grad(x_data, x_indices, x_indptr, x_shape, g_data, g_indices, g_indptr, g_shape):
        if x_shape.shape[0] != 2 or g_shape.shape[0] != 2:
            raise ValueError(m_length, x_shape.shape[0], g_shape.shape[0])
        if x_shape[0] != g_shape[0] or x_shape[1] != g_shape[1]:
            raise ValueError(m_shape, x_shape[0], x_shape[1], g_shape[0], g_shape[1])
        n_major = x_indptr.shape[0] - 1
        if n_major == x_shape[0]:
            n_minor = x_shape[1]
        elif n_major == x_shape[1]:
            n_minor = x_shape[0]
        else:
            raise ValueError(m_major, n_major, x_shape[0], x_shape[1])
        if g_indptr.shape[0] != x_indptr.shape[0]:
            raise ValueError(m_mixed, g_indptr.shape[0] - 1, n_major)
        check_x(x_indptr, x_indices, x_data.shape[0], n_major, n_minor)
        check_g(g_indptr, g_indices, g_data.shape[0], n_major, n_minor)
        out = np.zeros(x_data.shape[0], dtype=out_dtype)
        ks.csm_grad(x_indptr, x_indices, g_indptr, g_indices, g_data, n_minor, out)
        return out

    return csm_grad


@register_sparse(psb.EnsureSortedIndices, version=1)
def numba_funcify_EnsureSortedIndices(op, node, **kwargs):
    [x] = node.inputs
    fmt = x.type.format
    check = make_checker(fmt, "EnsureSortedIndices: x")
    build = builder(fmt)

    # inplace=True too returns a sorted copy: the Op only declares a view_map, so sorting the
    # input in place would change it under other clients (e.g. a csm_properties data view)
    @numba_njit
    def ensure_sorted_indices(x):
        check(x)
        indices, data = ks.sort_indices(x.indptr, x.indices, x.data)
        indptr = x.indptr[: x.indptr.shape[0]].copy()
        return build(data, indices, indptr, x.shape[0], x.shape[1])

    return ensure_sorted_indices


@register_sparse(psb.Remove0, version=1)
def numba_funcify_Remove0(op, node, **kwargs):
    [x] = node.inputs
    fmt = x.type.format
    check = make_checker(fmt, "Remove0: x")
    build = builder(fmt)

    @numba_njit
    def remove0(x):
        check(x)
        ptr, ind, dat = ks.eliminate_zeros(x.indptr, x.indices, x.data)
        return build(dat, ind, ptr, x.shape[0], x.shape[1])

    return remove0


@register_sparse(psb.ConstructSparseFromList, version=1)
def numba_funcify_ConstructSparseFromList(op, node, **kwargs):
    out_dtype = dtype_of(node.outputs[0])
    m_rows = "ConstructSparseFromList: values and ilist differ in length (rows of values, len(ilist)):"
    m_cols = "ConstructSparseFromList: values and the output differ in columns:"
    m_index = "ConstructSparseFromList: ilist entry out of range [0, rows) (position, value, rows):"

    @numba_njit
    def construct_sparse_from_list(out_shape, values, ilist):
        n_rows = out_shape[0]
        n_cols = out_shape[1]
        if values.shape[0] != ilist.shape[0]:
            raise ValueError(m_rows, values.shape[0], ilist.shape[0])
        if values.shape[1] != n_cols:
            raise ValueError(m_cols, values.shape[1], n_cols)
        for r in range(ilist.shape[0]):
            if ilist[r] < 0 or ilist[r] >= n_rows:
                raise ValueError(m_index, r, ilist[r], n_rows)
        ptr, ind, dat = ks.rows_to_csc(as_dtype(values, out_dtype), ilist)
        return sp.csc_matrix((dat, ind, ptr), shape=(n_rows, n_cols))

    return construct_sparse_from_list


# ---------------------------------------------------------------------------------------------
# Block diagonal, casts, dense conversion


def _block_as_csr(block, dtype):
    """CSR arrays ``(indptr, indices, data, n_rows, n_cols)`` of a block (Numba only)."""
    raise NotImplementedError


_raise_for_csr_block = status_raiser("SparseBlockDiagonal: a csr block", "csr")
_raise_for_csc_block = status_raiser("SparseBlockDiagonal: a csc block", "csc")


@overload(_block_as_csr)
def _overload_block_as_csr(block, dtype):
    if isinstance(block, CSRMatrixType):

        def impl(block, dtype):
            n_rows, n_cols = block.shape
            status = ks.compressed_status(block.indptr, block.indices, block.data.shape[0], n_rows, n_cols)
            if status[0] != ks.STATUS_OK:
                _raise_for_csr_block(status)
            return (
                block.indptr.copy(),
                block.indices.copy(),
                block.data.astype(dtype),
                np.int64(n_rows),
                np.int64(n_cols),
            )

    elif isinstance(block, CSCMatrixType):

        def impl(block, dtype):
            n_rows, n_cols = block.shape
            status = ks.compressed_status(block.indptr, block.indices, block.data.shape[0], n_cols, n_rows)
            if status[0] != ks.STATUS_OK:
                _raise_for_csc_block(status)
            ptr, ind, dat = ks.swap_compressed(block.indptr, block.indices, block.data, n_rows)
            return ptr, ind, dat.astype(dtype), np.int64(n_rows), np.int64(n_cols)

    else:

        def impl(block, dtype):
            # scipy.sparse.block_diag stores every entry of a dense block, zeros included
            ptr, ind, dat = ks.dense_to_compressed(block, True, True)
            return (ptr, ind, dat.astype(dtype), np.int64(block.shape[0]), np.int64(block.shape[1]))

    return impl


@register_sparse(SparseBlockDiagonal, version=1)
def numba_funcify_SparseBlockDiagonal(op, node, **kwargs):
    """``scipy.sparse.block_diag`` of sparse and dense blocks, canonical output."""
    out_dtype = dtype_of(node.outputs[0])
    is_csr = op.format == "csr"
    build = builder(op.format)

    @numba_njit
    def block_diag(*blocks):
        parts = []
        for block in literal_unroll(blocks):
            parts.append(_block_as_csr(block, out_dtype))
        n_rows = 0
        n_cols = 0
        nnz = 0
        for part in parts:
            n_rows += part[3]
            n_cols += part[4]
            nnz += part[0][part[3]]
        indptr = np.empty(n_rows + 1, dtype=np.int32)
        indices = np.empty(nnz, dtype=np.int32)
        data = np.empty(nnz, dtype=out_dtype)
        indptr[0] = 0
        row0 = 0
        col0 = 0
        pos = 0
        for part in parts:
            ptr, ind, dat, r, c = part
            for i in range(r):
                for p in range(ptr[i], ptr[i + 1]):
                    indices[pos] = ind[p] + col0
                    data[pos] = dat[p]
                    pos += 1
                indptr[row0 + i + 1] = pos
            row0 += r
            col0 += c
        ptr, ind, dat = ks.canonicalize(indptr, indices, data, n_cols, False)
        if is_csr:
            return build(dat, ind, ptr, n_rows, n_cols)
        ptr, ind, dat = ks.swap_compressed(ptr, ind, dat, n_cols)
        return build(dat, ind, ptr, n_rows, n_cols)

    return block_diag


@register_sparse(psb.Cast, version=1)
def numba_funcify_Cast(op, node, **kwargs):
    """All real casts in Numba (PyTensor's version falls back to object mode for downcasts)."""
    in_dtype = dtype_of(node.inputs[0])
    out_dtype = np.dtype(op.out_type)
    if in_dtype.kind == "c" or out_dtype.kind == "c":
        from pytensor.link.numba.dispatch.sparse.basic import numba_funcify_Cast as pt_cast

        return pt_cast(op, node, **kwargs), 0
    build = builder(node.inputs[0].type.format)

    @numba_njit
    def cast(x):
        return build(x.data.astype(out_dtype), x.indices.copy(), x.indptr.copy(), x.shape[0], x.shape[1])

    return cast


@register_sparse(psb.DenseFromSparse, version=1)
def numba_funcify_DenseFromSparse(op, node, **kwargs):
    """``x.toarray()`` summing duplicate entries (PyTensor's version keeps the last one)."""
    [x] = node.inputs
    is_csr = x.type.format == "csr"
    out_dtype = dtype_of(node.outputs[0])
    check = make_checker(x.type.format, "DenseFromSparse: x")

    @numba_njit
    def dense_from_sparse(x):
        check(x)
        out = np.zeros((x.shape[0], x.shape[1]), dtype=out_dtype)
        ks.compressed_to_dense_into(x.indptr, x.indices, x.data, is_csr, out)
        return out

    return dense_from_sparse


# ---------------------------------------------------------------------------------------------
# Ops of pytensor_nnet.sparse


@numba_njit
def _scalar_or_none(index):
    # slice bounds arrive as 0-d arrays, or None for an omitted bound
    return np.asarray(index).item() if index is not None else None


@numba_njit
def _slice_positions(size, start, stop, step):
    start, stop, step = slice(_scalar_or_none(start), _scalar_or_none(stop), _scalar_or_none(step)).indices(size)
    return np.arange(start, stop, step).astype(np.int32)


@register_sparse(GetItem2dGrad, version=1)
def numba_funcify_GetItem2dGrad(op, node, **kwargs):
    """The sliced gradient ``gz`` placed back at its positions in a zero matrix like ``x``."""
    x, gz = node.inputs[:2]
    fmt = x.type.format
    is_csr = fmt == "csr"
    build = builder(fmt)
    check = make_checker(fmt, "GetItem2dGrad: gz")
    m_shape = "GetItem2dGrad: gz does not have the shape of the slice (gz rows, gz columns, slice rows, slice columns):"

    @numba_njit
    def get_item_2d_grad(x, gz, start1, stop1, step1, start2, stop2, step2):
        rows = _slice_positions(x.shape[0], start1, stop1, step1)
        cols = _slice_positions(x.shape[1], start2, stop2, step2)
        if gz.shape[0] != rows.shape[0] or gz.shape[1] != cols.shape[0]:
            raise ValueError(m_shape, gz.shape[0], gz.shape[1], rows.shape[0], cols.shape[0])
        check(gz)
        if is_csr:
            ptr, ind, dat = ks.scatter_slices(gz.indptr, gz.indices, gz.data, rows, cols, x.shape[0], x.shape[1])
        else:
            ptr, ind, dat = ks.scatter_slices(gz.indptr, gz.indices, gz.data, cols, rows, x.shape[1], x.shape[0])
        return build(dat, ind, ptr, x.shape[0], x.shape[1])

    return get_item_2d_grad
