"""Scratch memory kept between calls, so that a kernel's work arrays cost no page faults.

The kernels' scratch (the Winograd transforms' padded planes and tile blocks, the im2col
columns, the subsampled images of a strided convolution) is megabytes per call. Asked of
``malloc`` and given back on every call, whether it costs fresh pages every time depends on
the process's history, not on the kernel: glibc serves a request above its ``mmap``
threshold with new pages, raises that threshold to the largest block freed so far (at most
32 MiB), and gives the top of its heap back to the system whenever more than twice the
threshold lies free there. A process that never freed a block of more than about half of a
call's scratch pays for every page on every call, for ever: the strided 3x3 layer of the
benchmark (8 x 32 x 64 x 64 images, float32) took 1.9 ms a forward pass there, with 1,000
page faults a call, against 0.85 ms in a process that once freed an 8 MiB array.

So a kernel takes its scratch from a workspace: one of :data:`SLOTS` blocks of memory that
live as long as the process. :func:`begin` claims a free one (a compare-and-swap on its
flag, so that parts on several threads and calls from several Python threads never share
one), :func:`take` and :func:`take_zeros` hand out consecutive pieces of it, and :func:`end`
gives it back. A piece that does not fit is allocated as before, and at :func:`end` the
workspace grows to what the call asked for in all, so the next call of the same kernel fits.
A kernel that finds no free workspace (more than :data:`SLOTS` at once) allocates everything
as before. The workspaces hold about the largest scratch of a part of a call each (a few
MiB for the benchmark's layers); :func:`release` gives back those not in use.

Pieces are valid until the :func:`end` of their workspace and must not leave the kernel (an
output array is never one). Where the C library's ``malloc`` is not found, no workspace ever
has memory and every piece is allocated as before.
"""

from __future__ import annotations

import ctypes

import numba
import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic
from numba.np.numpy_support import as_dtype

from pytensor_nnet.kernels.blas_threads import libc_function
from pytensor_nnet.kernels.jit import (
    call_external,
    compiled_only,
    external_int64,
    one_argument_call,
    read_int64,
    typed_pointer,
)

#: Workspaces in the process: more than the parts of any call (one per core) times the
#: kernels that hold one at once (two: e.g. a strided convolution's subsampled images, then
#: its Winograd scratch).
SLOTS = 64
#: Pieces start on this many bytes (a cache line, an AVX-512 vector).
ALIGN = 64

# A workspace's row of the table, one cache line: the flag (1: claimed), the block from
# ``malloc``, its first aligned address, its usable bytes, the bytes the claim asked for.
_FLAG, _BLOCK, _BASE, _CAPACITY, _ASKED, _ROW = 0, 1, 2, 3, 4, 8
#: The claim of a kernel that found no free workspace.
NO_WORKSPACE = -1

_TABLE_SYMBOL = "pytensor_nnet_workspace_table"
_MALLOC_SYMBOL = "pytensor_nnet_workspace_malloc"
_FREE_SYMBOL = "pytensor_nnet_workspace_free"
_BEGIN_SYMBOL = "pytensor_nnet_workspace_begin"
_END_SYMBOL = "pytensor_nnet_workspace_end"

_I64 = ir.IntType(64)

_table = (ctypes.c_int64 * (SLOTS * _ROW))()


@numba.cfunc(types.intp(types.uintp), cache=True)
def _no_malloc(size):
    return 0  # a null pointer


@numba.cfunc(types.void(types.voidptr), cache=True)
def _no_free(block):
    pass


def _bind_allocator():
    """Register the table and the allocator's symbols; returns whether ``malloc`` was found."""
    llvm.add_symbol(_TABLE_SYMBOL, ctypes.addressof(_table))
    malloc, free = libc_function("malloc"), libc_function("free")
    if not malloc or not free:
        malloc, free = _no_malloc.address, _no_free.address
    llvm.add_symbol(_MALLOC_SYMBOL, malloc)
    llvm.add_symbol(_FREE_SYMBOL, free)
    return malloc != _no_malloc.address


#: Whether workspaces can hold memory (the C library's ``malloc`` was found).
AVAILABLE = _bind_allocator()


@intrinsic
def _table_address(typingctx):
    """The address of the workspaces' table, as an int64."""

    def codegen(context, builder, signature, args):
        return builder.ptrtoint(external_int64(builder, _TABLE_SYMBOL), _I64)

    return types.int64(), codegen


@intrinsic
def _store(typingctx, address, value):
    """Store the int64 ``value`` at ``address``."""

    def codegen(context, builder, signature, args):
        builder.store(args[1], builder.inttoptr(args[0], _I64.as_pointer()))
        return context.get_dummy_value()

    return types.none(types.int64, types.int64), codegen


@intrinsic
def _claim_flag(typingctx, address):
    """Atomically set the int64 flag at ``address`` from 0 to 1; whether it was 0."""

    def codegen(context, builder, signature, args):
        flag = builder.inttoptr(args[0], _I64.as_pointer())
        result = builder.cmpxchg(flag, ir.Constant(_I64, 0), ir.Constant(_I64, 1), "acq_rel", "monotonic")
        return builder.extract_value(result, 1)

    return types.boolean(types.int64), codegen


