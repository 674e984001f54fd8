"""Compressed sparse (CSR/CSC) kernels, compiled with Numba.

Every kernel works on the raw arrays of a compressed matrix, ``(indptr, indices, data)``,
so that one kernel serves both formats: a CSR matrix of shape ``(m, n)`` and a CSC matrix of
shape ``(n, m)`` have the same arrays ("major" axis = rows for CSR, columns for CSC; "minor"
axis = the other one). No PyTensor import: the Numba implementations
(:mod:`pytensor_nnet.sparse_basic.numba`) unpack scipy matrices and call these.

Contract: the caller validates the structure with :func:`compressed_status` (and the dense
shapes) *before* calling any other kernel, so the loops below never read or write out of
bounds. Index arrays are int32 (PyTensor's sparse type), entries inside one major slice may
be unsorted and may repeat (duplicates are summed wherever scipy sums them).

The loops are serial on purpose: on the 2-core machines we measure on, a ``prange`` version of
the sparse x dense product was slower than the serial one (other processes share the cores),
and BLAS-using neighbours in the same graph own the threads.
"""

from __future__ import annotations

import numba
import numpy as np

# Element-wise operation codes of :func:`elementwise_binary`.
OP_ADD = 0
OP_MUL = 1
OP_EQ = 2
OP_NE = 3
OP_LT = 4
OP_GT = 5
OP_LE = 6
OP_GE = 7


# --------------------------------------------------------------------------------------------
# Validation


# Codes returned by :func:`compressed_status` (with two integers describing the problem).
STATUS_OK = 0
STATUS_NEGATIVE_SHAPE = 1  # (n_major, n_minor)
STATUS_INDPTR_LENGTH = 2  # (len(indptr), n_major + 1)
STATUS_DATA_LENGTH = 3  # (len(data), len(indices))
STATUS_INDPTR_START = 4  # (indptr[0], 0)
STATUS_INDPTR_DECREASES = 5  # (position, indptr[position])
STATUS_INDPTR_END = 6  # (indptr[-1], len(indices))
STATUS_INDEX_RANGE = 7  # (index, position)


@numba.njit(cache=True)
def compressed_status(indptr, indices, data_size, n_major, n_minor):
    """Check that ``(indptr, indices)`` describe a valid compressed matrix.

    Parameters
    ----------
    indptr : (n_major + 1,) int array
    indices : (nnz_stored,) int array
    data_size : int
        ``len(data)``; must equal ``len(indices)``.
    n_major, n_minor : int
        Rows and columns for CSR, columns and rows for CSC.

    Returns
    -------
    (code, a, b) : ``STATUS_OK`` or the first ``STATUS_*`` problem found, and two integers
    locating it (see the constants). Checks ``len(indptr) == n_major + 1``,
    ``indptr[0] == 0``, ``indptr`` non-decreasing, ``indptr[-1] <= len(indices) ==
    len(data)`` and every stored index in ``[0, n_minor)``. Callers raise; messages are
    built by the caller so that this kernel stays cheap to compile.
    """
    if n_major < 0 or n_minor < 0:
        return STATUS_NEGATIVE_SHAPE, np.int64(n_major), np.int64(n_minor)
    if indptr.shape[0] != n_major + 1:
        return STATUS_INDPTR_LENGTH, np.int64(indptr.shape[0]), np.int64(n_major + 1)
    if indices.shape[0] != data_size:
        return STATUS_DATA_LENGTH, np.int64(data_size), np.int64(indices.shape[0])
    if indptr[0] != 0:
        return STATUS_INDPTR_START, np.int64(indptr[0]), np.int64(0)
    for i in range(n_major):
        if indptr[i + 1] < indptr[i]:
            return STATUS_INDPTR_DECREASES, np.int64(i + 1), np.int64(indptr[i + 1])
    if indptr[n_major] > indices.shape[0]:
        return STATUS_INDPTR_END, np.int64(indptr[n_major]), np.int64(indices.shape[0])
    for p in range(indptr[n_major]):
        j = indices[p]
        if j < 0 or j >= n_minor:
            return STATUS_INDEX_RANGE, np.int64(j), np.int64(p)
    return STATUS_OK, np.int64(0), np.int64(0)


