"""Boundary kernels on several threads: the batch split into parts, one thread per part.

The kernels run one image after another. Where their work between GEMMs is serial (the
Winograd transforms, the depthwise loops, the small per-image GEMMs of few-channel layers),
the second core idles. So the caller of a kernel called across the boundary (``boundary``:
the convolution's driver entry, the pooling glue) can split the batch into contiguous parts
and run the same kernel on every part at once: part 0 on the calling thread, the others on
threads started for this call (POSIX ``pthread_create``) and joined before it returns. No
thread lives between calls: nothing spins while the graph runs other Ops, and a process that
forks (multiprocessing, PyMC's chains) forks a single-threaded one. The pooling glue
(``pool``) splits its images x channels axis the same way. Meanwhile the BLAS runs on one
thread per part (``blas_threads``; the count is restored after the join). Starting and
joining a thread costs tens of microseconds, mostly the wake-up of the idle core: when its
own part is done, the calling thread polls for the others' threads to end (up to
:data:`POLL_TICKS`) instead of blocking at once, so that their end does not have to wake it
too (the pointwise layer's forward pass, 1.5-1.7 ms, took 0.1 ms less).
The calling thread lets go of Python's GIL while the parts run (when it holds it, as a
compiled function called from Python does): a part may need it, e.g. Numba's BLAS glue takes
it to look up the BLAS functions on the process's first GEMM, and a thread that waits for the
GIL while the caller waits for the thread would wait forever.

How many parts (:func:`parts_for`): the BLAS's thread count (``OPENBLAS_NUM_THREADS`` bounds
both), at most one per image and per :data:`MIN_PART_FLOPS` of work, and one while the
machine is busy (``blas_threads.machine_is_busy``: another thread would wait for a core).
The convolution's driver splits every algorithm's calls, large GEMMs included, rather than
leave them to the BLAS's threads: after each GEMM on two threads, OpenBLAS's worker thread
spins for about 0.1 s (its idle timeout) before it sleeps, taking a core from whatever runs
next. A ResNet 3x3 layer's forward + backward after a pointwise layer's took 65-69 ms against
43-48 ms alone; in parts, the GEMMs of one call are as fast (the pointwise layer's three
directions 2.2-2.3 ms each either way) and a 5x5 or a strided layer's forward + backward
was 5-20% faster in an interleaved run. A call of one image is split too, into parts of its
groups, filters or input channels (the convolution's ``_run_parts``), and a call in one
part runs on one BLAS thread (:func:`call_alone`): the driver never leaves the BLAS's
threads spinning.

Where the C library has no ``pthread_create`` the symbols are bound to stand-ins that refuse
to start a thread, and every part runs on the calling thread, one after the other.

A task is a row of an int64 array: the entry's address, its five arguments (addresses of
``a``, ``b``, ``c``, ``out`` and ``meta``), the status it returned, the thread's handle, and
room for ``meta`` itself (so that it lives exactly as long as the row).
"""

from __future__ import annotations

import contextlib
import ctypes

import numba
import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba.core import cgutils, funcdesc, types
from numba.extending import intrinsic

from pytensor_nnet.kernels.blas_threads import (
    blas_get_num_threads,
    blas_set_num_threads,
    libc_function,
    machine_is_busy,
)
from pytensor_nnet.kernels.jit import compiled_only, external_int64, one_argument_call, read_int64

_CREATE_SYMBOL = "pytensor_nnet_thread_create"
_JOIN_SYMBOL = "pytensor_nnet_thread_join"
_TRY_JOIN_SYMBOL = "pytensor_nnet_thread_try_join"
_WAIT_SYMBOL = "pytensor_nnet_wait_for_thread"
_RUN_TASK_SYMBOL = "pytensor_nnet_run_task"
_FORCED_SYMBOL = "pytensor_nnet_forced_parts"

#: What a boundary entry returns when it succeeded. One that raised returns 0: a Numba C
#: callback prints the exception (under the GIL, which it takes) and returns 0. The entries hold
#: no ``try``: one costs about a second of compile time per entry, and a ``try`` around inlined
#: code does not stop at every raise in it.
DONE = 3

#: Columns of a task row before its ``meta``: entry, a, b, c, out, meta address, status, handle.
TASK_ENTRY, TASK_META, TASK_STATUS, TASK_HANDLE, TASK_HEADER = 0, 5, 6, 7, 8

#: How long the calling thread, done with its own part, polls for the others' threads to end
#: (``pthread_tryjoin_np``) before it blocks in ``pthread_join``, in ticks of the CPU's
#: time-stamp counter (about 0.7-1 ms at 2-3 GHz). A thread that blocks lets its core idle,
#: and waking an idle core took 35-45 microseconds here (2-core VM, measured in C: a thread
#: started, or woken by a futex, on the idle core): a call that joined by blocking paid that
#: twice, once for its part's thread to start and once to be woken by its end. Parts are
#: balanced, so the others end within tens of microseconds of the caller's; the poll costs
#: the caller's own core, nothing else's, and only during the call.
POLL_TICKS = 1 << 21

