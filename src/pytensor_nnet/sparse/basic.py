"""The corrected ``pytensor.sparse`` Ops under ``pytensor_nnet.sparse.basic``: the names of
:mod:`pytensor_nnet.sparse_basic.ops`, where they are defined."""

from pytensor_nnet.sparse_basic.ops import *  # noqa: F401,F403
from pytensor_nnet.sparse_basic.ops import __all__  # noqa: F401
