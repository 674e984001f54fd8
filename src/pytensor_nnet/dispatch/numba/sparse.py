"""Numba implementations of ``pytensor.sparse`` Ops (issue 7).

PyTensor 3 runs about half of its sparse Ops in Numba's object mode (a Python callback with a
warning). Importing this module registers a ``numba_funcify`` implementation for each of them,
with the same results as the Op's ``perform``, and replaces PyTensor's own Numba
implementations of the sparse x dense products (``Dot``, ``StructuredDot`` and the structured
gradient ``StructuredDotGradCSR/CSC``) by faster kernels. The complete list of what changes is
in ``docs/sparse.md``.

Every implementation validates the compressed structure of its sparse inputs and the shapes of
its dense inputs (``ValueError`` naming the Op and the argument) before entering the kernels of
:mod:`pytensor_nnet.kernels.sparse`, which therefore never index out of bounds.

The helper factories below are memoized (``functools.cache``): nodes that need the same
checker, builder or product share one compiled Numba function per process. Cache keys follow
PyTensor (``default_hash_key_from_props`` with a ``cache_version``) and also include the
node's input/output types and a hash of this module and of the kernels, so a changed
implementation never reuses a stale on-disk cache entry, and never one of PyTensor's.
"""

from __future__ import annotations

import functools
import sys

import numpy as np
import scipy.sparse as sp
from numba import literal_unroll, types
from numba.extending import overload

import pytensor.link.numba.dispatch  # noqa: F401  (PyTensor's registrations first: ours override)
import pytensor.link.numba.dispatch.sparse.math as _pt_sparse_math
import pytensor.sparse.basic as psb
import pytensor.sparse.math as psm
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import (
    default_hash_key_from_props,
    generate_fallback_impl,
    register_funcify_and_cache_key,
)
from pytensor.link.numba.dispatch.sparse.variable import CSCMatrixType, CSRMatrixType
from pytensor.sparse.linalg import SparseBlockDiagonal
from pytensor.sparse.type import SparseTensorType

from pytensor_nnet.compat import sparse_math_op
from pytensor_nnet.dispatch.numba.fingerprint import source_fingerprint
from pytensor_nnet.kernels import sparse as ks
from pytensor_nnet.sparse.basic import GetItem2dGrad

numba_njit = numba_basic.numba_njit

_SOURCE_HASH = source_fingerprint(sys.modules[__name__], ks)


def _cache_key(op, node, version):
    """PyTensor-style key plus the node types and the source hash (see module docstring)."""
    return default_hash_key_from_props(
        op,
        cache_version=version,
        package="pytensor_nnet.sparse",
        source=_SOURCE_HASH,
        types=tuple(str(v.type) for v in (*node.inputs, *node.outputs)),
    )


# PyTensor's own Op classes with an implementation here, registered for them only by
# patch_pytensor_sparse(); our subclasses of them (pytensor_nnet.sparse) get it at import.
_PYTENSOR_IMPLEMENTATIONS: list[tuple[type, object]] = []


def _own_subclasses(op_class):
    """``op_class`` itself if it is ours, else its subclasses defined in this package."""
    found = [op_class] if op_class.__module__.startswith("pytensor_nnet.") else []
    for sub in op_class.__subclasses__():
        found.extend(c for c in _own_subclasses(sub) if c not in found)
    return found


def register_sparse(op_class, version=1):
    """Register ``funcify(op, node) -> numba function`` with a cache key for ``op_class``.

    ``funcify`` may return ``None`` for a node it does not handle; the node then runs in
    object mode, exactly as without this package. The registration applies at once to our
    own classes (``op_class`` if it is ours, our subclasses of it otherwise); for a class of
    PyTensor's it waits for :func:`patch_pytensor_sparse`.
    """

    def decorator(funcify):
        def funcify_and_key(op, node, **kwargs):
            fn = funcify(op, node, **kwargs)
            if fn is None:
                return generate_fallback_impl(op, node, **kwargs), None
            if isinstance(fn, tuple):  # delegated to an implementation with its own key
                fn, key = fn
                return fn, None if key is None else _cache_key(op, node, (version, key))
            return fn, _cache_key(op, node, version)

        for own_class in _own_subclasses(op_class):
            register_funcify_and_cache_key(own_class)(funcify_and_key)
        if not op_class.__module__.startswith("pytensor_nnet."):
            _PYTENSOR_IMPLEMENTATIONS.append((op_class, funcify_and_key))
        return funcify

    return decorator


