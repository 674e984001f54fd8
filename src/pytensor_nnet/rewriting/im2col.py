"""Rewrites for the im2col Ops.

``pytensor_nnet_jax_col2im_static_shape`` (tag ``jax``): JAX needs ``Col2Im``'s ``x_shape``
input as Python ints while tracing; when it is computed from array shapes it is replaced by
a vector of entries that are concrete then (see :mod:`pytensor_nnet.rewriting.jax_shapes`).
Registered here, not with the JAX functions, because those load lazily and the JAX mode picks
its rewrites before that.
"""

from pytensor.compile import optdb
from pytensor.graph.rewriting.basic import dfs_rewriter, node_rewriter

from pytensor_nnet.im2col import Col2Im
from pytensor_nnet.rewriting.jax_shapes import concrete_shape_vector


@node_rewriter([Col2Im])
def jax_col2im_static_shape(fgraph, node):
    shape = concrete_shape_vector(node.inputs[1])
    if shape is None:
        return None
    return node.clone_with_new_inputs([node.inputs[0], shape]).outputs


optdb.register(
    "pytensor_nnet_jax_col2im_static_shape",
    dfs_rewriter(jax_col2im_static_shape),
    "jax",
    position=100,
)
