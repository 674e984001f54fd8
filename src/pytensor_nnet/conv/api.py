"""User functions with the legacy signatures: ``conv2d``, ``conv3d`` and their gradients.

They only normalise arguments and apply the Ops of :mod:`pytensor_nnet.conv.ops`. One N-d
builder per function family; the 2d/3d functions fix ``convdim`` and keep the legacy
positional order and defaults.
"""

from __future__ import annotations

import warnings

import pytensor.tensor as pt

from pytensor_nnet import shapes
from pytensor_nnet.conv.ops import (
    FORWARD_NAMES,
    GRAD_INPUTS_NAMES,
    GRAD_WEIGHTS_NAMES,
    LEGACY_CLASSES,
    AbstractConv,
    AbstractConv_gradInputs,
    AbstractConv_gradWeights,
)


def _op(base, convdim, **params):
    cls = LEGACY_CLASSES.get((base, convdim))
    if cls is None:
        return base(convdim, **params)
    return cls(**params)


def _full_shape(shape, implied, name, n_lead):
    """``shape`` with its None leading entries (batch, channels) replaced by the sizes the
    operands imply, so that the given ones are checked when the function runs; the spatial
    entries (after ``n_lead``) are required."""
    shape = list(shape)
    for i, size in enumerate(shape):
        if size is None and i >= n_lead:
            raise ValueError(f"{name}[{i}] (a spatial size) is required; got {name}={tuple(shape)!r}")
        if size is None:
            shape[i] = implied[i]
    return shape


def _check_hint_length(hint, length, name):
    if hint is not None and len(tuple(hint)) != length:
        raise ValueError(f"{name} must have {length} entries; got {tuple(hint)!r}")


def conv_nd(
    input,
    filters,
    convdim,
    input_shape=None,
    filter_shape=None,
    border_mode="valid",
    subsample=None,
    filter_flip=True,
    filter_dilation=None,
    num_groups=1,
    unshared=False,
):
    """N-d forward convolution (``convdim`` spatial dims); see :func:`conv2d` for the parameters."""
    _check_hint_length(input_shape, convdim + 2, "input_shape")
    _check_hint_length(filter_shape, shapes.filter_ndim(convdim, unshared), "filter_shape")
    op = _op(
        AbstractConv,
        convdim,
        imshp=input_shape,
        kshp=filter_shape,
        border_mode=border_mode,
        subsample=subsample,
        filter_flip=filter_flip,
        filter_dilation=filter_dilation,
        num_groups=num_groups,
        unshared=unshared,
        arg_names=FORWARD_NAMES,
    )
    return op(pt.as_tensor_variable(input), pt.as_tensor_variable(filters))


def conv_nd_grad_wrt_inputs(
    output_grad,
    filters,
    input_shape,
    convdim,
    filter_shape=None,
    border_mode="valid",
    subsample=None,
    filter_flip=True,
    filter_dilation=None,
    num_groups=1,
    unshared=False,
    *,
    arg_names=GRAD_INPUTS_NAMES,
):
    """N-d gradient of a convolution wrt its input; see :func:`conv2d_grad_wrt_inputs`.

    ``arg_names`` (an :class:`~pytensor_nnet.conv.ops.ArgNames`) names the arguments in error
    messages, for the functions built on this one (``conv2d_transpose``).
    """
    if input_shape is None:
        raise ValueError(f"{arg_names.image_hint} is required: with strides the input size cannot be deduced")
    _check_hint_length(input_shape, convdim + 2, arg_names.image_hint)
    _check_hint_length(filter_shape, shapes.filter_ndim(convdim, unshared), arg_names.filters_hint)
    input_shape = tuple(input_shape)
    op = _op(
        AbstractConv_gradInputs,
        convdim,
        imshp=input_shape,
        kshp=filter_shape,
        border_mode=border_mode,
        subsample=subsample,
        filter_flip=filter_flip,
        filter_dilation=filter_dilation,
        num_groups=num_groups,
        unshared=unshared,
        arg_names=arg_names,
    )
    output_grad, filters = pt.as_tensor_variable(output_grad), pt.as_tensor_variable(filters)
    if output_grad.ndim != convdim + 2 or filters.ndim != shapes.filter_ndim(convdim, unshared):
        return op(filters, output_grad, list(input_shape[2:]))  # the Op names the wrong rank
    in_per_group = filters.shape[1 + convdim if unshared else 1]
    implied = (output_grad.shape[0], in_per_group * num_groups)
    return op(filters, output_grad, _full_shape(input_shape, implied, arg_names.image_hint, 2))


