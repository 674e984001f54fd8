"""pool_2d benchmark behind the numbers of the README (not part of the test suite).

    python benchmarks/bench_pool.py                      # float32, all peers found
    python benchmarks/bench_pool.py --dtype float64 --reps 7 --rounds 3

Times pool_2d forward, and forward + backward (y and dL/dx from a given output gradient), for
max and average (``average_inc_pad``, PyTorch's ``count_include_pad=True``) pooling on
(64, 64, 56, 56), window 3, stride 2, ignore_border=True (as PyTorch), beside:

- PyTorch ``max_pool2d`` / ``avg_pool2d`` (CPU, ``--torch-threads``, default 2), when installed;
- the legacy ``pytensor.tensor.signal.pool`` (pytensor 2.8.11, its C implementation), run by
  this script with ``--peer oldpt`` under the Python of the environment variable
  ``PYTENSOR_NNET_LEGACY_PYTHON`` (a legacy PyTensor 2.8.11), when it is set.

Ours is compiled in PyTensor's default (Numba) mode. Times are the best of ``--reps`` calls;
all peers run ``--rounds`` times, interleaved, in one sitting, and the best of the rounds
is kept, so ratios compare like with like on a noisy machine. ``x`` columns are
``peer time / our time``: above 1 we are faster.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

import numpy as np

#: A command starting a Python with the legacy PyTensor 2.8.11 (e.g. a venv's ``bin/python``),
#: from the environment; the legacy peer is left out when it is unset.
LEGACY_PYTHON = shlex.split(os.environ.get("PYTENSOR_NNET_LEGACY_PYTHON", ""))

SHAPE = (64, 64, 56, 56)
WS, STRIDE = (3, 3), (2, 2)
POOLS = {"max": "max", "avg": "average_inc_pad"}


def best_time(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def data(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SHAPE).astype(dtype)
    out = [(n - w) // s + 1 for n, w, s in zip(SHAPE[2:], WS, STRIDE)]
    gy = rng.standard_normal(SHAPE[:2] + tuple(out)).astype(dtype)
    return x, gy


def ours(dtype, reps):
    import pytensor
    import pytensor.tensor as pt

    from pytensor_nnet.pool import pool_2d

    x, gy = data(dtype)
    X, G = pt.tensor4(dtype=dtype), pt.tensor4(dtype=dtype)
    res = {}
    for name, mode in POOLS.items():
        y = pool_2d(X, WS, ignore_border=True, stride=STRIDE, mode=mode)
        f_fwd = pytensor.function([X], y, mode="NUMBA")
        f_all = pytensor.function([X, G], [y, pytensor.grad(None, X, known_grads={y: G})], mode="NUMBA")
        res[name] = (best_time(lambda: f_fwd(x), reps), best_time(lambda: f_all(x, gy), reps))
    return res


def torch_peer(dtype, reps, threads=2):
    import torch

    torch.set_num_threads(threads)
    x, gy = (torch.from_numpy(a) for a in data(dtype))
    xg = x.clone().requires_grad_()
    fns = {"max": torch.nn.functional.max_pool2d, "avg": torch.nn.functional.avg_pool2d}
    res = {}
    for name, fn in fns.items():

        def fwd():
            with torch.no_grad():
                fn(x, WS, STRIDE)

        def fwd_bwd():
            fn(xg, WS, STRIDE).backward(gy)

        res[name] = (best_time(fwd, reps), best_time(fwd_bwd, reps))
    return res


def legacy_peer(dtype, reps):
    """Runs inside the legacy venv (``--peer oldpt``)."""
    import warnings

    warnings.simplefilter("ignore")
    import pytensor
    import pytensor.tensor as pt
    from pytensor.tensor.signal.pool import pool_2d

    x, gy = data(dtype)
    X, G = pt.tensor4(dtype=dtype), pt.tensor4(dtype=dtype)
    res = {}
    for name, mode in POOLS.items():
        y = pool_2d(X, WS, ignore_border=True, stride=STRIDE, mode=mode)
        f_fwd = pytensor.function([X], y)
        f_all = pytensor.function([X, G], [y, pytensor.grad(None, X, known_grads={y: G})])
        res[name] = (best_time(lambda: f_fwd(x), reps), best_time(lambda: f_all(x, gy), reps))
    return res


def legacy_command():
    """This script under the legacy Python, or None when ``PYTENSOR_NNET_LEGACY_PYTHON`` is unset."""
    return [*LEGACY_PYTHON, os.path.abspath(__file__)] if LEGACY_PYTHON else None


def run_legacy(command, dtype, reps):
    out = subprocess.run(
        command + ["--peer", "oldpt", "--dtype", dtype, "--reps", str(reps)], capture_output=True, text=True, check=True
    )
    return {k: tuple(v) for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


def installed(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def print_table(dtype, results, stream=sys.stdout):
    peers = [p for p in results if p != "ours"]
    print(
        f"\npool_2d {SHAPE} {dtype}, window {WS}, stride {STRIDE}, ignore_border=True: best times in ms; "
        "'x' = peer / ours (>1: we are faster)",
        file=stream,
    )
    header = f"{'pool':5s} {'ours fwd':>9s} {'ours f+b':>9s}"
    for peer in peers:
        header += f" | {peer + ' fwd':>11s} {peer + ' f+b':>11s} {'x fwd':>6s} {'x f+b':>6s}"
    print(header, file=stream)
    for name in POOLS:
        fwd, fb = results["ours"][name]
        line = f"{name:5s} {fwd * 1e3:9.1f} {fb * 1e3:9.1f}"
        for peer in peers:
            pf, pfb = results[peer][name]
            line += f" | {pf * 1e3:11.1f} {pfb * 1e3:11.1f} {pf / fwd:6.2f} {pfb / fb:6.2f}"
        print(line, file=stream)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of all peers; best kept")
    parser.add_argument("--torch-threads", type=int, default=2)
    parser.add_argument("--peer", choices=["ours", "torch", "oldpt"], help="time one peer, print JSON")
    args = parser.parse_args(argv)
    if args.peer:
        fn = {"ours": ours, "torch": lambda d, r: torch_peer(d, r, args.torch_threads), "oldpt": legacy_peer}[args.peer]
        print(json.dumps(fn(args.dtype, args.reps)))
        return 0
    peers = {"ours": lambda: ours(args.dtype, args.reps)}
    if installed("torch"):
        peers["torch"] = lambda: torch_peer(args.dtype, args.reps, args.torch_threads)
    command = legacy_command()
    if command:
        peers["legacy"] = lambda: run_legacy(command, args.dtype, args.reps)
    missing = [p for p in ("torch", "legacy") if p not in peers]
    if missing:
        print(f"peers not available: {', '.join(missing)}", file=sys.stderr)
    results = {}
    for _ in range(args.rounds):
        for peer, fn in peers.items():
            for name, (fwd, fb) in fn().items():
                old = results.setdefault(peer, {}).get(name, (np.inf, np.inf))
                results[peer][name] = (min(old[0], fwd), min(old[1], fb))
    print_table(args.dtype, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
