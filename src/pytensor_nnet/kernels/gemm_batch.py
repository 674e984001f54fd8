"""Batches of equal-sized GEMMs in one BLAS call, for the per-image GEMMs of a 1x1 convolution.

The OpenBLAS behind Numba's ``np.dot`` (scipy's, see ``kernels.blas_threads``) has
``cblas_sgemm_batch`` / ``cblas_dgemm_batch`` (as ``scipy_cblas_?gemm_batch``): one call runs
a list of GEMMs and hands whole GEMMs to its threads, where one ``np.dot`` per image splits
each GEMM among the threads and waits for all of them every time. On the benchmark's
pointwise layer (16 images, 256 x 256 filters times 256 x 196 positions, float32, 2 threads)
one batched call took 2.54-2.66 ms against 2.89-3.05 ms for the 16 GEMMs one after the other.
The filter gradient of that layer (:func:`add_plane_products`) runs images two at a time, each
GEMM adding into its own partial sum: 2.13-2.16 ms against 2.61-2.67 ms for one two-threaded
``np.dot`` per image plus the addition of its product.

Which OpenBLAS: the newer one of the ``scipy-openblas32`` package when it is installed (a
dependency where it has wheels; the one numpy and scipy build with), else scipy's. Its GEMMs
were faster on these shapes: on one thread the pointwise layer's 16 forward GEMMs took a median
2.67 ms with OpenBLAS 0.3.34 against 2.80 with scipy 1.17's 0.3.30, its input gradient's (two
threads, eight each) 1.64 against 1.87 ms; the layer's forward pass 1.49 against 1.53 ms
(medians of five runs, alternated). ``PYTENSOR_NNET_GEMM_BATCH=scipy`` keeps scipy's. The
package's copy is loaded privately (nothing else calls it) with one thread, so that it starts
no thread of its own; before each batch its thread count is set to the one of scipy's
OpenBLAS, which ``blas_threads.limit_threads`` and the parts (``workers``) decide, and put
back after.

How it is called: at import the library's functions are looked up by name (like the thread
count's) and registered with LLVM under this module's own symbol names, so the machine code
Numba caches calls them by name; a flag function says whether they were found. Where they
were not (another BLAS, an OpenBLAS without them), the names are bound to stand-ins and
:func:`matmul_planes` runs one ``np.dot`` per GEMM.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os

import numba
import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from pytensor_nnet.kernels.blas_threads import (
    _ignore_count,
    _unknown_count,
    blas_get_num_threads,
    cython_blas_path,
    open_library,
)
from pytensor_nnet.kernels.jit import compiled_only, int_getter, int_setter

#: Names looked up in the BLAS, by dtype: scipy's OpenBLAS (32-bit integers), first.
CANDIDATES = {
    "float32": ("scipy_cblas_sgemm_batch",),
    "float64": ("scipy_cblas_dgemm_batch",),
}
_SYMBOLS = {"float32": "pytensor_nnet_sgemm_batch", "float64": "pytensor_nnet_dgemm_batch"}
_FOUND_SYMBOL = "pytensor_nnet_gemm_batch_found"
_GET_THREADS_SYMBOL = "pytensor_nnet_gemm_batch_get_threads"
_SET_THREADS_SYMBOL = "pytensor_nnet_gemm_batch_set_threads"

#: The package whose OpenBLAS runs the batches when it is installed, and the thread-count
#: functions looked up in it.
PACKAGE = "scipy_openblas32"
_THREAD_FUNCTIONS = ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads")

#: Environment variable: ``scipy`` runs the batches on scipy's OpenBLAS even where
#: :data:`PACKAGE` is installed.
ENV_VAR = "PYTENSOR_NNET_GEMM_BATCH"

#: ``cblas`` codes of the ``params`` row (:func:`_gemm_batch`).
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112

#: Batches go to the BLAS only when each GEMM has more than this many multiply-adds
#: (``m * n * k``). Below it OpenBLAS's builds for many CPUs (``DYNAMIC_ARCH``, as in scipy's
#: wheels) route a batch through their small-matrix kernels, which crashes the process in
#: OpenBLAS up to 0.3.30 (measured here: 100 x 100 x 100 crashes, 101 x 100 x 100 runs;
#: fixed upstream in OpenBLAS's pull request 5980). Such GEMMs run on one BLAS thread anyway
#: (``blas_threads.SINGLE_THREAD_MAX_FLOPS``), where a batch gains nothing.
BATCH_MIN_MULTIPLY_ADDS = 2_000_000


def find_function(lib, names):
    """Address of the first of ``names`` that the loaded library ``lib`` (``ctypes.CDLL``) or
    its dependencies define, or None (also when ``lib`` is None)."""
    if lib is None:
        return None
    for name in names:
        try:
            return ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
        except AttributeError:
            continue
    return None


_PTR = types.voidptr
_BATCH_SIGNATURE = types.void(
    types.int32, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR, types.int32, _PTR
)


@numba.cfunc(_BATCH_SIGNATURE, cache=True)
def _no_batch(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, groups, sizes):
    pass


@numba.cfunc(types.int32(), cache=True)
def _found():
    return 1


@numba.cfunc(types.int32(), cache=True)
def _not_found():
    return 0


def package_library():
    """The OpenBLAS of :data:`PACKAGE` (``ctypes.CDLL``), loaded with one thread, or None
    where the package is not installed, cannot be loaded, or :data:`ENV_VAR` says ``scipy``."""
    if os.environ.get(ENV_VAR, "").strip().lower() == "scipy":
        return None
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    lib_dir = os.path.join(next(iter(spec.submodule_search_locations)), "lib")
    try:
        files = sorted(name for name in os.listdir(lib_dir) if name.startswith(("libscipy_openblas", "scipy_openblas")))
    except OSError:
        return None
    files = [name for name in files if name.endswith((".so", ".dylib", ".dll"))]
    if not files:
        return None
    # One thread at load: OpenBLAS would start its worker threads there (read once, at load).
    previous = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        return open_library(os.path.join(lib_dir, files[0]))
    finally:
        if previous is None:
            del os.environ["OPENBLAS_NUM_THREADS"]
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = previous


def _bind():
    """Register the batched GEMMs' symbols and their library's thread count; returns the
    library's name and the functions found, by dtype (None: not)."""
    library, lib = PACKAGE, package_library()
    addresses = {dtype: find_function(lib, names) for dtype, names in CANDIDATES.items()}
    if not all(addresses.values()):
        library, lib = "scipy", open_library(cython_blas_path())
        addresses = {dtype: find_function(lib, names) for dtype, names in CANDIDATES.items()}
    found = {dtype: (CANDIDATES[dtype][0] if address else None) for dtype, address in addresses.items()}
    for dtype, address in addresses.items():
        llvm.add_symbol(_SYMBOLS[dtype], address if address else _no_batch.address)
    llvm.add_symbol(_FOUND_SYMBOL, (_found if all(found.values()) else _not_found).address)
    threads = [find_function(lib, (name,)) for name in _THREAD_FUNCTIONS] if library == PACKAGE else [None]
    if all(threads):
        llvm.add_symbol(_GET_THREADS_SYMBOL, threads[0])
        llvm.add_symbol(_SET_THREADS_SYMBOL, threads[1])
    else:  # scipy's, whose count blas_threads sets: a count of 0 says there is nothing to match
        llvm.add_symbol(_GET_THREADS_SYMBOL, _unknown_count.address)
        llvm.add_symbol(_SET_THREADS_SYMBOL, _ignore_count.address)
    return (library if any(found.values()) else None), found


