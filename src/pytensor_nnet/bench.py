"""Benchmark of conv2d (forward, and forward + backward) beside the installed peers.

``python -m pytensor_nnet bench`` times our conv2d, compiled in PyTensor's default Numba
mode, on five common layer shapes (``SHAPES``), beside PyTorch and JAX when they are
installed, and the legacy PyTensor 2.8.11 ops when a command that times them is given
(``--legacy CMD``, or the environment variable ``PYTENSOR_NNET_LEGACY_BENCH``): ``CMD oldpt
DTYPE`` must print one line per shape, ``NAME fwd MS ... MS`` (the fourth number is forward +
backward), e.g. ``/path/to/legacy-venv/bin/python peer_conv_bench.py``; without it the legacy
column is left out.
``--load N`` runs N busy-loop processes (pure Python spinning on one core each) for the whole
measurement, to see how the kernels behave on an oversubscribed machine; the last line gives
the 1-minute load average at the start and at the end (it lags: the end is the telling one).
"Forward + backward" computes y, dL/dx and dL/dw from a given output gradient. Times are
the best of ``--reps`` rounds in which ours and each in-process peer take turns of a few calls
(the legacy ops run in their own process after ours); ratios ``peer / ours`` above 1 mean we
are faster. The machine is noisy: compare ratios from one run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import subprocess
import sys
import time

import numpy as np

# name: (N, C, H, W, K, kh, kw, pad, stride, dilation, groups)
SHAPES = {
    "resnet3x3": (16, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1),
    "lenet5x5": (64, 1, 28, 28, 20, 5, 5, 0, 1, 1, 1),
    "strided_dil": (8, 32, 64, 64, 64, 3, 3, 2, 2, 2, 1),
    "depthwise": (16, 128, 28, 28, 128, 3, 3, 1, 1, 1, 128),
    "pointwise": (16, 256, 14, 14, 256, 1, 1, 0, 1, 1, 1),
}
QUICK_SHAPES = {"tiny3x3": (2, 4, 10, 10, 6, 3, 3, 1, 1, 1, 2)}
#: Environment variable with the default of ``--legacy``.
LEGACY_BENCH_VAR = "PYTENSOR_NNET_LEGACY_BENCH"


def out_size(size, k, pad, stride, dilation):
    return (size + 2 * pad - dilation * (k - 1) - 1) // stride + 1


def flops(N, C, H, W, K, kh, kw, pad, s, d, g):
    """Forward multiply-adds x 2."""
    return 2 * N * K * out_size(H, kh, pad, s, d) * out_size(W, kw, pad, s, d) * (C // g) * kh * kw


def best_time(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def problem(shape, dtype, seed=0):
    N, C, H, W, K, kh, kw, pad, s, d, g = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((K, C // g, kh, kw)).astype(dtype)
    gy = rng.standard_normal((N, K, out_size(H, kh, pad, s, d), out_size(W, kw, pad, s, d))).astype(dtype)
    return x, w, gy


def interleaved_best(calls, reps, per_turn=3):
    """The best time of each of ``calls`` (name: function) in seconds, from ``reps`` rounds in
    which each takes a turn: one untimed call, then ``per_turn`` timed ones. A busy spell of
    the machine falls on every contender alike, not on whichever was being timed then, and the
    untimed call absorbs what the previous contender left behind (another library's threads
    still spinning, caches holding its data)."""
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(reps):
        for name, call in calls.items():
            call()
            for _ in range(per_turn):
                start = time.perf_counter()
                call()
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def ours(shape, dtype):
    """Our forward and forward + backward calls of ``shape``, their kernels compiled."""
    import pytensor
    import pytensor.tensor as pt

    from pytensor_nnet import conv2d

    N, C, H, W, K, kh, kw, pad, s, d, g = shape
    x, w, gy = problem(shape, dtype)
    X, Wv = pt.tensor4(dtype=dtype), pt.tensor4(dtype=dtype)
    y = conv2d(
        X,
        Wv,
        input_shape=x.shape,
        filter_shape=w.shape,
        border_mode=pad,
        subsample=(s, s),
        filter_dilation=(d, d),
        num_groups=g,
        filter_flip=False,
    )
    G = y.type()
    f_fwd = pytensor.function([X, Wv], y, mode="NUMBA")
    f_all = pytensor.function([X, Wv, G], [y, *pytensor.grad(None, [X, Wv], known_grads={y: G})], mode="NUMBA")
    # Both first calls before any timing: with empty caches, a kernel still compiling in the
    # background (``compile_helper``) would take a core from the timed calls.
    f_fwd(x, w)
    f_all(x, w, gy)
    return (lambda: f_fwd(x, w)), (lambda: f_all(x, w, gy))


def torch_peer(shape, dtype):
    """PyTorch's forward and forward + backward calls of ``shape`` on two threads."""
    import torch

    torch.set_num_threads(2)
    N, C, H, W, K, kh, kw, pad, s, d, g = shape
    x, w, gy = (torch.from_numpy(a) for a in problem(shape, dtype))
    xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()

    def fwd():
        with torch.no_grad():
            torch.nn.functional.conv2d(x, w, None, s, pad, d, g)

    def fwd_bwd():
        y = torch.nn.functional.conv2d(xg, wg, None, s, pad, d, g)
        y.backward(gy)

    return fwd, fwd_bwd


