"""The kernels called across the boundary of ``dispatch/numba/boundary.py``: a new graph does not
compile them again, a first call compiles the algorithms it uses and no others, refused
arguments raise, and a long first compile is announced once."""

import logging
import os
import re
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pytensor_nnet import conv2d
from pytensor_nnet.dispatch.numba import boundary, workers
from pytensor_nnet.dispatch.numba import conv as numba_conv
from pytensor_nnet.dispatch.numba import pool as numba_pool
from pytensor_nnet.kernels import pool as pool_kernels
from pytensor_nnet.kernels import select
from pytensor_nnet.pool import pool_2d
from tests.boundary_bodies import add_body, broken_body
from tests.reference.conv import conv_ref


def _step(border_mode, dtype="float64"):
    x, w = pt.tensor4("x", dtype=dtype), pt.tensor4("w", dtype=dtype)
    h = pt.maximum(conv2d(x, w, border_mode=border_mode), 0)
    loss = (pool_2d(h, (2, 2), ignore_border=True) ** 2).sum()
    return pytensor.function([x, w], [h, *pytensor.grad(loss, [x, w])], mode="NUMBA")


def _glue_llvm(node, funcify, *inputs):
    """LLVM of a node's compiled function (linked modules included), compiled outside any cache."""
    fn, _ = funcify(node.op, node)
    wrapper = numba.njit(lambda *args: fn(*args))
    wrapper(*inputs)
    return "\n".join(wrapper.inspect_llvm().values())


def test_the_graph_declares_the_kernels_instead_of_linking_them():
    x, w = pt.tensor4("x"), pt.tensor4("w")
    y = conv2d(x, w, border_mode=1)
    llvm = _glue_llvm(y.owner, numba_conv.numba_funcify_AbstractConv, np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)))
    defined = re.findall(r"^define [^@]*@\"?([^\"(]+)", llvm, re.M)
    declared = re.findall(r"^declare [^@]*@\"?([^\"(]+)", llvm, re.M)
    prefix = "pytensor_nnet_conv_corr_forward_float64_"
    assert any(name.startswith(prefix) and name.endswith("_table") for name in declared)
    assert any(name.startswith(prefix) and name.endswith("_resolve") for name in declared)
    assert any(name.startswith("pytensor_nnet_conv_conv_drive_int64_") for name in declared)
    assert any(name.startswith("pytensor_nnet_conv_conv_check_int64_") for name in declared)
    behind_the_boundary = ("im2col", "forward_into", "gemm", "plan", "parts_for", "run_tasks", "conv_shape_problem")
    assert not [name for name in defined if any(part in name for part in behind_the_boundary)]


def test_a_new_graph_reuses_the_compiled_kernels():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 9, 9)), rng.standard_normal((4, 3, 3, 3))
    _step(1)(x, w)
    compiled = {name: list(entries.compiled) for name, entries in boundary._lazy.items()}
    h, dx, dw = _step(2)(x, w)
    assert {name: list(entries.compiled) for name, entries in boundary._lazy.items()} == compiled
    for entry in ("conv_conv_drive", "conv_conv_check", "pool_pool_forward_max_c", "pool_max_pool_grad_first_c"):
        dtype = "int64" if entry in ("conv_conv_drive", "conv_conv_check") else "float64"
        [entries] = [e for name, e in compiled.items() if name.startswith(f"pytensor_nnet_{entry}_{dtype}_")]
        assert entries[0] is not None
    for direction in select.DIRECTION_NAMES:
        prefix = f"pytensor_nnet_conv_corr_{direction}_float64_"
        [entries] = [e for name, e in compiled.items() if name.startswith(prefix)]
        assert entries[select.GEMM] is not None
    np.testing.assert_allclose(h, np.maximum(conv_ref(x, w, border_mode=2), 0), rtol=1e-10, atol=1e-12)
    assert dx.shape == x.shape and dw.shape == w.shape


