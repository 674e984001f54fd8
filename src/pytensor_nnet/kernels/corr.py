"""GEMM-based N-d correlation with groups: forward, gradient wrt inputs, gradient wrt weights.

Arrays are 5-d, ``(batch, channels, D, H, W)`` images and ``(out, in // groups, kd, kh, kw)``
weights (lower-rank problems are reshaped by the caller, see ``kernels.im2col``). Geometry
arguments are 3-tuples of ints: ``stride``, ``dilation`` and the padding sizes ``pad_lo`` /
``pad_hi`` (resolved by the caller, see ``shapes.resolve_pads``).

Each function checks its shapes first and raises ``ValueError`` before any loop touches
memory. The batch is processed in chunks so that the column buffer
``(channels * taps, chunk * out_positions)`` stays under ``buffer_bytes`` (or one image's
columns, if larger); each chunk is one GEMM per group. Chunks hold one image unless images
have very few output positions (see ``MIN_GEMM_COLUMNS``). The ``"pointwise"`` algorithm (a
1x1x1 kernel with stride 1 and no padding) skips im2col: its GEMMs run on the images' planes.

The GEMMs run on one BLAS thread unless they are large and the machine is quiet
(``kernels.blas_threads.limit_threads``, decided once per call, undone before returning).

Depthwise problems and stride-1 3x3 ones leave this path for ``kernels.direct`` and
``kernels.winograd``, 1x1 ones for ``"pointwise"``: see ``kernels.select`` for the rule, and
the ``excluded`` argument of the entry points.

These are correlations: flipping the kernel (true convolution) is the caller's business.
"""

from __future__ import annotations

import numba
import numpy as np

from pytensor_nnet.kernels import select, workspace
from pytensor_nnet.kernels.blas_threads import limit_threads, restore_threads
from pytensor_nnet.kernels.direct import direct_forward, direct_grad_inputs, direct_grad_weights, direct_rows_forward
from pytensor_nnet.kernels.gemm_batch import add_into, add_plane_products, matmul_planes
from pytensor_nnet.kernels.im2col import col2im_add, im2col_into
from pytensor_nnet.kernels.jit import compiled_only

# Bare names, not ``select.X``: Numba prunes a branch on a constant only when it compares names
# bound to constants, and the ``*_into_by`` entries rely on that.
from pytensor_nnet.kernels.select import ANY, DIRECT, DIRECT_ROWS, FORWARD, GEMM, POINTWISE, WINOGRAD, winograd_tile
from pytensor_nnet.kernels.winograd import winograd_forward_into, winograd_grad_inputs_into, winograd_grad_weights
from pytensor_nnet.shapes.conv import conv_output_size_3d

DEFAULT_BUFFER_BYTES = 64 * 2**20

#: The ``reduction`` of the ``*_into_by`` functions called with an algorithm: the problem as
#: given, or its strided reduction (``select.strided_reduction``), which must apply.
AS_GIVEN, REDUCED = 0, 1


@compiled_only
def _check_groups(channels, w_in_per_group, n_filters, groups):
    if groups < 1:
        raise ValueError("num_groups must be >= 1")
    if channels != w_in_per_group * groups:
        raise ValueError("input channels must equal filters' input channels (filters.shape[1]) * num_groups")
    if n_filters % groups != 0:
        raise ValueError("num_groups must divide the number of filters (output channels)")


@compiled_only
def _check_geometry(stride, dilation):
    for i in range(3):
        if stride[i] < 1:
            raise ValueError("subsample (stride) must be >= 1")
        if dilation[i] < 1:
            raise ValueError("filter_dilation must be >= 1")


#: Images are batched into one GEMM only while a chunk has fewer output positions than this:
#: measured on 2 cores, one GEMM per image (its column buffer stays in cache, and its result
#: lands in place) beats a batched GEMM plus the scatter of its result, unless images are tiny.
MIN_GEMM_COLUMNS = 256


#: Images per GEMM of the filter gradient (as far as the buffer allows): measured 5-10%
#: faster than one image per GEMM, and than whole-buffer chunks (those leave the cache).
GRAD_WEIGHTS_IMAGES = 4


