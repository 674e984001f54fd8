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

Threads (above :data:`PARALLEL_MIN_MACS` multiply-adds): the GEMV is parallel over the
``(b, j)`` output blocks, which are disjoint. The outer product is parallel over *target
blocks*: each thread owns a fixed subset of the blocks of ``o``, so two examples that hit the
same block are summed by one thread, in ``(b, i, j)`` order. Both are race-free and give the
same bits for any thread count.

The loops only ever see C-contiguous arrays and int64 indices (see "layouts" below): one
compiled loop per dtype, with unit strides LLVM can vectorise.
"""

from __future__ import annotations

import mmap

import numba
import numpy as np
from numba.core import types
from numba.core.extending import intrinsic
from numba.core.imputils import impl_ret_borrowed

__all__ = [
    "BlockCountError",
    "BlockIndexError",
    "BlockShapeError",
    "GEMV_LAYOUT",
    "OUTER_LAYOUT",
    "block_gemv",
    "block_outer",
    "check_block_indices",
    "check_gemv_args",
    "check_outer_args",
    "first_bad_index",
    "gemv_into",
    "gemv_kernel",
    "lazy_zeros",
    "match_dims",
    "outer_into",
    "outer_kernel",
]

# The named dimensions of each argument (legacy names), for the shape checks. A dimension's
# size is taken from the first argument listed that has it; the others must agree.
GEMV_LAYOUT = {
    "h": ("batch", "iWin", "iSize"),
    "o": ("batch", "oWin", "oSize"),
    "W": ("iBlocks", "oBlocks", "iSize", "oSize"),
    "inputIdx": ("batch", "iWin"),
    "outputIdx": ("batch", "oWin"),
}
OUTER_LAYOUT = {
    "x": ("batch", "xWin", "xSize"),
    "y": ("batch", "yWin", "ySize"),
    "o": ("xBlocks", "yBlocks", "xSize", "ySize"),
    "xIdx": ("batch", "xWin"),
    "yIdx": ("batch", "yWin"),
}


# --------------------------------------------------------------------------- validation


def _axes(layout):
    """Every axis of the arguments of ``layout``, in order: ``(arg, axis, dim)``."""
    return [(arg, axis, dim) for arg, dims in layout.items() for axis, dim in enumerate(dims)]


def _dim_numbers(layout_code):
    """For the compiled check: ``[layout_code, dim number of each axis of _axes(layout)...]``."""
    axes = _axes(_LAYOUTS[layout_code])
    numbers = {dim: k for k, dim in enumerate(dict.fromkeys(dim for _, _, dim in axes))}
    return np.array([layout_code] + [numbers[dim] for _, _, dim in axes], np.int64)


class BlockShapeError(ValueError):
    """Two arguments disagree on a named dimension.

    Raised from compiled code with ``(layout_code, axis_number, size, ref_axis_number,
    ref_size)``, numbers into ``_axes(layout)``; the message is formatted here, in Python.
    """

    def __str__(self):
        if len(self.args) != 5:
            return super().__str__()
        code, pos, size, ref_pos, ref_size = self.args
        axes = _axes(_LAYOUTS[code])
        return _shape_message(axes[pos], size, axes[ref_pos], ref_size)


def _shape_message(where, size, ref_where, ref_size):
    (arg, axis, dim), (ref_arg, ref_axis, _) = where, ref_where
    return f"{arg}.shape[{axis}] is {size} but {dim} is {ref_size} (from {ref_arg}.shape[{ref_axis}])"


class BlockIndexError(ValueError):
    """A block index outside ``[0, n_blocks)`` (raised from compiled code).

    The arguments are ``(name, b, i, value, n_blocks, blocks_from)``.
    """

    def __str__(self):
        if len(self.args) != 6:
            return super().__str__()
        name, b, i, value, n_blocks, blocks_from = self.args
        return f"{name}[{b}, {i}] = {value} is not a valid block index: it must be in [0, {n_blocks}) ({blocks_from})"


class BlockCountError(BlockShapeError):
    """An array indexed by block indices has another number of blocks than ``W``.

    The arguments are ``(where, size, dim, n_blocks, blocks_from)``, e.g.
    ``("b.shape[0]", 3, "oBlocks", 4, "W.shape[1]")``.
    """

    def __str__(self):
        if len(self.args) != 5:
            return ValueError.__str__(self)
        where, size, dim, n_blocks, blocks_from = self.args
        return f"{where} is {size} but {dim} is {n_blocks} (from {blocks_from})"


def check_block_indices(idx, n_blocks, rows, name, dim, blocks_from, rows_from):
    """Raise unless ``rows == n_blocks`` and every entry of ``idx`` lies in ``[0, n_blocks)``
    (Python twin of the compiled check of ``CheckBlockIndices``; same exceptions)."""
    if rows != n_blocks:
        raise BlockCountError(rows_from, rows, dim, n_blocks, blocks_from)
    b, i = first_bad_index(np.asarray(idx, dtype=np.int64), n_blocks)
    if b >= 0:
        raise BlockIndexError(name, b, i, idx[b, i], n_blocks, f"{dim} = {blocks_from}")


_LAYOUTS = (GEMV_LAYOUT, OUTER_LAYOUT)
_GEMV_DIMS, _OUTER_DIMS = _dim_numbers(0), _dim_numbers(1)


def match_dims(layout, shapes):
    """Check that every named dimension has one size across ``shapes``; return the sizes.

    ``layout`` maps argument names to the names of their dimensions (as
    :data:`GEMV_LAYOUT`); ``shapes`` maps (some of) its arguments to shape tuples whose entries
    may be ``None`` (unknown, e.g. static shapes at graph-build time). Raises
    :class:`BlockShapeError` naming both arguments.
    """
    sizes, first = {}, {}
    for where in _axes(layout):
        arg, axis, dim = where
        shape = shapes.get(arg)
        size = None if shape is None else shape[axis]
        if size is None:
            continue
        if dim in sizes and sizes[dim] != size:
            raise BlockShapeError(_shape_message(where, size, first[dim], sizes[dim]))
        sizes.setdefault(dim, size)
        first.setdefault(dim, where)
    return sizes


@numba.njit(cache=True)
def _match_dims(sizes, dims):
    """Compiled :func:`match_dims`: ``sizes`` of the axes of ``_axes(layout)``, ``dims`` from
    :func:`_dim_numbers`. (The layout code travels in ``dims``: a literal passed into a
    helper that raises reaches Python from the wrong call site, a Numba 0.65 bug.)"""
    first = np.full(dims.max() + 1, -1)
    for pos in range(sizes.size):
        d = dims[pos + 1]
        if first[d] < 0:
            first[d] = pos
        elif sizes[pos] != sizes[first[d]]:
            raise BlockShapeError(dims[0], pos, sizes[pos], first[d], sizes[first[d]])


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
def check_gemv_args(o_shape, W_shape, h_shape, input_idx, output_idx):
    """Check the shapes and block indices of a block-sparse GEMV (see :func:`gemv_into`).

    Shapes, not arrays: one compiled check for every dtype and memory layout. Raises
    :class:`BlockShapeError` or :class:`BlockIndexError`. (Each raise sits here with its own
    constants: the same Numba bug.)
    """
    _match_dims(np.array(h_shape + o_shape + W_shape + input_idx.shape + output_idx.shape), _GEMV_DIMS)
    # Distinct names: Numba also mixes up reassigned variables in a raise's arguments.
    b_in, i_in = first_bad_index(input_idx, W_shape[0])
    if b_in >= 0:
        raise BlockIndexError("inputIdx", b_in, i_in, input_idx[b_in, i_in], W_shape[0], "iBlocks = W.shape[0]")
    b_out, j_out = first_bad_index(output_idx, W_shape[1])
    if b_out >= 0:
        raise BlockIndexError("outputIdx", b_out, j_out, output_idx[b_out, j_out], W_shape[1], "oBlocks = W.shape[1]")


@numba.njit(cache=True)
def check_outer_args(o_shape, x_shape, y_shape, x_idx, y_idx):
    """Check the shapes and block indices of a block-sparse outer product (see :func:`outer_into`).

    Like :func:`check_gemv_args`.
    """
    _match_dims(np.array(x_shape + y_shape + o_shape + x_idx.shape + y_idx.shape), _OUTER_DIMS)
    b_x, i_x = first_bad_index(x_idx, o_shape[0])
    if b_x >= 0:
        raise BlockIndexError("xIdx", b_x, i_x, x_idx[b_x, i_x], o_shape[0], "xBlocks = o.shape[0]")
    b_y, j_y = first_bad_index(y_idx, o_shape[1])
    if b_y >= 0:
        raise BlockIndexError("yIdx", b_y, j_y, y_idx[b_y, j_y], o_shape[1], "yBlocks = o.shape[1]")


# --------------------------------------------------------------------------- loops

# Reassociation lets LLVM vectorise the dot products; no "nnan"/"ninf": NaN and inf propagate.
_FASTMATH = {"reassoc", "contract", "nsz"}

# Below this many multiply-adds a call stays on one thread: waking the pool costs more than
# it saves, and idle Numba threads would spin against the BLAS calls of the rest of a graph.
PARALLEL_MIN_MACS = 1 << 21

# Threaded outer products split the target blocks into this many interleaved sets.
OUTER_CHUNKS = 16

# Start Numba's threading layer at import: callers of the parallel loops loaded from a cache
# are linked against its scheduler's symbols, and once (with a stale cache) loading them
# before any parallel code had run in the process aborted: "Symbol not found: allocate_sched".
numba.get_num_threads()


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
def _outer_accumulate(out, x, y, x_idx, y_idx, alpha, n_chunks):
    """Add ``alpha * outer(x[b, i], y[b, j])`` to ``out[x_idx[b, i], y_idx[b, j]]``; no checks.

    Chunk ``c`` owns the blocks whose flat number ``p * yBlocks + q`` is ``c`` modulo
    ``n_chunks``: every contribution to a block is added by one thread, in ``(b, i, j)``
    order. Race-free, and the same bits for any number of chunks or threads.
    """
    batch, x_win, x_size = x.shape
    y_win, y_size = y.shape[1], y.shape[2]
    y_blocks = out.shape[1]
    for chunk in numba.prange(n_chunks):
        for b in range(batch):
            for i in range(x_win):
                p = x_idx[b, i]
                for j in range(y_win):
                    q = y_idx[b, j]
                    if (p * y_blocks + q) % n_chunks != chunk:
                        continue
                    block = out[p, q]
                    y_row = y[b, j]
                    for k in range(x_size):
                        a = alpha * x[b, i, k]
                        out_row = block[k]
                        for m in range(y_size):
                            out_row[m] += a * y_row[m]


# --------------------------------------------------------------------------- layouts
#
# The loops are compiled for C-contiguous, writable-typed arrays only: that keeps the unit
# strides visible to LLVM (vectorised loops) and the compiled variants down to one per dtype,
# whatever the inputs: Numba types every view made in compiled code, such as PyTensor's
# transposes, with layout "A", and PyTensor's constants as read-only arrays.


@intrinsic
def _assume_c_contiguous(typingctx, arr):
    """Retype an array already checked to be C-contiguous as a C-layout array (no copy).

    The type also drops the read-only flag: the loops never write to their inputs.
    """
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, signature, args):
        return impl_ret_borrowed(context, builder, signature.return_type, args[0])

    return arr.copy(layout="C", readonly=False)(arr), codegen


@numba.njit(cache=True)
def _copy_into(dst, src):
    for idx in np.ndindex(src.shape):
        dst[idx] = src[idx]


@numba.njit(cache=True)
def _c_contiguous(a):
    """``a`` itself, typed C-contiguous, when it is; else a C-contiguous copy."""
    if a.flags.c_contiguous:
        return _assume_c_contiguous(a)
    out = np.empty(a.shape, a.dtype)
    _copy_into(out, a)
    return out


@numba.njit(cache=True)
def _fresh_c_copy(a):
    """A new C-contiguous copy of ``a`` (a plain memory copy when ``a`` is contiguous)."""
    if a.flags.c_contiguous:
        return _assume_c_contiguous(a).copy()
    out = np.empty(a.shape, a.dtype)
    _copy_into(out, a)
    return out


@numba.njit(cache=True)
def _contiguous_weights(W):
    """``(W_C, transposed)``: ``W`` as a C-contiguous array, reading it in place if possible.

    ``W_C`` is ``W`` when ``W`` is C-contiguous; the array ``W`` is the ``(1, 0, 3, 2)``
    transpose of (``transposed``) when that one is C-contiguous, as in the gradient wrt
    ``h``; otherwise a C-contiguous copy of ``W``.
    """
    s = W.strides
    swapped = np.lib.stride_tricks.as_strided(
        W, (W.shape[1], W.shape[0], W.shape[3], W.shape[2]), (s[1], s[0], s[3], s[2])
    )
    if swapped.flags.c_contiguous and not W.flags.c_contiguous:
        return _assume_c_contiguous(swapped), True
    return _c_contiguous(W), False


# --------------------------------------------------------------------------- entry points
#
# ``_gemv_core`` / ``_outer_core`` check and run on normalised arrays (C-contiguous, writable
# types, int64 indices): compiled once per dtype. The compiled entry points (for PyTensor's
# Numba graphs, any layout) and the numpy ones (for ``perform`` and users) normalise their
# inputs, then call them.


@numba.njit(cache=True)
def _gemv_core(out, W_C, transposed, h, input_idx, output_idx):
    """Check, then ``out[b, j] += sum_i h[b, i] @ W[input_idx[b, i], output_idx[b, j]]``.

    ``W_C`` is ``W``, or when ``transposed`` the array whose ``(1, 0, 3, 2)`` transpose is
    ``W``. Every array is C-contiguous and the indices are int64.
    """
    s = W_C.shape
    W_shape = (s[1], s[0], s[3], s[2]) if transposed else s
    check_gemv_args(out.shape, W_shape, h.shape, input_idx, output_idx)
    n_tasks = out.shape[0] * out.shape[1]
    threaded = h.size * out.shape[1] * out.shape[2] >= PARALLEL_MIN_MACS
    n_chunks = n_tasks if threaded else min(n_tasks, 1)
    _gemv_accumulate(out, W_C, transposed, h, input_idx, output_idx, n_chunks)


@numba.njit(cache=True)
def _outer_core(out, x, y, x_idx, y_idx, alpha):
    """Check, then ``out[x_idx[b, i], y_idx[b, j]] += alpha * outer(x[b, i], y[b, j])``.

    Every array is C-contiguous and the indices are int64.
    """
    check_outer_args(out.shape, x.shape, y.shape, x_idx, y_idx)
    threaded = x.size * y.shape[1] * y.shape[2] >= PARALLEL_MIN_MACS
    _outer_accumulate(out, x, y, x_idx, y_idx, alpha, OUTER_CHUNKS if threaded else 1)


@numba.njit(cache=True)
def gemv_into(out, W, h, input_idx, output_idx):
    """Validated block-sparse GEMV accumulated into ``out``, which is returned (compiled code).

    ``out[b, j] += sum_i h[b, i] @ W[input_idx[b, i], output_idx[b, j]]``

    Parameters
    ----------
    out : (batch, oWin, oSize) writable array
    W : (iBlocks, oBlocks, iSize, oSize) array
        Any strides; read in place both when C-contiguous and when it is the
        ``(1, 0, 3, 2)`` transpose of a C-contiguous array (the gradient wrt ``h``).
    h : (batch, iWin, iSize) array
    input_idx : (batch, iWin) integer array, entries in ``[0, iBlocks)``
    output_idx : (batch, oWin) integer array, entries in ``[0, oBlocks)``
    """
    out_C = _c_contiguous(out)
    W_C, transposed = _contiguous_weights(W)
    _gemv_core(out_C, W_C, transposed, _c_contiguous(h), input_idx.astype(np.int64), output_idx.astype(np.int64))
    if out_C.ctypes.data != out.ctypes.data:  # a strided out: the loop worked on a copy
        _copy_into(out, out_C)
    return out


@numba.njit(cache=True)
def gemv_kernel(o, W, h, input_idx, output_idx):
    """:func:`gemv_into` a copy of ``o`` (which may be read-only): ``o`` is left alone."""
    out = _fresh_c_copy(o)
    W_C, transposed = _contiguous_weights(W)
    _gemv_core(out, W_C, transposed, _c_contiguous(h), input_idx.astype(np.int64), output_idx.astype(np.int64))
    return out


@numba.njit(cache=True)
def outer_into(out, x, y, x_idx, y_idx, alpha):
    """Validated block-sparse outer product accumulated into ``out``, which is returned.

    ``out[x_idx[b, i], y_idx[b, j]] += alpha * outer(x[b, i], y[b, j])`` for every
    ``b, i, j``; see :func:`block_outer` for the shapes. Compiled code.
    """
    out_C = _c_contiguous(out)
    _outer_core(out_C, _c_contiguous(x), _c_contiguous(y), x_idx.astype(np.int64), y_idx.astype(np.int64), alpha)
    if out_C.ctypes.data != out.ctypes.data:  # a strided out: the loop worked on a copy
        _copy_into(out, out_C)
    return out


@numba.njit(cache=True)
def outer_kernel(o, x, y, x_idx, y_idx, alpha):
    """:func:`outer_into` a copy of ``o`` (which may be read-only): ``o`` is left alone."""
    out = _fresh_c_copy(o)
    _outer_core(out, _c_contiguous(x), _c_contiguous(y), x_idx.astype(np.int64), y_idx.astype(np.int64), alpha)
    return out


def lazy_zeros(shape, dtype):
    """Zeros whose memory the operating system provides on first write, 4 KiB page by page.

    For an accumulation target of which only a few blocks get written (the gradient of a
    block-sparse ``W``): an anonymous memory map is zero-filled lazily, and asking for no
    transparent huge pages keeps each first write from zeroing 2 MiB (numpy's ``zeros``
    requests huge pages for large arrays). Small arrays are plain ``np.zeros``.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes < 1 << 22:
        return np.zeros(shape, dtype)
    buffer = mmap.mmap(-1, nbytes)
    if hasattr(mmap, "MADV_NOHUGEPAGE"):
        buffer.madvise(mmap.MADV_NOHUGEPAGE)
    return np.frombuffer(buffer, dtype=dtype).reshape(shape)