def _is_sparse(var):
    return isinstance(var.type, SparseTensorType)


def _dtype(var):
    return np.dtype(var.type.dtype)


# ---------------------------------------------------------------------------------------------
# Helpers usable inside the generated Numba functions


def as_dtype(a, dtype):
    """``a`` itself when it already has ``dtype``, else ``a.astype(dtype)`` (decided at typing)."""
    raise NotImplementedError  # only called from Numba code


@overload(as_dtype)
def _overload_as_dtype(a, dtype):
    target = dtype.dtype if isinstance(dtype, types.DType) else getattr(dtype, "dtype", dtype)
    if isinstance(dtype, types.NumberClass):
        target = dtype.instance_type
    if a.dtype == target:
        return lambda a, dtype: a
    return lambda a, dtype: a.astype(dtype)


@functools.cache
def _status_raiser(where, fmt):
    """Numba function raising a ``ValueError`` for a bad :func:`ks.compressed_status`.

    Messages are constants (built here, in Python) followed by the offending integers:
    string formatting inside Numba code costs seconds of compilation per function.
    """
    major, minor = ("rows", "columns") if fmt == "csr" else ("columns", "rows")
    m_shape = f"{where}: negative shape (number of {major}, number of {minor}):"
    m_length = f"{where}: indptr has the wrong length (len(indptr), number of {major} + 1):"
    m_data = f"{where}: data and indices have different lengths (len(data), len(indices)):"
    m_start = f"{where}: indptr[0] must be 0 (indptr[0], 0):"
    m_decreasing = f"{where}: indptr decreases (position, indptr[position]):"
    m_end = (
        f"{where}: indptr is inconsistent with the data length: indptr[-1] exceeds the number "
        "of stored entries (indptr[-1], len(indices)):"
    )
    m_index = f"{where}: stored index out of range [0, number of {minor}) (index, position):"

    @numba_njit
    def raise_for(status):
        code, a, b = status
        if code == ks.STATUS_NEGATIVE_SHAPE:
            raise ValueError(m_shape, a, b)
        if code == ks.STATUS_INDPTR_LENGTH:
            raise ValueError(m_length, a, b)
        if code == ks.STATUS_DATA_LENGTH:
            raise ValueError(m_data, a, b)
        if code == ks.STATUS_INDPTR_START:
            raise ValueError(m_start, a, b)
        if code == ks.STATUS_INDPTR_DECREASES:
            raise ValueError(m_decreasing, a, b)
        if code == ks.STATUS_INDPTR_END:
            raise ValueError(m_end, a, b)
        if code == ks.STATUS_INDEX_RANGE:
            raise ValueError(m_index, a, b)

    return raise_for


@functools.cache
def _make_checker(fmt, where):
    """Numba function validating a sparse matrix of format ``fmt``; returns (n_major, n_minor).

    ``where`` (e.g. ``"Dot: x"``) starts the error messages.
    """
    is_csr = fmt == "csr"
    raise_for = _status_raiser(where, fmt)

    @numba_njit
    def check(x):
        n_rows, n_cols = x.shape
        n_major = n_rows if is_csr else n_cols
        n_minor = n_cols if is_csr else n_rows
        status = ks.compressed_status(x.indptr, x.indices, x.data.shape[0], n_major, n_minor)
        if status[0] != ks.STATUS_OK:
            raise_for(status)
        return n_major, n_minor

    return check


