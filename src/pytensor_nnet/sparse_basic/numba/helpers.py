"""Helpers of the Numba implementations of ``pytensor.sparse`` Ops: validation of the
compressed structure and of the shapes (``ValueError`` naming the Op and the argument) and
construction of the scipy matrices, usable inside the generated Numba functions.

The factories are memoized (``functools.cache``): nodes that need the same checker, builder
or product share one compiled Numba function per process.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp
from numba import types
from numba.extending import overload
from pytensor.link.numba.dispatch.basic import numba_njit
from pytensor.sparse.type import SparseTensorType

from pytensor_nnet.sparse_basic import kernels as ks


def is_sparse(var):
    """Whether the graph variable ``var`` has a sparse type."""
    return isinstance(var.type, SparseTensorType)


def dtype_of(var):
    """The numpy dtype of the graph variable ``var``."""
    return np.dtype(var.type.dtype)


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
def status_raiser(where, fmt):
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
def make_checker(fmt, where):
    """Numba function validating a sparse matrix of format ``fmt``; returns (n_major, n_minor).

    ``where`` (e.g. ``"Dot: x"``) starts the error messages.
    """
    is_csr = fmt == "csr"
    raise_for = status_raiser(where, fmt)

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
def array_checker(where, fmt):
    """Like :func:`make_checker` for raw ``(indptr, indices, data_size, n_major, n_minor)``."""
    raise_for = status_raiser(where, fmt)

    @numba_njit
    def check(indptr, indices, data_size, n_major, n_minor):
        status = ks.compressed_status(indptr, indices, data_size, n_major, n_minor)
        if status[0] != ks.STATUS_OK:
            raise_for(status)

    return check


@functools.cache
def inner_checker(where):
    """Numba function ``(n_left_columns, n_right_rows)`` raising when they differ."""
    message = f"{where}: inner dimensions do not match (columns of the left operand, rows of the right operand):"

    @numba_njit
    def check_inner(n_left, n_right):
        if n_left != n_right:
            raise ValueError(message, n_left, n_right)

    return check_inner


@functools.cache
def same_shape_checker(where):
    """Numba function ``(x, y)`` raising when two matrices have different shapes."""
    message = f"{where}: the operands have different shapes (x rows, x columns, y rows, y columns):"

    @numba_njit
    def check_same_shape(x, y):
        if x.shape[0] != y.shape[0] or x.shape[1] != y.shape[1]:
            raise ValueError(message, x.shape[0], x.shape[1], y.shape[0], y.shape[1])

    return check_same_shape


@functools.cache
def builder(fmt):
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
def same_format_arrays(fmt, other_fmt):
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
