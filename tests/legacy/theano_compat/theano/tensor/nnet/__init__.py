"""``theano.tensor.nnet``: ``pytensor_nnet``."""

import pytensor_nnet as _nnet
from pytensor_nnet import *  # noqa: F401,F403
from theano.tensor.nnet import abstract_conv, blocksparse, conv, conv3d2d, corr, corr3d  # noqa: F401


def __getattr__(name):
    return getattr(_nnet, name)
