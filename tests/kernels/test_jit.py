"""Functions compiled without the wrapper a call from Python needs (``kernels.jit``)."""

import ctypes
import os
import sys

import numba
import numpy as np
import pytest
from llvmlite import binding as llvm

from pytensor_nnet.kernels import corr, direct
from pytensor_nnet.kernels.jit import CompiledOnlyDispatcher, compiled_only, int_getter, int_setter


@compiled_only
def _twice_plus_one(x):
    return 2 * x + 1


@numba.njit
def _calls_twice_plus_one(x):
    return _twice_plus_one(x) + _twice_plus_one(x + 0.5)


def test_compiled_code_calls_them_and_python_gets_a_type_error():
    assert _calls_twice_plus_one(3) == 7 + 8.0
    with pytest.raises(TypeError, match="_twice_plus_one is called from compiled code only"):
        _twice_plus_one(3)


def test_the_kernels_inner_functions_refuse_python_calls():
    """A call from Python would jump through a wrapper that was never built: it must raise."""
    assert isinstance(corr.checked_forward, CompiledOnlyDispatcher)
    with pytest.raises(TypeError, match="compiled code only"):
        direct.direct_forward(
            np.zeros((1, 1, 1, 3, 3)), np.zeros((1, 1, 1, 1, 1)), np.zeros((1, 1, 1, 3, 3)), 0, 0, 0, 1
        )


@compiled_only(fastmath={"contract"})
def _multiply_add(a, b, c):
    return a * b + c


@numba.njit
def _calls_multiply_add(a, b, c):
    return _multiply_add(a, b, c)


def test_numba_options_pass_through_and_python_still_gets_a_type_error():
    assert isinstance(_multiply_add, CompiledOnlyDispatcher)
    assert _multiply_add.targetoptions["fastmath"]
    assert _calls_multiply_add(2.0, 3.0, 1.0) == 7.0
    with pytest.raises(TypeError, match="compiled code only"):
        _multiply_add(2.0, 3.0, 1.0)


@pytest.mark.skipif(sys.platform == "win32", reason="the C library by ctypes.CDLL(None)")
def test_int_getter_and_setter_call_c_functions_by_symbol():
    libc = ctypes.CDLL(None)
    for name in ("getpid", "srand", "rand"):
        llvm.add_symbol(f"pytensor_nnet_test_{name}", ctypes.cast(getattr(libc, name), ctypes.c_void_p).value)
    get_pid = int_getter("pytensor_nnet_test_getpid")
    seed = int_setter("pytensor_nnet_test_srand")
    rand = int_getter("pytensor_nnet_test_rand")

    @numba.njit
    def seeded_draw(n):
        seed(n)
        return get_pid(), rand()

    pid, draw = seeded_draw(np.int64(7))
    assert pid == os.getpid()
    libc.srand(7)
    assert draw == libc.rand()
    assert seeded_draw(np.int64(2**32 + 7))[1] == draw  # the argument is a C int
    assert seeded_draw(np.int8(7))[1] == draw
