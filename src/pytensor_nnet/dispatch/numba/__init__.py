"""``numba_funcify`` registrations: every Op of the package runs in Numba mode without
object-mode fallback. Each module registers the Ops of the package module of the same name."""

from pytensor_nnet.dispatch.numba import (
    blocksparse,  # noqa: F401
    contiguous_sum,  # noqa: F401
    conv,  # noqa: F401
    im2col,  # noqa: F401
    pool,  # noqa: F401
    sparse_conv,  # noqa: F401
    sparse_random,  # noqa: F401
    tanh,  # noqa: F401
)
from pytensor_nnet.sparse_basic import numba as sparse_basic  # noqa: F401
