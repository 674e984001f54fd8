"""Numba implementations of the sparse x dense products: ``Dot``, ``StructuredDot``, their
structured gradient ``StructuredDotGradCSR/CSC``, ``Usmm``, ``TrueDot`` and ``SamplingDot``.

Sparse x dense runs the kernels of :mod:`pytensor_nnet.sparse_basic.kernels`; sparse x sparse
``Dot`` keeps PyTensor's own implementation, with validated inputs.
"""

from __future__ import annotations

import functools

import numpy as np
import pytensor.link.numba.dispatch.sparse.math as pytensor_sparse_math
import pytensor.sparse.math as psm
from pytensor.link.numba.dispatch.basic import numba_njit

from pytensor_nnet.sparse_basic import kernels as ks
from pytensor_nnet.sparse_basic.numba.helpers import (
    array_checker,
    as_dtype,
    builder,
    dtype_of,
    inner_checker,
    is_sparse,
    make_checker,
    same_format_arrays,
)
from pytensor_nnet.sparse_basic.numba.registry import register_sparse


def _flip(fmt):
    return "csc" if fmt == "csr" else "csr"


@functools.cache
def _spmm(fmt, where):
    """Numba function ``(x, b, alpha, z, out)``: ``out = z + alpha * x @ b`` (validated).

    ``z`` has shape ``(m, k)``, ``(1, k)`` (one row, broadcast) or ``(0, k)`` (zeros), the
    dtype of ``out`` and C order; ``out`` (``m, k``, C order) may be ``z`` itself.
    """
    is_csr = fmt == "csr"
    check = make_checker(fmt, where)
    check_inner = inner_checker(where)

    @numba_njit
    def spmm(x, b, alpha, z, out):
        check(x)
        check_inner(x.shape[1], b.shape[0])
        data = as_dtype(x.data, out.dtype)
        bc = np.ascontiguousarray(as_dtype(b, out.dtype))
        if is_csr:
            ks.csr_matmul_dense(x.indptr, x.indices, data, bc, alpha, z, out)
            return
        ks.init_rows(z, out)
        ks.csc_matmul_dense_into(x.indptr, x.indices, data, bc, alpha, out)

    return spmm


@functools.cache
def _transpose_builder(fmt):
    """Numba function returning ``x.T`` (the other format, same arrays, no copy)."""
    build_t = builder(_flip(fmt))

    @numba_njit
    def transpose(x):
        return build_t(x.data, x.indices, x.indptr, x.shape[1], x.shape[0])

    return transpose


@functools.cache
def _sparse_dense_matmul(x_fmt, out_dtype, where):
    """``x @ y`` for sparse ``x`` and dense 2-d ``y``."""
    spmm = _spmm(x_fmt, where)
    one = out_dtype.type(1)

    @numba_njit
    def sparse_dense(x, y):
        out = np.empty((x.shape[0], y.shape[1]), dtype=out_dtype)
        spmm(x, y, one, np.empty((0, y.shape[1]), dtype=out_dtype), out)
        return out

    return sparse_dense


@functools.cache
def _dense_sparse_matmul(y_fmt, out_dtype, where):
    """``x @ y`` for dense 2-d ``x`` and sparse ``y``, as ``(y.T @ x.T).T``."""
    spmm = _spmm(_flip(y_fmt), where)
    transpose = _transpose_builder(y_fmt)
    check_inner = inner_checker(where)
    one = out_dtype.type(1)

    @numba_njit
    def dense_sparse(x, y):
        check_inner(x.shape[1], y.shape[0])
        out_t = np.empty((y.shape[1], x.shape[0]), dtype=out_dtype)
        zeros = np.empty((0, x.shape[0]), dtype=out_dtype)
        spmm(transpose(y), np.ascontiguousarray(x.T), one, zeros, out_t)
        return np.ascontiguousarray(out_t.T)

    return dense_sparse


def _validated_delegate(node, fn, where):
    """Wrap one of PyTensor's sparse x sparse products with validation of its inputs."""
    x, y = node.inputs
    x_check = make_checker(x.type.format, where + ": x")
    y_check = make_checker(y.type.format, where + ": y")
    check_inner = inner_checker(where)

    @numba_njit
    def validated(x, y):
        x_check(x)
        y_check(y)
        check_inner(x.shape[1], y.shape[0])
        return fn(x, y)

    return validated


