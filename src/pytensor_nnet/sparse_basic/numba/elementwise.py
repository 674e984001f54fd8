"""Numba implementations of the element-wise sparse Ops: additions, products and
comparisons of two sparse matrices, of a sparse and a dense matrix, and ``StructuredAddSV``."""

from __future__ import annotations

import numpy as np
from pytensor.link.numba.dispatch.basic import numba_njit

from pytensor_nnet.compat import sparse_math_op
from pytensor_nnet.sparse_basic import kernels as ks
from pytensor_nnet.sparse_basic.numba.helpers import (
    as_dtype,
    builder,
    dtype_of,
    make_checker,
    same_format_arrays,
    same_shape_checker,
)
from pytensor_nnet.sparse_basic.numba.registry import register_sparse

_SS_OPS = {
    sparse_math_op("AddSparseSparse"): ks.OP_ADD,
    sparse_math_op("MultiplySparseSparse"): ks.OP_MUL,
    sparse_math_op("EqualSparseSparse"): ks.OP_EQ,
    sparse_math_op("NotEqualSparseSparse"): ks.OP_NE,
    sparse_math_op("LessThanSparseSparse"): ks.OP_LT,
    sparse_math_op("GreaterThanSparseSparse"): ks.OP_GT,
    sparse_math_op("LessEqualSparseSparse"): ks.OP_LE,
    sparse_math_op("GreaterEqualSparseSparse"): ks.OP_GE,
}
_SD_COMPARISONS = {
    sparse_math_op("EqualSparseDense"): ks.OP_EQ,
    sparse_math_op("NotEqualSparseDense"): ks.OP_NE,
    sparse_math_op("LessThanSparseDense"): ks.OP_LT,
    sparse_math_op("GreaterThanSparseDense"): ks.OP_GT,
    sparse_math_op("LessEqualSparseDense"): ks.OP_LE,
    sparse_math_op("GreaterEqualSparseDense"): ks.OP_GE,
}


def _op_code(op, table):
    for cls, code in table.items():
        if isinstance(op, cls):
            return code
    raise NotImplementedError(type(op))


def numba_funcify_sparse_elementwise(op, node, **kwargs):
    """``x (op) y`` for two sparse matrices, in the format of ``x`` (canonical, no zeros)."""
    x, y = node.inputs
    code = _op_code(op, _SS_OPS)
    where = type(op).__name__
    fmt = x.type.format
    out_dtype = dtype_of(node.outputs[0])
    acc_dtype = out_dtype if code <= ks.OP_MUL else np.result_type(dtype_of(x), dtype_of(y))
    check_shapes = same_shape_checker(where)
    x_check = make_checker(fmt, where + ": x")
    y_check = make_checker(y.type.format, where + ": y")
    y_arrays = same_format_arrays(fmt, y.type.format)
    build = builder(fmt)

    @numba_njit
    def sparse_elementwise(x, y):
        check_shapes(x, y)
        _n_major, n_minor = x_check(x)
        _, n_minor_y = y_check(y)
        y_ptr, y_ind, y_dat = y_arrays(y, n_minor_y)
        ptr, ind, dat = ks.elementwise_binary(
            x.indptr, x.indices, x.data, y_ptr, y_ind, y_dat, n_minor, code, acc_dtype, out_dtype
        )
        return build(dat, ind, ptr, x.shape[0], x.shape[1])

    return sparse_elementwise


for _cls in _SS_OPS:
    register_sparse(_cls, version=1)(numba_funcify_sparse_elementwise)