def test_one_driver_serves_every_dtype():
    """The drivers read their operands' addresses and item size, not their items: a graph in
    a second dtype compiles its entries only, and computes in its own dtype."""
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((4, 2, 9, 9)), rng.standard_normal((3, 2, 3, 3))
    results = {}
    for dtype in ("float64", "float32"):
        with workers.forced_parts(2):  # the filter gradient adds the parts in the item size
            results[dtype] = _step(1, dtype)(x.astype(dtype), w.astype(dtype))
    assert [r.dtype for r in results["float32"]] == [np.float32] * 3
    for got, want in zip(results["float32"], results["float64"], strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4 * float(np.abs(want).max()))
    np.testing.assert_allclose(results["float64"][0], np.maximum(conv_ref(x, w, border_mode=1), 0), rtol=1e-10)
    drivers = [name for name in boundary._lazy if "_drive_" in name]
    assert {name.split("_drive_")[0] for name in drivers} == {"pytensor_nnet_conv_conv", "pytensor_nnet_pool_pool"}
    assert all(name.split("_drive_")[1].startswith(boundary.DRIVER_DTYPE + "_") for name in drivers)


#: An entry (a kernel's or a driver's) that refuses its arguments raises; Numba's C wrapper
#: prints the exception (an "unraisable" one, which pytest reports as a warning) and returns 0,
#: read as a failure.
_PRINTS_THE_REFUSAL = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def _conv_call(direction, dtype):
    """A compiled ``call(a, b, out, meta)`` through the convolution's driver, as a graph's node
    calls it (the addresses of its symbols read by relocation)."""
    table, resolve, driver_table, driver_resolve = numba_conv._boundary_symbols(direction, dtype)

    @numba.njit
    def call(a, b, out, meta):
        symbols = (
            workers.symbol_address(table),
            workers.symbol_address(resolve),
            workers.symbol_address(driver_table),
            workers.symbol_address(driver_resolve),
        )
        numba_conv._call_driver(direction, a, b, out, meta, symbols)

    return call


def _driver_meta(a, b, out, stride=(1, 1, 1), pad=(0, 0, 0)):
    """The convolution driver's ``meta`` for 5-d operands ``a``, ``b`` and ``out``, one
    group, a 1 MiB column buffer and no dilation, flip or excluded algorithm."""
    meta = np.zeros(numba_conv._DRIVER_META_LENGTH, dtype=np.int64)
    meta[0:5], meta[5:10], meta[10:15] = a.shape, b.shape, out.shape
    meta[15:18], meta[18:21], meta[21:24], meta[24:27] = stride, pad, pad, (1, 1, 1)
    meta[27], meta[28] = 1, 2**20
    return meta


@_PRINTS_THE_REFUSAL
def test_refused_arguments_raise_instead_of_writing_out_of_bounds():
    call = _conv_call(select.FORWARD, "float64")

    @numba.njit  # the graph's functions have no Python wrapper: call it from compiled code
    def forward(x, w, out, meta):
        call(x, w, out, meta)

    x, w = np.ones((1, 2, 1, 5, 5)), np.ones((3, 2, 1, 3, 3))
    wrong_out = np.zeros((1, 3, 1, 4, 4))  # the output is (1, 3, 1, 3, 3)
    with pytest.raises(ValueError, match="refused its arguments"):
        forward(x, w, wrong_out, _driver_meta(x, w, wrong_out))
    assert not wrong_out.any()
    out = np.zeros((1, 3, 1, 3, 3))
    forward(x, w, out, _driver_meta(x, w, out))
    np.testing.assert_allclose(out, 18.0)


