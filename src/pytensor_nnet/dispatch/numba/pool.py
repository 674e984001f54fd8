"""Numba implementations of the pooling Ops and of ``WindowCount``.

They call the same compiled kernels as ``perform`` (``kernels.pool``). A node passes its N-d
operands across the boundary with their (B, D, H, W) shapes (the mixed-dtype path, whose
kernels are linked into the graph, reshapes them); its helpers are module-level functions,
cached on disk, so that each new node compiles as little as possible. The cache key includes
a hash of the kernels' source (PyTensor would otherwise reuse a function compiled against
older kernels). ``ws``, ``stride`` and ``pad`` stay run-time inputs (as in the legacy Ops);
the kernels check them (``kernels.pool.check_geometry``) before touching memory. The
functions depend on the Op's props, the input's rank and dtype, which make up the cache key.
"""

from __future__ import annotations

import sys
from functools import lru_cache

import numba
import numpy as np
from numba.cpython.unsafe.tuple import tuple_setitem
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import default_hash_key_from_props, register_funcify_and_cache_key

from pytensor_nnet import pool
from pytensor_nnet.dispatch.numba import boundary, utils, workers
from pytensor_nnet.dispatch.numba.fingerprint import source_fingerprint
from pytensor_nnet.kernels import im2col as im2col_kernels
from pytensor_nnet.kernels import pool as kernels
from pytensor_nnet.kernels.jit import compiled_only
from pytensor_nnet.shapes import conv as conv_shapes
from pytensor_nnet.shapes import conv_output_length, pool_output_size
from pytensor_nnet.shapes import pool as pool_shapes

CACHE_VERSION = 2


KERNEL_FINGERPRINT = source_fingerprint(
    sys.modules[__name__], boundary, utils, workers, kernels, im2col_kernels, conv_shapes, pool_shapes
)

# The pooling kernels are called across the boundary of ``boundary``: ``meta`` holds the
# (B, D, H, W) shapes of the input side (x or its gradient) and of the pooled side (output,
# maxout, output gradient), ws, stride, pad (3 each), ignore_border and the mode or tie rule.
_META_LENGTH = 19


@compiled_only
def _boundary_operands(meta):
    m = numba.carray(meta, (_META_LENGTH,))
    image, pooled = (m[0], m[1], m[2], m[3]), (m[4], m[5], m[6], m[7])
    geometry = ((m[8], m[9], m[10]), (m[11], m[12], m[13]), (m[14], m[15], m[16]))
    return image, pooled, geometry, m[17] != 0, m[18]


def _pool_forward_body(name, mode, small):
    """C entry point of ``kernels.pool.pool_forward_into`` with the mode ``mode``, or (``small``)
    of ``pool_forward_batch_minor_into`` (both constants: the other modes' code and the other
    kernel are not compiled in; max pooling needs no divisors): ``a`` x, ``b`` the lowest value
    (one element), ``out`` the pooled output; named after the mode's ``name``. A closure over
    two ints, which Numba's on-disk cache keys it on."""

    def body(a, b, c, out, meta):
        image, pooled, (ws, stride, pad), ignore_border, _ = _boundary_operands(meta)
        x, y = numba.carray(a, image), numba.carray(out, pooled)
        if small:
            kernels.pool_forward_batch_minor_into(x, y, ws, stride, pad, ignore_border, mode, b[0])
        else:
            kernels.pool_forward_into(x, y, ws, stride, pad, ignore_border, mode, b[0])
        return boundary.DONE

    body.__name__ = f"pool_forward_{name}{'_small' if small else ''}_c"
    return body


#: The pooling entry points by mode (``kernels.pool.MODES``) and by whether they are the
#: batch-minor kernels of small planes (``kernels.pool.batch_minor_suits``).
POOL_FORWARD_BODIES = {
    (mode, small): _pool_forward_body(name, mode, small) for name, mode in kernels.MODES.items() for small in (0, 1)
}


