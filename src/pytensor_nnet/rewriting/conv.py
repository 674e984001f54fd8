"""Rewrites for the convolution Ops.

``pytensor_nnet_jax_conv_shape_as_tuple`` (tag ``jax``): JAX needs the spatial ``shape`` input
of the gradient Ops as concrete ints while tracing. When that input is built from the shapes
of other variables (the usual case: ``img.shape[2:]`` in a gradient graph), it is replaced by
a tuple of those shape entries, which JAX keeps concrete (as PyTensor does for ``Reshape``).
"""

from pytensor.compile import optdb
from pytensor.graph.basic import Constant
from pytensor.graph.rewriting.basic import dfs_rewriter, node_rewriter
from pytensor.tensor.basic import MakeVector

from pytensor_nnet.conv.ops import AbstractConv_gradInputs, AbstractConv_gradWeights


@node_rewriter([AbstractConv_gradInputs, AbstractConv_gradWeights])
def jax_conv_shape_as_tuple(fgraph, node):
    from pytensor.link.jax.dispatch.shape import JAXShapeTuple

    shape = node.inputs[2]
    if isinstance(shape, Constant) or shape.owner is None:
        return None
    if isinstance(shape.owner.op, JAXShapeTuple):
        return None
    if isinstance(shape.owner.op, MakeVector):
        entries = shape.owner.inputs
    else:
        entries = [shape[i] for i in range(shape.type.shape[0] or node.op.convdim)]
    new_inputs = list(node.inputs)
    new_inputs[2] = JAXShapeTuple()(*entries)
    return node.clone_with_new_inputs(new_inputs).outputs


optdb.register(
    "pytensor_nnet_jax_conv_shape_as_tuple",
    dfs_rewriter(jax_conv_shape_as_tuple),
    "jax",
    position=100,
)