@_PRINTS_THE_REFUSAL
def test_a_driver_that_raises_fails_the_call():
    """A driver holds no ``try``: when it raises (here a zero stride, which no Op lets through),
    Numba's C callback prints the exception and returns 0, which the graph's call reads as a
    failure; the output is left alone."""
    call = _conv_call(select.FORWARD, "float64")

    @numba.njit
    def forward(x, w, out, meta):
        call(x, w, out, meta)

    x, w = np.ones((1, 2, 1, 5, 5)), np.ones((3, 2, 1, 3, 3))
    out = np.full((1, 3, 1, 3, 3), 7.0)
    with pytest.raises(ValueError, match="refused its arguments"):
        forward(x, w, out, _driver_meta(x, w, out, stride=(0, 0, 0)))
    assert (out == 7.0).all()
    forward(x, w, out, _driver_meta(x, w, out))
    np.testing.assert_allclose(out, 18.0)


_MISMATCHED = {  # direction, operands a and b, the output, padding: each inconsistent somewhere
    "input gradient, top too large": (select.GRAD_INPUTS, (3, 2, 1, 3, 3), (1, 3, 1, 4, 4), (1, 2, 1, 5, 5), 0),
    "input gradient, channels": (select.GRAD_INPUTS, (3, 2, 1, 3, 3), (1, 3, 1, 3, 3), (1, 4, 1, 5, 5), 0),
    "filter gradient, top too large": (select.GRAD_WEIGHTS, (1, 2, 1, 5, 5), (1, 3, 1, 4, 4), (3, 2, 1, 3, 3), 0),
    "filter gradient, filter size": (select.GRAD_WEIGHTS, (1, 2, 1, 5, 5), (1, 3, 1, 3, 3), (3, 2, 1, 2, 2), 0),
    "winograd output": (select.FORWARD, (1, 16, 1, 10, 10), (16, 16, 1, 3, 3), (1, 16, 1, 9, 9), 1),
    "winograd filter gradient": (select.GRAD_WEIGHTS, (1, 16, 1, 10, 10), (1, 16, 1, 9, 9), (16, 16, 1, 3, 3), 1),
}


@_PRINTS_THE_REFUSAL
@pytest.mark.parametrize("case", sorted(_MISMATCHED))
def test_refused_arguments_leave_the_output_alone(case):
    direction, a_shape, b_shape, out_shape, pad = _MISMATCHED[case]
    call = _conv_call(direction, "float64")

    @numba.njit
    def run(a, b, out, meta):
        call(a, b, out, meta)

    out = np.full(out_shape, 7.0)
    with pytest.raises(ValueError, match="refused its arguments"):
        a, b = np.ones(a_shape), np.ones(b_shape)
        run(a, b, out, _driver_meta(a, b, out, pad=(0, pad, pad)))
    assert (out == 7.0).all()


@_PRINTS_THE_REFUSAL
@pytest.mark.parametrize("parts", [1, 2, 3])
def test_parts_that_refuse_their_arguments_fail_the_call(parts):
    """Split into parts on threads of their own, each part's entry refuses the mismatched
    operands (its exception printed from that thread) and the call fails without writing."""
    call = _conv_call(select.GRAD_WEIGHTS, "float64")

    @numba.njit
    def run(a, b, out, meta):
        call(a, b, out, meta)

    x, top = np.ones((6, 2, 1, 9, 9)), np.ones((6, 3, 1, 8, 8))  # the top of 3x3 filters is 7x7
    out = np.full((3, 2, 1, 3, 3), 7.0)
    with workers.forced_parts(parts), pytest.raises(ValueError, match="refused its arguments"):
        run(x, top, out, _driver_meta(x, top, out))
    assert (out == 7.0).all()
    right = np.ones((6, 3, 1, 7, 7))
    out[...] = 0.0
    with workers.forced_parts(parts):
        run(x, right, out, _driver_meta(x, right, out))
    np.testing.assert_allclose(out, 6 * 49.0)