@register_sparse(psm.Dot, version=1)
@register_sparse(psm.StructuredDot, version=1)
def numba_funcify_sparse_dot(op, node, **kwargs):
    """Sparse x dense, dense x sparse (matrix or vector) with our kernels; sparse x sparse with
    PyTensor's own implementation (validated inputs)."""
    x, y = node.inputs
    [z] = node.outputs
    out_dtype = dtype_of(z)
    where = type(op).__name__
    if is_sparse(x) and is_sparse(y):
        fn, key = pytensor_sparse_math.numba_funcify_SparseDot(op, node, **kwargs)
        return _validated_delegate(node, fn, where), key
    if is_sparse(x) and y.type.ndim == 2:
        return _sparse_dense_matmul(x.type.format, out_dtype, where + ": x")
    if is_sparse(y) and x.type.ndim == 2:
        return _dense_sparse_matmul(y.type.format, out_dtype, where + ": y")
    if is_sparse(x):  # y is a vector
        spmm = _sparse_dense_matmul(x.type.format, out_dtype, where + ": x")

        @numba_njit
        def sparse_vector(x, y):
            column = np.ascontiguousarray(y).reshape((y.shape[0], 1))
            return spmm(x, column).reshape(x.shape[0])

        return sparse_vector
    # x is a vector, y sparse: (y.T @ x)
    spmm_t = _sparse_dense_matmul(_flip(y.type.format), out_dtype, where + ": y")
    transpose = _transpose_builder(y.type.format)

    @numba_njit
    def vector_sparse(x, y):
        column = np.ascontiguousarray(x).reshape((x.shape[0], 1))
        return spmm_t(transpose(y), column).reshape(y.shape[1])

    return vector_sparse


@register_sparse(psm.StructuredDotGradCSR, version=1)
@register_sparse(psm.StructuredDotGradCSC, version=1)
def numba_funcify_structured_dot_grad(op, node, **kwargs):
    """``g_a_data[p] = g_ab[row(p)] . b[col(p)]`` on the pattern of ``a`` (SDDMM)."""
    _a_indices, _a_indptr, b, g_ab = node.inputs
    out_dtype = dtype_of(node.outputs[0])
    is_csr = isinstance(op, psm.StructuredDotGradCSR)
    fmt = "csr" if is_csr else "csc"
    where = type(op).__name__
    check_a = array_checker(where + ": a", fmt)
    m_rows = (
        f"{where}: the pattern does not match g_ab and b (rows of the pattern, rows of g_ab, "
        "columns of the pattern, rows of b):"
    )
    m_cols = f"{where}: b and g_ab have different numbers of columns:"

    @numba_njit
    def check_shapes(a_indices, a_indptr, b, g_ab):
        n_major = a_indptr.shape[0] - 1
        n_rows = n_major if is_csr else g_ab.shape[0]
        n_cols = b.shape[0] if is_csr else n_major
        if g_ab.shape[0] != n_rows or b.shape[0] != n_cols:
            raise ValueError(m_rows, n_rows, g_ab.shape[0], n_cols, b.shape[0])
        if b.shape[1] != g_ab.shape[1]:
            raise ValueError(m_cols, b.shape[1], g_ab.shape[1])
        check_a(a_indptr, a_indices, a_indices.shape[0], n_major, n_cols if is_csr else n_rows)
        return n_rows, n_cols

    if not is_sparse(b) and not is_sparse(g_ab):

        @numba_njit
        def structured_dot_grad(a_indices, a_indptr, b, g_ab):
            check_shapes(a_indices, a_indptr, b, g_ab)
            out = np.zeros(a_indices.shape[0], dtype=out_dtype)
            ks.sampled_dot(
                a_indptr,
                a_indices,
                is_csr,
                np.ascontiguousarray(as_dtype(g_ab, out_dtype)),
                np.ascontiguousarray(as_dtype(b, out_dtype)),
                out,
            )
            return out

        return structured_dot_grad

    if not (is_sparse(b) and is_sparse(g_ab)):
        return None
    b_check = make_checker(b.type.format, where + ": b")
    g_check = make_checker(g_ab.type.format, where + ": g_ab")
    b_csr = same_format_arrays("csr", b.type.format)
    g_csr = same_format_arrays("csr", g_ab.type.format)

    @numba_njit
    def structured_dot_grad_sparse(a_indices, a_indptr, b, g_ab):
        b_check(b)
        g_check(g_ab)
        n_rows, _n_cols = check_shapes(a_indices, a_indptr, b, g_ab)
        b_ptr, b_ind, b_dat = b_csr(b, b.shape[0])
        g_ptr, g_ind, g_dat = g_csr(g_ab, g_ab.shape[0])
        out = np.zeros(a_indices.shape[0], dtype=out_dtype)
        if is_csr:
            ks.sampled_sparse_dot(a_indptr, a_indices, g_ptr, g_ind, g_dat, b_ptr, b_ind, b_dat, b.shape[1], out)
        else:
            # visit the CSC pattern row by row: its CSR form carries, as values, the position
            # of each entry in the CSC arrays
            positions = np.arange(a_indices.shape[0])
            r_ptr, r_ind, r_pos = ks.swap_compressed(a_indptr, a_indices, positions, n_rows)
            by_row = np.zeros(r_ind.shape[0], dtype=out_dtype)
            ks.sampled_sparse_dot(r_ptr, r_ind, g_ptr, g_ind, g_dat, b_ptr, b_ind, b_dat, b.shape[1], by_row)
            for q in range(r_ind.shape[0]):
                out[r_pos[q]] = by_row[q]
        return out

    return structured_dot_grad_sparse