@numba.njit(cache=True)
def has_canonical_format(indptr, indices):
    """True when the indices of every major slice are strictly increasing (sorted, no dups)."""
    for i in range(indptr.shape[0] - 1):
        for p in range(indptr[i] + 1, indptr[i + 1]):
            if indices[p] <= indices[p - 1]:
                return False
    return True


# --------------------------------------------------------------------------------------------
# Sparse x dense products


@numba.njit(cache=True)
def csr_matmul_dense(indptr, indices, data, b, alpha, z, out):
    """``out = z + alpha * A @ b`` for ``A`` in CSR, writing each output row once.

    Parameters
    ----------
    indptr, indices, data : CSR arrays of ``A``, shape ``(m, n)``
    b : (n, k) C-contiguous array
    alpha : scalar
    z : (m, k), (1, k) or (0, k) C-contiguous array
        The starting value of each row: its own row, the one row broadcast, or zeros.
    out : (m, k) C-contiguous array, overwritten (may be ``z`` itself)

    Each output row is initialised and accumulated while it is in cache, so the result is
    written once (no separate zeroing or ``+ z`` pass). Four stored entries of a row are
    combined per pass over the row, which quarters its loads and stores compared with
    scipy's one axpy per entry.
    """
    n_rows = indptr.shape[0] - 1
    k = b.shape[1]
    z_rows = z.shape[0]
    for i in range(n_rows):
        o = out[i]
        if z_rows == 0:
            for c in range(k):
                o[c] = 0
        else:
            zi = z[i if z_rows > 1 else 0]
            for c in range(k):
                o[c] = zi[c]
        p = indptr[i]
        end = indptr[i + 1]
        if k == 1:
            acc = 0
            while p < end:
                acc += data[p] * b[indices[p], 0]
                p += 1
            o[0] += alpha * acc
            continue
        while p + 3 < end:
            v0 = alpha * data[p]
            v1 = alpha * data[p + 1]
            v2 = alpha * data[p + 2]
            v3 = alpha * data[p + 3]
            b0 = b[indices[p]]
            b1 = b[indices[p + 1]]
            b2 = b[indices[p + 2]]
            b3 = b[indices[p + 3]]
            for c in range(k):
                o[c] += (v0 * b0[c] + v1 * b1[c]) + (v2 * b2[c] + v3 * b3[c])
            p += 4
        while p < end:
            v0 = alpha * data[p]
            b0 = b[indices[p]]
            for c in range(k):
                o[c] += v0 * b0[c]
            p += 1


@numba.njit(cache=True)
def init_rows(z, out):
    """``out[i] = z[i]`` (``z`` with m rows), ``z[0]`` (one row) or ``0`` (``z`` without rows).

    ``out`` is C-contiguous ``(m, k)``; the branch is taken once, so each case is a plain
    (vectorised) copy or fill.
    """
    n_rows, k = out.shape
    if z.shape[0] == 0:
        flat = out.reshape(n_rows * k)
        for q in range(n_rows * k):
            flat[q] = 0
    elif z.shape[0] == 1:
        z0 = z[0]
        for i in range(n_rows):
            o = out[i]
            for c in range(k):
                o[c] = z0[c]
    else:
        for i in range(n_rows):
            o = out[i]
            zi = z[i]
            for c in range(k):
                o[c] = zi[c]


@numba.njit(cache=True)
def csc_matmul_dense_into(indptr, indices, data, b, alpha, out):
    """``out += alpha * A @ b`` for ``A`` in CSC.

    Parameters
    ----------
    indptr, indices, data : CSC arrays of ``A``, shape ``(m, n)``
    b : (n, k) C-contiguous array
    alpha : scalar
    out : (m, k) C-contiguous array, updated in place

    Scatter form (one pass over the columns): four entries of a column share each load of
    ``b[j, c]``. Rows may repeat within a column (the updates stay sequential).
    """
    n_cols = indptr.shape[0] - 1
    k = b.shape[1]
    if k == 1:
        for j in range(n_cols):
            bj = alpha * b[j, 0]
            for p in range(indptr[j], indptr[j + 1]):
                out[indices[p], 0] += data[p] * bj
        return
    for j in range(n_cols):
        bj = b[j]
        p = indptr[j]
        end = indptr[j + 1]
        while p + 3 < end:
            v0 = alpha * data[p]
            v1 = alpha * data[p + 1]
            v2 = alpha * data[p + 2]
            v3 = alpha * data[p + 3]
            o0 = out[indices[p]]
            o1 = out[indices[p + 1]]
            o2 = out[indices[p + 2]]
            o3 = out[indices[p + 3]]
            for c in range(k):
                bc = bj[c]
                o0[c] += v0 * bc
                o1[c] += v1 * bc
                o2[c] += v2 * bc
                o3[c] += v3 * bc
            p += 4
        while p < end:
            v0 = alpha * data[p]
            o0 = out[indices[p]]
            for c in range(k):
                o0[c] += v0 * bj[c]
            p += 1


