"""JAX implementations of the abstract convolution Ops, on ``jax.lax.conv_general_dilated``.

The gradients are the VJPs of the same call (JAX derives transposed convolutions), so all
three Ops share one definition of the forward convolution. JAX needs static shapes: the
``shape`` input of the gradient Ops must be known when the function is traced (a constant,
or built from the static shapes of other variables).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from pytensor.graph.basic import Constant
from pytensor.link.jax.dispatch import jax_funcify

from pytensor_nnet import shapes
from pytensor_nnet.conv import ops


def _padding(op, kernel_spatial):
    dilated = [shapes.dilated_kernel_size(k, d) for k, d in zip(kernel_spatial, op.filter_dilation)]
    return [tuple(int(p) for p in pair) for pair in shapes.border_mode_to_pad(op.border_mode, op.convdim, dilated)]


def _forward(op):
    """``conv(img, kern)`` with the Op's parameters, as a JAX function."""
    spatial_flip = (Ellipsis,) + (slice(None, None, -1),) * op.convdim

    def conv(img, kern):
        if op.filter_flip:
            kern = kern[spatial_flip]
        return jax.lax.conv_general_dilated(
            img,
            kern,
            window_strides=op.subsample,
            padding=_padding(op, kern.shape[2:]),
            rhs_dilation=op.filter_dilation,
            feature_group_count=op.num_groups,
        )

    return conv


def _static_shape(node, runtime_shape):
    """The spatial ``shape`` input as a tuple of Python ints (from the graph or the trace)."""
    shape_var = node.inputs[2]
    if isinstance(shape_var, Constant):
        return tuple(int(s) for s in shape_var.data)
    try:
        return tuple(int(s) for s in np.asarray(runtime_shape))
    except (TypeError, jax.errors.ConcretizationTypeError) as err:
        raise NotImplementedError(
            f"{node.op}: JAX needs the spatial shape input to be known when tracing; give static "
            "shapes (input_shape / filter_shape or inputs with static shapes)"
        ) from err


@jax_funcify.register(ops.AbstractConv)
def jax_funcify_AbstractConv(op, node, **kwargs):
    return _forward(op)


@jax_funcify.register(ops.AbstractConv_gradInputs)
def jax_funcify_AbstractConv_gradInputs(op, node, **kwargs):
    conv = _forward(op)
    out_dtype = node.outputs[0].dtype

    def conv_grad_inputs(kern, topgrad, shape):
        spatial = _static_shape(node, shape)
        img_shape = (topgrad.shape[0], kern.shape[1] * op.num_groups) + spatial
        _, pullback = jax.vjp(lambda img: conv(img, kern), jnp.zeros(img_shape, dtype=out_dtype))
        return pullback(topgrad)[0]

    return conv_grad_inputs


@jax_funcify.register(ops.AbstractConv_gradWeights)
def jax_funcify_AbstractConv_gradWeights(op, node, **kwargs):
    conv = _forward(op)
    out_dtype = node.outputs[0].dtype

    def conv_grad_weights(img, topgrad, shape):
        spatial = _static_shape(node, shape)
        kern_shape = (topgrad.shape[1], img.shape[1] // op.num_groups) + spatial
        _, pullback = jax.vjp(lambda kern: conv(img, kern), jnp.zeros(kern_shape, dtype=out_dtype))
        return pullback(topgrad)[0]

    return conv_grad_weights
