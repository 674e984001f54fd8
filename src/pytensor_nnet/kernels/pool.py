"""N-d pooling kernels (1 to 3 spatial dims), legacy ``signal.pool`` semantics, compiled with Numba.

Arrays are 4-d: ``(B, D, H, W)`` where ``B`` gathers every leading (batch, channel, ...) axis
and 1-d / 2-d problems have unit leading spatial axes (see ``kernels.im2col.as_3d_geometry``).
Geometry arguments are 3-tuples of ints: window ``ws``, ``stride``, ``pad`` (the same on both
sides of an axis), plus the flag ``ignore_border``.

Windows, per spatial axis of size ``n`` (the legacy rules, checked against pytensor 2.8.11):

- output size: ``(n + 2 * pad - ws) // stride + 1`` when ``ignore_border``; otherwise (no
  padding allowed) ``(n - 1) // stride + 1`` if ``stride >= ws``, else
  ``max(0, (n - 1 - ws + stride) // stride) + 1`` - the last window may stick out of the
  input, and it is cut at the input's end;
- window ``o`` covers padded positions ``[o * stride - pad, o * stride - pad + ws)``; its
  elements are the input positions inside it;
- ``max`` and ``sum`` use the input elements only (padding never wins a max); a NaN in a
  window makes its max NaN (as numpy, PyTorch and JAX; the legacy code propagated a NaN only
  when it was the window's first element);
- ``average_inc_pad`` divides by the window size counted in the padded input, i.e. ``ws``
  unless the window was cut at the input's end (``ignore_border=False``);
  ``average_exc_pad`` divides by the number of input elements in the window;
- ties in the gradient of ``max`` (``ties``, see :data:`TIE_RULES`):

  - ``TIES_FIRST`` (the default of the Ops, as PyTorch and JAX): exactly one element per
    window receives the window's output gradient, its *first* maximum in row-major order
    within the window (the lowest flat index; padding never wins; a NaN counts as the
    maximum, the first NaN wins). Overlapping windows accumulate, so an element that wins
    several windows collects all of their gradients. This is a true (sub)gradient: per
    window, the input gradients sum to the output gradient;
  - ``TIES_ALL`` (the legacy rule): every element equal to the window's maximum receives
    the window's full output gradient (so tied elements get it several times over).

  :func:`max_pool_grad_grad` is the exact adjoint of :func:`max_pool_grad` under either
  rule: it gathers at the window's first maximum, or sums over all of its tied maxima.

The loops run over output rows; inside a row the window taps are the outer loop and the
output columns the inner one, so the innermost loop walks memory with a constant stride and
the window's borders are resolved once per tap (``valid_range``), not per element. An index
built from an offset that may be negative is cast to an unsigned integer (it is never negative
where it is used): Numba wraps negative signed indices, a branch per element that keeps the
loop from being vectorised (the forward pass is 20% faster without it).

Small planes (at most :data:`SMALL_PLANE` points, e.g. 6 x 6 maps of a small CNN) have rows
too short for that: a vectorised loop over three outputs costs more in its set-up than it
saves, and so does a scalar loop over a window of two. For them there are batch-minor kernels
(:func:`pool_forward_batch_minor_into`, :func:`max_pool_grad_first_batch_minor_into`): a
block of planes is transposed so that one point of every plane of the block is contiguous,
and every loop runs over the block (2 x 2 windows over 400 planes of 6 x 6: forward 27 ->
10-11 us, first-maximum gradient 55-56 -> 15-16 us). :func:`pool_forward` and :func:`max_pool_grad` pick
by the plane's size (:func:`batch_minor_suits`); the Numba backend compiles one of the two
into a node's entry, by the node's static shape (each costs 1-2 s of compile time). The
kernels are serial; the Numba backend splits the batch axis between its worker threads.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.extending import overload, register_jitable
from numba.np import numpy_support

from pytensor_nnet.kernels.im2col import valid_range
from pytensor_nnet.kernels.jit import compiled_only
from pytensor_nnet.shapes.pool import pool_output_size, window_divisor

MAX, SUM, AVERAGE_INC_PAD, AVERAGE_EXC_PAD = 0, 1, 2, 3
#: Mode names of the legacy API and their kernel codes.
MODES = {"max": MAX, "sum": SUM, "average_inc_pad": AVERAGE_INC_PAD, "average_exc_pad": AVERAGE_EXC_PAD}
TIES_FIRST, TIES_ALL = 0, 1
#: Tie rules of the max-pooling gradient (the Ops' ``max_grad_ties``) and their kernel codes.
TIE_RULES = {"first": TIES_FIRST, "all": TIES_ALL}
#: Planes (``D * H * W``) of at most this many points are pooled batch-minor (see the module doc).
SMALL_PLANE = 256
#: Planes per batch-minor block: the block's transposed input stays in the L2 cache.
PLANE_BLOCK = 256
#: Extra elements per row of the transposed blocks: with a row pitch of a power of two
#: (256 planes), the rows' elements of one plane all fall into the same few L1 cache sets
#: (measured: the transposition 3x slower).
PITCH_PAD = 4


def lowest_value(dtype):
    """The identity of ``max`` for ``dtype`` (``-inf`` for floats, the minimum for integers)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return dtype.type(-np.inf)
    if dtype.kind == "b":
        return dtype.type(False)
    return dtype.type(np.iinfo(dtype).min)


