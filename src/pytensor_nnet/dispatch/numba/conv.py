"""Numba implementations of the abstract convolution Ops.

They call the same compiled kernels as ``perform`` (``kernels.corr``, or ``kernels.unshared``
for locally connected filters), with the Op's parameters baked in as constants; the
batch-chunk bound ``COLUMN_BUFFER_BYTES`` and the algorithms excluded by the environment
variable ``PYTENSOR_NNET_CONV_EXCLUDE`` (see ``kernels.select``) are read when the function
is compiled and are part of the cache key.
"""

from __future__ import annotations

import sys

import numba
import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import default_hash_key_from_props, register_funcify_and_cache_key

from pytensor_nnet import shapes
from pytensor_nnet.conv import ops
from pytensor_nnet.dispatch.numba.fingerprint import source_fingerprint
from pytensor_nnet.kernels import corr, direct, select, unshared, winograd
from pytensor_nnet.kernels import im2col as im2col_kernels

CACHE_VERSION = 4
#: The cache key follows the code (see ``fingerprint``): this module, the Ops (whose index maps
#: the checks bake in), the shared shape checks and every kernel it calls.
KERNEL_FINGERPRINT = source_fingerprint(
    sys.modules[__name__],
    ops,
    shapes.axes,
    shapes.conv,
    shapes.checks,
    corr,
    direct,
    im2col_kernels,
    select,
    unshared,
    winograd,
)


def _to_3d(convdim):
    """Compiled reshape of a (N, C, *spatial) array with ``convdim`` spatial dims to (N, C, D, H, W)."""
    if convdim == 3:
        return numba_basic.numba_njit(lambda a: np.ascontiguousarray(a))
    if convdim == 2:
        return numba_basic.numba_njit(
            lambda a: np.ascontiguousarray(a).reshape((a.shape[0], a.shape[1], 1, a.shape[2], a.shape[3]))
        )
    return numba_basic.numba_njit(lambda a: np.ascontiguousarray(a).reshape((a.shape[0], a.shape[1], 1, 1, a.shape[2])))


def _from_3d(convdim):
    """Compiled inverse of :func:`_to_3d`."""
    if convdim == 3:
        return numba_basic.numba_njit(lambda a: a)
    if convdim == 2:
        return numba_basic.numba_njit(lambda a: a.reshape((a.shape[0], a.shape[1], a.shape[3], a.shape[4])))
    return numba_basic.numba_njit(lambda a: a.reshape((a.shape[0], a.shape[1], a.shape[4])))


@numba_basic.numba_njit
def _plain(t):
    """The 3-tuple ``t`` as run-time int64s.

    Values a dispatch function captures are typed as literals, so passing them on as they are
    would compile a specialisation of the whole kernel chain for each geometry (seconds each,
    and measured 20% slower code). As plain int64s every graph calls the kernels' one
    compilation per dtype, the one ``perform`` uses and Numba caches on disk.
    """
    return (np.int64(t[0]), np.int64(t[1]), np.int64(t[2]))


@numba_basic.numba_njit
def _kernel_size(w):
    """The kernel size ``(kd, kh, kw)`` of 3-d-view filters (5-d, or 8-d unshared)."""
    return (w.shape[-3], w.shape[-2], w.shape[-1])


@numba_basic.numba_njit
def _pads(pad_before, pad_after, ksize, dilation):
    """The padding sizes of the Op's geometry (``shapes.resolve_pads``) as run-time int64s."""
    return shapes.resolve_pads(_plain(pad_before), _plain(pad_after), _plain(ksize), _plain(dilation))


def _unshared_to_3d(convdim):
    """Compiled view of unshared filters (M, *out, Cg, *k) as (M, od, oh, ow, Cg, kd, kh, kw)."""
    if convdim == 3:
        return numba_basic.numba_njit(lambda w: np.ascontiguousarray(w))
    if convdim == 2:
        return numba_basic.numba_njit(
            lambda w: np.ascontiguousarray(w).reshape(
                (w.shape[0], 1, w.shape[1], w.shape[2], w.shape[3], 1, w.shape[4], w.shape[5])
            )
        )
    return numba_basic.numba_njit(
        lambda w: np.ascontiguousarray(w).reshape((w.shape[0], 1, 1, w.shape[1], w.shape[2], 1, 1, w.shape[3]))
    )


