"""JAX implementation of :class:`pytensor_nnet.contiguous_sum.ContiguousSum`: ``jnp.sum``."""

import jax.numpy as jnp
from pytensor.link.jax.dispatch import jax_funcify

from pytensor_nnet.contiguous_sum import ContiguousSum


@jax_funcify.register(ContiguousSum)
def jax_funcify_ContiguousSum(op, **kwargs):
    def contiguous_sum(x):
        return jnp.sum(x, axis=op.axes, dtype=op.acc_dtype).astype(op.dtype)

    return contiguous_sum