@functools.cache
def _array_checker(where, fmt):
    """Like :func:`_make_checker` for raw ``(indptr, indices, data_size, n_major, n_minor)``."""
    raise_for = _status_raiser(where, fmt)

    @numba_njit
    def check(indptr, indices, data_size, n_major, n_minor):
        status = ks.compressed_status(indptr, indices, data_size, n_major, n_minor)
        if status[0] != ks.STATUS_OK:
            raise_for(status)

    return check


@functools.cache
def _inner_checker(where):
    """Numba function ``(n_left_columns, n_right_rows)`` raising when they differ."""
    message = (
        f"{where}: inner dimensions do not match (columns of the left operand, rows of the "
        "right operand):"
    )

    @numba_njit
    def check_inner(n_left, n_right):
        if n_left != n_right:
            raise ValueError(message, n_left, n_right)

    return check_inner


@functools.cache
def _same_shape_checker(where):
    """Numba function ``(x, y)`` raising when two matrices have different shapes."""
    message = f"{where}: the operands have different shapes (x rows, x columns, y rows, y columns):"

    @numba_njit
    def check_same_shape(x, y):
        if x.shape[0] != y.shape[0] or x.shape[1] != y.shape[1]:
            raise ValueError(message, x.shape[0], x.shape[1], y.shape[0], y.shape[1])

    return check_same_shape


@functools.cache
def _builder(fmt):
    """Numba function ``(data, indices, indptr, shape) -> scipy matrix of format fmt``."""
    if fmt == "csr":

        @numba_njit
        def build(data, indices, indptr, n_rows, n_cols):
            return sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_cols))

    else:

        @numba_njit
        def build(data, indices, indptr, n_rows, n_cols):
            return sp.csc_matrix((data, indices, indptr), shape=(n_rows, n_cols))

    return build


@functools.cache
def _same_format_arrays(fmt, other_fmt):
    """Numba function returning the arrays of a matrix in format ``fmt`` (swap if needed)."""
    if fmt == other_fmt:

        @numba_njit
        def arrays(y, n_minor_y):
            return y.indptr, y.indices, y.data

    else:

        @numba_njit
        def arrays(y, n_minor_y):
            return ks.swap_compressed(y.indptr, y.indices, y.data, n_minor_y)

    return arrays


# ---------------------------------------------------------------------------------------------
# Sparse x dense products: Dot, StructuredDot, Usmm, and the structured gradient


def _flip(fmt):
    return "csc" if fmt == "csr" else "csr"


