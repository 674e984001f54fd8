"""Numpy-in, numpy-out building blocks for hand-written layers (Numba kernels inside, no PyTensor graph).

- :mod:`~pytensor_nnet.numpy_layers.im2col`: ``im2col`` / ``col2im`` and their geometry;
- :mod:`~pytensor_nnet.numpy_layers.conv`: a convolution layer by im2col + GEMM;
- :mod:`~pytensor_nnet.numpy_layers.pool`: max and average pooling layers by im2col.

The layers follow the CS231n convention: ``forward(...) -> (out, cache)`` and
``backward(dout, cache)``. The same names are importable from :mod:`pytensor_nnet.im2col`,
beside the PyTensor Ops ``Im2Col`` / ``Col2Im``.
"""

from pytensor_nnet.numpy_layers.conv import conv_backward_im2col, conv_forward_im2col
from pytensor_nnet.numpy_layers.im2col import ColumnGeometry, col2im, im2col, im2col_output_shape
from pytensor_nnet.numpy_layers.pool import (
    avg_pool_backward_im2col,
    avg_pool_forward_im2col,
    max_pool_backward_im2col,
    max_pool_forward_im2col,
)

__all__ = [
    "ColumnGeometry",
    "avg_pool_backward_im2col",
    "avg_pool_forward_im2col",
    "col2im",
    "conv_backward_im2col",
    "conv_forward_im2col",
    "im2col",
    "im2col_output_shape",
    "max_pool_backward_im2col",
    "max_pool_forward_im2col",
]
