"""Numba registration of :class:`pytensor_nnet.tanh.VectorisedTanh`: one loop over the
elements with :func:`pytensor_nnet.kernels.tanh.tanh_float64` inlined by Numba (not left to
LLVM's inliner), so that LLVM vectorises it. Compiled without fast-math flags whatever
``numba__fastmath`` says: reassociation would undo the split of ``log(2)`` that keeps the
kernel accurate."""

import sys
from hashlib import sha256

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import register_funcify_and_cache_key

from pytensor_nnet.dispatch.numba.fingerprint import source_fingerprint
from pytensor_nnet.kernels import tanh as kernels
from pytensor_nnet.tanh import VectorisedTanh

CACHE_VERSION = 1
KERNEL_FINGERPRINT = source_fingerprint(sys.modules[__name__], kernels)

_OPTIONS = dict(fastmath=False, error_model="numpy")
_tanh = numba_basic.numba_njit(kernels.tanh_float64, inline="always", **_OPTIONS)


def _loop(dtype):
    """The Op's function for outputs of ``dtype``: ``x`` (any shape, real) -> ``tanh(x)``."""

    @numba_basic.numba_njit(**_OPTIONS)
    def vectorised_tanh(x):
        flat = x.ravel()  # a view of a C-contiguous x, else a copy
        out = np.empty(flat.size, dtype=dtype)
        for i in range(flat.size):
            out[i] = _tanh(np.float64(flat[i]))  # rounded once to dtype
        return out.reshape(x.shape)

    return vectorised_tanh


_LOOPS = {"float32": _loop(np.float32), "float64": _loop(np.float64)}


@register_funcify_and_cache_key(VectorisedTanh)
def numba_funcify_VectorisedTanh(op, node, **kwargs):
    function = _LOOPS[op.dtype]
    key = str((type(op).__qualname__, op.dtype, KERNEL_FINGERPRINT, CACHE_VERSION))
    return function, sha256(key.encode()).hexdigest()
