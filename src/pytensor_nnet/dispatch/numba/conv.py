"""Numba implementations of the abstract convolution Ops.

They call the same compiled kernels as ``perform`` (``kernels.corr``, or ``kernels.unshared``
for locally connected filters). A node's function holds its Op's parameters as a constant
int64 array, which the functions it calls read at run time: they are module-level and
cached on disk, compiled once for every Op and graph (a closure per node cost a fraction of
a second of compile each, per graph). The batch-chunk bound ``COLUMN_BUFFER_BYTES`` and
the algorithms excluded by the environment variable ``PYTENSOR_NNET_CONV_EXCLUDE`` (see
``kernels.select``) are read when the function is compiled and are part of the cache key.
"""

from __future__ import annotations

import pickle
import sys

import numba
import numpy as np
from numba.cpython.unsafe.tuple import tuple_setitem
from numba.extending import register_jitable
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import default_hash_key_from_props, register_funcify_and_cache_key

from pytensor_nnet import shapes
from pytensor_nnet.conv import ops
from pytensor_nnet.dispatch.numba import boundary, workers
from pytensor_nnet.dispatch.numba.fingerprint import source_fingerprint
from pytensor_nnet.kernels import blas_threads, corr, direct, gemm_batch, select, unshared, winograd, workspace
from pytensor_nnet.kernels import im2col as im2col_kernels
from pytensor_nnet.kernels.jit import compiled_only, typed_pointer
from pytensor_nnet.kernels.select import FORWARD, GRAD_INPUTS, GRAD_WEIGHTS
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
    workspace,
)

# The kernels of shared filters are called across the boundary of ``boundary``: ``meta`` holds
# the three operands' 5-d shapes, then stride, pad_lo, pad_hi, dilation (3 each), groups, the
# column-buffer bound and the mask of excluded algorithms (``kernels.select``).
_META_LENGTH = 30


@compiled_only
def _meta_shape(m, start):
    """The 5-d shape at ``m[start:start + 5]`` of a ``meta`` (0: the first operand's, 5: the
    second's, 10: the output's), as a tuple."""
    return (m[start], m[start + 1], m[start + 2], m[start + 3], m[start + 4])


@compiled_only
def _boundary_operands(a, b, out, meta):
    m = numba.carray(meta, (_META_LENGTH,))
    a_arr = numba.carray(a, _meta_shape(m, 0))
    b_arr = numba.carray(b, _meta_shape(m, 5))
    out_arr = numba.carray(out, _meta_shape(m, 10))
    geometry = ((m[15], m[16], m[17]), (m[18], m[19], m[20]), (m[21], m[22], m[23]), (m[24], m[25], m[26]))
    return a_arr, b_arr, out_arr, geometry, m[27], m[28], m[29]


def _entry_body(direction, algorithm, reduction):
    """The C entry point of ``direction`` (``select.FORWARD``: images ``a``, filters ``b``,
    output ``out``; ``GRAD_INPUTS``: filters, output gradient, zero-filled input gradient;
    ``GRAD_WEIGHTS``: images, output gradient, zero-filled filter gradient) by ``algorithm``
    only, on the problem as given or on its strided reduction (``reduction``: ``corr.AS_GIVEN``
    or ``corr.REDUCED``): the ``*_into_by`` function of ``kernels.corr`` with both as
    constants, so that neither the selection nor the code of the other algorithms (nor, as
    given, that of the reduction) is compiled in: the driver has planned. It checks the
    operands, and that the algorithm (and the reduction) applies, before it writes; returns
    ``boundary.DONE`` (0 if it raised).

    A closure over three ints, which Numba's on-disk cache keys it on (an edit to the kernels
    is covered by ``numba_cache``)."""

    def body(a, b, c, out, meta):
        p, q, o, geometry, groups, buffer_bytes, excluded = _boundary_operands(a, b, out, meta)
        stride, pad_lo, pad_hi, dilation = geometry
        if direction == FORWARD:  # bare names: see ``kernels.corr``
            corr.forward_into_by(
                algorithm, reduction, p, q, o, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded
            )
        elif direction == GRAD_INPUTS:
            corr.grad_inputs_into_by(
                algorithm, reduction, p, q, o, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded
            )
        else:
            corr.grad_weights_into_by(
                algorithm, reduction, p, q, o, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded
            )
        return boundary.DONE

    reduced = "_subsampled" if reduction == corr.REDUCED else ""
    body.__name__ = f"corr_{select.DIRECTION_NAMES[direction]}_{select.NAMES[algorithm]}{reduced}_c"
    return body


@register_jitable
def _entry_slot(algorithm, reduced):
    """The slot of the entry of ``algorithm`` (a code of ``select.ALGORITHMS``) on the problem
    as given or on its strided reduction (``reduced``, a bool) in a direction's entries."""
    return algorithm + len(select.ALGORITHMS) * int(reduced)


#: The entry points by direction, then slot (:func:`_entry_slot`): the algorithms (by code,
#: ``select.ALGORITHMS``) on the problem as given, then on its strided reduction.
_ENTRY_BODIES = tuple(
    tuple(
        _entry_body(direction, algorithm, reduction)
        for reduction in (corr.AS_GIVEN, corr.REDUCED)
        for algorithm in select.ALGORITHMS
    )
    for direction in (select.FORWARD, select.GRAD_INPUTS, select.GRAD_WEIGHTS)
)
#: The same entries by name, for the compile helper (``boundary.body_named``).
BOUNDARY_BODIES = {body.__name__: body for row in _ENTRY_BODIES for body in row}