@_PRINTS_THE_REFUSAL
@pytest.mark.parametrize("ties, small", [("first", 0), ("first", 1), ("all", 0)])
def test_refused_pooling_gradient_arguments_leave_the_output_alone(ties, small):
    """The max-pooling gradient's entries (one per tie rule, and the batch-minor one of small
    planes) check their operands before they write: ``maxout`` and ``gz`` of 3x3 windows where
    the pooling of a 4x4 input by 2x2 gives 2x2."""
    code = pool_kernels.TIE_RULES[ties]
    call = numba_pool._boundary_call(numba_pool.MAX_POOL_GRAD_BODIES[code, small], np.dtype("float64"))

    @numba.njit
    def grad(x, maxout, gz, gx):
        call(x, maxout, gz, gx, x.shape, gz.shape, (1, 2, 2), (1, 2, 2), (0, 0, 0), True, code)

    x = np.arange(16.0).reshape((1, 1, 4, 4))
    wrong, gx = np.ones((1, 1, 3, 3)), np.full(x.shape, 7.0)
    with pytest.raises(ValueError, match="refused its arguments"):
        grad(x, wrong, wrong, gx)
    assert (gx == 7.0).all()
    right = np.ones((1, 1, 2, 2))
    grad(x, np.array([[[[5.0, 7.0], [13.0, 15.0]]]]), right, gx)
    np.testing.assert_array_equal(gx[0, 0], [[0, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0], [0, 1, 0, 1]])


def _entry_caller(entries, slot=0):
    """Compiled ``call(a, b, c, out, meta)`` of entry ``slot`` of ``entries`` (a
    ``boundary.LazyKernels``), as the graphs call them; returns the status."""
    table, resolve = entries.table, entries.resolve

    @numba.njit
    def call(a, b, c, out, meta):
        address = workers.resolved_address(workers.symbol_address(table), workers.symbol_address(resolve), slot)
        return workers.call_entry_on(address, a, b, c, out, meta)

    return call


@_PRINTS_THE_REFUSAL
def test_an_entry_computes_only_problems_its_algorithm_and_reduction_apply_to():
    """The driver plans; each entry runs its algorithm on the problem as given or on its strided
    reduction, without planning again, and refuses (before it writes) a problem that its
    algorithm cannot compute or whose reduction does not apply. As given, the GEMM computes any
    problem, strided or not."""
    rng = np.random.default_rng(3)
    entries = numba_conv._entries(select.FORWARD, "float64")

    def run(slot, x, w, out_shape, stride=(1, 1, 1)):
        out = np.full(out_shape, 7.0)
        status = _entry_caller(entries, slot)(x, w, x, out, _driver_meta(x, w, out, stride=stride))
        return status, out

    def correlation(x, w, stride):  # conv_ref convolves: flip the filters
        return conv_ref(x[:, :, 0], w[:, :, 0, ::-1, ::-1], subsample=stride[1:])[:, :, None]

    two_channels, filters = rng.standard_normal((2, 2, 1, 6, 6)), rng.standard_normal((3, 2, 1, 3, 3))
    refused = [
        numba_conv._entry_slot(select.DIRECT, False),  # two input channels per group
        numba_conv._entry_slot(select.WINOGRAD, False),  # too few channels
        numba_conv._entry_slot(select.POINTWISE, False),  # a 3 x 3 filter
        numba_conv._entry_slot(select.GEMM, True),  # stride 1: no reduction
    ]
    for slot in refused:
        status, out = run(slot, two_channels, filters, (2, 3, 1, 4, 4))
        assert status != boundary.DONE, numba_conv._ENTRY_BODIES[select.FORWARD][slot].__name__
        assert (out == 7.0).all()
    status, out = run(numba_conv._entry_slot(select.GEMM, False), two_channels, filters, (2, 3, 1, 4, 4))
    assert status == boundary.DONE
    np.testing.assert_allclose(out, correlation(two_channels, filters, (1, 1, 1)), rtol=1e-12)

    x, w, stride = rng.standard_normal((2, 4, 1, 9, 9)), rng.standard_normal((5, 4, 1, 1, 1)), (1, 2, 2)
    want = correlation(x, w, stride)
    for slot in (numba_conv._entry_slot(select.POINTWISE, True), numba_conv._entry_slot(select.GEMM, False)):
        status, out = run(slot, x, w, want.shape, stride)
        assert status == boundary.DONE
        np.testing.assert_allclose(out, want, rtol=1e-12)
    status, out = run(numba_conv._entry_slot(select.POINTWISE, False), x, w, want.shape, stride)
    assert status != boundary.DONE and (out == 7.0).all()  # strided: not a pointwise problem as given