@compiled_only
def _chunk_size(batch, rows, positions, itemsize, buffer_bytes, wanted=0):
    """Images per chunk: ``wanted`` (default: enough for ``MIN_GEMM_COLUMNS`` output
    positions), at least one, and no more than fit in ``buffer_bytes`` (a single image's
    columns are the minimum buffer)."""
    if wanted < 1:
        wanted = (MIN_GEMM_COLUMNS + positions - 1) // max(positions, 1)
    fitting = buffer_bytes // max(rows * positions * itemsize, 1)
    return max(1, min(batch, wanted, fitting))


@compiled_only
def forward_output_size(x_shape, w_shape, stride, pad_lo, pad_hi, dilation):
    """The output's spatial size (od, oh, ow) of :func:`corr_forward`; raises when the
    (dilated) filter does not fit the padded input."""
    out = conv_output_size_3d(
        (x_shape[2], x_shape[3], x_shape[4]), (w_shape[2], w_shape[3], w_shape[4]), stride, pad_lo, pad_hi, dilation
    )
    if out[0] < 1 or out[1] < 1 or out[2] < 1:
        raise ValueError("the (dilated) filter is larger than the padded input")
    return out


@numba.njit(cache=True)
def corr_forward(x, w, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded=0):
    """Correlate images ``x`` (N, C, D, H, W) with filters ``w`` (M, C // groups, kd, kh, kw).

    Returns ``y`` of shape (N, M, od, oh, ow).
    """
    _check_geometry(stride, dilation)
    od, oh, ow = forward_output_size(x.shape, w.shape, stride, pad_lo, pad_hi, dilation)
    y = np.empty((x.shape[0], w.shape[0], od, oh, ow), dtype=x.dtype)
    corr_forward_into(x, w, y, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded)
    return y


@compiled_only
def corr_forward_into(x, w, y, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded=0):
    """:func:`corr_forward` writing into a given ``y`` (N, M, od, oh, ow) (any content)."""
    forward_into_by(select.ANY, AS_GIVEN, x, w, y, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded)


@numba.njit(cache=True, inline="always")
def forward_into_by(only, reduction, x, w, y, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded):
    """:func:`corr_forward_into` by the algorithm ``only`` (a constant code of ``kernels.select``)
    on the problem as given or on its strided reduction (``reduction``, a constant:
    ``AS_GIVEN`` or ``REDUCED``), or as ``select.plan`` says (``only`` is ``select.ANY``;
    ``reduction`` unused). With an algorithm, neither the selection nor the code of the other
    algorithms (nor, as given, that of the reduction) is compiled in: the caller has planned
    (the convolution's driver); a problem the algorithm cannot compute, or a reduction that
    does not apply, raises. Inlined: a ``try`` around it neither catches a ``raise``
    statement in it nor reliably stops at a raise in a function it calls, so a caller in a
    ``try`` runs the ``checked_*`` function of its direction first, on its own."""
    geometry = checked_forward(x, w, y, stride, pad_lo, pad_hi, dilation, groups)
    if x.shape[0] == 0 or w.shape[0] == 0:
        return
    Cg, M = w.shape[1], w.shape[0]
    scratch = workspace.begin()
    algorithm, xs, st, lo, hi, dil = _planned_images(
        only, reduction, FORWARD, x, Cg, M // groups, groups, geometry, excluded, scratch
    )
    _forward_with(algorithm if only == ANY else only, xs, w, y, st, lo, hi, dil, groups, buffer_bytes, excluded)
    workspace.end(scratch)


@compiled_only
def checked_forward(x, w, y, stride, pad_lo, pad_hi, dilation, groups):
    """Checks the operands of :func:`forward_into_by`; returns (ksize, stride, pad_lo, pad_hi,
    dilation, out)."""
    C = x.shape[1]
    M, Cg, kd, kh, kw = w.shape
    _check_groups(C, Cg, M, groups)
    _check_geometry(stride, dilation)
    out = forward_output_size(x.shape, w.shape, stride, pad_lo, pad_hi, dilation)
    if y.shape[0] != x.shape[0] or y.shape[1] != M or (y.shape[2], y.shape[3], y.shape[4]) != out:
        raise ValueError("the output array's shape does not match the convolution")
    return (kd, kh, kw), stride, pad_lo, pad_hi, dilation, out