@intrinsic
def _clear_flag(typingctx, address):
    """Atomically set the int64 flag at ``address`` to 0, after every earlier write."""

    def codegen(context, builder, signature, args):
        flag = builder.inttoptr(args[0], _I64.as_pointer())
        builder.store_atomic(ir.Constant(_I64, 0), flag, "release", 8)
        return context.get_dummy_value()

    return types.none(types.int64), codegen


#: ``malloc(size)`` as an int64 address (0: none), and ``free`` of such an address.
_malloc = one_argument_call(_MALLOC_SYMBOL, True)
_free = one_argument_call(_FREE_SYMBOL, False)


@intrinsic
def _itemsize(typingctx, dtype):
    """The bytes of an item of ``dtype`` (an array's ``.dtype`` or a number class such as
    ``np.float64``), a constant."""
    if isinstance(dtype, types.NumberClass):
        size = as_dtype(dtype.instance_type).itemsize
    elif isinstance(dtype, types.DType):
        size = as_dtype(dtype.dtype).itemsize
    else:
        return None

    def codegen(context, builder, signature, args):
        return ir.Constant(_I64, size)

    return types.int64(dtype), codegen


@numba.njit(inline="always")
def _field(slot, field):
    """The address of ``field`` of workspace ``slot``'s row."""
    return _table_address() + 8 * (_ROW * slot + field)


@numba.cfunc(types.int64(), cache=True)
def _begin_c():
    for slot in range(SLOTS):
        if read_int64(_field(slot, _FLAG), 0) == 0 and _claim_flag(_field(slot, _FLAG)):
            _store(_field(slot, _ASKED), 0)
            return slot
    return NO_WORKSPACE


@numba.cfunc(types.void(types.int64), cache=True)
def _end_c(slot):
    if slot < 0:
        return
    asked = read_int64(_field(slot, _ASKED), 0)
    if asked > read_int64(_field(slot, _CAPACITY), 0):
        block = read_int64(_field(slot, _BLOCK), 0)
        if block != 0:
            _free(block)
        block = _malloc(asked + ALIGN)
        _store(_field(slot, _BLOCK), block)
        _store(_field(slot, _BASE), (block + ALIGN - 1) // ALIGN * ALIGN if block != 0 else 0)
        _store(_field(slot, _CAPACITY), asked if block != 0 else 0)
    _clear_flag(_field(slot, _FLAG))


# Compiled once, called by name from every kernel (no copy of their code in each kernel's).
llvm.add_symbol(_BEGIN_SYMBOL, _begin_c.address)
llvm.add_symbol(_END_SYMBOL, _end_c.address)


@intrinsic
def _begin(typingctx):
    def codegen(context, builder, signature, args):
        return call_external(builder, _BEGIN_SYMBOL, True, args)

    return types.int64(), codegen


_end = one_argument_call(_END_SYMBOL, False)


@compiled_only
def begin():
    """Claim a free workspace for the calling kernel; returns the claim (the workspace's
    number, or :data:`NO_WORKSPACE` where none was free) for :func:`take` and :func:`end`."""
    return _begin()


@compiled_only
def take(claim, count, dtype):
    """A 1-d C-contiguous array of ``count`` items of ``dtype`` (an array's ``.dtype`` or a
    number class: one compiled version per dtype), uninitialised: the next piece of the claimed workspace, or a
    new array where it does not fit."""
    if claim < 0 or count == 0:
        return np.empty(count, dtype=dtype)
    start = read_int64(_field(claim, _ASKED), 0)
    asked = start + (count * _itemsize(dtype) + ALIGN - 1) // ALIGN * ALIGN
    _store(_field(claim, _ASKED), asked)
    if asked > read_int64(_field(claim, _CAPACITY), 0):
        return np.empty(count, dtype=dtype)
    return numba.carray(typed_pointer(read_int64(_field(claim, _BASE), 0) + start, dtype), (count,))


@compiled_only
def take_zeros(claim, count, dtype):
    """:func:`take`, zero-filled."""
    piece = take(claim, count, dtype)
    for i in range(count):
        piece[i] = 0
    return piece


@compiled_only
def end(claim):
    """Give the claimed workspace back, grown first to everything the claim asked for where
    that did not fit (the pieces of the claim must no longer be used)."""
    _end(claim)


@numba.njit(cache=True)
def _release_free():
    released = 0
    for slot in range(SLOTS):
        if _claim_flag(_field(slot, _FLAG)):
            released += read_int64(_field(slot, _CAPACITY), 0)
            block = read_int64(_field(slot, _BLOCK), 0)
            if block != 0:
                _free(block)
            for field in (_BLOCK, _BASE, _CAPACITY):
                _store(_field(slot, field), 0)
            _clear_flag(_field(slot, _FLAG))
    return released


def release():
    """Free the memory of every workspace not in use; returns the bytes freed. Kernels
    running meanwhile keep theirs; the next calls allocate afresh."""
    return int(_release_free())


def held_bytes():
    """The bytes the workspaces hold now (in use or not)."""
    return sum(_table[slot * _ROW + _CAPACITY] for slot in range(SLOTS))
