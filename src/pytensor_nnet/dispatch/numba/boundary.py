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
dtype *out, int64 *meta)`` (up to three operands, unused ones may repeat another);
layout), the result is 0, or 1 when the kernel refused its arguments (the callers check every
shape first, with the Ops' messages, so that is an internal error).
"""

from __future__ import annotations

import logging
import threading
import time

import llvmlite.binding as llvm
import numba
import numpy as np
from numba import types

#: A kernel raised: the graph's code turns this status into an error.
KERNEL_REFUSED = 1

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