@compiled_only
def _applies(only, direction, Cg, Mg, ksize, stride, pad_lo, pad_hi, dilation, out):
    """Whether the algorithm ``only`` can compute the problem of ``direction`` with ``Cg`` input
    and ``Mg`` output channels per group and this geometry: the conditions of
    ``select.choose`` that its kernels rely on. Compiled once for every algorithm and
    direction: the entries pass theirs as int64 values, not as the literals that would each
    compile it again."""
    if only == DIRECT:
        return Cg == 1
    if only == DIRECT_ROWS:
        return (
            Cg == 1
            and direction == FORWARD
            and select.direct_rows_applies(ksize, stride, pad_lo, pad_hi, dilation, out)
        )
    if only == WINOGRAD:
        return select.winograd_applies(Cg, Mg, ksize, stride, pad_lo, pad_hi, dilation, out)
    if only == POINTWISE:
        return select.pointwise_applies(ksize, stride, pad_lo, pad_hi)
    return True


#: What an algorithm called on a problem it cannot compute (or on a strided reduction that does
#: not apply) raises.
NOT_ITS_PROBLEM = "the algorithm called (or the strided reduction) does not apply to this problem"


@numba.njit(cache=True, inline="always")
def _planned_images(only, reduction, direction, x, Cg, Mg, groups, geometry, excluded, scratch):
    """The algorithm of the images ``x`` and ``geometry`` (ksize, stride, pad_lo, pad_hi,
    dilation, out): ``select.plan``'s, or ``only`` on the problem as given or reduced
    (``reduction``, see :func:`forward_into_by`), checked; the images it runs on (``x``, or
    the points of the strided reduction, in the workspace ``scratch``) and the geometry it
    runs with."""
    ksize, stride, pad_lo, pad_hi, dilation, out = geometry
    in_size = (x.shape[2], x.shape[3], x.shape[4])
    if only == ANY:
        algorithm, reduced, phase, size, st, lo, hi, dil = select.plan(
            direction, in_size, Cg, Mg, groups, ksize, stride, pad_lo, pad_hi, dilation, out, excluded
        )
        xs = _subsample(x, phase, stride, size, scratch) if reduced else x
        return algorithm, xs, st, lo, hi, dil
    if reduction == AS_GIVEN:
        if only != GEMM and not _applies(
            np.int64(only), np.int64(direction), Cg, Mg, ksize, stride, pad_lo, pad_hi, dilation, out
        ):
            workspace.end(scratch)
            raise ValueError(NOT_ITS_PROBLEM)
        return only, x, stride, pad_lo, pad_hi, dilation
    applies, phase, size, st, lo, hi, dil = select.strided_reduction(in_size, ksize, stride, pad_lo, dilation, out)
    if not (
        applies and (only == GEMM or _applies(np.int64(only), np.int64(direction), Cg, Mg, ksize, st, lo, hi, dil, out))
    ):
        workspace.end(scratch)
        raise ValueError(NOT_ITS_PROBLEM)
    return only, _subsample(x, phase, stride, size, scratch), st, lo, hi, dil


@numba.njit(cache=True, inline="always")
def _forward_with(algorithm, x, w, y, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded):
    """The forward correlation by ``algorithm`` (a code of ``kernels.select``), shapes checked."""
    N, C = x.shape[0], x.shape[1]
    M, Cg, kd, kh, kw = w.shape
    ksize = (kd, kh, kw)
    out = (y.shape[2], y.shape[3], y.shape[4])
    P = out[0] * out[1] * out[2]
    K = Cg * kd * kh * kw
    Mg = M // groups
    if algorithm == DIRECT:
        direct_forward(x, w, y, stride, pad_lo, dilation, groups)
        return
    if algorithm == DIRECT_ROWS:
        direct_rows_forward(x, w, y, pad_lo, dilation, groups)
        return
    if algorithm == WINOGRAD:
        winograd_forward_into(x, w, y, pad_lo, pad_hi, groups, winograd_tile(y.shape[3], y.shape[4], excluded))
        return
    yv = y.reshape((N, M, P))
    w2 = w.reshape((M, K))
    if algorithm == POINTWISE:
        threads = limit_threads(2 * Mg * K * P)
        matmul_planes(w2.reshape((groups, Mg, K)), x.reshape((N, C, P)), yv)
        restore_threads(threads)
        return
    chunk = _chunk_size(N, C * kd * kh * kw, P, x.itemsize, buffer_bytes)
    scratch = workspace.begin()
    storage = workspace.take(scratch, C * kd * kh * kw * chunk * P, x.dtype)
    # The product of a chunk of several images, scattered to their planes. Into a buffer, not
    # a new array: an allocating ``np.dot`` is another specialisation to compile.
    product = workspace.take(scratch, Mg * chunk * P if chunk > 1 else 0, x.dtype)
    threads = limit_threads(2 * Mg * K * chunk * P)
    for n0 in range(0, N, chunk):
        nb = min(chunk, N - n0)
        cols = _columns(x, n0, nb, ksize, stride, pad_lo, dilation, out, storage)
        for g in range(groups):
            if nb == 1:
                np.dot(w2[g * Mg : (g + 1) * Mg], cols[g * K : (g + 1) * K], yv[n0, g * Mg : (g + 1) * Mg])
                continue
            res = _matrix_in(product, Mg, nb * P)
            np.dot(w2[g * Mg : (g + 1) * Mg], cols[g * K : (g + 1) * K], res)
            for i in range(nb):
                _copy_2d(yv[n0 + i, g * Mg : (g + 1) * Mg], res[:, i * P : (i + 1) * P])
    restore_threads(threads)
    workspace.end(scratch)


