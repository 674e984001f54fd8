"""JAX implementations of :class:`Im2Col` / :class:`Col2Im`.

``Im2Col`` gathers the columns with strided slices (one per kernel tap), in the toolkit's
layout; ``Col2Im`` is its VJP.

JAX needs static geometry: ``Col2Im``'s ``x_shape`` must be a constant, or known when the
function is traced. The rewrite ``pytensor_nnet_jax_col2im_static_shape``
(:mod:`pytensor_nnet.rewriting.im2col`, tag ``jax``) turns a ``x_shape`` built from other
variables' shapes (``x.shape`` in the gradient of ``Im2Col``) into a tuple of shape entries,
which JAX keeps concrete - as PyTensor does for ``Reshape`` and this package for the conv
gradient Ops (``rewriting.conv``).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
from pytensor.graph.basic import Constant
from pytensor.link.jax.dispatch import jax_funcify

from pytensor_nnet.im2col import Col2Im, Im2Col


def _im2col_fn(op):
    """``im2col`` in the toolkit's layout, with strided slices (one per kernel tap)."""
    geo = op.geometry

    def im2col(x):
        N, C = x.shape[:2]
        geo.check_input(x.shape[2:])
        out = geo.out_shape(x.shape[2:])
        xp = jnp.pad(x, [(0, 0), (0, 0)] + list(geo.pad))
        patches = []
        for tap in itertools.product(*(range(k) for k in geo.kernel_shape)):
            idx = (slice(None), slice(None)) + tuple(
                slice(t * d, t * d + s * (o - 1) + 1, s) for t, d, s, o in zip(tap, geo.dilation, geo.stride, out)
            )
            patches.append(xp[idx])
        stacked = jnp.stack(patches, axis=2)  # (N, C, T, *O)
        return jnp.moveaxis(stacked, 0, -1).reshape(C * len(patches), -1)

    return im2col


@jax_funcify.register(Im2Col)
def jax_funcify_Im2Col(op, node, **kwargs):
    return _im2col_fn(op)


@jax_funcify.register(Col2Im)
def jax_funcify_Col2Im(op, node, **kwargs):
    im2col = _im2col_fn(op)
    out_dtype = node.outputs[0].dtype

    def col2im(cols, x_shape):
        shape_var = node.inputs[1]
        try:
            shape = tuple(int(s) for s in (shape_var.data if isinstance(shape_var, Constant) else x_shape))
        except (TypeError, jax.errors.ConcretizationTypeError) as err:
            raise NotImplementedError(
                f"{op}: JAX needs x_shape to be known when the function is traced (a constant, or the shape "
                "of a variable with a static shape)"
            ) from err
        _, pullback = jax.vjp(im2col, jnp.zeros(shape, dtype=out_dtype))
        return pullback(cols.astype(out_dtype))[0]

    return col2im