@compiled_only
def _fill_shapes(meta, a_shape, b_shape, out_shape):
    """Write the operands' 5-d shapes into the entries' ``meta``. (By element: an array
    assignment compiles its broadcasting checks and their messages.)"""
    for i in range(5):
        meta[i] = a_shape[i]
        meta[5 + i] = b_shape[i]
        meta[10 + i] = out_shape[i]


@compiled_only
def _fill_meta(meta, a_shape, b_shape, out_shape, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes, excluded):
    _fill_shapes(meta, a_shape, b_shape, out_shape)
    for i in range(3):
        meta[15 + i] = stride[i]
        meta[18 + i] = pad_lo[i]
        meta[21 + i] = pad_hi[i]
        meta[24 + i] = dilation[i]
    meta[27] = groups
    meta[28] = buffer_bytes
    meta[29] = excluded


#: What the parts of a call split (:func:`_conv_plan`): its batch; or, for a batch of one
#: image, its groups, its filters (the forward pass: each part computes its output channels)
#: or its input channels (each part reads, or writes, its block of the filters' columns; the
#: forward pass's parts add their products).
SPLIT_BATCH, SPLIT_GROUPS, SPLIT_FILTERS, SPLIT_INPUTS = range(4)
#: The forward im2col + GEMM of a batch of one splits its input channels (each part builds the
#: columns of its own) rather than its filters (each part builds them all) when it has at
#: least this many per part: fewer make uneven parts.
MIN_INPUT_SPLIT_CHANNELS = 8


