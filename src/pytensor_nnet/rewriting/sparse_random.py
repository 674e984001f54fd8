"""Rewrite for the random sparse Ops: a draw whose values are not used is not drawn.

``sparse_random_unused_draws`` (``canonicalize``, tags ``fast_compile``, ``fast_run``,
``random_unsafe``): when only the next generator of a ``Poisson``, ``Binomial`` or
``Multinomial`` node is used (e.g. a function that asks for the draws' shape, which
``infer_shape`` gives from the parameters, while the generator's update is kept), the next
generator is the input one: nothing is drawn and the generator does not advance. PyTensor 3
does the same for its own random variables (``sidestep_unused_rng_consumer``). Disable it with
``mode.excluding("sparse_random_unused_draws")``.
"""

from pytensor.graph.rewriting.basic import node_rewriter
from pytensor.tensor.rewriting.basic import register_canonicalize

from pytensor_nnet.sparse.random import SparseRandomOp


@register_canonicalize("fast_compile", "random_unsafe", name="sparse_random_unused_draws")
@node_rewriter([SparseRandomOp])
def sparse_random_unused_draws(fgraph, node):
    rng, *_ = node.inputs
    next_rng, draws = node.outputs
    if fgraph.clients[draws] or len(fgraph.clients[rng]) > 1:
        return None
    return {next_rng: rng}
