"""Legacy import path ``conv3d2d`` (``theano.tensor.nnet.conv3d2d``): ``conv3d`` on movies laid
out as (batch, time, channel, row, col)."""

from pytensor_nnet.conv.conv3d2d_impl import conv3d

__all__ = ["conv3d"]