@compiled_only
def _matrix_in(storage, rows, cols):
    """A C-contiguous ``(rows, cols)`` matrix on the start of the flat buffer ``storage``.

    The chunk loops reuse one buffer: a fresh multi-megabyte array per chunk costs page faults
    on every first write (measured: as much as a third of a strided convolution).
    """
    return storage[: rows * cols].reshape((rows, cols))


@compiled_only
def _columns(x, n0, nb, ksize, stride, pad_lo, dilation, out, storage):
    """im2col of images n0..n0+nb side by side, (C * taps, nb * out_positions), in ``storage``."""
    P = out[0] * out[1] * out[2]
    cols = _matrix_in(storage, x.shape[1] * ksize[0] * ksize[1] * ksize[2], nb * P)
    for i in range(nb):
        im2col_into(x[n0 + i], cols, i * P, ksize, stride, pad_lo, dilation, out)
    return cols


@compiled_only
def _gather_top(topv, n0, nb, m0, Mg, P, storage):
    """(Mg, nb * P) matrix of the output gradients of images n0..n0+nb, filters m0..m0+Mg, in
    the flat buffer ``storage``."""
    buf = _matrix_in(storage, Mg, nb * P)
    for i in range(nb):
        _copy_2d(buf[:, i * P : (i + 1) * P], topv[n0 + i, m0 : m0 + Mg])
    return buf


@numba.njit(cache=True)
def corr_grad_inputs(w, top, in_size, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded=0):
    """Gradient wrt the images of :func:`corr_forward`: ``dx`` (N, C, *in_size) from ``top``.

    ``in_size`` is the (D, H, W) image size; with strides it cannot be deduced from ``top``.
    """
    for i in range(3):
        if in_size[i] < 1:
            raise ValueError("input shape must be positive")
    if groups < 1:
        raise ValueError("num_groups must be >= 1")
    dx = np.zeros((top.shape[0], w.shape[1] * groups, in_size[0], in_size[1], in_size[2]), dtype=top.dtype)
    corr_grad_inputs_into(w, top, dx, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded)
    return dx


@compiled_only
def corr_grad_inputs_into(w, top, dx, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded=0):
    """:func:`corr_grad_inputs` accumulating into a given, zero-filled ``dx`` (N, C, D, H, W)."""
    grad_inputs_into_by(
        select.ANY, AS_GIVEN, w, top, dx, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded
    )


