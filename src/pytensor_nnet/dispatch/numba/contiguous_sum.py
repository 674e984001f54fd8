"""Numba registration of :class:`pytensor_nnet.contiguous_sum.ContiguousSum`.

The kernel (:func:`pytensor_nnet.kernels.contiguous_sum.sum_runs_into`) sits behind the
boundary of :mod:`pytensor_nnet.dispatch.numba.boundary`: one entry per pair of the input's
and the accumulator's dtypes, compiled once (by the compile helper while the graph compiles)
and cached on disk. A node's own code describes the array as runs of summed and kept axes in
``meta`` and calls the entry, so each new node or graph compiles only that.

``meta`` (int64): the input's size, the number of runs ``r``, the accumulator's size, the
room ``k >= r`` for runs, then ``k`` slots whose first ``r`` hold the run lengths, then ``k``
slots whose first ``r`` hold the flags (1: summed).
"""

import sys
from functools import lru_cache
from hashlib import sha256

import numba
import numpy as np
from numba.np.unsafe.ndarray import to_fixed_tuple
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import register_funcify_and_cache_key

from pytensor_nnet.contiguous_sum import DTYPES, ContiguousSum
from pytensor_nnet.dispatch.numba import boundary, workers
from pytensor_nnet.dispatch.numba.fingerprint import source_fingerprint
from pytensor_nnet.kernels import contiguous_sum as kernels
from pytensor_nnet.kernels.jit import typed_pointer

CACHE_VERSION = 1
KERNEL_FINGERPRINT = source_fingerprint(sys.modules[__name__], boundary, workers, kernels)
_HEADER = 4  # meta's input size, run count, accumulator size and room for runs, before the runs


def _sum_body(acc_dtype):
    """The C entry point of the kernel for accumulators of ``acc_dtype`` (the input's dtype is
    the entry's): ``a`` the input, ``out`` the accumulator (zeroed; its items are ``acc_dtype``
    whatever the signature says), ``meta`` as in the module doc."""
    acc = getattr(np, acc_dtype)

    def body(a, b, c, out, meta):
        header = numba.carray(meta, (_HEADER,))
        n_runs, room = header[1], header[3]
        m = numba.carray(meta, (_HEADER + 2 * room,))
        flat = numba.carray(a, (header[0],))
        total = numba.carray(typed_pointer(workers.pointer_address(out), acc), (header[2],))
        runs, flags = m[_HEADER : _HEADER + n_runs], m[_HEADER + room : _HEADER + room + n_runs]
        kernels.sum_runs_into(flat, runs, flags, total, acc(0))
        return boundary.DONE

    body.__name__ = f"contiguous_sum_into_{acc_dtype}_c"
    return body


#: The entries by name, one per accumulator dtype (each compiled for the input dtypes it meets).
BOUNDARY_BODIES = {body.__name__: body for body in map(_sum_body, DTYPES)}


@lru_cache
def _entry(dtype, acc_dtype):
    return boundary.lazy_kernel(BOUNDARY_BODIES[f"contiguous_sum_into_{acc_dtype}_c"], dtype, KERNEL_FINGERPRINT)


def _contiguous_sum(ndim, axes, dtype, acc_dtype, out_dtype):
    """The function of a node: ``x`` (``ndim`` dimensions of ``dtype``) -> its sum over
    ``axes``, accumulated in ``acc_dtype``, as ``out_dtype``."""
    summed = tuple(axis in axes for axis in range(ndim))
    kept_ndim = ndim - len(axes)
    same_dtype = np.dtype(acc_dtype) == np.dtype(out_dtype)
    entry = _entry(dtype, acc_dtype)
    table, resolve = entry.table, entry.resolve

    @numba_basic.numba_njit
    def contiguous_sum(x):
        room = max(ndim, 1)
        meta = np.empty(_HEADER + 2 * room, np.int64)
        kept_shape = np.empty(max(kept_ndim, 1), np.int64)
        n_runs, n_kept, out_size = 0, 0, 1
        for axis in range(ndim):  # runs: summed or kept axes in a row, those of length 1 left out
            size = x.shape[axis]
            if not summed[axis]:
                kept_shape[n_kept] = size
                n_kept += 1
                out_size *= size
            if size == 1:
                continue
            if n_runs > 0 and meta[_HEADER + room + n_runs - 1] == summed[axis]:
                meta[_HEADER + n_runs - 1] *= size
            else:
                meta[_HEADER + n_runs] = size
                meta[_HEADER + room + n_runs] = summed[axis]
                n_runs += 1
        if n_runs == 0:  # a single element
            meta[_HEADER], meta[_HEADER + room], n_runs = 1, 1, 1
        meta[0], meta[1], meta[2], meta[3] = x.size, n_runs, out_size, room
        flat = np.ascontiguousarray(x)  # x itself if C-contiguous
        total = np.zeros(out_size, acc_dtype)
        address = workers.resolved_address(workers.symbol_address(table), workers.symbol_address(resolve), 0)
        if address == 0:
            raise RuntimeError("pytensor_nnet could not compile its sum kernel (see the log)")
        if workers.call_entry_on(address, flat, flat, flat, total, meta) != boundary.DONE:
            raise ValueError("the sum kernel refused its arguments (an internal error: please report it)")
        if same_dtype:
            return total.reshape(to_fixed_tuple(kept_shape, kept_ndim))
        return total.astype(out_dtype).reshape(to_fixed_tuple(kept_shape, kept_ndim))

    return contiguous_sum


@register_funcify_and_cache_key(ContiguousSum)
def numba_funcify_ContiguousSum(op, node, **kwargs):
    dtype = node.inputs[0].type.dtype
    function = _contiguous_sum(op.ndim, op.axes, dtype, op.acc_dtype, op.dtype)
    key = str((type(op).__qualname__, op._props(), dtype, KERNEL_FINGERPRINT, CACHE_VERSION))
    return function, sha256(key.encode()).hexdigest()
