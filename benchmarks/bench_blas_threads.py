"""Single GEMMs with the BLAS on one thread and on its default count, quiet or under load.

    python benchmarks/bench_blas_threads.py [--load N] [--dtype float32] [--reps 200]

Times ``np.dot`` called from Numba-compiled code (the BLAS the kernels call), for the GEMM
shapes of common convolution layers (per image and per chunk of images), and prints the time
on one thread, on the default count, and their ratio: the flop count above which the
default count pays on a quiet machine is ``blas_threads.SINGLE_THREAD_MAX_FLOPS``. Also times one
:func:`limit_threads` / :func:`restore_threads` pair.
"""

import argparse
import os
import time

import numba
import numpy as np

from pytensor_nnet.bench import background_load, load_averages
from pytensor_nnet.kernels import blas_threads

# (M, K, N): filters x (channels * taps) x positions
SHAPES = [
    (20, 25, 576),  # LeNet conv1, one image
    (50, 500, 64),  # LeNet conv2, one image
    (50, 500, 256),  # LeNet conv2, four images
    (64, 288, 1024),  # strided conv, one image
    (64, 576, 196),
    (128, 256, 196),
    (64, 576, 784),
    (256, 256, 196),  # pointwise, one image
    (64, 576, 3136),  # resnet 3x3, one image
    (128, 1152, 3136),
    (256, 2304, 3136),
    (512, 4608, 784),
    (256, 2304, 12544),
]


@numba.njit(cache=True)
def _timed_dots(a, b, c, reps, single):
    previous = blas_threads.blas_get_num_threads()
    if single:
        blas_threads.blas_set_num_threads(1)
    for _ in range(reps):
        np.dot(a, b, c)
    blas_threads.blas_set_num_threads(previous)


def mean_time(a, b, c, reps, single):
    """Mean time of ``reps`` back-to-back GEMMs (as in a kernel's loop over images): the
    mean, not the median, since the stalls under load hit a fraction of the calls."""
    start = time.perf_counter()
    _timed_dots(a, b, c, reps, single)
    return (time.perf_counter() - start) / reps


@numba.njit(cache=True)
def _toggle(k, flops):
    s = 0
    for _ in range(k):
        previous = blas_threads.limit_threads(flops)
        s += previous
        blas_threads.restore_threads(previous)
    return s


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load", type=int, default=0)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per shape at most")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(blas_threads.BACKEND, "OPENBLAS_NUM_THREADS =", os.environ.get("OPENBLAS_NUM_THREADS"))
    for flops, what in ((0, "small GEMMs (get, set 1, set back)"), (1e12, "large GEMMs (get, load average)")):
        _toggle(1, flops)
        start = time.perf_counter()
        _toggle(100000, flops)
        print(f"limit_threads + restore_threads, {what}: {(time.perf_counter() - start) / 100000 * 1e9:.0f} ns")
    with background_load(args.load):
        time.sleep(3.0 if args.load else 0.0)
        print(f"{'M x K x N':>18s} {'MFLOP':>8s} {'1 thr ms':>9s} {'dflt ms':>9s} {'dflt/1':>7s}")
        for M, K, N in SHAPES:
            a = rng.standard_normal((M, K)).astype(args.dtype)
            b = rng.standard_normal((K, N)).astype(args.dtype)
            c = np.empty((M, N), dtype=args.dtype)
            one = mean_time(a, b, c, 3, True)
            reps = max(3, min(args.reps, int(args.budget / 6 / max(one, 1e-6))))
            t1s, t2s = [], []
            for _ in range(3):  # interleaved repeats, the median of each
                t1s.append(mean_time(a, b, c, reps, True))
                t2s.append(mean_time(a, b, c, reps, False))
            t1, t2 = float(np.median(t1s)), float(np.median(t2s))
            print(f"{f'{M}x{K}x{N}':>18s} {2 * M * K * N / 1e6:8.1f} {t1 * 1e3:9.3f} {t2 * 1e3:9.3f} {t2 / t1:7.2f}")
        print(f"1-min load average: {load_averages():.2f}")


if __name__ == "__main__":
    main()