def test_the_driver_plans_the_strided_reduction():
    one, zero, stride = (1, 1, 1), (0, 0, 0), (1, 2, 2)
    images, filters, out = (2, 4, 1, 9, 9), (5, 4, 1, 1, 1), (2, 5, 1, 5, 5)
    assert numba_conv._conv_plan(select.FORWARD, images, filters, out, stride, zero, zero, one, 1, 0)[:2] == (
        select.POINTWISE,
        True,
    )
    excluded = select.excluded_mask(["subsample"])
    assert numba_conv._conv_plan(select.FORWARD, images, filters, out, stride, zero, zero, one, 1, excluded)[:2] == (
        select.GEMM,
        False,
    )


def test_a_long_first_compile_is_announced_once(monkeypatch, caplog):
    monkeypatch.setattr(boundary, "SLOW_COMPILE_NOTICE_S", 0.0)
    monkeypatch.setattr(boundary, "_noticed", type(boundary._noticed)())
    tiny = [boundary.LazyKernels(f"pytensor_nnet_test_tiny_{d}", (add_body,), d) for d in ("float64", "float32")]
    with caplog.at_level(logging.INFO, logger="pytensor_nnet"):
        for entries in tiny:
            entries.address(0)
    notices = [r for r in caplog.records if r.levelno == logging.INFO and "compiling its kernels" in r.message]
    assert len(notices) == 1
    a, out, meta = np.arange(3.0), np.zeros(3), np.array([3])
    assert _entry_caller(tiny[0])(a, np.ones(3), a, out, meta) == 0
    np.testing.assert_array_equal(out, [1.0, 2.0, 3.0])


_FIRST_CALLS = textwrap.dedent(
    """
    import threading
    import numpy as np, pytensor, pytensor.tensor as pt
    from pytensor_nnet import conv2d
    from pytensor_nnet.dispatch.numba import boundary
    from pytensor_nnet.kernels import select

    def compiled():
        names = {}
        for name, entries in boundary._lazy.items():
            if "_corr_" not in name:
                continue
            direction = name.split("_corr_")[1].rsplit("_", 2)[0]
            names[direction] = [select.NAMES[i] for i, c in enumerate(entries.compiled) if c is not None]
        return names

    x, w = pt.tensor4("x"), pt.tensor4("w")
    y = conv2d(x, w, border_mode=1)
    f = pytensor.function([x, w], [y, *pytensor.grad((y ** 2).sum(), [x, w])], mode="NUMBA")
    assert compiled() == {d: [] for d in select.DIRECTION_NAMES}, compiled()  # nothing before the first call
    f(np.ones((2, 3, 6, 6)), np.ones((4, 3, 5, 5)))
    assert compiled() == {d: ["gemm"] for d in select.DIRECTION_NAMES}, compiled()
    depthwise = pytensor.function([x, w], pytensor.grad((conv2d(x, w, num_groups=3) ** 2).sum(), [x, w]), mode="NUMBA")
    # a first call on another thread: the resolver takes the GIL that thread holds
    worker = threading.Thread(target=depthwise, args=(np.ones((2, 3, 6, 6)), np.ones((3, 1, 3, 3))))
    worker.start()
    worker.join(600)
    assert not worker.is_alive()
    assert compiled() == {d: ["gemm", "direct"] for d in select.DIRECTION_NAMES}, compiled()
    print("ok")
    """
)