def numba_funcify_sparse_dense_comparison(op, node, **kwargs):
    """``x (cmp) y`` for sparse ``x`` and dense ``y``: a dense uint8 matrix."""
    x, y = node.inputs
    code = _op_code(op, _SD_COMPARISONS)
    where = type(op).__name__
    is_csr = x.type.format == "csr"
    acc_dtype = np.result_type(dtype_of(x), dtype_of(y))
    check_shapes = same_shape_checker(where)
    check = make_checker(x.type.format, where + ": x")

    @numba_njit
    def sparse_dense_comparison(x, y):
        check_shapes(x, y)
        check(x)
        dense = np.zeros((x.shape[0], x.shape[1]), dtype=acc_dtype)
        ks.compressed_to_dense_into(x.indptr, x.indices, x.data, is_csr, dense)
        out = np.empty((x.shape[0], x.shape[1]), dtype=np.uint8)
        ks.compare_dense(dense, as_dtype(y, acc_dtype), code, out)
        return out

    return sparse_dense_comparison


for _cls in _SD_COMPARISONS:
    register_sparse(_cls, version=1)(numba_funcify_sparse_dense_comparison)


@register_sparse(sparse_math_op("AddSparseSparseData"), version=1)
def numba_funcify_AddSSData(op, node, **kwargs):
    x, _y = node.inputs
    fmt = x.type.format
    out_dtype = dtype_of(node.outputs[0])
    check_shapes = same_shape_checker("AddSSData")
    check_x = make_checker(fmt, "AddSSData: x")
    check_y = make_checker(fmt, "AddSSData: y")
    build = builder(fmt)
    m_pattern = "AddSSData: x and y have different sparsity patterns (first differing position):"

    @numba_njit
    def add_s_s_data(x, y):
        check_shapes(x, y)
        check_x(x)
        check_y(y)
        if x.data.shape[0] != y.data.shape[0]:
            raise ValueError(m_pattern, -1)
        for i in range(x.indptr.shape[0]):
            if x.indptr[i] != y.indptr[i]:
                raise ValueError(m_pattern, i)
        for p in range(x.indptr[x.indptr.shape[0] - 1]):
            if x.indices[p] != y.indices[p]:
                raise ValueError(m_pattern, p)
        data = np.empty(x.data.shape[0], dtype=out_dtype)
        for p in range(data.shape[0]):
            data[p] = x.data[p] + y.data[p]
        return build(data, x.indices.copy(), x.indptr.copy(), x.shape[0], x.shape[1])

    return add_s_s_data


@register_sparse(sparse_math_op("AddSparseDense"), version=1)
def numba_funcify_AddSD(op, node, **kwargs):
    x, _y = node.inputs
    is_csr = x.type.format == "csr"
    out_dtype = dtype_of(node.outputs[0])
    check_shapes = same_shape_checker("AddSD")
    check = make_checker(x.type.format, "AddSD: x")

    @numba_njit
    def add_s_d(x, y):
        check_shapes(x, y)
        check(x)
        out = y.astype(out_dtype)
        ks.compressed_to_dense_into(x.indptr, x.indices, x.data, is_csr, out)
        return out

    return add_s_d


@register_sparse(sparse_math_op("StructuredAddSparseDenseVector"), version=1)
def numba_funcify_StructuredAddSV(op, node, **kwargs):
    """``x + y`` on the non-zero entries of ``x`` only (``y`` a row vector)."""
    x, _y = node.inputs
    fmt = x.type.format
    is_csr = fmt == "csr"
    check = make_checker(fmt, "StructuredAddSV: x")
    build = builder(fmt)
    m_length = "StructuredAddSV: y must have one entry per column of x (columns, len(y)):"

    @numba_njit
    def structured_add_s_v(x, y):
        n_major, n_minor = check(x)
        if y.shape[0] != x.shape[1]:
            raise ValueError(m_length, x.shape[1], y.shape[0])
        ptr, ind, dat = ks.canonicalize(x.indptr, x.indices, x.data, n_minor, True)
        for i in range(n_major):
            for p in range(ptr[i], ptr[i + 1]):
                dat[p] += y[ind[p]] if is_csr else y[i]
        ptr, ind, dat = ks.eliminate_zeros(ptr, ind, dat)
        return build(dat, ind, ptr, x.shape[0], x.shape[1])

    return structured_add_s_v
