"""Numba registrations for the block-sparse Ops: thin wrappers around the validated kernels.

The kernels check shapes and block indices before any loop touches memory. The Op's
``inplace`` flag picks the kernel when the graph is compiled: ``*_into`` accumulates into the
buffer of ``o``, ``*_kernel`` into a copy (so a read-only ``o``, e.g. a constant, is fine).
"""

import sys

import numba
import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import default_hash_key_from_props, register_funcify_and_cache_key

from pytensor_nnet.blocksparse import BlockZeros, CheckBlockIndices, SparseBlockGemv, SparseBlockOuter
from pytensor_nnet.dispatch.numba.fingerprint import source_fingerprint
from pytensor_nnet.kernels import blocksparse as kernels

# PyTensor caches each compiled graph on disk under these keys, with the kernels compiled in;
# Numba does not notice when a callee in another file changes. So the key follows the code
# (see ``fingerprint``): this module's wrappers and the kernels they call.
CACHE_VERSION = 1
_KERNELS_DIGEST = source_fingerprint(sys.modules[__name__], kernels)


def _cache_key(op):
    return default_hash_key_from_props(op, cache_version=CACHE_VERSION, kernels=_KERNELS_DIGEST)


@register_funcify_and_cache_key(SparseBlockGemv)
def numba_funcify_SparseBlockGemv(op, node, **kwargs):
    kernel = kernels.gemv_into if op.inplace else kernels.gemv_kernel

    @numba_basic.numba_njit
    def sparse_block_gemv(o, W, h, input_idx, output_idx):
        return kernel(o, W, h, input_idx, output_idx)

    return sparse_block_gemv, _cache_key(op)


@register_funcify_and_cache_key(SparseBlockOuter)
def numba_funcify_SparseBlockOuter(op, node, **kwargs):
    kernel = kernels.outer_into if op.inplace else kernels.outer_kernel

    @numba_basic.numba_njit
    def sparse_block_outer(o, x, y, x_idx, y_idx, alpha):
        return kernel(o, x, y, x_idx, y_idx, alpha.item())

    return sparse_block_outer, _cache_key(op)


@register_funcify_and_cache_key(CheckBlockIndices)
def numba_funcify_CheckBlockIndices(op, node, **kwargs):
    # The exceptions are raised here, with the Op's names as constants (the Numba bug noted
    # in ``kernels.check_gemv_args``); they format the same messages as ``perform``'s.
    name, dim, blocks_from, rows_from = op.name, op.dim, op.blocks_from, op.rows_from
    index_from = f"{dim} = {blocks_from}"

    @numba_basic.numba_njit
    def check_block_indices(idx, n_blocks, rows):
        n, n_rows = n_blocks.item(), rows.item()
        if n_rows != n:
            raise kernels.BlockCountError(rows_from, n_rows, dim, n, blocks_from)
        b, i = kernels.first_bad_index(idx, n)
        if b >= 0:
            raise kernels.BlockIndexError(name, b, i, idx[b, i], n, index_from)
        return idx

    return check_block_indices, _cache_key(op)


@register_funcify_and_cache_key(BlockZeros)
def numba_funcify_BlockZeros(op, node, **kwargs):
    dtype = np.dtype(op.dtype)
    out_type = numba.types.Array(numba.from_dtype(dtype), 4, "C")

    @numba_basic.numba_njit
    def block_zeros(s0, s1, s2, s3):
        shape = (s0.item(), s1.item(), s2.item(), s3.item())
        # Pages stay virtual until written; Numba's zeros would memset the whole W-sized
        # array. One object-mode call, tens of microseconds.
        with numba.objmode(out=out_type):
            out = kernels.lazy_zeros(shape, dtype)
        return out

    return block_zeros, _cache_key(op)
