"""JAX implementations of the pooling Ops and of ``WindowCount``.

Forward pooling is ``jax.lax.reduce_window`` (max or add, with the legacy end padding of
``ignore_border=False`` as extra padding, and the legacy divisors for the averages). The
gradients spell out the package's rules instead of relying on JAX's own choices (XLA's
``select_and_scatter`` picks the tied element it likes): with ``max_grad_ties="first"``,
``MaxPoolGrad`` routes each window's gradient to the window's first maximum in row-major
order, found by a running argmax over the window taps in that order (padding never wins);
with ``"all"`` (legacy) to every element equal to the maximum. ``DownsampleFactorMaxGradGrad``
is its adjoint (a gather at the same element, or a sum over the tied ones) and
``AveragePoolGrad`` is the VJP of the average. They walk the window taps with strided slices
(``prod(ws)`` slices).

Shapes: inside ``jax.jit`` an array's shape is made of plain ints, and ``WindowCount`` (the
output sizes in the shape graphs of the pooling and im2col Ops) computes with plain ints when
it gets them, so graphs on inputs of unknown static shape (``pytensor.shared(...,
shape=(None, ...))``, ``pm.Data``) keep concrete shapes: a gradient's ``Alloc`` of the pooled
shape compiles.

JAX needs static geometry: ``ws``, ``stride`` and ``pad`` must be constants.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from pytensor.graph.basic import Constant
from pytensor.link.jax.dispatch import jax_funcify

from pytensor_nnet import pool
from pytensor_nnet.kernels import pool as kernels
from pytensor_nnet.shapes.pool import check_pool_args, pool_output_size, pool_pad_pairs


def _static_vector(node, index, name):
    var = node.inputs[index]
    if not isinstance(var, Constant):
        raise NotImplementedError(f"{node.op}: JAX needs {name} to be a constant (it fixes the output shape)")
    return tuple(int(v) for v in np.asarray(var.data).ravel())


def _static_geometry(op, node, first):
    ws, stride, pad = (_static_vector(node, first + i, name) for i, name in enumerate(("ws", "stride", "pad")))
    return ws, stride, pad


class _Geometry:
    """Pooling geometry of one input shape: padded extents, output size, tap slices, divisors."""

    def __init__(self, op, x_shape, ws, stride, pad):
        self.lead = len(x_shape) - op.ndim
        spatial = tuple(int(s) for s in x_shape[self.lead :])
        check_pool_args(spatial, ws, stride, pad, op.ignore_border)
        self.spatial, self.ws, self.stride, self.pad = spatial, ws, stride, pad
        self.out = tuple(pool_output_size(n, k, s, p, op.ignore_border) for n, k, s, p in zip(spatial, ws, stride, pad))
        self.pairs = pool_pad_pairs(spatial, ws, stride, pad, op.ignore_border)
        self.mode = op.mode

    @property
    def lead_pads(self):
        return [(0, 0)] * self.lead + list(self.pairs)

    def padded(self, a, value):
        return jnp.pad(a, self.lead_pads, constant_values=value)

    def unpadded(self, a):
        return a[(Ellipsis,) + tuple(slice(lo, lo + n) for (lo, _), n in zip(self.pairs, self.spatial))]

    def taps(self):
        """Index of each window tap in the padded input, as strided slices over the output."""
        for tap in itertools.product(*(range(k) for k in self.ws)):
            yield (Ellipsis,) + tuple(slice(t, t + s * (o - 1) + 1, s) for t, s, o in zip(tap, self.stride, self.out))

    def placed(self, values, tap, padded_shape):
        """``values`` (output-shaped) at the padded-input positions of window tap number
        ``tap`` (``taps()`` order), zeros elsewhere: the transpose of ``xp[taps()[tap]]``.
        Written as an interior-padded ``lax.pad``, which XLA fuses into the sum over taps
        (a strided scatter per tap is several times slower on GPUs)."""
        if 0 in self.out:
            return jnp.zeros(padded_shape, dtype=values.dtype)
        offsets = np.unravel_index(tap, self.ws)
        config = [(0, 0, 0)] * self.lead
        for t, s, o, n in zip(offsets, self.stride, self.out, padded_shape[self.lead :]):
            config.append((int(t), int(n) - (int(t) + s * (o - 1) + 1), s - 1))
        return jax.lax.pad(values, jnp.zeros((), dtype=values.dtype), config)

    def reduce(self, x, init, op):
        return jax.lax.reduce_window(
            x, init, op, (1,) * self.lead + self.ws, (1,) * self.lead + self.stride, self.lead_pads
        )

    def divisors(self):
        """Legacy divisors of the outputs (spatial shape), as a numpy array."""
        if self.mode == "sum":
            return np.ones(self.out)
        include = self.mode == "average_inc_pad"
        per_axis = [
            kernels.window_divisors(n, k, s, p, o, include)
            for n, k, s, p, o in zip(self.spatial, self.ws, self.stride, self.pad, self.out)
        ]
        return np.prod(np.stack(np.meshgrid(*per_axis, indexing="ij")), axis=0)


def _average(geo, x):
    total = geo.reduce(x, np.array(0, dtype=x.dtype), jax.lax.add)
    if geo.mode == "sum":
        return total
    return (total / geo.divisors()).astype(x.dtype)


@jax_funcify.register(pool.Pool)
def jax_funcify_Pool(op, node, **kwargs):
    ws, stride, pad = _static_geometry(op, node, 1)
    lowest = kernels.lowest_value(node.inputs[0].type.dtype)

    def pool_op(x, *geometry_inputs):
        geo = _Geometry(op, x.shape, ws, stride, pad)
        if 0 in geo.out:  # a window larger than the padded input: an empty output
            return jnp.zeros(x.shape[: geo.lead] + geo.out, dtype=x.dtype)
        if op.mode == "max":
            return geo.reduce(x, np.array(lowest, dtype=x.dtype), jax.lax.max)
        return _average(geo, x)

    return pool_op


def _max_pair(op, node, rules):
    """JAX ``(x, maxout, g, ...)`` of the max-pooling pair: ``rules[op.max_grad_ties](geo, xp,
    maxout, g)`` gets the input padded with ``lowest`` (padding never equals a maximum of real
    elements, and the first-maximum search skips it)."""
    ws, stride, pad = _static_geometry(op, node, 3)
    lowest = kernels.lowest_value(node.inputs[0].type.dtype)
    rule = rules[op.max_grad_ties]
    like_x = isinstance(op, pool.MaxPoolGrad)

    def max_pair(x, maxout, g, *geometry_inputs):
        geo = _Geometry(op, x.shape, ws, stride, pad)
        if 0 in geo.out:  # no window: the gradient is zero (shaped like x or like maxout)
            return jnp.zeros((x if like_x else maxout).shape, dtype=g.dtype)
        return rule(geo, geo.padded(x, lowest), maxout, g)

    return max_pair


def _first_max_tap(geo, xp):
    """Per output element, the index (in ``geo.taps()`` order, i.e. row-major within the
    window) of its window's first maximum: a running argmax where a later tap wins only if it
    is strictly larger, or the first NaN; padding taps never win."""
    valid = np.pad(np.ones(geo.spatial, dtype=bool), geo.pairs, constant_values=False)
    best = winner = None
    for t, idx in enumerate(geo.taps()):
        v, inside = xp[idx], valid[idx]
        if winner is None:
            best, winner = v, jnp.where(inside, 0, -1)
            continue
        take = inside & ((winner < 0) | (v > best) | ((v != v) & (best == best)))
        best = jnp.where(take, v, best)
        winner = jnp.where(take, t, winner)
    return winner


def _max_pool_grad_first(geo, xp, maxout, gz):
    winner = _first_max_tap(geo, xp)
    zero = jnp.zeros((), dtype=gz.dtype)
    return geo.unpadded(
        sum(geo.placed(jnp.where(winner == t, gz, zero), t, xp.shape) for t in range(int(np.prod(geo.ws))))
    )


def _max_pool_grad_grad_first(geo, xp, maxout, gg):
    winner = _first_max_tap(geo, xp)
    gp = geo.padded(gg, 0)
    ggz = jnp.zeros(maxout.shape, dtype=gg.dtype)
    for t, idx in enumerate(geo.taps()):
        ggz = ggz + jnp.where(winner == t, gp[idx], 0)
    return ggz


def _max_pool_grad_all(geo, xp, maxout, gz):
    zero = jnp.zeros((), dtype=gz.dtype)
    return geo.unpadded(
        sum(geo.placed(jnp.where(xp[idx] == maxout, gz, zero), t, xp.shape) for t, idx in enumerate(geo.taps()))
    )


def _max_pool_grad_grad_all(geo, xp, maxout, gg):
    gp = geo.padded(gg, 0)
    ggz = jnp.zeros(maxout.shape, dtype=gg.dtype)
    for idx in geo.taps():
        ggz = ggz + jnp.where(xp[idx] == maxout, gp[idx], 0)
    return ggz


@jax_funcify.register(pool.MaxPoolGrad)
def jax_funcify_MaxPoolGrad(op, node, **kwargs):
    return _max_pair(op, node, {"first": _max_pool_grad_first, "all": _max_pool_grad_all})


@jax_funcify.register(pool.DownsampleFactorMaxGradGrad)
def jax_funcify_DownsampleFactorMaxGradGrad(op, node, **kwargs):
    return _max_pair(op, node, {"first": _max_pool_grad_grad_first, "all": _max_pool_grad_grad_all})


@jax_funcify.register(pool.WindowCount)
def jax_funcify_WindowCount(op, node, **kwargs):
    def window_count(*sizes):
        try:  # plain ints (an array's shape inside jit, constants): stay plain ints
            return op.evaluate([int(v) for v in sizes])
        except (TypeError, jax.errors.ConcretizationTypeError):
            return op.evaluate([jnp.asarray(v, dtype="int64") for v in sizes], maximum=jnp.maximum)

    return window_count


@jax_funcify.register(pool.AveragePoolGrad)
def jax_funcify_AveragePoolGrad(op, node, **kwargs):
    ws, stride, pad = _static_geometry(op, node, 2)

    def average_pool_grad(x, gz, *geometry_inputs):
        geo = _Geometry(op, x.shape, ws, stride, pad)
        _, pullback = jax.vjp(lambda a: _average(geo, a), jnp.zeros(x.shape, dtype=gz.dtype))
        return pullback(gz)[0]

    return average_pool_grad