def test_a_first_call_compiles_the_planned_algorithms_only():
    """In a new process (nothing resolved yet): each direction's entry is compiled (or loaded
    from Numba's cache) when a call plans its algorithm, not when the graph is built."""
    done = subprocess.run([sys.executable, "-c", _FIRST_CALLS], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")


def _lookup(entries, slot):
    table, resolve = entries.table, entries.resolve

    @numba.njit
    def address():
        found = workers.read_int64(workers.symbol_address(table), slot)
        if found == 0:
            found = resolve(slot)
        return found

    return address


def test_a_lazy_entry_is_compiled_once_and_a_failed_compile_reads_zero(caplog):
    entries = boundary.LazyKernels("pytensor_nnet_test_lazy_entries", (add_body, broken_body), "float64")
    good, broken = _lookup(entries, 0), _lookup(entries, 1)
    assert entries.compiled == [None, None]
    address = good()
    assert address != 0 and address == entries.compiled[0].address
    first = entries.compiled[0]
    assert good() == address and entries.compiled[0] is first  # read from the table
    with caplog.at_level(logging.ERROR, logger="pytensor_nnet"):
        assert broken() == 0
    assert any("could not compile" in r.message for r in caplog.records)
    assert entries.compiled[1] is None


def test_the_driver_reports_an_entry_that_does_not_compile(caplog):
    entries = boundary.LazyKernels(
        "pytensor_nnet_test_broken_conv_entries", (broken_body,) * len(numba_conv._ENTRY_BODIES[0]), "float64"
    )
    driver = _entry_caller(
        boundary.lazy_kernel(numba_conv.conv_drive, boundary.DRIVER_DTYPE, numba_conv.KERNEL_FINGERPRINT)
    )
    table, resolve = entries.table, entries.resolve
    direction, table_slot, resolver_slot = numba_conv._DIRECTION, numba_conv._TABLE, numba_conv._RESOLVER
    itemsize_slot = numba_conv._ITEMSIZE
    meta_length = numba_conv._DRIVER_META_LENGTH

    @numba.njit
    def forward(x, w, out):
        meta = np.zeros(meta_length, dtype=np.int64)
        one, zero = (1, 1, 1), (0, 0, 0)
        numba_conv._fill_meta(meta, x.shape, w.shape, out.shape, one, zero, zero, one, 1, 2**20, 0)
        meta[direction] = select.FORWARD
        meta[table_slot] = workers.symbol_address(table)
        meta[resolver_slot] = workers.symbol_address(resolve)
        meta[itemsize_slot] = 8
        return driver(x, w, x, out, meta)

    x, w, out = np.ones((1, 2, 1, 5, 5)), np.ones((3, 2, 1, 3, 3)), np.zeros((1, 3, 1, 3, 3))
    with caplog.at_level(logging.ERROR, logger="pytensor_nnet"):
        assert forward(x, w, out) == boundary.KERNEL_UNCOMPILED
    assert any("could not compile" in r.message for r in caplog.records)
    assert not out.any()


_STALE_KERNEL = """
from helper import value


def body(a, b, c, out, meta):
    out[0] = value()
    return 0
"""

_STALE_CALL = """
import inspect, os, sys
import numba, numpy as np
from pytensor_nnet import numba_cache
numba_cache.cover(os.environ["PYTHONPATH"])  # as the package's own files are
import helper, kernel
from pytensor_nnet.dispatch.numba import boundary
from pytensor_nnet.dispatch.numba.fingerprint import source_fingerprint

from pytensor_nnet.dispatch.numba import workers

entry = boundary.lazy_kernel(kernel.body, "float64", source_fingerprint(kernel, helper))
table, resolve = entry.table, entry.resolve

@numba.njit
def run():
    out = np.zeros(1)
    meta = np.zeros(1, dtype=np.int64)
    address = workers.resolved_address(workers.symbol_address(table), workers.symbol_address(resolve), 0)
    workers.call_entry_on(address, out, out, out, out, meta)
    return out[0]

print(run())
"""


def test_an_edited_kernel_is_not_loaded_stale_from_numbas_cache(tmp_path):
    """The entry point's file is unchanged, the kernel it calls (another file) is edited: a
    new process compiles it again instead of loading the cached machine code."""
    (tmp_path / "kernel.py").write_text(_STALE_KERNEL)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(tmp_path)}

    def run_with(value):
        helper = f"import numba\n\n\n@numba.njit(cache=True)\ndef value():\n    return {value!r}\n"
        (tmp_path / "helper.py").write_text(helper)
        done = subprocess.run([sys.executable, "-c", _STALE_CALL], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return float(done.stdout.strip().splitlines()[-1])

    assert run_with(1.0) == 1.0
    assert run_with(1.0) == 1.0  # from the cache
    assert run_with(2.0) == 2.0


_CHAIN = {
    "top.py": "import numba\nimport mid\n\n\n@numba.njit(cache=True)\ndef run():\n    return mid.twice()\n",
    "mid.py": "import numba\nimport helper\n\n\n@numba.njit(cache=True)\ndef twice():\n    return 2 * helper.value()\n",
}

_CHAIN_CALL = """
import sys
from pytensor_nnet import numba_cache
numba_cache.cover(sys.argv[1])
sys.path.insert(0, sys.argv[1])
import top
print(top.run())
"""


def test_an_edit_two_calls_away_is_not_served_stale_from_numbas_cache(tmp_path):
    """``top`` calls ``mid`` calls ``helper``; only ``helper`` is edited between processes.
    Numba keys each cached function on its own file, so ``top`` and ``mid`` keep the old
    ``helper`` linked in (Numba alone answers 2.0 at the end); in a covered directory
    (``numba_cache``, as this package is) the stamp of all the files makes a new process
    compile them again."""
    package = tmp_path / "package"
    package.mkdir()
    for name, text in _CHAIN.items():
        (package / name).write_text(text)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}

    def run_with(value):
        helper = f"import numba\n\n\n@numba.njit(cache=True)\ndef value():\n    return {value!r}\n"
        (package / "helper.py").write_text(helper)
        command = [sys.executable, "-c", _CHAIN_CALL, str(package)]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return float(done.stdout.strip().splitlines()[-1])

    assert run_with(1.0) == 2.0
    assert run_with(1.0) == 2.0  # from the cache
    assert run_with(5.0) == 10.0


