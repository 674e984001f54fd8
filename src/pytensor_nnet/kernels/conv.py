"""Framework-free N-d convolution (1 to 3 spatial dims) on numpy arrays, legacy semantics.

These wrappers turn the legacy parameters (``border_mode``, ``subsample``,
``filter_dilation``, ``num_groups``, ``filter_flip``) into the 3-d geometry of the compiled
kernels in ``kernels.corr`` and reshape arrays accordingly. The Ops' ``perform`` and the
Numba dispatch both use :func:`kernel_geometry`, so they run the very same compiled code.

Shapes: images ``(N, C, *S)``, filters ``(M, C // num_groups, *K)``, outputs ``(N, M, *O)``.
Inconsistent shapes raise ``ValueError`` with the values, the message of the Ops
(``shapes.conv_shape_error``), before any kernel runs.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pytensor_nnet.kernels import corr
from pytensor_nnet.kernels.im2col import PAD_FULL, PAD_HALF, as_3d_array, as_3d_geometry

_PAD_CODES = {"valid": 0, "full": PAD_FULL, "half": PAD_HALF}


class KernelGeometry(NamedTuple):
    """3-d geometry arguments of the compiled kernels (all 3-tuples of ints)."""

    stride: tuple
    pad_before: tuple
    pad_after: tuple
    dilation: tuple


def kernel_geometry(border_mode, subsample, filter_dilation) -> KernelGeometry:
    """3-d kernel geometry from a *normalized* border mode (see ``shapes.normalize_border_mode``)
    and per-axis ``subsample`` / ``filter_dilation`` tuples of the same length."""
    convdim = len(subsample)
    if isinstance(border_mode, str):
        before = after = (_PAD_CODES[border_mode],) * convdim
    else:
        before = tuple(p[0] for p in border_mode)
        after = tuple(p[1] for p in border_mode)
    return KernelGeometry(
        stride=as_3d_geometry(subsample, 1),
        pad_before=as_3d_geometry(before, 0),
        pad_after=as_3d_geometry(after, 0),
        dilation=as_3d_geometry(filter_dilation, 1),
    )


def flip_spatial(w, convdim):
    """Reverse the last ``convdim`` axes (turns correlation filters into convolution filters)."""
    return w[(Ellipsis,) + (slice(None, None, -1),) * convdim]


def _geometry(x_ndim, border_mode, subsample, filter_dilation):
    from pytensor_nnet.shapes import normalize_border_mode

    convdim = x_ndim - 2
    subsample = tuple(subsample or (1,) * convdim)
    filter_dilation = tuple(filter_dilation or (1,) * convdim)
    for name, value in (("subsample", subsample), ("filter_dilation", filter_dilation)):
        if len(value) != convdim or any(v < 1 for v in value):
            raise ValueError(f"{name} must be {convdim} positive ints; got {value!r}")
    return convdim, kernel_geometry(normalize_border_mode(border_mode, convdim), subsample, filter_dilation)


def _check_shapes(convdim, geo, border_mode, num_groups, image, filters, top, names):
    """Raise the shared message of ``shapes.conv_shape_error`` (the Ops' message) for N-d
    ``image``, ``filters`` and ``top`` shapes (None entries: not given)."""
    from pytensor_nnet import shapes

    layout = (0, 1) + (shapes.FILL_ONE,) * (3 - convdim) + tuple(range(2, 2 + convdim))

    def sizes(shape):
        if shape is None:
            return np.full(5, shapes.UNKNOWN, dtype=np.int64)
        known = np.array([shapes.UNKNOWN if s is None else s for s in shape], dtype=np.int64)
        return shapes.pick_sizes(known, layout)

    message = shapes.conv_shape_error(
        convdim, num_groups, 0, sizes(image), sizes(filters), np.full(3, shapes.UNKNOWN, dtype=np.int64),
        sizes(top), geo.stride, geo.pad_before, geo.pad_after, geo.dilation, repr(border_mode), names,
    )
    if message:
        raise ValueError(message)


def conv_forward(
    x, w, border_mode="valid", subsample=None, filter_dilation=None, num_groups=1, filter_flip=True,
    buffer_bytes=corr.DEFAULT_BUFFER_BYTES,
):
    """Convolution (``filter_flip=True``) or correlation of ``x`` (N, C, *S) with ``w`` (M, C/g, *K)."""
    convdim, geo = _geometry(x.ndim, border_mode, subsample, filter_dilation)
    x, w = np.asarray(x), np.asarray(w)
    _check_shapes(convdim, geo, border_mode, num_groups, x.shape, w.shape, None,
                  ("x.shape", "w.shape", "top.shape", "subsample"))
    if filter_flip:
        w = flip_spatial(w, convdim)
    dtype = np.result_type(x, w)
    y = corr.corr_forward(
        as_3d_array(x.astype(dtype, copy=False), 2), as_3d_array(w.astype(dtype, copy=False), 2),
        geo.stride, geo.pad_before, geo.pad_after, geo.dilation, num_groups, buffer_bytes,
    )
    return y.reshape(y.shape[:2] + y.shape[5 - convdim:])


def conv_grad_inputs(
    w, top, input_spatial_shape, border_mode="valid", subsample=None, filter_dilation=None, num_groups=1,
    filter_flip=True, buffer_bytes=corr.DEFAULT_BUFFER_BYTES,
):
    """Gradient wrt the input of :func:`conv_forward`: (N, C, *input_spatial_shape) from ``top`` (N, M, *O)."""
    convdim, geo = _geometry(top.ndim, border_mode, subsample, filter_dilation)
    _check_shapes(convdim, geo, border_mode, num_groups, (None, None, *input_spatial_shape), np.shape(w),
                  np.shape(top), ("input_spatial_shape", "w.shape", "top.shape", "subsample"))
    if filter_flip:
        w = flip_spatial(w, convdim)
    dtype = np.result_type(w, top)
    dx = corr.corr_grad_inputs(
        as_3d_array(np.asarray(w, dtype=dtype), 2), as_3d_array(np.asarray(top, dtype=dtype), 2),
        as_3d_geometry(input_spatial_shape, 1),
        geo.stride, geo.pad_before, geo.pad_after, geo.dilation, num_groups, buffer_bytes,
    )
    return dx.reshape(dx.shape[:2] + dx.shape[5 - convdim:])


def conv_grad_weights(
    x, top, filter_spatial_shape, border_mode="valid", subsample=None, filter_dilation=None, num_groups=1,
    filter_flip=True, buffer_bytes=corr.DEFAULT_BUFFER_BYTES,
):
    """Gradient wrt the filters of :func:`conv_forward`: (M, C // g, *filter_spatial_shape)."""
    convdim, geo = _geometry(x.ndim, border_mode, subsample, filter_dilation)
    _check_shapes(convdim, geo, border_mode, num_groups, np.shape(x), (None, None, *filter_spatial_shape),
                  np.shape(top), ("x.shape", "filter_spatial_shape", "top.shape", "subsample"))
    dtype = np.result_type(x, top)
    dw = corr.corr_grad_weights(
        as_3d_array(np.asarray(x, dtype=dtype), 2), as_3d_array(np.asarray(top, dtype=dtype), 2),
        as_3d_geometry(filter_spatial_shape, 1),
        geo.stride, geo.pad_before, geo.pad_after, geo.dilation, num_groups, buffer_bytes,
    )
    dw = dw.reshape(dw.shape[:2] + dw.shape[5 - convdim:])
    return flip_spatial(dw, convdim) if filter_flip else dw
