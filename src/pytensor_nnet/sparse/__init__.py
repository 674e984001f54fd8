"""Sparse-matrix ops on ``pytensor.sparse`` types: fixed/fast basic ops (``basic``) and the
legacy sparse sandbox (sparse-matrix convolution, sparse max pooling, random sparse ops)."""

from pytensor_nnet.sparse.basic import *  # noqa: F401,F403  (issue 7)
from pytensor_nnet.sparse.convolution import *  # noqa: F401,F403  (issue 6)
from pytensor_nnet.sparse.random import *  # noqa: F401,F403  (issue 6)