#: Which OpenBLAS runs the batches (:data:`PACKAGE` or ``"scipy"``; None: neither has them),
#: and the batched GEMMs found in it, by dtype (None where it has none).
LIBRARY, FOUND = _bind()


#: Whether the BLAS's batched GEMMs were found (both dtypes), at run time: 1 or 0.
_batch_found = int_getter(_FOUND_SYMBOL)
#: The batches' library's thread count (0: it is scipy's, whose count is already set).
_batch_get_threads = int_getter(_GET_THREADS_SYMBOL)
#: Set the batches' library's thread count (nothing where it is scipy's).
_batch_set_threads = int_setter(_SET_THREADS_SYMBOL)


@compiled_only
def _threads_as_the_blas():
    """Give the batches' library the thread count of scipy's OpenBLAS (``blas_threads``);
    returns its count before, for :func:`_restore_batch_threads` (0: nothing was changed)."""
    own, wanted = _batch_get_threads(), blas_get_num_threads()
    if own <= 0 or wanted <= 0 or own == wanted:
        return 0
    _batch_set_threads(wanted)
    return own


@compiled_only
def _restore_batch_threads(previous):
    if previous > 0:
        _batch_set_threads(previous)


@intrinsic
def _gemm_batch(typingctx, params, scalars, a_addresses, b_addresses, c_addresses):
    """One group of a batched GEMM: ``params`` (int32: order, trans a, trans b, m, n, k, lda,
    ldb, ldc, batch size), ``scalars`` (alpha, beta; float32 or float64, which picks the
    function), the int64 addresses of the batch's matrices."""
    if not (
        isinstance(scalars, types.Array)
        and scalars.dtype in (types.float32, types.float64)
        and isinstance(params, types.Array)
        and params.dtype == types.int32
    ):
        return None
    symbol = _SYMBOLS[str(scalars.dtype)]

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        byte_pp = ir.IntType(8).as_pointer().as_pointer()
        p_arr, s_arr, a_arr, b_arr, c_arr = (
            context.make_array(t)(context, builder, v) for t, v in zip(signature.args, args, strict=True)
        )
        p = p_arr.data
        s = s_arr.data

        def at(i):
            return builder.gep(p, [ir.Constant(i32, i)])

        void_p = ir.IntType(8).as_pointer()
        arg_types = [i32] + [void_p] * 13 + [i32, void_p]
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), arg_types), symbol)

        def as_void(value):
            return builder.bitcast(value, void_p)

        builder.call(
            fn,
            [
                builder.load(at(0)),
                as_void(at(1)),
                as_void(at(2)),
                as_void(at(3)),
                as_void(at(4)),
                as_void(at(5)),
                as_void(s),
                as_void(builder.bitcast(a_arr.data, byte_pp)),
                as_void(at(6)),
                as_void(builder.bitcast(b_arr.data, byte_pp)),
                as_void(at(7)),
                as_void(builder.gep(s, [ir.Constant(i32, 1)])),
                as_void(builder.bitcast(c_arr.data, byte_pp)),
                as_void(at(8)),
                ir.Constant(i32, 1),
                as_void(at(9)),
            ],
        )
        return context.get_dummy_value()

    return types.none(params, scalars, a_addresses, b_addresses, c_addresses), codegen


