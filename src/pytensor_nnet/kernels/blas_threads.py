"""The thread count of the BLAS behind Numba's ``np.dot``, read and set from compiled code.

Numba's ``np.dot`` calls the BLAS that ``scipy.linalg.cython_blas`` links against: with the
scipy wheels, the OpenBLAS bundled in ``scipy.libs`` (not numpy's copy, which is a separate
library with its own thread pool). OpenBLAS splits each large enough GEMM among its worker
threads and waits for all of them; when the machine is oversubscribed a worker is often
descheduled, and the caller waits for a whole scheduler time slice. For the many small GEMMs
of a convolution (one per image) that costs far more than the product itself, so the kernels
run their small GEMMs on one thread (see :func:`limit_threads`).

How it works: at import this module looks up the library's thread-count functions,
``scipy_openblas_get_num_threads`` / ``scipy_openblas_set_num_threads`` (scipy-openblas
builds) or ``openblas_get_num_threads`` / ``openblas_set_num_threads`` (plain OpenBLAS), in
the dependencies of ``cython_blas``, and registers their addresses with LLVM under this
module's own symbol names (``llvmlite.binding.add_symbol``). The compiled kernels call those
names through two intrinsics, so the machine code Numba caches on disk refers to the
function by name, never by a baked-in address, and stays valid in the next process.

When no such functions are found (MKL, Accelerate, a BLAS without a thread-count API), or
when the environment variable ``PYTENSOR_NNET_BLAS_THREADS`` is ``off``, the names are bound
to compiled no-ops: :func:`blas_get_num_threads` returns 0 ("unknown"), setting does
nothing, and the kernels run with whatever threading the BLAS does by itself.

The count is process-wide for that library: a kernel that lowers it restores the previous
value before it returns, so code outside the kernels (PyTensor's own ``Dot``, scipy) sees
the count it had. Other Python threads calling the same BLAS *while* a kernel runs would see
one thread for that time.
"""

from __future__ import annotations

import ctypes
import os

import numba
import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from pytensor_nnet.kernels.jit import int_getter, int_setter

#: Environment variable: ``off`` leaves the BLAS threads alone (the kernels call no-ops).
ENV_VAR = "PYTENSOR_NNET_BLAS_THREADS"

#: (getter, setter) names looked up in the BLAS, first match wins.
CANDIDATES = (
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)

# The names the compiled code calls; bound at import to the BLAS functions or to no-ops.
_GET_SYMBOL = "pytensor_nnet_blas_get_num_threads"
_SET_SYMBOL = "pytensor_nnet_blas_set_num_threads"
_LOADAVG_SYMBOL = "pytensor_nnet_getloadavg"
_OPEN_SYMBOL = "pytensor_nnet_open"
_READ_SYMBOL = "pytensor_nnet_read"
_CLOSE_SYMBOL = "pytensor_nnet_close"

#: Linux's view of the run queue: ``/proc/loadavg`` ends in ``runnable/threads last_pid``.
_PROC_LOADAVG = "/proc/loadavg"


def cython_blas_path():
    """File of ``scipy.linalg.cython_blas`` (whose function pointers Numba calls), or None."""
    try:
        from scipy.linalg import cython_blas
    except ImportError:
        return None
    return getattr(cython_blas, "__file__", None)


def open_library(library_path):
    """``ctypes.CDLL`` of the shared library ``library_path``, or None (no path, or it cannot
    be opened). Its attributes are the functions it or its dependencies define."""
    if library_path is None:
        return None
    try:
        return ctypes.CDLL(library_path)
    except OSError:
        return None


def find_thread_functions(library_path, candidates=CANDIDATES):
    """``(getter_name, setter_name, getter_address, setter_address)`` of the first pair of
    ``candidates`` that the shared library ``library_path`` or its dependencies define, or
    None (also when the library cannot be opened)."""
    lib = open_library(library_path)
    if lib is None:
        return None
    for get_name, set_name in candidates:
        try:
            get_fn, set_fn = getattr(lib, get_name), getattr(lib, set_name)
        except AttributeError:
            continue
        address = ctypes.cast
        return get_name, set_name, address(get_fn, ctypes.c_void_p).value, address(set_fn, ctypes.c_void_p).value
    return None