def _unshared_from_3d(convdim):
    """Compiled inverse of :func:`_unshared_to_3d`."""
    if convdim == 3:
        return numba_basic.numba_njit(lambda w: w)
    if convdim == 2:
        return numba_basic.numba_njit(
            lambda w: w.reshape((w.shape[0], w.shape[2], w.shape[3], w.shape[4], w.shape[6], w.shape[7]))
        )
    return numba_basic.numba_njit(lambda w: w.reshape((w.shape[0], w.shape[3], w.shape[4], w.shape[7])))


def _maybe_flip(flip, unshared_filters=False):
    """Compiled flip of the three kernel axes of 3-d-view filters (5-d, or 8-d unshared)."""
    if not flip:
        return numba_basic.numba_njit(lambda w: w)
    if unshared_filters:
        return numba_basic.numba_njit(lambda w: np.ascontiguousarray(w[:, :, :, :, :, ::-1, ::-1, ::-1]))
    return numba_basic.numba_njit(lambda w: np.ascontiguousarray(w[:, :, ::-1, ::-1, ::-1]))


def _index_map(indices):
    """An index map of ``shapes.pick_sizes`` as an int64 array (a run-time value for Numba)."""
    return np.asarray(tuple(indices), dtype=np.int64)


@numba_basic.numba_njit
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
    where not given): raises the message of ``shapes.conv_shape_error``, as ``perform`` does."""
    image_map, filters_map, region_map = (_index_map(m) for m in op.check_maps())
    no_top = _index_map((shapes.NOT_GIVEN,) * 5)
    geometry = op.check_args()
    stride, pad_before, pad_after, dilation = geometry[:4]
    convdim, groups, unshared_flag = op.convdim, op.num_groups, int(op.unshared)

    def raise_error(image, filters, region, top):
        raise shapes.ShapeMismatchError(
            shapes.conv_shape_error(convdim, groups, unshared_flag, image, filters, region, top, *geometry)
        )

    @numba_basic.numba_njit
    def check(image, filters, top, has_top):
        pick = shapes.pick_sizes
        image_3d, filters_3d, region_3d = pick(image, image_map), pick(filters, filters_map), pick(filters, region_map)
        top_3d = pick(top, image_map) if has_top else pick(top, no_top)
        problem, _ = shapes.conv_shape_problem(
            np.int64(convdim),
            np.int64(groups),
            np.int64(unshared_flag),
            image_3d,
            filters_3d,
            region_3d,
            top_3d,
            _plain(stride),
            _plain(pad_before),
            _plain(pad_after),
            _plain(dilation),
        )
        if problem != shapes.SHAPES_OK:
            with numba.objmode():
                raise_error(image_3d, filters_3d, region_3d, top_3d)

    return check


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


@numba_basic.numba_njit
def _vector_sizes(vector):
    """A shape vector (any int dtype) as an int64 array."""
    out = np.empty(vector.shape[0], dtype=np.int64)
    for i in range(vector.shape[0]):
        out[i] = vector[i]
    return out


def _setup(op):
    geo = op.geometry
    return (
        geo,
        op.num_groups,
        (ops.COLUMN_BUFFER_BYTES, select.excluded_mask()),
        _to_3d(op.convdim),
        _from_3d(op.convdim),
        _maybe_flip(op.filter_flip, op.unshared),
        _check_hint(op.imshp, op.arg_names.image_hint, ops.var_name(op.arg_names.image)),
        _check_hint(op.kshp, op.arg_names.filters_hint, ops.var_name(op.arg_names.filters)),
    )


def _filters_3d(op, to_3d, from_3d):
    """(kern_to_3d, kern_from_3d, kernel family, kernel prefix) for the Op's kind of filters."""
    if op.unshared:
        return _unshared_to_3d(op.convdim), _unshared_from_3d(op.convdim), unshared, "unshared_"
    return to_3d, from_3d, corr, "corr_"


def _kernel(family, prefix, kind, excluded):
    """The compiled kernel ``kind`` of the family; the ``kernels.corr`` ones get the mask of
    excluded algorithms as their last argument (a run-time int64, see :func:`_plain`)."""
    kernel = getattr(family, prefix + kind)
    if family is not corr:
        return kernel
    if kind == "forward":
        return numba_basic.numba_njit(
            lambda a, b, s, lo, hi, d, g, buf: kernel(a, b, s, lo, hi, d, g, buf, np.int64(excluded))
        )
    return numba_basic.numba_njit(
        lambda a, b, size, s, lo, hi, d, g, buf: kernel(a, b, size, s, lo, hi, d, g, buf, np.int64(excluded))
    )