@functools.cache
def _spmm(fmt, where):
    """Numba function ``(x, b, alpha, z, out)``: ``out = z + alpha * x @ b`` (validated).

    ``z`` has shape ``(m, k)``, ``(1, k)`` (one row, broadcast) or ``(0, k)`` (zeros), the
    dtype of ``out`` and C order; ``out`` (``m, k``, C order) may be ``z`` itself.
    """
    is_csr = fmt == "csr"
    check = _make_checker(fmt, where)
    check_inner = _inner_checker(where)

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
    build_t = _builder(_flip(fmt))

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
    check_inner = _inner_checker(where)
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
    x_check = _make_checker(x.type.format, where + ": x")
    y_check = _make_checker(y.type.format, where + ": y")
    check_inner = _inner_checker(where)

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
    out_dtype = _dtype(z)
    where = type(op).__name__
    if _is_sparse(x) and _is_sparse(y):
        fn, key = _pt_sparse_math.numba_funcify_SparseDot(op, node, **kwargs)
        return _validated_delegate(node, fn, where), key
    if _is_sparse(x) and y.type.ndim == 2:
        return _sparse_dense_matmul(x.type.format, out_dtype, where + ": x")
    if _is_sparse(y) and x.type.ndim == 2:
        return _dense_sparse_matmul(y.type.format, out_dtype, where + ": y")
    if _is_sparse(x):  # y is a vector
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
    out_dtype = _dtype(node.outputs[0])
    is_csr = isinstance(op, psm.StructuredDotGradCSR)
    fmt = "csr" if is_csr else "csc"
    where = type(op).__name__
    check_a = _array_checker(where + ": a", fmt)
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

    if not _is_sparse(b) and not _is_sparse(g_ab):

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

    if not (_is_sparse(b) and _is_sparse(g_ab)):
        return None
    b_check = _make_checker(b.type.format, where + ": b")
    g_check = _make_checker(g_ab.type.format, where + ": g_ab")
    b_csr = _same_format_arrays("csr", b.type.format)
    g_csr = _same_format_arrays("csr", g_ab.type.format)

    @numba_njit
    def structured_dot_grad_sparse(a_indices, a_indptr, b, g_ab):
        b_check(b)
        g_check(g_ab)
        n_rows, _n_cols = check_shapes(a_indices, a_indptr, b, g_ab)
        b_ptr, b_ind, b_dat = b_csr(b, b.shape[0])
        g_ptr, g_ind, g_dat = g_csr(g_ab, g_ab.shape[0])
        out = np.zeros(a_indices.shape[0], dtype=out_dtype)
        if is_csr:
            ks.sampled_sparse_dot(
                a_indptr, a_indices, g_ptr, g_ind, g_dat, b_ptr, b_ind, b_dat, b.shape[1], out
            )
        else:
            # visit the CSC pattern row by row: its CSR form carries, as values, the position
            # of each entry in the CSC arrays
            positions = np.arange(a_indices.shape[0])
            r_ptr, r_ind, r_pos = ks.swap_compressed(a_indptr, a_indices, positions, n_rows)
            by_row = np.zeros(r_ind.shape[0], dtype=out_dtype)
            ks.sampled_sparse_dot(
                r_ptr, r_ind, g_ptr, g_ind, g_dat, b_ptr, b_ind, b_dat, b.shape[1], by_row
            )
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
    out_dtype = _dtype(node.outputs[0])
    scalar_type = out_dtype.type
    get_alpha = _usmm_scalar(alpha.type.ndim)
    check_inner = _inner_checker("Usmm")
    m_broadcast = "Usmm: z does not broadcast to the product (z rows, z columns, rows, columns):"

    @numba_njit
    def start(z, n_rows, n_cols):
        if (z.shape[0] != 1 and z.shape[0] != n_rows) or (
            z.shape[1] != 1 and z.shape[1] != n_cols
        ):
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

    if _is_sparse(x) and not _is_sparse(y):
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

    if _is_sparse(y) and not _is_sparse(x):
        spmm = _spmm(_flip(y.type.format), "Usmm: y")
        transpose = _transpose_builder(y.type.format)

        @numba_njit
        def usmm_dense_sparse(alpha, x, y, z):
            check_inner(x.shape[1], y.shape[0])
            out_t = np.ascontiguousarray(start(z, x.shape[0], y.shape[1]).T)
            spmm(transpose(y), np.ascontiguousarray(x.T), scalar_type(get_alpha(alpha)),
                 out_t, out_t)
            return np.ascontiguousarray(out_t.T)

        return usmm_dense_sparse

    # sparse x sparse
    x_check = _make_checker(x.type.format, "Usmm: x")
    y_check = _make_checker(y.type.format, "Usmm: y")
    x_csr = _same_format_arrays("csr", x.type.format)
    y_csr = _same_format_arrays("csr", y.type.format)

    @numba_njit
    def usmm_sparse_sparse(alpha, x, y, z):
        x_check(x)
        y_check(y)
        check_inner(x.shape[1], y.shape[0])
        x_ptr, x_ind, x_dat = x_csr(x, x.shape[0])
        y_ptr, y_ind, y_dat = y_csr(y, y.shape[0])
        p_ptr, p_ind, p_dat = ks.spgemm_csr(
            x_ptr, x_ind, x_dat, y_ptr, y_ind, y_dat, y.shape[1], out_dtype
        )
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
    out_dtype = _dtype(node.outputs[0])
    is_csr = out_fmt == "csr"
    build = _builder(out_fmt)
    if not _is_sparse(y):
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

    x_check = _make_checker(x.type.format, "TrueDot: x")
    y_check = _make_checker(y.type.format, "TrueDot: y")
    check_inner = _inner_checker("TrueDot")
    if is_csr:
        # C = A @ B with A, B in CSR
        a_arrays = _same_format_arrays("csr", x.type.format)
        b_arrays = _same_format_arrays("csr", y.type.format)
    else:
        # C.T = B.T @ A.T; the CSC arrays of a matrix are the CSR arrays of its transpose
        a_arrays = _same_format_arrays("csc", y.type.format)
        b_arrays = _same_format_arrays("csc", x.type.format)

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
        ptr, ind, dat = ks.spgemm_csr(
            a_ptr, a_ind, a_dat, b_ptr, b_ind, b_dat, n_cols, out_dtype
        )
        return build(dat, ind, ptr, x.shape[0], y.shape[1])

    return true_dot_sparse


