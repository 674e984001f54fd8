"""Compiled helpers shared by the Numba registrations of the pooling and im2col Ops."""

from __future__ import annotations

from functools import lru_cache

from pytensor.link.numba.dispatch import basic as numba_basic


@lru_cache
def to_3d_tuple(nd, fill):
    """Compiled conversion of an ``nd``-vector (1 to 3 entries) to a 3-tuple, left-filled with ``fill``.

    The kernels take 3-d geometry (``kernels.im2col.as_3d_geometry`` is the Python twin).
    """
    if nd == 3:
        return numba_basic.numba_njit(lambda v: (v[0], v[1], v[2]))
    if nd == 2:
        return numba_basic.numba_njit(lambda v: (fill, v[0], v[1]))
    return numba_basic.numba_njit(lambda v: (fill, fill, v[0]))