@numba.njit(cache=True, inline="always")
def grad_inputs_into_by(only, reduction, w, top, dx, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded):
    """:func:`corr_grad_inputs_into` by the algorithm ``only`` (see :func:`forward_into_by`)."""
    ksize, out = checked_grad_inputs(w, top, dx, stride, pad_lo, pad_hi, dilation, groups)
    N, C, M, Cg = top.shape[0], dx.shape[1], w.shape[0], w.shape[1]
    if N == 0 or M == 0:
        return
    in_size = (dx.shape[2], dx.shape[3], dx.shape[4])
    Mg = M // groups
    if only == ANY:
        algorithm, reduced, phase, size, st, lo, hi, dil = select.plan(
            select.GRAD_INPUTS, in_size, Cg, Mg, groups, ksize, stride, pad_lo, pad_hi, dilation, out, excluded
        )
        if not reduced:
            _grad_inputs_with(algorithm, w, top, dx, st, lo, hi, dil, groups, buffer_bytes, excluded)
            return
    elif reduction == AS_GIVEN:
        if only != GEMM and not _applies(
            np.int64(only), np.int64(select.GRAD_INPUTS), Cg, Mg, ksize, stride, pad_lo, pad_hi, dilation, out
        ):
            raise ValueError(NOT_ITS_PROBLEM)
        _grad_inputs_with(only, w, top, dx, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded)
        return
    else:
        algorithm = only
        applies, phase, size, st, lo, hi, dil = select.strided_reduction(in_size, ksize, stride, pad_lo, dilation, out)
        if not (
            applies
            and (
                only == GEMM
                or _applies(np.int64(only), np.int64(select.GRAD_INPUTS), Cg, Mg, ksize, st, lo, hi, dil, out)
            )
        ):
            raise ValueError(NOT_ITS_PROBLEM)
    scratch = workspace.begin()
    dxs = workspace.take_zeros(scratch, N * C * size[0] * size[1] * size[2], dx.dtype)
    dxs = dxs.reshape((N, C, size[0], size[1], size[2]))
    _grad_inputs_with(algorithm, w, top, dxs, st, lo, hi, dil, groups, buffer_bytes, excluded)
    _scatter_add(dxs, dx, phase, stride)
    workspace.end(scratch)


@compiled_only
def checked_grad_inputs(w, top, dx, stride, pad_lo, pad_hi, dilation, groups):
    """Checks the operands of :func:`grad_inputs_into_by`; returns (ksize, out)."""
    M, Cg, kd, kh, kw = w.shape
    N, Mt, od, oh, ow = top.shape
    C = Cg * groups
    in_size = (dx.shape[2], dx.shape[3], dx.shape[4])
    if dx.shape[0] != N or dx.shape[1] != C:
        raise ValueError("the input gradient array's shape does not match the convolution")
    if Mt != M:
        raise ValueError("output gradient channels (topgrad.shape[1]) must equal the number of filters")
    _check_groups(C, Cg, M, groups)
    _check_geometry(stride, dilation)
    for i in range(3):
        if in_size[i] < 1:
            raise ValueError("input shape must be positive")
    ksize = (kd, kh, kw)
    out = conv_output_size_3d(in_size, ksize, stride, pad_lo, pad_hi, dilation)
    if out[0] != od or out[1] != oh or out[2] != ow:
        raise ValueError("the output gradient's spatial shape does not match a convolution of the given input shape")
    return ksize, out


@numba.njit(cache=True, inline="always")
def _grad_inputs_with(algorithm, w, top, dx, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded):
    """The input gradient by ``algorithm`` (a code of ``kernels.select``), shapes checked."""
    M, Cg, kd, kh, kw = w.shape
    N = top.shape[0]
    C = Cg * groups
    ksize = (kd, kh, kw)
    out = (top.shape[2], top.shape[3], top.shape[4])
    P = out[0] * out[1] * out[2]
    K = Cg * kd * kh * kw
    Mg = M // groups
    if algorithm == DIRECT:
        direct_grad_inputs(w, top, dx, stride, pad_lo, dilation, groups)
        return
    if algorithm == WINOGRAD:
        winograd_grad_inputs_into(w, top, dx, pad_lo, pad_hi, groups, winograd_tile(dx.shape[3], dx.shape[4], excluded))
        return
    topv = top.reshape((N, M, P))
    w2 = w.reshape((M, K))
    scratch = workspace.begin()
    wt = workspace.take(scratch, groups * K * Mg, w.dtype).reshape((groups, K, Mg))
    for g in range(groups):
        _copy_2d(wt[g], w2[g * Mg : (g + 1) * Mg].T)
    if algorithm == POINTWISE:
        threads = limit_threads(2 * Mg * K * P)
        matmul_planes(wt, topv, dx.reshape((N, C, P)))
        restore_threads(threads)
        workspace.end(scratch)
        return
    chunk = _chunk_size(N, C * kd * kh * kw, P, top.itemsize, buffer_bytes)
    storage = workspace.take(scratch, C * kd * kh * kw * chunk * P, top.dtype)
    gathered = workspace.take(scratch, Mg * chunk * P if chunk > 1 else 0, top.dtype)
    threads = limit_threads(2 * Mg * K * chunk * P)
    for n0 in range(0, N, chunk):
        nb = min(chunk, N - n0)
        cols = _matrix_in(storage, C * kd * kh * kw, nb * P)
        for g in range(groups):
            if nb == 1:
                np.dot(wt[g], topv[n0, g * Mg : (g + 1) * Mg], cols[g * K : (g + 1) * K])
            else:
                tb = _gather_top(topv, n0, nb, g * Mg, Mg, P, gathered)
                np.dot(wt[g], tb, cols[g * K : (g + 1) * K])
        for i in range(nb):
            col2im_add(cols, i * P, dx[n0 + i], ksize, stride, pad_lo, dilation, out)
    restore_threads(threads)
    workspace.end(scratch)