#: Legacy output size ``out_size_1axis(n, ws, stride, pad, ignore_border)`` of one axis of size
#: ``n`` (``shapes.pool.pool_output_size``, callable from Python and from compiled code).
out_size_1axis = pool_output_size


@compiled_only
def pool_out_size(in_size, ws, stride, pad, ignore_border):
    """Output spatial size ``(od, oh, ow)`` of a pooling of ``in_size`` ``(D, H, W)``."""
    return (
        out_size_1axis(in_size[0], ws[0], stride[0], pad[0], ignore_border),
        out_size_1axis(in_size[1], ws[1], stride[1], pad[1], ignore_border),
        out_size_1axis(in_size[2], ws[2], stride[2], pad[2], ignore_border),
    )


@compiled_only
def check_geometry(in_size, ws, stride, pad, ignore_border):
    """Raise ``ValueError`` for a pooling geometry the kernels cannot run (run-time check).

    The Ops check the same rules with more detailed messages when the graph is built; this
    one guards the compiled code, before any loop touches memory.
    """
    for i in range(3):
        if ws[i] < 1:
            raise ValueError("pooling: ws (window shape) entries must be >= 1")
        if stride[i] < 1:
            raise ValueError("pooling: stride entries must be >= 1")
        if pad[i] < 0:
            raise ValueError("pooling: pad entries must be >= 0")
        if pad[i] >= ws[i]:
            raise ValueError("pooling: pad must be smaller than ws (the window) on every axis")
        if pad[i] > 0 and not ignore_border:
            raise ValueError("pooling: pad requires ignore_border=True")


@numba.njit(cache=True)
def window_divisors(n, ws, stride, pad, out, include_pad):
    """Per-output-index divisor of one axis: the window's size in the padded input
    (``include_pad``) or its number of input elements."""
    div = np.empty(out, dtype=np.int64)
    for o in range(out):
        div[o] = window_divisor(o, n, ws, stride, pad, include_pad)
    return div


@numba.njit(cache=True, inline="always")
def _window(o, stride, pad, ws, n):
    """Input positions ``[lo, hi)`` of window ``o`` on one axis."""
    start = o * stride - pad
    return max(start, 0), min(start + ws, n)


@compiled_only
def _tap_ranges(ow, ws, stride, pad, n):
    """For each tap ``e`` of the last axis: output columns ``[lo, hi)`` whose tap is in the input."""
    lo = np.empty(ws, dtype=np.int64)
    hi = np.empty(ws, dtype=np.int64)
    for e in range(ws):
        lo[e], hi[e] = valid_range(ow, stride, e - pad, n)
    return lo, hi


@compiled_only
def _divisor_row(in_size, ws, stride, pad, out, mode):
    """Divisors of the output (od, oh, ow) as three per-axis int arrays (all ones for sum)."""
    include = mode == AVERAGE_INC_PAD
    if mode == SUM:
        return np.ones(out[0], np.int64), np.ones(out[1], np.int64), np.ones(out[2], np.int64)
    return (
        window_divisors(in_size[0], ws[0], stride[0], pad[0], out[0], include),
        window_divisors(in_size[1], ws[1], stride[1], pad[1], out[1], include),
        window_divisors(in_size[2], ws[2], stride[2], pad[2], out[2], include),
    )


@numba.njit(cache=True, inline="always")
def _divisors(in_size, ws, stride, pad, out, mode):
    """:func:`_divisor_row`, or three empty arrays for max pooling. Inlined: where ``mode`` is
    a constant, max pooling compiles none of the divisors' code."""
    if mode == MAX:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    return _divisor_row(in_size, ws, stride, pad, out, mode)


@numba.njit(cache=True, inline="always")
def _copy_row(dst, src):
    """``dst[:] = src`` for 1-d arrays of one length, as a plain loop: Numba's slice assignment
    brings a shape-mismatch message builder that costs seconds of compile time per kernel."""
    for i in range(dst.shape[0]):
        dst[i] = src[i]