@register_sparse(psm.SamplingDot, version=1)
def numba_funcify_SamplingDot(op, node, **kwargs):
    """``p * (x @ y.T)`` on the pattern of ``p`` (duplicates summed, stored zeros kept)."""
    x, y, p = node.inputs
    fmt = p.type.format
    is_csr = fmt == "csr"
    out_dtype = _dtype(node.outputs[0])
    acc_dtype = np.result_type(_dtype(x), _dtype(y), _dtype(p))
    check = _make_checker(fmt, "SamplingDot: p")
    build = _builder(fmt)
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


# ---------------------------------------------------------------------------------------------
# CSM gradient and structural Ops


@register_sparse(psb.CSMGrad, version=1)
def numba_funcify_CSMGrad(op, node, **kwargs):
    out_dtype = _dtype(node.outputs[0])
    check_x = _array_checker("CSMGrad: x", "csr")
    check_g = _array_checker("CSMGrad: gradient", "csr")
    m_length = "CSMGrad: shapes must have length 2 (len(x_shape), len(g_shape)):"
    m_shape = "CSMGrad: the gradient and the matrix have different shapes:"
    m_major = (
        "CSMGrad: len(indptr) - 1 is neither the number of rows nor of columns "
        "(len(indptr) - 1, rows, columns):"
    )
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
    check = _make_checker(fmt, "EnsureSortedIndices: x")
    build = _builder(fmt)

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
    check = _make_checker(fmt, "Remove0: x")
    build = _builder(fmt)

    @numba_njit
    def remove0(x):
        check(x)
        ptr, ind, dat = ks.eliminate_zeros(x.indptr, x.indices, x.data)
        return build(dat, ind, ptr, x.shape[0], x.shape[1])

    return remove0


@register_sparse(psb.ConstructSparseFromList, version=1)
def numba_funcify_ConstructSparseFromList(op, node, **kwargs):
    out_dtype = _dtype(node.outputs[0])
    m_rows = (
        "ConstructSparseFromList: values and ilist differ in length (rows of values, len(ilist)):"
    )
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
# Element-wise Ops: additions, products, comparisons

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
    out_dtype = _dtype(node.outputs[0])
    acc_dtype = out_dtype if code <= ks.OP_MUL else np.result_type(_dtype(x), _dtype(y))
    check_shapes = _same_shape_checker(where)
    x_check = _make_checker(fmt, where + ": x")
    y_check = _make_checker(y.type.format, where + ": y")
    y_arrays = _same_format_arrays(fmt, y.type.format)
    build = _builder(fmt)

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
    acc_dtype = np.result_type(_dtype(x), _dtype(y))
    check_shapes = _same_shape_checker(where)
    check = _make_checker(x.type.format, where + ": x")

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
    out_dtype = _dtype(node.outputs[0])
    check_shapes = _same_shape_checker("AddSSData")
    check_x = _make_checker(fmt, "AddSSData: x")
    check_y = _make_checker(fmt, "AddSSData: y")
    build = _builder(fmt)
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
    out_dtype = _dtype(node.outputs[0])
    check_shapes = _same_shape_checker("AddSD")
    check = _make_checker(x.type.format, "AddSD: x")

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
    check = _make_checker(fmt, "StructuredAddSV: x")
    build = _builder(fmt)
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


