"""Pooling layers by im2col, CS231n style: ``forward -> (out, cache)``, ``backward(dout, cache)``.

:func:`max_pool_forward_im2col` / :func:`max_pool_backward_im2col` and
:func:`avg_pool_forward_im2col` / :func:`avg_pool_backward_im2col` on numpy arrays
(N, C, *S) with 1 to 3 spatial axes, with the semantics of ``pytensor_nnet.pool.pool_2d`` /
``pool_3d`` (``ignore_border``, padding, modes, ``max_grad_ties``): correct for overlapping,
non-square and non-tiling windows and for padding.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from pytensor_nnet.kernels import pool as pool_kernels
from pytensor_nnet.numpy_layers.im2col import ColumnGeometry, check_images, col2im, im2col
from pytensor_nnet.shapes import per_axis
from pytensor_nnet.shapes.pool import check_pool_args, pool_pad_pairs

__all__ = [
    "PoolCache",
    "avg_pool_backward_im2col",
    "avg_pool_forward_im2col",
    "max_pool_backward_im2col",
    "max_pool_forward_im2col",
]


class PoolCache(NamedTuple):
    """What the pooling backward functions need from the forward pass."""

    x_shape: tuple
    geometry: ColumnGeometry  # of the (N * C, 1, *S) problem, with the legacy end padding
    mode: str
    x_cols: np.ndarray | None  # (T, P, N * C) masked columns (max only)
    out: np.ndarray | None  # (P, N * C) (max only)
    divisors: np.ndarray | None  # (P, 1) (averages only)


def _pool_geometry(x, ws, stride, pad, ignore_border):
    """Legacy pooling geometry as an im2col geometry on (N * C, 1, *S) images.

    Windows cut at the input's end (``ignore_border=False``) become extra after-padding.
    """
    x = check_images(x)
    nd = x.ndim - 2
    ws = per_axis(ws, nd, "ws", minimum=1)
    stride = ws if stride is None else per_axis(stride, nd, "stride", minimum=1)
    pad = per_axis(pad, nd, "pad", minimum=0)
    check_pool_args(x.shape[2:], ws, stride, pad, bool(ignore_border))
    pairs = pool_pad_pairs(x.shape[2:], ws, stride, pad, bool(ignore_border))
    return x, ColumnGeometry(ws, stride, pairs, (1,) * nd)


def _valid_taps(x_shape, geo):
    """(T, P, 1) bool: which window taps fall inside the input (not in the padding)."""
    ones = np.ones((1, 1) + tuple(x_shape[2:]), dtype=np.float32)
    return im2col(ones, geo.kernel_shape, geo.stride, geo.pad, geo.dilation)[:, :, None] > 0


def _as_columns(x, geo):
    """im2col of x (N, C, *S) as (T, P, N * C)."""
    N, C = x.shape[:2]
    cols = im2col(x.reshape((N * C, 1) + x.shape[2:]), geo.kernel_shape, geo.stride, geo.pad, geo.dilation)
    return cols.reshape(cols.shape[0], -1, N * C)


def _from_columns(values, x_shape, geo):
    """(P, N * C) -> (N, C, *O)."""
    out_spatial = geo.out_shape(x_shape[2:])
    return np.ascontiguousarray(np.moveaxis(values.reshape(out_spatial + tuple(x_shape[:2])), (-2, -1), (0, 1)))


def _to_columns(dout, x_shape, geo):
    """(N, C, *O) -> (P, N * C), checking the shape."""
    out_spatial = geo.out_shape(x_shape[2:])
    expected = tuple(x_shape[:2]) + out_spatial
    dout = np.asarray(dout)
    if dout.shape != expected:
        raise ValueError(f"dout must have the forward output's shape {expected}; got {dout.shape}")
    return np.moveaxis(dout, (0, 1), (-2, -1)).reshape(-1, x_shape[0] * x_shape[1])


def _back_to_image(dcols, x_shape, geo):
    N, C = x_shape[:2]
    dx = col2im(
        dcols.reshape(dcols.shape[0], -1),
        (N * C, 1) + tuple(x_shape[2:]),
        geo.kernel_shape,
        geo.stride,
        geo.pad,
        geo.dilation,
    )
    return dx.reshape(x_shape)


def max_pool_forward_im2col(x, ws, stride=None, pad=0, ignore_border=True):
    """Max pooling of ``x`` (N, C, *S) over windows ``ws`` by im2col, legacy semantics.

    Padding never wins the max; with ``ignore_border=False`` the last window of an axis may be
    cut at the input's end (see ``pytensor_nnet.pool``). Returns ``(out, cache)``.
    """
    x, geo = _pool_geometry(x, ws, stride, pad, ignore_border)
    cols = _as_columns(x, geo)
    cols = np.where(_valid_taps(x.shape, geo), cols, pool_kernels.lowest_value(cols.dtype))
    out = cols.max(axis=0)
    return _from_columns(out, x.shape, geo), PoolCache(x.shape, geo, "max", cols, out, None)


def _first_max_taps(cols, valid):
    """(P, N * C): the first tap (row-major within the window) holding each window's maximum of
    the masked columns ``cols`` (T, P, N * C); a NaN counts as the maximum (``np.argmax``).
    Padding taps never win, even when every element of the window is ``lowest``."""
    winner = np.argmax(cols, axis=0)
    in_padding = ~np.take_along_axis(np.broadcast_to(valid, cols.shape), winner[None], axis=0)[0]
    if in_padding.any():  # the maximum is the padding value itself: take the first real tap
        winner = np.where(in_padding, np.argmax(np.broadcast_to(valid, cols.shape), axis=0), winner)
    return winner


def max_pool_backward_im2col(dout, cache, max_grad_ties="first"):
    """Gradient of :func:`max_pool_forward_im2col` wrt ``x``.

    ``max_grad_ties="first"`` (default): each window's gradient goes to one element, its first
    maximum (the window's ``argmax`` over the im2col columns, in row-major order within the
    window; padding never wins); overlapping windows accumulate. ``"all"``: every element
    equal to its window's maximum receives the window's gradient (the legacy rule).
    """
    if max_grad_ties not in pool_kernels.TIE_RULES:
        raise ValueError(f"max_grad_ties must be 'first' or 'all'; got {max_grad_ties!r}")
    x_shape, geo, _, cols, out, _ = cache
    d = _to_columns(dout, x_shape, geo)
    dtype = np.result_type(d, np.float32)
    if max_grad_ties == "all":
        dcols = np.where(cols == out[None], d[None], 0).astype(dtype, copy=False)
    else:
        winner = _first_max_taps(cols, _valid_taps(x_shape, geo))
        dcols = np.zeros(cols.shape, dtype=dtype)
        np.put_along_axis(dcols, winner[None], d[None].astype(dtype, copy=False), axis=0)
    return _back_to_image(dcols, x_shape, geo)


def avg_pool_forward_im2col(x, ws, stride=None, pad=0, ignore_border=True, mode="average_inc_pad"):
    """Sum / average pooling of ``x`` (N, C, *S) by im2col, legacy semantics.

    ``mode`` is ``"average_inc_pad"`` (divide by the window size, padding included),
    ``"average_exc_pad"`` (divide by the number of input elements in the window) or ``"sum"``.
    Returns ``(out, cache)``.
    """
    if mode not in ("sum", "average_inc_pad", "average_exc_pad"):
        raise ValueError(f"mode must be 'sum', 'average_inc_pad' or 'average_exc_pad'; got {mode!r}")
    x, geo = _pool_geometry(x, ws, stride, pad, ignore_border)
    cols = _as_columns(x, geo)
    divisors = _divisors(x.shape, geo, mode)
    out = cols.sum(axis=0, dtype=np.result_type(cols, np.float32)) / divisors
    return _from_columns(out, x.shape, geo), PoolCache(x.shape, geo, mode, None, None, divisors)


def _divisors(x_shape, geo, mode):
    """(P, 1) window divisors of a sum / average pooling."""
    if mode == "sum":
        return np.ones((1, 1))
    if mode == "average_exc_pad":
        return _valid_taps(x_shape, geo).sum(axis=0)
    per_axis_div = [
        pool_kernels.window_divisors(n, k, s, p, o, True)
        for n, k, s, (p, _), o in zip(x_shape[2:], geo.kernel_shape, geo.stride, geo.pad, geo.out_shape(x_shape[2:]))
    ]
    return functools.reduce(np.multiply, np.ix_(*per_axis_div)).reshape(-1, 1)


def avg_pool_backward_im2col(dout, cache):
    """Gradient of :func:`avg_pool_forward_im2col` wrt ``x``.

    Each window spreads ``dout / divisor`` over its taps; ``col2im`` accumulates overlapping
    windows and drops the taps in the padding, so this is right for any ``ws``, ``stride``,
    ``pad`` and ``ignore_border`` (unlike spreading ``dout / prod(ws)`` without padding).
    """
    x_shape, geo, _, _, _, divisors = cache
    d = _to_columns(dout, x_shape, geo)
    d = (d / divisors).astype(np.result_type(d, np.float32), copy=False)
    dcols = np.broadcast_to(d[None], (int(np.prod(geo.kernel_shape)),) + d.shape)
    return _back_to_image(np.ascontiguousarray(dcols), x_shape, geo)
