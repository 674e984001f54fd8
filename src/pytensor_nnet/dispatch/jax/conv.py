"""JAX implementations of the abstract convolution Ops, on ``jax.lax.conv_general_dilated``.

The gradients are the VJPs of the same call (JAX derives transposed convolutions), so all
three Ops share one definition of the forward convolution. Unshared (locally connected)
filters multiply the patches of ``jax.lax.conv_general_dilated_patches`` (ordered
(channel, *kernel), like the filters) with a per-position ``einsum``. JAX needs static shapes: the
``shape`` input of the gradient Ops must be known when the function is traced (a constant,
or built from the static shapes of other variables); when it was computed from traced values,
the shape the operands imply is used where it is unique (stride 1, and not "half" padding for
the filter gradient).
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


def _unshared_forward(op):
    """Locally connected ``conv(img, kern)``, ``kern`` (M, *out, Cg, *k) already flipped."""
    nd, groups = op.convdim, op.num_groups
    out_letters = "xyz"[:nd]

    def conv(img, kern):
        kernel = kern.shape[2 + nd:]
        patches = jax.lax.conv_general_dilated_patches(
            img, kernel, op.subsample, _padding(op, kernel), rhs_dilation=op.filter_dilation
        )
        n, out = img.shape[0], patches.shape[2:]
        patches = patches.reshape((n, groups, -1) + out)
        m = kern.shape[0]
        kern = kern.reshape((groups, m // groups) + out + (-1,))
        y = jnp.einsum(f"ngk{out_letters},gm{out_letters}k->ngm{out_letters}", patches, kern)
        return y.reshape((n, m) + out)

    return conv


def _forward(op):
    """``conv(img, kern)`` with the Op's parameters, as a JAX function."""
    spatial_flip = (Ellipsis,) + (slice(None, None, -1),) * op.convdim
    unshared_conv = _unshared_forward(op) if op.unshared else None

    def conv(img, kern):
        if op.filter_flip:
            kern = kern[spatial_flip]
        if unshared_conv is not None:
            return unshared_conv(img, kern)
        return jax.lax.conv_general_dilated(
            img,
            kern,
            window_strides=op.subsample,
            padding=_padding(op, kern.shape[2:]),
            rhs_dilation=op.filter_dilation,
            feature_group_count=op.num_groups,
        )

    return conv


def _static_shape(node, runtime_shape, deduced=None):
    """The spatial ``shape`` input as a tuple of Python ints: from the graph, the trace, or
    ``deduced`` (the shape implied by the operands' shapes, ``None`` entries where strides or
    "half" padding make it ambiguous) when it was computed from traced values."""
    shape_var = node.inputs[2]
    if isinstance(shape_var, Constant):
        return tuple(int(s) for s in shape_var.data)
    try:
        return tuple(int(s) for s in np.asarray(runtime_shape))
    except (TypeError, jax.errors.ConcretizationTypeError) as err:
        if deduced is not None and None not in deduced:
            return tuple(int(s) for s in deduced)
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
        deduced = shapes.get_conv_gradinputs_shape(
            kern.shape, topgrad.shape, op.border_mode, op.subsample, op.filter_dilation, op.num_groups
        )[2:]
        spatial = _static_shape(node, shape, deduced)[-op.convdim:]
        in_per_group = kern.shape[1 + op.convdim] if op.unshared else kern.shape[1]
        img_shape = (topgrad.shape[0], in_per_group * op.num_groups) + spatial
        _, pullback = jax.vjp(lambda img: conv(img, kern), jnp.zeros(img_shape, dtype=out_dtype))
        return pullback(topgrad)[0]

    return conv_grad_inputs


@jax_funcify.register(ops.AbstractConv_gradWeights)
def jax_funcify_AbstractConv_gradWeights(op, node, **kwargs):
    conv = _forward(op)
    out_dtype = node.outputs[0].dtype

    def conv_grad_weights(img, topgrad, shape):
        deduced = shapes.get_conv_gradweights_shape(
            img.shape, topgrad.shape, op.border_mode, op.subsample, op.filter_dilation, op.num_groups
        )[2:2 + op.convdim]
        spatial = _static_shape(node, shape, deduced)[-op.convdim:]
        out_spatial = tuple(topgrad.shape[2:]) if op.unshared else ()
        kern_shape = (topgrad.shape[1], *out_spatial, img.shape[1] // op.num_groups) + spatial
        _, pullback = jax.vjp(lambda kern: conv(img, kern), jnp.zeros(kern_shape, dtype=out_dtype))
        return pullback(topgrad)[0]

    return conv_grad_weights