def _library_of(address):
    """Path of the shared library holding ``address`` (``dladdr``), or None."""

    class DlInfo(ctypes.Structure):
        _fields_ = [
            ("dli_fname", ctypes.c_char_p),
            ("dli_fbase", ctypes.c_void_p),
            ("dli_sname", ctypes.c_char_p),
            ("dli_saddr", ctypes.c_void_p),
        ]

    try:
        dladdr = ctypes.CDLL(None).dladdr
    except (OSError, AttributeError):
        return None
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(DlInfo)]
    info = DlInfo()
    if not dladdr(address, ctypes.byref(info)) or not info.dli_fname:
        return None
    return os.fsdecode(info.dli_fname)


@numba.cfunc(types.int32(), cache=True)
def _unknown_count():
    return 0


@numba.cfunc(types.void(types.int32), cache=True)
def _ignore_count(n):
    pass


@numba.cfunc(types.int32(types.CPointer(types.float64), types.int32), cache=True)
def _no_loadavg(values, n):
    return -1


@numba.cfunc(types.int32(types.voidptr, types.int32), cache=True)
def _no_open(path, flags):
    return -1


@numba.cfunc(types.int64(types.int32, types.voidptr, types.int64), cache=True)
def _no_read(fd, buffer, n):
    return -1


@numba.cfunc(types.int32(types.int32), cache=True)
def _no_close(fd):
    return -1


def libc_function(name):
    """Address of the C library's function ``name`` (e.g. ``getloadavg``: BSD, glibc, musl,
    macOS), or None where it has none."""
    try:
        return ctypes.cast(getattr(ctypes.CDLL(None), name), ctypes.c_void_p).value
    except (OSError, AttributeError, TypeError):
        return None


def _bind():
    """Register the symbols of the BLAS's thread count, the load average and the reading of
    the run queue; returns the description kept in :data:`BACKEND`."""
    for symbol, name, stand_in in (
        (_LOADAVG_SYMBOL, "getloadavg", _no_loadavg),
        (_OPEN_SYMBOL, "open", _no_open),
        (_READ_SYMBOL, "read", _no_read),
        (_CLOSE_SYMBOL, "close", _no_close),
    ):
        address = libc_function(name)
        llvm.add_symbol(symbol, address if address else stand_in.address)
    found = None
    if os.environ.get(ENV_VAR, "").strip().lower() != "off":
        found = find_thread_functions(cython_blas_path())
    if found is None:
        llvm.add_symbol(_GET_SYMBOL, _unknown_count.address)
        llvm.add_symbol(_SET_SYMBOL, _ignore_count.address)
        return {"controlled": False, "library": None, "getter": None, "setter": None}
    get_name, set_name, get_address, set_address = found
    llvm.add_symbol(_GET_SYMBOL, get_address)
    llvm.add_symbol(_SET_SYMBOL, set_address)
    return {"controlled": True, "library": _library_of(set_address), "getter": get_name, "setter": set_name}


#: What the compiled code calls: ``controlled`` (False: the no-ops), the library's path and
#: the getter and setter names.
BACKEND = _bind()


#: The BLAS's current thread count (0 when it is not under control).
blas_get_num_threads = int_getter(_GET_SYMBOL)
#: Set the BLAS's thread count to ``n`` (an integer, at least 1); a no-op when it is not under
#: control.
blas_set_num_threads = int_setter(_SET_SYMBOL)


@intrinsic
def load_average(typingctx):
    """The system's 1-minute load average (``getloadavg``), or -1.0 where there is none."""

    def codegen(context, builder, signature, args):
        double = ir.DoubleType()
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(32), [double.as_pointer(), ir.IntType(32)]), _LOADAVG_SYMBOL
        )
        slot = cgutils.alloca_once_value(builder, ir.Constant(double, -1.0))
        got = builder.call(fn, [slot, ir.Constant(ir.IntType(32), 1)])
        ok = builder.icmp_signed(">=", got, ir.Constant(ir.IntType(32), 1))
        return builder.select(ok, builder.load(slot), ir.Constant(double, -1.0))

    return types.float64(), codegen


@intrinsic
def _read_proc_loadavg(typingctx, buffer):
    """Read ``/proc/loadavg`` into the uint8 array ``buffer``; returns the bytes read, or -1
    where there is no such file."""
    if not (isinstance(buffer, types.Array) and buffer.dtype == types.uint8 and buffer.ndim == 1):
        return None

    def codegen(context, builder, signature, args):
        module, i32, i64 = builder.module, ir.IntType(32), ir.IntType(64)
        byte_p = ir.IntType(8).as_pointer()
        open_fn = cgutils.get_or_insert_function(module, ir.FunctionType(i32, [byte_p, i32]), _OPEN_SYMBOL)
        read_fn = cgutils.get_or_insert_function(module, ir.FunctionType(i64, [i32, byte_p, i64]), _READ_SYMBOL)
        close_fn = cgutils.get_or_insert_function(module, ir.FunctionType(i32, [i32]), _CLOSE_SYMBOL)
        array = context.make_array(signature.args[0])(context, builder, args[0])
        result = cgutils.alloca_once_value(builder, ir.Constant(i64, -1))
        fd = builder.call(open_fn, [context.insert_const_string(module, _PROC_LOADAVG), ir.Constant(i32, 0)])
        with builder.if_then(builder.icmp_signed(">=", fd, ir.Constant(i32, 0))):
            size = builder.extract_value(array.shape, 0)
            builder.store(builder.call(read_fn, [fd, builder.bitcast(array.data, byte_p), size]), result)
            builder.call(close_fn, [fd])
        return builder.load(result)

    return types.int64(buffer), codegen