def _save_racing(cache_file_class, cache_dir, stamp):
    """Two processes save one function's entries for two signatures at once: the second saves
    (having read the index before the first wrote it) while the first is between writing the
    index and writing the data; returns what a third process loads for each key."""
    cache_dir.mkdir()
    first, second = (cache_file_class(str(cache_dir), "kernel.f-1.py311", stamp) for _ in range(2))
    write_data = first._save_data

    def second_saves_meanwhile(name, data):
        second._load_index = dict  # it read the index before the first process wrote it
        second.save("float64 key", "float64 code")
        write_data(name, data)

    first._save_data = second_saves_meanwhile
    first.save("float32 key", "float32 code")
    reader = cache_file_class(str(cache_dir), "kernel.f-1.py311", stamp)
    return reader.load("float32 key"), reader.load("float64 key")


def test_racing_saves_never_map_a_key_to_another_signatures_code(tmp_path):
    """Numba numbers a function's data files in the order of saving, after the index it read:
    two workers compiling float32 and float64 at once can both pick number 1, and the float64
    key then loads float32 code. The package's functions (a string stamp) name data files
    after their keys and write them before the index. Numba's own stamps (tuples) keep its
    naming."""
    from numba.core.caching import IndexDataCacheFile

    from pytensor_nnet.numba_cache import KeyNamedCacheFile, source_stamp

    assert _save_racing(IndexDataCacheFile, tmp_path / "numba", (1.0, 10)) == (None, "float32 code")
    assert _save_racing(KeyNamedCacheFile, tmp_path / "package", source_stamp()) == ("float32 code", "float64 code")
    assert _save_racing(KeyNamedCacheFile, tmp_path / "other", (1.0, 10)) == (None, "float32 code")