@functools.cache
def _usmm_scalar(alpha_ndim):
    if alpha_ndim == 0:

        @numba_njit
        def scalar(alpha):
            return alpha[()]

    else:

        @numba_njit
        def scalar(alpha):
            return alpha.ravel()[0]

    return scalar


@register_sparse(psm.Usmm, version=1)
def numba_funcify_Usmm(op, node, **kwargs):
    """``alpha * x @ y + z`` accumulated into one output buffer."""
    alpha, x, y, z = node.inputs
    out_dtype = dtype_of(node.outputs[0])
    scalar_type = out_dtype.type
    get_alpha = _usmm_scalar(alpha.type.ndim)
    check_inner = inner_checker("Usmm")
    m_broadcast = "Usmm: z does not broadcast to the product (z rows, z columns, rows, columns):"

    @numba_njit
    def start(z, n_rows, n_cols):
        if (z.shape[0] != 1 and z.shape[0] != n_rows) or (z.shape[1] != 1 and z.shape[1] != n_cols):
            raise ValueError(m_broadcast, z.shape[0], z.shape[1], n_rows, n_cols)
        if z.shape[0] == n_rows and z.shape[1] == n_cols:
            return np.ascontiguousarray(as_dtype(z, out_dtype)).copy()
        # broadcast z with explicit loops: slice broadcasting costs seconds of compilation
        out = np.empty((n_rows, n_cols), dtype=out_dtype)
        if z.shape[1] == n_cols:  # one row
            row = np.ascontiguousarray(as_dtype(z[0], out_dtype))
            for i in range(n_rows):
                for j in range(n_cols):
                    out[i, j] = row[j]
        else:  # one column, or one entry
            for i in range(n_rows):
                value = z[i if z.shape[0] > 1 else 0, 0]
                for j in range(n_cols):
                    out[i, j] = value
        return out

    if is_sparse(x) and not is_sparse(y):
        spmm = _spmm(x.type.format, "Usmm: x")

        @numba_njit
        def usmm_sparse_dense(alpha, x, y, z):
            check_inner(x.shape[1], y.shape[0])
            n_rows, n_cols = x.shape[0], y.shape[1]
            a = scalar_type(get_alpha(alpha))
            out = np.empty((n_rows, n_cols), dtype=out_dtype)
            if z.shape[1] == n_cols and (z.shape[0] == n_rows or z.shape[0] == 1):
                # z (or its one row) starts each output row inside the kernel: one pass
                spmm(x, y, a, np.ascontiguousarray(as_dtype(z, out_dtype)), out)
            else:
                out = start(z, n_rows, n_cols)
                spmm(x, y, a, out, out)
            return out

        return usmm_sparse_dense

    if is_sparse(y) and not is_sparse(x):
        spmm = _spmm(_flip(y.type.format), "Usmm: y")
        transpose = _transpose_builder(y.type.format)

        @numba_njit
        def usmm_dense_sparse(alpha, x, y, z):
            check_inner(x.shape[1], y.shape[0])
            out_t = np.ascontiguousarray(start(z, x.shape[0], y.shape[1]).T)
            spmm(transpose(y), np.ascontiguousarray(x.T), scalar_type(get_alpha(alpha)), out_t, out_t)
            return np.ascontiguousarray(out_t.T)

        return usmm_dense_sparse

    # sparse x sparse
    x_check = make_checker(x.type.format, "Usmm: x")
    y_check = make_checker(y.type.format, "Usmm: y")
    x_csr = same_format_arrays("csr", x.type.format)
    y_csr = same_format_arrays("csr", y.type.format)

    @numba_njit
    def usmm_sparse_sparse(alpha, x, y, z):
        x_check(x)
        y_check(y)
        check_inner(x.shape[1], y.shape[0])
        x_ptr, x_ind, x_dat = x_csr(x, x.shape[0])
        y_ptr, y_ind, y_dat = y_csr(y, y.shape[0])
        p_ptr, p_ind, p_dat = ks.spgemm_csr(x_ptr, x_ind, x_dat, y_ptr, y_ind, y_dat, y.shape[1], out_dtype)
        out = start(z, x.shape[0], y.shape[1])
        a = scalar_type(get_alpha(alpha))
        for q in range(p_dat.shape[0]):
            p_dat[q] *= a
        ks.compressed_to_dense_into(p_ptr, p_ind, p_dat, True, out)
        return out

    return usmm_sparse_sparse