def _max_pool_grad_body(name, ties, small):
    """C entry point of ``kernels.pool.max_pool_grad_into`` with the tie rule ``ties``, or
    (``small``, the first-maximum rule only) of ``max_pool_grad_first_batch_minor_into`` (both
    constants: the other code is not compiled in): ``a`` x, ``b`` maxout, ``c`` its gradient,
    ``out`` the gradient of x (any content: zeroed here, by each part for its own entries, so
    that the page faults of a fresh output are spread over the threads too); named after the
    rule's ``name``. A closure over two ints, which Numba's on-disk cache keys it on."""

    def body(a, b, c, out, meta):
        image, pooled, (ws, stride, pad), ignore_border, _ = _boundary_operands(meta)
        x, gx = numba.carray(a, image), numba.carray(out, image)
        maxout, gz = numba.carray(b, pooled), numba.carray(c, pooled)
        kernels.check_max_pool_grad_operands(x, maxout, gz, gx, ws, stride, pad, ignore_border)
        gx[...] = 0
        if small:
            kernels.max_pool_grad_first_batch_minor_into(x, maxout, gz, gx, ws, stride, pad, ignore_border)
        else:
            kernels.max_pool_grad_into_by(ties, x, maxout, gz, gx, ws, stride, pad, ignore_border)
        return boundary.DONE

    body.__name__ = f"max_pool_grad_{name}{'_small' if small else ''}_c"
    return body


#: The max-pooling gradient's entry points by tie rule (``kernels.pool.TIE_RULES``) and by
#: whether they are the batch-minor kernel of small planes (first maximum only).
MAX_POOL_GRAD_BODIES = {
    (ties, small): _max_pool_grad_body(name, ties, small)
    for name, ties in kernels.TIE_RULES.items()
    for small in ((0, 1) if ties == kernels.TIES_FIRST else (0,))
}
#: The generated entries by name, for the compile helper (``boundary.body_named``).
BOUNDARY_BODIES = {
    body.__name__: body for bodies in (POOL_FORWARD_BODIES, MAX_POOL_GRAD_BODIES) for body in bodies.values()
}


def average_pool_grad_c(a, b, c, out, meta):
    """C entry point of ``kernels.pool.average_pool_grad_into``: ``a`` the output gradient,
    ``out`` the gradient of x (any content: zeroed here)."""
    image, pooled, (ws, stride, pad), ignore_border, mode = _boundary_operands(meta)
    gz, gx = numba.carray(a, pooled), numba.carray(out, image)
    gx[...] = 0
    kernels.average_pool_grad_into(gz, gx, ws, stride, pad, ignore_border, mode)
    return boundary.DONE


@compiled_only
def _fill_meta(meta, image, pooled, ws, stride, pad, ignore_border, code):
    """Write the entries' ``meta`` (see above) into ``meta``. (By element: an array assignment
    compiles its broadcasting checks and their messages, seconds.)"""
    for i in range(4):
        meta[i] = image[i]
        meta[4 + i] = pooled[i]
    for i in range(3):
        meta[8 + i] = ws[i]
        meta[11 + i] = stride[i]
        meta[14 + i] = pad[i]
    meta[17] = ignore_border
    meta[18] = code


#: The driver's ``meta`` (:func:`pool_drive`): the entries' (``_META_LENGTH``), then the
#: addresses of the entry's table and resolver (``boundary.LazyKernels``), the sizes of the
#: four operands and their item size in bytes.
_TABLE, _RESOLVER, _SIZES = _META_LENGTH, _META_LENGTH + 1, _META_LENGTH + 2
_ITEMSIZE = _SIZES + 4
_DRIVER_META_LENGTH = _ITEMSIZE + 1


@compiled_only
def _pool_parts(image, pooled, ws):
    """Parts of the batch axis (``workers``) for a pooling call: the kernels are serial loops,
    so every call with enough work (two operations per window tap) is split."""
    taps = ws[0] * ws[1] * ws[2]
    return workers.parts_for(image[0], 2 * pooled[0] * pooled[1] * pooled[2] * pooled[3] * taps)


@compiled_only
def _run_pool_parts(entry, operands, sizes, itemsize, image, pooled, ws, stride, pad, ignore_border, code, parts):
    """Run the boundary entry at address ``entry`` on ``parts`` parts of the batch axis at
    once (``operands``: the addresses of the four operands, of ``sizes`` items of ``itemsize``
    bytes; every one is split along its first axis, and the pooled windows of one entry never
    reach another); returns the status."""
    batch = image[0]
    tasks = workers.task_rows(parts, _META_LENGTH)
    for i in range(parts):
        lo, hi = i * batch // parts, (i + 1) * batch // parts
        row = tasks[i]
        row[0] = entry
        for k in range(4):
            row[1 + k] = workers.part_address(operands[k], sizes[k], itemsize, lo, batch)
        image_part = (hi - lo, image[1], image[2], image[3])
        pooled_part = (hi - lo, pooled[1], pooled[2], pooled[3])
        _fill_meta(row[workers.TASK_HEADER :], image_part, pooled_part, ws, stride, pad, ignore_border, code)
    return workers.run_tasks(tasks)


