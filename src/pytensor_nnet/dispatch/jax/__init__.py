"""``jax_funcify`` registrations (imported only when JAX is installed)."""

from pytensor_nnet.dispatch.jax import conv  # noqa: F401
from pytensor_nnet.dispatch.jax import blocksparse  # noqa: F401
from pytensor_nnet.dispatch.jax import sparse_conv  # noqa: F401
from pytensor_nnet.dispatch.jax import sparse_random  # noqa: F401
from pytensor_nnet.dispatch.jax import pool  # noqa: F401
from pytensor_nnet.dispatch.jax import im2col  # noqa: F401
