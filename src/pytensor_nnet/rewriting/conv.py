"""Rewrites for the convolution Ops.

``pytensor_nnet_jax_conv_static_shape`` (tag ``jax``): JAX needs the spatial ``shape`` input of
the gradient Ops as Python ints while tracing. When that input is computed from array shapes
(``img.shape[2:]`` in a gradient graph, ``x.shape[2] * 2`` in a transposed convolution's
``output_shape``), it is replaced by a ``JAXShapeTuple`` of entries that are concrete then
(see :mod:`pytensor_nnet.rewriting.jax_shapes`). A shape computed from array *values* is left
alone; the JAX function of the Op then raises, naming it.
"""

from pytensor.compile import optdb
from pytensor.graph.rewriting.basic import dfs_rewriter, node_rewriter

from pytensor_nnet.conv.ops import AbstractConv_gradInputs, AbstractConv_gradWeights
from pytensor_nnet.rewriting.jax_shapes import concrete_shape_vector


@node_rewriter([AbstractConv_gradInputs, AbstractConv_gradWeights])
def jax_conv_static_shape(fgraph, node):
    shape = concrete_shape_vector(node.inputs[2])
    if shape is None:
        return None
    return node.clone_with_new_inputs([*node.inputs[:2], shape]).outputs


optdb.register(
    "pytensor_nnet_jax_conv_static_shape",
    dfs_rewriter(jax_conv_static_shape),
    "jax",
    position=100,
)
