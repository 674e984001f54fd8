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


def _check_output_shape(
    output_shape,
    input,
    filters,
    filter_shape,
    convdim,
    border_mode,
    input_dilation,
    filter_dilation,
    num_groups,
    unshared,
):
    """Static checks that a forward convolution of ``output_shape`` gives ``input``'s shape."""
    if output_shape is None or len(tuple(output_shape)) != convdim + 2:
        raise ValueError(
            f"output_shape must have {convdim + 2} entries (batch, channels, *spatial); got {output_shape!r}"
        )
    out = tuple(constant_int(s) for s in output_shape)
    for i, (given, known) in enumerate(zip(output_shape, out)):
        if i >= 2 and given is None:
            raise ValueError(f"output_shape[{i}] (a spatial size) is required: several sizes are possible")
        if known is not None and known < (0 if i < 2 else 1):
            raise ValueError(f"output_shape entries must be positive; got output_shape={output_shape!r}")
    kern = list(filters.type.shape)
    if filter_shape is not None:
        kern = [k if k is not None else constant_int(h) for k, h in zip(kern, filter_shape)]
    in_shape = input.type.shape
    in_per_group = kern[1 + convdim] if unshared else kern[1]
    if out[1] is not None and in_per_group is not None and out[1] != in_per_group * num_groups:
        raise ValueError(
            f"output_shape[1] ({out[1]}) must equal the filters' output channels "
            f"(filters.shape[{1 + convdim if unshared else 1}] = {in_per_group}) * num_groups ({num_groups})"
        )
    if out[0] is not None and in_shape[0] is not None and out[0] != in_shape[0]:
        raise ValueError(f"output_shape[0] ({out[0]}) must equal the batch size of input ({in_shape[0]})")
    if kern[0] is not None and in_shape[1] is not None and kern[0] != in_shape[1]:
        raise ValueError(f"input channels (input.shape[1] = {in_shape[1]}) must equal filters.shape[0] ({kern[0]})")
    if shapes.check_conv_gradinputs_shape(out, tuple(kern), in_shape, border_mode, input_dilation, filter_dilation):
        return
    kernel = kern[len(kern) - convdim :]
    ranges = None
    if None not in kernel and None not in in_shape[2:]:
        pads = shapes.conv_padding(border_mode, kernel, filter_dilation)
        ranges = [
            _valid_sizes(n, k, s, d, p)
            for n, k, s, d, p in zip(in_shape[2:], kernel, input_dilation, filter_dilation, pads)
        ]
    raise ValueError(
        f"output_shape {tuple(output_shape)} is not a possible output for an input of spatial shape "
        f"{tuple(in_shape[2:])}: the forward convolution of an image of that shape (filters "
        f"{tuple(kern)}, border_mode {border_mode!r}, stride input_dilation={input_dilation}, "
        f"filter_dilation={filter_dilation}) does not give input's shape; possible output_shape "
        f"spatial sizes per axis (inclusive ranges): {ranges}"
    )


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
    """N-d transposed convolution (``convdim`` spatial dims); see :func:`conv2d_transpose`."""
    input, filters = pt.as_tensor_variable(input), pt.as_tensor_variable(filters)
    input_dilation = shapes.per_axis(input_dilation or 1, convdim, "input_dilation", wording=shapes.axes.TRANSPOSE)
    filter_dilation = shapes.per_axis(filter_dilation or 1, convdim, "filter_dilation", wording=shapes.axes.TRANSPOSE)
    border_mode = shapes.normalize_border_mode(border_mode, convdim)
    if input.ndim != convdim + 2:
        raise ValueError(f"input must be a {convdim + 2}-d tensor; got a {input.ndim}-d tensor")
    if filters.ndim != shapes.filter_ndim(convdim, unshared):
        raise ValueError(
            f"filters must be a {shapes.filter_ndim(convdim, unshared)}-d tensor"
            f"{' (unshared)' if unshared else ''}; got a {filters.ndim}-d tensor"
        )
    if filter_shape is not None and len(tuple(filter_shape)) != filters.ndim:
        raise ValueError(f"filter_shape must have {filters.ndim} entries; got {tuple(filter_shape)!r}")
    _check_output_shape(
        output_shape,
        input,
        filters,
        filter_shape,
        convdim,
        border_mode,
        input_dilation,
        filter_dilation,
        num_groups,
        unshared,
    )
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
