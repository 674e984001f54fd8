"""The BLAS thread-count control of the kernels: setter, policy, fallback, unchanged results."""

import ctypes.util
import os
import subprocess
import sys
import textwrap
import time

import numba
import numpy as np
import pytest

from pytensor_nnet.kernels import blas_threads
from pytensor_nnet.kernels.conv import conv_forward, conv_grad_inputs, conv_grad_weights, run_3d
from pytensor_nnet.kernels.conv import kernel_geometry as geometry
from tests.reference.conv import conv_grads_ref, conv_ref, unshared_conv_ref, unshared_grads_ref

controlled = pytest.mark.skipif(
    not blas_threads.BACKEND["controlled"], reason="the BLAS behind np.dot has no thread-count functions"
)


@numba.njit(cache=True)
def _count_inside(flops):
    """The count a kernel's GEMMs of ``flops`` run with, and the count after it restores."""
    previous = blas_threads.limit_threads(flops)
    inside = blas_threads.blas_get_num_threads()
    blas_threads.restore_threads(previous)
    return inside, blas_threads.blas_get_num_threads()


@pytest.fixture
def two_threads():
    """Run with a count of 2 (as on a 2-core machine) whatever the environment set."""
    if not blas_threads.BACKEND["controlled"]:
        pytest.skip("the BLAS behind np.dot has no thread-count functions")
    before = blas_threads.get_num_threads()
    blas_threads.set_num_threads(2)
    yield
    blas_threads.set_num_threads(before)


@controlled
def test_setter_changes_and_restores_the_count():
    before = blas_threads.get_num_threads()
    assert before >= 1
    try:
        blas_threads.set_num_threads(1)
        assert blas_threads.get_num_threads() == 1
        blas_threads.set_num_threads(2)
        assert blas_threads.get_num_threads() == 2
    finally:
        blas_threads.set_num_threads(before)
    assert blas_threads.get_num_threads() == before


@controlled
def test_the_controlled_library_is_scipys_blas():
    """The symbols come from the library that scipy's ``cython_blas`` (so Numba's np.dot) uses,
    and numpy's own BLAS keeps its count."""
    assert "openblas" in os.path.basename(blas_threads.BACKEND["library"]).lower()
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def counts():
        return {os.path.realpath(info["filepath"]): info["num_threads"] for info in threadpoolctl.threadpool_info()}

    before = counts()
    ours = os.path.realpath(blas_threads.BACKEND["library"])
    assert ours in before
    saved = blas_threads.get_num_threads()
    try:
        blas_threads.set_num_threads(1)
        during = counts()
    finally:
        blas_threads.set_num_threads(saved)
    assert during[ours] == 1
    assert {k: v for k, v in during.items() if k != ours} == {k: v for k, v in before.items() if k != ours}


def test_small_gemms_run_on_one_thread_and_the_count_comes_back(two_threads):
    assert _count_inside(0) == (1, 2)
    assert _count_inside(blas_threads.SINGLE_THREAD_MAX_FLOPS - 1) == (1, 2)


def test_large_gemms_keep_the_threads_unless_the_machine_is_busy(two_threads):
    """The run queue moves between any two reads, so the policy is checked on samples whose
    busy reading was the same just before and just after the call: among those that read
    quiet some kept both threads, among those that read busy some ran on one."""
    by_reading = {False: [], True: []}
    for _ in range(200):
        before = blas_threads.machine_is_busy(2)
        inside, after = _count_inside(10 * blas_threads.SINGLE_THREAD_MAX_FLOPS)
        assert after == 2
        assert inside in (1, 2)
        if blas_threads.machine_is_busy(2) == before:
            by_reading[before].append(inside)
    if by_reading[False]:
        assert 2 in by_reading[False]
    if by_reading[True]:
        assert 1 in by_reading[True]
    if not by_reading[False] and not by_reading[True]:
        pytest.skip("the busy reading changed around every call")


def test_one_thread_set_by_the_user_is_left_alone(two_threads):
    blas_threads.set_num_threads(1)
    assert _count_inside(0) == (1, 1)
    assert _count_inside(10**12) == (1, 1)


def test_load_average_reads_the_system():
    load = blas_threads.get_load_average()
    if hasattr(os, "getloadavg"):
        assert load >= 0.0
        assert abs(load - os.getloadavg()[0]) < 5.0
    else:
        assert load == -1.0


def test_runnable_threads_reads_the_run_queue():
    count = blas_threads.runnable_threads()
    if not os.path.exists("/proc/loadavg"):
        assert count == -1
        return
    assert count >= 1  # this thread
    assert count <= os.cpu_count() * 64


@pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="no run queue to read")
def test_a_load_that_has_just_begun_makes_the_machine_busy():
    """Two busy processes beside this one: more runnable threads than two BLAS threads can
    take, long before the load average rises."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        time.sleep(0.5)
        seen = [blas_threads.machine_is_busy(2) for _ in range(20)]
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    assert sum(seen) >= 15


def test_find_thread_functions_without_the_symbols():
    assert blas_threads.find_thread_functions(None) is None
    assert blas_threads.find_thread_functions("/nonexistent/libnothing.so") is None
    libm = ctypes.util.find_library("m")
    if libm is not None:
        assert blas_threads.find_thread_functions(libm) is None
        # a pair that libm does define is found, with addresses
        found = blas_threads.find_thread_functions(libm, candidates=(("nosuchfunction", "cos"), ("sin", "cos")))
        assert found[:2] == ("sin", "cos") and found[2] and found[3]


def test_fallback_runs_the_kernels_unchanged():
    """With no thread-count functions bound (``PYTENSOR_NNET_BLAS_THREADS=off``, as with MKL or
    Accelerate) the kernels call no-ops and compute the same results."""
    script = textwrap.dedent(
        """
        import numpy as np
        from pytensor_nnet.kernels import blas_threads
        from pytensor_nnet.kernels.conv import conv_forward
        from tests.reference.conv import conv_ref

        assert blas_threads.BACKEND == {"controlled": False, "library": None, "getter": None, "setter": None}
        assert blas_threads.get_num_threads() == 0
        blas_threads.set_num_threads(1)
        assert blas_threads.get_num_threads() == 0
        assert blas_threads.limit_threads(0) == 0
        rng = np.random.default_rng(0)
        x, w = rng.standard_normal((3, 4, 9, 8)), rng.standard_normal((6, 2, 3, 3))
        y = conv_forward(x, w, border_mode="half", num_groups=2)
        np.testing.assert_allclose(y, conv_ref(x, w, border_mode="half", num_groups=2), rtol=1e-10, atol=1e-10)
        print("ok")
        """
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTENSOR_NNET_BLAS_THREADS="off")
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(root, "src"), root, env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize(
    "x_shape, w_shape, params",
    [
        ((3, 4, 9, 8), (6, 2, 3, 3), dict(border_mode="half", num_groups=2)),  # small GEMMs: one thread
        ((2, 64, 16, 16), (64, 64, 3, 3), dict(border_mode=1)),  # 15 MFLOP per image: large
        ((2, 64, 14, 14), (96, 64, 1, 1), dict()),  # pointwise, 2.4 MFLOP per image
        ((2, 96, 14, 14), (128, 96, 1, 1), dict(subsample=(1, 1))),  # pointwise, 4.8 MFLOP per image
    ],
)
def test_kernel_results_and_count_unchanged_with_the_policy(two_threads, x_shape, w_shape, params):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype("float32")
    w = rng.standard_normal(w_shape).astype("float32")
    y = conv_forward(x, w, **params)
    assert blas_threads.get_num_threads() == 2
    y_ref = conv_ref(x.astype(float), w.astype(float), **params)
    scale = np.abs(y_ref).max()
    np.testing.assert_allclose(y, y_ref, rtol=1e-4, atol=1e-4 * scale)
    gy = rng.standard_normal(y.shape)
    dx_ref, dw_ref = conv_grads_ref(x.astype(float), w.astype(float), gy, **params)
    dx = conv_grad_inputs(w, gy.astype("float32"), x.shape[2:], **params)
    assert blas_threads.get_num_threads() == 2
    dw = conv_grad_weights(x, gy.astype("float32"), w.shape[2:], **params)
    assert blas_threads.get_num_threads() == 2
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-4, atol=1e-4 * np.abs(dx_ref).max())
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-4, atol=1e-4 * np.abs(dw_ref).max())


def test_unshared_results_and_count_unchanged_with_the_policy(two_threads):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 6, 5))
    w = rng.standard_normal((6, 4, 3, 2, 3, 3))  # (M, *out, C // groups, *kernel), groups=2
    params = dict(border_mode="valid", subsample=(1, 1), filter_dilation=(1, 1), filter_flip=False, num_groups=2)
    geo = geometry("valid", (1, 1), (1, 1))
    y = run_3d("forward", x, w, None, 2, geo, 2, unshared=True)
    assert blas_threads.get_num_threads() == 2
    np.testing.assert_allclose(y, unshared_conv_ref(x, w, **params), rtol=1e-10, atol=1e-10)
    gy = rng.standard_normal(y.shape)
    dx_ref, dw_ref = unshared_grads_ref(x, w, gy, **params)
    dx = run_3d("grad_inputs", w, gy, x.shape[2:], 2, geo, 2, unshared=True)
    dw = run_3d("grad_weights", x, gy, w.shape[-2:], 2, geo, 2, unshared=True)
    assert blas_threads.get_num_threads() == 2
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-10, atol=1e-10)
