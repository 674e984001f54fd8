"""Numba implementations of :class:`Im2Col` / :class:`Col2Im`.

They call the same compiled kernels as ``perform`` (``kernels.columns``), with the Op's
geometry baked in as 3-d constants. The cache key includes a hash of the kernels' source
(PyTensor would otherwise reuse a function compiled against older kernels), the Op's props
and the input's rank and dtype.
"""

from __future__ import annotations

import sys

import numpy as np
from numba.np.unsafe.ndarray import to_fixed_tuple
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import default_hash_key_from_props, register_funcify_and_cache_key

from pytensor_nnet import shapes
from pytensor_nnet.dispatch.numba import utils
from pytensor_nnet.dispatch.numba.fingerprint import source_fingerprint
from pytensor_nnet.dispatch.numba.utils import to_3d_tuple
from pytensor_nnet.im2col import Col2Im, Im2Col
from pytensor_nnet.kernels import columns
from pytensor_nnet.kernels import im2col as im2col_kernels
from pytensor_nnet.kernels.im2col import as_3d_geometry
from pytensor_nnet.shapes import conv_output_size_3d

CACHE_VERSION = 1


KERNEL_FINGERPRINT = source_fingerprint(sys.modules[__name__], utils, columns, im2col_kernels, shapes.conv)


def _cache_key(op, node):
    x = node.inputs[0].type
    return default_hash_key_from_props(
        op, x_ndim=x.ndim, x_dtype=x.dtype, kernels=KERNEL_FINGERPRINT, cache_version=CACHE_VERSION
    )


def _column_setup(op):
    """3-d constants of an Im2Col / Col2Im Op: ksize, stride, pad before / after, dilation."""
    geo = op.geometry
    return (
        as_3d_geometry(geo.kernel_shape, 1),
        as_3d_geometry(geo.stride, 1),
        as_3d_geometry([p[0] for p in geo.pad], 0),
        as_3d_geometry([p[1] for p in geo.pad], 0),
        as_3d_geometry(geo.dilation, 1),
    )


@numba_basic.numba_njit
def _checked_out(in_size, ksize, stride, pad_lo, pad_hi, dilation):
    out = conv_output_size_3d(in_size, ksize, stride, pad_lo, pad_hi, dilation)
    if out[0] < 1 or out[1] < 1 or out[2] < 1:
        raise ValueError("im2col: kernel_shape (dilated) is larger than the padded input")
    return out


@register_funcify_and_cache_key(Im2Col)
def numba_funcify_Im2Col(op, node, **kwargs):
    ksize, stride, pad_lo, pad_hi, dilation = _column_setup(op)
    nd = op.nd
    spatial_3d = to_3d_tuple(nd, 1)
    kernel = columns.im2col_batch

    @numba_basic.numba_njit
    def im2col_op(x):
        shape = np.empty(nd, dtype=np.int64)
        for i in range(nd):
            shape[i] = x.shape[2 + i]
        d, h, w = spatial_3d(shape)
        out = _checked_out((d, h, w), ksize, stride, pad_lo, pad_hi, dilation)
        x5 = np.ascontiguousarray(x).reshape((x.shape[0], x.shape[1], d, h, w))
        return kernel(x5, ksize, stride, pad_lo, dilation, out)

    return im2col_op, _cache_key(op, node)


@register_funcify_and_cache_key(Col2Im)
def numba_funcify_Col2Im(op, node, **kwargs):
    ksize, stride, pad_lo, pad_hi, dilation = _column_setup(op)
    nd = op.nd
    x_ndim = nd + 2
    spatial_3d = to_3d_tuple(nd, 1)
    kernel = columns.col2im_batch

    @numba_basic.numba_njit
    def col2im_op(cols, x_shape):
        if x_shape.shape[0] != x_ndim:
            raise ValueError("col2im: x_shape must have one entry per axis of x (N, C, *spatial)")
        for i in range(x_ndim):
            if x_shape[i] < 0:
                raise ValueError("col2im: x_shape entries must be >= 0")
        d, h, w = spatial_3d(x_shape[2:])
        out = _checked_out((d, h, w), ksize, stride, pad_lo, pad_hi, dilation)
        x5 = kernel(cols, (x_shape[0], x_shape[1], d, h, w), ksize, stride, pad_lo, dilation, out)
        return x5.reshape(to_fixed_tuple(x_shape, x_ndim))

    return col2im_op, _cache_key(op, node)