@compiled_only
def _fits_int32(*sizes):
    for s in sizes:
        if s > 2**31 - 1:
            return False
    return True


@numba.njit(cache=True)
def matmul_planes(a, b, c):
    """``c[n, g * R:(g + 1) * R] = a[g] @ b[n, g * S:(g + 1) * S]`` for every plane ``n`` and
    group ``g``: ``a`` (G, R, S), ``b`` (N, G * S, P), ``c`` (N, G * R, P), all C-contiguous,
    one dtype (float32 or float64); ``c`` is overwritten. One batched BLAS call where the BLAS
    has one and the GEMMs are large (``BATCH_MIN_MULTIPLY_ADDS``), else one ``np.dot`` per
    GEMM. The caller sets the BLAS's threads (``blas_threads.limit_threads``); the batch runs
    on as many."""
    G, R, S = a.shape
    N, P = b.shape[0], b.shape[2]
    if b.shape[1] != G * S or c.shape[0] != N or c.shape[1] != G * R or c.shape[2] != P:
        raise ValueError("matmul_planes: the operands' shapes do not match")
    count = N * G
    if count == 0 or R == 0 or P == 0:
        return
    if R * S * P <= BATCH_MIN_MULTIPLY_ADDS or not (_batch_found() and _fits_int32(R, S, P, count)):
        _matmul_planes_by_dot(a, b, c)
        return
    params = np.array((_ROW_MAJOR, _NO_TRANS, _NO_TRANS, R, P, S, S, P, P, count), dtype=np.int32)
    scalars = np.zeros(2, dtype=c.dtype)
    scalars[0] = 1
    a_addresses = np.empty(count, dtype=np.int64)
    b_addresses = np.empty(count, dtype=np.int64)
    c_addresses = np.empty(count, dtype=np.int64)
    item = c.itemsize
    for n in range(N):
        for g in range(G):
            i = n * G + g
            a_addresses[i] = a.ctypes.data + g * R * S * item
            b_addresses[i] = b.ctypes.data + (n * G * S + g * S) * P * item
            c_addresses[i] = c.ctypes.data + (n * G * R + g * R) * P * item
    threads = _threads_as_the_blas()
    _gemm_batch(params, scalars, a_addresses, b_addresses, c_addresses)
    _restore_batch_threads(threads)


