"""Bilinear upsampling with fixed (not learned) kernels, as transposed convolutions.

Upsampling a row of ``n`` pixels by an integer ratio ``r`` gives ``n * r`` pixels; pixel ``i``
is the linear interpolation of the input at position ``(i - (r - 1) // 2) / r``, the input
being extended by repeating its first and last pixels. For odd ``r`` that is the
centre-aligned grid; for even ``r`` the grid sits ``1 / (2 r)`` to the left of it, so the last
pixel is repeated once more than the first (the legacy asymmetry, reproduced on purpose).

It is computed as the transposed convolution (stride ``r``) of the edge-extended input with
the triangle kernel :func:`bilinear_kernel_1D`, cropped by
``pad = 2 r - (r - 1) // 2 - 1`` on both sides: per axis with 1-d kernels
(``use_1D_kernel=True``) or both axes at once with :func:`bilinear_kernel_2D`. A fractional
ratio ``num / den`` (reduced) upsamples by ``num`` and keeps every ``den``-th pixel from the
first: ``ceil(n * num / den)`` pixels.
"""

from __future__ import annotations

from math import gcd

import numpy as np
import pytensor
import pytensor.tensor as pt

from pytensor_nnet.conv.api import conv_nd_grad_wrt_inputs
from pytensor_nnet.graph import scalar_constant


def _int_or_symbolic(ratio, name):
    """``ratio`` as a positive Python int, or the symbolic int scalar it is."""
    if isinstance(ratio, int | np.integer) and not isinstance(ratio, bool):
        if ratio < 1:
            raise ValueError(f"{name} must be a positive int; got {ratio}")
        return int(ratio)
    if isinstance(ratio, bool | float | np.floating) or not hasattr(ratio, "type"):
        raise ValueError(f"{name} must be a positive int or an int scalar tensor; got {ratio!r}")
    ratio = pt.as_tensor_variable(ratio)
    if ratio.ndim != 0 or not ratio.dtype.startswith(("int", "uint")):
        raise ValueError(f"{name} must be a positive int or an int scalar tensor; got {ratio.type}")
    known = scalar_constant(ratio)
    return ratio if known is None else _int_or_symbolic(known, name)


def bilinear_kernel_1D(ratio, normalize=True):
    """1-d kernel for bilinear upsampling by ``ratio``: ``[1, 2, ..., ratio, ..., 2, 1]`` (/ ratio).

    Parameters
    ----------
    ratio : int or int scalar tensor
        Upsampling ratio (positive).
    normalize : bool
        Divide by ``ratio`` (default), so that the peak is 1.

    Returns
    -------
    1-d tensor of length ``2 * ratio - 1`` (floatX).
    """
    ratio = _int_or_symbolic(ratio, "ratio")
    dtype = pytensor.config.floatX
    if isinstance(ratio, int):
        half = np.arange(1, ratio + 1, dtype=dtype)
        kern = np.concatenate([half, half[-2::-1]])
        return pt.constant(kern / ratio if normalize else kern)
    half = pt.arange(1, ratio + 1, dtype=dtype)
    kern = pt.concatenate([half, half[-2::-1]])
    return kern / pt.cast(ratio, dtype) if normalize else kern


def bilinear_kernel_2D(ratio, normalize=True):
    """2-d kernel for bilinear upsampling by ``ratio``: outer product of :func:`bilinear_kernel_1D`.

    Returns
    -------
    2-d tensor of shape ``(2 * ratio - 1, 2 * ratio - 1)`` (floatX), normalized by ``ratio ** 2``.
    """
    kern = bilinear_kernel_1D(ratio, normalize)
    return pt.outer(kern, kern)