def _as_index_matrix(idx, name):
    """``idx`` checked, as a fresh C-contiguous int64 array (a tiny copy)."""
    idx = np.asarray(idx)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer block indices, got dtype {idx.dtype}")
    if idx.ndim != 2:
        raise ValueError(f"{name} must be a 2-d (batch, window) array, got shape {idx.shape}")
    return idx.astype(np.int64, order="C")


def _as_float_array(a, name, ndim, layout):
    a = np.asarray(a)
    if a.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-d array {layout}, got shape {a.shape}")
    if a.dtype.kind != "f":
        raise TypeError(f"{name} must be a real floating-point array, got dtype {a.dtype}")
    return a


def _small_operand(a, dtype):
    """``a`` as a writable C-contiguous array of ``dtype`` (copied when it is not one)."""
    if a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable:
        return a
    return np.array(a, dtype=dtype, order="C")


def _weights_in_memory_order(W, dtype):
    """``(W_C, transposed)`` as in :func:`_gemv_core`, without copying ``W`` when it is
    C-contiguous or the ``(1, 0, 3, 2)`` transpose of a C-contiguous array."""
    if W.dtype == dtype and W.flags.c_contiguous:
        return W, False
    W_T = W.transpose(1, 0, 3, 2)
    if W.dtype == dtype and W_T.flags.c_contiguous:
        return W_T, True
    return np.ascontiguousarray(W, dtype=dtype), False


