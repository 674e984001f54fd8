"""The decorator of the compiled functions that only other compiled functions call.

Numba builds two wrappers around every function it compiles, whatever calls it: one that
takes Python objects (for calls from Python) and one with a C signature. The kernels' inner
functions (the loops, checks and planning that the entry points call) are never called from
Python, and leaving out the wrappers takes about a tenth off the compile time of a network's
first step with empty caches (1.7-2.9 s of 18.5-20.4 s for a conv2d + relu + pool_2d +
gradient function on 2 cores, measured with only the first wrapper left out). PyTensor's own
``numba_njit`` leaves both out of a graph's inner functions the same way.

A function compiled without them must not be called from Python (Numba would jump through a
wrapper that was never built): :func:`compiled_only` gives it a dispatcher whose call from
Python raises ``TypeError`` instead. Functions that ``perform``, the tests or users call from
Python keep ``numba.njit(cache=True)``.

Beside it, the few LLVM helpers that several kernels' modules share: a typed pointer from an
address, an int64 C variable or table under a symbol, and calls of C functions registered by
symbol (:func:`call_external`, :func:`one_argument_call`; :func:`int_getter` and
:func:`int_setter` for C ``int``, as a library's thread-count functions take and return).
"""

from __future__ import annotations

import numba
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.registry import CPUDispatcher
from numba.extending import intrinsic


class CompiledOnlyDispatcher(CPUDispatcher):
    """The dispatcher of a function compiled without its wrappers: compiled code calls it as
    any other; a call from Python raises ``TypeError``."""

    def __call__(self, *args, **kwargs):
        raise TypeError(
            f"{self.py_func.__module__}.{self.py_func.__qualname__} is called from compiled code only "
            "(it is compiled without the wrapper a call from Python needs)"
        )


def compiled_only(py_function=None, *, fastmath=False):
    """``numba.njit(cache=True)`` for a function that only compiled code calls: compiled
    without the wrappers a call from Python or a C caller needs (see the module doc).
    ``@compiled_only(fastmath=...)`` passes Numba's ``fastmath`` option on."""
    if py_function is None:
        return lambda function: compiled_only(function, fastmath=fastmath)
    options = dict(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
    if fastmath:
        options["fastmath"] = fastmath
    dispatcher = numba.njit(**options)(py_function)
    dispatcher.__class__ = CompiledOnlyDispatcher
    return dispatcher


@intrinsic
def typed_pointer(typingctx, address, dtype):
    """The int64 ``address`` as a pointer to items of ``dtype``, for ``numba.carray``: a number
    class (e.g. ``np.float32``) or an array's ``.dtype``."""
    if isinstance(dtype, types.NumberClass):
        item = dtype.instance_type
    elif isinstance(dtype, types.DType):
        item = dtype.dtype
    else:
        return None
    pointer = types.CPointer(item)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(pointer))

    return pointer(types.int64, dtype), codegen


def external_int64(builder, symbol):
    """In an intrinsic's code: the int64 C variable registered with LLVM as ``symbol``
    (declared in the module once), as a pointer."""
    module = builder.module
    variable = module.globals.get(symbol)
    if variable is None:
        variable = ir.GlobalVariable(module, ir.IntType(64), symbol)
        variable.linkage = "external"
    return variable


@intrinsic
def read_int64(typingctx, address, index):
    """The int64 at ``address`` + 8 * ``index`` (e.g. a table under a symbol:
    ``dispatch.numba.workers.symbol_address``)."""

    def codegen(context, builder, signature, args):
        table = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
        return builder.load(builder.gep(table, [args[1]]))

    return types.int64(types.int64, types.int64), codegen


def call_external(builder, symbol, returns, values):
    """Call the C function registered as ``symbol`` with int64 ``values``; returns its int64
    result where ``returns``."""
    function_type = ir.FunctionType(ir.IntType(64) if returns else ir.VoidType(), [ir.IntType(64)] * len(values))
    function = cgutils.get_or_insert_function(builder.module, function_type, symbol)
    return builder.call(function, list(values))


def one_argument_call(symbol, returns):
    """An intrinsic calling the C function registered as ``symbol`` with one int64, which
    returns its int64 result where ``returns``."""

    def call(typingctx, value):
        def codegen(context, builder, signature, args):
            result = call_external(builder, symbol, returns, args)
            return result if returns else context.get_dummy_value()

        return (types.int64 if returns else types.none)(types.int64), codegen

    call.__name__ = call.__qualname__ = f"call_{symbol}"
    return intrinsic(call)


def int_getter(symbol):
    """An intrinsic calling ``int f(void)``, the C function registered as ``symbol``; returns
    its result as an int64."""

    def call(typingctx):
        def codegen(context, builder, signature, args):
            function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []), symbol)
            return builder.sext(builder.call(function, []), ir.IntType(64))

        return types.int64(), codegen

    call.__name__ = call.__qualname__ = f"call_{symbol}"
    return intrinsic(call)


def int_setter(symbol):
    """An intrinsic calling ``void f(int)``, the C function registered as ``symbol``, with an
    integer (truncated to a C ``int``)."""

    def call(typingctx, value):
        if not isinstance(value, types.Integer):
            return None

        def codegen(context, builder, signature, args):
            int32 = ir.IntType(32)
            function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [int32]), symbol)
            builder.call(function, [context.cast(builder, args[0], signature.args[0], types.int32)])
            return context.get_dummy_value()

        return types.none(value), codegen

    call.__name__ = call.__qualname__ = f"call_{symbol}"
    return intrinsic(call)
