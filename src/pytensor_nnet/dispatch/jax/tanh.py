"""JAX implementation of :class:`pytensor_nnet.tanh.VectorisedTanh`: ``jnp.tanh``."""

import jax.numpy as jnp
from pytensor.link.jax.dispatch import jax_funcify

from pytensor_nnet.tanh import VectorisedTanh


@jax_funcify.register(VectorisedTanh)
def jax_funcify_VectorisedTanh(op, **kwargs):
    def vectorised_tanh(x):
        return jnp.tanh(x.astype(op.dtype))

    return vectorised_tanh
