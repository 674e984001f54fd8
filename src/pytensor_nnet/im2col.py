"""im2col / col2im toolkit for hand-written layers (numpy in, numpy out, Numba inside), and the
PyTensor Ops :class:`Im2Col` / :class:`Col2Im`.

Column layout
-------------
For images ``x`` of shape ``(N, C, *S)`` (1 to 3 spatial axes) and a kernel of shape ``K``
(one entry per spatial axis), ``im2col`` returns a matrix of shape
``(C * prod(K), prod(O) * N)`` where ``O`` is the output size
``(S + pad_before + pad_after - ((K - 1) * dilation + 1)) // stride + 1``:

- row ``r = (c, *k)`` in C order: the channel, then the kernel taps (``k`` over ``K``);
- column ``j = (*o, n)`` in C order: the output position, then the image - **the image index
  varies fastest** (the layout of the CS231n ``im2col_cython`` helpers).

So in 2d, ``cols[(c * kh + a) * kw + b, (y * ow + x) * N + n] = xpad[n, c, y * sh + a * dh,
x * sw + b * dw]``, with zeros in the padding. A correlation with filters ``w`` (M, C, *K) is
``w.reshape(M, -1) @ cols``, which reshapes to ``(M, *O, N)``; an output gradient ``dout``
(N, M, *O) enters as ``np.moveaxis(dout, 0, -1).reshape(M, -1)`` (the seed's
``dout.transpose(1, 2, 3, 0).reshape(F, -1)``). ``col2im`` is the adjoint of ``im2col``:
it adds every column entry back into the image position it came from, so overlapping windows
accumulate and padding is dropped.

Layer helpers (CS231n style, ``forward -> (out, cache)``, ``backward(dout, cache)``):
:func:`conv_forward_im2col` / :func:`conv_backward_im2col` (correlation with stride, padding,
dilation and groups; returns ``dx, dw, db``), :func:`max_pool_forward_im2col` /
:func:`max_pool_backward_im2col` and :func:`avg_pool_forward_im2col` /
:func:`avg_pool_backward_im2col`, with the semantics of ``pytensor_nnet.pool.pool_2d`` /
``pool_3d`` (``ignore_border``, padding, modes, ``max_grad_ties``): correct for overlapping,
non-square and non-tiling windows and for padding.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, disconnected_type
from pytensor.graph.basic import Apply
from pytensor_nnet.compat import Op
from pytensor.tensor.type import TensorType

from pytensor_nnet.kernels import pool as pool_kernels
from pytensor_nnet.kernels.columns import col2im_batch, im2col_batch
from pytensor_nnet.kernels.im2col import as_3d_array, as_3d_geometry
from pytensor_nnet.pool import MAX_GRAD_TIES, WindowCount, _geometry_input, check_pool_args
from pytensor_nnet.shapes import conv_output_length, per_axis

__all__ = [
    "Col2Im",
    "ColumnGeometry",
    "Im2Col",
    "avg_pool_backward_im2col",
    "avg_pool_forward_im2col",
    "col2im",
    "conv_backward_im2col",
    "conv_forward_im2col",
    "im2col",
    "im2col_output_shape",
    "max_pool_backward_im2col",
    "max_pool_forward_im2col",
]


# ----------------------------------------------------------------------------- geometry
def _pad_pairs(pad, nd):
    """``pad`` (int, ``nd`` ints, or ``nd`` (before, after) pairs) as ``nd`` pairs of ints >= 0."""
    if isinstance(pad, int | np.integer) and not isinstance(pad, bool):
        pad = (pad,) * nd
    if not isinstance(pad, tuple | list) or len(pad) != nd:
        raise ValueError(f"pad must be an int, {nd} ints or {nd} (before, after) pairs; got {pad!r}")
    pairs = []
    for entry in pad:
        pair = tuple(entry) if isinstance(entry, tuple | list) else (entry, entry)
        if len(pair) != 2:
            raise ValueError(f"pad entries must be ints or (before, after) pairs; got {pad!r}")
        pairs.append(per_axis(pair, 2, "pad", minimum=0))
    return tuple(pairs)


class ColumnGeometry(NamedTuple):
    """Validated geometry of an im2col: per-axis tuples of ints (``nd`` entries each)."""

    kernel_shape: tuple
    stride: tuple
    pad: tuple  # (before, after) pairs
    dilation: tuple

    @classmethod
    def make(cls, kernel_shape, stride=1, pad=0, dilation=1, nd=None):
        """Normalise and check the toolkit arguments (``ValueError`` naming the argument)."""
        if nd is None:
            nd = 1 if isinstance(kernel_shape, int | np.integer) else len(tuple(kernel_shape))
        if not 1 <= nd <= 3:
            raise ValueError(f"kernel_shape must have 1 to 3 entries (spatial axes); got {kernel_shape!r}")
        return cls(
            per_axis(kernel_shape, nd, "kernel_shape", minimum=1),
            per_axis(stride, nd, "stride", minimum=1),
            _pad_pairs(pad, nd),
            per_axis(dilation, nd, "dilation", minimum=1),
        )

    @property
    def nd(self):
        return len(self.kernel_shape)

    def out_shape(self, spatial):
        """Output size per axis for the spatial input size ``spatial`` (entries may be < 1)."""
        return tuple(
            max(0, conv_output_length(s, k, st, lo, hi, d))
            for s, k, st, (lo, hi), d in zip(spatial, self.kernel_shape, self.stride, self.pad, self.dilation)
        )

    def check_input(self, spatial, name="x"):
        """Raise ``ValueError`` unless the (dilated) kernel fits in the padded input on every axis."""
        for i, (s, o) in enumerate(zip(spatial, self.out_shape(spatial))):
            if o < 1:
                raise ValueError(
                    f"kernel_shape {self.kernel_shape} (dilation {self.dilation}) is larger than the padded "
                    f"input on spatial axis {i}: {name} spatial shape {tuple(spatial)}, pad {self.pad}"
                )

    def kernel_args(self, spatial):
        """The 3-d arguments ``(ksize, stride, pad_before, dilation, out)`` of the compiled kernels."""
        return (
            as_3d_geometry(self.kernel_shape, 1),
            as_3d_geometry(self.stride, 1),
            as_3d_geometry([p[0] for p in self.pad], 0),
            as_3d_geometry(self.dilation, 1),
            as_3d_geometry(self.out_shape(spatial), 1),
        )


def im2col_output_shape(x_shape, kernel_shape, stride=1, pad=0, dilation=1):
    """Shape ``(C * prod(kernel_shape), prod(O) * N)`` of ``im2col`` of an ``x_shape`` (N, C, *S) array."""
    geo = ColumnGeometry.make(kernel_shape, stride, pad, dilation, nd=len(x_shape) - 2)
    geo.check_input(x_shape[2:])
    return x_shape[1] * int(np.prod(geo.kernel_shape)), int(np.prod(geo.out_shape(x_shape[2:]))) * x_shape[0]


def _check_images(x, name="x"):
    x = np.asarray(x)
    if not 3 <= x.ndim <= 5:
        raise ValueError(f"{name} must have shape (N, C, *spatial) with 1 to 3 spatial axes; got shape {x.shape}")
    return x


# ----------------------------------------------------------------------------- im2col / col2im
def im2col(x, kernel_shape, stride=1, pad=0, dilation=1):
    """Columns of the images ``x`` for a sliding kernel (layout: see the module docstring).

    Parameters
    ----------
    x : ndarray, shape (N, C, *S)
        Images with 1, 2 or 3 spatial axes.
    kernel_shape : int or tuple of int
        Kernel size per spatial axis (an int is used on every axis).
    stride, dilation : int or tuple of int
        Per spatial axis, >= 1.
    pad : int, tuple of int, or tuple of (before, after) pairs
        Zero padding per spatial axis.

    Returns
    -------
    cols : ndarray, shape (C * prod(kernel_shape), prod(O) * N)
    """
    x = _check_images(x)
    geo = ColumnGeometry.make(kernel_shape, stride, pad, dilation, nd=x.ndim - 2)
    geo.check_input(x.shape[2:])
    return im2col_batch(as_3d_array(x, 2), *geo.kernel_args(x.shape[2:]))


def col2im(cols, x_shape, kernel_shape, stride=1, pad=0, dilation=1):
    """Adjoint of :func:`im2col`: add the columns back into images of shape ``x_shape``.

    Overlapping windows accumulate; entries that fall in the padding are dropped.

    Parameters
    ----------
    cols : ndarray, shape (C * prod(kernel_shape), prod(O) * N)
    x_shape : tuple of int
        ``(N, C, *S)``, the shape of the images the columns came from.
    kernel_shape, stride, pad, dilation
        As in :func:`im2col`.

    Returns
    -------
    x : ndarray, shape ``x_shape``, dtype of ``cols``
    """
    x_shape = tuple(int(s) for s in x_shape)
    if not 3 <= len(x_shape) <= 5 or any(s < 0 for s in x_shape):
        raise ValueError(f"x_shape must be (N, C, *spatial) with 1 to 3 spatial axes; got {x_shape}")
    cols = np.asarray(cols)
    geo = ColumnGeometry.make(kernel_shape, stride, pad, dilation, nd=len(x_shape) - 2)
    geo.check_input(x_shape[2:], "x_shape")
    expected = (x_shape[1] * int(np.prod(geo.kernel_shape)), int(np.prod(geo.out_shape(x_shape[2:]))) * x_shape[0])
    if cols.ndim != 2 or cols.shape != expected:
        raise ValueError(
            f"cols has shape {cols.shape}, which does not fit x_shape {x_shape} with kernel_shape "
            f"{geo.kernel_shape}, stride {geo.stride}, pad {geo.pad}, dilation {geo.dilation}: expected {expected}"
        )
    if cols.dtype.kind not in "iuf":
        cols = cols.astype(np.float64)
    cols = np.ascontiguousarray(cols)
    if not cols.flags.writeable:  # read-only arrays are another Numba type: avoid a recompile
        cols = cols.copy()
    x5_shape = (x_shape[0], x_shape[1]) + as_3d_geometry(x_shape[2:], 1)
    x5 = col2im_batch(cols, x5_shape, *geo.kernel_args(x_shape[2:]))
    return x5.reshape(x_shape)


# ----------------------------------------------------------------------------- convolution layer
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
    x = _check_images(x)
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


# ----------------------------------------------------------------------------- pooling layers
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
    x = _check_images(x)
    nd = x.ndim - 2
    ws = per_axis(ws, nd, "ws", minimum=1)
    stride = ws if stride is None else per_axis(stride, nd, "stride", minimum=1)
    pad = per_axis(pad, nd, "pad", minimum=0)
    check_pool_args(x.shape[2:], ws, stride, pad, bool(ignore_border))
    pairs = []
    for n, k, s, p in zip(x.shape[2:], ws, stride, pad):
        out = pool_kernels.out_size_1axis(n, k, s, p, bool(ignore_border))
        pairs.append((p, p + max(0, (out - 1) * s + k - (n + 2 * p))))
    return x, ColumnGeometry(ws, stride, tuple(pairs), (1,) * nd)


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
    dx = col2im(dcols.reshape(dcols.shape[0], -1), (N * C, 1) + tuple(x_shape[2:]),
                geo.kernel_shape, geo.stride, geo.pad, geo.dilation)
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
    if max_grad_ties not in MAX_GRAD_TIES:
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


# ----------------------------------------------------------------------------- Ops
class _ColumnOp(Op):
    """Props and geometry shared by :class:`Im2Col` and :class:`Col2Im`."""

    __props__ = ("kernel_shape", "stride", "pad", "dilation")

    def __init__(self, kernel_shape, stride=1, pad=0, dilation=1):
        self.kernel_shape, self.stride, self.pad, self.dilation = ColumnGeometry.make(
            kernel_shape, stride, pad, dilation
        )

    @property
    def geometry(self):
        return ColumnGeometry(self.kernel_shape, self.stride, self.pad, self.dilation)

    @property
    def nd(self):
        return len(self.kernel_shape)

    def _rows(self, channels):
        return None if channels is None else channels * int(np.prod(self.kernel_shape))

    def _out_spatial(self, spatial):
        """Output size per axis; ints when ``spatial`` is static, else symbolic (None for None)."""
        out = []
        for s, k, st, (lo, hi), d in zip(spatial, self.kernel_shape, self.stride, self.pad, self.dilation):
            out.append(None if s is None else conv_output_length(s, k, st, lo, hi, d))
        return out

    def _n_cols(self, batch, spatial):
        out = self._out_spatial(spatial)
        if batch is None or None in out:
            return None
        return int(np.prod(out)) * batch


class Im2Col(_ColumnOp):
    """``cols = im2col(x)`` as a PyTensor Op (layout: see :mod:`pytensor_nnet.im2col`).

    ``Im2Col(kernel_shape, stride=1, pad=0, dilation=1)(x)``: ``x`` (N, C, *S) ->
    (C * prod(kernel_shape), prod(O) * N). Its gradient is :class:`Col2Im` and vice versa.
    """

    def make_node(self, x):
        x = pt.as_tensor_variable(x)
        if x.ndim != self.nd + 2:
            raise ValueError(f"x must be a {self.nd + 2}-d tensor (N, C, *spatial) for a {self.nd}-d kernel; got {x.ndim}-d")
        if not x.dtype.startswith(("float", "int", "uint")):
            raise TypeError(f"x must have a numeric dtype; got {x.dtype}")
        N, C, *spatial = x.type.shape
        if None not in spatial:
            self.geometry.check_input(spatial)
        shape = (self._rows(C), self._n_cols(N, spatial))
        return Apply(self, [x], [TensorType(x.dtype, shape=shape)()])

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = im2col(inputs[0], *self.geometry)

    def infer_shape(self, fgraph, node, input_shapes):
        N, C, *spatial = input_shapes[0]
        axes = tuple((k, st, lo, hi, d, False)
                     for k, st, (lo, hi), d in zip(self.kernel_shape, self.stride, self.pad, self.dilation))
        # WindowCount rather than scalar arithmetic: shapes stay plain ints inside jax.jit
        rows = WindowCount((), factor=int(np.prod(self.kernel_shape)))(C)
        return [(rows, WindowCount(axes)(*spatial, N))]

    def pullback(self, inputs, outputs, cotangents):
        (x,) = inputs
        (g,) = cotangents
        if not x.dtype.startswith("float"):
            return [pt.zeros_like(x, dtype=g.dtype)]
        return [Col2Im(*self.geometry)(g, x.shape)]

    def pushforward(self, inputs, outputs, tangents):
        if isinstance(tangents[0].type, DisconnectedType):
            return [disconnected_type()]
        return [self(tangents[0])]


class Col2Im(_ColumnOp):
    """``x = col2im(cols, x_shape)`` as a PyTensor Op: the adjoint (and gradient) of :class:`Im2Col`.

    ``Col2Im(kernel_shape, stride=1, pad=0, dilation=1)(cols, x_shape)``: ``cols``
    (C * prod(kernel_shape), prod(O) * N), ``x_shape`` the ``nd + 2`` ints (N, C, *S) -> (N, C, *S).
    """

    def make_node(self, cols, x_shape):
        cols = pt.as_tensor_variable(cols)
        if cols.ndim != 2:
            raise ValueError(f"cols must be a matrix (C * prod(kernel_shape), prod(O) * N); got a {cols.ndim}-d tensor")
        if not cols.dtype.startswith(("float", "int", "uint")):
            raise TypeError(f"cols must have a numeric dtype; got {cols.dtype}")
        x_shape, static = _geometry_input(x_shape, self.nd + 2, "x_shape")
        if any(s is not None and s < 0 for s in static):
            raise ValueError(f"x_shape entries must be >= 0; got {static}")
        N, C, *spatial = static
        if None not in spatial:
            self.geometry.check_input(spatial, "x_shape")
        expected = (self._rows(C), self._n_cols(N, spatial))
        for s, e in zip(cols.type.shape, expected):
            if s is not None and e is not None and s != e:
                raise ValueError(
                    f"cols has static shape {cols.type.shape}, which does not fit x_shape {static} with "
                    f"kernel_shape {self.kernel_shape}, stride {self.stride}, pad {self.pad}, dilation "
                    f"{self.dilation}: expected {expected}"
                )
        return Apply(self, [cols, x_shape], [TensorType(cols.dtype, shape=static)()])

    def perform(self, node, inputs, output_storage):
        cols, x_shape = inputs
        x = col2im(cols, tuple(int(s) for s in x_shape), *self.geometry)
        output_storage[0][0] = x.astype(node.outputs[0].dtype, copy=False)

    def infer_shape(self, fgraph, node, input_shapes):
        x_shape = node.inputs[1]
        return [tuple(x_shape[i] for i in range(self.nd + 2))]

    def connection_pattern(self, node):
        return [[True], [False]]

    def pullback(self, inputs, outputs, cotangents):
        (g,) = cotangents
        return [Im2Col(*self.geometry)(g), disconnected_type()]

    def pushforward(self, inputs, outputs, tangents):
        if isinstance(tangents[0].type, DisconnectedType):
            return [disconnected_type()]
        return [self(tangents[0], inputs[1])]