def conv_nd_grad_wrt_weights(
    input,
    output_grad,
    filter_shape,
    convdim,
    input_shape=None,
    border_mode="valid",
    subsample=None,
    filter_flip=True,
    filter_dilation=None,
    num_groups=1,
    unshared=False,
):
    """N-d gradient of a convolution wrt its filters; see :func:`conv2d_grad_wrt_weights`."""
    if filter_shape is None:
        raise ValueError("filter_shape is required: the filter size cannot always be deduced")
    _check_hint_length(input_shape, convdim + 2, "input_shape")
    _check_hint_length(filter_shape, shapes.filter_ndim(convdim, unshared), "filter_shape")
    filter_shape = tuple(filter_shape)
    op = _op(
        AbstractConv_gradWeights,
        convdim,
        imshp=input_shape,
        kshp=filter_shape,
        border_mode=border_mode,
        subsample=subsample,
        filter_flip=filter_flip,
        filter_dilation=filter_dilation,
        num_groups=num_groups,
        unshared=unshared,
        arg_names=GRAD_WEIGHTS_NAMES,
    )
    input, output_grad = pt.as_tensor_variable(input), pt.as_tensor_variable(output_grad)
    if input.ndim != convdim + 2 or output_grad.ndim != convdim + 2:
        return op(input, output_grad, list(filter_shape[-convdim:]))  # the Op names the wrong rank
    region = tuple(output_grad.shape[2 + i] for i in range(convdim)) if unshared else ()
    implied = (output_grad.shape[1], *region, input.shape[1] // num_groups)
    return op(input, output_grad, _full_shape(filter_shape, implied, "filter_shape", len(implied)))


def conv2d(
    input,
    filters,
    input_shape=None,
    filter_shape=None,
    border_mode="valid",
    subsample=(1, 1),
    filter_flip=True,
    image_shape=None,
    filter_dilation=(1, 1),
    num_groups=1,
    unshared=False,
    **kwargs,
):
    """Convolve a mini-batch of 2d feature-map stacks with a set of 2d filters (CNN layer).

    Parameters
    ----------
    input : 4-d tensor (batch, in_channels, rows, cols)
    filters : 4-d tensor (out_channels, in_channels // num_groups, filter_rows, filter_cols)
        or, unshared, 6-d (out_channels, out_rows, out_cols, in_channels // num_groups,
        filter_rows, filter_cols)
    input_shape, filter_shape : tuple of 4 (int or None), optional (filter_shape: 6 unshared)
        Shape hints, checked when the graph is built (static) and when it runs.
    border_mode : str, int or tuple
        ``"valid"`` (no padding), ``"full"`` (pad kernel-1), ``"half"`` (pad kernel//2), an int
        (symmetric), ``(int, int)`` per axis, or pairs ``((top, bottom), (left, right))``
        for asymmetric padding (mixed forms like ``(1, (2, 3))`` too).
    subsample : tuple of 2 ints
        Strides.
    filter_flip : bool
        True (default): convolution (flip the filters); False: cross-correlation.
    image_shape : tuple, optional
        Deprecated alias of ``input_shape``.
    filter_dilation : tuple of 2 ints
        Dilation of the filters.
    num_groups : int
        Grouped convolution.
    unshared : bool
        Locally connected convolution: a different filter bank at every output position
        (groups, strides, padding and dilation all supported).
    **kwargs
        Accepted for backward compatibility and ignored.

    Returns
    -------
    4-d tensor (batch, out_channels, out_rows, out_cols)
    """
    if image_shape is not None:
        warnings.warn("image_shape is deprecated in conv2d; use input_shape", DeprecationWarning, stacklevel=2)
        if input_shape is not None:
            raise ValueError("give input_shape or its deprecated alias image_shape, not both")
        input_shape = image_shape
    return conv_nd(
        input,
        filters,
        2,
        input_shape,
        filter_shape,
        border_mode,
        subsample,
        filter_flip,
        filter_dilation,
        num_groups,
        unshared,
    )


def conv3d(
    input,
    filters,
    input_shape=None,
    filter_shape=None,
    border_mode="valid",
    subsample=(1, 1, 1),
    filter_flip=True,
    filter_dilation=(1, 1, 1),
    num_groups=1,
):
    """Convolve a mini-batch of 3d feature-map stacks with a set of 3d filters.

    ``input`` (batch, in_channels, depth, rows, cols), ``filters`` (out_channels,
    in_channels // num_groups, fd, fr, fc) -> (batch, out_channels, od, or, oc). Parameters as
    :func:`conv2d` with three entries per axis; ``border_mode`` also accepts per-axis
    ``(before, after)`` pairs (an extension: the legacy conv3d only had symmetric padding).
    """
    return conv_nd(
        input,
        filters,
        3,
        input_shape,
        filter_shape,
        border_mode,
        subsample,
        filter_flip,
        filter_dilation,
        num_groups,
    )


def conv2d_grad_wrt_inputs(
    output_grad,
    filters,
    input_shape,
    filter_shape=None,
    border_mode="valid",
    subsample=(1, 1),
    filter_flip=True,
    filter_dilation=(1, 1),
    num_groups=1,
    unshared=False,
):
    """Gradient of a 2d convolution wrt its input (a transposed convolution).

    ``output_grad`` (batch, out_channels, out_rows, out_cols), ``filters`` as in :func:`conv2d`,
    ``input_shape`` (batch, in_channels, rows, cols) with the last two entries required (ints
    or symbolic scalars) -> (batch, in_channels, rows, cols).
    """
    return conv_nd_grad_wrt_inputs(
        output_grad,
        filters,
        input_shape,
        2,
        filter_shape,
        border_mode,
        subsample,
        filter_flip,
        filter_dilation,
        num_groups,
        unshared,
    )


def conv2d_grad_wrt_weights(
    input,
    output_grad,
    filter_shape,
    input_shape=None,
    border_mode="valid",
    subsample=(1, 1),
    filter_flip=True,
    filter_dilation=(1, 1),
    num_groups=1,
    unshared=False,
):
    """Gradient of a 2d convolution wrt its filters.

    ``input`` (batch, in_channels, rows, cols), ``output_grad`` (batch, out_channels, out_rows,
    out_cols), ``filter_shape`` (out_channels, in_channels // num_groups, fr, fc) with the last
    two entries required -> (out_channels, in_channels // num_groups, fr, fc).
    """
    return conv_nd_grad_wrt_weights(
        input,
        output_grad,
        filter_shape,
        2,
        input_shape,
        border_mode,
        subsample,
        filter_flip,
        filter_dilation,
        num_groups,
        unshared,
    )


def conv3d_grad_wrt_inputs(
    output_grad,
    filters,
    input_shape,
    filter_shape=None,
    border_mode="valid",
    subsample=(1, 1, 1),
    filter_flip=True,
    filter_dilation=(1, 1, 1),
    num_groups=1,
):
    """Gradient of a 3d convolution wrt its input; see :func:`conv2d_grad_wrt_inputs` (5-d shapes)."""
    return conv_nd_grad_wrt_inputs(
        output_grad,
        filters,
        input_shape,
        3,
        filter_shape,
        border_mode,
        subsample,
        filter_flip,
        filter_dilation,
        num_groups,
    )


def conv3d_grad_wrt_weights(
    input,
    output_grad,
    filter_shape,
    input_shape=None,
    border_mode="valid",
    subsample=(1, 1, 1),
    filter_flip=True,
    filter_dilation=(1, 1, 1),
    num_groups=1,
):
    """Gradient of a 3d convolution wrt its filters; see :func:`conv2d_grad_wrt_weights` (5-d shapes)."""
    return conv_nd_grad_wrt_weights(
        input,
        output_grad,
        filter_shape,
        3,
        input_shape,
        border_mode,
        subsample,
        filter_flip,
        filter_dilation,
        num_groups,
    )
