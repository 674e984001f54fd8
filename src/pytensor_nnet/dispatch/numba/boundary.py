"""Kernels called across a stable boundary: compiled once, called by symbol name.

A Numba function that calls another one links the callee's LLVM code into its own module and
optimises and compiles the whole again. Every PyTensor graph is one Numba function, so every
new graph (a new batch size in a shape hint, another border mode, another model) would
recompile our kernels: measured ~20 s per new conv2d + grad graph on 2 cores, though the
kernels themselves sit in Numba's on-disk cache.

Instead, each kernel entry point is compiled once per dtype as a C-callable function
(``numba.cfunc``, cached on disk like the kernels). The graph's code reads its address from a
table (a C array registered with LLVM under a symbol name that holds the digest of the kernel
sources) and calls it there (``workers.resolved_address``, ``workers.call_entry``). The
graph's module then holds only the call, and its cached machine code names the symbols, not
addresses, so it stays valid in a new process (the dispatch function registers the symbols
before PyTensor compiles or loads the graph).

The C signature is the same for every kernel: ``int64 f(dtype *a, dtype *b, dtype *c, dtype
*out, int64 *meta)`` (up to three operands, unused ones may repeat another; ``meta`` holds
their shapes and the parameters, in a layout of the caller's); the result is :data:`DONE`, or
0 when the kernel raised (it refused its arguments: the callers check every shape first, with
the Ops' messages, so that is an internal error, and Numba's C wrapper prints the exception).
Entries hold no ``try``: it cost about a second of compile time per entry, and within one
``try`` a raise in a function called from inlined code (the ``*_into_by`` kernels are inlined
so that constants prune their branches) did not stop the code after it.

Entries are compiled lazily (:class:`LazyKernels`): the first time the caller reads an empty
slot, it calls a resolver (a Python callback under another symbol name) that compiles the
entry and fills the slot. A family of entries of which a call needs one, chosen at run time
(the convolution's algorithms), is one table: the first step of a network compiles the
algorithms its shapes use, not all of them. The caller can itself be an entry (the
convolution's driver, which plans the algorithm): what sits behind the boundary is compiled
once, what a graph calls directly is optimised again with every graph that holds it.

Building a graph looks its entries up in Numba's cache (:meth:`LazyKernels.prefetch`) and
queues the ones missing for a second process (``compile_helper``), which compiles them while
this one compiles the graph: nothing is compiled at build time.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import threading
import time

import llvmlite.binding as llvm
import numba
import numpy as np
from numba import types
from numba.core import sigutils
from numba.core.ccallback import CFunc

from pytensor_nnet.dispatch.numba import compile_helper, workers
from pytensor_nnet.kernels.jit import compiled_only

#: What an entry (a kernel's, or a driver's: an entry that plans a call and makes it, the
#: convolution's and the pooling's) returns when it succeeded. Entries hold no ``try`` (one
#: costs 1-3 s of compile time): an entry that raises returns 0, as every Numba C callback does
#: after printing the exception, and the graph reads anything but this as a failure.
DONE = workers.DONE
#: A lazily compiled entry (:class:`LazyKernels`) could not be compiled (the log says why).
KERNEL_UNCOMPILED = 2
#: The dtype of the drivers' signature. A driver reads its operands' addresses and sizes, not
#: their items (but where it flips filters or adds the parts of a gradient, by the item size
#: its caller gives), so one compiled driver serves every dtype: a graph in a new dtype
#: compiles its entries only.
DRIVER_DTYPE = "int64"

#: A kernel compile taking longer than this (seconds) is announced once per process, at INFO.
SLOW_COMPILE_NOTICE_S = 2.0

_log = logging.getLogger("pytensor_nnet")
_noticed = threading.Event()


def _notice():
    if not _noticed.is_set():
        _noticed.set()
        _log.info(
            "pytensor_nnet: compiling its kernels for a new dtype (first use only, typically 10-40 s; "
            "the result is cached on disk for later processes)"
        )


def _compile(body, signature):
    """``numba.cfunc(signature, cache=True)(body)``, saying so at INFO if it runs long."""
    timer = threading.Timer(SLOW_COMPILE_NOTICE_S, _notice)
    timer.daemon = True
    timer.start()
    start = time.perf_counter()
    try:
        compiled = numba.cfunc(signature, cache=True)(body)
    finally:
        timer.cancel()
    _log.debug("pytensor_nnet: %s ready in %.2f s", body.__name__, time.perf_counter() - start)
    return compiled


class _NotCached(Exception):
    pass


def _not_cached():
    raise _NotCached


def _cached(body, signature):
    """``body`` compiled for ``signature`` if Numba's cache holds it (loaded, as
    :func:`_compile` would), else None; compiles nothing."""
    compiled = CFunc(body, sigutils.normalize_signature(signature), locals={}, options={})
    compiled.enable_caching()
    compiled._compile_uncached = _not_cached  # what ``compile`` calls when the cache misses
    try:
        compiled.compile()
    except _NotCached:
        return None
    return compiled


def body_named(module, name):
    """The boundary body ``name`` of ``module`` (a module-level function, or an entry of the
    module's ``BOUNDARY_BODIES`` mapping of names to generated bodies)."""
    found = importlib.import_module(module)
    return getattr(found, name, None) or found.BOUNDARY_BODIES[name]


def compile_task(task):
    """Compile (or load) the body of a ``compile_helper.Task``."""
    return _compile(body_named(task.module, task.name), c_signature(task.dtype))


@compiled_only
def call_driver(table, resolver, a, b, c, out, meta):
    """The status of the driver (slot 0 of a :class:`LazyKernels` whose table and resolver are
    at the addresses ``table`` and ``resolver``) called on the arrays ``a``, ``b``, ``c``,
    ``out`` and ``meta``: ``DONE``, ``KERNEL_UNCOMPILED`` (it or its entry could not be
    compiled), or 0 if it or its entry raised."""
    address = workers.resolved_address(table, resolver, 0)
    if address == 0:
        return KERNEL_UNCOMPILED
    return workers.call_entry_on(address, a, b, c, out, meta)


def c_signature(dtype):
    """The C signature of every boundary kernel for arrays of ``dtype``."""
    item = numba.from_dtype(np.dtype(dtype))
    array = types.CPointer(item)
    return types.int64(array, array, array, array, types.CPointer(types.int64))


#: The resolver's C type: ``int64 resolve(int64 slot)``, the entry's address (0 on failure).
_RESOLVER_TYPE = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)
_compile_lock = threading.RLock()