def pool_drive(a, b, c, out, meta):
    """The boundary entry between a graph and the pooling entries, one for every dtype (it
    reads the operands' addresses only; ``meta`` gives their sizes and item size): runs the
    entry whose table and resolver ``meta`` gives on the operands, on parts of the batch axis
    at once where the work is large enough. The entry is compiled the first time it is called
    (the resolver takes the GIL: called on the graph's thread, before any part starts).

    The threading lives here, compiled once and cached on disk, so the code of each graph holds
    only the call (see ``boundary``). Returns ``boundary.DONE``,
    ``boundary.KERNEL_UNCOMPILED``, or 0 if it or the entry raised."""
    m = numba.carray(meta, (_DRIVER_META_LENGTH,))
    image, pooled, (ws, stride, pad), ignore_border, code = _boundary_operands(meta)
    address = workers.resolved_address(m[_TABLE], m[_RESOLVER], 0)
    if address == 0:
        return boundary.KERNEL_UNCOMPILED
    a_address, b_address = workers.pointer_address(a), workers.pointer_address(b)
    c_address, out_address = workers.pointer_address(c), workers.pointer_address(out)
    parts = _pool_parts(image, pooled, ws)
    if parts > 1:
        operands = (a_address, b_address, c_address, out_address)
        sizes = m[_SIZES : _SIZES + 4]
        return _run_pool_parts(
            address, operands, sizes, m[_ITEMSIZE], image, pooled, ws, stride, pad, ignore_border, code, parts
        )
    return workers.call_entry(address, a_address, b_address, c_address, out_address, workers.pointer_address(meta))


@lru_cache
def _boundary_call(entry, dtype):
    """Compiled ``call(a, b, c, out, image, pooled, ws, stride, pad, ignore_border, code)`` of
    the boundary kernel ``entry`` for ``dtype`` (C-contiguous 4-d operands; ``out`` is written),
    through :func:`pool_drive`. One per entry and dtype in a process: the nodes of every graph
    share it."""
    kernel = boundary.lazy_kernel(entry, dtype, KERNEL_FINGERPRINT)
    table, resolve = kernel.table, kernel.resolve
    driver = boundary.lazy_kernel(pool_drive, boundary.DRIVER_DTYPE, KERNEL_FINGERPRINT)
    itemsize = np.dtype(dtype).itemsize
    driver_table, driver_resolve = driver.table, driver.resolve

    @numba_basic.numba_njit
    def call(a, b, c, out, image, pooled, ws, stride, pad, ignore_border, code):
        meta = np.empty(_DRIVER_META_LENGTH, dtype=np.int64)
        _fill_meta(meta, image, pooled, ws, stride, pad, ignore_border, code)
        meta[_TABLE] = workers.symbol_address(table)
        meta[_RESOLVER] = workers.symbol_address(resolve)
        meta[_SIZES], meta[_SIZES + 1], meta[_SIZES + 2], meta[_SIZES + 3] = a.size, b.size, c.size, out.size
        meta[_ITEMSIZE] = itemsize
        driver_address, resolver_address = workers.symbol_address(driver_table), workers.symbol_address(driver_resolve)
        status = boundary.call_driver(driver_address, resolver_address, a, b, c, out, meta)
        if status == boundary.KERNEL_UNCOMPILED:
            raise RuntimeError("pytensor_nnet could not compile its pooling kernel (see the log)")
        if status != boundary.DONE:
            raise ValueError("the pooling kernel refused its arguments (an internal error: please report it)")

    return call


def _cache_key(op, node, small=0):
    """The key of a node's compiled function: the Op's props, the input's rank and dtype, the
    kernels' sources and ``small`` (the node's code names the symbols of the entries it calls:
    batch-minor or row-wise)."""
    x = node.inputs[0].type
    return default_hash_key_from_props(
        op, x_ndim=x.ndim, x_dtype=x.dtype, kernels=KERNEL_FINGERPRINT, cache_version=CACHE_VERSION, small=small
    )