#: A part gets at least this much work (flops): starting and joining a thread costs tens of
#: microseconds, about 2 MFLOP of one core's time.
MIN_PART_FLOPS = 4_000_000

_I64 = ir.IntType(64)
_I32 = ir.IntType(32)
_VOID_P = ir.IntType(8).as_pointer()
_ENTRY_TYPE = ir.FunctionType(_I64, [_VOID_P] * 5)
_START_TYPE = ir.FunctionType(_I64, [_I64.as_pointer()])


@intrinsic
def symbol_address(typingctx, function):
    """The address of an ``ExternalFunction``'s symbol, as an int64 (a relocation by name in
    the machine code, like a call, so cached code stays valid in a new process)."""
    if not isinstance(function, types.ExternalFunction):
        return None

    def codegen(context, builder, signature, args):
        # Declared as Numba declares it for a call, so that both can share the declaration.
        descriptor = funcdesc.ExternalFunctionDescriptor(function.symbol, function.sig.return_type, function.sig.args)
        declared = context.declare_external_function(builder.module, descriptor)
        return builder.ptrtoint(declared, _I64)

    return types.int64(function), codegen


@intrinsic
def call_entry(typingctx, address, a, b, c, out, meta):
    """Call the boundary entry at ``address`` with five addresses; returns its status."""

    def codegen(context, builder, signature, args):
        entry = builder.inttoptr(args[0], _ENTRY_TYPE.as_pointer())
        return builder.call(entry, [builder.inttoptr(value, _VOID_P) for value in args[1:]])

    return types.int64(types.int64, types.int64, types.int64, types.int64, types.int64, types.int64), codegen


@intrinsic
def call_resolver(typingctx, address, slot):
    """Call the C function ``int64 resolve(int64 slot)`` at ``address`` (a resolver of
    ``boundary.LazyKernels``); returns its result."""

    def codegen(context, builder, signature, args):
        resolver = builder.inttoptr(args[0], ir.FunctionType(_I64, [_I64]).as_pointer())
        return builder.call(resolver, [args[1]])

    return types.int64(types.int64, types.int64), codegen


@intrinsic
def pointer_address(typingctx, pointer):
    """The address held by the C pointer ``pointer`` (an entry's operand), as an int64."""
    if not isinstance(pointer, types.CPointer):
        return None

    def codegen(context, builder, signature, args):
        return builder.ptrtoint(args[0], _I64)

    return types.int64(pointer), codegen


@compiled_only
def resolved_address(table, resolver, slot):
    """The address of entry ``slot`` of a ``boundary.LazyKernels`` whose table and resolver
    are at the addresses ``table`` and ``resolver`` (:func:`symbol_address`): read from the
    table, or compiled by the resolver the first time (0 if that failed)."""
    address = read_int64(table, slot)
    if address == 0:
        address = call_resolver(resolver, slot)
    return address


@compiled_only
def call_entry_on(address, a, b, c, out, meta):
    """:func:`call_entry` on the data of the arrays ``a``, ``b``, ``c``, ``out`` and ``meta``
    (C-contiguous; ``meta`` int64); returns the entry's status."""
    a_address, b_address, c_address = np.int64(a.ctypes.data), np.int64(b.ctypes.data), np.int64(c.ctypes.data)
    out_address, meta_address = np.int64(out.ctypes.data), np.int64(meta.ctypes.data)
    return call_entry(address, a_address, b_address, c_address, out_address, meta_address)


@numba.cfunc(types.int64(types.CPointer(types.int64)), cache=True)
def _run_task(task):
    """A thread's start routine: run the task row at ``task`` and store its status (the int64
    result is the thread's ``void *`` result, always NULL)."""
    task[TASK_STATUS] = call_entry(task[0], task[1], task[2], task[3], task[4], task[TASK_META])
    return 0


@intrinsic
def _thread_create(typingctx, task):
    """Start a thread running the task row at address ``task``; its handle goes to the row.
    Returns 0 when the thread runs."""

    def codegen(context, builder, signature, args):
        module = builder.module
        create = cgutils.get_or_insert_function(
            module, ir.FunctionType(_I32, [_I64.as_pointer(), _VOID_P, _VOID_P, _VOID_P]), _CREATE_SYMBOL
        )
        start = cgutils.get_or_insert_function(module, _START_TYPE, _RUN_TASK_SYMBOL)
        row = builder.inttoptr(args[0], _I64.as_pointer())
        handle = builder.gep(row, [ir.Constant(_I64, TASK_HANDLE)])
        status = builder.call(
            create, [handle, ir.Constant(_VOID_P, None), builder.bitcast(start, _VOID_P), builder.bitcast(row, _VOID_P)]
        )
        return builder.sext(status, _I64)

    return types.int64(types.int64), codegen


