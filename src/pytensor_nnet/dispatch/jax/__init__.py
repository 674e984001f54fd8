"""``jax_funcify`` registrations (imported only when JAX is installed)."""

from pytensor_nnet.dispatch.jax import (
    blocksparse,  # noqa: F401
    contiguous_sum,  # noqa: F401
    conv,  # noqa: F401
    im2col,  # noqa: F401
    pool,  # noqa: F401
    sparse_conv,  # noqa: F401
    sparse_random,  # noqa: F401
    tanh,  # noqa: F401
)
