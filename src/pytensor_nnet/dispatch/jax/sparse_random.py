"""JAX registrations for the random sparse Ops: ``Poisson``, ``Binomial`` and ``Multinomial``
have no JAX implementation (a clear ``NotImplementedError``): their outputs' sizes depend on
the drawn values (number of stored entries), which a traced JAX function cannot have.
"""

from pytensor.link.jax.dispatch import jax_funcify

from pytensor_nnet.dispatch.jax.sparse_conv import jax_funcify_value_dependent_sizes
from pytensor_nnet.sparse.random import Binomial, Multinomial, Poisson

for _cls in (Poisson, Binomial, Multinomial):
    jax_funcify.register(_cls)(jax_funcify_value_dependent_sizes)