def _join_call(symbol):
    """An intrinsic calling ``int f(pthread_t, void **)``, the C function registered as
    ``symbol``, on the thread of the task row at address ``task``; returns its status."""

    def call(typingctx, task):
        def codegen(context, builder, signature, args):
            join = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_I32, [_I64, _VOID_P]), symbol)
            row = builder.inttoptr(args[0], _I64.as_pointer())
            handle = builder.load(builder.gep(row, [ir.Constant(_I64, TASK_HANDLE)]))
            return builder.sext(builder.call(join, [handle, ir.Constant(_VOID_P, None)]), _I64)

        return types.int64(types.int64), codegen

    call.__name__ = call.__qualname__ = f"call_{symbol}"
    return intrinsic(call)


#: Wait for the thread of the task row at address ``task``.
_thread_join = _join_call(_JOIN_SYMBOL)
#: Join the thread of the task row at address ``task`` if it has ended; returns 0 when it was
#: joined (else the thread still runs, or the C library cannot tell: call :func:`_thread_join`).
_thread_try_join = _join_call(_TRY_JOIN_SYMBOL)


@intrinsic
def _ticks(typingctx):
    """The CPU's time-stamp counter (``llvm.readcyclecounter``; 0 where there is none)."""

    def codegen(context, builder, signature, args):
        counter = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_I64, []), "llvm.readcyclecounter")
        return builder.call(counter, [])

    return types.int64(), codegen


@intrinsic
def _release_gil(typingctx):
    """Let go of the GIL if this thread holds it (``PyEval_SaveThread``); returns the saved
    thread state for :func:`_restore_gil`, or 0 where the thread did not hold it."""

    def codegen(context, builder, signature, args):
        module = builder.module
        check = cgutils.get_or_insert_function(module, ir.FunctionType(_I32, []), "PyGILState_Check")
        save = cgutils.get_or_insert_function(module, ir.FunctionType(_VOID_P, []), "PyEval_SaveThread")
        state = cgutils.alloca_once_value(builder, ir.Constant(_I64, 0))
        with builder.if_then(builder.icmp_signed("!=", builder.call(check, []), ir.Constant(_I32, 0))):
            builder.store(builder.ptrtoint(builder.call(save, []), _I64), state)
        return builder.load(state)

    return types.int64(), codegen


@intrinsic
def _restore_gil(typingctx, state):
    """Take the GIL back (``PyEval_RestoreThread``) after :func:`_release_gil` let it go."""

    def codegen(context, builder, signature, args):
        restore_type = ir.FunctionType(ir.VoidType(), [_VOID_P])
        restore = cgutils.get_or_insert_function(builder.module, restore_type, "PyEval_RestoreThread")
        with builder.if_then(builder.icmp_signed("!=", args[0], ir.Constant(_I64, 0))):
            builder.call(restore, [builder.inttoptr(args[0], _VOID_P)])
        return context.get_dummy_value()

    return types.none(types.int64), codegen


#: Read by the compiled code on every call (a C variable bound to a symbol): 0 lets
#: :func:`parts_for` decide, n > 0 makes it n (as far as the batch allows). See :func:`forced_parts`.
_forced = ctypes.c_int64(0)


@intrinsic
def _forced_parts(typingctx):
    def codegen(context, builder, signature, args):
        return builder.load(external_int64(builder, _FORCED_SYMBOL))

    return types.int64(), codegen


@contextlib.contextmanager
def forced_parts(parts):
    """Within the ``with`` block, split every call that would be split in ``parts`` parts
    (at most one per image), whatever the load and the BLAS's thread count; ``parts=1`` runs
    every call on the calling thread. For tests and benchmarks."""
    if parts < 1:
        raise ValueError(f"parts must be >= 1; got {parts}")
    previous = _forced.value
    _forced.value = parts
    try:
        yield
    finally:
        _forced.value = previous


@numba.cfunc(types.int32(types.voidptr, types.voidptr, types.voidptr, types.voidptr), cache=True)
def _refuse_thread(handle, attributes, start, argument):
    return 1


@numba.cfunc(types.int32(types.int64, types.voidptr), cache=True)
def _join_nothing(handle, result):
    return 0


def _cannot_tell(handle, result):
    """Stands in for ``pthread_tryjoin_np`` where the C library has none: never joined
    (compiled only there)."""
    return 1


