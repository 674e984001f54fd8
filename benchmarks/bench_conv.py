"""conv2d benchmarks behind the numbers of the README (not part of the test suite).

    python benchmarks/bench_conv.py                 # everything
    python benchmarks/bench_conv.py --only table    # or: compile, memory

- table: forward and forward+backward on the five shapes of ``pytensor_nnet.bench.SHAPES``,
  float32 and float64, beside PyTorch, JAX and the legacy ops (with ``PYTENSOR_NNET_LEGACY_BENCH``),
  in one sitting (see ``pytensor_nnet.bench``);
- compile: cold (empty Numba and PyTensor caches) and warm (second process) time to build,
  compile and first-call a conv2d + grad function, in fresh processes;
- memory: peak extra RSS of a conv2d forward and of forward+backward on a batch whose
  whole-batch im2col buffer would need 3.7 GB, in fresh processes.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

COMPILE_SNIPPET = r"""
import time, json
t0 = time.perf_counter()
import numpy as np, pytensor, pytensor.tensor as pt
from pytensor_nnet import conv2d
t1 = time.perf_counter()
X, W = pt.tensor4("x"), pt.tensor4("w")
y = conv2d(X, W, border_mode=1, subsample=(2, 2))
f = pytensor.function([X, W], [y, *pytensor.grad((y ** 2).sum(), [X, W])])
t2 = time.perf_counter()
f(np.ones((2, 3, 9, 9)), np.ones((4, 3, 3, 3)))
t3 = time.perf_counter()
print(json.dumps(dict(import_s=t1 - t0, compile_s=t2 - t1, first_call_s=t3 - t2)))
"""

MEMORY_SNIPPET = r"""
import json, resource, sys
import numpy as np, pytensor, pytensor.tensor as pt
from pytensor_nnet import conv2d
N, C, H, K = 512, 64, 56, 64
X, W, G = pt.tensor4("x", dtype="float32"), pt.tensor4("w", dtype="float32"), pt.tensor4("g", dtype="float32")
y = conv2d(X, W, border_mode=1)
which = sys.argv[1]
outs = [y] if which == "forward" else [y, *pytensor.grad(None, [X, W], known_grads={y: G})]
f = pytensor.function([X, W, G], outs, on_unused_input="ignore")
f(np.ones((1, C, 8, 8), "float32"), np.ones((K, C, 3, 3), "float32"), np.ones((1, K, 8, 8), "float32"))
rng = np.random.default_rng(0)  # float32 draws: no float64 temporaries to raise the high-water mark
x = rng.random((N, C, H, H), dtype=np.float32)
w = rng.random((K, C, 3, 3), dtype=np.float32)
g = rng.random((N, K, H, H), dtype=np.float32)
def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
before = rss_mb()
res = f(x, w, g)
outputs_mb = sum(r.nbytes for r in res) / 2**20
peak = rss_mb()
im2col_whole_batch_mb = C * 9 * H * H * N * 4 / 2**20
print(json.dumps(dict(which=which, outputs_mb=outputs_mb, peak_extra_mb=peak - before,
                      extra_beyond_outputs_mb=peak - before - outputs_mb,
                      whole_batch_im2col_mb=im2col_whole_batch_mb, input_mb=x.nbytes / 2**20)))
"""


def run_snippet(snippet, env=None, args=()):
    out = subprocess.run([sys.executable, "-c", snippet, *args], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def compile_times():
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ,
            NUMBA_CACHE_DIR=os.path.join(tmp, "numba"),
            PYTENSOR_FLAGS=f"compiledir={os.path.join(tmp, 'pytensor')}",
        )
        cold = run_snippet(COMPILE_SNIPPET, env)
        warm = run_snippet(COMPILE_SNIPPET, env)
    print("\nconv2d + grad function (Numba mode), fresh processes:")
    print(f"{'':6s} {'import s':>9s} {'compile s':>10s} {'first call s':>13s} {'total s':>8s}")
    for name, r in (("cold", cold), ("warm", warm)):
        total = r["import_s"] + r["compile_s"] + r["first_call_s"]
        print(f"{name:6s} {r['import_s']:9.2f} {r['compile_s']:10.2f} {r['first_call_s']:13.2f} {total:8.2f}")


def memory():
    print("\nPeak extra memory, conv2d 3x3 pad 1 on (512, 64, 56, 56) float32 -> (512, 64, 56, 56):")
    for which in ("forward", "forward+backward"):
        r = run_snippet(MEMORY_SNIPPET, args=(which,))
        print(
            f"{which:17s} peak extra RSS {r['peak_extra_mb']:7.0f} MB = outputs {r['outputs_mb']:6.0f} MB + "
            f"{r['extra_beyond_outputs_mb']:5.0f} MB working memory (whole-batch im2col would be "
            f"{r['whole_batch_im2col_mb']:.0f} MB; input {r['input_mb']:.0f} MB)"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["table", "compile", "memory"])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    if args.only in (None, "table"):
        from pytensor_nnet.bench import main as bench_main

        bench_main(["--dtype", "both", "--reps", str(args.reps)])
    if args.only in (None, "compile"):
        compile_times()
    if args.only in (None, "memory"):
        memory()


if __name__ == "__main__":
    main()
