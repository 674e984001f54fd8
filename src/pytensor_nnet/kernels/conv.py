"""Framework-free N-d convolution (1 to 3 spatial dims) on numpy arrays, legacy semantics.

These wrappers turn the legacy parameters (``border_mode``, ``subsample``,
``filter_dilation``, ``num_groups``, ``filter_flip``) into the 3-d geometry of the compiled
kernels in ``kernels.corr`` and reshape arrays accordingly (:func:`run_3d`). The Ops'
``perform`` and the Numba dispatch both use :func:`kernel_geometry`, so they run the very same
compiled code.

Shapes: images ``(N, C, *S)``, filters ``(M, C // num_groups, *K)``, outputs ``(N, M, *O)``.
Inconsistent shapes raise ``ValueError`` with the values, the message of the Ops
(``shapes.conv_shape_error``), before any kernel runs.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pytensor_nnet import shapes
from pytensor_nnet.kernels import corr, select
from pytensor_nnet.kernels import unshared as unshared_kernels
from pytensor_nnet.kernels.im2col import as_3d_array, as_3d_geometry


class KernelGeometry(NamedTuple):
    """3-d geometry of a convolution (all 3-tuples of ints; the padding may hold the codes
    ``shapes.PAD_FULL`` / ``shapes.PAD_HALF``, resolved once the kernel size is known)."""

    stride: tuple
    pad_before: tuple
    pad_after: tuple
    dilation: tuple


def kernel_geometry(border_mode, subsample, filter_dilation) -> KernelGeometry:
    """3-d kernel geometry from a *normalized* border mode (see ``shapes.normalize_border_mode``)
    and per-axis ``subsample`` / ``filter_dilation`` tuples of the same length."""
    convdim = len(subsample)
    if isinstance(border_mode, str):
        before = after = (shapes.PAD_CODES[border_mode],) * convdim
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


def run_3d(
    kind,
    a,
    b,
    size,
    convdim,
    geo,
    num_groups,
    unshared=False,
    filter_flip=False,
    buffer_bytes=corr.DEFAULT_BUFFER_BYTES,
    exclude=None,
):
    """Run the compiled kernel ``kind`` on N-d arrays: lift them to their 3-d views, flip the
    filters (``filter_flip``), resolve the padding for the kernel size, call the kernel of
    ``kernels.corr`` (or ``kernels.unshared``) and drop the result back to N-d.

    ``kind`` and its operands:

    - ``"forward"``: ``a`` images (N, C, *S), ``b`` filters; returns (N, M, *O);
    - ``"grad_inputs"``: ``a`` filters, ``b`` output gradient (N, M, *O), ``size`` the input's
      spatial shape; returns (N, C, *size);
    - ``"grad_weights"``: ``a`` images, ``b`` output gradient, ``size`` the filters' spatial
      shape; returns the filters' shape.

    Filters are (M, C // num_groups, *K), or with ``unshared`` (M, *O, C // num_groups, *K).
    ``geo`` is a :class:`KernelGeometry`. ``exclude``: names of algorithms not to use (see
    ``kernels.select``; default: the ``PYTENSOR_NNET_CONV_EXCLUDE`` environment variable).
    """
    prefix = "unshared_" if unshared else "corr_"
    kernel = getattr(unshared_kernels if unshared else corr, prefix + kind)

    def filters_3d(w):
        w = flip_spatial(w, convdim) if filter_flip else w
        return unshared_kernels.as_3d_unshared(w, convdim) if unshared else as_3d_array(w, 2)

    if kind == "forward":
        ksize = as_3d_geometry(b.shape[b.ndim - convdim :], 1)
        args = (as_3d_array(a, 2), filters_3d(b))
    elif kind == "grad_inputs":
        ksize = as_3d_geometry(a.shape[a.ndim - convdim :], 1)
        args = (filters_3d(a), as_3d_array(b, 2), as_3d_geometry(size, 1))
    else:
        ksize = as_3d_geometry(size, 1)
        args = (as_3d_array(a, 2), as_3d_array(b, 2), ksize)
    pad_lo, pad_hi = shapes.resolve_pads(geo.pad_before, geo.pad_after, ksize, geo.dilation)
    if unshared:
        out = kernel(*args, geo.stride, pad_lo, pad_hi, geo.dilation, num_groups, buffer_bytes)
    else:
        excluded = select.excluded_mask(exclude)
        out = kernel(*args, geo.stride, pad_lo, pad_hi, geo.dilation, num_groups, buffer_bytes, excluded)
    if kind != "grad_weights":
        return out.reshape(out.shape[:2] + out.shape[5 - convdim :])
    if unshared:
        out = unshared_kernels.from_3d_unshared(out, convdim)
    else:
        out = out.reshape(out.shape[:2] + out.shape[5 - convdim :])
    return flip_spatial(out, convdim) if filter_flip else out


def _geometry(x_ndim, border_mode, subsample, filter_dilation):
    convdim = x_ndim - 2
    subsample = tuple(subsample or (1,) * convdim)
    filter_dilation = tuple(filter_dilation or (1,) * convdim)
    for name, value in (("subsample", subsample), ("filter_dilation", filter_dilation)):
        if len(value) != convdim or any(v < 1 for v in value):
            raise ValueError(f"{name} must be {convdim} positive ints; got {value!r}")
    return convdim, kernel_geometry(shapes.normalize_border_mode(border_mode, convdim), subsample, filter_dilation)


def _check_shapes(convdim, geo, border_mode, num_groups, image, filters, top, names):
    """Raise the shared message of ``shapes.conv_shape_error`` (the Ops' message) for N-d
    ``image``, ``filters`` and ``top`` shapes (None entries: not given)."""
    layout = (0, 1) + (shapes.FILL_ONE,) * (3 - convdim) + tuple(range(2, 2 + convdim))

    def sizes(shape):
        if shape is None:
            return np.full(5, shapes.UNKNOWN, dtype=np.int64)
        known = np.array([shapes.UNKNOWN if s is None else s for s in shape], dtype=np.int64)
        return shapes.pick_sizes(known, layout)

    message = shapes.conv_shape_error(
        convdim,
        num_groups,
        0,
        sizes(image),
        sizes(filters),
        np.full(3, shapes.UNKNOWN, dtype=np.int64),
        sizes(top),
        geo.stride,
        geo.pad_before,
        geo.pad_after,
        geo.dilation,
        repr(border_mode),
        names,
    )
    if message:
        raise shapes.ShapeMismatchError(message)


def conv_forward(
    x,
    w,
    border_mode="valid",
    subsample=None,
    filter_dilation=None,
    num_groups=1,
    filter_flip=True,
    buffer_bytes=corr.DEFAULT_BUFFER_BYTES,
    exclude=None,
):
    """Convolution (``filter_flip=True``) or correlation of ``x`` (N, C, *S) with ``w`` (M, C/g, *K).

    ``exclude``: names of algorithms not to use (see ``kernels.select``)."""
    convdim, geo = _geometry(x.ndim, border_mode, subsample, filter_dilation)
    x, w = np.asarray(x), np.asarray(w)
    _check_shapes(
        convdim, geo, border_mode, num_groups, x.shape, w.shape, None, ("x.shape", "w.shape", "top.shape", "subsample")
    )
    dtype = np.result_type(x, w)
    return run_3d(
        "forward",
        x.astype(dtype, copy=False),
        w.astype(dtype, copy=False),
        None,
        convdim,
        geo,
        num_groups,
        filter_flip=filter_flip,
        buffer_bytes=buffer_bytes,
        exclude=exclude,
    )


def conv_grad_inputs(
    w,
    top,
    input_spatial_shape,
    border_mode="valid",
    subsample=None,
    filter_dilation=None,
    num_groups=1,
    filter_flip=True,
    buffer_bytes=corr.DEFAULT_BUFFER_BYTES,
    exclude=None,
):
    """Gradient wrt the input of :func:`conv_forward`: (N, C, *input_spatial_shape) from ``top`` (N, M, *O)."""
    convdim, geo = _geometry(top.ndim, border_mode, subsample, filter_dilation)
    _check_shapes(
        convdim,
        geo,
        border_mode,
        num_groups,
        (None, None, *input_spatial_shape),
        np.shape(w),
        np.shape(top),
        ("input_spatial_shape", "w.shape", "top.shape", "subsample"),
    )
    dtype = np.result_type(w, top)
    return run_3d(
        "grad_inputs",
        np.asarray(w, dtype=dtype),
        np.asarray(top, dtype=dtype),
        input_spatial_shape,
        convdim,
        geo,
        num_groups,
        filter_flip=filter_flip,
        buffer_bytes=buffer_bytes,
        exclude=exclude,
    )


def conv_grad_weights(
    x,
    top,
    filter_spatial_shape,
    border_mode="valid",
    subsample=None,
    filter_dilation=None,
    num_groups=1,
    filter_flip=True,
    buffer_bytes=corr.DEFAULT_BUFFER_BYTES,
    exclude=None,
):
    """Gradient wrt the filters of :func:`conv_forward`: (M, C // g, *filter_spatial_shape)."""
    convdim, geo = _geometry(x.ndim, border_mode, subsample, filter_dilation)
    _check_shapes(
        convdim,
        geo,
        border_mode,
        num_groups,
        np.shape(x),
        (None, None, *filter_spatial_shape),
        np.shape(top),
        ("x.shape", "filter_spatial_shape", "top.shape", "subsample"),
    )
    dtype = np.result_type(x, top)
    return run_3d(
        "grad_weights",
        np.asarray(x, dtype=dtype),
        np.asarray(top, dtype=dtype),
        filter_spatial_shape,
        convdim,
        geo,
        num_groups,
        filter_flip=filter_flip,
        buffer_bytes=buffer_bytes,
        exclude=exclude,
    )