@numba.njit(cache=True)
def sampled_dot(indptr, indices, major_is_row, g, b, out):
    """``out[p] = g[row(p)] . b[col(p)]`` for every stored entry ``p`` of a pattern.

    This is ``(g @ b.T)`` sampled at the pattern (SDDMM): the structured gradient of a sparse
    x dense product with respect to the sparse operand, and the core of ``sampling_dot``.

    Parameters
    ----------
    indptr, indices : pattern arrays (CSR when ``major_is_row``, else CSC)
    major_is_row : bool
    g : (m, k) C-contiguous array, one row per row of the pattern
    b : (n, k) C-contiguous array, one row per column of the pattern
    out : (nnz_stored,) array, entries past ``indptr[-1]`` are left alone
    """
    n_major = indptr.shape[0] - 1
    k = g.shape[1]
    for i in range(n_major):
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if major_is_row:
                gr = g[i]
                br = b[j]
            else:
                gr = g[j]
                br = b[i]
            acc = 0
            for c in range(k):
                acc += gr[c] * br[c]
            out[p] = acc


@numba.njit(cache=True)
def sampled_sparse_dot(x_indptr, x_indices, g_indptr, g_indices, g_data, b_indptr, b_indices, b_data, k, out):
    """``out[p] = g[i] . b[j]`` for stored entries ``p = (i, j)`` of a CSR pattern ``x``.

    ``g`` (m, k) and ``b`` (n, k) are CSR matrices (rows may be unsorted, with duplicates): the
    structured gradient of ``structured_dot(x, b.T)`` when ``b`` and the incoming gradient
    are sparse. Row ``i`` of ``g`` is scattered into a dense buffer once.
    """
    buf = np.zeros(k, dtype=out.dtype)
    for i in range(x_indptr.shape[0] - 1):
        if x_indptr[i] == x_indptr[i + 1]:
            continue
        for q in range(g_indptr[i], g_indptr[i + 1]):
            buf[g_indices[q]] += g_data[q]
        for p in range(x_indptr[i], x_indptr[i + 1]):
            j = x_indices[p]
            acc = 0
            for q in range(b_indptr[j], b_indptr[j + 1]):
                acc += buf[b_indices[q]] * b_data[q]
            out[p] = acc
        for q in range(g_indptr[i], g_indptr[i + 1]):
            buf[g_indices[q]] = 0


# --------------------------------------------------------------------------------------------
# Structure: gradients of CSM, sorting, conversions


@numba.njit(cache=True)
def csm_grad(x_indptr, x_indices, g_indptr, g_indices, g_data, n_minor, out):
    """Gradient of ``CSM`` with respect to its data vector.

    ``out[p]`` = sum of the stored entries of ``g`` at the position of ``x``'s entry ``p``
    (zero where ``g`` has none); ``x`` and ``g`` have the same format and shape, their
    indices may be unsorted and ``g`` may have duplicates. ``out`` must be zero on entry.
    """
    row = np.zeros(n_minor, dtype=out.dtype)
    for i in range(x_indptr.shape[0] - 1):
        for q in range(g_indptr[i], g_indptr[i + 1]):
            row[g_indices[q]] += g_data[q]
        for p in range(x_indptr[i], x_indptr[i + 1]):
            out[p] = row[x_indices[p]]
        for q in range(g_indptr[i], g_indptr[i + 1]):
            row[g_indices[q]] = 0


