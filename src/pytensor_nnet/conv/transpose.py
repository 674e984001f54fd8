"""Transposed convolutions: ``conv2d_transpose`` and ``conv3d_transpose``.

A transposed convolution ("deconvolution", PyTorch's ``conv_transpose2d``) is the gradient
of a forward convolution with respect to its input: ``input`` plays the forward output,
``output_shape`` the forward input shape, ``input_dilation`` the forward stride and
``border_mode`` the forward padding (cropping here). It is built on
:class:`~pytensor_nnet.conv.ops.AbstractConv_gradInputs`, so its own gradients are
ordinary convolutions and it runs on every backend of the core Ops.
"""

from __future__ import annotations

import pytensor.tensor as pt

from pytensor_nnet import shapes
from pytensor_nnet.conv.api import conv_nd_grad_wrt_inputs
from pytensor_nnet.conv.ops import TRANSPOSE_NAMES
from pytensor_nnet.graph import constant_int


def _valid_sizes(in_size, kernel, stride, dilation, pads):
    """Forward-input sizes whose convolution has ``in_size`` outputs: ``[lo, lo + stride)``."""
    lo = (in_size - 1) * stride + shapes.dilated_kernel_size(kernel, dilation) - pads[0] - pads[1]
    return lo, lo + stride - 1


def _check_output_shape(output_shape, convdim):
    """The argument checks of ``output_shape`` (length, required and positive entries); the
    geometry is the gradient Op's to check, with the forward convolution's messages."""
    if output_shape is None or len(tuple(output_shape)) != convdim + 2:
        raise ValueError(
            f"output_shape must have {convdim + 2} entries (batch, channels, *spatial); got {output_shape!r}"
        )
    for i, given in enumerate(output_shape):
        known = constant_int(given)
        if i >= 2 and given is None:
            raise ValueError(f"output_shape[{i}] (a spatial size) is required: several sizes are possible")
        if known is not None and known < (0 if i < 2 else 1):
            raise ValueError(f"output_shape entries must be positive; got output_shape={output_shape!r}")


def _possible_sizes(input, filters, filter_shape, convdim, border_mode, input_dilation, filter_dilation):
    """Inclusive ranges of the spatial ``output_shape`` sizes possible for ``input``'s static
    spatial shape (None unless the sizes are static): the hint of a mismatch message."""
    kernel = list(filters.type.shape[filters.ndim - convdim :])
    if filter_shape is not None:
        hint = tuple(filter_shape)[len(tuple(filter_shape)) - convdim :]
        kernel = [k if k is not None else constant_int(h) for k, h in zip(kernel, hint)]
    in_spatial = input.type.shape[2:]
    if None in kernel or None in in_spatial:
        return None
    stride = shapes.per_axis(input_dilation, convdim, "input_dilation", default=1, wording=shapes.axes.TRANSPOSE)
    dilation = shapes.per_axis(filter_dilation, convdim, "filter_dilation", default=1, wording=shapes.axes.TRANSPOSE)
    pads = shapes.conv_padding(shapes.normalize_border_mode(border_mode, convdim), kernel, dilation)
    return [_valid_sizes(*sizes) for sizes in zip(in_spatial, kernel, stride, dilation, pads)]


def conv_nd_transpose(
    input,
    filters,
    output_shape,
    convdim,
    filter_shape=None,
    border_mode="valid",
    input_dilation=None,
    filter_flip=True,
    filter_dilation=None,
    num_groups=1,
    unshared=False,
):
    """N-d transposed convolution (``convdim`` spatial dims); see :func:`conv2d_transpose`.

    Every geometry argument is normalised and checked once, by the gradient Op (with the
    names of this function); a spatial size mismatch adds the possible ``output_shape`` sizes.
    """
    input, filters = pt.as_tensor_variable(input), pt.as_tensor_variable(filters)
    if input.ndim != convdim + 2:
        raise ValueError(f"input must be a {convdim + 2}-d tensor; got a {input.ndim}-d tensor")
    if filters.ndim != shapes.filter_ndim(convdim, unshared):
        raise ValueError(
            f"filters must be a {shapes.filter_ndim(convdim, unshared)}-d tensor"
            f"{' (unshared)' if unshared else ''}; got a {filters.ndim}-d tensor"
        )
    _check_output_shape(output_shape, convdim)
    try:
        return conv_nd_grad_wrt_inputs(
            input,
            filters,
            tuple(output_shape),
            convdim,
            filter_shape,
            border_mode,
            input_dilation,
            filter_flip,
            filter_dilation,
            num_groups,
            unshared,
            arg_names=TRANSPOSE_NAMES,
        )
    except shapes.ShapeMismatchError as error:
        possible = None
        if "spatial" in str(error):
            args = (border_mode, input_dilation, filter_dilation)
            possible = _possible_sizes(input, filters, filter_shape, convdim, *args)
        if possible is None:
            raise
        raise shapes.ShapeMismatchError(
            f"output_shape {tuple(output_shape)} is not a possible output for an input of spatial shape "
            f"{tuple(input.type.shape[2:])}: {error}; possible output_shape spatial sizes per axis "
            f"(inclusive ranges): {possible}"
        ) from None


