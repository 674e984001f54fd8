"""JAX registrations for the block-sparse Ops: a gather and an einsum, a scatter-add.

Shapes are concrete while JAX traces, so they are checked with the same messages as the
other backends. Index *values* are traced: a jitted function cannot raise on them, so an
out-of-range (or negative) block index turns the whole output into NaN instead of wrapping
around or being clipped (JAX's default for gathers and scatters).
"""

import jax.numpy as jnp
from pytensor.link.jax.dispatch import jax_funcify

from pytensor_nnet.blocksparse import CheckBlockIndices, SparseBlockGemv, SparseBlockOuter
from pytensor_nnet.kernels.blocksparse import GEMV_LAYOUT, OUTER_LAYOUT, match_dims


def _nan_unless_in_range(out, *index_and_counts):
    """``out`` if every ``idx`` of ``(idx, n_blocks)`` pairs lies in ``[0, n_blocks)``, else NaN."""
    ok = jnp.bool_(True)
    for idx, n_blocks in index_and_counts:
        ok &= jnp.all((idx >= 0) & (idx < n_blocks))
    return jnp.where(ok, out, jnp.nan)


@jax_funcify.register(SparseBlockGemv)
def jax_funcify_SparseBlockGemv(op, **kwargs):
    def sparse_block_gemv(o, W, h, input_idx, output_idx):
        match_dims(
            GEMV_LAYOUT,
            {
                "o": o.shape,
                "W": W.shape,
                "h": h.shape,
                "inputIdx": input_idx.shape,
                "outputIdx": output_idx.shape,
            },
        )
        # (batch, iWin, oWin, iSize, oSize): the blocks each example multiplies.
        blocks = W[input_idx[:, :, None], output_idx[:, None, :]]
        out = o + jnp.einsum("bik,bijkl->bjl", h, blocks)
        return _nan_unless_in_range(out, (input_idx, W.shape[0]), (output_idx, W.shape[1]))

    return sparse_block_gemv


@jax_funcify.register(SparseBlockOuter)
def jax_funcify_SparseBlockOuter(op, **kwargs):
    def sparse_block_outer(o, x, y, x_idx, y_idx, alpha):
        match_dims(OUTER_LAYOUT, {"o": o.shape, "x": x.shape, "y": y.shape, "xIdx": x_idx.shape, "yIdx": y_idx.shape})
        updates = alpha * jnp.einsum("bik,bjl->bijkl", x, y)
        # Broadcast indices (batch, xWin, 1) x (batch, 1, yWin): a scatter-add, so examples
        # hitting the same block accumulate.
        out = o.at[x_idx[:, :, None], y_idx[:, None, :]].add(updates)
        return _nan_unless_in_range(out, (x_idx, o.shape[0]), (y_idx, o.shape[1]))

    return sparse_block_outer


@jax_funcify.register(CheckBlockIndices)
def jax_funcify_CheckBlockIndices(op, **kwargs):
    # Index values are traced: nothing to raise on; SparseBlockGemv turns a bad index into NaN.
    def check_block_indices(idx, n_blocks, rows):
        return idx

    return check_block_indices