@numba.njit(cache=True)
def runnable_threads():
    """Threads that are running or waiting for a core right now, system-wide, the caller's
    included (Linux's ``/proc/loadavg``), or -1 where the system does not say."""
    text = np.empty(128, dtype=np.uint8)
    n = _read_proc_loadavg(text)
    fields, count, digits = 0, 0, 0
    for i in range(max(n, 0)):
        c = text[i]
        if c == 32:  # ' '
            fields += 1
        elif fields == 3:
            if c == 47:  # '/'
                return count if digits > 0 else -1
            if c < 48 or c > 57:
                return -1
            count = count * 10 + (c - 48)
            digits += 1
    return -1


#: GEMMs of fewer flops (2 * M * K * N) than this always run on one BLAS thread. Measured
#: (``benchmarks/bench_blas_threads.py``, float32, 2 cores, no added load): two threads pay
#: from about 3 MFLOP (0.71x the one-thread time at 3.2 MFLOP, 0.52-0.61x from 12.8 to 58
#: MFLOP; a 0.6 MFLOP GEMM took the same time either way). With two busy processes beside
#: them the threads lost at nearly every size measured, up to 15 GFLOP (at 3.2 MFLOP:
#: 0.04-0.23 ms on one thread, 1.6-7 ms on two in most runs): :func:`machine_is_busy`.
SINGLE_THREAD_MAX_FLOPS = 4_000_000


@numba.njit(cache=True)
def machine_is_busy(blas_threads):
    """Whether ``blas_threads`` BLAS threads would not each find an idle core: other threads
    are runnable right now (:func:`runnable_threads`, which counts the caller's own thread:
    more than ``blas_threads`` of them), or the 1-minute load average says so (it counts our
    own running thread, so a load of up to ``blas_threads``, plus a half for noise, is a
    machine we have to ourselves). The run queue tells a load that has just begun; the load
    average lags by tens of seconds but tells sustained load between the moments the other
    processes happen to wait (I/O, a scheduler tick). False when neither is known. Costs a
    few microseconds: call it for large work only."""
    load = load_average()
    if load >= 0.0 and load >= blas_threads + 0.5:
        return True
    return runnable_threads() > blas_threads


@numba.njit(cache=True)
def limit_threads(flops):
    """Before GEMMs of ``flops`` each: one BLAS thread unless they are large (at least
    :data:`SINGLE_THREAD_MAX_FLOPS`) and the machine is not busy (:func:`machine_is_busy`).

    Returns the count to pass to :func:`restore_threads` after the GEMMs (0: nothing was
    changed). A get-and-set pair costs a few nanoseconds (OpenBLAS stores the count; idle
    worker threads stay parked), the load average a few microseconds (only read for large
    GEMMs): call it once per kernel call, not per GEMM.
    """
    previous = blas_get_num_threads()
    if previous <= 1:
        return 0
    if flops >= SINGLE_THREAD_MAX_FLOPS and not machine_is_busy(previous):
        return 0
    blas_set_num_threads(1)
    return previous


@numba.njit(cache=True)
def restore_threads(previous):
    """Undo :func:`limit_threads` (``previous`` is what it returned). The kernels call it
    on every path that returns; an exception between the two (only ``MemoryError`` can occur
    there, the shape checks come first) leaves one thread set, which costs speed, not results."""
    if previous > 0:
        blas_set_num_threads(previous)


@numba.njit(cache=True)
def get_num_threads():
    """:func:`blas_get_num_threads`, callable from Python."""
    return blas_get_num_threads()


@numba.njit(cache=True)
def set_num_threads(n):
    """:func:`blas_set_num_threads`, callable from Python."""
    blas_set_num_threads(n)


@numba.njit(cache=True)
def get_load_average():
    """:func:`load_average`, callable from Python."""
    return load_average()
