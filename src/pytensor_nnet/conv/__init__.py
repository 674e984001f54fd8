"""Convolution Ops and functions (``ops``, ``api``, ``transpose``, ``separable``, ``causal``,
``upsampling``, ``conv3d2d_impl``, ``reference``).

As a legacy import path, ``pytensor_nnet.conv`` is the old ``theano.tensor.nnet.conv`` module:
``pytensor_nnet.conv.conv2d`` is the deprecated old ``conv2d(input, filters, image_shape,
filter_shape, border_mode, subsample, **kargs)``, a different function from
``pytensor_nnet.conv2d``.
"""

from pytensor_nnet.conv.legacy import conv2d

__all__ = ["conv2d"]
