"""``theano.tensor.nnet.conv``: the old ConvOp interface, ``pytensor_nnet.conv.conv2d``, which
builds the abstract 2d convolution Op (so ``ConvOp`` names that Op)."""

from pytensor_nnet.abstract_conv import AbstractConv2d as ConvOp  # noqa: F401
from pytensor_nnet.conv import conv2d  # noqa: F401

imported_scipy_signal = True