def _bind():
    """Register the symbols; returns whether threads can be started."""
    llvm.add_symbol(_RUN_TASK_SYMBOL, _run_task.address)
    llvm.add_symbol(_FORCED_SYMBOL, ctypes.addressof(_forced))
    try_join = libc_function("pthread_tryjoin_np")  # glibc, musl
    if not try_join:
        try_join = numba.cfunc(types.int32(types.int64, types.voidptr), cache=True)(_cannot_tell).address
    llvm.add_symbol(_TRY_JOIN_SYMBOL, try_join)
    create, join = libc_function("pthread_create"), libc_function("pthread_join")
    if not create or not join:
        llvm.add_symbol(_CREATE_SYMBOL, _refuse_thread.address)
        llvm.add_symbol(_JOIN_SYMBOL, _join_nothing.address)
        return False
    llvm.add_symbol(_CREATE_SYMBOL, create)
    llvm.add_symbol(_JOIN_SYMBOL, join)
    return True


#: Whether parts can run on threads of their own (else they run one after the other).
THREADS_AVAILABLE = _bind()


@numba.cfunc(types.void(types.int64), cache=True)
def _wait_for_thread_c(task):
    """Wait for the thread of the task row at address ``task`` to end: poll for up to
    :data:`POLL_TICKS`, then block. A C function that the drivers call by symbol (compiled
    once, not into each driver)."""
    start = _ticks()
    while _thread_try_join(task) != 0:
        if _ticks() - start > POLL_TICKS:
            _thread_join(task)
            return


llvm.add_symbol(_WAIT_SYMBOL, _wait_for_thread_c.address)


#: :func:`_wait_for_thread_c` on the task row at an address.
_wait_for_thread = one_argument_call(_WAIT_SYMBOL, False)


@numba.njit(cache=True)
def parts_for(batch, flops):
    """Number of parts for a call of ``flops`` on ``batch`` images (1: no threads)."""
    forced = _forced_parts()
    if forced > 0:
        return max(1, min(forced, batch))
    threads = blas_get_num_threads()
    parts = min(threads, batch, flops // MIN_PART_FLOPS)
    if parts <= 1 or machine_is_busy(threads):
        return 1
    return parts


@compiled_only
def part_address(address, size, itemsize, lo, batch):
    """Address of entry ``lo`` of the first axis of a C-contiguous array at ``address`` of
    ``size`` items of ``itemsize`` bytes, whose first axis has ``batch`` entries (an array of
    fewer than ``batch`` items, e.g. a one-element constant beside the batch, is not split:
    its own address)."""
    return address + lo * (size // batch) * itemsize


@numba.njit(cache=True)
def task_rows(parts, meta_length):
    """Zeroed task rows for ``parts`` parts whose ``meta`` has ``meta_length`` entries; each
    row's meta address points into the row."""
    tasks = np.zeros((parts, TASK_HEADER + meta_length), dtype=np.int64)
    base = np.int64(tasks.ctypes.data)
    for i in range(parts):
        tasks[i, TASK_META] = base + (i * tasks.shape[1] + TASK_HEADER) * 8
    return tasks


@numba.njit(cache=True)
def call_alone(entry, a, b, c, out, meta):
    """:func:`call_entry` on the calling thread with one BLAS thread (the count restored after):
    a call in one part leaves no BLAS thread spinning either."""
    previous = blas_get_num_threads()
    if previous > 1:
        blas_set_num_threads(1)
    status = call_entry(entry, a, b, c, out, meta)
    if previous > 1:
        blas_set_num_threads(previous)
    return status


@numba.njit(cache=True)
def run_tasks(tasks):
    """Run every task row of ``tasks`` (from :func:`task_rows`, with entry and operands
    filled in): rows 1.. on threads of their own, row 0 here, on one BLAS thread each, with
    the GIL let go meanwhile. Returns :data:`DONE` when every part returned it, else the
    status of the last part that did not."""
    parts = tasks.shape[0]
    row_bytes = tasks.shape[1] * 8
    base = np.int64(tasks.ctypes.data)
    previous = blas_get_num_threads()
    if previous > 1:
        blas_set_num_threads(1)
    started = np.zeros(parts, dtype=np.bool_)
    gil = _release_gil()
    for i in range(1, parts):
        started[i] = _thread_create(base + i * row_bytes) == 0
    for i in range(parts):
        if not started[i]:
            row = tasks[i]
            row[TASK_STATUS] = call_entry(row[0], row[1], row[2], row[3], row[4], row[TASK_META])
    status = DONE
    for i in range(parts):
        if started[i]:
            _wait_for_thread(base + i * row_bytes)
        if tasks[i, TASK_STATUS] != DONE:
            status = tasks[i, TASK_STATUS]
    _restore_gil(gil)
    if previous > 1:
        blas_set_num_threads(previous)
    return status