def _target(o, dtype, inplace):
    """Where to accumulate: ``o`` itself when it can be, else a C-contiguous copy of it."""
    if inplace and o.dtype == dtype and o.flags.c_contiguous and o.flags.writeable:
        return o
    return np.array(o, dtype=dtype, order="C")


def block_gemv(o, W, h, input_idx, output_idx, inplace=False):
    """Block-sparse GEMV on numpy arrays.

    ``out[b, j] = o[b, j] + sum_i h[b, i] @ W[input_idx[b, i], output_idx[b, j]]``

    Parameters
    ----------
    o : (batch, oWin, oSize) float array
    W : (iBlocks, oBlocks, iSize, oSize) float array
        Read in place when C-contiguous or the (1, 0, 3, 2) transpose of a C-contiguous
        array; copied otherwise.
    h : (batch, iWin, iSize) float array
    input_idx : (batch, iWin) int array
    output_idx : (batch, oWin) int array
    inplace : bool, default False
        Accumulate into ``o`` (and return it) instead of a copy.

    Returns
    -------
    (batch, oWin, oSize) array, of the result dtype of ``o``, ``W`` and ``h``
    """
    o = _as_float_array(o, "o", 3, "(batch, oWin, oSize)")
    W = _as_float_array(W, "W", 4, "(iBlocks, oBlocks, iSize, oSize)")
    h = _as_float_array(h, "h", 3, "(batch, iWin, iSize)")
    input_idx = _as_index_matrix(input_idx, "inputIdx")
    output_idx = _as_index_matrix(output_idx, "outputIdx")
    dtype = np.result_type(o, W, h)
    out = _target(o, dtype, inplace)
    W_C, transposed = _weights_in_memory_order(W, dtype)
    _gemv_core(out, W_C, transposed, _small_operand(h, dtype), input_idx, output_idx)
    if inplace and out is not o:
        o[...] = out
        return o
    return out


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
    (xBlocks, yBlocks, xSize, ySize) array, of the result dtype of ``o``, ``x`` and ``y``
    """
    o = _as_float_array(o, "o", 4, "(xBlocks, yBlocks, xSize, ySize)")
    x = _as_float_array(x, "x", 3, "(batch, xWin, xSize)")
    y = _as_float_array(y, "y", 3, "(batch, yWin, ySize)")
    x_idx = _as_index_matrix(x_idx, "xIdx")
    y_idx = _as_index_matrix(y_idx, "yIdx")
    dtype = np.result_type(o, x, y)
    out = _target(o, dtype, inplace)
    _outer_core(out, _small_operand(x, dtype), _small_operand(y, dtype), x_idx, y_idx, dtype.type(alpha))
    if inplace and out is not o:
        o[...] = out
        return o
    return out