# ---------------------------------------------------------------------------------------------
# Block diagonal, casts, dense conversion


def _block_as_csr(block, dtype):
    """CSR arrays ``(indptr, indices, data, n_rows, n_cols)`` of a block (Numba only)."""
    raise NotImplementedError


_raise_for_csr_block = _status_raiser("SparseBlockDiagonal: a csr block", "csr")
_raise_for_csc_block = _status_raiser("SparseBlockDiagonal: a csc block", "csc")


@overload(_block_as_csr)
def _overload_block_as_csr(block, dtype):
    if isinstance(block, CSRMatrixType):

        def impl(block, dtype):
            n_rows, n_cols = block.shape
            status = ks.compressed_status(
                block.indptr, block.indices, block.data.shape[0], n_rows, n_cols
            )
            if status[0] != ks.STATUS_OK:
                _raise_for_csr_block(status)
            return (block.indptr.copy(), block.indices.copy(), block.data.astype(dtype),
                    np.int64(n_rows), np.int64(n_cols))

    elif isinstance(block, CSCMatrixType):

        def impl(block, dtype):
            n_rows, n_cols = block.shape
            status = ks.compressed_status(
                block.indptr, block.indices, block.data.shape[0], n_cols, n_rows
            )
            if status[0] != ks.STATUS_OK:
                _raise_for_csc_block(status)
            ptr, ind, dat = ks.swap_compressed(block.indptr, block.indices, block.data, n_rows)
            return ptr, ind, dat.astype(dtype), np.int64(n_rows), np.int64(n_cols)

    else:

        def impl(block, dtype):
            # scipy.sparse.block_diag stores every entry of a dense block, zeros included
            ptr, ind, dat = ks.dense_to_compressed(block, True, True)
            return (ptr, ind, dat.astype(dtype), np.int64(block.shape[0]),
                    np.int64(block.shape[1]))

    return impl


@register_sparse(SparseBlockDiagonal, version=1)
def numba_funcify_SparseBlockDiagonal(op, node, **kwargs):
    """``scipy.sparse.block_diag`` of sparse and dense blocks, canonical output."""
    out_dtype = _dtype(node.outputs[0])
    is_csr = op.format == "csr"
    build = _builder(op.format)

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
    in_dtype = _dtype(node.inputs[0])
    out_dtype = np.dtype(op.out_type)
    if in_dtype.kind == "c" or out_dtype.kind == "c":
        from pytensor.link.numba.dispatch.sparse.basic import numba_funcify_Cast as pt_cast

        return pt_cast(op, node, **kwargs), 0
    build = _builder(node.inputs[0].type.format)

    @numba_njit
    def cast(x):
        return build(
            x.data.astype(out_dtype), x.indices.copy(), x.indptr.copy(), x.shape[0], x.shape[1]
        )

    return cast


@register_sparse(psb.DenseFromSparse, version=1)
def numba_funcify_DenseFromSparse(op, node, **kwargs):
    """``x.toarray()`` summing duplicate entries (PyTensor's version keeps the last one)."""
    [x] = node.inputs
    is_csr = x.type.format == "csr"
    out_dtype = _dtype(node.outputs[0])
    check = _make_checker(x.type.format, "DenseFromSparse: x")

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
    start, stop, step = slice(
        _scalar_or_none(start), _scalar_or_none(stop), _scalar_or_none(step)
    ).indices(size)
    return np.arange(start, stop, step).astype(np.int32)