def _cache_key(op, baked, node=None):
    """Key of the compiled function: the Op's properties and what else it bakes in (the column
    buffer bound, the excluded algorithms, the names in its messages; for a gradient Op,
    whether its ``shape`` input is the whole shape)."""
    buffer_bytes, excluded = baked
    return default_hash_key_from_props(
        op,
        buffer_bytes=buffer_bytes,
        excluded_algorithms=excluded,
        kernels=KERNEL_FINGERPRINT,
        cache_version=CACHE_VERSION,
        arg_names=tuple(op.arg_names),
        full_shape=None if node is None else op.shape_is_full(node),
    )


@register_funcify_and_cache_key(ops.AbstractConv)
def numba_funcify_AbstractConv(op, node, **kwargs):
    geo, groups, baked, to_3d, from_3d, flip, check_img, check_kern = _setup(op)
    buffer_bytes = baked[0]
    stride, pad_before, pad_after, dilation = geo
    kern_to_3d, _, family, prefix = _filters_3d(op, to_3d, from_3d)
    kernel = _kernel(family, prefix, "forward", baked[1])
    check_shapes = _check_shapes(op)

    @numba_basic.numba_njit
    def abstract_conv(img, kern):
        check_img(img.shape)
        check_kern(kern.shape)
        image = _sizes(img.shape)
        check_shapes(image, _sizes(kern.shape), image, False)
        filters = flip(kern_to_3d(kern))
        pad_lo, pad_hi = _pads(pad_before, pad_after, _kernel_size(filters), dilation)
        top = kernel(
            to_3d(img),
            filters,
            _plain(stride),
            pad_lo,
            pad_hi,
            _plain(dilation),
            np.int64(groups),
            np.int64(buffer_bytes),
        )
        return from_3d(top)

    return abstract_conv, _cache_key(op, baked)


@register_funcify_and_cache_key(ops.AbstractConv_gradInputs)
def numba_funcify_AbstractConv_gradInputs(op, node, **kwargs):
    geo, groups, baked, to_3d, from_3d, flip, check_img, check_kern = _setup(op)
    buffer_bytes = baked[0]
    stride, pad_before, pad_after, dilation = geo
    kern_to_3d, _, family, prefix = _filters_3d(op, to_3d, from_3d)
    kernel = _kernel(family, prefix, "grad_inputs", baked[1])
    check_shapes = _check_shapes(op)
    given_shape = _given_shape(op, node)

    @numba_basic.numba_njit
    def abstract_conv_grad_inputs(kern, topgrad, shape):
        image, in_size = given_shape(shape)
        check_kern(kern.shape)
        check_shapes(image, _sizes(kern.shape), _sizes(topgrad.shape), True)
        filters = flip(kern_to_3d(kern))
        pad_lo, pad_hi = _pads(pad_before, pad_after, _kernel_size(filters), dilation)
        img = kernel(
            filters,
            to_3d(topgrad),
            in_size,
            _plain(stride),
            pad_lo,
            pad_hi,
            _plain(dilation),
            np.int64(groups),
            np.int64(buffer_bytes),
        )
        img = from_3d(img)
        check_img(img.shape)
        return img

    return abstract_conv_grad_inputs, _cache_key(op, baked, node)


@register_funcify_and_cache_key(ops.AbstractConv_gradWeights)
def numba_funcify_AbstractConv_gradWeights(op, node, **kwargs):
    geo, groups, baked, to_3d, from_3d, flip, check_img, check_kern = _setup(op)
    buffer_bytes = baked[0]
    stride, pad_before, pad_after, dilation = geo
    _, kern_from_3d, family, prefix = _filters_3d(op, to_3d, from_3d)
    kernel = _kernel(family, prefix, "grad_weights", baked[1])
    check_shapes = _check_shapes(op)
    given_shape = _given_shape(op, node)

    @numba_basic.numba_njit
    def abstract_conv_grad_weights(img, topgrad, shape):
        filters, ksize = given_shape(shape)
        check_img(img.shape)
        check_shapes(_sizes(img.shape), filters, _sizes(topgrad.shape), True)
        pad_lo, pad_hi = _pads(pad_before, pad_after, ksize, dilation)
        kern = kernel(
            to_3d(img),
            to_3d(topgrad),
            ksize,
            _plain(stride),
            pad_lo,
            pad_hi,
            _plain(dilation),
            np.int64(groups),
            np.int64(buffer_bytes),
        )
        kern = kern_from_3d(flip(kern))
        check_kern(kern.shape)
        return kern

    return abstract_conv_grad_weights, _cache_key(op, baked, node)
