"""Numba implementations of the abstract convolution Ops.

They call the same compiled kernels as ``perform`` (``kernels.corr``, or ``kernels.unshared``
for locally connected filters), with the Op's parameters baked in as constants; the
batch-chunk bound ``COLUMN_BUFFER_BYTES`` and the algorithms excluded by the environment
variable ``PYTENSOR_NNET_CONV_EXCLUDE`` (see ``kernels.select``) are read when the function
is compiled and are part of the cache key.
"""

from __future__ import annotations

import sys
from functools import lru_cache

import numba
import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import default_hash_key_from_props, register_funcify_and_cache_key

from pytensor_nnet import shapes
from pytensor_nnet.conv import ops
from pytensor_nnet.dispatch.numba import boundary, workers
from pytensor_nnet.dispatch.numba.fingerprint import source_fingerprint
from pytensor_nnet.kernels import blas_threads, corr, direct, gemm_batch, select, unshared, winograd
from pytensor_nnet.kernels import im2col as im2col_kernels
from pytensor_nnet.kernels.jit import compiled_only
from pytensor_nnet.kernels.select import FORWARD, GRAD_INPUTS
from pytensor_nnet.shapes.checks import SHAPES_OK

CACHE_VERSION = 5
#: The cache key follows the code (see ``fingerprint``): this module, the Ops (whose index maps
#: the checks bake in), the shared shape checks and every kernel it calls.
KERNEL_FINGERPRINT = source_fingerprint(
    sys.modules[__name__],
    boundary,
    workers,
    ops,
    shapes.axes,
    shapes.conv,
    shapes.checks,
    corr,
    direct,
    im2col_kernels,
    unshared,
    blas_threads,
    gemm_batch,
    select,
    winograd,
)

# The kernels of shared filters are called across the boundary of ``boundary``: ``meta`` holds
# the three operands' 5-d shapes, then stride, pad_lo, pad_hi, dilation (3 each), groups, the
# column-buffer bound and the mask of excluded algorithms (``kernels.select``).
_META_LENGTH = 30


@compiled_only
def _boundary_operands(a, b, out, meta):
    m = numba.carray(meta, (_META_LENGTH,))
    a_arr = numba.carray(a, (m[0], m[1], m[2], m[3], m[4]))
    b_arr = numba.carray(b, (m[5], m[6], m[7], m[8], m[9]))
    out_arr = numba.carray(out, (m[10], m[11], m[12], m[13], m[14]))
    geometry = ((m[15], m[16], m[17]), (m[18], m[19], m[20]), (m[21], m[22], m[23]), (m[24], m[25], m[26]))
    return a_arr, b_arr, out_arr, geometry, m[27], m[28], m[29]


def _entry_body(direction, algorithm):
    """The C entry point of ``direction`` (``select.FORWARD``: images ``a``, filters ``b``,
    output ``out``; ``GRAD_INPUTS``: filters, output gradient, zero-filled input gradient;
    ``GRAD_WEIGHTS``: images, output gradient, zero-filled filter gradient) by ``algorithm``
    only: the ``*_into_by`` function of ``kernels.corr`` with the algorithm as a constant, so
    that the code of the others is not compiled in. It checks the operands before it writes;
    returns ``boundary.DONE`` (0 if it raised).

    A closure over two ints, which Numba's on-disk cache keys it on: the direction and the
    algorithm (an edit to the kernels is covered by ``numba_cache``)."""

    def body(a, b, c, out, meta):
        p, q, o, geometry, groups, buffer_bytes, excluded = _boundary_operands(a, b, out, meta)
        stride, pad_lo, pad_hi, dilation = geometry
        if direction == FORWARD:  # bare names: see ``kernels.corr``
            corr.forward_into_by(algorithm, p, q, o, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded)
        elif direction == GRAD_INPUTS:
            corr.grad_inputs_into_by(
                algorithm, p, q, o, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded
            )
        else:
            corr.grad_weights_into_by(
                algorithm, p, q, o, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded
            )
        return boundary.DONE

    body.__name__ = f"corr_{select.DIRECTION_NAMES[direction]}_{select.NAMES[algorithm]}_c"
    return body


#: The entry points by direction, then algorithm code (``select.ALGORITHMS``).
_ENTRY_BODIES = tuple(
    tuple(_entry_body(direction, algorithm) for algorithm in select.ALGORITHMS)
    for direction in (select.FORWARD, select.GRAD_INPUTS, select.GRAD_WEIGHTS)
)
#: The same entries by name, for the compile helper (``boundary.body_named``).
BOUNDARY_BODIES = {body.__name__: body for row in _ENTRY_BODIES for body in row}


