"""Sums over some axes of a C-contiguous array, read once in memory order.

The caller describes the array as *runs*: consecutive axes merged while they are all summed
or all kept (axes of length 1 left out), so ``sum(x, axis=(0, 2, 3))`` of an ``(N, C, H, W)``
array is the runs ``(N, C, H * W)``, summed / kept / summed, and a sum over every axis is one
summed run. The last run is read in a tight loop: summed into a scalar (which LLVM vectorises
with reassociation allowed) or added element by element into as many outputs (also
vectorised); the runs before it are walked as an odometer that moves the output offset.

One compiled function serves every axis pattern and rank; it is specialised only by the
dtypes of the array and of the accumulator.
"""

import numba
import numpy as np


@numba.njit(cache=True, fastmath={"reassoc"})
def _total(run, zero):
    total = zero
    for i in range(run.size):
        total += run[i]
    return total


@numba.njit(cache=True)
def _add_into(out, run):
    for i in range(run.size):
        out[i] += run[i]


@numba.njit(cache=True, fastmath={"reassoc"})
def sum_runs_into(flat, runs, summed, out, zero):
    """Add to ``out`` the sums of ``flat`` over its summed runs.

    flat: (n,) the array's elements in C order; runs: (r,) int64 run lengths, their product
    ``n``; summed: (r,) whether each run is summed (bool, or int: nonzero); out: (m,) the
    accumulator, ``m`` the product of the kept runs, kept runs in C order; zero: the
    accumulator dtype's zero.
    """
    if runs.size == 0 or runs.size != summed.size:
        raise ValueError("sum_runs_into: runs and summed must be non-empty and of one length")
    total, kept = 1, 1
    for r in range(runs.size):
        total *= runs[r]
        if not summed[r]:
            kept *= runs[r]
    if total != flat.size or kept != out.size:
        raise ValueError("sum_runs_into: the runs do not describe flat and out")
    last = runs.size - 1
    inner = runs[last]
    if inner == 0:
        return
    stride = np.zeros(runs.size, np.int64)  # output offset step of each run (0: summed)
    step = 1
    for r in range(last, -1, -1):
        if not summed[r]:
            stride[r] = step
            step *= runs[r]
    count = np.zeros(runs.size, np.int64)
    offset = 0
    for start in range(0, flat.size, inner):
        if summed[last]:
            out[offset] += _total(flat[start : start + inner], zero)
        else:
            _add_into(out[offset : offset + inner], flat[start : start + inner])
        r = last - 1
        while r >= 0:
            count[r] += 1
            offset += stride[r]
            if count[r] < runs[r]:
                break
            offset -= stride[r] * runs[r]
            count[r] = 0
            r -= 1