@numba.njit(cache=True)
def _conv_plan(direction, a_shape, b_shape, out_shape, stride, pad_lo, pad_hi, dilation, groups, excluded):
    """The algorithm of ``select.plan`` and whether it runs on the strided reduction, the parts
    of the call to run at once (``workers``) and what they split (``SPLIT_*``), for the 5-d
    shapes of ``direction``'s operands (``select.FORWARD``: images, filters, output;
    ``GRAD_INPUTS``: filters, output gradient, input gradient; ``GRAD_WEIGHTS``: images,
    output gradient, filter gradient).

    Every algorithm runs in parts, its GEMMs on one BLAS thread each: the BLAS's own threads
    would spin after the call (the workers' module doc says why). A batch of one is split
    into parts of its groups, else of its filters (forward) or input channels (gradients, and
    the forward im2col + GEMM with ``MIN_INPUT_SPLIT_CHANNELS`` per part), as far as each
    part keeps the algorithm planned for the whole (Winograd wants
    ``select.WINOGRAD_MIN_CHANNELS`` of both per group)."""
    if direction == select.FORWARD:
        batch, filters, positions, images = a_shape[0], b_shape, out_shape, a_shape
    elif direction == select.GRAD_INPUTS:
        batch, filters, positions, images = b_shape[0], a_shape, b_shape, out_shape
    else:
        batch, filters, positions, images = a_shape[0], out_shape, b_shape, a_shape
    M, Cg = filters[0], filters[1]
    ksize = (filters[2], filters[3], filters[4])
    out_size = (positions[2], positions[3], positions[4])
    gemm_flops = 2 * (M // groups) * Cg * ksize[0] * ksize[1] * ksize[2] * out_size[0] * out_size[1] * out_size[2]
    in_size = (images[2], images[3], images[4])
    algorithm, reduced = select.plan(
        direction, in_size, Cg, M // groups, groups, ksize, stride, pad_lo, pad_hi, dilation, out_size, excluded
    )[:2]
    flops = batch * groups * gemm_flops
    if batch != 1:
        return algorithm, reduced, workers.parts_for(batch, flops), SPLIT_BATCH
    threads = workers.parts_for(max(M, Cg * groups), flops)
    if groups > 1:
        split, count = SPLIT_GROUPS, groups
    elif direction != select.FORWARD or (algorithm == select.GEMM and Cg >= MIN_INPUT_SPLIT_CHANNELS * threads):
        split, count = SPLIT_INPUTS, Cg
    else:
        split, count = SPLIT_FILTERS, M
    parts = min(threads, count)
    while parts > 1:  # the smallest part plans the same algorithm (the rules are monotone)
        part_groups, part_Cg, part_Mg = groups, Cg, M // groups
        if split == SPLIT_GROUPS:
            part_groups = groups // parts
        elif split == SPLIT_FILTERS:
            part_Mg = M // parts
        else:
            part_Cg = Cg // parts
        planned = select.plan(
            direction,
            in_size,
            part_Cg,
            part_Mg,
            part_groups,
            ksize,
            stride,
            pad_lo,
            pad_hi,
            dilation,
            out_size,
            excluded,
        )[0]
        if planned == algorithm:
            break
        parts -= 1
    return algorithm, reduced, parts, split


@compiled_only
def _items(shape):
    return shape[0] * shape[1] * shape[2] * shape[3] * shape[4]


@compiled_only
def _copy_words(source, target, rows, width, source_pitch, target_pitch):
    """Copy ``rows`` rows of ``width`` 32-bit words from address ``source`` to ``target``,
    their rows ``source_pitch`` and ``target_pitch`` words apart (items bit for bit)."""
    whole = numba.carray(typed_pointer(source, np.uint32), ((rows - 1) * source_pitch + width,))
    block = numba.carray(typed_pointer(target, np.uint32), ((rows - 1) * target_pitch + width,))
    for r in range(rows):
        for j in range(width):
            block[r * target_pitch + j] = whole[r * source_pitch + j]


@compiled_only
def _run_parts(direction, split, entry, operands, itemsize, meta, parts, spare):
    """Run the boundary entry at address ``entry`` of ``direction`` (``operands``: the
    addresses of the operands of :func:`_conv_plan`, items of ``itemsize`` bytes; ``meta``:
    the driver's, with their 5-d shapes) on ``parts`` parts of what ``split`` says
    (:func:`_conv_plan`), at once (``workers.run_tasks``); returns the status.

    Each part's operands are blocks of the call's along one axis, or the whole operand. A split
    of the input channels copies each part's block of the filters' columns (``w[:, lo:hi]``)
    to, or from (the filter gradient), its place at the start of ``spare``
    (:func:`_spare_items`). The parts of a filter gradient's batch, and of a forward pass's
    input channels, each compute a whole result: those after the first write theirs to
    ``spare`` (after the filters' blocks), and they are added at the end. Each part prepares
    what it reads whole for itself (a forward pass's im2col of a batch of one's image, a
    Winograd transform). By element, on the task rows: tuples of shapes took seconds of the
    driver's compile."""
    forward, grad_inputs = direction == select.FORWARD, direction == select.GRAD_INPUTS
    f = 1 if forward else 0 if grad_inputs else 2  # the operand that holds the filters
    # the axis of each operand that holds the blocks: channels (1), filters or batch (0), none (-1)
    if split == SPLIT_BATCH:
        count = meta[5] if grad_inputs else meta[0]
        axes = (0, -1, 0) if forward else (-1, 0, 0) if grad_inputs else (0, 0, -1)
    elif split == SPLIT_GROUPS:
        count = meta[27]
        axes = (1, 0, 1) if forward else (0, 1, 1) if grad_inputs else (1, 1, 0)
    elif split == SPLIT_FILTERS:  # forward only
        count, axes = meta[5], (-1, 0, 1)
    else:  # the filters' blocks are copied below
        count = meta[5 * f + 1]
        axes = (-1, -1, 1) if grad_inputs else (1, -1, -1)
    by_inputs = split == SPLIT_INPUTS
    summed = (split == SPLIT_BATCH and direction == select.GRAD_WEIGHTS) or (by_inputs and forward)
    rows, channels = meta[5 * f], meta[5 * f + 1]
    words = meta[5 * f + 2] * meta[5 * f + 3] * meta[5 * f + 4] * (itemsize // 4)  # per filter and channel
    out_items = meta[10] * meta[11] * meta[12] * meta[13] * meta[14]
    blocks = np.int64(spare.ctypes.data)
    products = blocks + (rows * channels * words * 4 if by_inputs else 0)
    tasks = workers.task_rows(parts, _META_LENGTH)
    for i in range(parts):
        lo, hi = i * count // parts, (i + 1) * count // parts
        row = tasks[i]
        for j in range(_META_LENGTH):  # shapes, geometry, groups, column-buffer bound, excluded
            row[workers.TASK_HEADER + j] = meta[j]
        row[workers.TASK_HEADER + 27] = hi - lo if split == SPLIT_GROUPS else meta[27]
        row[workers.TASK_HEADER + 28] = max(meta[28] // parts, 1)  # the parts share the bound
        row[0] = entry
        for k in range(3):
            address, axis = operands[k], axes[k]
            if axis >= 0:
                per = meta[5 * k + axis] // count
                inner = per
                for j in range(5 * k + axis + 1, 5 * k + 5):
                    inner *= meta[j]
                address += lo * inner * itemsize
                row[workers.TASK_HEADER + 5 * k + axis] = (hi - lo) * per
            if by_inputs and k == f:
                block = blocks + rows * lo * words * 4
                if k != 2:  # the filters are read: their block is copied for the part
                    _copy_words(
                        address + lo * words * 4, block, rows, (hi - lo) * words, channels * words, (hi - lo) * words
                    )
                address = block
                row[workers.TASK_HEADER + 5 * k + 1] = hi - lo
            if summed and k == 2 and i > 0:
                address = products + (i - 1) * out_items * itemsize
            row[1 + k + k // 2] = address  # a, b, out at 1, 2, 4 (c, at 3, repeats a)
        row[3] = row[1]
    status = workers.run_tasks(tasks)
    if status != boundary.DONE:
        return status
    if by_inputs and direction == select.GRAD_WEIGHTS:
        for i in range(parts):
            lo, hi = i * count // parts, (i + 1) * count // parts
            width = (hi - lo) * words
            _copy_words(
                blocks + rows * lo * words * 4, operands[2] + lo * words * 4, rows, width, width, channels * words
            )
    if summed:
        _add_parts(operands[2], products, parts - 1, out_items, itemsize)
    return status


@compiled_only
def _spare_items(direction, split, parts, shapes):
    """Items of the spare buffer of :func:`_run_parts`: the filters' blocks of a split of
    the input channels, then the results of the parts after the first that are added."""
    if parts == 1:
        return 0
    if split == SPLIT_BATCH:
        return (parts - 1) * _items(shapes[2]) if direction == select.GRAD_WEIGHTS else 0
    if split != SPLIT_INPUTS:
        return 0
    if direction == select.FORWARD:
        return _items(shapes[1]) + (parts - 1) * _items(shapes[2])
    return _items(shapes[0] if direction == select.GRAD_INPUTS else shapes[2])


#: The driver's ``meta`` (:func:`conv_drive`): the entries' (``_META_LENGTH``), then the
#: direction, the addresses of its table of entries and of their resolver
#: (``boundary.LazyKernels``), whether the filters are flipped (a convolution, not a
#: correlation: the filters of the forward and input-gradient entries are flipped before the
#: call, the filter gradient after it), and the operands' item size in bytes (4: float32, 8:
#: float64).
_DIRECTION, _TABLE, _RESOLVER, _FLIP = _META_LENGTH, _META_LENGTH + 1, _META_LENGTH + 2, _META_LENGTH + 3
_ITEMSIZE = _META_LENGTH + 4
_DRIVER_META_LENGTH = _META_LENGTH + 5


@compiled_only
def _reverse_rows(w, out):
    """``out[:, ::-1] = w`` for arrays of shape (rows, items, words)."""
    rows, items, words = w.shape
    for i in range(rows):
        for j in range(items):
            for k in range(words):
                out[i, j, k] = w[i, items - 1 - j, k]


@compiled_only
def _flip_items(source, target, shape, itemsize):
    """Copy the 5-d filters of ``shape`` at address ``source`` to ``target``, flipped along
    their three spatial axes, which reverses each filter's C-contiguous block of spatial
    items. The items (of ``itemsize`` bytes, 4 or 8) are copied bit for bit as 32-bit words:
    the same code for every dtype."""
    blocks = (shape[0] * shape[1], shape[2] * shape[3] * shape[4], itemsize // 4)
    _reverse_rows(
        numba.carray(typed_pointer(source, np.uint32), blocks),
        numba.carray(typed_pointer(target, np.uint32), blocks),
    )


@compiled_only
def _add_rows(out, rows):
    for i in range(rows.shape[0]):
        for j in range(out.shape[0]):
            out[j] += rows[i, j]


@compiled_only
def _add_parts(total, first, count, items, itemsize):
    """Add the ``count`` arrays of ``items`` items that follow one another from address
    ``first`` (the results of the parts of a call after the first) to the one at address
    ``total``: float32 items for an ``itemsize`` of 4, else float64."""
    if itemsize == 4:
        _add_rows(
            numba.carray(typed_pointer(total, np.float32), (items,)),
            numba.carray(typed_pointer(first, np.float32), (count, items)),
        )
    else:
        _add_rows(
            numba.carray(typed_pointer(total, np.float64), (items,)),
            numba.carray(typed_pointer(first, np.float64), (count, items)),
        )


@compiled_only
def _zeroed(items, itemsize):
    """A zero-filled buffer for ``items`` items of ``itemsize`` bytes (the bits of 0.0 are
    zeros in either float dtype)."""
    return np.zeros((items * itemsize + 7) // 8, dtype=np.int64)


@compiled_only
def _drive(direction, flip, entry, operands, shapes, itemsize, meta, split, buffers):
    """Run the planned entry in the parts of ``split`` (their count, and what they split:
    :func:`_conv_plan`), the filters flipped into the first of ``buffers`` before the call
    (forward, input gradient), or the filter gradient accumulated there and flipped into its
    output after it; the second is the parts' spare buffer (:func:`_run_parts`)."""
    a, b, out = operands
    a_shape, b_shape, out_shape = shapes
    parts, what = split
    buffer, spare = buffers
    flipped = np.int64(buffer.ctypes.data)
    if flip and direction == select.FORWARD:
        _flip_items(b, flipped, b_shape, itemsize)
        b = flipped
    elif flip and direction == select.GRAD_INPUTS:
        _flip_items(a, flipped, a_shape, itemsize)
        a = flipped
    elif flip:
        out = flipped
    if parts == 1:
        status = workers.call_alone(entry, a, b, a, out, np.int64(meta.ctypes.data))
    else:
        status = _run_parts(direction, what, entry, (a, b, out), itemsize, meta, parts, spare)
    if status != boundary.DONE:
        return status
    if flip and direction == select.GRAD_WEIGHTS:
        _flip_items(out, operands[2], out_shape, itemsize)
    return status


def conv_drive(a, b, c, out, meta):
    """The boundary entry between a graph and the entries of :func:`_entry_body`, one for every
    dtype (compiled for ``boundary.DRIVER_DTYPE``: it reads the operands' addresses, and their
    items only to flip filters, bit for bit, and to add the parts of a filter gradient, by the
    item size in ``meta``): flips the filters if ``meta`` says so (a gradient's output comes
    zero-filled), plans the algorithm and the parts of the direction in ``meta`` (operands as
    in :func:`_conv_plan`), compiles the algorithm's entry the first time it is planned (the
    resolver takes the GIL: called on the graph's thread, before any part starts) and runs it.

    All this lives here, compiled once and cached on disk, so the code of each graph holds only
    the call (see ``boundary``). Returns ``boundary.DONE``, ``boundary.KERNEL_UNCOMPILED``, or 0
    if it or the entry raised."""
    m = numba.carray(meta, (_DRIVER_META_LENGTH,))
    shapes = (_meta_shape(m, 0), _meta_shape(m, 5), _meta_shape(m, 10))
    stride, pad_lo, pad_hi, dilation = _meta_geometry(m)
    direction, flip, itemsize = m[_DIRECTION], m[_FLIP], m[_ITEMSIZE]
    algorithm, reduced, parts, split = _conv_plan(direction, *shapes, stride, pad_lo, pad_hi, dilation, m[27], m[29])
    entry = workers.resolved_address(m[_TABLE], m[_RESOLVER], _entry_slot(algorithm, reduced))
    if entry == 0:
        return boundary.KERNEL_UNCOMPILED
    operands = (workers.pointer_address(a), workers.pointer_address(b), workers.pointer_address(out))
    # The buffers are allocated here and passed down: an array lives while a variable that
    # holds it is still used, and below this point only their addresses are.
    flipped = shapes[1] if direction == select.FORWARD else shapes[0] if direction == select.GRAD_INPUTS else shapes[2]
    buffer = _zeroed(_items(flipped) if flip else 0, itemsize)
    spare = _zeroed(_spare_items(direction, split, parts, shapes), itemsize)
    return _drive(direction, flip, entry, operands, shapes, itemsize, m, (parts, split), (buffer, spare))


def _entries(direction, dtype):
    """The ``boundary.LazyKernels`` of the entries of ``direction`` for ``dtype``."""
    family = "conv_corr_" + select.DIRECTION_NAMES[direction]
    return boundary.lazy_kernels(family, _ENTRY_BODIES[direction], dtype, KERNEL_FINGERPRINT)


def _predicted_entry(direction, images, filters, geometry, groups, excluded):
    """The slot of the entry (:func:`_entry_slot`) the driver will plan for 3-d-view
    ``images`` and ``filters`` sizes (sequences of 5 ints) and the Op's ``geometry``; None when
    the sizes do not make a convolution. Python, on ints: a graph's build compiles nothing (the compiled
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
    planned = select.plan_rule(
        direction, in_size, Cg, Mg, groups, ksize, stride, pad_lo, pad_hi, dilation, out, excluded
    )
    return _entry_slot(planned[0], planned[1])


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
        predicted = _predicted_entry(direction, images, kernels, op.geometry, op.num_groups, select.excluded_mask())
    planned = predicted is not None  # else inconsistent sizes: the call will say so
    _entries(direction, dtype).prefetch(predicted if planned else _entry_slot(select.GEMM, False), keep=planned)


@compiled_only
def _sizes_agree(meta, a_size, b_size, out_size):
    """Whether the operands' sizes are those of the 3-d-view shapes in ``meta``."""
    sizes = (a_size, b_size, out_size)
    for i in range(3):
        size = 1
        for j in range(5):
            size *= meta[5 * i + j]
        if size != sizes[i]:
            return False
    return True


def _boundary_symbols(direction, dtype):
    """The symbols (``ExternalFunction``) of the table of entries of ``direction`` for
    ``dtype`` and of its resolver, then those of the driver (:func:`conv_drive`): a compiled
    function reads their addresses (``workers.symbol_address``) and passes them to
    :func:`_call_driver`."""
    entries = _entries(direction, dtype)
    driver = boundary.lazy_kernel(conv_drive, boundary.DRIVER_DTYPE, KERNEL_FINGERPRINT)
    return entries.table, entries.resolve, driver.table, driver.resolve


@compiled_only
def _call_driver(direction, a, b, out, meta, symbols):
    """Run the convolution ``direction`` through :func:`conv_drive`: C-contiguous operands as
    in :func:`_entry_body`, of any rank, ``out`` written; ``meta``, the driver's, with the 3-d-view
    shapes of the operands (their addresses are written here); ``symbols``, the addresses of the
    symbols of :func:`_boundary_symbols` for the operands' dtype."""
    if not _sizes_agree(meta, a.size, b.size, out.size):
        raise ValueError("the convolution's operands do not have their checked sizes (please report it)")
    table, resolver, driver_table, driver_resolver = symbols
    meta[_DIRECTION] = direction
    meta[_TABLE] = table
    meta[_RESOLVER] = resolver
    meta[_ITEMSIZE] = a.itemsize
    status = boundary.call_driver(driver_table, driver_resolver, a, b, a, out, meta)
    if status == boundary.KERNEL_UNCOMPILED:
        raise RuntimeError("pytensor_nnet could not compile its convolution kernel (see the log)")
    if status != boundary.DONE:
        raise ValueError("the convolution kernel refused its arguments (an internal error: please report it)")


# The reshapes and flips of the unshared filters' nodes below are module-level functions,
# cached on disk with the kernels: a new graph links them instead of compiling a closure of
# its own (each closure costs a fraction of a second of Numba compile time, per node and per
# graph).


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


def _unshared_to_3d(convdim):
    """Compiled view of unshared filters (M, *out, Cg, *k) as (M, od, oh, ow, Cg, kd, kh, kw)."""
    return {1: _unshared_1d_to_3d, 2: _unshared_2d_to_3d, 3: _3d_to_3d}[convdim]


def _unshared_from_3d(convdim):
    """Compiled inverse of :func:`_unshared_to_3d`."""
    return {1: _unshared_3d_to_1d, 2: _unshared_3d_to_2d, 3: _3d_to_3d_view}[convdim]


def _maybe_flip_unshared(flip):
    """Compiled flip of the three kernel axes of 3-d-view unshared filters (8-d), or none."""
    return _flip_unshared_filters if flip else _3d_to_3d_view


@compiled_only
def _sizes(shape):
    """An array shape (a tuple) as an int64 array, the form the shared checks take."""
    out = np.empty(len(shape), dtype=np.int64)
    for i in range(len(shape)):
        out[i] = shape[i]
    return out


# The node's checks. Each node holds its constants (:func:`_node_constants`: an int64 array
# and the pickled Op) and calls module-level functions, cached on disk: the checks themselves
# run across the boundary (:func:`conv_check`, int64 operands, one for every Op and dtype).
# Only when they find a problem is the Op's own Python check called, in object mode, to raise
# the message ``perform`` raises.

#: The node's constants: direction; convdim; groups; unshared; filter flip; the column-buffer
#: bound; the mask of excluded algorithms; the ranks of the first two inputs; a gradient's
#: ``shape`` input: its expected length, how many leading (batch, channels) entries it has,
#: the rank of the shape it gives; then the geometry (stride, pad_before, pad_after, dilation:
#: 3 each, padding as sizes or codes); the index maps of ``shapes.pick_sizes`` (rows image,
#: filters, region (3 used), no top: 5 each); the map from the ``shape`` input to that shape
#: (8); the shape hints of the first input, the second and the result (8 each, ``UNKNOWN``
#: where not given).
(
    _N_DIRECTION,
    _N_CONVDIM,
    _N_GROUPS,
    _N_UNSHARED,
    _N_FLIP,
    _N_BUFFER,
    _N_EXCLUDED,
    _N_A_RANK,
    _N_B_RANK,
    _N_VECTOR_LENGTH,
    _N_VECTOR_LEAD,
    _N_GIVEN_RANK,
) = range(12)
_N_GEOMETRY = 12
_N_MAPS = _N_GEOMETRY + 12
_N_GIVEN_MAP = _N_MAPS + 20
_N_HINTS = _N_GIVEN_MAP + 8
_NODE_LENGTH = _N_HINTS + 24
#: The longest shape of an operand (unshared 3-d filters).
_MAX_RANK = 8


def _padded(values, length, fill):
    values = tuple(values)
    return values + (fill,) * (length - len(values))


def _node_constants(op, node, direction):
    """The int64 constants of a node of ``op`` (layout above) and the pickled ``(op, full)``
    (``full``: a gradient's ``shape`` input is the whole shape), which :func:`_word_problem`
    reads to raise the Op's own message."""
    forward = direction == FORWARD
    full = False if forward else op.shape_is_full(node)
    image_map, filters_map, region_map = op.check_maps()
    rank = op.convdim + 2
    ranks = {FORWARD: (rank, op.kern_ndim), GRAD_INPUTS: (op.kern_ndim, rank), GRAD_WEIGHTS: (rank, rank)}[direction]
    hints = {  # the shape hint of the first input, the second input and the result
        FORWARD: (op.imshp, op.kshp, None),
        GRAD_INPUTS: (op.kshp, None, op.imshp),
        GRAD_WEIGHTS: (op.imshp, None, op.kshp),
    }[direction]
    given_map = () if forward else op.vector_map(full)
    geometry = op.geometry
    constants = [
        direction,
        op.convdim,
        op.num_groups,
        int(op.unshared),
        int(op.filter_flip),
        ops.COLUMN_BUFFER_BYTES,
        select.excluded_mask(),
        *ranks,
        0 if forward else (op.full_shape_length() if full else op.convdim),
        2 if full else 0,
        len(given_map),
        *geometry.stride,
        *geometry.pad_before,
        *geometry.pad_after,
        *geometry.dilation,
        *image_map,
        *filters_map,
        *_padded(region_map, 5, shapes.NOT_GIVEN),
        *(shapes.NOT_GIVEN,) * 5,
        *_padded(given_map, _MAX_RANK, shapes.NOT_GIVEN),
    ]
    for hint in hints:
        constants += _padded((shapes.UNKNOWN if h is None else h for h in hint or ()), _MAX_RANK, shapes.UNKNOWN)
    assert len(constants) == _NODE_LENGTH
    words = np.frombuffer(pickle.dumps((op, full)), dtype=np.uint8).copy()
    return np.array(constants, dtype=np.int64), words


def conv_check(a, b, vector, meta, node):
    """The checks of a node's call (``node``: its constants, layout above): the sizes of its
    first two inputs ``a`` and ``b`` (int64, of the node's ranks) and of a gradient's ``shape``
    input ``vector`` (as many as ``meta[0]`` says) against each other, the Op's geometry and its
    shape hints. Writes the driver's ``meta`` (:func:`conv_drive`) but for the addresses: the
    3-d-view shapes of the two inputs and of the result; returns ``SHAPES_OK`` or another int
    when the Op's Python check will find a problem.

    A boundary entry (int64 operands) so that no graph's module holds the checks."""
    n = numba.carray(node, (_NODE_LENGTH,))
    m = numba.carray(meta, (_DRIVER_META_LENGTH,))
    a_sizes, b_sizes = numba.carray(a, (n[_N_A_RANK],)), numba.carray(b, (n[_N_B_RANK],))
    direction, groups = n[_N_DIRECTION], n[_N_GROUPS]
    hints = n[_N_HINTS:].reshape((3, _MAX_RANK))
    given = a_sizes
    if direction != FORWARD:
        values = numba.carray(vector, (m[0],))
        if shapes.shape_vector_problem(values, n[_N_VECTOR_LENGTH], n[_N_VECTOR_LEAD]) != 0:
            return -1
        given = shapes.pick_sizes(values, n[_N_GIVEN_MAP : _N_GIVEN_MAP + n[_N_GIVEN_RANK]])
    if shapes.shape_hint_mismatch(hints[0, : len(a_sizes)], a_sizes):
        return -1
    if direction == FORWARD and shapes.shape_hint_mismatch(hints[1, : len(b_sizes)], b_sizes):
        return -1
    if direction == FORWARD:
        image, filters, top = a_sizes, b_sizes, a_sizes
    elif direction == GRAD_INPUTS:
        image, filters, top = given, a_sizes, b_sizes
    else:
        image, filters, top = a_sizes, given, b_sizes
    maps = n[_N_MAPS:_N_GIVEN_MAP].reshape((4, 5))
    geometry = n[_N_GEOMETRY:_N_MAPS].reshape((4, 3))
    image3, filters3 = shapes.pick_sizes(image, maps[0]), shapes.pick_sizes(filters, maps[1])
    top3 = shapes.pick_sizes(top, maps[3] if direction == FORWARD else maps[0])
    stride, pad_before, pad_after = _plain(geometry[0]), _plain(geometry[1]), _plain(geometry[2])
    dilation = _plain(geometry[3])
    problem, _ = shapes.conv_shape_problem(
        n[_N_CONVDIM],
        groups,
        n[_N_UNSHARED],
        image3,
        filters3,
        shapes.pick_sizes(filters, maps[2])[:3],
        top3,
        stride,
        pad_before,
        pad_after,
        dilation,
    )
    if problem != SHAPES_OK:
        return problem
    ksize = _plain(filters3[2:])
    pad_lo, pad_hi = shapes.resolve_pads(pad_before, pad_after, ksize, dilation)
    if direction == FORWARD:
        spatial = shapes.conv_output_sizes(image3, filters3, stride, pad_before, pad_after, dilation)
        a3, b3, result = image3, filters3, (image3[0], filters3[0]) + _plain(spatial)
    elif direction == GRAD_INPUTS:
        a3, b3, result = filters3, top3, (top3[0], filters3[1] * groups) + _plain(image3[2:])
    else:
        a3, b3, result = image3, top3, (top3[1], image3[1] // groups) + ksize
    _fill_meta(m, a3, b3, result, stride, pad_lo, pad_hi, dilation, groups, n[_N_BUFFER], n[_N_EXCLUDED])
    m[_FLIP] = n[_N_FLIP]
    return SHAPES_OK


#: The node's check entry, one for every Op and dtype; its symbols hold the digest of the
#: sources, so a module-level function can name them (:func:`_checked`).
_CHECKS = boundary.lazy_kernels("conv_conv_check", (conv_check,), "int64", KERNEL_FINGERPRINT)
_CHECKS_TABLE, _CHECKS_RESOLVE = _CHECKS.table, _CHECKS.resolve


def _word_problem(words, a_sizes, b_sizes, vector):
    """Raise the message of the Op pickled in ``words`` for the shapes its compiled check
    refused (the first two inputs' sizes, a gradient's ``shape`` input)."""
    op, full = pickle.loads(words.tobytes())
    op.check_operands(full, tuple(int(v) for v in a_sizes), tuple(int(v) for v in b_sizes), vector)
    raise RuntimeError(f"the compiled shape check of {op} refused shapes its Python check accepts (please report it)")


def _word_result(words, sizes):
    op, _ = pickle.loads(words.tobytes())
    op.check_result(tuple(int(v) for v in sizes))


@compiled_only
def _checked(node, words, a_sizes, b_sizes, vector):
    """The driver's ``meta`` of a node's call (:func:`conv_check`; the result's 3-d-view shape
    in place of the operands'), or the Op's message raised."""
    meta = np.empty(_DRIVER_META_LENGTH, dtype=np.int64)
    meta[0] = len(vector)
    table, resolver = workers.symbol_address(_CHECKS_TABLE), workers.symbol_address(_CHECKS_RESOLVE)
    address = workers.resolved_address(table, resolver, 0)
    if address == 0:
        raise RuntimeError("pytensor_nnet could not compile its shape check (see the log)")
    if workers.call_entry_on(address, a_sizes, b_sizes, vector, meta, node) != SHAPES_OK:
        with numba.objmode():
            _word_problem(words, a_sizes, b_sizes, vector)
    return meta


@compiled_only
def _check_result(node, words, sizes):
    """Raise the Op's message when a gradient's result disagrees with its shape hint."""
    hint = node[_N_HINTS + 2 * _MAX_RANK : _N_HINTS + 2 * _MAX_RANK + len(sizes)]
    if shapes.shape_hint_mismatch(hint, sizes):
        with numba.objmode():
            _word_result(words, sizes)


@compiled_only
def _result_nd(meta, like):
    """The result's shape in a checked ``meta`` (:func:`_checked`) at the rank of the shape
    ``like`` (the 3-d view's leading spatial axes of size 1 left out)."""
    shape = tuple_setitem(like, 0, meta[10])
    shape = tuple_setitem(shape, 1, meta[11])
    spatial = len(like) - 2
    for i in range(spatial):
        shape = tuple_setitem(shape, 2 + i, meta[15 - spatial + i])
    return shape


@compiled_only
def _meta_geometry(meta):
    """(stride, pad_lo, pad_hi, dilation) of a checked ``meta``, 3-tuples."""
    return _plain(meta[15:18]), _plain(meta[18:21]), _plain(meta[21:24]), _plain(meta[24:27])


@compiled_only
def _vector_sizes(vector):
    """A shape vector (any int dtype) as an int64 array."""
    out = np.empty(vector.shape[0], dtype=np.int64)
    for i in range(vector.shape[0]):
        out[i] = vector[i]
    return out


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


@compiled_only
def _forward_node(node, words, img, kern, symbols):
    """The output of a forward node (its constants ``node`` and ``words``) for the images
    ``img`` and filters ``kern``: the checks (:func:`_checked`) and the call through the
    driver (``symbols``: see :func:`_call_driver`)."""
    # No ``shape`` input: an empty array allocated here, not a global one (read-only, another
    # type: :func:`_checked` compiled a second time).
    meta = _checked(node, words, _sizes(img.shape), _sizes(kern.shape), np.empty(0, dtype=np.int64))
    top = np.empty(_result_nd(meta, img.shape), dtype=img.dtype)
    # the direction as an int64, not a literal: one compiled driver call for every direction
    _call_driver(np.int64(FORWARD), np.ascontiguousarray(img), np.ascontiguousarray(kern), top, meta, symbols)
    return top


@compiled_only
def _gradient_node(direction, node, words, a, b, shape, symbols):
    """:func:`_forward_node` for a gradient node: its first two inputs ``a`` and ``b`` and its
    ``shape`` input; the result's shape is checked against the Op's hint too."""
    meta = _checked(node, words, _sizes(a.shape), _sizes(b.shape), _vector_sizes(shape))
    grad = np.zeros(_result_nd(meta, b.shape), dtype=b.dtype)  # the kernels accumulate into it
    _call_driver(direction, np.ascontiguousarray(a), np.ascontiguousarray(b), grad, meta, symbols)
    _check_result(node, words, _sizes(grad.shape))
    return grad


def _shared_node(op, node, direction):
    """The compiled function of a node of shared filters: the addresses of its symbols
    (:func:`_boundary_symbols`), read by relocation, and a call of :func:`_forward_node` or
    :func:`_gradient_node`. Those are module-level, cached on disk with the kernels: a new
    graph links them, and compiles only this wrapper (the checks, allocation and call compiled
    into every node cost about 0.3 s per node and graph)."""
    constants, words = _node_constants(op, node, direction)
    table, resolve, driver_table, driver_resolve = _boundary_symbols(direction, node.outputs[0].dtype)
    _prefetch_entry(op, node, direction, node.outputs[0].dtype)
    if direction == FORWARD:

        @numba_basic.numba_njit
        def abstract_conv(img, kern):
            symbols = (
                workers.symbol_address(table),
                workers.symbol_address(resolve),
                workers.symbol_address(driver_table),
                workers.symbol_address(driver_resolve),
            )
            return _forward_node(constants, words, img, kern, symbols)

        return abstract_conv

    @numba_basic.numba_njit
    def abstract_conv_gradient(a, b, shape):
        symbols = (
            workers.symbol_address(table),
            workers.symbol_address(resolve),
            workers.symbol_address(driver_table),
            workers.symbol_address(driver_resolve),
        )
        # the direction as an int64, not a literal (see :func:`_forward_node`)
        return _gradient_node(np.int64(direction), constants, words, a, b, shape, symbols)

    return abstract_conv_gradient


def _unshared_node(op, node, direction):
    """The compiled function of a node of unshared (locally connected) filters: its checks
    (:func:`_checked`) and the kernels of ``kernels.unshared``, linked into the graph."""
    constants, words = _node_constants(op, node, direction)
    kernel = getattr(unshared, "unshared_" + select.DIRECTION_NAMES[direction])
    to_3d, from_3d = _to_3d(op.convdim), _from_3d(op.convdim)
    filters_to_3d, filters_from_3d = _unshared_to_3d(op.convdim), _unshared_from_3d(op.convdim)
    flip = _maybe_flip_unshared(op.filter_flip)
    groups, buffer_bytes = np.int64(op.num_groups), np.int64(ops.COLUMN_BUFFER_BYTES)
    if direction == FORWARD:

        @numba_basic.numba_njit
        def unshared_conv(img, kern):
            meta = _checked(constants, words, _sizes(img.shape), _sizes(kern.shape), np.empty(0, dtype=np.int64))
            stride, pad_lo, pad_hi, dilation = _meta_geometry(meta)
            w = flip(filters_to_3d(kern))
            return from_3d(kernel(to_3d(img), w, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes))

        return unshared_conv
    if direction == GRAD_INPUTS:

        @numba_basic.numba_njit
        def unshared_conv_grad_inputs(kern, topgrad, shape):
            meta = _checked(constants, words, _sizes(kern.shape), _sizes(topgrad.shape), _vector_sizes(shape))
            stride, pad_lo, pad_hi, dilation = _meta_geometry(meta)
            w = flip(filters_to_3d(kern))
            size = _meta_shape(meta, 10)[2:]
            img = from_3d(kernel(w, to_3d(topgrad), size, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes))
            _check_result(constants, words, _sizes(img.shape))
            return img

        return unshared_conv_grad_inputs

    @numba_basic.numba_njit
    def unshared_conv_grad_weights(img, topgrad, shape):
        meta = _checked(constants, words, _sizes(img.shape), _sizes(topgrad.shape), _vector_sizes(shape))
        stride, pad_lo, pad_hi, dilation = _meta_geometry(meta)
        size = _meta_shape(meta, 10)[2:]
        w = kernel(to_3d(img), to_3d(topgrad), size, stride, pad_lo, pad_hi, dilation, groups, buffer_bytes)
        kern = filters_from_3d(flip(w))
        _check_result(constants, words, _sizes(kern.shape))
        return kern

    return unshared_conv_grad_weights


def _funcify(op, node, direction):
    _CHECKS.prefetch(0)
    make = _unshared_node if op.unshared else _shared_node
    key = _cache_key(op, ops.COLUMN_BUFFER_BYTES, None if direction == FORWARD else node)
    return make(op, node, direction), key


@register_funcify_and_cache_key(ops.AbstractConv)
def numba_funcify_AbstractConv(op, node, **kwargs):
    return _funcify(op, node, FORWARD)


@register_funcify_and_cache_key(ops.AbstractConv_gradInputs)
def numba_funcify_AbstractConv_gradInputs(op, node, **kwargs):
    return _funcify(op, node, GRAD_INPUTS)


@register_funcify_and_cache_key(ops.AbstractConv_gradWeights)
def numba_funcify_AbstractConv_gradWeights(op, node, **kwargs):
    return _funcify(op, node, GRAD_WEIGHTS)