@numba.njit(cache=True)
def sort_indices(indptr, indices, data):
    """Copies of ``indices`` and ``data`` with every major slice sorted by index (stable).

    Duplicates are kept (in their original order); entries past ``indptr[-1]`` are dropped.
    """
    nnz = indptr[indptr.shape[0] - 1]
    out_indices = indices[:nnz].copy()
    out_data = data[:nnz].copy()
    for i in range(indptr.shape[0] - 1):
        start = indptr[i]
        end = indptr[i + 1]
        sorted_already = True
        for p in range(start + 1, end):
            if indices[p] < indices[p - 1]:
                sorted_already = False
                break
        if sorted_already:
            continue
        order = np.argsort(indices[start:end], kind="mergesort")
        for t in range(end - start):
            out_indices[start + t] = indices[start + order[t]]
            out_data[start + t] = data[start + order[t]]
    return out_indices, out_data


@numba.njit(cache=True)
def canonicalize(indptr, indices, data, n_minor, drop_zeros):
    """Sum duplicates and sort every major slice; drop zero results when ``drop_zeros``.

    Returns new ``(indptr, indices, data)``; the matrix is unchanged (up to explicit zeros).
    """
    n_major = indptr.shape[0] - 1
    nnz = indptr[n_major]
    acc = np.zeros(n_minor, dtype=data.dtype)
    seen = np.zeros(n_minor, dtype=np.bool_)
    touched = np.empty(n_minor, dtype=np.int32)
    out_indptr = np.empty(n_major + 1, dtype=np.int32)
    out_indices = np.empty(nnz, dtype=np.int32)
    out_data = np.empty(nnz, dtype=data.dtype)
    out_indptr[0] = 0
    pos = 0
    for i in range(n_major):
        t = 0
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if not seen[j]:
                seen[j] = True
                touched[t] = j
                t += 1
            acc[j] += data[p]
        row = touched[:t]
        row.sort()
        for s in range(t):
            j = row[s]
            v = acc[j]
            if not (drop_zeros and v == 0):
                out_indices[pos] = j
                out_data[pos] = v
                pos += 1
            acc[j] = 0
            seen[j] = False
        out_indptr[i + 1] = pos
    return out_indptr, out_indices[:pos].copy(), out_data[:pos].copy()


@numba.njit(cache=True)
def eliminate_zeros(indptr, indices, data):
    """New ``(indptr, indices, data)`` without the stored zeros (order otherwise kept)."""
    n_major = indptr.shape[0] - 1
    nnz = indptr[n_major]
    kept = 0
    for p in range(nnz):
        if data[p] != 0:
            kept += 1
    out_indptr = np.empty(n_major + 1, dtype=np.int32)
    out_indices = np.empty(kept, dtype=np.int32)
    out_data = np.empty(kept, dtype=data.dtype)
    out_indptr[0] = 0
    pos = 0
    for i in range(n_major):
        for p in range(indptr[i], indptr[i + 1]):
            if data[p] != 0:
                out_indices[pos] = indices[p]
                out_data[pos] = data[p]
                pos += 1
        out_indptr[i + 1] = pos
    return out_indptr, out_indices, out_data


@numba.njit(cache=True)
def swap_compressed(indptr, indices, data, n_minor):
    """Convert CSR arrays to CSC arrays of the same matrix (or CSC to CSR).

    Returns ``(indptr, indices, data)`` with ``n_minor + 1`` pointers; indices come out sorted,
    duplicates are kept.
    """
    n_major = indptr.shape[0] - 1
    nnz = indptr[n_major]
    out_indptr = np.zeros(n_minor + 1, dtype=np.int32)
    for p in range(nnz):
        out_indptr[indices[p] + 1] += 1
    for j in range(n_minor):
        out_indptr[j + 1] += out_indptr[j]
    fill = out_indptr[:n_minor].copy()
    out_indices = np.empty(nnz, dtype=np.int32)
    out_data = np.empty(nnz, dtype=data.dtype)
    for i in range(n_major):
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            q = fill[j]
            fill[j] = q + 1
            out_indices[q] = i
            out_data[q] = data[p]
    return out_indptr, out_indices, out_data


@numba.njit(cache=True)
def compressed_to_dense_into(indptr, indices, data, major_is_row, out):
    """``out += A`` (duplicates summed) for ``A`` given by compressed arrays."""
    for i in range(indptr.shape[0] - 1):
        for p in range(indptr[i], indptr[i + 1]):
            if major_is_row:
                out[i, indices[p]] += data[p]
            else:
                out[indices[p], i] += data[p]