def _frac_pairs(frac_ratio):
    """((num, den), (num, den)) per axis, reduced, validated."""
    if not isinstance(frac_ratio, tuple | list) or len(frac_ratio) != 2:
        raise ValueError(
            f"frac_ratio must be (numerator, denominator) or a pair of them (rows, cols); got {frac_ratio!r}"
        )
    pairs = tuple(frac_ratio) if isinstance(frac_ratio[0], tuple | list) else (tuple(frac_ratio),) * 2
    out = []
    for pair in pairs:
        if (
            not isinstance(pair, tuple | list)
            or len(pair) != 2
            or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in pair)
        ):
            raise ValueError(f"frac_ratio entries must be (numerator, denominator) int pairs; got {frac_ratio!r}")
        num, den = int(pair[0]), int(pair[1])
        if num < 1 or den < 1:
            raise ValueError(f"frac_ratio numerators and denominators must be positive; got {frac_ratio!r}")
        k = gcd(num, den)
        out.append((num // k, den // k))
    return tuple(out)


def _extend_edges(x):
    """Repeat the first and last rows and columns of x (b, 1, rows, cols): (b, 1, rows + 2, cols + 2)."""
    x = pt.concatenate([x[:, :, :1], x, x[:, :, -1:]], axis=2)
    return pt.concatenate([x[:, :, :, :1], x, x[:, :, :, -1:]], axis=3)


def _crop(ratio):
    return 2 * ratio - (ratio - 1) // 2 - 1


def _upsample(x, rows, cols, ratios, use_1D_kernel):
    """Integer-ratio bilinear upsampling of the edge-extended x (b, 1, rows + 2, cols + 2)."""
    r_row, r_col = ratios
    batch = x.shape[0]

    def kernel(r):
        return pt.cast(bilinear_kernel_1D(r), x.dtype)

    if not use_1D_kernel:
        kern = pt.outer(kernel(r_row), kernel(r_col))[None, None]
        return conv_nd_grad_wrt_inputs(
            x,
            kern,
            (batch, 1, rows * r_row, cols * r_col),
            2,
            border_mode=(_crop(r_row), _crop(r_col)),
            subsample=(r_row, r_col),
        )
    if r_row > 1:
        x = conv_nd_grad_wrt_inputs(
            x,
            kernel(r_row)[None, None, :, None],
            (batch, 1, rows * r_row, cols + 2),
            2,
            border_mode=(_crop(r_row), 0),
            subsample=(r_row, 1),
        )
    else:
        x = x[:, :, 1:-1]
    if r_col > 1:
        return conv_nd_grad_wrt_inputs(
            x,
            kernel(r_col)[None, None, None, :],
            (batch, 1, rows * r_row, cols * r_col),
            2,
            border_mode=(0, _crop(r_col)),
            subsample=(1, r_col),
        )
    return x[:, :, :, 1:-1]


def _bilinear(input, pairs, batch_size, num_input_channels, use_1D_kernel):
    input = pt.as_tensor_variable(input)
    if input.ndim != 4:
        raise ValueError(f"input must be a 4-d tensor (batch, channels, rows, cols); got a {input.ndim}-d tensor")
    if not input.dtype.startswith("float"):
        input = pt.cast(input, pytensor.config.floatX)
    if batch_size is not None or num_input_channels is not None:
        for hint, name, static in (
            (batch_size, "batch_size", input.type.shape[0]),
            (num_input_channels, "num_input_channels", input.type.shape[1]),
        ):
            if isinstance(hint, int | np.integer) and static is not None and hint != static:
                raise ValueError(f"{name} ({hint}) does not match the input's static shape {input.type.shape}")
        input = pt.specify_shape(input, (_static(batch_size), _static(num_input_channels), None, None))
    n, c, rows, cols = input.shape
    if all(num == 1 for num, _ in pairs):
        up = input
    else:
        x = _extend_edges(input.reshape((n * c, 1, rows, cols)))
        up = _upsample(x, rows, cols, tuple(num for num, _ in pairs), use_1D_kernel)
        up = up.reshape((n, c, rows * pairs[0][0], cols * pairs[1][0]))
    (_, den_row), (_, den_col) = pairs
    if den_row > 1 or den_col > 1:
        up = up[:, :, ::den_row, ::den_col]
    return up


def _static(value):
    return int(value) if isinstance(value, int | np.integer) else None


def bilinear_upsampling(
    input, ratio=None, frac_ratio=None, batch_size=None, num_input_channels=None, use_1D_kernel=True
):
    """Upsample feature maps by ``ratio`` (or ``frac_ratio``) with bilinear interpolation.

    Parameters
    ----------
    input : 4-d tensor (batch, channels, rows, cols)
    ratio : int
        Integer upsampling ratio of rows and columns (a constant: it is the stride of a
        transposed convolution).
    frac_ratio : (num, den) or ((num, den), (num, den))
        Fractional ratio, the same for rows and columns or one per axis; give ``ratio`` or
        ``frac_ratio``, not both.
    batch_size, num_input_channels : int, optional
        The input's first two sizes, checked (statically, or when the function runs).
    use_1D_kernel : bool
        Upsample rows and columns separately with 1-d kernels (default), or together with a
        2-d kernel; the result is the same, only the speed differs. Both work with
        ``frac_ratio`` too (the legacy code only had the 2-d path there).

    Returns
    -------
    4-d tensor (batch, channels, rows * row_ratio, cols * col_ratio) (rounded up for
    fractional ratios), the input's float dtype (an integer input becomes floatX).

    Notes
    -----
    The kernel is fixed. With an even ratio the last row and column are repeated once more
    than the first ones (the upsampled image is asymmetric); odd ratios are symmetric.
    """
    if ratio is not None and frac_ratio is not None:
        raise ValueError("give ratio or frac_ratio, not both")
    if frac_ratio is not None:
        pairs = _frac_pairs(frac_ratio)
    elif ratio is not None:
        r = _int_or_symbolic(ratio, "ratio")
        if not isinstance(r, int):
            raise ValueError(
                "ratio must be known when the graph is built (an int or a constant): it is the stride of "
                "a transposed convolution"
            )
        pairs = ((r, 1), (r, 1))
    else:
        raise ValueError("no ratio (or frac_ratio) given")
    return _bilinear(input, pairs, batch_size, num_input_channels, use_1D_kernel)


def frac_bilinear_upsampling(input, frac_ratio):
    """Bilinear upsampling by a fractional ratio: see :func:`bilinear_upsampling`.

    ``frac_ratio`` is ``(num, den)`` (both axes) or ``((num, den), (num, den))`` (rows, cols),
    positive ints, reduced by their gcd. Output sizes are ``ceil(size * num / den)``; with an
    even (reduced) numerator the result is asymmetric, as for even integer ratios.
    """
    return _bilinear(input, _frac_pairs(frac_ratio), None, None, False)
