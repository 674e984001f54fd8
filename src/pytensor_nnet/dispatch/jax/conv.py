"""JAX implementations of the abstract convolution Ops, on ``jax.lax.conv_general_dilated``.

The gradients are the VJPs of the same call (JAX derives transposed convolutions), so all
three Ops share one definition of the forward convolution. Unshared (locally connected)
filters multiply the patches of ``jax.lax.conv_general_dilated_patches`` (ordered
(channel, *kernel), like the filters) with a per-position ``einsum``. JAX needs the ``shape``
input of the gradient Ops as ints when it traces the function: a constant, or computed from
array shapes (symbolic shapes included), which the rewrite ``pytensor_nnet_jax_conv_static_shape``
makes concrete. A shape computed from array values raises ``NotImplementedError`` naming it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from pytensor.link.jax.dispatch import jax_funcify

from pytensor_nnet import shapes
from pytensor_nnet.conv import ops
from pytensor_nnet.dispatch.jax import shape as _shape  # noqa: F401  (registers StaticShape)
from pytensor_nnet.graph import constant_ints
from pytensor_nnet.rewriting.jax_shapes import describe, shape_blocker


def _padding(op, kernel_spatial):
    return shapes.conv_padding(op.border_mode, kernel_spatial, op.filter_dilation)


def _unshared_forward(op):
    """Locally connected ``conv(img, kern)``, ``kern`` (M, *out, Cg, *k) already flipped."""
    nd, groups = op.convdim, op.num_groups
    out_letters = "xyz"[:nd]

    def conv(img, kern):
        kernel = kern.shape[2 + nd :]
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
        op.check_geometry(img.shape, kern.shape)
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


_SHAPE_ARGUMENT = {
    ops.AbstractConv_gradInputs: "the input's spatial shape (input_shape[2:] of conv2d_grad_wrt_inputs, "
    "output_shape[2:] of conv2d_transpose)",
    ops.AbstractConv_gradWeights: "the filters' spatial shape (filter_shape[2:] of conv2d_grad_wrt_weights)",
}


def _shape_argument(op):
    return next(text for cls, text in _SHAPE_ARGUMENT.items() if isinstance(op, cls))


def _static_shape_fn(node):
    """A function turning the ``shape`` input's value into a tuple of Python ints.

    JAX needs it concrete while tracing: a constant, or computed from array shapes (the rewrite
    ``pytensor_nnet_jax_conv_static_shape`` then gives a tuple of ints). A shape computed from
    array values raises here, when the function is compiled, naming the variable.
    """
    shape_var = node.inputs[2]
    constant = constant_ints(shape_var)
    if constant is not None:
        return lambda shape: constant
    blocker = shape_blocker(shape_var)
    if blocker is not None:
        raise NotImplementedError(
            f"{node.op}: JAX needs {_shape_argument(node.op)} as integers known when it traces the "
            f"function, but it is computed from the values of {describe(blocker)}. Give ints, or entries of "
            "an array's shape (x.shape[2]), or compile with the Numba or C backend."
        )

    def static_shape(shape):
        try:
            return tuple(int(s) for s in np.asarray(shape))
        except TypeError as err:  # JAX's tracer conversion errors are TypeErrors
            raise NotImplementedError(
                f"{node.op}: JAX needs {_shape_argument(node.op)} as integers known when it traces the "
                "function; it is traced here (was the rewrite pytensor_nnet_jax_conv_static_shape "
                "excluded?)"
            ) from err

    return static_shape


@jax_funcify.register(ops.AbstractConv)
def jax_funcify_AbstractConv(op, node, **kwargs):
    return _forward(op)


@jax_funcify.register(ops.AbstractConv_gradInputs)
def jax_funcify_AbstractConv_gradInputs(op, node, **kwargs):
    conv = _forward(op)
    out_dtype = node.outputs[0].dtype
    static_shape = _static_shape_fn(node)

    def conv_grad_inputs(kern, topgrad, shape):
        given = tuple(static_shape(shape))
        op.check_inputs(node, kern.shape, topgrad.shape, given)
        spatial = given[-op.convdim :]
        in_per_group = kern.shape[1 + op.convdim] if op.unshared else kern.shape[1]
        img_shape = (topgrad.shape[0], in_per_group * op.num_groups) + spatial
        _, pullback = jax.vjp(lambda img: conv(img, kern), jnp.zeros(img_shape, dtype=out_dtype))
        return pullback(topgrad)[0]

    return conv_grad_inputs


@jax_funcify.register(ops.AbstractConv_gradWeights)
def jax_funcify_AbstractConv_gradWeights(op, node, **kwargs):
    conv = _forward(op)
    out_dtype = node.outputs[0].dtype
    static_shape = _static_shape_fn(node)

    def conv_grad_weights(img, topgrad, shape):
        given = tuple(static_shape(shape))
        op.check_inputs(node, img.shape, topgrad.shape, given)
        spatial = given[-op.convdim :]
        out_spatial = tuple(topgrad.shape[2:]) if op.unshared else ()
        kern_shape = (topgrad.shape[1], *out_spatial, img.shape[1] // op.num_groups) + spatial
        _, pullback = jax.vjp(lambda kern: conv(img, kern), jnp.zeros(kern_shape, dtype=out_dtype))
        return pullback(topgrad)[0]

    return conv_grad_weights