class LazyKernels:
    """Entry points ``bodies`` (a tuple; the index is the slot) compiled for ``dtype`` on
    first use, under the symbols ``name + "_table"`` (the C array of their addresses, 0 until
    compiled) and ``name + "_resolve"`` (compiles slot ``i``, stores and returns its address).

    The compiled code reads the table by address (``workers.symbol_address(table)``,
    ``workers.read_int64``) and calls :attr:`resolve` (or its address, with
    ``workers.call_resolver``) where it reads 0. The resolver takes the GIL (a ``ctypes``
    callback does): call it on the thread that called the graph.
    """

    def __init__(self, name, bodies, dtype):
        self.name, self.bodies, self.dtype = name, tuple(bodies), np.dtype(dtype)
        self.compiled = [None] * len(self.bodies)
        self._seen_cached = set()  # slots found in the cache and not kept (``prefetch``)
        self._addresses = (ctypes.c_int64 * len(self.bodies))()
        self._resolver = _RESOLVER_TYPE(self._resolve)
        llvm.add_symbol(name + "_table", ctypes.addressof(self._addresses))
        llvm.add_symbol(name + "_resolve", ctypes.cast(self._resolver, ctypes.c_void_p).value)
        self.table = types.ExternalFunction(name + "_table", types.int64())
        self.resolve = types.ExternalFunction(name + "_resolve", types.int64(types.int64))

    def task(self, slot):
        """Entry ``slot`` as a ``compile_helper.Task``."""
        body = self.bodies[slot]
        return compile_helper.Task(f"{self.name}_{slot}", body.__module__, body.__name__, self.dtype.name)

    def _store(self, slot, compiled):
        self.compiled[slot] = compiled
        self._addresses[slot] = compiled.address

    def prefetch(self, slot, keep=True):
        """Load entry ``slot`` now if Numba's cache holds it (``keep``: into the table; else
        only looked up), else queue it for the compile helper (``compile_helper``), which
        compiles it while this process goes on."""
        with _compile_lock:
            if self._addresses[slot] or slot in self._seen_cached or compile_helper.queued(self.task(slot)):
                return
            compiled = _cached(self.bodies[slot], c_signature(self.dtype))
            if compiled is None:
                _notice()
                compile_helper.queue(self.task(slot))
            elif keep:
                self._store(slot, compiled)
            else:
                self._seen_cached.add(slot)

    def address(self, slot):
        """The address of entry ``slot``, compiled (or loaded from Numba's cache) if needed:
        by the compile helper if it has it queued (see ``compile_helper.obtain``)."""
        with _compile_lock:
            if self._addresses[slot] == 0:
                body, signature = self.bodies[slot], c_signature(self.dtype)
                self._store(slot, compile_helper.obtain(self.task(slot), lambda: _compile(body, signature)))
            return self._addresses[slot]

    def _resolve(self, slot):
        try:
            return self.address(slot)
        except BaseException:  # an exception must not unwind through compiled code
            _log.exception("pytensor_nnet: could not compile %s entry %d", self.name, slot)
            return 0


_lazy: dict = {}


def lazy_kernels(family, bodies, dtype, fingerprint):
    """The :class:`LazyKernels` of ``bodies`` for ``dtype`` (one per process): ``family``
    names them, ``fingerprint`` (a digest of their sources) makes the symbols change with the
    code."""
    name = f"pytensor_nnet_{family}_{np.dtype(dtype).name}_{fingerprint}"
    with _compile_lock:
        if name not in _lazy:
            _lazy[name] = LazyKernels(name, bodies, dtype)
        return _lazy[name]


def lazy_kernel(body, dtype, fingerprint):
    """The :class:`LazyKernels` of the one entry ``body`` (slot 0) for ``dtype``, prefetched:
    loaded from Numba's cache now, or queued for the compile helper. ``body(a, b, c, out,
    meta)`` is a module-level function of the C signature (:func:`c_signature`), or one of its
    module's ``BOUNDARY_BODIES``; ``fingerprint`` (a digest of its sources) makes the symbols
    change with the code."""
    module = body.__module__.rsplit(".", 1)[-1]
    entries = lazy_kernels(f"{module}_{body.__name__}", (body,), dtype, fingerprint)
    entries.prefetch(0)
    return entries
