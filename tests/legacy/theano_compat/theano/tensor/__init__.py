"""``theano.tensor``: ``pytensor.tensor``, with the legacy ``TensorType(dtype, broadcastable)``
and ``tensor(dtype, broadcastable)`` signatures."""

import pytensor.tensor as _pt
from pytensor.tensor import *  # noqa: F401,F403
from pytensor.tensor.elemwise import DimShuffle as _DimShuffle
from pytensor.tensor.sharedvar import tensor_constructor as _shared  # noqa: F401
from pytensor.tensor.type import TensorType as _TensorType

from theano.tensor import basic, nnet, signal  # noqa: F401
from theano.tensor.basic import NotScalarConstantError, get_scalar_constant_value  # noqa: F401


def _shape_of(broadcastable):
    return tuple(1 if b else None for b in broadcastable)


def TensorType(dtype, broadcastable=None, name=None, shape=None):
    if shape is None:
        shape = _shape_of(broadcastable)
    return _TensorType(dtype, shape=shape, name=name)


def tensor(dtype=None, broadcastable=None, name=None, shape=None, **kwargs):
    if shape is None and broadcastable is not None:
        shape = _shape_of(broadcastable)
    return _pt.tensor(dtype=dtype, shape=shape, name=name, **kwargs)


def _legacy_constructor(constructor):
    """``tensor4(name, dtype)``: the legacy positional ``dtype``."""

    def build(name=None, dtype=None, **kwargs):
        return constructor(name, dtype=dtype, **kwargs)

    build.__name__ = constructor.__name__
    return build


for _name in ("scalar", "vector", "matrix", "row", "col", "tensor3", "tensor4", "tensor5", "tensor6", "tensor7"):
    globals()[_name] = _legacy_constructor(getattr(_pt, _name))


def DimShuffle(input_broadcastable, new_order, *args, **kwargs):
    """``DimShuffle(input_broadcastable, new_order)``: PyTensor's takes the input's rank."""
    return _DimShuffle(input_ndim=len(input_broadcastable), new_order=new_order)


def __getattr__(name):
    return getattr(_pt, name)
