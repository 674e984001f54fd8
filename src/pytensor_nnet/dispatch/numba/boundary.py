"""Kernels called across a stable boundary: compiled once, called by symbol name.

A Numba function that calls another one links the callee's LLVM code into its own module and
optimises and compiles the whole again. Every PyTensor graph is one Numba function, so every
new graph (a new batch size in a shape hint, another border mode, another model) would
recompile our kernels: measured ~20 s per new conv2d + grad graph on 2 cores, though the
kernels themselves sit in Numba's on-disk cache.

Instead, each kernel entry point is compiled once per dtype as a C-callable function
(``numba.cfunc``, cached on disk like the kernels), its address is registered with LLVM under
a symbol name that holds the digest of the kernel sources, and the graph's code calls that
symbol (a ``numba.types.ExternalFunction``). The graph's module then holds only the call, and
its cached machine code names the symbol, not an address, so it stays valid in a new process
(the dispatch function registers the symbol before PyTensor compiles or loads the graph).

The C signature is the same for every kernel: ``int64 f(dtype *a, dtype *b, dtype *c,
dtype *out, int64 *meta)`` (up to three operands, unused ones may repeat another; ``meta``
holds their shapes and the parameters, in a layout of the caller's); the result is 0, or 1
when the kernel refused its arguments (the callers check every shape first, with the Ops'
messages, so that is an internal error). An entry checks its operands in a ``try`` of its own
before any kernel runs: within one ``try``, a raise in a function called from inlined code
(the ``*_into_by`` kernels are inlined so that constants prune their branches) does not stop
the code after it, and a refused gradient was seen written anyway.

A family of entry points of which a call needs one, chosen at run time (the convolution's
algorithms), is compiled lazily (:func:`lazy_kernels`): the caller reads the entry's address
from a table (a C array under a symbol name) and, the first time the slot is empty, calls a
resolver (a Python callback under another symbol name) that compiles the entry and fills the
slot. The first step of a network then compiles the algorithms its shapes use, not all of
them. The caller can itself be an entry point (the convolution's driver, which plans the
algorithm): what sits behind the boundary is compiled once, what a graph calls directly is
optimised again with every graph that holds it.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time

import llvmlite.binding as llvm
import numba
import numpy as np
from numba import types

#: A kernel raised: the graph's code turns this status into an error.
KERNEL_REFUSED = 1
#: A lazily compiled entry (:class:`LazyKernels`) could not be compiled (the log says why).
KERNEL_UNCOMPILED = 2

#: A kernel compile taking longer than this (seconds) is announced once per process, at INFO.
SLOW_COMPILE_NOTICE_S = 2.0

_log = logging.getLogger("pytensor_nnet")
_registered: dict = {}
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


def c_signature(dtype):
    """The C signature of every boundary kernel for arrays of ``dtype``."""
    item = numba.from_dtype(np.dtype(dtype))
    array = types.CPointer(item)
    return types.int64(array, array, array, array, types.CPointer(types.int64))


def external_kernel(body, dtype, fingerprint):
    """The ``ExternalFunction`` calling ``body`` compiled for ``dtype`` (compiled or loaded
    from Numba's cache and registered on first use in the process).

    ``body(a, b, c, out, meta)`` is a module-level function of the C signature
    (:func:`c_signature`); ``fingerprint`` (a digest of its sources) makes the symbol name
    change with the code.
    """
    name = f"pytensor_nnet_{body.__module__.rsplit('.', 1)[-1]}_{body.__name__}_{np.dtype(dtype).name}_{fingerprint}"
    if name not in _registered:
        signature = c_signature(dtype)
        compiled = _compile(body, signature)
        llvm.add_symbol(name, compiled.address)
        _registered[name] = (compiled, types.ExternalFunction(name, signature))
    return _registered[name][1]


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
        self._addresses = (ctypes.c_int64 * len(self.bodies))()
        self._resolver = _RESOLVER_TYPE(self._resolve)
        llvm.add_symbol(name + "_table", ctypes.addressof(self._addresses))
        llvm.add_symbol(name + "_resolve", ctypes.cast(self._resolver, ctypes.c_void_p).value)
        self.table = types.ExternalFunction(name + "_table", types.int64())
        self.resolve = types.ExternalFunction(name + "_resolve", types.int64(types.int64))

    def address(self, slot):
        """The address of entry ``slot``, compiled (or loaded from Numba's cache) if needed."""
        with _compile_lock:
            if self._addresses[slot] == 0:
                compiled = _compile(self.bodies[slot], c_signature(self.dtype))
                self.compiled[slot] = compiled
                self._addresses[slot] = compiled.address
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