@numba.njit(cache=True)
def dense_to_compressed(dense, major_is_row, keep_zeros):
    """Compressed arrays of a dense matrix (CSR when ``major_is_row``, else CSC).

    Zeros are skipped unless ``keep_zeros`` (then every position is stored).
    """
    n_rows, n_cols = dense.shape
    n_major = n_rows if major_is_row else n_cols
    n_minor = n_cols if major_is_row else n_rows
    nnz = 0
    for i in range(n_rows):
        for j in range(n_cols):
            if keep_zeros or dense[i, j] != 0:
                nnz += 1
    out_indptr = np.empty(n_major + 1, dtype=np.int32)
    out_indices = np.empty(nnz, dtype=np.int32)
    out_data = np.empty(nnz, dtype=dense.dtype)
    out_indptr[0] = 0
    pos = 0
    for i in range(n_major):
        for j in range(n_minor):
            v = dense[i, j] if major_is_row else dense[j, i]
            if keep_zeros or v != 0:
                out_indices[pos] = j
                out_data[pos] = v
                pos += 1
        out_indptr[i + 1] = pos
    return out_indptr, out_indices, out_data


# --------------------------------------------------------------------------------------------
# Element-wise sparse (op) sparse, sparse x sparse product


@numba.njit(cache=True, inline="always")
def _apply_op(op, a, b):
    if op == OP_ADD:
        return a + b
    if op == OP_MUL:
        return a * b
    if op == OP_EQ:
        return 1 if a == b else 0
    if op == OP_NE:
        return 1 if a != b else 0
    if op == OP_LT:
        return 1 if a < b else 0
    if op == OP_GT:
        return 1 if a > b else 0
    if op == OP_LE:
        return 1 if a <= b else 0
    return 1 if a >= b else 0


@numba.njit(cache=True)
def elementwise_binary(a_indptr, a_indices, a_data, b_indptr, b_indices, b_data, n_minor, op, acc_dtype, out_dtype):
    """``A (op) B`` element-wise for two matrices with the same format and shape.

    Duplicates are summed first (in ``acc_dtype``), so the matrices are combined as the dense
    matrices they represent. The result is canonical (sorted, no duplicates) without stored
    zeros, in ``out_dtype``. For the comparisons true at ``(0, 0)`` (``==``, ``<=``, ``>=``)
    every position outside both patterns is stored as 1, as scipy does.
    """
    n_major = a_indptr.shape[0] - 1
    ca = np.zeros(n_minor, dtype=acc_dtype)
    cb = np.zeros(n_minor, dtype=acc_dtype)
    seen = np.zeros(n_minor, dtype=np.bool_)
    touched = np.empty(n_minor, dtype=np.int32)
    zero_true = op == OP_EQ or op == OP_LE or op == OP_GE
    if zero_true:
        cap = n_major * n_minor
    else:
        cap = a_indptr[n_major] + b_indptr[n_major]
    out_indptr = np.empty(n_major + 1, dtype=np.int32)
    out_indices = np.empty(cap, dtype=np.int32)
    out_data = np.empty(cap, dtype=out_dtype)
    out_indptr[0] = 0
    pos = 0
    for i in range(n_major):
        t = 0
        for p in range(a_indptr[i], a_indptr[i + 1]):
            j = a_indices[p]
            if not seen[j]:
                seen[j] = True
                touched[t] = j
                t += 1
            ca[j] += a_data[p]
        for p in range(b_indptr[i], b_indptr[i + 1]):
            j = b_indices[p]
            if not seen[j]:
                seen[j] = True
                touched[t] = j
                t += 1
            cb[j] += b_data[p]
        if zero_true:
            for j in range(n_minor):
                if seen[j]:
                    v = _apply_op(op, ca[j], cb[j])
                else:
                    v = 1
                if v != 0:
                    out_indices[pos] = j
                    out_data[pos] = v
                    pos += 1
        else:
            row = touched[:t]
            row.sort()
            for s in range(t):
                j = row[s]
                v = _apply_op(op, ca[j], cb[j])
                if v != 0:
                    out_indices[pos] = j
                    out_data[pos] = v
                    pos += 1
        for s in range(t):
            j = touched[s]
            ca[j] = 0
            cb[j] = 0
            seen[j] = False
        out_indptr[i + 1] = pos
    return out_indptr, out_indices[:pos].copy(), out_data[:pos].copy()