@compiled_only
def _fill_meta(meta, a_shape, b_shape, out_shape, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded):
    for i in range(5):
        meta[i] = a_shape[i]
        meta[5 + i] = b_shape[i]
        meta[10 + i] = out_shape[i]
    for i in range(3):
        meta[15 + i] = stride[i]
        meta[18 + i] = pad_lo[i]
        meta[21 + i] = pad_hi[i]
        meta[24 + i] = dilation[i]
    meta[27] = groups
    meta[28] = buffer_bytes
    meta[29] = excluded


@numba.njit(cache=True)
def _conv_plan(direction, a, b, out, stride, pad_lo, pad_hi, dilation, groups, excluded):
    """The algorithm of ``select.plan``, and the parts of the batch to run at once
    (``workers``), for the operands of ``direction``'s entry (``select.FORWARD``: images,
    filters, output; ``GRAD_INPUTS``: filters, output gradient, input gradient;
    ``GRAD_WEIGHTS``: images, output gradient, filter gradient).

    The Winograd and direct kernels gain from parts, and so do im2col + GEMM and the
    pointwise GEMMs while they are small enough to run on one BLAS thread anyway; larger GEMMs
    keep the BLAS's threads (the workers' module doc says why)."""
    if direction == select.FORWARD:
        batch, filters, positions, images = a.shape[0], b.shape, out.shape, a.shape
    elif direction == select.GRAD_INPUTS:
        batch, filters, positions, images = b.shape[0], a.shape, b.shape, out.shape
    else:
        batch, filters, positions, images = a.shape[0], out.shape, b.shape, a.shape
    M, Cg = filters[0], filters[1]
    ksize = (filters[2], filters[3], filters[4])
    out_size = (positions[2], positions[3], positions[4])
    gemm_flops = 2 * (M // groups) * Cg * ksize[0] * ksize[1] * ksize[2] * out_size[0] * out_size[1] * out_size[2]
    in_size = (images[2], images[3], images[4])
    algorithm = select.plan(
        direction, in_size, Cg, M // groups, groups, ksize, stride, pad_lo, pad_hi, dilation, out_size, excluded
    )[0]
    on_blas = algorithm == select.GEMM or algorithm == select.POINTWISE
    if on_blas and gemm_flops >= blas_threads.SINGLE_THREAD_MAX_FLOPS:
        return algorithm, 1
    return algorithm, workers.parts_for(batch, batch * groups * gemm_flops)


@compiled_only
def _run_conv_parts(
    direction, entry, a, b, out, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded, parts
):
    """Run the boundary entry at address ``entry`` (of ``direction``, operands as in
    :func:`_conv_plan`) on ``parts`` parts of the batch at once; returns the status. The
    filter gradient of each part after the first goes to a buffer of its own, added at the end
    (when every part succeeded)."""
    batch = b.shape[0] if direction == select.GRAD_INPUTS else a.shape[0]
    own = parts - 1 if direction == select.GRAD_WEIGHTS else 0
    partials = np.zeros((own,) + out.shape, dtype=out.dtype)
    tasks = workers.task_rows(parts, _META_LENGTH)
    for i in range(parts):
        lo, hi = i * batch // parts, (i + 1) * batch // parts
        a_shape, b_shape, out_shape = a.shape, b.shape, out.shape
        a_address, b_address, out_address = np.int64(a.ctypes.data), np.int64(b.ctypes.data), np.int64(out.ctypes.data)
        if direction != select.GRAD_INPUTS:
            a_shape = (hi - lo,) + a.shape[1:]
            a_address = workers.part_address(a, lo, batch)
        if direction != select.FORWARD:
            b_shape = (hi - lo,) + b.shape[1:]
            b_address = workers.part_address(b, lo, batch)
        if direction != select.GRAD_WEIGHTS:
            out_shape = (hi - lo,) + out.shape[1:]
            out_address = workers.part_address(out, lo, batch)
        elif i > 0:
            out_address = np.int64(partials[i - 1].ctypes.data)
        row = tasks[i]
        row[0], row[1], row[2], row[3], row[4] = entry, a_address, b_address, a_address, out_address
        _fill_meta(
            row[workers.TASK_HEADER :],
            a_shape,
            b_shape,
            out_shape,
            stride,
            pad_lo,
            pad_hi,
            dilation,
            groups,
            buffer_bytes,
            excluded,
        )
    status = workers.run_tasks(tasks)
    if status != boundary.DONE:
        return status
    total = out.reshape(out.size)
    for i in range(own):
        part = partials[i].reshape(out.size)
        for j in range(out.size):
            total[j] += part[j]
    return status


#: The driver's ``meta`` (:func:`conv_drive`): the entries' (``_META_LENGTH``), then the
#: direction and the addresses of its table of entries and of their resolver
#: (``boundary.LazyKernels``).
_DIRECTION, _TABLE, _RESOLVER = _META_LENGTH, _META_LENGTH + 1, _META_LENGTH + 2
_DRIVER_META_LENGTH = _META_LENGTH + 3


def conv_drive(a, b, c, out, meta):
    """The boundary entry between a graph and the entries of :func:`_entry_body`, one per
    dtype: plans the algorithm and the parts of the direction in ``meta`` (operands as in
    :func:`_conv_plan`), compiles the algorithm's entry the first time it is planned (the
    resolver takes the GIL: called on the graph's thread, before any part starts) and runs it.

    The planning and the threading live here, compiled once and cached on disk, so the code
    of each graph holds only the call (see ``boundary``). Returns ``boundary.DONE``,
    ``boundary.KERNEL_UNCOMPILED``, or 0 if it or the entry raised."""
    p, q, o, geometry, groups, buffer_bytes, excluded = _boundary_operands(a, b, out, meta)
    stride, pad_lo, pad_hi, dilation = geometry
    m = numba.carray(meta, (_DRIVER_META_LENGTH,))
    direction = m[_DIRECTION]
    algorithm, parts = _conv_plan(direction, p, q, o, stride, pad_lo, pad_hi, dilation, groups, excluded)
    address = workers.resolved_address(m[_TABLE], m[_RESOLVER], algorithm)
    if address == 0:
        return boundary.KERNEL_UNCOMPILED
    if parts > 1:
        status = _run_conv_parts(
            direction, address, p, q, o, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded, parts
        )
    else:
        status = workers.call_entry_on(address, p, q, p, o, m)
    return status


def _entries(direction, dtype):
    """The ``boundary.LazyKernels`` of the entries of ``direction`` for ``dtype``."""
    family = "conv_corr_" + select.DIRECTION_NAMES[direction]
    return boundary.lazy_kernels(family, _ENTRY_BODIES[direction], dtype, KERNEL_FINGERPRINT)


def _predicted_algorithm(direction, images, filters, geometry, groups, excluded):
    """The algorithm ``select.plan`` picks for 3-d-view ``images`` and ``filters`` sizes
    (sequences of 5 ints) and the Op's ``geometry``, as the driver will; None when the sizes
    do not make a convolution. Python, on ints: a graph's build compiles nothing (the compiled
    prediction took 3 s of the first build)."""
    ksize = tuple(int(k) for k in filters[2:])
    stride, dilation = (tuple(int(v) for v in row) for row in (geometry[0], geometry[3]))
    pad_lo, pad_hi = shapes.resolve_pads(
        tuple(int(v) for v in geometry[1]), tuple(int(v) for v in geometry[2]), ksize, dilation
    )
    in_size = tuple(int(i) for i in images[2:])
    out = shapes.conv_output_size_3d(in_size, ksize, stride, pad_lo, pad_hi, dilation)
    if min(out) < 1:
        return None
    Cg, Mg = int(filters[1]), int(filters[0]) // groups
    return select.plan_rule(direction, in_size, Cg, Mg, groups, ksize, stride, pad_lo, pad_hi, dilation, out, excluded)[
        0
    ]


def _static_sizes(variable, hint):
    """The 3-d-view sizes (an int64 array of 5) of a node's ``variable`` from its static shape,
    else the Op's shape ``hint``; None where one is unknown."""
    hint = hint or (None,) * variable.type.ndim
    known = [size if size is not None else given for size, given in zip(variable.type.shape, hint)]
    if any(size is None for size in known):
        return None
    lead, spatial = known[:2], known[2:]
    return np.array(lead + [1] * (3 - len(spatial)) + spatial, dtype=np.int64)


def _prefetch_entry(op, node, direction, dtype):
    """Have the entry a call of this node will plan loaded, or compiled ahead
    (``LazyKernels.prefetch``): the planned one when the node's image and filter sizes are
    known before run time, else GEMM, the plan of most shapes that no specialised algorithm
    takes (looked up only: not loaded unless a call plans it)."""
    image, filters = {
        select.FORWARD: (node.inputs[0], node.inputs[1]),
        select.GRAD_INPUTS: (node.outputs[0], node.inputs[0]),
        select.GRAD_WEIGHTS: (node.inputs[0], node.outputs[0]),
    }[direction]
    images, kernels = _static_sizes(image, op.imshp), _static_sizes(filters, op.kshp)
    predicted = None
    if images is not None and kernels is not None:
        predicted = _predicted_algorithm(direction, images, kernels, op.geometry, op.num_groups, select.excluded_mask())
    planned = predicted is not None  # else inconsistent sizes: the call will say so
    _entries(direction, dtype).prefetch(predicted if planned else select.GEMM, keep=planned)


@lru_cache
def _boundary_call(direction, dtype, excluded=0):
    """Compiled ``call(a, b, out, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes)`` of
    the convolution ``direction`` (operands as in :func:`_entry_body`) for ``dtype``
    (C-contiguous 5-d operands; ``out`` is written), through :func:`conv_drive`. One per
    direction, dtype and mask in a process: the nodes of every graph share it."""
    entries = _entries(direction, dtype)
    table, resolve = entries.table, entries.resolve
    driver = boundary.lazy_kernel(conv_drive, dtype, KERNEL_FINGERPRINT)
    driver_table, driver_resolve = driver.table, driver.resolve

    @numba_basic.numba_njit
    def call(a, b, out, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes):
        meta = np.empty(_DRIVER_META_LENGTH, dtype=np.int64)
        mask = np.int64(excluded)
        _fill_meta(meta, a.shape, b.shape, out.shape, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, mask)
        meta[_DIRECTION] = direction
        meta[_TABLE] = workers.symbol_address(table)
        meta[_RESOLVER] = workers.symbol_address(resolve)
        driver_address, resolver_address = workers.symbol_address(driver_table), workers.symbol_address(driver_resolve)
        status = boundary.call_driver(driver_address, resolver_address, a, b, a, out, meta)
        if status == boundary.KERNEL_UNCOMPILED:
            raise RuntimeError("pytensor_nnet could not compile its convolution kernel (see the log)")
        if status != boundary.DONE:
            raise ValueError("the convolution kernel refused its arguments (an internal error: please report it)")

    return call


# The reshapes and flips below are module-level functions, cached on disk with the kernels:
# a new graph links them instead of compiling a closure of its own (each closure costs a
# fraction of a second of Numba compile time, per node and per graph).


@compiled_only
def _1d_to_3d(a):
    return np.ascontiguousarray(a).reshape((a.shape[0], a.shape[1], 1, 1, a.shape[2]))


@compiled_only
def _2d_to_3d(a):
    return np.ascontiguousarray(a).reshape((a.shape[0], a.shape[1], 1, a.shape[2], a.shape[3]))


@compiled_only
def _3d_to_3d(a):
    return np.ascontiguousarray(a)


@compiled_only
def _3d_to_1d(a):
    return a.reshape((a.shape[0], a.shape[1], a.shape[4]))


@compiled_only
def _3d_to_2d(a):
    return a.reshape((a.shape[0], a.shape[1], a.shape[3], a.shape[4]))


@compiled_only
def _3d_to_3d_view(a):
    return a


@compiled_only
def _unshared_1d_to_3d(w):
    return np.ascontiguousarray(w).reshape((w.shape[0], 1, 1, w.shape[1], w.shape[2], 1, 1, w.shape[3]))


@compiled_only
def _unshared_2d_to_3d(w):
    return np.ascontiguousarray(w).reshape(
        (w.shape[0], 1, w.shape[1], w.shape[2], w.shape[3], 1, w.shape[4], w.shape[5])
    )


@compiled_only
def _unshared_3d_to_1d(w):
    return w.reshape((w.shape[0], w.shape[3], w.shape[4], w.shape[7]))


@compiled_only
def _unshared_3d_to_2d(w):
    return w.reshape((w.shape[0], w.shape[2], w.shape[3], w.shape[4], w.shape[6], w.shape[7]))


@compiled_only
def _flip_filters(w):
    """Contiguous copy of 3-d-view filters with their three kernel axes reversed (loops: the
    code of ``np.ascontiguousarray`` of a reversed 5-d view is seven times larger, and every
    graph's module holds this function)."""
    M, C, kd, kh, kw = w.shape
    out = np.empty(w.shape, dtype=w.dtype)
    for m in range(M):
        for c in range(C):
            for d in range(kd):
                for h in range(kh):
                    for x in range(kw):
                        out[m, c, d, h, x] = w[m, c, kd - 1 - d, kh - 1 - h, kw - 1 - x]
    return out


@compiled_only
def _flip_unshared_filters(w):
    return np.ascontiguousarray(w[:, :, :, :, :, ::-1, ::-1, ::-1])


def _to_3d(convdim):
    """Compiled reshape of a (N, C, *spatial) array with ``convdim`` spatial dims to (N, C, D, H, W)."""
    return {1: _1d_to_3d, 2: _2d_to_3d, 3: _3d_to_3d}[convdim]


def _from_3d(convdim):
    """Compiled inverse of :func:`_to_3d`."""
    return {1: _3d_to_1d, 2: _3d_to_2d, 3: _3d_to_3d_view}[convdim]


@compiled_only
def _plain(t):
    """The 3 first entries of ``t`` as an int64 3-tuple."""
    return (np.int64(t[0]), np.int64(t[1]), np.int64(t[2]))


@compiled_only
def _kernel_size(w):
    """The kernel size ``(kd, kh, kw)`` of 3-d-view filters (5-d, or 8-d unshared)."""
    return (w.shape[-3], w.shape[-2], w.shape[-1])


@compiled_only
def _resolved_geometry(geometry, ksize):
    """The Op's geometry (``geometry``: rows stride, pad_before, pad_after, dilation of
    ``op.geometry``, padding as sizes or codes) for kernel size ``ksize``: (stride, pad_lo,
    pad_hi, dilation) as run-time int64 3-tuples.

    Values a dispatch function captures as tuples are typed as literals, so passing them on
    would compile a specialisation of every callee for each geometry (a fraction of a second
    per new graph). A captured array is a run-time value of one type for every geometry."""
    stride, dilation = _plain(geometry[0]), _plain(geometry[3])
    pad_lo, pad_hi = shapes.resolve_pads(_plain(geometry[1]), _plain(geometry[2]), _plain(ksize), dilation)
    return stride, pad_lo, pad_hi, dilation


def _unshared_to_3d(convdim):
    """Compiled view of unshared filters (M, *out, Cg, *k) as (M, od, oh, ow, Cg, kd, kh, kw)."""
    return {1: _unshared_1d_to_3d, 2: _unshared_2d_to_3d, 3: _3d_to_3d}[convdim]


def _unshared_from_3d(convdim):
    """Compiled inverse of :func:`_unshared_to_3d`."""
    return {1: _unshared_3d_to_1d, 2: _unshared_3d_to_2d, 3: _3d_to_3d_view}[convdim]


def _maybe_flip(flip, unshared_filters=False):
    """Compiled flip of the three kernel axes of 3-d-view filters (5-d, or 8-d unshared)."""
    if not flip:
        return _3d_to_3d_view
    return _flip_unshared_filters if unshared_filters else _flip_filters


def _index_map(indices):
    """An index map of ``shapes.pick_sizes`` as an int64 array (a run-time value for Numba)."""
    return np.asarray(tuple(indices), dtype=np.int64)


@compiled_only
def _sizes(shape):
    """An array shape (a tuple) as an int64 array, the form the shared checks take."""
    out = np.empty(len(shape), dtype=np.int64)
    for i in range(len(shape)):
        out[i] = shape[i]
    return out


# The compiled checks find problems with the ``*_problem`` functions of ``shapes`` (ints only,
# compiled inline) and, only then, call the Python function that words the message (the one
# ``perform`` and the graph build use) in object mode, which raises it.


def _check_hint(hint, hint_name, what):
    """Compiled run-time check of an array shape against a legacy shape hint (None entries
    skipped): the message of ``shapes.shape_hint_error``."""
    if hint is None or all(h is None for h in hint):
        return numba_basic.numba_njit(lambda shape: None)
    hint_sizes = _index_map(shapes.UNKNOWN if h is None else h for h in hint)

    def raise_error(actual):
        raise shapes.ShapeMismatchError(shapes.shape_hint_error(hint_sizes, actual, hint_name, what))

    @numba_basic.numba_njit
    def check(shape):
        actual = _sizes(shape)
        if shapes.shape_hint_mismatch(hint_sizes, actual):
            with numba.objmode():
                raise_error(actual)

    return check


def _check_shapes(op):
    """Compiled ``check(image, filters, top, has_top)`` of N-d int64 size arrays (``UNKNOWN``
    where not given): raises the message of ``shapes.conv_shape_error``, as ``perform`` does.
    The checks themselves run across the boundary (:func:`conv_check`)."""
    image_map, filters_map, region_map = (_index_map(m) for m in op.check_maps())
    no_top = _index_map((shapes.NOT_GIVEN,) * 5)
    geometry = op.check_args()
    stride, pad_before, pad_after, dilation = geometry[:4]
    convdim, groups, unshared_flag = op.convdim, op.num_groups, int(op.unshared)

    def raise_error(image, filters, region, top):
        raise shapes.ShapeMismatchError(
            shapes.conv_shape_error(convdim, groups, unshared_flag, image, filters, region, top, *geometry)
        )

    maps = np.stack([image_map, filters_map, _index_map(region_map.tolist() + [shapes.NOT_GIVEN] * 2), no_top])
    meta = np.zeros(_CHECK_META_LENGTH, dtype=np.int64)
    meta[:3] = convdim, groups, unshared_flag
    meta[_CHECK_GEOMETRY:_CHECK_MAPS] = np.array([stride, pad_before, pad_after, dilation], dtype=np.int64).ravel()
    meta[_CHECK_MAPS:] = maps.ravel()
    checker = boundary.lazy_kernel(conv_check, "int64", KERNEL_FINGERPRINT)
    checker_table, checker_resolve = checker.table, checker.resolve

    @numba_basic.numba_njit
    def check(image, filters, top, has_top):
        call_meta = meta.copy()
        call_meta[_CHECK_HAS_TOP] = has_top
        call_meta[_CHECK_LENGTHS], call_meta[_CHECK_LENGTHS + 1] = image.shape[0], filters.shape[0]
        call_meta[_CHECK_LENGTHS + 2] = top.shape[0]
        sizes = np.empty((4, 5), dtype=np.int64)
        address = workers.resolved_address(
            workers.symbol_address(checker_table), workers.symbol_address(checker_resolve), 0
        )
        if address == 0:
            raise RuntimeError("pytensor_nnet could not compile its shape check (see the log)")
        if workers.call_entry_on(address, image, filters, top, sizes, call_meta) != SHAPES_OK:
            with numba.objmode():
                raise_error(sizes[0], sizes[1], sizes[2, :3], sizes[3])

    return check


#: ``meta`` of :func:`conv_check`: convdim, groups, unshared; whether a top is given; the
#: lengths of the image, filters and top size arrays; the geometry (stride, pad_before,
#: pad_after, dilation: 3 each); the index maps of ``shapes.pick_sizes`` (rows image, filters,
#: region (3 used), no top: 5 each).
_CHECK_HAS_TOP, _CHECK_LENGTHS, _CHECK_GEOMETRY, _CHECK_MAPS = 3, 4, 7, 19
_CHECK_META_LENGTH = _CHECK_MAPS + 20


@compiled_only
def _pick_into(row, values, indices):
    """``row[:] = shapes.pick_sizes(values, indices)``, by element (an array assignment
    compiles its broadcasting checks and their messages: seconds)."""
    picked = shapes.pick_sizes(values, indices)
    for i in range(row.shape[0]):
        row[i] = picked[i]


def conv_check(image, filters, top, sizes, meta):
    """``shapes.conv_shape_problem`` of the N-d size arrays ``image``, ``filters`` and ``top``
    (int64; ``meta`` as above), brought to 3-d by the index maps; returns the problem code and
    writes the 3-d image, filters, region and top sizes to the rows of ``sizes`` (4 x 5). A
    boundary entry (int64 operands), so that no graph's module holds the checks."""
    m = numba.carray(meta, (_CHECK_META_LENGTH,))
    maps = m[_CHECK_MAPS:].reshape((4, 5))
    geometry = m[_CHECK_GEOMETRY:_CHECK_MAPS].reshape((4, 3))
    out = numba.carray(sizes, (4, 5))
    image_sizes = numba.carray(image, (m[_CHECK_LENGTHS],))
    filters_sizes = numba.carray(filters, (m[_CHECK_LENGTHS + 1],))
    top_sizes = numba.carray(top, (m[_CHECK_LENGTHS + 2],))
    _pick_into(out[0], image_sizes, maps[0])
    _pick_into(out[1], filters_sizes, maps[1])
    _pick_into(out[2], filters_sizes, maps[2])
    _pick_into(out[3], top_sizes, maps[0] if m[_CHECK_HAS_TOP] else maps[3])
    problem, _ = shapes.conv_shape_problem(
        m[0],
        m[1],
        m[2],
        out[0],
        out[1],
        out[2, :3],
        out[3],
        _plain(geometry[0]),
        _plain(geometry[1]),
        _plain(geometry[2]),
        _plain(geometry[3]),
    )
    return problem


def _given_shape(op, node):
    """Compiled run-time check of a gradient Op's ``shape`` input (the message of
    ``shapes.shape_vector_error``, before any entry is read) returning the N-d shape it gives
    (``UNKNOWN`` elsewhere) and the spatial sizes as a plain (D, H, W) tuple."""
    full = op.shape_is_full(node)
    length = op.full_shape_length() if full else op.convdim
    n_lead = 2 if full else 0
    name = op.vector_name()
    given_map = _index_map(op.vector_map(full))
    spatial_map = _index_map((shapes.FILL_ONE,) * (3 - op.convdim) + tuple(range(length - op.convdim, length)))

    def raise_error(values):
        raise shapes.ShapeMismatchError(shapes.shape_vector_error(name, values, length, n_lead))

    @numba_basic.numba_njit
    def given_shape(vector):
        values = _vector_sizes(vector)
        if shapes.shape_vector_problem(values, length, n_lead) != 0:
            with numba.objmode():
                raise_error(values)
        spatial = shapes.pick_sizes(values, spatial_map)
        return shapes.pick_sizes(values, given_map), (spatial[0], spatial[1], spatial[2])

    return given_shape


@compiled_only
def _vector_sizes(vector):
    """A shape vector (any int dtype) as an int64 array."""
    out = np.empty(vector.shape[0], dtype=np.int64)
    for i in range(vector.shape[0]):
        out[i] = vector[i]
    return out


def _setup(op):
    return (
        np.array(op.geometry, dtype=np.int64),
        op.num_groups,
        ops.COLUMN_BUFFER_BYTES,
        _to_3d(op.convdim),
        _from_3d(op.convdim),
        _maybe_flip(op.filter_flip, op.unshared),
        _check_hint(op.imshp, op.arg_names.image_hint, ops.var_name(op.arg_names.image)),
        _check_hint(op.kshp, op.arg_names.filters_hint, ops.var_name(op.arg_names.filters)),
    )


def _filters_3d(op, to_3d, from_3d):
    """(kern_to_3d, kern_from_3d) for the Op's kind of filters."""
    if op.unshared:
        return _unshared_to_3d(op.convdim), _unshared_from_3d(op.convdim)
    return to_3d, from_3d


def _cache_key(op, buffer_bytes, node=None):
    """Key of the compiled function: the Op's properties and what else it bakes in (the names
    in its messages; for a gradient Op, whether its ``shape`` input is the whole shape)."""
    return default_hash_key_from_props(
        op,
        buffer_bytes=buffer_bytes,
        excluded_algorithms=select.excluded_mask(),
        kernels=KERNEL_FINGERPRINT,
        cache_version=CACHE_VERSION,
        arg_names=tuple(op.arg_names),
        full_shape=None if node is None else op.shape_is_full(node),
    )


def _kernel_call(op, node, kind):
    """Compiled ``run(a, b, out_shape, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes)``
    returning the result of the kernel ``kind`` (shape ``out_shape``, the node's dtype)."""
    if op.unshared:  # locally connected filters: the kernels allocate; linked into the graph
        kernel = getattr(unshared, "unshared_" + kind)
        if kind == "forward":

            @numba_basic.numba_njit
            def run(a, b, out_shape, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes):
                return kernel(a, b, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes)

            return run

        @numba_basic.numba_njit
        def run_with_size(a, b, out_shape, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes):
            size = (out_shape[-3], out_shape[-2], out_shape[-1])
            return kernel(a, b, size, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes)

        return run_with_size
    direction = select.DIRECTION_NAMES.index(kind)
    dtype = np.dtype(node.outputs[0].dtype)
    fill = _boundary_call(direction, dtype.name, select.excluded_mask())
    _prefetch_entry(op, node, direction, dtype.name)
    zero_filled = kind != "forward"  # the gradients accumulate into their output

    @numba_basic.numba_njit
    def run_across_boundary(a, b, out_shape, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes):
        out = np.zeros(out_shape, dtype=dtype) if zero_filled else np.empty(out_shape, dtype=dtype)
        fill(a, b, out, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes)
        return out

    return run_across_boundary


@register_funcify_and_cache_key(ops.AbstractConv)
def numba_funcify_AbstractConv(op, node, **kwargs):
    geometry, groups, buffer_bytes, to_3d, from_3d, flip, check_img, check_kern = _setup(op)
    kern_to_3d, _ = _filters_3d(op, to_3d, from_3d)
    call = _kernel_call(op, node, "forward")
    check_shapes = _check_shapes(op)

    @numba_basic.numba_njit
    def abstract_conv(img, kern):
        check_img(img.shape)
        check_kern(kern.shape)
        image = _sizes(img.shape)
        check_shapes(image, _sizes(kern.shape), image, False)
        x = to_3d(img)
        filters = flip(kern_to_3d(kern))
        stride, pad_lo, pad_hi, dilation = _resolved_geometry(geometry, _kernel_size(filters))
        od, oh, ow = corr.forward_output_size(x.shape, (0, 0) + _kernel_size(filters), stride, pad_lo, pad_hi, dilation)
        top = call(
            x,
            filters,
            (x.shape[0], filters.shape[0], od, oh, ow),
            stride,
            pad_lo,
            pad_hi,
            dilation,
            np.int64(groups),
            np.int64(buffer_bytes),
        )
        return from_3d(top)

    return abstract_conv, _cache_key(op, buffer_bytes)


@register_funcify_and_cache_key(ops.AbstractConv_gradInputs)
def numba_funcify_AbstractConv_gradInputs(op, node, **kwargs):
    geometry, groups, buffer_bytes, to_3d, from_3d, flip, check_img, check_kern = _setup(op)
    kern_to_3d, _ = _filters_3d(op, to_3d, from_3d)
    call = _kernel_call(op, node, "grad_inputs")
    check_shapes = _check_shapes(op)
    given_shape = _given_shape(op, node)
    in_channels = _in_channels(op)

    @numba_basic.numba_njit
    def abstract_conv_grad_inputs(kern, topgrad, shape):
        image, in_size = given_shape(shape)
        check_kern(kern.shape)
        check_shapes(image, _sizes(kern.shape), _sizes(topgrad.shape), True)
        filters = flip(kern_to_3d(kern))
        top = to_3d(topgrad)
        stride, pad_lo, pad_hi, dilation = _resolved_geometry(geometry, _kernel_size(filters))
        img = call(
            filters,
            top,
            (top.shape[0], in_channels(filters), in_size[0], in_size[1], in_size[2]),
            stride,
            pad_lo,
            pad_hi,
            dilation,
            np.int64(groups),
            np.int64(buffer_bytes),
        )
        img = from_3d(img)
        check_img(img.shape)
        return img

    return abstract_conv_grad_inputs, _cache_key(op, buffer_bytes, node)


@register_funcify_and_cache_key(ops.AbstractConv_gradWeights)
def numba_funcify_AbstractConv_gradWeights(op, node, **kwargs):
    geometry, groups, buffer_bytes, to_3d, from_3d, flip, check_img, check_kern = _setup(op)
    _, kern_from_3d = _filters_3d(op, to_3d, from_3d)
    call = _kernel_call(op, node, "grad_weights")
    check_shapes = _check_shapes(op)
    given_shape = _given_shape(op, node)
    filters_shape = _filters_shape(op)

    @numba_basic.numba_njit
    def abstract_conv_grad_weights(img, topgrad, shape):
        filters, ksize = given_shape(shape)
        check_img(img.shape)
        check_shapes(_sizes(img.shape), filters, _sizes(topgrad.shape), True)
        stride, pad_lo, pad_hi, dilation = _resolved_geometry(geometry, ksize)
        x = to_3d(img)
        top = to_3d(topgrad)
        kern = call(
            x,
            top,
            filters_shape(x, top, ksize),
            stride,
            pad_lo,
            pad_hi,
            dilation,
            np.int64(groups),
            np.int64(buffer_bytes),
        )
        kern = kern_from_3d(flip(kern))
        check_kern(kern.shape)
        return kern

    return abstract_conv_grad_weights, _cache_key(op, buffer_bytes, node)


def _in_channels(op):
    """Compiled number of input channels from 3-d-view filters (5-d, or 8-d unshared)."""
    groups = op.num_groups
    if op.unshared:
        return numba_basic.numba_njit(lambda w: w.shape[4] * groups)
    return numba_basic.numba_njit(lambda w: w.shape[1] * groups)


def _filters_shape(op):
    """Compiled 3-d-view filter shape (5-d, or 8-d unshared) from the 3-d images, output
    gradient and kernel size."""
    groups = op.num_groups
    if op.unshared:
        return numba_basic.numba_njit(
            lambda x, top, k: (
                (top.shape[1], top.shape[2], top.shape[3], top.shape[4], x.shape[1] // groups) + (k[0], k[1], k[2])
            )
        )
    return numba_basic.numba_njit(lambda x, top, k: (top.shape[1], x.shape[1] // groups, k[0], k[1], k[2]))