@numba.njit(cache=True)
def _matmul_planes_by_dot(a, b, c):
    """:func:`matmul_planes` by one ``np.dot`` per GEMM."""
    G, R, S = a.shape
    for n in range(b.shape[0]):
        for g in range(G):
            np.dot(a[g], b[n, g * S : (g + 1) * S], c[n, g * R : (g + 1) * R])


@compiled_only
def add_into(dst, src):
    """``dst += src`` for 2-d arrays of one shape, without a temporary."""
    for i in range(dst.shape[0]):
        for j in range(dst.shape[1]):
            dst[i, j] += src[i, j]


@numba.njit(cache=True)
def add_plane_products(a, b, c, groups):
    """``c[g * R:(g + 1) * R] += sum_n a[n, g * R:(g + 1) * R] @ b[n, g * S:(g + 1) * S].T``
    for every group ``g``: ``a`` (N, G * R, P), ``b`` (N, G * S, P), ``c`` (G * R, S), all
    C-contiguous, one dtype (float32 or float64). The filter gradient of a 1x1 convolution.

    With the BLAS's batched GEMMs and large GEMMs (``BATCH_MIN_MULTIPLY_ADDS``): images two at
    a time in one batched call, each adding (``beta = 1``) into one of two partial sums, so the
    BLAS's threads take whole GEMMs (the short reduction over one image's positions splits
    badly among threads) and no product needs a temporary. Else one ``np.dot`` per image and
    group. The caller sets the BLAS's threads (``blas_threads.limit_threads``)."""
    N, P = a.shape[0], a.shape[2]
    R, S = a.shape[1] // groups, c.shape[1]
    if b.shape[0] != N or b.shape[1] != groups * S or b.shape[2] != P or c.shape[0] != groups * R:
        raise ValueError("add_plane_products: the operands' shapes do not match")
    if N == 0 or R == 0 or S == 0:
        return
    if R * S * P <= BATCH_MIN_MULTIPLY_ADDS or not (_batch_found() and _fits_int32(R, S, P, 2 * groups)):
        for n in range(N):
            for g in range(groups):
                add_into(c[g * R : (g + 1) * R], np.dot(a[n, g * R : (g + 1) * R], b[n, g * S : (g + 1) * S].T))
        return
    pairs = min(2, N)
    partial = np.zeros((pairs, groups * R, S), dtype=c.dtype)
    params = np.array((_ROW_MAJOR, _NO_TRANS, _TRANS, R, S, P, P, P, S, 0), dtype=np.int32)
    scalars = np.ones(2, dtype=c.dtype)
    a_addresses = np.empty(pairs * groups, dtype=np.int64)
    b_addresses = np.empty(pairs * groups, dtype=np.int64)
    c_addresses = np.empty(pairs * groups, dtype=np.int64)
    item = c.itemsize
    threads = _threads_as_the_blas()
    for n0 in range(0, N, pairs):
        count = 0
        for n in range(n0, min(n0 + pairs, N)):
            for g in range(groups):
                a_addresses[count] = a.ctypes.data + (n * groups * R + g * R) * P * item
                b_addresses[count] = b.ctypes.data + (n * groups * S + g * S) * P * item
                c_addresses[count] = partial.ctypes.data + ((n - n0) * groups * R + g * R) * S * item
                count += 1
        params[9] = count
        _gemm_batch(params, scalars, a_addresses[:count], b_addresses[:count], c_addresses[:count])
    _restore_batch_threads(threads)
    for k in range(pairs):
        add_into(c, partial[k])
