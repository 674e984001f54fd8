"""``ContiguousSum``: a sum over axes that Numba compiles in a fraction of a second.

PyTensor's ``Sum`` of a tensor of two or more dimensions (PyTensor's ``CAReduce``) compiles in
Numba mode to code that branches on the strides at run time; on PyTensor 3.0 and 3.3 the first
such sum in a process compiles for about 4 s (sorting the strides, and the error messages of
its array assignments), each further one for about 0.8 s. This Op computes the same sum
with one kernel, :func:`pytensor_nnet.kernels.contiguous_sum.sum_runs_into`, compiled once per
pair of dtypes and cached on disk: it reads the array in C order (a C-contiguous copy of any
other layout) and accumulates in the accumulator dtype, as PyTensor's ``Sum`` does; only the
order of the additions may differ (by rounding).

The rewrite ``pytensor_nnet_contiguous_sum`` (:mod:`pytensor_nnet.rewriting.contiguous_sum`)
puts it in place of such sums in Numba-mode graphs that use the package's Ops. The other
backends run ``np.sum``, ``jnp.sum`` and ``torch.sum``.
"""

import numpy as np
import pytensor.tensor as pt
from numpy.lib.array_utils import normalize_axis_tuple
from pytensor.graph.basic import Apply
from pytensor.tensor.type import TensorType

from pytensor_nnet.compat import Op

#: The dtypes of the input, the accumulator and the output.
DTYPES = ("float32", "float64")


def _float_dtype(dtype, argument):
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise TypeError(f"ContiguousSum: {argument} must be one of {DTYPES}, not {dtype!r}")
    return name


class ContiguousSum(Op):
    """``sum(x, axis=axes)`` (``axes`` None: every axis) of a tensor ``x`` of ``ndim``
    dimensions, accumulated in ``acc_dtype`` and returned as ``dtype`` (float32 or float64 each,
    as is ``x``); the output has ``x``'s shape without the summed axes (0-d when every axis is
    summed)."""

    __props__ = ("ndim", "axes", "acc_dtype", "dtype")

    def __init__(self, ndim, axes, acc_dtype, dtype):
        if not isinstance(ndim, (int, np.integer)) or ndim < 0:
            raise ValueError(f"ContiguousSum: ndim must be a non-negative int, not {ndim!r}")
        try:
            normalized = range(ndim) if axes is None else normalize_axis_tuple(axes, ndim)
        except (TypeError, ValueError) as error:  # numpy's AxisError is a ValueError
            raise ValueError(f"ContiguousSum: axes {axes!r} are not axes of a {ndim}-d tensor") from error
        self.ndim = int(ndim)
        self.axes = tuple(sorted(normalized))
        self.acc_dtype = _float_dtype(acc_dtype, "acc_dtype")
        self.dtype = _float_dtype(dtype, "dtype")

    def make_node(self, x):
        x = pt.as_tensor_variable(x)
        if x.type.ndim != self.ndim:
            raise TypeError(f"ContiguousSum: x must have {self.ndim} dimensions, not {x.type.ndim}")
        _float_dtype(x.type.dtype, "x's dtype")
        shape = tuple(size for axis, size in enumerate(x.type.shape) if axis not in self.axes)
        return Apply(self, [x], [TensorType(self.dtype, shape=shape)()])

    def perform(self, node, inputs, output_storage):
        (x,) = inputs
        total = np.sum(x, axis=self.axes, dtype=self.acc_dtype)
        output_storage[0][0] = np.asarray(total, dtype=self.dtype)

    def infer_shape(self, node, input_shapes):
        (shape,) = input_shapes
        return [tuple(size for axis, size in enumerate(shape) if axis not in self.axes)]

    def _spread(self, x, summed):
        """``summed`` (the output's shape) broadcast back over ``x``'s shape."""
        return pt.broadcast_to(pt.expand_dims(summed, self.axes), x.shape)

    def pullback(self, inputs, outputs, cotangents):
        (x,), (gz,) = inputs, cotangents
        return [self._spread(x, gz).astype(x.type.dtype)]

    def pushforward(self, inputs, outputs, tangents):
        (tx,) = tangents
        return [pt.sum(tx, axis=self.axes, acc_dtype=self.acc_dtype).astype(self.dtype)]


def contiguous_sum(x, axis=None, acc_dtype=None, dtype=None):
    """``pt.sum(x, axis, acc_dtype, dtype)`` through :class:`ContiguousSum`, with the dtypes
    PyTensor's ``sum`` would give."""
    x = pt.as_tensor_variable(x)
    reference = pt.sum(x, axis=axis, acc_dtype=acc_dtype, dtype=dtype)
    acc = getattr(reference.owner.op, "acc_dtype", None) or reference.type.dtype
    return ContiguousSum(x.type.ndim, axis, acc, reference.type.dtype)(x)