def conv2d_transpose(
    input,
    filters,
    output_shape,
    filter_shape=None,
    border_mode="valid",
    input_dilation=(1, 1),
    filter_flip=True,
    filter_dilation=(1, 1),
    num_groups=1,
    unshared=False,
):
    """Transposed 2d convolution of a mini-batch of feature-map stacks (a "deconvolution").

    Parameters
    ----------
    input : 4-d tensor (batch, in_channels, in_rows, in_cols)
    filters : 4-d tensor (in_channels, out_channels // num_groups, filter_rows, filter_cols)
        Note the channel order, reversed with respect to :func:`conv2d` (these are the filters
        of the forward convolution this one transposes). Unshared: 6-d (in_channels, in_rows,
        in_cols, out_channels // num_groups, filter_rows, filter_cols).
    output_shape : tuple of 4 (batch, out_channels, out_rows, out_cols)
        Required: with ``input_dilation > 1`` several sizes are possible. The first two
        entries may be None; the last two may be symbolic scalars.
    filter_shape : tuple of 4 (or 6) ints/None, optional
        Static shape hint of ``filters``.
    border_mode : str, int or tuple
        The ``border_mode`` of the corresponding forward convolution: padding there is
        cropping here (``"valid"``: none, ``"full"``: the most).
    input_dilation : tuple of 2 ints
        The stride of the corresponding forward convolution (PyTorch's ``stride``).
    filter_flip : bool
        True (default): convolution; False: cross-correlation (PyTorch's convention).
    filter_dilation : tuple of 2 ints
    num_groups : int
    unshared : bool
        Locally connected filters (one per input position).

    Returns
    -------
    4-d tensor with shape ``output_shape``.

    Raises
    ------
    ValueError
        When ``output_shape`` is not a shape whose forward convolution gives ``input``'s shape
        (checked when the graph is built if the shapes are static, when it runs otherwise).

    Notes
    -----
    PyTorch's ``conv_transpose2d(x, w, stride=s, padding=p, output_padding=q, groups=g,
    dilation=d)`` is ``conv2d_transpose(x, w, output_shape, border_mode=p,
    input_dilation=s, filter_flip=False, filter_dilation=d, num_groups=g)`` with
    ``output_shape[2:] = (in - 1) * s - 2 * p + d * (k - 1) + 1 + q``.
    """
    return conv_nd_transpose(
        input,
        filters,
        output_shape,
        2,
        filter_shape,
        border_mode,
        input_dilation,
        filter_flip,
        filter_dilation,
        num_groups,
        unshared,
    )


def conv3d_transpose(
    input,
    filters,
    output_shape,
    filter_shape=None,
    border_mode="valid",
    input_dilation=(1, 1, 1),
    filter_flip=True,
    filter_dilation=(1, 1, 1),
    num_groups=1,
):
    """Transposed 3d convolution; see :func:`conv2d_transpose` (5-d tensors, 3 entries per axis).

    ``input`` (batch, in_channels, d, r, c), ``filters`` (in_channels,
    out_channels // num_groups, fd, fr, fc), ``output_shape`` (batch, out_channels, od, or, oc).
    (Not in the legacy API; PyTorch's ``conv_transpose3d`` with ``filter_flip=False``.)
    """
    return conv_nd_transpose(
        input,
        filters,
        output_shape,
        3,
        filter_shape,
        border_mode,
        input_dilation,
        filter_flip,
        filter_dilation,
        num_groups,
    )