@numba.njit(cache=True)
def compare_dense(a, b, op, out):
    """``out[i, j] = a[i, j] (op) b[i, j]`` as 0/1 for a comparison code ``op``."""
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[i, j] = _apply_op(op, a[i, j], b[i, j])


@numba.njit(cache=True)
def spgemm_csr(a_indptr, a_indices, a_data, b_indptr, b_indices, b_data, n_cols, out_dtype):
    """CSR x CSR product, CSR result: canonical (sorted, no duplicates), zeros dropped."""
    n_rows = a_indptr.shape[0] - 1
    mark = np.full(n_cols, -1, dtype=np.int64)
    bound = 0
    for i in range(n_rows):
        for p in range(a_indptr[i], a_indptr[i + 1]):
            j = a_indices[p]
            for q in range(b_indptr[j], b_indptr[j + 1]):
                c = b_indices[q]
                if mark[c] != i:
                    mark[c] = i
                    bound += 1
    acc = np.zeros(n_cols, dtype=out_dtype)
    seen = np.zeros(n_cols, dtype=np.bool_)
    touched = np.empty(n_cols, dtype=np.int32)
    out_indptr = np.empty(n_rows + 1, dtype=np.int32)
    out_indices = np.empty(bound, dtype=np.int32)
    out_data = np.empty(bound, dtype=out_dtype)
    out_indptr[0] = 0
    pos = 0
    for i in range(n_rows):
        t = 0
        for p in range(a_indptr[i], a_indptr[i + 1]):
            j = a_indices[p]
            v = a_data[p]
            for q in range(b_indptr[j], b_indptr[j + 1]):
                c = b_indices[q]
                if not seen[c]:
                    seen[c] = True
                    touched[t] = c
                    t += 1
                acc[c] += v * b_data[q]
        row = touched[:t]
        row.sort()
        for s in range(t):
            c = row[s]
            if acc[c] != 0:
                out_indices[pos] = c
                out_data[pos] = acc[c]
                pos += 1
            acc[c] = 0
            seen[c] = False
        out_indptr[i + 1] = pos
    return out_indptr, out_indices[:pos].copy(), out_data[:pos].copy()


# --------------------------------------------------------------------------------------------
# Builders used by single Ops


@numba.njit(cache=True)
def scatter_slices(g_indptr, g_indices, g_data, major_map, minor_map, n_major, n_minor):
    """Place a sliced matrix back into a zero matrix (gradient of ``x[a:b:s, c:d:t]``).

    ``g`` is the slice (same format as the result), ``major_map[i]`` / ``minor_map[j]`` are
    the positions of its major slice ``i`` / minor index ``j`` in the full matrix (distinct).
    Returns canonical arrays (sorted, duplicates of ``g`` summed, stored zeros kept).
    """
    nnz = g_indptr[g_indptr.shape[0] - 1]
    counts = np.zeros(n_major + 1, dtype=np.int32)
    for i in range(g_indptr.shape[0] - 1):
        counts[major_map[i] + 1] = g_indptr[i + 1] - g_indptr[i]
    for i in range(n_major):
        counts[i + 1] += counts[i]
    indices = np.empty(nnz, dtype=np.int32)
    data = np.empty(nnz, dtype=g_data.dtype)
    for i in range(g_indptr.shape[0] - 1):
        q = counts[major_map[i]]
        for p in range(g_indptr[i], g_indptr[i + 1]):
            indices[q] = minor_map[g_indices[p]]
            data[q] = g_data[p]
            q += 1
    return canonicalize(counts, indices, data, n_minor, False)


@numba.njit(cache=True)
def rows_to_csc(values, ilist):
    """CSC arrays of the matrix whose row ``ilist[r]`` holds ``values[r]`` (rows may repeat).

    Column ``c`` stores ``values[:, c]`` at rows ``ilist`` (``ConstructSparseFromList``).
    """
    n_vals, n_cols = values.shape
    indptr = np.empty(n_cols + 1, dtype=np.int32)
    indices = np.empty(n_vals * n_cols, dtype=np.int32)
    data = np.empty(n_vals * n_cols, dtype=values.dtype)
    for c in range(n_cols + 1):
        indptr[c] = c * n_vals
    for c in range(n_cols):
        for r in range(n_vals):
            indices[c * n_vals + r] = ilist[r]
            data[c * n_vals + r] = values[r, c]
    return indptr, indices, data
