from pytensor.compile import shared  # noqa: F401

from theano.compile import mode  # noqa: F401
from theano.compile.mode import Mode, function, get_default_mode, get_mode  # noqa: F401
