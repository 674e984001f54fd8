"""Numba implementations of the abstract convolution Ops.

They call the same compiled kernels as ``perform`` (``kernels.corr``, or ``kernels.unshared``
for locally connected filters), with the Op's parameters baked in as constants; the
batch-chunk bound ``COLUMN_BUFFER_BYTES`` is read when the function is compiled and is part
of the cache key.
"""

from __future__ import annotations

import sys

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import default_hash_key_from_props, register_funcify_and_cache_key

from pytensor_nnet.conv import ops
from pytensor_nnet.dispatch.numba.fingerprint import source_fingerprint
from pytensor_nnet.kernels import corr, direct, unshared
from pytensor_nnet.kernels import im2col as im2col_kernels

CACHE_VERSION = 2
#: The cache key follows the code (see ``fingerprint``): this module and every kernel it calls.
KERNEL_FINGERPRINT = source_fingerprint(sys.modules[__name__], corr, direct, im2col_kernels, unshared)


def _to_3d(convdim):
    """Compiled reshape of a (N, C, *spatial) array with ``convdim`` spatial dims to (N, C, D, H, W)."""
    if convdim == 3:
        return numba_basic.numba_njit(lambda a: np.ascontiguousarray(a))
    if convdim == 2:
        return numba_basic.numba_njit(
            lambda a: np.ascontiguousarray(a).reshape((a.shape[0], a.shape[1], 1, a.shape[2], a.shape[3]))
        )
    return numba_basic.numba_njit(
        lambda a: np.ascontiguousarray(a).reshape((a.shape[0], a.shape[1], 1, 1, a.shape[2]))
    )


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


def _size_3d(convdim):
    """Compiled conversion of a spatial-shape vector to a (D, H, W) tuple."""
    if convdim == 3:
        return numba_basic.numba_njit(lambda s: (s[0], s[1], s[2]))
    if convdim == 2:
        return numba_basic.numba_njit(lambda s: (1, s[0], s[1]))
    return numba_basic.numba_njit(lambda s: (1, 1, s[0]))


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


def _check_hint(hint, name):
    """Compiled run-time check of an array shape against a legacy shape hint (None entries skipped)."""
    if hint is None or all(h is None for h in hint):
        return numba_basic.numba_njit(lambda shape: None)
    positions = tuple(i for i, h in enumerate(hint) if h is not None)
    expected = tuple(hint[i] for i in positions)
    message = f"{name}={hint} does not match the actual shape"

    @numba_basic.numba_njit
    def check(shape):
        for k in range(len(positions)):
            if shape[positions[k]] != expected[k]:
                raise ValueError(message)

    return check


def _setup(op):
    geo = op.geometry
    return (
        geo,
        op.num_groups,
        ops.COLUMN_BUFFER_BYTES,
        _to_3d(op.convdim),
        _from_3d(op.convdim),
        _maybe_flip(op.filter_flip, op.unshared),
        _check_hint(op.imshp, "imshp"),
        _check_hint(op.kshp, "kshp"),
    )


def _filters_3d(op, to_3d, from_3d):
    """(kern_to_3d, kern_from_3d, kernel family prefix) for the Op's kind of filters."""
    if op.unshared:
        return _unshared_to_3d(op.convdim), _unshared_from_3d(op.convdim), unshared, "unshared_"
    return to_3d, from_3d, corr, "corr_"


def _cache_key(op, buffer_bytes):
    return default_hash_key_from_props(
        op, buffer_bytes=buffer_bytes, kernels=KERNEL_FINGERPRINT, cache_version=CACHE_VERSION
    )


@register_funcify_and_cache_key(ops.AbstractConv)
def numba_funcify_AbstractConv(op, node, **kwargs):
    geo, groups, buffer_bytes, to_3d, from_3d, flip, check_img, check_kern = _setup(op)
    stride, pad_before, pad_after, dilation = geo
    kern_to_3d, _, family, prefix = _filters_3d(op, to_3d, from_3d)
    kernel = getattr(family, prefix + "forward")

    @numba_basic.numba_njit
    def abstract_conv(img, kern):
        check_img(img.shape)
        check_kern(kern.shape)
        top = kernel(
            to_3d(img), flip(kern_to_3d(kern)), _plain(stride), _plain(pad_before), _plain(pad_after),
            _plain(dilation), np.int64(groups), np.int64(buffer_bytes),
        )
        return from_3d(top)

    return abstract_conv, _cache_key(op, buffer_bytes)


@register_funcify_and_cache_key(ops.AbstractConv_gradInputs)
def numba_funcify_AbstractConv_gradInputs(op, node, **kwargs):
    geo, groups, buffer_bytes, to_3d, from_3d, flip, check_img, check_kern = _setup(op)
    stride, pad_before, pad_after, dilation = geo
    size_3d = _size_3d(op.convdim)
    kern_to_3d, _, family, prefix = _filters_3d(op, to_3d, from_3d)
    kernel = getattr(family, prefix + "grad_inputs")

    @numba_basic.numba_njit
    def abstract_conv_grad_inputs(kern, topgrad, shape):
        check_kern(kern.shape)
        img = kernel(
            flip(kern_to_3d(kern)), to_3d(topgrad), _plain(size_3d(shape)), _plain(stride), _plain(pad_before),
            _plain(pad_after), _plain(dilation), np.int64(groups), np.int64(buffer_bytes),
        )
        img = from_3d(img)
        check_img(img.shape)
        return img

    return abstract_conv_grad_inputs, _cache_key(op, buffer_bytes)


@register_funcify_and_cache_key(ops.AbstractConv_gradWeights)
def numba_funcify_AbstractConv_gradWeights(op, node, **kwargs):
    geo, groups, buffer_bytes, to_3d, from_3d, flip, check_img, check_kern = _setup(op)
    stride, pad_before, pad_after, dilation = geo
    size_3d = _size_3d(op.convdim)
    _, kern_from_3d, family, prefix = _filters_3d(op, to_3d, from_3d)
    kernel = getattr(family, prefix + "grad_weights")

    @numba_basic.numba_njit
    def abstract_conv_grad_weights(img, topgrad, shape):
        check_img(img.shape)
        kern = kernel(
            to_3d(img), to_3d(topgrad), _plain(size_3d(shape)), _plain(stride), _plain(pad_before),
            _plain(pad_after), _plain(dilation), np.int64(groups), np.int64(buffer_bytes),
        )
        kern = kern_from_3d(flip(kern))
        check_kern(kern.shape)
        return kern

    return abstract_conv_grad_weights, _cache_key(op, buffer_bytes)