@compiled_only
def _geometry_3d(ws, stride, pad, nd):
    """``ws``, ``stride`` and ``pad`` (vectors of the ``nd`` pooled axes) as the kernels'
    3-tuples, left-filled with 1, 1 and 0."""
    if ws.shape[0] != nd or stride.shape[0] != nd or pad.shape[0] != nd:
        raise ValueError("pooling: ws, stride and pad must have one entry per pooled axis")
    one, zero = np.int64(1), np.int64(0)
    ws3, stride3, pad3 = (one, one, one), (one, one, one), (zero, zero, zero)
    for i in range(nd):
        ws3 = tuple_setitem(ws3, 3 - nd + i, np.int64(ws[i]))
        stride3 = tuple_setitem(stride3, 3 - nd + i, np.int64(stride[i]))
        pad3 = tuple_setitem(pad3, 3 - nd + i, np.int64(pad[i]))
    return ws3, stride3, pad3


@compiled_only
def _shape_4d(shape, nd):
    """The kernels' (B, D, H, W) view of an array ``shape`` whose last ``nd`` axes are pooled:
    the leading axes as one, the pooled ones left-filled with 1."""
    lead = len(shape) - nd
    batch = np.int64(1)
    for i in range(lead):
        batch *= shape[i]
    one = np.int64(1)
    out = (batch, one, one, one)
    for i in range(nd):
        out = tuple_setitem(out, 4 - nd + i, np.int64(shape[lead + i]))
    return out


@compiled_only
def _pooled_shape(shape, nd, pooled):
    """``shape`` with its last ``nd`` axes of the pooled sizes ``pooled`` (a (D, H, W) 3-tuple)."""
    out = shape
    for i in range(nd):
        out = tuple_setitem(out, len(shape) - nd + i, pooled[3 - nd + i])
    return out


@compiled_only
def _to_4d(a, nd):
    """``a`` as a contiguous (B, D, H, W) array (:func:`_shape_4d`), for the kernels linked
    into a graph."""
    return np.ascontiguousarray(a).reshape(_shape_4d(a.shape, nd))


@compiled_only
def _from_4d(a4, like, nd):
    """The inverse of :func:`_to_4d`: ``a4`` at the rank and leading axes of ``like``."""
    return a4.reshape(_pooled_shape(like.shape, nd, (a4.shape[1], a4.shape[2], a4.shape[3])))


def _small_planes(node, nd):
    """1 if the static shape of the node's input (x) says that its pooled planes go to the
    batch-minor kernels (``kernels.pool.batch_minor_suits``), else 0 (also where a pooled axis
    has no static length: the row-wise kernels serve every size)."""
    sizes = node.inputs[0].type.shape[-nd:]
    if any(size is None for size in sizes):
        return 0
    return int(kernels.batch_minor_suits((1,) * (3 - nd) + tuple(sizes)))


# The nodes below pass their N-d operands across the boundary (the driver reads them flat):
# no reshape code in the graph.


@register_funcify_and_cache_key(pool.Pool)
def numba_funcify_Pool(op, node, **kwargs):
    nd = np.int64(op.ndim)
    ignore_border, mode = op.ignore_border, kernels.MODES[op.mode]
    dtype = np.dtype(node.inputs[0].type.dtype)
    lowest = np.full(1, kernels.lowest_value(dtype), dtype=dtype)
    small = _small_planes(node, nd)
    call = _boundary_call(POOL_FORWARD_BODIES[mode, small], dtype)

    @numba_basic.numba_njit
    def pool_op(x, ws, stride, pad):
        ws3, stride3, pad3 = _geometry_3d(ws, stride, pad, nd)
        image = _shape_4d(x.shape, nd)
        kernels.check_geometry(image[1:], ws3, stride3, pad3, ignore_border)
        pooled = kernels.pool_out_size(image[1:], ws3, stride3, pad3, ignore_border)
        y = np.empty(_pooled_shape(x.shape, nd, pooled), dtype=dtype)
        x_c = np.ascontiguousarray(x)
        call(x_c, lowest, x_c, y, image, (image[0],) + pooled, ws3, stride3, pad3, ignore_border, mode)
        return y

    return pool_op, _cache_key(op, node, small)


