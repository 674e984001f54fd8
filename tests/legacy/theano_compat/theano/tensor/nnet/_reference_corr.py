"""The legacy GEMM correlation classes (``CorrMM``, ``Corr3dMM`` and their gradients) as the
slow numpy references of our own tests (``tests/reference/conv.py``) wrapped in an Op.

The legacy tests use these classes as the reference our convolution is compared with; here
they are an implementation that shares nothing with the package's kernels. A test that asserts
that the legacy optimizer put one of them in a compiled graph is in the skip list."""

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from tests.reference.conv import conv_grads_ref, conv_ref


class _ReferenceCorr(Op):
    __props__ = ("direction", "border_mode", "subsample", "filter_dilation", "num_groups")

    def __init__(self, direction, border_mode="valid", subsample=None, filter_dilation=None, num_groups=1):
        self.direction = direction
        self.border_mode = tuple(border_mode) if isinstance(border_mode, list) else border_mode
        self.subsample = None if subsample is None else tuple(subsample)
        self.filter_dilation = None if filter_dilation is None else tuple(filter_dilation)
        self.num_groups = num_groups

    def _params(self):
        return dict(
            border_mode=self.border_mode,
            subsample=self.subsample,
            filter_flip=False,
            filter_dilation=self.filter_dilation,
            num_groups=self.num_groups,
        )

    def make_node(self, a, b, shape=None):
        a, b = pt.as_tensor_variable(a), pt.as_tensor_variable(b)
        inputs = [a, b] if shape is None else [a, b, pt.as_tensor_variable(shape)]
        out = pt.tensor(dtype=a.dtype, shape=(None,) * a.ndim)
        return Apply(self, inputs, [out])

    def perform(self, node, inputs, output_storage):
        dtype = node.outputs[0].dtype
        if self.direction == "forward":
            img, kern = inputs
            out = conv_ref(np.float64(img), np.float64(kern), **self._params())
        elif self.direction == "grad_weights":
            img, top, spatial = inputs
            kern = np.zeros((top.shape[1], img.shape[1] // self.num_groups, *spatial))
            out = conv_grads_ref(np.float64(img), kern, np.float64(top), **self._params())[1]
        else:
            kern, top, spatial = inputs
            img = np.zeros((top.shape[0], kern.shape[1] * self.num_groups, *spatial))
            out = conv_grads_ref(img, np.float64(kern), np.float64(top), **self._params())[0]
        output_storage[0][0] = np.asarray(out, dtype=dtype)


def reference_class(direction, name):
    """A legacy class name whose instances are the reference Op for ``direction``."""

    def __new__(cls, border_mode="valid", subsample=None, filter_dilation=None, num_groups=1, unshared=False):
        if unshared:
            raise NotImplementedError(f"{name}(unshared=True): no reference Op")
        return _ReferenceCorr(direction, border_mode, subsample, filter_dilation, num_groups)

    return type(name, (), {"__new__": __new__})
