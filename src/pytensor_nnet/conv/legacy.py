"""The deprecated legacy ``conv.conv2d`` (``theano.tensor.nnet.conv.conv2d``, the old ConvOp API).

Reachable as ``pytensor_nnet.conv.conv2d`` so that migrating is one import line; it is a thin
alias of the abstract :func:`pytensor_nnet.conv2d` (a true convolution) that warns.
"""

from __future__ import annotations

import warnings

from pytensor.graph.basic import Constant

from pytensor_nnet.conv.api import conv_nd


def conv2d(input, filters, image_shape=None, filter_shape=None, border_mode="valid", subsample=(1, 1), **kargs):
    """Deprecated, old conv2d interface: use :func:`pytensor_nnet.conv2d` instead.

    Convolves a stack of input images with a set of filters (filters are flipped).

    Parameters
    ----------
    input : 4-d tensor (batch, stack, rows, cols)
    filters : 4-d tensor (nb_filters, stack, filter_rows, filter_cols)
    image_shape, filter_shape : tuple of 4 (int, None or constant), or a constant vector, optional
        Static shape hints (checked).
    border_mode : {"valid", "full"}
    subsample : tuple of 2 ints
        Strides.
    **kargs
        The old ConvOp tuning options (``unroll_batch``, ``unroll_kern``, ``unroll_patch``,
        ``openmp``, ...): accepted and ignored.

    Returns
    -------
    4-d tensor (batch, nb_filters, out_rows, out_cols)
    """
    warnings.warn(
        "pytensor_nnet.conv.conv2d is the deprecated old conv2d interface; use pytensor_nnet.conv2d "
        "(input_shape instead of image_shape)",
        DeprecationWarning,
        stacklevel=2,
    )
    if border_mode not in ("valid", "full"):
        raise ValueError(f"border_mode must be 'valid' or 'full' in the old conv2d; got {border_mode!r}")
    image_shape, filter_shape = _constant_vector_as_tuple(image_shape), _constant_vector_as_tuple(filter_shape)
    return conv_nd(input, filters, 2, image_shape, filter_shape, border_mode, subsample, filter_flip=True)


def _constant_vector_as_tuple(hint):
    """The old interface also took a shape hint as a constant vector (``as_tensor_variable([3,
    2, 7, 5])``): its entries as a tuple of ints."""
    if isinstance(hint, Constant) and hint.ndim == 1:
        return tuple(int(v) for v in hint.data)
    return hint