@register_funcify_and_cache_key(pool.MaxPoolGrad)
def numba_funcify_MaxPoolGrad(op, node, **kwargs):
    nd = np.int64(op.ndim)
    ignore_border = op.ignore_border
    ties = kernels.TIE_RULES[op.max_grad_ties]
    dtype = np.dtype(node.outputs[0].type.dtype)
    if any(var.type.dtype != dtype for var in node.inputs[:2]):  # mixed dtypes: linked into the graph
        return _max_pair(op, node, kernels.max_pool_grad, 0)
    small = _small_planes(node, nd) if ties == kernels.TIES_FIRST else 0
    call = _boundary_call(MAX_POOL_GRAD_BODIES[ties, small], dtype)

    @numba_basic.numba_njit
    def max_pool_grad(x, maxout, gz, ws, stride, pad):
        ws3, stride3, pad3 = _geometry_3d(ws, stride, pad, nd)
        if gz.shape != maxout.shape:
            raise ValueError("pooling: the output gradient's shape does not match maxout's")
        image, pooled = _shape_4d(x.shape, nd), _shape_4d(gz.shape, nd)
        gx = np.empty(x.shape, dtype=dtype)
        x_c, maxout_c, gz_c = np.ascontiguousarray(x), np.ascontiguousarray(maxout), np.ascontiguousarray(gz)
        call(x_c, maxout_c, gz_c, gx, image, pooled, ws3, stride3, pad3, ignore_border, ties)
        return gx

    return max_pool_grad, _cache_key(op, node, small)


@register_funcify_and_cache_key(pool.AveragePoolGrad)
def numba_funcify_AveragePoolGrad(op, node, **kwargs):
    nd = np.int64(op.ndim)
    ignore_border, mode = op.ignore_border, kernels.MODES[op.mode]
    dtype = np.dtype(node.outputs[0].type.dtype)
    call = _boundary_call(average_pool_grad_c, dtype)

    @numba_basic.numba_njit
    def average_pool_grad(x, gz, ws, stride, pad):
        ws3, stride3, pad3 = _geometry_3d(ws, stride, pad, nd)
        image, pooled = _shape_4d(x.shape, nd), _shape_4d(gz.shape, nd)
        gx = np.empty(x.shape, dtype=dtype)
        gz_c = np.ascontiguousarray(gz)
        call(gz_c, gz_c, gz_c, gx, image, pooled, ws3, stride3, pad3, ignore_border, mode)
        return gx

    return average_pool_grad, _cache_key(op, node)


def _max_pair(op, node, kernel, like):
    """Compiled ``(x, maxout, g, ws, stride, pad)`` running ``kernel`` (max_pool_grad or its
    adjoint, with the Op's tie rule), shaped like input ``like`` (0: x, 1: maxout)."""
    nd = np.int64(op.ndim)
    ignore_border = op.ignore_border
    ties = kernels.TIE_RULES[op.max_grad_ties]

    @numba_basic.numba_njit
    def max_pair(x, maxout, g, ws, stride, pad):
        ws3, stride3, pad3 = _geometry_3d(ws, stride, pad, nd)
        if like == 0 and g.shape != maxout.shape:
            raise ValueError("pooling: the output gradient's shape does not match maxout's")
        if like == 1 and g.shape != x.shape:
            raise ValueError("pooling: the second-order gradient must have the shape of x")
        out = kernel(_to_4d(x, nd), _to_4d(maxout, nd), _to_4d(g, nd), ws3, stride3, pad3, ignore_border, ties)
        return _from_4d(out, x, nd) if like == 0 else _from_4d(out, maxout, nd)

    return max_pair, _cache_key(op, node)


@register_funcify_and_cache_key(pool.DownsampleFactorMaxGradGrad)
def numba_funcify_DownsampleFactorMaxGradGrad(op, node, **kwargs):
    return _max_pair(op, node, kernels.max_pool_grad_grad, 1)


@register_funcify_and_cache_key(pool.WindowCount)
def numba_funcify_WindowCount(op, node, **kwargs):
    """``WindowCount`` on 0-d int64 inputs (the output sizes of ``shapes``, as ``WindowCount.evaluate``)."""
    n_axes = len(op.axes)
    geometry = np.array([axis[:5] for axis in op.axes], dtype=np.int64).reshape(n_axes, 5)
    partial = np.array([axis[5] for axis in op.axes], dtype=np.bool_)
    factor = op.factor

    @numba_basic.numba_njit
    def window_count(*inputs):
        total = factor
        for i in range(len(inputs)):
            n = inputs[i].item()
            if i >= n_axes:
                total *= n
                continue
            ws, stride, dilation = geometry[i, 0], geometry[i, 1], geometry[i, 4]
            lo, hi = geometry[i, 2], geometry[i, 3]
            if partial[i]:
                count = pool_output_size(n, ws, stride, 0, False)
            else:
                count = max(conv_output_length(n, ws, stride, lo, hi, dilation), 0)
            total *= count
        return np.asarray(total, dtype=np.int64)

    return window_count, _cache_key(op, node)
