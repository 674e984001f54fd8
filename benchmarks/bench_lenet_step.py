"""One LeNet training step (batch 128, float32, Numba mode) and one 50x500x64 GEMM, optionally
under a background load.

    python benchmarks/bench_lenet_step.py [--load N] [--steps 20] [--batch 128]

The network is ``pytensor_nnet.demo.lenet`` (conv 1->20 5x5, max-pool, conv 20->50 5x5,
max-pool, dense 500, dense 10, one SGD-with-momentum step). The GEMM is the per-image product
of its second convolution, called from compiled code under ``blas_threads.limit_threads`` as
the kernels call it. Compare runs with ``PYTENSOR_NNET_BLAS_THREADS=off`` (the BLAS's default
threads), without it (the kernels' policy) and with ``OPENBLAS_NUM_THREADS=1``.
"""

import argparse
import os
import time

import numba
import numpy as np

from pytensor_nnet.bench import background_load, load_averages
from pytensor_nnet.demo.lenet import Architecture, compile_network, init_params
from pytensor_nnet.kernels import blas_threads


@numba.njit(cache=True)
def _gemms(a, b, c, reps):
    threads = blas_threads.limit_threads(2 * a.shape[0] * a.shape[1] * b.shape[1])
    for _ in range(reps):
        np.dot(a, b, c)
    blas_threads.restore_threads(threads)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load", type=int, default=0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--gemm-reps", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    arch = Architecture()
    net = compile_network(arch, init_params(arch, rng, "float32"))
    x = rng.standard_normal((args.batch, *arch.image)).astype("float32")
    y = rng.integers(0, arch.classes, args.batch).astype("int32")
    a = rng.standard_normal((50, 500)).astype("float32")
    b = rng.standard_normal((500, 64)).astype("float32")
    c = np.empty((50, 64), "float32")
    net.train(x, y, 0.0)
    _gemms(a, b, c, 1)
    with background_load(args.load):
        time.sleep(3.0 if args.load else 0.0)
        steps = []
        for _ in range(args.steps):
            start = time.perf_counter()
            net.train(x, y, 0.0)
            steps.append(time.perf_counter() - start)
        start = time.perf_counter()
        _gemms(a, b, c, args.gemm_reps)
        gemm = (time.perf_counter() - start) / args.gemm_reps
        load = load_averages()
    config = "off" if os.environ.get(blas_threads.ENV_VAR) == "off" else "policy"
    openblas = os.environ.get("OPENBLAS_NUM_THREADS")
    print(
        f"lenet_step_ms {np.median(steps) * 1e3:.2f} gemm_50x500x64_ms {gemm * 1e3:.3f} "
        f"load {args.load} loadavg {load:.2f} blas {config} OPENBLAS_NUM_THREADS={openblas}"
    )


if __name__ == "__main__":
    main()
