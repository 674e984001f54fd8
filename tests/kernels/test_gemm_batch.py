"""Batched GEMMs of the 1x1 convolutions (``kernels.gemm_batch``): the batch and the per-GEMM
fallback against numpy, and the convolutions that use them against the reference."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from pytensor_nnet.kernels import blas_threads, gemm_batch
from pytensor_nnet.kernels.conv import conv_forward, conv_grad_inputs, conv_grad_weights
from tests.reference.conv import conv_grads_ref, conv_ref


def _expected(a, b):
    G, R, S = a.shape
    return np.stack([np.concatenate([a[g] @ b[n, g * S : (g + 1) * S] for g in range(G)]) for n in range(b.shape[0])])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "G, R, S, N, P",
    [
        (1, 160, 128, 3, 144),  # above BATCH_MIN_MULTIPLY_ADDS: one batched call
        (2, 130, 120, 2, 150),  # groups, above it
        (2, 3, 5, 4, 7),  # small: one np.dot each
        (1, 4, 0, 2, 3),  # nothing to sum: zeros
        (3, 1, 2, 2, 1),
    ],
)
def test_matmul_planes_matches_numpy(G, R, S, N, P, dtype):
    rng = np.random.default_rng(G * 1000 + R)
    a = rng.standard_normal((G, R, S)).astype(dtype)
    b = rng.standard_normal((N, G * S, P)).astype(dtype)
    expected = _expected(a.astype("float64"), b.astype("float64"))
    tol = 1e-4 if dtype == "float32" else 1e-12
    for run in (gemm_batch.matmul_planes, gemm_batch._matmul_planes_by_dot):
        c = np.full((N, G * R, P), np.nan, dtype=dtype)  # overwritten, whatever it holds
        run(a, b, c)
        np.testing.assert_allclose(c, expected, rtol=tol, atol=tol * max(1, S), err_msg=run.__name__)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "G, R, S, N, P",
    [
        (1, 160, 128, 3, 144),  # above BATCH_MIN_MULTIPLY_ADDS, an odd batch: the last image alone
        (2, 130, 120, 4, 150),  # groups, above it
        (1, 150, 140, 1, 100),  # one image
        (2, 3, 5, 3, 7),  # small: one np.dot each
        (1, 4, 0, 2, 3),  # nothing to add
    ],
)
def test_add_plane_products_matches_numpy(G, R, S, N, P, dtype):
    rng = np.random.default_rng(G * 1000 + R + N)
    a = rng.standard_normal((N, G * R, P)).astype(dtype)
    b = rng.standard_normal((N, G * S, P)).astype(dtype)
    start = rng.standard_normal((G * R, S)).astype(dtype)
    a64, b64 = a.astype("float64"), b.astype("float64")
    products = [sum(a64[n, g * R : (g + 1) * R] @ b64[n, g * S : (g + 1) * S].T for n in range(N)) for g in range(G)]
    expected = start + np.concatenate(products) if R else start
    c = start.copy()
    gemm_batch.add_plane_products(a, b, c, G)
    tol = 1e-4 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(c, expected, rtol=tol, atol=tol * np.sqrt(N * P))


def test_the_batch_is_found_in_scipys_openblas():
    """The wheels' OpenBLAS has the batched GEMMs; elsewhere the fallback runs (tested above)."""
    from scipy import show_config

    blas = show_config(mode="dicts")["Build Dependencies"]["blas"]
    if "scipy-openblas" not in str(blas.get("name", "")) or blas.get("version", "0") < "0.3.28":
        pytest.skip("not scipy's OpenBLAS 0.3.28 or later")
    assert gemm_batch.FOUND == {"float32": "scipy_cblas_sgemm_batch", "float64": "scipy_cblas_dgemm_batch"}


