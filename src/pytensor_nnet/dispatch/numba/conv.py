"""Numba implementations of the abstract convolution Ops.

They call the same compiled kernels as ``perform`` (``kernels.corr``), with the Op's
parameters baked in as constants; the batch-chunk bound ``COLUMN_BUFFER_BYTES`` is read when
the function is compiled and is part of the cache key.
"""

from __future__ import annotations

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import default_hash_key_from_props, register_funcify_and_cache_key

from pytensor_nnet.conv import ops
from pytensor_nnet.kernels import corr

CACHE_VERSION = 1


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


def _size_3d(convdim):
    """Compiled conversion of a spatial-shape vector to a (D, H, W) tuple."""
    if convdim == 3:
        return numba_basic.numba_njit(lambda s: (s[0], s[1], s[2]))
    if convdim == 2:
        return numba_basic.numba_njit(lambda s: (1, s[0], s[1]))
    return numba_basic.numba_njit(lambda s: (1, 1, s[0]))


def _maybe_flip(flip):
    if flip:
        return numba_basic.numba_njit(lambda w: np.ascontiguousarray(w[:, :, ::-1, ::-1, ::-1]))
    return numba_basic.numba_njit(lambda w: w)


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
        _maybe_flip(op.filter_flip),
        _check_hint(op.imshp, "imshp"),
        _check_hint(op.kshp, "kshp"),
    )


def _cache_key(op, buffer_bytes):
    return default_hash_key_from_props(op, buffer_bytes=buffer_bytes, cache_version=CACHE_VERSION)


@register_funcify_and_cache_key(ops.AbstractConv)
def numba_funcify_AbstractConv(op, node, **kwargs):
    geo, groups, buffer_bytes, to_3d, from_3d, flip, check_img, check_kern = _setup(op)
    stride, pad_before, pad_after, dilation = geo
    kernel = corr.corr_forward

    @numba_basic.numba_njit
    def abstract_conv(img, kern):
        check_img(img.shape)
        check_kern(kern.shape)
        top = kernel(to_3d(img), flip(to_3d(kern)), stride, pad_before, pad_after, dilation, groups, buffer_bytes)
        return from_3d(top)

    return abstract_conv, _cache_key(op, buffer_bytes)


@register_funcify_and_cache_key(ops.AbstractConv_gradInputs)
def numba_funcify_AbstractConv_gradInputs(op, node, **kwargs):
    geo, groups, buffer_bytes, to_3d, from_3d, flip, check_img, check_kern = _setup(op)
    stride, pad_before, pad_after, dilation = geo
    size_3d = _size_3d(op.convdim)
    kernel = corr.corr_grad_inputs

    @numba_basic.numba_njit
    def abstract_conv_grad_inputs(kern, topgrad, shape):
        check_kern(kern.shape)
        img = kernel(
            flip(to_3d(kern)), to_3d(topgrad), size_3d(shape), stride, pad_before, pad_after, dilation,
            groups, buffer_bytes,
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
    kernel = corr.corr_grad_weights

    @numba_basic.numba_njit
    def abstract_conv_grad_weights(img, topgrad, shape):
        check_img(img.shape)
        kern = kernel(
            to_3d(img), to_3d(topgrad), size_3d(shape), stride, pad_before, pad_after, dilation,
            groups, buffer_bytes,
        )
        kern = from_3d(flip(kern))
        check_kern(kern.shape)
        return kern

    return abstract_conv_grad_weights, _cache_key(op, buffer_bytes)
