"""The random sparse matrices (``Poisson``, ``Binomial``, ``Multinomial``) have no PyTorch
implementation: the number of stored entries of their outputs depends on the drawn values,
and their draws are numpy's. Compiling them in PyTorch mode raises a ``NotImplementedError``
naming the Op and the backends that run it.

Their generator is usually a shared variable, which PyTensor converts before it converts the
Op; when PyTensor's PyTorch backend has no conversion for numpy generators, this module
registers a pass-through one, so that the error is this module's (or, for PyTensor's own
random variables, PyTensor's "no PyTorch conversion for the Op") rather than a failed
conversion of the generator.
"""

import numpy as np
from pytensor.link.pytorch.dispatch import pytorch_funcify, pytorch_typify

from pytensor_nnet.dispatch.pytorch.utils import CPU_BACKENDS, unsupported
from pytensor_nnet.sparse.random import Binomial, Multinomial, Poisson

if pytorch_typify.dispatch(np.random.Generator) is pytorch_typify.dispatch(object):

    @pytorch_typify.register(np.random.Generator)
    def pytorch_typify_Generator(rng, **kwargs):
        return rng


@pytorch_funcify.register(Poisson)
@pytorch_funcify.register(Binomial)
@pytorch_funcify.register(Multinomial)
def pytorch_funcify_sparse_random(op, node=None, **kwargs):
    raise unsupported(op, "drawing random sparse matrices", CPU_BACKENDS)
