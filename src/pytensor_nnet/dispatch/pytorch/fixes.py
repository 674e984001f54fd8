"""Two conversions of PyTensor Ops that PyTensor's PyTorch backend gets wrong for our graphs
(PyTensor 3.0.7 to 3.3.8 at least).

* ``EQ`` (elementwise ``==``): PyTensor converts it by its NumPy name, ``equal``, and so calls
  ``torch.equal``, which compares *whole tensors* and returns one Python bool. ``pt.eq(x, y)``
  then gives a single bool instead of an elementwise result, and the shape checks that
  ``CheckAndRaise`` builds from ``pt.eq`` (as :func:`~pytensor_nnet.sparse.convolve` does)
  fail in ``ScalarFromTensor``. While PyTensor has no conversion of its own for ``EQ``, it is
  ``torch.eq`` here.
* ``SpecifyShape`` (the gradients of our Ops carry their input's static shape with it):
  PyTensor's conversion compares the tensor's shape with the expected sizes as *tensors*
  (constants become tensors), a data-dependent branch on which ``torch.compile`` breaks the
  graph: every such node splits the compiled function in two, with a round trip through
  Python (a millisecond per call on a GPU). When the expected sizes are constants, the check
  here compares Python ints, which ``torch.compile`` turns into guards; otherwise PyTensor's
  conversion is used.
"""

import torch
from pytensor.graph.basic import Constant
from pytensor.link.pytorch.dispatch import pytorch_funcify
from pytensor.scalar.basic import EQ, ScalarOp
from pytensor.tensor.shape import SpecifyShape

if EQ.nfunc_spec[0] == "equal" and pytorch_funcify.dispatch(EQ) is pytorch_funcify.dispatch(ScalarOp):

    @pytorch_funcify.register(EQ)
    def pytorch_funcify_EQ(op, node=None, **kwargs):
        return torch.eq


_pytensor_specify_shape = pytorch_funcify.dispatch(SpecifyShape)


@pytorch_funcify.register(SpecifyShape)
def pytorch_funcify_SpecifyShape(op, node, **kwargs):
    sizes = node.inputs[1:]
    if not all(isinstance(s, Constant) for s in sizes):
        return _pytensor_specify_shape(op, node=node, **kwargs)
    expected = tuple(None if s.data is None else int(s.data) for s in sizes)

    def specify_shape(x, *_sizes):
        if x.ndim != len(expected) or any(e is not None and a != e for a, e in zip(x.shape, expected)):
            raise ValueError(f"Invalid shape: Expected {expected} but got {tuple(x.shape)}")
        return x

    return specify_shape
