"""Boundary kernels split into parts of the batch on threads of their own
(``dispatch/numba/workers.py``): the same results as one part, per algorithm and direction,
the BLAS's thread count restored, and the rule that decides how many parts."""

import os
import threading
import time
from functools import lru_cache

import numba
import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba.core import types

from pytensor_nnet import conv2d, conv3d
from pytensor_nnet.dispatch.numba import conv as numba_conv
from pytensor_nnet.dispatch.numba import workers
from pytensor_nnet.kernels import blas_threads, select
from tests.reference.conv import conv_grads_ref, conv_ref

# (x shape, w shape, conv2d keywords, the algorithm the selection picks)
PROBLEMS = {
    "winograd": ((5, 16, 10, 9), (16, 16, 3, 3), {"border_mode": 1}),
    "winograd_large_tiles": ((3, 16, 17, 18), (16, 16, 3, 3), {"border_mode": 1}),  # 4x4 output tiles
    "direct": ((7, 6, 9, 8), (12, 1, 3, 3), {"border_mode": "valid", "num_groups": 6}),
    "direct_rows": ((7, 6, 9, 8), (12, 1, 3, 3), {"border_mode": "half", "num_groups": 6}),
    "gemm": ((6, 2, 11, 12), (5, 2, 5, 5), {"border_mode": "valid", "subsample": (2, 1)}),
    "gemm_groups": ((3, 4, 9, 9), (6, 2, 3, 2), {"border_mode": (2, 1), "num_groups": 2, "filter_dilation": (2, 1)}),
    "pointwise": ((2, 8, 6, 7), (6, 8, 1, 1), {"border_mode": "valid"}),
    # channels enough for Winograd in two parts of a batch of one's filters (or input channels)
    "winograd_wide": ((2, 32, 9, 10), (32, 32, 3, 3), {"border_mode": 1, "filter_flip": False}),
    "direct_one_channel": ((3, 1, 12, 11), (6, 1, 5, 5), {"border_mode": "valid"}),
    # enough input channels that a batch of one's forward im2col + GEMM splits them
    "gemm_wide": ((2, 40, 8, 9), (5, 40, 3, 2), {"border_mode": (1, 0), "filter_dilation": (1, 2)}),
}


def _conv_step(w_shape, dtype, **params):
    x, w, g = pt.tensor4("x", dtype=dtype), pt.tensor4("w", dtype=dtype), pt.tensor4("g", dtype=dtype)
    y = conv2d(x, w, filter_shape=w_shape, **params)
    return pytensor.function([x, w, g], [y, *pytensor.grad(None, [x, w], known_grads={y: g})], mode="NUMBA")


