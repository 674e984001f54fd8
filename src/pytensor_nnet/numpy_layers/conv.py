"""A convolution layer by im2col + GEMM, CS231n style: ``forward -> (out, cache)``,
``backward(dout, cache) -> (dx, dw, db)``.

Correlation (no kernel flip, as in CS231n and PyTorch) with stride, padding, dilation and
groups, on numpy arrays of 1 to 3 spatial axes (see :mod:`pytensor_nnet.numpy_layers.im2col`
for the column layout).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pytensor_nnet.numpy_layers.im2col import ColumnGeometry, check_images, col2im, im2col

__all__ = ["ConvCache", "conv_backward_im2col", "conv_forward_im2col"]


class ConvCache(NamedTuple):
    """What :func:`conv_backward_im2col` needs from the forward pass."""

    x_shape: tuple
    x_cols: np.ndarray
    w: np.ndarray
    geometry: ColumnGeometry
    groups: int


def _group_slices(total, groups):
    size = total // groups
    return [slice(g * size, (g + 1) * size) for g in range(groups)]


def conv_forward_im2col(x, w, b=None, stride=1, pad=0, dilation=1, groups=1):
    """Correlation layer (no kernel flip, as in CS231n and PyTorch) by im2col + GEMM.

    Parameters
    ----------
    x : ndarray, shape (N, C, *S)
    w : ndarray, shape (M, C // groups, *K)
    b : ndarray, shape (M,), optional
    stride, pad, dilation
        As in :func:`im2col`.
    groups : int
        Grouped convolution: channels and filters split in ``groups`` groups.

    Returns
    -------
    out : ndarray, shape (N, M, *O)
    cache : ConvCache
        For :func:`conv_backward_im2col`.
    """
    x = check_images(x)
    w = np.asarray(w)
    if w.ndim != x.ndim:
        raise ValueError(f"w must have shape (M, C // groups, *K) with {x.ndim - 2} spatial axes; got {w.shape}")
    N, C = x.shape[:2]
    M, Cg = w.shape[:2]
    if not isinstance(groups, int | np.integer) or groups < 1 or C % groups or M % groups or C // groups != Cg:
        raise ValueError(
            f"groups ({groups!r}) must be a positive int dividing the filters (w.shape[0] = {M}) with "
            f"x.shape[1] ({C}) == w.shape[1] ({Cg}) * groups"
        )
    dtype = np.result_type(x, w, np.float32)
    geo = ColumnGeometry.make(w.shape[2:], stride, pad, dilation, nd=x.ndim - 2)
    cols = im2col(x.astype(dtype, copy=False), geo.kernel_shape, geo.stride, geo.pad, geo.dilation)
    w2 = w.astype(dtype, copy=False).reshape(M, -1)
    out2 = np.empty((M, cols.shape[1]), dtype=dtype)
    for ms, ks in zip(_group_slices(M, groups), _group_slices(cols.shape[0], groups)):
        np.dot(w2[ms], cols[ks], out=out2[ms])
    out_spatial = geo.out_shape(x.shape[2:])
    out = np.ascontiguousarray(np.moveaxis(out2.reshape((M, *out_spatial, N)), -1, 0))
    if b is not None:
        b = np.asarray(b)
        if b.shape != (M,):
            raise ValueError(f"b must have shape ({M},) (one bias per filter); got {b.shape}")
        out += b.reshape((1, M) + (1,) * len(out_spatial))
    return out, ConvCache(x.shape, cols, w.astype(dtype, copy=False), geo, int(groups))


def conv_backward_im2col(dout, cache):
    """Gradients of :func:`conv_forward_im2col`: ``dx`` (N, C, *S), ``dw`` (like w), ``db`` (M,)."""
    x_shape, cols, w, geo, groups = cache
    M = w.shape[0]
    out_spatial = geo.out_shape(x_shape[2:])
    dout = np.asarray(dout)
    if dout.shape != (x_shape[0], M, *out_spatial):
        raise ValueError(f"dout must have the forward output's shape {(x_shape[0], M, *out_spatial)}; got {dout.shape}")
    dout = dout.astype(cols.dtype, copy=False)
    db = dout.sum(axis=(0, *range(2, dout.ndim)))
    dout2 = np.ascontiguousarray(np.moveaxis(dout, 0, -1)).reshape(M, -1)
    w2 = w.reshape(M, -1)
    dw2 = np.empty_like(w2)
    dx_cols = np.empty_like(cols)
    for ms, ks in zip(_group_slices(M, groups), _group_slices(cols.shape[0], groups)):
        np.dot(dout2[ms], cols[ks].T, out=dw2[ms])
        np.dot(w2[ms].T, dout2[ms], out=dx_cols[ks])
    dx = col2im(dx_cols, x_shape, geo.kernel_shape, geo.stride, geo.pad, geo.dilation)
    return dx, dw2.reshape(w.shape), db
