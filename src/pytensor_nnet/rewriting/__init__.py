"""Graph rewrites, registered in PyTensor's databases under names users can exclude."""

from pytensor_nnet.rewriting import (
    blocksparse,  # noqa: F401
    contiguous_sum,  # noqa: F401
    conv,  # noqa: F401
    im2col,  # noqa: F401
    sparse_random,  # noqa: F401
    tanh,  # noqa: F401
)
