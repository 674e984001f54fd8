"""JAX functions of the concrete-shape Ops of :mod:`pytensor_nnet.rewriting.jax_shapes`.

``StaticShape`` evaluates its integer graph with numpy while JAX traces (its inputs are shape
entries, concrete then), so its outputs are Python ints; ``StaticSplit`` splits at those
ints, ``StaticARange`` counts with them; ``StaticCheckAndRaise`` checks its conditions then.
"""

import jax.numpy as jnp
import numpy as np
from pytensor.link.jax.dispatch import jax_funcify

from pytensor_nnet.rewriting.jax_shapes import (
    StaticARange,
    StaticCheckAndRaise,
    StaticShape,
    StaticSplit,
    describe,
    split_axis,
)


def _not_concrete(op, values):
    """The leaves of ``op`` whose values are traced (inputs JAX could not make static)."""
    traced = []
    for leaf, value in zip(op.leaves, values):
        try:
            np.asarray(value)
        except Exception:  # noqa: BLE001  (JAX's tracer conversion errors vary across versions)
            traced.append(describe(leaf))
    return traced


@jax_funcify.register(StaticShape)
def jax_funcify_StaticShape(op, node, **kwargs):
    def static_shape(*values):
        traced = _not_concrete(op, values)
        if traced:
            raise NotImplementedError(
                f"JAX needs shapes as integers known when it traces the function; this shape is "
                f"computed from {', '.join(traced)}, which JAX traces. Use a constant, or pass that input "
                "only as a shape (PyTensor's JAX linker then makes it a static argument)."
            )
        results = tuple(v.item() for v in op.evaluate(*values))
        return results if len(results) > 1 else results[0]

    return static_shape


@jax_funcify.register(StaticSplit)
def jax_funcify_StaticSplit(op, node, **kwargs):
    axis = split_axis(op, node)  # constant: the rewrite checked

    def static_split(x, *axis_and_splits):
        splits = np.asarray(axis_and_splits[-1], dtype="int64")
        if len(splits) != op.len_splits:
            raise ValueError(f"Split expects {op.len_splits} sizes; got {len(splits)}")
        if (splits < 0).any() or splits.sum() != x.shape[axis]:
            raise ValueError(
                f"Split sizes {tuple(splits.tolist())} must be non-negative and sum to the length "
                f"{x.shape[axis]} of axis {axis}"
            )
        return jnp.split(x, np.cumsum(splits[:-1]), axis=axis)

    return static_split


@jax_funcify.register(StaticCheckAndRaise)
def jax_funcify_StaticCheckAndRaise(op, node, **kwargs):
    def check_and_raise(x, *conds):
        if not all(bool(c) for c in conds):
            raise op.exc_type(op.msg)
        return x

    return check_and_raise


@jax_funcify.register(StaticARange)
def jax_funcify_StaticARange(op, node, **kwargs):
    def static_arange(start, stop, step):
        return jnp.arange(start, stop, step, dtype=op.dtype)

    return static_arange
