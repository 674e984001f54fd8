"""Kernels of the random sparse matrices (numpy + Numba): Poisson, binomial and multinomial
draws.

``rng`` is a numpy ``Generator`` (advanced in place); the draws equal numpy's own for the same
generator state (Numba ports numpy's samplers). Sparse matrices are passed as their compressed
parts ``(data, indices, indptr)``, validated by the caller with
:func:`pytensor_nnet.kernels.sparse_conv.check_compressed`.
"""

from __future__ import annotations

import numba
import numpy as np

from pytensor_nnet.kernels.sparse_conv import group_entries
from pytensor_nnet.sparse_basic.kernels import eliminate_zeros

__all__ = [
    "poisson_sample",
    "binomial_sample",
    "group_by_row",
    "multinomial_sample",
]


@numba.njit(cache=True)
def poisson_sample(rng, lam, indices, indptr):
    """One Poisson draw per stored entry (mean ``lam[k]``), zeros dropped.

    Returns the compressed parts ``(data, indices, indptr)`` of the draws, in ``lam``'s
    dtype. Raises ``ValueError`` for a negative or non-finite mean.
    """
    for k in range(lam.shape[0]):
        if not (lam[k] >= 0 and lam[k] < np.inf):
            raise ValueError("poisson: x must hold finite, non-negative means")
    draws = np.empty(lam.shape[0], lam.dtype)
    for k in range(lam.shape[0]):
        draws[k] = rng.poisson(lam[k])
    indptr, indices, data = eliminate_zeros(indptr, indices, draws)
    return data, indices, indptr


@numba.njit(cache=True)
def binomial_sample(rng, n, p, n_major, n_minor, out_dtype):
    """``(n_major, n_minor)`` binomial(n, p) counts, drawn in C order, zeros dropped.

    Returns compressed parts ``(data, indices, indptr)`` (major axis first).
    """
    if n < 0:
        raise ValueError("Binomial: n must be >= 0")
    if not (0.0 <= p <= 1.0):
        raise ValueError("Binomial: p must be in [0, 1]")
    if n_major < 0 or n_minor < 0:
        raise ValueError("Binomial: shape must be non-negative")
    draws = np.empty(n_major * n_minor, out_dtype)
    for k in range(n_major * n_minor):
        draws[k] = rng.binomial(n, p)
    indices = np.empty(n_major * n_minor, np.int32)
    indptr = np.empty(n_major + 1, np.int32)
    for i in range(n_major + 1):
        indptr[i] = i * n_minor
    for i in range(n_major):
        for j in range(n_minor):
            indices[i * n_minor + j] = j
    indptr, indices, data = eliminate_zeros(indptr, indices, draws)
    return data, indices, indptr


@numba.njit(cache=True)
def group_by_row(is_csr, indices, indptr, n_rows):
    """``(row_order, row_ptr)`` (int64) grouping the entries of a CSR/CSC matrix by row.

    Within a row, a CSR matrix keeps its storage order; a CSC matrix gives column order.
    """
    if is_csr:
        return np.arange(indices.shape[0]), indptr.astype(np.int64)
    order, ptr = group_entries(indices[: indptr[indptr.shape[0] - 1]], n_rows)
    return order, ptr.astype(np.int64)


@numba.njit(cache=True)
def multinomial_sample(rng, n, p, row_order, row_ptr, tol):
    """Multinomial counts over the stored entries of each row of a sparse ``p``.

    Parameters
    ----------
    n : int64 array (n_rows,)
        Number of trials per row.
    p : float array (nnz,)
        Stored probabilities.
    row_order, row_ptr :
        Row ``i``'s entries are ``p[row_order[row_ptr[i]:row_ptr[i + 1]]]`` (the categories,
        in column order).
    tol : float
        Allowed ``|sum(row) - 1|``.

    Returns the counts in ``p``'s storage order (``p``'s pattern is kept; zero counts
    stay stored). Rows are drawn in order with the sequential-binomial method of numpy's
    ``Generator.multinomial``.
    """
    n_rows = row_ptr.shape[0] - 1
    for i in range(n_rows):
        if n[i] < 0:
            raise ValueError("multinomial: n must be >= 0")
        total = 0.0
        for k in range(row_ptr[i], row_ptr[i + 1]):
            v = p[row_order[k]]
            if not (0.0 <= v <= 1.0):
                raise ValueError("multinomial: p must hold probabilities in [0, 1]")
            total += v
        if abs(total - 1.0) > tol:
            raise ValueError("multinomial: each row of p must sum to 1")
    counts = np.zeros(p.shape[0], p.dtype)
    for i in range(n_rows):
        remaining_n = n[i]
        remaining_p = 1.0
        last = row_ptr[i + 1] - 1
        for k in range(row_ptr[i], last):
            if remaining_n <= 0:
                break
            q = 1.0
            if remaining_p > 0.0:
                q = min(p[row_order[k]] / remaining_p, 1.0)
            draw = rng.binomial(remaining_n, q)
            counts[row_order[k]] = draw
            remaining_n -= draw
            remaining_p -= p[row_order[k]]
        if remaining_n > 0 and last >= row_ptr[i]:
            counts[row_order[last]] = remaining_n
    return counts
