"""Depthwise-separable convolutions: ``separable_conv2d`` and ``separable_conv3d``.

A depthwise convolution (one group per input channel, ``depthwise_filters.shape[0] //
num_channels`` filters each) followed by a pointwise (1x1) convolution that mixes the
channels; both are the core convolution Ops, so gradients and backends come with them.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from pytensor_nnet.conv.api import conv_nd
from pytensor_nnet.graph import constant_int


def _static_shape(var, hint, name):
    shape = list(var.type.shape)
    if hint is not None:
        hint = tuple(hint)
        if len(hint) != var.ndim:
            raise ValueError(f"{name} must have {var.ndim} entries; got {hint!r}")
        shape = [s if s is not None else constant_int(h) for s, h in zip(shape, hint)]
    return shape


def _check_chain(input, depthwise, pointwise, num_channels, convdim, input_shape, depthwise_shape, pointwise_shape):
    """ValueErrors (naming the argument) for filter shapes that do not chain."""
    if not isinstance(num_channels, int | np.integer) or isinstance(num_channels, bool) or num_channels < 1:
        raise ValueError(f"num_channels must be a positive int; got {num_channels!r}")
    for var, name in ((input, "input"), (depthwise, "depthwise_filters"), (pointwise, "pointwise_filters")):
        if var.ndim != convdim + 2:
            raise ValueError(f"{name} must be a {convdim + 2}-d tensor; got a {var.ndim}-d tensor")
    x_shape = _static_shape(input, input_shape, "input_shape")
    d_shape = _static_shape(depthwise, depthwise_shape, "depthwise_filter_shape")
    p_shape = _static_shape(pointwise, pointwise_shape, "pointwise_filter_shape")
    if x_shape[1] is not None and x_shape[1] != num_channels:
        raise ValueError(f"input channels (input.shape[1] = {x_shape[1]}) must equal num_channels ({num_channels})")
    if d_shape[1] is not None and d_shape[1] != 1:
        raise ValueError(
            f"depthwise_filters must have one input channel per filter (depthwise_filters.shape[1] = "
            f"{d_shape[1]}, expected 1)"
        )
    if d_shape[0] is not None and d_shape[0] % num_channels:
        raise ValueError(
            f"depthwise_filters.shape[0] ({d_shape[0]}) must be a multiple of num_channels ({num_channels}): "
            "each input channel gets the same number of depthwise filters"
        )
    if p_shape[1] is not None and d_shape[0] is not None and p_shape[1] != d_shape[0]:
        raise ValueError(
            f"pointwise_filters.shape[1] ({p_shape[1]}) must equal the depthwise output channels "
            f"(depthwise_filters.shape[0] = {d_shape[0]})"
        )
    if any(s is not None and s != 1 for s in p_shape[2:]):
        raise ValueError(f"pointwise_filters must be 1x1 filters; got spatial shape {tuple(p_shape[2:])}")


def separable_conv_nd(
    input,
    depthwise_filters,
    pointwise_filters,
    num_channels,
    convdim,
    input_shape=None,
    depthwise_filter_shape=None,
    pointwise_filter_shape=None,
    border_mode="valid",
    subsample=None,
    filter_flip=True,
    filter_dilation=None,
):
    """N-d depthwise-separable convolution; see :func:`separable_conv2d`."""
    input = pt.as_tensor_variable(input)
    depthwise_filters = pt.as_tensor_variable(depthwise_filters)
    pointwise_filters = pt.as_tensor_variable(pointwise_filters)
    _check_chain(
        input,
        depthwise_filters,
        pointwise_filters,
        num_channels,
        convdim,
        input_shape,
        depthwise_filter_shape,
        pointwise_filter_shape,
    )
    depthwise = conv_nd(
        input,
        depthwise_filters,
        convdim,
        input_shape,
        depthwise_filter_shape,
        border_mode,
        subsample,
        filter_flip,
        filter_dilation,
        num_groups=int(num_channels),
    )
    return conv_nd(depthwise, pointwise_filters, convdim, None, pointwise_filter_shape, "valid", None, filter_flip)


def separable_conv2d(
    input,
    depthwise_filters,
    pointwise_filters,
    num_channels,
    input_shape=None,
    depthwise_filter_shape=None,
    pointwise_filter_shape=None,
    border_mode="valid",
    subsample=(1, 1),
    filter_flip=True,
    filter_dilation=(1, 1),
):
    """Depthwise convolution of each input channel, then a pointwise (1x1) channel mix.

    Parameters
    ----------
    input : 4-d tensor (batch, num_channels, rows, cols)
    depthwise_filters : 4-d tensor (depth_channels, 1, filter_rows, filter_cols)
        ``depth_channels`` a multiple of ``num_channels``.
    pointwise_filters : 4-d tensor (out_channels, depth_channels, 1, 1)
    num_channels : int
        Number of input channels (the groups of the depthwise convolution).
    input_shape, depthwise_filter_shape, pointwise_filter_shape : tuple of 4, optional
        Static shape hints.
    border_mode, subsample, filter_dilation
        Of the depthwise convolution only (see :func:`conv2d`).
    filter_flip : bool
        For both convolutions.

    Returns
    -------
    4-d tensor (batch, out_channels, out_rows, out_cols)

    Raises
    ------
    ValueError
        Filter shapes that do not chain (depthwise filters with more than one input channel,
        a count not a multiple of ``num_channels``, pointwise filters whose input channels
        differ from the depthwise outputs or that are not 1x1), or ``input`` channels other
        than ``num_channels``.
    """
    return separable_conv_nd(
        input,
        depthwise_filters,
        pointwise_filters,
        num_channels,
        2,
        input_shape,
        depthwise_filter_shape,
        pointwise_filter_shape,
        border_mode,
        subsample,
        filter_flip,
        filter_dilation,
    )


def separable_conv3d(
    input,
    depthwise_filters,
    pointwise_filters,
    num_channels,
    input_shape=None,
    depthwise_filter_shape=None,
    pointwise_filter_shape=None,
    border_mode="valid",
    subsample=(1, 1, 1),
    filter_flip=True,
    filter_dilation=(1, 1, 1),
):
    """3d depthwise-separable convolution; see :func:`separable_conv2d` (5-d tensors:
    ``depthwise_filters`` (depth_channels, 1, fd, fr, fc), ``pointwise_filters``
    (out_channels, depth_channels, 1, 1, 1))."""
    return separable_conv_nd(
        input,
        depthwise_filters,
        pointwise_filters,
        num_channels,
        3,
        input_shape,
        depthwise_filter_shape,
        pointwise_filter_shape,
        border_mode,
        subsample,
        filter_flip,
        filter_dilation,
    )
