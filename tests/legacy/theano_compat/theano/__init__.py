"""Test-only ``theano``: the names the legacy test files import, mapped onto PyTensor and
``pytensor_nnet``. Nothing here implements an Op; every mapping is a re-export or a thin
name adapter. The legacy suite runs in one compile mode, ``theano.compile.mode.LEGACY_MODE``."""

from pytensor import grad, shared  # noqa: F401

from theano import compat, compile, gradient, scalar, sparse, tensor  # noqa: F401
from theano.compile.mode import Mode, function  # noqa: F401
from theano.configparser import change_flags, config  # noqa: F401
