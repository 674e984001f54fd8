"""PyTorch implementations of the block-sparse Ops: a gather and an einsum, a scatter-add.

Shapes are checked with the same messages as the other backends. Index *values* live on the
device and a compiled function cannot raise on them without a host round trip, so, as in
JAX, an out-of-range (or negative) block index turns the whole output into NaN (the indices
are clamped first, so nothing reads out of bounds). The ``inplace`` variants compute a new
tensor too (PyTensor turns off inplace rewrites for this backend).
"""

import torch
from pytensor.link.pytorch.dispatch import pytorch_funcify

from pytensor_nnet.blocksparse import BlockZeros, CheckBlockIndices, SparseBlockGemv, SparseBlockOuter
from pytensor_nnet.dispatch.pytorch.utils import as_ints
from pytensor_nnet.kernels.blocksparse import GEMV_LAYOUT, OUTER_LAYOUT, match_dims


def _clamped(idx, n_blocks):
    """``idx`` as int64 clamped into ``[0, n_blocks)``, and whether every entry was in range."""
    idx = idx.to(torch.int64)
    ok = ((idx >= 0) & (idx < n_blocks)).all()
    return idx.clamp(0, max(n_blocks - 1, 0)), ok


def _nan_unless(ok, out):
    return torch.where(ok, out, torch.full((), float("nan"), dtype=out.dtype, device=out.device))


@pytorch_funcify.register(SparseBlockGemv)
def pytorch_funcify_SparseBlockGemv(op, node, **kwargs):
    def sparse_block_gemv(o, W, h, input_idx, output_idx):
        match_dims(
            GEMV_LAYOUT,
            {
                "o": tuple(o.shape),
                "W": tuple(W.shape),
                "h": tuple(h.shape),
                "inputIdx": tuple(input_idx.shape),
                "outputIdx": tuple(output_idx.shape),
            },
        )
        i_idx, i_ok = _clamped(input_idx, W.shape[0])
        o_idx, o_ok = _clamped(output_idx, W.shape[1])
        # (batch, iWin, oWin, iSize, oSize): the blocks each example multiplies.
        blocks = W[i_idx[:, :, None], o_idx[:, None, :]]
        out = o + torch.einsum("bik,bijkl->bjl", h, blocks)
        return _nan_unless(i_ok & o_ok, out)

    return sparse_block_gemv


@pytorch_funcify.register(SparseBlockOuter)
def pytorch_funcify_SparseBlockOuter(op, node, **kwargs):
    def sparse_block_outer(o, x, y, x_idx, y_idx, alpha):
        match_dims(
            OUTER_LAYOUT,
            {
                "o": tuple(o.shape),
                "x": tuple(x.shape),
                "y": tuple(y.shape),
                "xIdx": tuple(x_idx.shape),
                "yIdx": tuple(y_idx.shape),
            },
        )
        xi, x_ok = _clamped(x_idx, o.shape[0])
        yi, y_ok = _clamped(y_idx, o.shape[1])
        updates = alpha * torch.einsum("bik,bjl->bijkl", x, y)
        # Broadcast indices (batch, xWin, 1) x (batch, 1, yWin): a scatter-add, so examples
        # hitting the same block accumulate.
        out = o.index_put((xi[:, :, None], yi[:, None, :]), updates, accumulate=True)
        return _nan_unless(x_ok & y_ok, out)

    return sparse_block_outer


@pytorch_funcify.register(BlockZeros)
def pytorch_funcify_BlockZeros(op, node, **kwargs):
    dtype = getattr(torch, op.dtype)

    def block_zeros(*shape):
        device = next((s.device for s in shape if isinstance(s, torch.Tensor)), None)
        return torch.zeros(as_ints(shape), dtype=dtype, device=device)

    return block_zeros


@pytorch_funcify.register(CheckBlockIndices)
def pytorch_funcify_CheckBlockIndices(op, node, **kwargs):
    # Index values are on the device: nothing to raise on. Clamped, so that the gather they
    # feed (the bias rows) never reads out of bounds; SparseBlockGemv, which gets the indices
    # as given, turns a bad one into a NaN output.
    def check_block_indices(idx, n_blocks, rows):
        return idx.clamp(0, None).minimum(torch.clamp(n_blocks - 1, min=0).to(idx.dtype))

    return check_block_indices
