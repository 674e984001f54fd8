"""Sparse-matrix ops on ``pytensor.sparse`` types: corrected ``pytensor.sparse`` Ops (from
:mod:`pytensor_nnet.sparse_basic`) and the legacy sparse sandbox (sparse-matrix convolution,
sparse max pooling, random sparse ops).

:func:`patch_pytensor_sparse` (opt-in) gives PyTensor's own sparse Ops the same Numba
implementations and registers two sparse rewrites.
"""

from pytensor_nnet.sparse.convolution import *  # noqa: F401,F403
from pytensor_nnet.sparse.random import *  # noqa: F401,F403
from pytensor_nnet.sparse_basic.ops import *  # noqa: F401,F403


def patch_pytensor_sparse():
    """Opt-in: give ``pytensor.sparse``'s own Ops our Numba implementations (where PyTensor
    has none, and faster or fixed products, casts and conversions) and register the rewrites
    ``pytensor_nnet_usmm_fusion`` and ``pytensor_nnet_csm_grad_sampled_dot``.

    ``import pytensor_nnet`` alone never changes PyTensor's own Ops; the classes of
    :mod:`pytensor_nnet.sparse` always use these implementations. See ``docs/sparse.md``.
    """
    from pytensor_nnet.sparse_basic.patch import patch_pytensor_sparse as patch

    patch()
