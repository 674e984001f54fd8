"""Causal 1-d convolution (WaveNet style), on the N-d core with one spatial dimension."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from pytensor_nnet.conv.api import conv_nd
from pytensor_nnet.graph import constant_int


def _positive_int(value, name):
    if isinstance(value, tuple | list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}")
    return int(value)


def causal_conv1d(
    input,
    filters,
    filter_shape,
    input_shape=None,
    subsample=1,
    filter_flip=True,
    filter_dilation=1,
    num_groups=1,
    unshared=False,
):
    """(Dilated) causal convolution: output ``t`` depends only on inputs ``<= t``.

    The input is padded on the left with ``(filter_length - 1) * filter_dilation`` zeros, then
    convolved ("valid"); with ``subsample=1`` the output is as long as the input. See
    WaveNet (https://arxiv.org/abs/1609.03499), section 2.1.

    Parameters
    ----------
    input : 3-d tensor (batch, in_channels, length)
    filters : 3-d tensor (out_channels, in_channels // num_groups, filter_length)
        Unshared: 4-d (out_channels, out_length, in_channels // num_groups, filter_length),
        one filter bank per output step (``out_length = (length - 1) // subsample + 1``).
    filter_shape : tuple of 3 (4 unshared)
        Required: the filter length (last entry, an int or a symbolic int scalar) sets the
        padding. Other entries may be None.
    input_shape : tuple of 3, optional
    subsample : int
        Stride.
    filter_flip : bool
    filter_dilation : int
    num_groups : int
    unshared : bool
        Locally connected filters (the legacy function raised "Filters should be 3D").

    Returns
    -------
    3-d tensor (batch, out_channels, (length - 1) // subsample + 1)
    """
    input, filters = pt.as_tensor_variable(input), pt.as_tensor_variable(filters)
    n_dims = 4 if unshared else 3
    if filter_shape is None or len(tuple(filter_shape)) != n_dims:
        raise ValueError(
            f"filter_shape must have {n_dims} entries{' (unshared)' if unshared else ''}, the last one the "
            f"filter length; got {filter_shape!r}"
        )
    filter_shape = tuple(filter_shape)
    subsample = _positive_int(subsample, "subsample")
    filter_dilation = _positive_int(filter_dilation, "filter_dilation")
    length = filter_shape[-1]
    known = constant_int(length)
    if known is not None:
        if known < 1:
            raise ValueError(f"the filter length (filter_shape[-1]) must be positive; got {known}")
        pad = (known - 1) * filter_dilation
        return conv_nd(
            input,
            filters,
            1,
            input_shape,
            filter_shape,
            ((pad, 0),),
            (subsample,),
            filter_flip,
            (filter_dilation,),
            num_groups,
            unshared,
        )
    # Symbolic filter length: pad explicitly, then a valid convolution.
    if input.ndim != 3:
        raise ValueError(f"input must be a 3-d tensor; got a {input.ndim}-d tensor")
    pad = (pt.as_tensor_variable(length) - 1) * filter_dilation
    zeros = pt.zeros((input.shape[0], input.shape[1], pad), dtype=input.dtype)
    padded = pt.join(2, zeros, input)
    hint = None if input_shape is None else tuple(input_shape)[:2] + (None,)
    return conv_nd(
        padded,
        filters,
        1,
        hint,
        filter_shape,
        "valid",
        (subsample,),
        filter_flip,
        (filter_dilation,),
        num_groups,
        unshared,
    )