@numba.njit(cache=True)
def corr_grad_weights(x, top, ksize, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded=0):
    """Gradient wrt the filters of :func:`corr_forward`: ``dw`` (M, C // groups, *ksize)."""
    for i in range(3):
        if ksize[i] < 1:
            raise ValueError("filter shape must be positive")
    if groups < 1 or x.shape[1] % groups != 0:
        raise ValueError("num_groups must divide the input channels and the number of filters")
    dw = np.zeros((top.shape[1], x.shape[1] // groups, ksize[0], ksize[1], ksize[2]), dtype=x.dtype)
    corr_grad_weights_into(x, top, dw, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded)
    return dw


@compiled_only
def corr_grad_weights_into(x, top, dw, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded=0):
    """:func:`corr_grad_weights` accumulating into a given, zero-filled ``dw`` (M, C // groups, *ksize)."""
    grad_weights_into_by(
        select.ANY, AS_GIVEN, x, top, dw, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded
    )


@numba.njit(cache=True, inline="always")
def grad_weights_into_by(only, reduction, x, top, dw, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded):
    """:func:`corr_grad_weights_into` by the algorithm ``only`` (see :func:`forward_into_by`)."""
    geometry = checked_grad_weights(x, top, dw, stride, pad_lo, pad_hi, dilation, groups)
    N, C, M = x.shape[0], x.shape[1], top.shape[1]
    if N == 0 or M == 0:
        return
    scratch = workspace.begin()
    algorithm, xs, st, lo, hi, dil = _planned_images(
        only, reduction, select.GRAD_WEIGHTS, x, C // groups, M // groups, groups, geometry, excluded, scratch
    )
    _grad_weights_with(algorithm if only == ANY else only, xs, top, dw, st, lo, hi, dil, groups, buffer_bytes)
    workspace.end(scratch)


@compiled_only
def checked_grad_weights(x, top, dw, stride, pad_lo, pad_hi, dilation, groups):
    """Checks the operands of :func:`grad_weights_into_by`; returns (ksize, stride, pad_lo,
    pad_hi, dilation, out)."""
    ksize = (dw.shape[2], dw.shape[3], dw.shape[4])
    N, C, D, H, W = x.shape
    Nt, M, od, oh, ow = top.shape
    if Nt != N:
        raise ValueError("output gradient batch size (topgrad.shape[0]) must equal the input batch size")
    if groups < 1:
        raise ValueError("num_groups must be >= 1")
    if C % groups != 0 or M % groups != 0:
        raise ValueError("num_groups must divide the input channels and the number of filters")
    _check_geometry(stride, dilation)
    for i in range(3):
        if ksize[i] < 1:
            raise ValueError("filter shape must be positive")
    if dw.shape[0] != M or dw.shape[1] != C // groups:
        raise ValueError("the filter gradient array's shape does not match the convolution")
    out = conv_output_size_3d((D, H, W), ksize, stride, pad_lo, pad_hi, dilation)
    if out[0] != od or out[1] != oh or out[2] != ow:
        raise ValueError("the output gradient's spatial shape does not match a convolution with the given filter shape")
    return ksize, stride, pad_lo, pad_hi, dilation, out


@numba.njit(cache=True, inline="always")
def _grad_weights_with(algorithm, x, top, dw, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes):
    """The filter gradient by ``algorithm`` (a code of ``kernels.select``), shapes checked."""
    N, C = x.shape[0], x.shape[1]
    M = top.shape[1]
    ksize = (dw.shape[2], dw.shape[3], dw.shape[4])
    kd, kh, kw = ksize
    Cg = C // groups
    out = (top.shape[2], top.shape[3], top.shape[4])
    P = out[0] * out[1] * out[2]
    K = Cg * kd * kh * kw
    Mg = M // groups
    if algorithm == DIRECT:
        direct_grad_weights(x, top, dw, stride, pad_lo, dilation, groups)
        return
    if algorithm == WINOGRAD:
        _copy_2d(_as_rows(dw), _as_rows(winograd_grad_weights(x, top, pad_lo, pad_hi, groups)))
        return
    dw2 = dw.reshape((M, K))
    topv = top.reshape((N, M, P))
    if algorithm == POINTWISE:
        threads = limit_threads(2 * Mg * K * P)
        add_plane_products(topv, x.reshape((N, C, P)), dw2, groups)
        restore_threads(threads)
        return
    # A few images per GEMM: a longer reduction means fewer passes adding into ``dw``.
    chunk = _chunk_size(N, C * kd * kh * kw, P, x.itemsize, buffer_bytes, GRAD_WEIGHTS_IMAGES)
    scratch = workspace.begin()
    storage = workspace.take(scratch, C * kd * kh * kw * chunk * P, x.dtype)
    gathered = workspace.take(scratch, Mg * chunk * P if chunk > 1 else 0, x.dtype)
    prod = workspace.take(scratch, Mg * K, x.dtype).reshape((Mg, K))
    threads = limit_threads(2 * Mg * K * chunk * P)
    for n0 in range(0, N, chunk):
        nb = min(chunk, N - n0)
        cols = _columns(x, n0, nb, ksize, stride, pad_lo, dilation, out, storage)
        for g in range(groups):
            if nb == 1:
                np.dot(topv[n0, g * Mg : (g + 1) * Mg], cols[g * K : (g + 1) * K].T, prod)
            else:
                tb = _gather_top(topv, n0, nb, g * Mg, Mg, P, gathered)
                np.dot(tb, cols[g * K : (g + 1) * K].T, prod)
            add_into(dw2[g * Mg : (g + 1) * Mg], prod)
    restore_threads(threads)
    workspace.end(scratch)


@compiled_only
def _subsample(x, phase, stride, size, scratch):
    """Contiguous ``x[:, :, phase[0] :: stride[0], ...]``, ``size`` points per spatial axis, in
    the workspace ``scratch``."""
    N, C = x.shape[0], x.shape[1]
    xs = workspace.take(scratch, N * C * size[0] * size[1] * size[2], x.dtype)
    xs = xs.reshape((N, C, size[0], size[1], size[2]))
    for n in range(N):
        for c in range(C):
            for i in range(size[0]):
                for j in range(size[1]):
                    src, dst = x[n, c, phase[0] + stride[0] * i, phase[1] + stride[1] * j], xs[n, c, i, j]
                    for k in range(size[2]):
                        dst[k] = src[phase[2] + stride[2] * k]
    return xs


@compiled_only
def _scatter_add(dxs, dx, phase, stride):
    """``dx[:, :, phase[0] :: stride[0], ...] += dxs`` (the inverse of :func:`_subsample`)."""
    for n in range(dxs.shape[0]):
        for c in range(dxs.shape[1]):
            for i in range(dxs.shape[2]):
                for j in range(dxs.shape[3]):
                    src, dst = dxs[n, c, i, j], dx[n, c, phase[0] + stride[0] * i, phase[1] + stride[1] * j]
                    for k in range(dxs.shape[4]):
                        dst[phase[2] + stride[2] * k] += src[k]


@numba.njit(cache=True, inline="always")
def _copy_2d(dst, src):
    """``dst[...] = src`` for 2-d arrays of one shape, as plain loops: Numba's slice assignment
    brings a shape-mismatch message builder that costs seconds of compile time per kernel."""
    for i in range(dst.shape[0]):
        for j in range(dst.shape[1]):
            dst[i, j] = src[i, j]


@compiled_only
def _as_rows(a):
    """A C-contiguous 5-d array as a 2-d (a.shape[0], rest) view."""
    return a.reshape((a.shape[0], a.size // max(a.shape[0], 1)))