@register_sparse(GetItem2dGrad, version=1)
def numba_funcify_GetItem2dGrad(op, node, **kwargs):
    """The sliced gradient ``gz`` placed back at its positions in a zero matrix like ``x``."""
    x, gz = node.inputs[:2]
    fmt = x.type.format
    is_csr = fmt == "csr"
    build = _builder(fmt)
    check = _make_checker(fmt, "GetItem2dGrad: gz")
    m_shape = "GetItem2dGrad: gz does not have the shape of the slice (gz rows, gz columns, " \
        "slice rows, slice columns):"

    @numba_njit
    def get_item_2d_grad(x, gz, start1, stop1, step1, start2, stop2, step2):
        rows = _slice_positions(x.shape[0], start1, stop1, step1)
        cols = _slice_positions(x.shape[1], start2, stop2, step2)
        if gz.shape[0] != rows.shape[0] or gz.shape[1] != cols.shape[0]:
            raise ValueError(m_shape, gz.shape[0], gz.shape[1], rows.shape[0], cols.shape[0])
        check(gz)
        if is_csr:
            ptr, ind, dat = ks.scatter_slices(
                gz.indptr, gz.indices, gz.data, rows, cols, x.shape[0], x.shape[1]
            )
        else:
            ptr, ind, dat = ks.scatter_slices(
                gz.indptr, gz.indices, gz.data, cols, rows, x.shape[1], x.shape[0]
            )
        return build(dat, ind, ptr, x.shape[0], x.shape[1])

    return get_item_2d_grad


# ---------------------------------------------------------------------------------------------
# Opt-in: the same implementations for PyTensor's own classes

# Replaced even where PyTensor has its own Numba implementation; docs/sparse.md says why and
# names the test that shows it (speed of the products, duplicates in DenseFromSparse, casts
# that PyTensor's version sends to object mode).
_REPLACE_UPSTREAM = (
    psm.Dot,
    psm.StructuredDot,
    psm.StructuredDotGradCSR,
    psm.StructuredDotGradCSC,
    psb.Cast,
    psb.DenseFromSparse,
)


def _has_upstream_implementation(op_class):
    from pytensor.graph.op import Op
    from pytensor.link.numba.dispatch.basic import numba_funcify, numba_funcify_and_cache_key

    return any(
        dispatcher.dispatch(op_class) is not dispatcher.dispatch(Op)
        for dispatcher in (numba_funcify, numba_funcify_and_cache_key)
    )


@functools.cache
def pytensor_classes_to_patch():
    """PyTensor's sparse Op classes that :func:`patch_pytensor_sparse` gives our implementation
    (decided once, before patching, from PyTensor's own registrations)."""
    return tuple(
        op_class
        for op_class, _ in _PYTENSOR_IMPLEMENTATIONS
        if op_class in _REPLACE_UPSTREAM or not _has_upstream_implementation(op_class)
    )


_PATCHED = []


def patch_pytensor_sparse():
    """Give PyTensor's own sparse Ops our Numba implementations and register two rewrites.

    Opt-in (``import pytensor_nnet`` alone changes nothing in PyTensor): afterwards
    every graph of ``pytensor.sparse`` Ops in Numba mode uses the implementations of this
    module where PyTensor has none (instead of object mode) and for the products, casts
    and conversions listed in ``_REPLACE_UPSTREAM``; the rewrites
    ``pytensor_nnet_usmm_fusion`` and ``pytensor_nnet_csm_grad_sampled_dot`` are
    registered. Calling it again does nothing.
    """
    if _PATCHED:
        return
    chosen = pytensor_classes_to_patch()
    for op_class, funcify_and_key in _PYTENSOR_IMPLEMENTATIONS:
        if op_class in chosen:
            register_funcify_and_cache_key(op_class)(funcify_and_key)
    from pytensor_nnet.rewriting.sparse import register_sparse_rewrites

    register_sparse_rewrites()
    _PATCHED.append(True)
