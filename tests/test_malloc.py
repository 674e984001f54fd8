"""``tune_malloc``: argument checks, and the page faults of a graph's outputs going away."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from pytensor_nnet import tune_malloc
from pytensor_nnet.kernels.blas_threads import libc_function

GLIBC = bool(libc_function("gnu_get_libc_version")) and bool(libc_function("mallopt"))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(mmap_threshold=2**25 + 1), ValueError, "mmap_threshold must be between 0 and 33554432"),
        (dict(mmap_threshold=-1), ValueError, "mmap_threshold"),
        (dict(trim_threshold=2**31), ValueError, "trim_threshold must be between"),
        (dict(trim_threshold=1.5), TypeError, "trim_threshold must be an integer"),
        (dict(mmap_threshold="big"), TypeError, "mmap_threshold must be an integer"),
    ],
)
def test_bad_thresholds_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        tune_malloc(**kwargs)


_SCRIPT = textwrap.dedent(
    """
    import ctypes, resource
    import numpy as np
    import pytensor, pytensor.tensor as pt
    from pytensor_nnet import conv2d, tune_malloc
    libc = ctypes.CDLL(None)
    # The state a process can end up in by itself: every block over 64 KiB mapped afresh.
    assert libc.mallopt(-3, 65536) == 1 and libc.mallopt(-1, 131072) == 1
    x, w = pt.tensor4("x"), pt.tensor4("w")
    y = conv2d(x, w, input_shape=(8, 16, 32, 32), filter_shape=(16, 1, 3, 3), border_mode=1, num_groups=16)
    f = pytensor.function([x, w], [y, pytensor.grad((y ** 2).sum(), x)])
    xv = np.ones((8, 16, 32, 32)); wv = np.ones((16, 1, 3, 3))
    def faults_per_call():
        for _ in range(3):
            f(xv, wv)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(10):
            f(xv, wv)
        return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10
    untuned = faults_per_call()
    applied = tune_malloc()
    print(untuned, faults_per_call(), applied, 2 * xv.nbytes // 4096)
    """
)


@pytest.mark.skipif(not GLIBC or not sys.platform.startswith("linux"), reason="glibc only")
def test_tuned_malloc_keeps_a_graphs_outputs_from_faulting():
    run = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True, timeout=600)
    untuned, tuned, applied, output_pages = run.stdout.split()
    assert applied == "True"
    # Untuned, the outputs (y and the input gradient, 1 MiB each) fault in every call.
    assert float(untuned) >= int(output_pages), run.stdout
    assert float(tuned) <= 0.05 * int(output_pages), run.stdout


@pytest.mark.skipif(GLIBC, reason="a C library other than glibc")
def test_other_c_libraries_are_left_alone():
    assert tune_malloc() is False
