"""Opt-in tuning of glibc's ``malloc`` for calls that allocate and free large arrays.

A compiled PyTensor function returns new output arrays on every call and frees its large
intermediates before it returns. glibc's ``malloc`` serves a block above its ``mmap``
threshold with fresh pages, raises that threshold only when it frees a larger block (up to
32 MiB), and gives the top of its heap back to the system whenever more than twice the
threshold lies free there. So, depending on what the process freed before, every call may
fault in its outputs' pages afresh: in a new process, a depthwise 3x3 layer's forward +
backward (16 x 128 x 28 x 28, float32) took 6.1 ms with 3,100 page faults a call, 2.3 ms without
them; PyTorch's forward pass of the same layer 5.3 ms against 0.9 ms. (The convolution
kernels' own scratch never does: it lives in ``kernels.workspace``.)

:func:`tune_malloc` sets both thresholds for the whole process, which every library in it
then shares (numpy, PyTensor, PyTorch): blocks up to ``mmap_threshold`` come from the heap,
and up to ``trim_threshold`` bytes stay free at its top for the next call. The price is
memory the process keeps after it freed it. Importing ``pytensor_nnet`` never calls it.
Starting Python with ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456``
does the same.
"""

from __future__ import annotations

import ctypes
import operator

from pytensor_nnet.kernels.blas_threads import libc_function

#: ``mallopt``'s parameter numbers (glibc's ``malloc.h``).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: The largest ``mmap`` threshold glibc's manual allows on 64-bit machines (half the size of
#: a thread's heap; glibc 2.36 takes larger values without complaint).
MAX_MMAP_THRESHOLD = 32 * 2**20


def tune_malloc(mmap_threshold=MAX_MMAP_THRESHOLD, trim_threshold=256 * 2**20):
    """Make glibc's ``malloc`` serve blocks of up to ``mmap_threshold`` bytes from its heap
    and keep up to ``trim_threshold`` free bytes at the heap's top, for the whole process
    (see the module doc). Returns True where applied, False where the C library is not
    glibc (nothing changes then).

    Raises ``TypeError`` for a threshold that is not an integer, ``ValueError`` for one
    out of range (``mmap_threshold`` 0 to 32 MiB, ``trim_threshold`` 0 to 2 GiB - 1).
    """
    limits = {"mmap_threshold": MAX_MMAP_THRESHOLD, "trim_threshold": 2**31 - 1}
    values = {}
    for name, value in (("mmap_threshold", mmap_threshold), ("trim_threshold", trim_threshold)):
        try:
            values[name] = operator.index(value)
        except TypeError:
            raise TypeError(f"{name} must be an integer number of bytes; got {value!r}") from None
        if not 0 <= values[name] <= limits[name]:
            raise ValueError(f"{name} must be between 0 and {limits[name]} bytes; got {value}")
    address = libc_function("mallopt")
    if not address or not libc_function("gnu_get_libc_version"):
        return False
    mallopt = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_int)(address)
    applied = mallopt(_M_MMAP_THRESHOLD, values["mmap_threshold"]) == 1
    return mallopt(_M_TRIM_THRESHOLD, values["trim_threshold"]) == 1 and applied
