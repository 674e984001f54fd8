"""im2col / col2im on numpy arrays (Numba inside): the column toolkit of the hand-written layers.

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
(N, M, *O) enters as ``np.moveaxis(dout, 0, -1).reshape(M, -1)`` (CS231n's
``dout.transpose(1, 2, 3, 0).reshape(F, -1)``). ``col2im`` is the adjoint of ``im2col``:
it adds every column entry back into the image position it came from, so overlapping windows
accumulate and padding is dropped.

The PyTensor Ops :class:`pytensor_nnet.im2col.Im2Col` / ``Col2Im`` compute the same columns
in a graph.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pytensor_nnet.kernels.columns import col2im_batch, im2col_batch
from pytensor_nnet.kernels.im2col import as_3d_array, as_3d_geometry
from pytensor_nnet.shapes import conv_output_length, per_axis

__all__ = ["ColumnGeometry", "check_images", "col2im", "im2col", "im2col_output_shape"]


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
        for i, o in enumerate(self.out_shape(spatial)):
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


def check_images(x, name="x"):
    """``x`` as an array of images (N, C, *S) with 1 to 3 spatial axes (``ValueError`` otherwise)."""
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
    x = check_images(x)
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
