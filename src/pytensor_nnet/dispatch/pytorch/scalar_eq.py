"""Elementwise ``==`` in PyTensor's PyTorch backend.

PyTensor (3.0.7 to 3.3.8 at least) converts the scalar ``EQ`` Op by its NumPy name,
``equal``, and so calls ``torch.equal``, which compares *whole tensors* and returns one Python
bool. ``pt.eq(x, y)`` then gives a single bool instead of an elementwise result, and the shape
checks that ``CheckAndRaise`` builds from ``pt.eq`` (as :func:`~pytensor_nnet.sparse.convolve`
does) fail in ``ScalarFromTensor``. When PyTensor has no conversion of its own for ``EQ``,
this module registers ``torch.eq``.
"""

import torch
from pytensor.link.pytorch.dispatch import pytorch_funcify
from pytensor.scalar.basic import EQ, ScalarOp

if EQ.nfunc_spec[0] == "equal" and pytorch_funcify.dispatch(EQ) is pytorch_funcify.dispatch(ScalarOp):

    @pytorch_funcify.register(EQ)
    def pytorch_funcify_EQ(op, node=None, **kwargs):
        return torch.eq