def jax_peer(shape, dtype):
    """JAX's jitted forward and forward + backward calls of ``shape``."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    N, C, H, W, K, kh, kw, pad, s, d, g = shape

    def conv(x, w):
        return jax.lax.conv_general_dilated(x, w, (s, s), [(pad, pad)] * 2, rhs_dilation=(d, d), feature_group_count=g)

    def vjp(x, w, gy):
        y, pullback = jax.vjp(conv, x, w)
        return (y, *pullback(gy))

    f_fwd, f_all = jax.jit(conv), jax.jit(vjp)
    x, w, gy = (jnp.asarray(a) for a in problem(shape, dtype))
    return (lambda: f_fwd(x, w).block_until_ready()), (lambda: jax.block_until_ready(f_all(x, w, gy)))


def legacy_peer(command, dtype):
    """Run the legacy timing command; {shape: (fwd, fwd_bwd)} in seconds."""
    out = subprocess.run(shlex.split(command) + ["oldpt", dtype], capture_output=True, text=True, check=True)
    results = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "fwd":
            results[parts[0]] = (float(parts[2]) / 1e3, float(parts[5]) / 1e3)
    return results


#: What each ``--load`` process runs: a busy loop, one core's worth of load.
BUSY_LOOP = "while True: pass"


@contextlib.contextmanager
def background_load(n):
    """Run ``n`` busy-loop processes (each keeps one core busy) while the block runs."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(n)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def load_averages():
    """The 1-minute load average, or None where the platform has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def installed(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def default_legacy_command():
    """The command that times the legacy ops: ``$PYTENSOR_NNET_LEGACY_BENCH``, or None."""
    return os.environ.get(LEGACY_BENCH_VAR) or None


def run(shapes, dtypes, reps, peers, legacy_command, stream=sys.stdout):
    """Time everything and print one table per dtype; returns {dtype: {peer: {shape: (fwd, fb)}}}."""
    peer_fns = {"torch": torch_peer, "jax": jax_peer}
    all_results = {}
    for dtype in dtypes:
        results = {"ours": {}}
        for name, shape in shapes.items():
            calls = {"ours": ours(shape, dtype)}
            for peer in peers:
                if peer in peer_fns:
                    calls[peer] = peer_fns[peer](shape, dtype)
            flat = {(who, part): pair[part] for who, pair in calls.items() for part in (0, 1)}
            best = interleaved_best(flat, reps)
            for who in calls:
                results.setdefault(who, {})[name] = (best[who, 0], best[who, 1])
        if legacy_command and "legacy" in peers:
            legacy = legacy_peer(legacy_command, dtype)
            results["legacy"] = {k: v for k, v in legacy.items() if k in shapes}
        print_table(shapes, dtype, results, stream)
        all_results[dtype] = results
    return all_results


def print_table(shapes, dtype, results, stream=sys.stdout):
    peers = [p for p in results if p != "ours"]
    header = f"{'shape':12s} {'ours fwd ms':>11s} {'f+b ms':>9s} {'GFLOP/s':>8s}"
    for peer in peers:
        header += f" | {peer + ' fwd':>10s} {'f+b':>9s} {'GFLOP/s':>8s} {'x fwd':>6s} {'x f+b':>6s}"
    print(f"\nconv2d {dtype}: times are best of runs; 'x' = peer time / our time (>1: we are faster)", file=stream)
    print(header, file=stream)
    for name, shape in shapes.items():
        fwd, fb = results["ours"][name]
        gf = flops(*shape) / 1e9
        line = f"{name:12s} {fwd * 1e3:11.2f} {fb * 1e3:9.2f} {gf / fwd:8.1f}"
        for peer in peers:
            if name not in results[peer]:
                line += f" | {'n/a':>10s} {'':9s} {'':8s} {'':6s} {'':6s}"
                continue
            pf, pfb = results[peer][name]
            line += f" | {pf * 1e3:10.2f} {pfb * 1e3:9.2f} {gf / pf:8.1f} {pf / fwd:6.2f} {pfb / fb:6.2f}"
        print(line, file=stream)
    stream.flush()


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m pytensor_nnet bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dtype", choices=["float32", "float64", "both"], default="float32")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated subset of " + ",".join(SHAPES))
    parser.add_argument("--quick", action="store_true", help="one tiny shape, one rep (smoke test)")
    parser.add_argument("--peers", default="auto", help="comma-separated: torch,jax,legacy (default: all available)")
    parser.add_argument(
        "--load",
        type=int,
        default=0,
        metavar="N",
        help="run N busy-loop processes during the measurement (an oversubscribed machine; default 0)",
    )
    parser.add_argument(
        "--legacy",
        default=None,
        help=f"command timing the legacy ops (default: ${LEGACY_BENCH_VAR}; unset: no legacy column)",
    )
    args = parser.parse_args(argv)
    shapes = QUICK_SHAPES if args.quick else {k: SHAPES[k] for k in args.shapes.split(",")}
    reps = 1 if args.quick else args.reps
    dtypes = ["float32", "float64"] if args.dtype == "both" else [args.dtype]
    legacy_command = args.legacy or default_legacy_command()
    if args.peers == "auto":
        peers = [p for p in ("torch", "jax") if installed(p)] + (["legacy"] if legacy_command else [])
    else:
        peers = args.peers.split(",")
    missing = [p for p in ("torch", "jax") if p not in peers]
    if missing:
        print(f"peers not installed or not selected: {', '.join(missing)}", file=sys.stderr)
    with background_load(args.load):
        before = load_averages()
        run(shapes, dtypes, reps, peers, legacy_command)
        after = load_averages()
    if before is not None:
        print(f"\nbackground load: {args.load} busy processes; 1-min load average {before:.2f} -> {after:.2f}")
    return 0
