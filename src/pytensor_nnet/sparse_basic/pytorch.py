"""The ``pytensor.sparse`` Op subclasses of :mod:`pytensor_nnet.sparse_basic.ops` in PyTorch mode.

They compute what PyTensor's parent Ops compute. PyTensor's PyTorch backend converts
``pytensor.sparse`` Ops only where it registers them; for each subclass whose parent has no
PyTorch conversion, this module registers one that raises a ``NotImplementedError`` naming
the Op and the backends that run it (PyTorch has no counterpart of scipy's CSR/CSC matrices
that ``torch.compile`` handles). A parent that gains a conversion is used as it is.
"""

from pytensor.link.pytorch.dispatch import pytorch_funcify

from pytensor_nnet.dispatch.pytorch.utils import unsupported
from pytensor_nnet.sparse_basic import ops as basic

_SPARSE_BACKENDS = "Numba (the default), C/Python"
_OPS = (
    basic.DenseFromSparse,
    basic.SparseFromDense,
    basic.Dot,
    basic.StructuredDot,
    basic.SparseDenseMultiply,
    basic.StructuredAddSV,
    basic.SamplingDot,
    basic.GetItem2d,
    basic.GetItem2dGrad,
    basic.GetItemScalar,
    basic.Usmm,
)


def pytorch_funcify_sparse(op, node=None, **kwargs):
    raise unsupported(op, "sparse matrices (pytensor.sparse)", _SPARSE_BACKENDS)


_DEFAULT = pytorch_funcify.dispatch(object)
for _cls in _OPS:
    parent = _cls.__mro__[1]
    if pytorch_funcify.dispatch(parent) is _DEFAULT:
        pytorch_funcify.register(_cls)(pytorch_funcify_sparse)