@numba.njit(cache=True)
def pool_forward(x, ws, stride, pad, ignore_border, mode, lowest):
    """Pool ``x`` (B, D, H, W) -> (B, od, oh, ow). ``lowest`` (of x's dtype) starts a max.

    Separable: per output row, the window's input rows are first reduced into one row
    (contiguous, vectorised), which the window taps of the last axis then reduce.
    """
    B, D, H, W = x.shape
    check_geometry((D, H, W), ws, stride, pad, ignore_border)
    od, oh, ow = pool_out_size((D, H, W), ws, stride, pad, ignore_border)
    y = np.empty((B, od, oh, ow), dtype=x.dtype)
    if batch_minor_suits((D, H, W)):
        pool_forward_batch_minor_into(x, y, ws, stride, pad, ignore_border, mode, lowest)
    else:
        pool_forward_into(x, y, ws, stride, pad, ignore_border, mode, lowest)
    return y


@numba.njit(cache=True, inline="always")
def pool_forward_into(x, y, ws, stride, pad, ignore_border, mode, lowest):
    """:func:`pool_forward` writing into a given ``y`` (B, od, oh, ow) (any content).

    Inlined: where ``mode`` is a constant (the boundary entries, one per mode), the code of
    the other modes is not compiled in."""
    B, D, H, W = x.shape
    od, oh, ow = _check_out(x.shape, y.shape, ws, stride, pad, ignore_border, "pooling: wrong output array shape")
    lo, hi = _tap_ranges(ow, ws[2], stride[2], pad[2], W)
    dz, dy, dx = _divisors((D, H, W), ws, stride, pad, (od, oh, ow), mode)
    sw, pw = stride[2], pad[2]
    row = np.empty(W, dtype=x.dtype)
    acc = np.empty(ow, dtype=x.dtype)
    for b in range(B):
        for oz in range(od):
            zlo, zhi = _window(oz, stride[0], pad[0], ws[0], D)
            for oy in range(oh):
                ylo, yhi = _window(oy, stride[1], pad[1], ws[1], H)
                _copy_row(row, x[b, zlo, ylo])
                for iz in range(zlo, zhi):
                    for iy in range(ylo, yhi):
                        if iz == zlo and iy == ylo:
                            continue
                        src = x[b, iz, iy]
                        if mode == MAX:  # branch-free (a select), whatever the data; NaN wins
                            for i in range(W):
                                v, a = src[i], row[i]
                                row[i] = v if (v > a or v != v) else a
                        else:
                            for i in range(W):
                                row[i] += src[i]
                if mode == MAX:
                    acc[:] = lowest
                else:
                    acc[:] = 0
                for e in range(ws[2]):
                    off = e - pw
                    if mode == MAX:
                        for ox in range(lo[e], hi[e]):
                            v, a = row[np.uint64(ox * sw + off)], acc[ox]
                            acc[ox] = v if (v > a or v != v) else a
                    else:
                        for ox in range(lo[e], hi[e]):
                            acc[ox] += row[np.uint64(ox * sw + off)]
                dst = y[b, oz, oy]
                if mode == MAX or mode == SUM:
                    _copy_row(dst, acc)
                else:
                    zy = dz[oz] * dy[oy]
                    for ox in range(ow):
                        dst[ox] = acc[ox] / (zy * dx[ox])


@compiled_only
def _window_table(in_size, out, ws, stride, pad):
    """The input ranges of every window of the pooled planes ``out`` (od, oh, ow), in C order:
    row ``o`` holds ``zlo, zhi, ylo, yhi, xlo, xhi``."""
    od, oh, ow = out
    table = np.empty((od * oh * ow, 6), dtype=np.int64)
    o = 0
    for oz in range(od):
        zlo, zhi = _window(oz, stride[0], pad[0], ws[0], in_size[0])
        for oy in range(oh):
            ylo, yhi = _window(oy, stride[1], pad[1], ws[1], in_size[1])
            for ox in range(ow):
                xlo, xhi = _window(ox, stride[2], pad[2], ws[2], in_size[2])
                table[o, 0], table[o, 1], table[o, 2] = zlo, zhi, ylo
                table[o, 3], table[o, 4], table[o, 5] = yhi, xlo, xhi
                o += 1
    return table


@numba.njit(cache=True, inline="always")
def _bounds(windows, o):
    """Row ``o`` of a :func:`_window_table` as a tuple."""
    return windows[o, 0], windows[o, 1], windows[o, 2], windows[o, 3], windows[o, 4], windows[o, 5]