@register_sparse(psm.TrueDot, version=1)
def numba_funcify_TrueDot(op, node, **kwargs):
    """Sparse result of ``x @ y`` in the format of ``x`` (zeros dropped, sorted indices)."""
    x, y = node.inputs
    out_fmt = node.outputs[0].type.format
    out_dtype = dtype_of(node.outputs[0])
    is_csr = out_fmt == "csr"
    build = builder(out_fmt)
    if not is_sparse(y):
        spmm = _sparse_dense_matmul(x.type.format, out_dtype, "TrueDot: x")
        if y.type.ndim == 2:

            @numba_njit
            def true_dot_dense(x, y):
                dense = spmm(x, y)
                ptr, ind, dat = ks.dense_to_compressed(dense, is_csr, False)
                return build(dat, ind, ptr, dense.shape[0], dense.shape[1])

            return true_dot_dense
        if y.type.ndim == 1:
            # scipy returns a 1-d product, which the Op wraps as a (1, m) sparse row

            @numba_njit
            def true_dot_vector(x, y):
                dense = spmm(x, np.ascontiguousarray(y).reshape((y.shape[0], 1)))
                row = np.ascontiguousarray(dense.T)
                ptr, ind, dat = ks.dense_to_compressed(row, is_csr, False)
                return build(dat, ind, ptr, 1, row.shape[1])

            return true_dot_vector
        return None

    x_check = make_checker(x.type.format, "TrueDot: x")
    y_check = make_checker(y.type.format, "TrueDot: y")
    check_inner = inner_checker("TrueDot")
    if is_csr:
        # C = A @ B with A, B in CSR
        a_arrays = same_format_arrays("csr", x.type.format)
        b_arrays = same_format_arrays("csr", y.type.format)
    else:
        # C.T = B.T @ A.T; the CSC arrays of a matrix are the CSR arrays of its transpose
        a_arrays = same_format_arrays("csc", y.type.format)
        b_arrays = same_format_arrays("csc", x.type.format)

    @numba_njit
    def true_dot_sparse(x, y):
        x_check(x)
        y_check(y)
        check_inner(x.shape[1], y.shape[0])
        if is_csr:
            a_ptr, a_ind, a_dat = a_arrays(x, x.shape[0])
            b_ptr, b_ind, b_dat = b_arrays(y, y.shape[0])
            n_cols = y.shape[1]
        else:
            a_ptr, a_ind, a_dat = a_arrays(y, y.shape[1])
            b_ptr, b_ind, b_dat = b_arrays(x, x.shape[1])
            n_cols = x.shape[0]
        ptr, ind, dat = ks.spgemm_csr(a_ptr, a_ind, a_dat, b_ptr, b_ind, b_dat, n_cols, out_dtype)
        return build(dat, ind, ptr, x.shape[0], y.shape[1])

    return true_dot_sparse


@register_sparse(psm.SamplingDot, version=1)
def numba_funcify_SamplingDot(op, node, **kwargs):
    """``p * (x @ y.T)`` on the pattern of ``p`` (duplicates summed, stored zeros kept)."""
    x, y, p = node.inputs
    fmt = p.type.format
    is_csr = fmt == "csr"
    out_dtype = dtype_of(node.outputs[0])
    acc_dtype = np.result_type(dtype_of(x), dtype_of(y), dtype_of(p))
    check = make_checker(fmt, "SamplingDot: p")
    build = builder(fmt)
    m_rows = "SamplingDot: p does not match x and y (p rows, p columns, x rows, y rows):"
    m_cols = "SamplingDot: x and y have different numbers of columns:"

    @numba_njit
    def sampling_dot(x, y, p):
        _n_major, n_minor = check(p)
        if x.shape[0] != p.shape[0] or y.shape[0] != p.shape[1]:
            raise ValueError(m_rows, p.shape[0], p.shape[1], x.shape[0], y.shape[0])
        if x.shape[1] != y.shape[1]:
            raise ValueError(m_cols, x.shape[1], y.shape[1])
        ptr, ind, dat = ks.canonicalize(p.indptr, p.indices, p.data, n_minor, False)
        dots = np.zeros(ind.shape[0], dtype=acc_dtype)
        ks.sampled_dot(
            ptr,
            ind,
            is_csr,
            np.ascontiguousarray(as_dtype(x, acc_dtype)),
            np.ascontiguousarray(as_dtype(y, acc_dtype)),
            dots,
        )
        out = np.empty(ind.shape[0], dtype=out_dtype)
        for q in range(ind.shape[0]):
            out[q] = dots[q] * dat[q]
        return build(out, ind, ptr, p.shape[0], p.shape[1])

    return sampling_dot
