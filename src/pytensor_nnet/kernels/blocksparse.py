"""Block-sparse GEMV and outer-product kernels (numpy + Numba, no PyTensor).

A block-sparse weight matrix ``W`` of shape ``(iBlocks, oBlocks, iSize, oSize)`` is a dense
``(iBlocks * iSize, oBlocks * oSize)`` matrix cut into ``iSize x oSize`` blocks. Each example
``b`` of a minibatch selects ``iWin`` input blocks (``input_idx[b]``) and ``oWin`` output
blocks (``output_idx[b]``), and only those blocks are touched:

    gemv   out[b, j] = o[b, j] + sum_i h[b, i] @ W[input_idx[b, i], output_idx[b, j]]
    outer  out[x_idx[b, i], y_idx[b, j]] = o[...] + alpha * outer(x[b, i], y[b, j])
                                            (summed over every (b, i, j) hitting a block)

Every entry point validates shapes and block indices *before* a loop reads or writes memory
(:func:`check_gemv_args`, :func:`check_outer_args`): a bad index raises ``ValueError``
naming the argument, it never wraps around (negative) or reads out of bounds.

Threads: the GEMV is parallel over the ``(b, j)`` output blocks, which are disjoint. The outer
product is parallel over *target blocks*: contributions are sorted by the block they hit
(stable sort), so two examples that hit the same block are summed by one thread, in
``(b, i, j)`` order. Both are race-free and give the same bits for any thread count.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.core import types
from numba.core.extending import intrinsic
from numba.core.imputils import impl_ret_borrowed

__all__ = [
    "BlockIndexError",
    "BlockShapeError",
    "GEMV_LAYOUT",
    "OUTER_LAYOUT",
    "block_gemv",
    "block_outer",
    "check_gemv_args",
    "check_outer_args",
    "first_bad_index",
    "gemv_kernel",
    "match_dims",
    "outer_kernel",
]

# The named dimensions of each argument (legacy names), for the shape checks.
GEMV_LAYOUT = {
    "o": ("batch", "oWin", "oSize"),
    "W": ("iBlocks", "oBlocks", "iSize", "oSize"),
    "h": ("batch", "iWin", "iSize"),
    "inputIdx": ("batch", "iWin"),
    "outputIdx": ("batch", "oWin"),
}
OUTER_LAYOUT = {
    "o": ("xBlocks", "yBlocks", "xSize", "ySize"),
    "x": ("batch", "xWin", "xSize"),
    "y": ("batch", "yWin", "ySize"),
    "xIdx": ("batch", "xWin"),
    "yIdx": ("batch", "yWin"),
}


# --------------------------------------------------------------------------- validation


def match_dims(layout, shapes):
    """Check that every named dimension has one size across ``shapes``; return the sizes.

    ``layout`` maps argument names to dimension names (see :data:`GEMV_LAYOUT`), ``shapes``
    maps (some of) the same names to shape tuples whose entries may be ``None`` (unknown,
    e.g. static shapes at graph-build time). Raises ``ValueError`` naming both arguments.
    """
    sizes, source = {}, {}
    for arg, shape in shapes.items():
        for axis, (dim, size) in enumerate(zip(layout[arg], shape)):
            if size is None:
                continue
            if dim in sizes and sizes[dim] != size:
                ref_arg, ref_axis = source[dim]
                raise ValueError(
                    f"{arg}.shape[{axis}] is {size} but {dim} is {sizes[dim]} "
                    f"(from {ref_arg}.shape[{ref_axis}])"
                )
            sizes.setdefault(dim, size)
            source.setdefault(dim, (arg, axis))
    return sizes


class BlockShapeError(ValueError):
    """Two arguments disagree on a named dimension (raised from compiled code).

    The arguments are ``(arg, axis, size, dim, ref_arg, ref_axis, ref_size)``; the message
    is formatted in Python, which keeps the Numba code free of string building.
    """

    def __str__(self):
        if len(self.args) != 7:
            return super().__str__()
        arg, axis, size, dim, ref_arg, ref_axis, ref_size = self.args
        return f"{arg}.shape[{axis}] is {size} but {dim} is {ref_size} (from {ref_arg}.shape[{ref_axis}])"


class BlockIndexError(ValueError):
    """A block index outside ``[0, n_blocks)`` (raised from compiled code).

    The arguments are ``(name, b, i, value, n_blocks, blocks_from)``.
    """

    def __str__(self):
        if len(self.args) != 6:
            return super().__str__()
        name, b, i, value, n_blocks, blocks_from = self.args
        return (
            f"{name}[{b}, {i}] = {value} is not a valid block index: it must be in "
            f"[0, {n_blocks}) ({blocks_from})"
        )


# Numba bug (0.65): constants passed *into* a helper that raises reach Python from the wrong
# call site. Hence every raise below sits in the check itself, with its own constants.


@numba.njit(cache=True)
def first_bad_index(idx, n_blocks):
    """``(b, i)`` of the first entry of ``idx`` outside ``[0, n_blocks)``, else ``(-1, -1)``."""
    batch, win = idx.shape
    for b in range(batch):
        for i in range(win):
            v = idx[b, i]
            if v < 0 or v >= n_blocks:
                return b, i
    return -1, -1


@numba.njit(cache=True)
def check_gemv_args(o, W, h, input_idx, output_idx):
    """Check the shapes and block indices of a block-sparse GEMV (see :func:`gemv_kernel`).

    Raises :class:`BlockShapeError` or :class:`BlockIndexError`.
    """
    batch, i_win, i_size = h.shape
    if o.shape[0] != batch:
        raise BlockShapeError("o", 0, o.shape[0], "batch", "h", 0, batch)
    if input_idx.shape[0] != batch:
        raise BlockShapeError("inputIdx", 0, input_idx.shape[0], "batch", "h", 0, batch)
    if output_idx.shape[0] != batch:
        raise BlockShapeError("outputIdx", 0, output_idx.shape[0], "batch", "h", 0, batch)
    if input_idx.shape[1] != i_win:
        raise BlockShapeError("inputIdx", 1, input_idx.shape[1], "iWin", "h", 1, i_win)
    if output_idx.shape[1] != o.shape[1]:
        raise BlockShapeError("outputIdx", 1, output_idx.shape[1], "oWin", "o", 1, o.shape[1])
    if W.shape[2] != i_size:
        raise BlockShapeError("W", 2, W.shape[2], "iSize", "h", 2, i_size)
    if W.shape[3] != o.shape[2]:
        raise BlockShapeError("W", 3, W.shape[3], "oSize", "o", 2, o.shape[2])
    # Distinct names: Numba also mixes up reassigned variables in a raise's arguments.
    b_in, i_in = first_bad_index(input_idx, W.shape[0])
    if b_in >= 0:
        raise BlockIndexError("inputIdx", b_in, i_in, input_idx[b_in, i_in], W.shape[0], "iBlocks = W.shape[0]")
    b_out, j_out = first_bad_index(output_idx, W.shape[1])
    if b_out >= 0:
        raise BlockIndexError("outputIdx", b_out, j_out, output_idx[b_out, j_out], W.shape[1], "oBlocks = W.shape[1]")


@numba.njit(cache=True)
def check_outer_args(o, x, y, x_idx, y_idx):
    """Check the shapes and block indices of a block-sparse outer product (see :func:`block_outer`).

    Raises :class:`BlockShapeError` or :class:`BlockIndexError`.
    """
    batch, x_win, x_size = x.shape
    if y.shape[0] != batch:
        raise BlockShapeError("y", 0, y.shape[0], "batch", "x", 0, batch)
    if x_idx.shape[0] != batch:
        raise BlockShapeError("xIdx", 0, x_idx.shape[0], "batch", "x", 0, batch)
    if y_idx.shape[0] != batch:
        raise BlockShapeError("yIdx", 0, y_idx.shape[0], "batch", "x", 0, batch)
    if x_idx.shape[1] != x_win:
        raise BlockShapeError("xIdx", 1, x_idx.shape[1], "xWin", "x", 1, x_win)
    if y_idx.shape[1] != y.shape[1]:
        raise BlockShapeError("yIdx", 1, y_idx.shape[1], "yWin", "y", 1, y.shape[1])
    if o.shape[2] != x_size:
        raise BlockShapeError("o", 2, o.shape[2], "xSize", "x", 2, x_size)
    if o.shape[3] != y.shape[2]:
        raise BlockShapeError("o", 3, o.shape[3], "ySize", "y", 2, y.shape[2])
    b_x, i_x = first_bad_index(x_idx, o.shape[0])
    if b_x >= 0:
        raise BlockIndexError("xIdx", b_x, i_x, x_idx[b_x, i_x], o.shape[0], "xBlocks = o.shape[0]")
    b_y, j_y = first_bad_index(y_idx, o.shape[1])
    if b_y >= 0:
        raise BlockIndexError("yIdx", b_y, j_y, y_idx[b_y, j_y], o.shape[1], "yBlocks = o.shape[1]")


# --------------------------------------------------------------------------- loops

# Reassociation lets LLVM vectorise the dot products; no "nnan"/"ninf": NaN and inf propagate.
_FASTMATH = {"reassoc", "contract", "nsz"}

# Below this many multiply-adds a call stays on one thread: waking the pool costs more than
# it saves, and idle Numba threads would spin against the BLAS calls of the rest of a graph.
PARALLEL_MIN_MACS = 1 << 21


@numba.njit(cache=True, fastmath=_FASTMATH, parallel=True)
def _gemv_accumulate(out, W_C, transposed, h, input_idx, output_idx, n_chunks):
    """``out[b, j] += sum_i h[b, i] @ W[input_idx[b, i], output_idx[b, j]]``; no checks.

    ``W_C`` is C-contiguous: ``W`` itself, or when ``transposed`` the array whose
    ``(1, 0, 3, 2)`` transpose is ``W`` (the GEMV of the gradient wrt ``h``). Either way the
    innermost loop runs along memory: an axpy of a block row, or a dot product with a block
    column. The ``batch * oWin`` output blocks are disjoint: ``n_chunks`` threads' worth.
    """
    batch, i_win, i_size = h.shape
    o_win, o_size = out.shape[1], out.shape[2]
    n_tasks = batch * o_win
    for chunk in numba.prange(n_chunks):
        acc = np.empty(o_size, out.dtype)
        for task in range(chunk * n_tasks // n_chunks, (chunk + 1) * n_tasks // n_chunks):
            b = task // o_win
            j = task % o_win
            q = output_idx[b, j]
            acc[:] = 0
            for i in range(i_win):
                h_row = h[b, i]
                if transposed:
                    block_T = W_C[q, input_idx[b, i]]
                    for m in range(o_size):
                        w_col = block_T[m]
                        s = acc[m]
                        for k in range(i_size):
                            s += h_row[k] * w_col[k]
                        acc[m] = s
                else:
                    block = W_C[input_idx[b, i], q]
                    for k in range(i_size):
                        h_k = h_row[k]
                        w_row = block[k]
                        for m in range(o_size):
                            acc[m] += h_k * w_row[m]
            for m in range(o_size):
                out[b, j, m] += acc[m]


@numba.njit(cache=True, fastmath=_FASTMATH, parallel=True)
def _outer_accumulate(out, x, y, x_idx, y_idx, alpha, order, starts):
    """Add ``alpha * outer(x[b, i], y[b, j])`` to ``out[x_idx[b, i], y_idx[b, j]]``; no checks.

    Contribution ``c = (b * xWin + i) * yWin + j`` is added in the order ``order``. Each run
    ``order[starts[r]:starts[r + 1]]`` holds every contribution to the blocks it touches, so
    runs can go to different threads.
    """
    x_win, x_size = x.shape[1], x.shape[2]
    y_win, y_size = y.shape[1], y.shape[2]
    for run in numba.prange(starts.size - 1):
        for t in range(starts[run], starts[run + 1]):
            c = order[t]
            b = c // (x_win * y_win)
            i = (c // y_win) % x_win
            j = c % y_win
            block = out[x_idx[b, i], y_idx[b, j]]
            y_row = y[b, j]
            for k in range(x_size):
                a = alpha * x[b, i, k]
                for m in range(y_size):
                    block[k, m] += a * y_row[m]


@numba.njit(cache=True)
def _runs_by_block(x_idx, y_idx, y_blocks, threaded):
    """The order and runs in which :func:`_outer_accumulate` adds the contributions.

    Threaded: contributions stably sorted by the block they hit, one run per block. Else one
    run in ``(b, i, j)`` order, which sums every block in the same order (same bits).
    """
    batch, x_win = x_idx.shape
    y_win = y_idx.shape[1]
    n = batch * x_win * y_win
    if not threaded:
        return np.arange(n), np.array([0, n])
    keys = np.empty(n, np.int64)
    t = 0
    for b in range(batch):
        for i in range(x_win):
            row = np.int64(x_idx[b, i]) * y_blocks
            for j in range(y_win):
                keys[t] = row + y_idx[b, j]
                t += 1
    order = np.argsort(keys, kind="mergesort")
    starts = np.empty(n + 1, np.int64)
    n_runs = 0
    for t in range(n):
        if t == 0 or keys[order[t]] != keys[order[t - 1]]:
            starts[n_runs] = t
            n_runs += 1
    starts[n_runs] = n
    return order, starts[: n_runs + 1]


@intrinsic
def _assume_c_contiguous(typingctx, arr):
    """Retype an array already checked to be C-contiguous as a C-layout array (no copy).

    Numba types views built in compiled code (transposes, ``as_strided``) with layout "A",
    which hides unit strides from LLVM and keeps it from vectorising the block loops.
    """
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, signature, args):
        return impl_ret_borrowed(context, builder, signature.return_type, args[0])

    return arr.copy(layout="C")(arr), codegen


@numba.njit(cache=True)
def _contiguous_weights(W):
    """``(W_C, transposed)``: ``W`` as a C-contiguous array, reading it in place if possible.

    ``W_C`` is ``W`` when ``W`` is C-contiguous; the array ``W`` is the ``(1, 0, 3, 2)``
    transpose of (``transposed``) when that one is C-contiguous, as in the gradient wrt
    ``h``; otherwise a C-contiguous copy of ``W``.
    """
    if W.flags.c_contiguous:
        return _assume_c_contiguous(W), False
    s = W.strides
    swapped = np.lib.stride_tricks.as_strided(
        W, (W.shape[1], W.shape[0], W.shape[3], W.shape[2]), (s[1], s[0], s[3], s[2])
    )
    if swapped.flags.c_contiguous:
        return _assume_c_contiguous(swapped), True
    W_C = np.empty(W.shape, W.dtype)
    for a in range(W.shape[0]):
        for b in range(W.shape[1]):
            for c in range(W.shape[2]):
                for d in range(W.shape[3]):
                    W_C[a, b, c, d] = W[a, b, c, d]
    return W_C, False


# --------------------------------------------------------------------------- entry points


@numba.njit(cache=True)
def gemv_kernel(o, W, h, input_idx, output_idx, inplace):
    """Block-sparse GEMV, validated: ``o[b, j] + sum_i h[b, i] @ W[iIdx[b, i], oIdx[b, j]]``.

    Parameters
    ----------
    o : (batch, oWin, oSize) array
        Added to the result; overwritten and returned when ``inplace``.
    W : (iBlocks, oBlocks, iSize, oSize) array
        Any strides; read along memory both when C-contiguous and when it is the
        ``(1, 0, 3, 2)`` transpose of a C-contiguous array (the gradient wrt ``h``).
    h : (batch, iWin, iSize) array
    input_idx : (batch, iWin) integer array, entries in ``[0, iBlocks)``
    output_idx : (batch, oWin) integer array, entries in ``[0, oBlocks)``
    inplace : bool

    Returns
    -------
    (batch, oWin, oSize) array
    """
    check_gemv_args(o, W, h, input_idx, output_idx)
    out = o if inplace else o.copy()
    W_C, transposed = _contiguous_weights(W)
    # int64 indices: one compiled loop whatever the index dtype (the copies are tiny).
    input_idx, output_idx = input_idx.astype(np.int64), output_idx.astype(np.int64)
    n_tasks = out.shape[0] * out.shape[1]
    threaded = h.size * out.shape[1] * out.shape[2] >= PARALLEL_MIN_MACS
    n_chunks = n_tasks if threaded else min(n_tasks, 1)
    _gemv_accumulate(out, W_C, transposed, h, input_idx, output_idx, n_chunks)
    return out


@numba.njit(cache=True)
def outer_kernel(o, x, y, x_idx, y_idx, alpha, inplace):
    """Block-sparse outer product, validated; see :func:`block_outer` for the shapes."""
    check_outer_args(o, x, y, x_idx, y_idx)
    out = o if inplace else o.copy()
    x_idx, y_idx = x_idx.astype(np.int64), y_idx.astype(np.int64)
    threaded = x.size * y.shape[1] * y.shape[2] >= PARALLEL_MIN_MACS
    order, starts = _runs_by_block(x_idx, y_idx, out.shape[1], threaded)
    _outer_accumulate(out, x, y, x_idx, y_idx, alpha, order, starts)
    return out


def _as_index_matrix(idx, name):
    idx = np.asarray(idx)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer block indices, got dtype {idx.dtype}")
    if idx.ndim != 2:
        raise ValueError(f"{name} must be a 2-d (batch, window) array, got shape {idx.shape}")
    return idx


def _as_float_array(a, name, ndim, layout):
    a = np.asarray(a)
    if a.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-d array {layout}, got shape {a.shape}")
    if a.dtype.kind not in "fc":
        raise TypeError(f"{name} must be a floating-point array, got dtype {a.dtype}")
    return a


def block_gemv(o, W, h, input_idx, output_idx, inplace=False):
    """Block-sparse GEMV on numpy arrays.

    ``out[b, j] = o[b, j] + sum_i h[b, i] @ W[input_idx[b, i], output_idx[b, j]]``

    Parameters
    ----------
    o : (batch, oWin, oSize) float array
    W : (iBlocks, oBlocks, iSize, oSize) float array
    h : (batch, iWin, iSize) float array
    input_idx : (batch, iWin) int array
    output_idx : (batch, oWin) int array
    inplace : bool, default False
        Accumulate into ``o`` (and return it) instead of a copy.

    Returns
    -------
    (batch, oWin, oSize) array
    """
    o = _as_float_array(o, "o", 3, "(batch, oWin, oSize)")
    W = _as_float_array(W, "W", 4, "(iBlocks, oBlocks, iSize, oSize)")
    h = _as_float_array(h, "h", 3, "(batch, iWin, iSize)")
    input_idx = _as_index_matrix(input_idx, "inputIdx")
    output_idx = _as_index_matrix(output_idx, "outputIdx")
    return gemv_kernel(o, W, h, input_idx, output_idx, inplace)


def block_outer(o, x, y, x_idx, y_idx, alpha=1.0, inplace=False):
    """Block-sparse outer product on numpy arrays.

    ``out = o``, then ``out[x_idx[b, i], y_idx[b, j]] += alpha * outer(x[b, i], y[b, j])``
    for every ``b, i, j`` (contributions to the same block add up).

    Parameters
    ----------
    o : (xBlocks, yBlocks, xSize, ySize) float array
    x : (batch, xWin, xSize) float array
    y : (batch, yWin, ySize) float array
    x_idx : (batch, xWin) int array
    y_idx : (batch, yWin) int array
    alpha : float, default 1.0
    inplace : bool, default False
        Accumulate into ``o`` (and return it) instead of a copy.

    Returns
    -------
    (xBlocks, yBlocks, xSize, ySize) array
    """
    o = _as_float_array(o, "o", 4, "(xBlocks, yBlocks, xSize, ySize)")
    x = _as_float_array(x, "x", 3, "(batch, xWin, xSize)")
    y = _as_float_array(y, "y", 3, "(batch, yWin, ySize)")
    x_idx = _as_index_matrix(x_idx, "xIdx")
    y_idx = _as_index_matrix(y_idx, "yIdx")
    return outer_kernel(o, x, y, x_idx, y_idx, o.dtype.type(alpha), inplace)