@numba.njit(cache=True, inline="always")
def _batch_minor_block(planes, block):
    """An uninitialised ``(plane, block + PITCH_PAD)`` buffer of ``planes`` (B, plane) for
    :func:`_to_batch_minor`."""
    return np.empty((planes.shape[1], block + PITCH_PAD), dtype=planes.dtype)


@numba.njit(cache=True, inline="always")
def _batch_minor_plan(planes, in_size, out, ws, stride, pad):
    """The windows (:func:`_window_table`), the planes per block and the block's buffer of the
    batch-minor loops over ``planes`` (B, plane), pooled to ``out``."""
    block = max(1, min(planes.shape[0], PLANE_BLOCK))
    return _window_table(in_size, out, ws, stride, pad), block, _batch_minor_block(planes, block)


@numba.njit(cache=True, inline="always")
def _to_batch_minor(planes, b0, block, xt):
    """``xt[p, j] = planes[b0 + j, p]`` for the ``nb`` planes of the block that starts at
    ``b0`` (``planes`` (B, plane)); returns ``nb``."""
    nb = min(block, planes.shape[0] - b0)
    for j in range(nb):
        for p in range(planes.shape[1]):
            xt[p, j] = planes[b0 + j, p]
    return nb


@register_jitable
def batch_minor_suits(in_size):
    """Whether planes of ``in_size`` (D, H, W) go to the batch-minor kernels (see the module doc)."""
    return in_size[0] * in_size[1] * in_size[2] <= SMALL_PLANE