@pytest.mark.parametrize("batch", ["whole", "one"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_parts_compute_what_one_part_computes(name, dtype, batch):
    """Parts of the batch, or of a batch of one's groups, filters or input channels."""
    x_shape, w_shape, params = PROBLEMS[name]
    if batch == "one":
        x_shape = (1,) + x_shape[1:]
    rng = np.random.default_rng(len(name))
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    f = _conv_step(w_shape, dtype, **params)
    gy = rng.standard_normal(_output_shape(x, w, params)).astype(dtype)
    with workers.forced_parts(1):
        serial = f(x, w, gy)
    results = {}
    for parts in (2, 3, max(x_shape[0], w_shape[0], x_shape[1]) + 2):
        with workers.forced_parts(parts):
            results[parts] = f(x, w, gy)
    tol = {"float64": 1e-10, "float32": 2e-4}[dtype]
    x64, w64 = x.astype("float64"), w.astype("float64")
    reference = (conv_ref(x64, w64, **params), *conv_grads_ref(x64, w64, gy.astype("float64"), **params))
    for parts, outs in results.items():
        for got, one, ref in zip(outs, serial, reference, strict=True):
            scale = max(1.0, float(np.abs(ref).max()))
            np.testing.assert_allclose(got, one, rtol=0, atol=tol * scale, err_msg=f"{parts} parts")
            np.testing.assert_allclose(got, ref, rtol=0, atol=tol * scale, err_msg=f"{parts} parts vs reference")


#: Geometries of the sweep below: (conv2d keywords but the groups, kernel). Each is one
#: compiled function per group count; the sweep draws the channels, sizes and parts.
SWEEP_GEOMETRIES = (
    ({"border_mode": 1}, (3, 3)),  # Winograd with 16 channels of each per part
    ({"border_mode": (2, 0), "subsample": (2, 1), "filter_dilation": (1, 2)}, (3, 2)),
    ({"border_mode": "valid", "filter_flip": False}, (1, 1)),
    ({"border_mode": "half", "subsample": (2, 2), "filter_dilation": (2, 2)}, (3, 3)),  # subsampled
)


@lru_cache
def _sweep_step(geometry, groups, dtype):
    params, kernel = SWEEP_GEOMETRIES[geometry]
    return _conv_step((None, None, *kernel), dtype, num_groups=groups, **params)


@settings(max_examples=30, deadline=None)
@given(
    geometry=st.integers(0, len(SWEEP_GEOMETRIES) - 1),
    groups=st.sampled_from([1, 1, 2, 3]),
    in_per_group=st.sampled_from([1, 2, 5, 16, 33]),
    filters_per_group=st.sampled_from([1, 3, 16, 40]),
    parts=st.integers(2, 5),
    data=st.data(),
)
def test_a_batch_of_one_in_parts_matches_the_reference(geometry, groups, in_per_group, filters_per_group, parts, data):
    """Random geometries, groups and channels of a batch of one, split into parts of its
    groups, filters or input channels: the same results as the reference, float64."""
    params, kernel = SWEEP_GEOMETRIES[geometry]
    size = tuple(data.draw(st.integers(2 * k + 1, 2 * k + 9)) for k in kernel)
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    x = rng.standard_normal((1, in_per_group * groups, *size))
    w = rng.standard_normal((filters_per_group * groups, in_per_group, *kernel))
    params = dict(params, num_groups=groups)
    gy = rng.standard_normal(_output_shape(x, w, params))
    with workers.forced_parts(parts):
        got = _sweep_step(geometry, groups, "float64")(x, w, gy)
    reference = (conv_ref(x, w, **params), *conv_grads_ref(x, w, gy, **params))
    for value, expected in zip(got, reference, strict=True):
        np.testing.assert_allclose(value, expected, rtol=0, atol=1e-10 * max(1.0, float(np.abs(expected).max())))


def _float64_step(name, seed):
    """The compiled step of ``PROBLEMS[name]`` in float64 and random (x, w, output gradient)."""
    x_shape, w_shape, params = PROBLEMS[name]
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    return _conv_step(w_shape, "float64", **params), (x, w, rng.standard_normal(_output_shape(x, w, params)))


def _output_shape(x, w, params):
    return (x.shape[0],) + conv_ref(x[:1].astype("float64"), w.astype("float64"), **params).shape[1:]


def test_the_selection_matches_the_problems():
    for name, (x_shape, w_shape, params) in PROBLEMS.items():
        groups = params.get("num_groups", 1)
        pads = {1: (1, 1), "half": (1, 1), "valid": (0, 0), (2, 1): (2, 1), (1, 0): (1, 0)}[params["border_mode"]]
        stride = params.get("subsample", (1, 1))
        dilation = params.get("filter_dilation", (1, 1))
        out = tuple(
            (x_shape[2 + i] + 2 * pads[i] - dilation[i] * (w_shape[2 + i] - 1) - 1) // stride[i] + 1 for i in range(2)
        )
        chosen = select.algorithm_name(
            select.FORWARD,
            w_shape[1],
            w_shape[0] // groups,
            groups,
            (1,) + w_shape[2:],
            (1,) + stride,
            (0,) + pads,
            (0,) + pads,
            (1,) + dilation,
            (1,) + out,
            excluded=[],
        )
        assert chosen == (name if name in select.NAMES else name.split("_")[0]), name


def test_three_d_parts_and_a_batch_of_one():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((3, 2, 5, 6, 7)), rng.standard_normal((4, 2, 2, 3, 3))
    xs, ws = pt.tensor5("x"), pt.tensor5("w")
    y = conv3d(xs, ws, border_mode="half")
    f = pytensor.function([xs, ws], [y, *pytensor.grad((y**2).sum(), [xs, ws])], mode="NUMBA")
    with workers.forced_parts(1):
        one = f(x, w)
        first = f(x[:1], w)
    with workers.forced_parts(2):
        two = f(x, w)
        single = f(x[:1], w)  # a batch of one: parts of its filters and input channels
    for a, b in zip(one + first, two + single, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_the_blas_thread_count_is_restored():
    before = blas_threads.get_num_threads()
    f, args = _float64_step("winograd", seed=1)
    with workers.forced_parts(2):
        f(*args)
    assert blas_threads.get_num_threads() == before


def test_how_many_parts():
    with workers.forced_parts(3):
        assert workers.parts_for(2, 10**12) == 2  # at most one per image
        assert workers.parts_for(5, 0) == 3
    with workers.forced_parts(1):
        assert workers.parts_for(64, 10**12) == 1
    threads = blas_threads.get_num_threads()
    assert workers.parts_for(1, 10**12) == 1
    assert workers.parts_for(64, workers.MIN_PART_FLOPS - 1) == 1
    # The run queue moves between reads: judge the samples whose busy reading was the same
    # just before and just after.
    by_reading = {False: set(), True: set()}
    for _ in range(200):
        before = threads >= 1 and blas_threads.machine_is_busy(threads)
        many = workers.parts_for(64, 10**12)
        assert many in (1, max(threads, 1))
        if (threads >= 1 and blas_threads.machine_is_busy(threads)) == before:
            by_reading[before].add(many)
    if by_reading[True]:
        assert 1 in by_reading[True]
    if by_reading[False]:
        assert max(threads, 1) in by_reading[False]
    with pytest.raises(ValueError, match="parts must be >= 1"):
        with workers.forced_parts(0):
            pass


@pytest.mark.parametrize("algorithm, kernel", [(select.POINTWISE, (1, 1, 1)), (select.GEMM, (1, 5, 5))])
def test_large_gemms_run_in_parts(algorithm, kernel):
    """im2col + GEMM and the pointwise GEMMs are split like every other algorithm, whether their
    GEMMs are above the one-thread bound or below it."""
    x, w = np.zeros((8, 64, 1, 32, 32)), np.zeros((64, 64, *kernel))
    assert 2 * 64 * 64 * np.prod(kernel) * 32 * 32 >= blas_threads.SINGLE_THREAD_MAX_FLOPS
    one = (1, 1, 1)
    zero = (0, 0, 0)
    with workers.forced_parts(2):
        assert numba_conv._conv_plan(select.FORWARD, x.shape, w.shape, x.shape, one, zero, zero, one, 1, 0) == (
            algorithm,
            False,
            2,
            numba_conv.SPLIT_BATCH,
        )
        small, few = (8, 2, 1, 32, 32), (4, 2, *kernel)
        assert numba_conv._conv_plan(select.FORWARD, small, few, x.shape, one, zero, zero, one, 1, 0) == (
            algorithm,
            False,
            2,
            numba_conv.SPLIT_BATCH,
        )


def test_a_batch_of_one_runs_in_parts_of_its_channels():
    """A batch of one is split into its groups, filters (forward) or input channels (the
    gradients, and the forward im2col + GEMM of enough channels), as far as every part keeps
    the planned algorithm."""
    one, zero, pad = (1, 1, 1), (0, 0, 0), (0, 1, 1)
    GROUPS, FILTERS, INPUTS = numba_conv.SPLIT_GROUPS, numba_conv.SPLIT_FILTERS, numba_conv.SPLIT_INPUTS

    def plan(images, filters, out, groups=1, pads=zero):
        """The plans of the three directions, for 5-d sizes (stride 1: never reduced)."""
        plans = [
            numba_conv._conv_plan(direction, a, b, c, one, pads, pads, one, groups, 0)
            for direction, (a, b, c) in (
                (select.FORWARD, (images, filters, out)),
                (select.GRAD_INPUTS, (filters, out, images)),
                (select.GRAD_WEIGHTS, (images, out, filters)),
            )
        ]
        assert not any(reduced for _, reduced, _, _ in plans)
        return [(algorithm, parts, split) for algorithm, _, parts, split in plans]

    gemm = select.GEMM
    with workers.forced_parts(2):
        assert plan((1, 8, 1, 12, 12), (6, 8, 1, 5, 5), (1, 6, 1, 8, 8)) == [
            (gemm, 2, FILTERS),
            *[(gemm, 2, INPUTS)] * 2,
        ]
        assert plan((3, 8, 1, 12, 12), (6, 8, 1, 5, 5), (3, 6, 1, 8, 8)) == [(gemm, 2, numba_conv.SPLIT_BATCH)] * 3
        # enough input channels: the forward im2col + GEMM splits them too
        assert plan((1, 16, 1, 12, 12), (6, 16, 1, 5, 5), (1, 6, 1, 8, 8)) == [(gemm, 2, INPUTS)] * 3
        # depthwise: two parts of three groups
        assert plan((1, 6, 1, 9, 8), (6, 1, 1, 3, 3), (1, 6, 1, 7, 6), groups=6) == [(select.DIRECT, 2, GROUPS)] * 3
        # Winograd wants 16 channels of each per part: 32 can be split, 16 cannot
        wide = plan((1, 32, 1, 10, 10), (32, 32, 1, 3, 3), (1, 32, 1, 10, 10), pads=pad)
        assert wide == [(select.WINOGRAD, 2, FILTERS), *[(select.WINOGRAD, 2, INPUTS)] * 2]
        narrow = plan((1, 16, 1, 10, 10), (16, 16, 1, 3, 3), (1, 16, 1, 10, 10), pads=pad)
        assert [parts for _, parts, _ in narrow] == [1, 1, 1]
        # one input channel: the gradients cannot split it (the filter gradient is direct)
        lenet = plan((1, 1, 1, 12, 12), (6, 1, 1, 5, 5), (1, 6, 1, 8, 8))
        assert [parts for _, parts, _ in lenet] == [2, 1, 1]


def _cpu_seconds_of_other_threads():
    """CPU time used so far by every thread of this process but the calling one."""
    own = str(threading.get_native_id())
    total = 0.0
    for thread in os.listdir("/proc/self/task"):
        if thread == own:
            continue
        try:
            with open(f"/proc/self/task/{thread}/schedstat") as stat:
                total += int(stat.read().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            continue  # the thread ended
    return total


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads Linux's per-thread CPU times")
@pytest.mark.parametrize("batch", [8, 1])
@pytest.mark.parametrize("name, kernel", [("pointwise", (1, 1)), ("gemm", (5, 5)), ("winograd", (3, 3))])
def test_no_thread_spins_after_a_large_gemm_call(name, kernel, batch):
    """After a call (forward and gradients) whose GEMMs are large enough for the BLAS's
    threads, no thread of the process keeps a core busy (OpenBLAS's worker spins for about
    0.1 s after its last job)."""
    if blas_threads.get_num_threads() < 2:
        pytest.skip("one BLAS thread: nothing could spin")
    x_shape, w_shape = (batch, 64, 32, 32), (64, 64, *kernel)
    x, w = pt.tensor4("x", dtype="float32"), pt.tensor4("w", dtype="float32")
    y = conv2d(x, w, filter_shape=w_shape, border_mode="half")
    f = pytensor.function([x, w], [y, *pytensor.grad((y**2).sum(), [x, w])], mode="NUMBA")
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(shape).astype("float32") for shape in (x_shape, w_shape)]
    f(*args)
    time.sleep(0.5)  # anything started by the first call (compilation, loading) has settled
    f(*args)
    before = _cpu_seconds_of_other_threads()
    time.sleep(0.3)
    assert _cpu_seconds_of_other_threads() - before < 0.03


def test_a_forked_process_runs_split_calls():
    """No thread outlives a call: a process forked after split calls runs them too."""
    import multiprocessing

    f, args = _float64_step("direct", seed=2)
    with workers.forced_parts(2):
        expected = f(*args)
    _FORK_STATE.update(f=f, args=args)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_call_in_child, args=(queue,))
    child.start()
    got = queue.get(timeout=120)
    child.join(timeout=60)
    assert child.exitcode == 0
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


_FORK_STATE = {}


def _call_in_child(queue):
    with workers.forced_parts(2):
        queue.put([np.asarray(r) for r in _FORK_STATE["f"](*_FORK_STATE["args"])])


GIL_SCRIPT = r"""
import ctypes
from pytensor_nnet.dispatch.numba import workers

calls = []


@ctypes.CFUNCTYPE(ctypes.c_int64, *[ctypes.c_void_p] * 5)
def entry(a, b, c, out, meta):  # a Python callback: it takes the GIL on whichever thread runs it
    calls.append(a)
    return 7 if a == 2 else workers.DONE


tasks = workers.task_rows(2, 1)
tasks[:, 0] = ctypes.cast(entry, ctypes.c_void_p).value
tasks[:, 1] = (1, 2)
print(workers.run_tasks(tasks), sorted(calls))
"""


def test_parts_that_need_the_gil_finish():
    """A part may take the GIL (Numba's BLAS glue does, on the process's first GEMM): the
    calling thread lets go of it while the parts run, else the call never returns. In a child
    process, so that a regression fails by timeout instead of hanging the suite."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", GIL_SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["7", "[1,", "2]"]  # the status of the part that failed


# (x shape, pool_2d / pool_3d keywords); every mode runs on each
POOL_PROBLEMS = {
    "2d": ((3, 5, 9, 8), {"ws": (3, 2), "stride": (2, 1), "pad": (1, 0), "ignore_border": True}),
    "2d_border": ((2, 3, 7, 7), {"ws": (2, 2), "ignore_border": False}),
    "3d": ((2, 3, 5, 6, 7), {"ws": (2, 3, 2), "stride": (1, 2, 2), "pad": (0, 1, 1), "ignore_border": True}),
}


@pytest.mark.parametrize("mode", ["max", "sum", "average_inc_pad", "average_exc_pad"])
@pytest.mark.parametrize("name", sorted(POOL_PROBLEMS))
def test_pooling_parts_compute_what_one_part_computes(name, mode):
    from pytensor_nnet.pool import pool_2d, pool_3d
    from tests.reference.pool import pool_grad_ref, pool_ref

    x_shape, params = POOL_PROBLEMS[name]
    pool = pool_3d if len(x_shape) == 5 else pool_2d
    x = pt.tensor("x", shape=(None,) * len(x_shape), dtype="float64")
    y = pool(x, mode=mode, **params)
    g = pt.tensor("g", shape=(None,) * len(x_shape), dtype="float64")
    f = pytensor.function([x, g], [y, pytensor.grad(None, x, known_grads={y: g})], mode="NUMBA")
    rng = np.random.default_rng(len(name) + len(mode))
    xv = rng.standard_normal(x_shape)
    ref_y = pool_ref(xv, mode=mode, **params)
    gv = rng.standard_normal(ref_y.shape)
    with workers.forced_parts(1):
        serial = f(xv, gv)
    np.testing.assert_allclose(serial[0], ref_y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(serial[1], pool_grad_ref(xv, gv, mode=mode, **params), rtol=1e-12, atol=1e-12)
    batch = x_shape[0] * x_shape[1]  # the kernels' batch axis: images times channels
    for parts in (2, 3, batch + 2):
        with workers.forced_parts(parts):
            for got, one in zip(f(xv, gv), serial, strict=True):
                np.testing.assert_array_equal(got, one, err_msg=f"{parts} parts")


@numba.cfunc(types.int64(*[types.CPointer(types.int64)] * 5))
def _busy_entry(a, b, c, out, meta):
    """An entry that keeps its core busy for ``a[0]`` ticks of the time-stamp counter, then
    sets ``out[0]`` to 1."""
    start = workers._ticks()
    while workers._ticks() - start < a[0]:
        pass
    out[0] = 1
    return workers.DONE


@pytest.mark.skipif(not workers.THREADS_AVAILABLE, reason="no threads: every part runs on the calling thread")
@pytest.mark.parametrize("polls_out", [False, True])
def test_the_caller_waits_for_every_part(polls_out):
    """The caller returns only when every part's thread has ended, whether a part ends while the
    caller polls for it or after that (then the caller blocks in ``pthread_join``)."""
    idle = np.zeros(1, dtype=np.int64)
    busy = np.array([8 * workers.POLL_TICKS if polls_out else 0], dtype=np.int64)

    def run(durations):
        done = np.zeros(3, dtype=np.int64)
        tasks = workers.task_rows(3, 0)
        for i in range(3):
            tasks[i, 0] = _busy_entry.address
            tasks[i, 1] = durations[i].ctypes.data
            tasks[i, 4] = done.ctypes.data + 8 * i
        assert workers.run_tasks(tasks) == workers.DONE
        assert (tasks[:, workers.TASK_STATUS] == workers.DONE).all()
        return done.tolist()

    run([idle] * 3)  # whatever the first call starts for good (a library's thread) is there before the count
    threads_before = len(os.listdir("/proc/self/task")) if os.path.exists("/proc/self/task") else None
    assert run([idle, busy, busy]) == [1, 1, 1]  # the caller's own part ends first
    if threads_before is not None:  # a joined thread may stay listed for a moment while it exits
        deadline = time.monotonic() + 2.0
        while len(os.listdir("/proc/self/task")) > threads_before and time.monotonic() < deadline:
            time.sleep(0.001)
        assert len(os.listdir("/proc/self/task")) == threads_before


def test_the_stand_in_for_try_join_never_says_joined():
    """Where the C library has no ``pthread_tryjoin_np``, the caller polls a stand-in that
    never joins, then blocks in ``pthread_join``."""
    stand_in = numba.cfunc(types.int32(types.int64, types.voidptr))(workers._cannot_tell)
    assert stand_in.ctypes(0, None) != 0