def test_mismatched_operands_are_refused():
    a, b = np.ones((1, 3, 4)), np.ones((2, 4, 5))
    with pytest.raises(ValueError, match="do not match"):
        gemm_batch.matmul_planes(a, b, np.empty((2, 3, 6)))
    with pytest.raises(ValueError, match="do not match"):
        gemm_batch.matmul_planes(a, np.ones((2, 5, 5)), np.empty((2, 3, 5)))
    with pytest.raises(ValueError, match="do not match"):
        gemm_batch.add_plane_products(np.ones((2, 3, 5)), np.ones((2, 4, 6)), np.zeros((3, 4)), 1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("groups", [1, 2])
def test_pointwise_convolution_through_the_batch(groups, dtype):
    """A 1x1 convolution large enough for the batched call, every direction."""
    rng = np.random.default_rng(groups)
    x = rng.standard_normal((3, 128 * groups, 12, 12)).astype(dtype)
    w = rng.standard_normal((160 * groups, 128, 1, 1)).astype(dtype)
    assert 160 * 128 * 144 > gemm_batch.BATCH_MIN_MULTIPLY_ADDS
    params = dict(num_groups=groups, filter_flip=False)
    x64, w64 = x.astype("float64"), w.astype("float64")
    y = conv_forward(x, w, **params)
    tol = 2e-4 if dtype == "float32" else 1e-10
    scale = np.sqrt(128)
    np.testing.assert_allclose(y, conv_ref(x64, w64, **params), rtol=tol, atol=tol * scale)
    gy = rng.standard_normal(y.shape)
    dx_ref, dw_ref = conv_grads_ref(x64, w64, gy, **params)
    dx = conv_grad_inputs(w, gy.astype(dtype), x.shape[2:], **params)
    dw = conv_grad_weights(x, gy.astype(dtype), w.shape[2:], **params)
    np.testing.assert_allclose(dx, dx_ref, rtol=tol, atol=tol * scale)
    np.testing.assert_allclose(dw, dw_ref, rtol=tol, atol=tol * np.sqrt(3 * 144))


def test_the_batches_run_on_the_newer_openblas_where_it_is_installed():
    installed = importlib.util.find_spec(gemm_batch.PACKAGE) is not None
    assert gemm_batch.LIBRARY == (gemm_batch.PACKAGE if installed else "scipy")


@pytest.mark.skipif(gemm_batch.LIBRARY != gemm_batch.PACKAGE, reason="the batches run on scipy's OpenBLAS")
@pytest.mark.parametrize("blas_threads_count", [1, 2])
def test_the_batches_follow_the_blas_thread_count_and_put_theirs_back(blas_threads_count):
    """The package's OpenBLAS runs each batch on scipy's OpenBLAS's thread count and keeps its
    own (one: loaded so) between calls; on one thread it starts no thread."""
    package = gemm_batch.package_library()
    get_count = package.scipy_openblas_get_num_threads
    assert get_count() == 1
    previous = blas_threads.get_num_threads()
    threads_before = _threads_of_the_process()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1, 160, 128)).astype("float32")
    b = rng.standard_normal((2, 128, 144)).astype("float32")
    c = np.empty((2, 160, 144), dtype="float32")
    try:
        blas_threads.set_num_threads(blas_threads_count)
        gemm_batch.matmul_planes(a, b, c)
        gemm_batch.add_plane_products(c, b, np.zeros((160, 128), dtype="float32"), 1)
    finally:
        blas_threads.set_num_threads(previous)
    np.testing.assert_allclose(c, _expected(a.astype("float64"), b.astype("float64")), rtol=1e-4, atol=1e-3)
    assert get_count() == 1
    if blas_threads_count == 1 and threads_before is not None:
        assert _threads_of_the_process() == threads_before


def test_scipys_openblas_can_be_chosen():
    code = (
        "import numpy as np; from pytensor_nnet.kernels import gemm_batch as g; "
        "a = np.ones((1, 160, 128), 'float32'); b = np.ones((2, 128, 144), 'float32'); "
        "c = np.empty((2, 160, 144), 'float32'); g.matmul_planes(a, b, c); "
        "print(g.LIBRARY, float(c.min()), float(c.max()))"
    )
    env = dict(os.environ, **{gemm_batch.ENV_VAR: "scipy"})
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["scipy", "128.0", "128.0"]


def _threads_of_the_process():
    return len(os.listdir("/proc/self/task")) if os.path.exists("/proc/self/task") else None