@numba.njit(cache=True, inline="always")
def pool_forward_batch_minor_into(x, y, ws, stride, pad, ignore_border, mode, lowest):
    """:func:`pool_forward_into` for small planes, into a C-contiguous ``y``: a block of planes
    at a time (see the module doc). A sum adds the window's elements in row-major order (the row-wise loops sum each
    column first: the two can differ by rounding)."""
    B, D, H, W = x.shape
    od, oh, ow = _check_out(x.shape, y.shape, ws, stride, pad, ignore_border, "pooling: wrong output array shape")
    dz, dy, dx = _divisors((D, H, W), ws, stride, pad, (od, oh, ow), mode)
    planes = np.ascontiguousarray(x).reshape((B, D * H * W))
    pooled = y.reshape((B, od * oh * ow))
    windows, block, xt = _batch_minor_plan(planes, (D, H, W), (od, oh, ow), ws, stride, pad)
    yt = _batch_minor_block(pooled, block)
    zero = np.zeros(1, dtype=x.dtype)[0]
    for b0 in range(0, B, block):
        nb = _to_batch_minor(planes, b0, block, xt)
        for o in range(windows.shape[0]):
            zlo, zhi, ylo, yhi, xlo, xhi = _bounds(windows, o)
            acc = yt[o]
            start = lowest if mode == MAX else zero
            for j in range(nb):
                acc[j] = start
            for iz in range(zlo, zhi):
                for iy in range(ylo, yhi):
                    for ix in range(xlo, xhi):
                        src = xt[(iz * H + iy) * W + ix]
                        if mode == MAX:
                            for j in range(nb):  # branch-free (a select); NaN wins
                                v, a = src[j], acc[j]
                                acc[j] = v if (v > a) | (v != v) else a
                        else:
                            for j in range(nb):
                                acc[j] += src[j]
            if mode == AVERAGE_INC_PAD or mode == AVERAGE_EXC_PAD:
                divisor = dz[o // (oh * ow)] * dy[o // ow % oh] * dx[o % ow]
                for j in range(nb):
                    acc[j] = acc[j] / divisor
        for j in range(nb):
            for p in range(pooled.shape[1]):
                pooled[b0 + j, p] = yt[p, j]


@compiled_only
def _check_out(x_shape, out_shape, ws, stride, pad, ignore_border, name):
    B, D, H, W = x_shape
    check_geometry((D, H, W), ws, stride, pad, ignore_border)
    od, oh, ow = pool_out_size((D, H, W), ws, stride, pad, ignore_border)
    if out_shape[0] != B or out_shape[1] != od or out_shape[2] != oh or out_shape[3] != ow:
        raise ValueError(name)
    return od, oh, ow


@numba.njit(cache=True)
def max_pool_grad(x, maxout, gz, ws, stride, pad, ignore_border, ties):
    """Gradient of max pooling wrt ``x`` (B, D, H, W), given ``maxout`` (B, od, oh, ow) and its
    gradient ``gz`` (B, od, oh, ow); ``ties`` is ``TIES_FIRST`` or ``TIES_ALL``."""
    gx = np.zeros(x.shape, dtype=gz.dtype)
    if ties == TIES_FIRST and batch_minor_suits(x.shape[1:]):
        max_pool_grad_first_batch_minor_into(x, maxout, gz, gx, ws, stride, pad, ignore_border)
    else:
        max_pool_grad_into(x, maxout, gz, gx, ws, stride, pad, ignore_border, ties)
    return gx


@compiled_only
def max_pool_grad_into(x, maxout, gz, gx, ws, stride, pad, ignore_border, ties):
    """:func:`max_pool_grad` accumulating into a given, zero-filled ``gx`` (B, D, H, W)."""
    max_pool_grad_into_by(ties, x, maxout, gz, gx, ws, stride, pad, ignore_border)


@numba.njit(cache=True, inline="always")
def max_pool_grad_into_by(ties, x, maxout, gz, gx, ws, stride, pad, ignore_border):
    """:func:`max_pool_grad_into` by the tie rule ``ties``: where it is a constant (the boundary
    entries), the other rule's code is not compiled in. Inlined: a ``try`` around it neither
    catches a ``raise`` statement in it nor reliably stops at a raise in a function it calls, so
    a caller in a ``try`` runs :func:`check_max_pool_grad_operands` first, on its own."""
    check_max_pool_grad_operands(x, maxout, gz, gx, ws, stride, pad, ignore_border)
    if ties == TIES_ALL:
        _max_pool_grad_all(x, maxout, gz, gx, ws, stride, pad)
    else:
        _max_pool_grad_first(x, gz, gx, ws, stride, pad)


@compiled_only
def check_max_pool_grad_operands(x, maxout, gz, gx, ws, stride, pad, ignore_border):
    """Raises ``ValueError`` unless ``gx`` has the shape of ``x``, and ``maxout`` and ``gz``
    that of the pooling of ``x``."""
    if gx.shape != x.shape:
        raise ValueError("pooling: wrong gradient array shape")
    _check_out(
        x.shape,
        gz.shape,
        ws,
        stride,
        pad,
        ignore_border,
        "pooling: the output gradient's shape does not match the pooling of x",
    )
    _check_out(
        x.shape, maxout.shape, ws, stride, pad, ignore_border, "pooling: maxout's shape does not match the pooling of x"
    )


@numba.njit(cache=True)
def max_pool_grad_grad(x, maxout, ggx, ws, stride, pad, ignore_border, ties):
    """Adjoint of :func:`max_pool_grad` in its gradient argument: (B, od, oh, ow) from ``ggx``
    (B, D, H, W), gathered at each window's first maximum (``TIES_FIRST``) or summed over the
    elements equal to the window's maximum (``TIES_ALL``)."""
    B, D, H, W = x.shape
    if ggx.shape[0] != B or ggx.shape[1] != D or ggx.shape[2] != H or ggx.shape[3] != W:
        raise ValueError("pooling: the second-order gradient must have the shape of x")
    _check_out(
        x.shape, maxout.shape, ws, stride, pad, ignore_border, "pooling: maxout's shape does not match the pooling of x"
    )
    if ties == TIES_ALL:
        return _max_pool_grad_grad_all(x, maxout, ggx, ws, stride, pad, ignore_border)
    return _max_pool_grad_grad_first(x, ggx, ws, stride, pad, ignore_border)


#: Elements of the first-maximum sweep's window-row buffers (per phase): a block of output rows
#: at a time, so that rows of a few elements share their loops (one loop per tap and block).
FIRST_MAX_BLOCK = 4096
_NO_INDEX = np.iinfo(np.int64).max


def lowest_of(a):
    """:func:`lowest_value` of array ``a``'s dtype (callable from Numba code)."""
    return lowest_value(a.dtype)


@overload(lowest_of, jit_options={"cache": True})
def _lowest_of_numba(a):
    value = lowest_value(numpy_support.as_dtype(a.dtype))
    return lambda a: value


@numba.njit(cache=True, inline="always")
def _output_row(r, od, oh):
    """``(b, oz, oy)`` of output row ``r`` of a pooled shape ``(B, od, oh, ow)`` (C order)."""
    return r // (od * oh), r // oh % od, r % oh


@numba.njit(cache=True, inline="always")
def _first_max_plan(x, ws, stride, pad, ow, rows):
    """Geometry and scratch of :func:`_first_max_block` for ``x`` (B, D, H, W) pooled to ``rows``
    output rows of ``ow`` windows: ``(left, pitch, block, buffers)``.

    Each window row is kept in ``stride[2]`` phases (column ``q * sw + p`` at position
    ``left + q`` of phase ``p``), so that tap ``e`` of the windows of a row reads one phase at
    consecutive positions: ``left + ox + (e - pad) // sw``. ``pitch`` positions per row leave
    every tap of every window inside its row; positions that hold no column (before ``left``,
    after the row's end) keep a sentinel that never wins: the dtype's lowest value with the
    largest index.
    """
    W = x.shape[3]
    kw, sw, pw = ws[2], stride[2], pad[2]
    left = (pw + sw - 1) // sw
    pitch = max(ow + left + (kw - 1 - pw) // sw, left + (W - 1) // sw + 1)
    block = max(1, min(rows, FIRST_MAX_BLOCK // pitch))
    phase_best = np.empty((sw, block * pitch), dtype=x.dtype)
    phase_arg = np.empty((sw, block * pitch), dtype=np.int64)
    lowest = lowest_of(x)
    for p in range(sw):
        for i in range(block * pitch):
            phase_best[p, i] = lowest
            phase_arg[p, i] = _NO_INDEX
    buffers = (
        np.empty(W, dtype=x.dtype),
        np.empty(W, dtype=np.int64),
        phase_best,
        phase_arg,
        np.empty(block * pitch, dtype=x.dtype),
        np.empty(block * pitch, dtype=np.int64),
    )
    return left, pitch, block, buffers


@numba.njit(cache=True, inline="always")
def _first_max_block(x, ws, stride, pad, out, r0, nr, left, pitch, buffers):
    """Flat index in ``x`` (C order) of the first maximum of every window of output rows
    ``r0 .. r0 + nr`` of the pooled shape ``(B, *out)`` (row ``r`` is ``(b, oz, oy)`` in C
    order): window ``ox`` of the block's row ``k`` at ``arg[k * pitch + ox]`` (``arg``, the
    last of ``buffers``).

    Within a window, row-major order is the order of the flat indices, so the first maximum
    is the maximum with the lowest flat index (of the NaNs, if any). Separable, as the forward
    pass: the window's input rows are reduced first into one row (contiguous), each column
    keeping its first maximum; the row goes to its phases (see :func:`_first_max_plan`); then
    each tap of the last axis compares values, and flat indices on equal values, in one loop
    over the whole block. The loops are branch-free and index with unsigned integers: Numba
    wraps negative signed indices, a branch that keeps a loop from being vectorised.
    """
    _, D, H, W = x.shape
    od, oh, ow = out
    row_best, row_arg, phase_best, phase_arg, best, arg = buffers
    sw, pw = stride[2], pad[2]
    plane = D * H * W
    for k in range(nr):
        r = r0 + k
        b, oz, oy = _output_row(r, od, oh)
        zlo, zhi = _window(oz, stride[0], pad[0], ws[0], D)
        ylo, yhi = _window(oy, stride[1], pad[1], ws[1], H)
        first = True
        for iz in range(zlo, zhi):
            for iy in range(ylo, yhi):
                src = x[b, iz, iy]
                base = b * plane + (iz * H + iy) * W
                if first:
                    for i in range(W):
                        row_best[i] = src[i]
                        row_arg[i] = base + i
                    first = False
                    continue
                for i in range(W):  # later rows win only if strictly larger (or the first NaN)
                    v, a = src[i], row_best[i]
                    take = (v > a) | ((v != v) & (a == a))
                    row_best[i] = v if take else a
                    row_arg[i] = base + i if take else row_arg[i]
        at = k * pitch + left
        for i in range(W):
            p, q = i % sw, at + i // sw
            phase_best[p, q] = row_best[i]
            phase_arg[p, q] = row_arg[i]
    n = (nr - 1) * pitch + ow
    lowest = lowest_of(x)
    for t in range(n):
        best[t] = lowest
        arg[t] = _NO_INDEX
    for e in range(ws[2]):
        p, shift = (e - pw) % sw, left + (e - pw) // sw
        taps_best, taps_arg = phase_best[p], phase_arg[p]
        for t in range(n):
            u, s = np.uint64(t), np.uint64(t + shift)
            v, a, j, k = taps_best[s], best[u], taps_arg[s], arg[u]
            take = (v > a) | ((v == a) & (j < k)) | ((v != v) & ((a == a) | (j < k)))
            best[u] = v if take else a
            arg[u] = j if take else k


@compiled_only
def _max_pool_grad_first(x, gz, gx, ws, stride, pad):
    """Each window's gradient goes to its first maximum; overlapping windows accumulate.

    (:func:`_max_pool_grad_grad_first` walks the blocks the same way, gathering instead: one
    function for both would have to type a write into ``gz``, which may be read-only.)
    """
    B, od, oh, ow = gz.shape
    rows = B * od * oh
    if rows == 0 or ow == 0:
        return
    flat_gx = gx.reshape(gx.size)
    left, pitch, block, buffers = _first_max_plan(x, ws, stride, pad, ow, rows)
    arg = buffers[-1]
    for r0 in range(0, rows, block):
        nr = min(block, rows - r0)
        _first_max_block(x, ws, stride, pad, (od, oh, ow), r0, nr, left, pitch, buffers)
        for k in range(nr):
            r = r0 + k
            g = gz[_output_row(r, od, oh)]
            for ox in range(ow):
                flat_gx[np.uint64(arg[k * pitch + ox])] += g[ox]


@compiled_only
def max_pool_grad_first_batch_minor_into(x, maxout, gz, gx, ws, stride, pad, ignore_border):
    """:func:`max_pool_grad_into` with the first-maximum rule for small planes, a block of
    planes at a time (see the module doc): each window's elements in row-major order, a later
    one winning only if strictly larger, or if it is the first NaN."""
    check_max_pool_grad_operands(x, maxout, gz, gx, ws, stride, pad, ignore_border)
    B, D, H, W = x.shape
    od, oh, ow = gz.shape[1], gz.shape[2], gz.shape[3]
    plane, pooled = D * H * W, od * oh * ow
    planes = np.ascontiguousarray(x).reshape((B, plane))
    flat_gz = np.ascontiguousarray(gz).reshape(gz.size)
    flat_gx = gx.reshape(gx.size)
    windows, block, xt = _batch_minor_plan(planes, (D, H, W), (od, oh, ow), ws, stride, pad)
    best = np.empty(block, dtype=x.dtype)
    at = np.empty(block, dtype=np.int64)
    for b0 in range(0, B, block):
        nb = _to_batch_minor(planes, b0, block, xt)
        for o in range(windows.shape[0]):
            zlo, zhi, ylo, yhi, xlo, xhi = _bounds(windows, o)
            if zlo >= zhi or ylo >= yhi or xlo >= xhi:
                continue
            p0 = (zlo * H + ylo) * W + xlo
            first = xt[p0]
            for j in range(nb):
                best[j] = first[j]
                at[j] = p0
            for iz in range(zlo, zhi):
                for iy in range(ylo, yhi):
                    for ix in range(xlo, xhi):
                        p = (iz * H + iy) * W + ix
                        src = xt[p]
                        for j in range(nb):  # branch-free (selects)
                            v, a = src[j], best[j]
                            take = (v > a) | ((v != v) & (a == a))
                            best[j] = v if take else a
                            at[j] = p if take else at[j]
            for j in range(nb):
                b = b0 + j
                flat_gx[np.uint64(b * plane + at[j])] += flat_gz[np.uint64(b * pooled + o)]


@compiled_only
def _max_pool_grad_grad_first(x, ggx, ws, stride, pad, ignore_border):
    """``ggz[window] = ggx[first maximum of the window]``."""
    B, D, H, W = x.shape
    od, oh, ow = pool_out_size((D, H, W), ws, stride, pad, ignore_border)
    ggz = np.zeros((B, od, oh, ow), dtype=ggx.dtype)
    rows = B * od * oh
    if rows == 0 or ow == 0:
        return ggz
    flat_ggx = np.ascontiguousarray(ggx).reshape(ggx.size)
    left, pitch, block, buffers = _first_max_plan(x, ws, stride, pad, ow, rows)
    arg = buffers[-1]
    for r0 in range(0, rows, block):
        nr = min(block, rows - r0)
        _first_max_block(x, ws, stride, pad, (od, oh, ow), r0, nr, left, pitch, buffers)
        for k in range(nr):
            r = r0 + k
            dst = ggz[_output_row(r, od, oh)]
            for ox in range(ow):
                dst[ox] = flat_ggx[np.uint64(arg[k * pitch + ox])]
    return ggz


@compiled_only
def _max_pool_grad_all(x, maxout, gz, gx, ws, stride, pad):
    """Legacy rule: every element equal to its window's maximum receives the window's gradient.

    Per output row, the maxima and gradients of tap ``e`` of the last axis are first spread
    to the input positions they apply to (``row_max[e]``, ``row_grad[e]``, zero gradient
    elsewhere), so that the comparison with each input row of the window is contiguous and
    branch-free (vectorised). Branching on each comparison costs a mispredicted branch per
    window: 2 to 4 times slower on random data.
    """
    B, D, H, W = x.shape
    od, oh, ow = gz.shape[1], gz.shape[2], gz.shape[3]
    zero = gx.dtype.type(0)
    kw, sw, pw = ws[2], stride[2], pad[2]
    lo, hi = _tap_ranges(ow, kw, sw, pw, W)
    row_max = np.zeros((kw, W), dtype=x.dtype)
    row_grad = np.zeros((kw, W), dtype=gz.dtype)
    for b in range(B):
        for oz in range(od):
            zlo, zhi = _window(oz, stride[0], pad[0], ws[0], D)
            for oy in range(oh):
                ylo, yhi = _window(oy, stride[1], pad[1], ws[1], H)
                m = maxout[b, oz, oy]
                g = gz[b, oz, oy]
                for e in range(kw):
                    off = e - pw
                    rm, rg = row_max[e], row_grad[e]
                    rg[:] = 0
                    for ox in range(lo[e], hi[e]):
                        rm[ox * sw + off] = m[ox]
                        rg[ox * sw + off] = g[ox]
                for iz in range(zlo, zhi):
                    for iy in range(ylo, yhi):
                        src = x[b, iz, iy]
                        dst = gx[b, iz, iy]
                        for e in range(kw):
                            rm, rg = row_max[e], row_grad[e]
                            for i in range(W):  # whole rows: indices known >= 0, so it vectorises
                                dst[i] += rg[i] if src[i] == rm[i] else zero


@compiled_only
def _max_pool_grad_grad_all(x, maxout, ggx, ws, stride, pad, ignore_border):
    """Legacy rule: each window sums ``ggx`` over the elements equal to its maximum."""
    B, D, H, W = x.shape
    od, oh, ow = maxout.shape[1], maxout.shape[2], maxout.shape[3]
    ggz = np.empty((B, od, oh, ow), dtype=ggx.dtype)
    zero = ggz.dtype.type(0)
    lo, hi = _tap_ranges(ow, ws[2], stride[2], pad[2], W)
    sw, pw = stride[2], pad[2]
    for b in range(B):
        for oz in range(od):
            zlo, zhi = _window(oz, stride[0], pad[0], ws[0], D)
            for oy in range(oh):
                ylo, yhi = _window(oy, stride[1], pad[1], ws[1], H)
                m = maxout[b, oz, oy]
                acc = ggz[b, oz, oy]
                acc[:] = 0
                for iz in range(zlo, zhi):
                    for iy in range(ylo, yhi):
                        src = x[b, iz, iy]
                        gsrc = ggx[b, iz, iy]
                        for e in range(ws[2]):
                            off = e - pw
                            for ox in range(lo[e], hi[e]):
                                i = ox * sw + off
                                acc[ox] += gsrc[i] if src[i] == m[ox] else zero
    return ggz


@numba.njit(cache=True)
def average_pool_grad(gz, in_size, ws, stride, pad, ignore_border, mode):
    """Gradient of sum / average pooling wrt its input, (B, *in_size), from ``gz`` (B, od, oh, ow).

    Separable: per output row, the window taps of the last axis spread the scaled gradients
    into one row, which is then added (contiguous, vectorised) to every input row of the window.
    """
    gx = np.zeros((gz.shape[0], in_size[0], in_size[1], in_size[2]), dtype=gz.dtype)
    average_pool_grad_into(gz, gx, ws, stride, pad, ignore_border, mode)
    return gx


@compiled_only
def average_pool_grad_into(gz, gx, ws, stride, pad, ignore_border, mode):
    """:func:`average_pool_grad` accumulating into a given, zero-filled ``gx`` (B, D, H, W)."""
    B, D, H, W = gx.shape
    od, oh, ow = _check_out(
        (B, D, H, W),
        gz.shape,
        ws,
        stride,
        pad,
        ignore_border,
        "pooling: the output gradient's shape does not match the pooling of x",
    )
    lo, hi = _tap_ranges(ow, ws[2], stride[2], pad[2], W)
    dz, dy, dx = _divisor_row((D, H, W), ws, stride, pad, (od, oh, ow), mode)
    sw, pw = stride[2], pad[2]
    row = np.empty(W, dtype=gz.dtype)
    scaled = np.empty(ow, dtype=gz.dtype)
    for b in range(B):
        for oz in range(od):
            zlo, zhi = _window(oz, stride[0], pad[0], ws[0], D)
            for oy in range(oh):
                ylo, yhi = _window(oy, stride[1], pad[1], ws[1], H)
                zy = dz[oz] * dy[oy]
                g = gz[b, oz, oy]
                if mode == SUM:
                    _copy_row(scaled, g)
                else:
                    for ox in range(ow):
                        scaled[ox] = g[ox] / (zy * dx[ox])
                row[:] = 0
                for e in range(ws[2]):
                    off = e - pw
                    for ox in range(lo[e], hi[e]):
                        row[np.uint64(ox * sw + off)] += scaled[ox]
                for iz in range(zlo, zhi):
                    for iy in range(ylo, yhi):
                        dst = gx[b, iz, iy]
                        for i in range(W):
                            dst[i] += row[i]
