"""Sparse-matrix ``convolve`` benchmark (not part of the test suite).

    python benchmarks/bench_sparse_conv.py [--rounds 10] [--reps 5] [--dtype both]

Times forward and forward + backward (y, dL/dimages, dL/dkerns from a given output
gradient) of ``pytensor_nnet.sparse.convolve`` on a LeNet-sized batch (64 images 1x28x28,
20 kernels 5x5, valid, step 1) beside:

- the legacy sparse sandbox ``convolve`` and the legacy dense ``conv2d`` (CorrMM, C), run by
  this same script (``--peer legacy``) under the Python of the environment variable
  ``PYTENSOR_NNET_LEGACY_PYTHON`` (a legacy PyTensor 2.8.11), when it is set;
- PyTorch's dense ``conv2d`` (CPU, 2 threads) and our dense ``pytensor_nnet.conv2d``
  (Numba), when importable.

All peers get the same inputs and their outputs are checked against ours. The machine is
noisy, so the peers are timed round-robin: each of ``--rounds`` rounds times every peer
(best of ``--reps`` calls, after a short pause that lets the previous peer's threads go
idle), the legacy ones through a pipe to their process, and a peer's time is its best
round. Compare the ratios of one run.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np

BATCH, CHANNELS, HEIGHT, WIDTH, NKERN, KH, KW = 64, 1, 28, 28, 20, 5, 5
#: A command starting a Python with the legacy PyTensor 2.8.11 (e.g. a venv's ``bin/python``),
#: from the environment; the legacy peer is left out when it is unset.
LEGACY_PYTHON = shlex.split(os.environ.get("PYTENSOR_NNET_LEGACY_PYTHON", ""))
OURS = "ours sparse convolve (Numba)"
LEGACY = "legacy sparse convolve"
# Pause before timing each peer: BLAS and OpenMP worker threads of the peer that ran just
# before keep spinning for a while (in this process or the legacy one) and would steal the
# 2 cores from the next peer.
SETTLE_S = 0.3


def best_time(fn, reps):
    """Best of ``reps`` calls, in seconds (a copy of ``pytensor_nnet.bench.best_time``: this
    script also runs in the legacy venv, where ``pytensor_nnet`` cannot be imported)."""
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def problem(dtype, seed=0):
    """images (B, C*H*W), kerns (K, C*kh*kw), gy (B, K*oh*ow), in the legacy layouts."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((BATCH, CHANNELS * HEIGHT * WIDTH)).astype(dtype)
    kerns = rng.standard_normal((NKERN, CHANNELS * KH * KW)).astype(dtype)
    gy = rng.standard_normal((BATCH, NKERN * (HEIGHT - KH + 1) * (WIDTH - KW + 1))).astype(dtype)
    return images, kerns, gy


def pytensor_peer(build, inputs):
    """``build()`` -> (inputs, y, mode); returns (fwd, fwd_bwd, [y, dimages, dkerns])."""
    import pytensor

    variables, y, mode = build()
    G = y.type()
    f_fwd = pytensor.function(variables, y, mode=mode)
    f_all = pytensor.function([*variables, G], [y, *pytensor.grad(None, variables, known_grads={y: G})], mode=mode)
    images, kerns, gy = inputs
    return lambda: f_fwd(images, kerns), lambda: f_all(images, kerns, gy), f_all(images, kerns, gy)


def sparse_convolve(sparse_module, dtype, mode):
    import pytensor.tensor as pt

    def build():
        X, K = pt.matrix(dtype=dtype), pt.matrix(dtype=dtype)
        y, _ = sparse_module.convolve(K, (KH, KW), NKERN, X, (CHANNELS, HEIGHT, WIDTH))
        return [X, K], y, mode

    return build


def dense_conv2d(conv2d, dtype, mode):
    import pytensor.tensor as pt

    def build():
        X, K = pt.matrix(dtype=dtype), pt.matrix(dtype=dtype)
        x4 = X.reshape((BATCH, CHANNELS, HEIGHT, WIDTH))
        k4 = K.reshape((NKERN, CHANNELS, KH, KW))
        y = conv2d(x4, k4, filter_flip=False).reshape((BATCH, -1))
        return [X, K], y, mode

    return build


def torch_peer(inputs):
    import torch

    torch.set_num_threads(2)
    oh, ow = HEIGHT - KH + 1, WIDTH - KW + 1
    images, kerns, gy = inputs
    x = torch.from_numpy(images.reshape(BATCH, CHANNELS, HEIGHT, WIDTH))
    w = torch.from_numpy(kerns.reshape(NKERN, CHANNELS, KH, KW))
    g = torch.from_numpy(gy.reshape(BATCH, NKERN, oh, ow))
    xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()

    def fwd():
        with torch.no_grad():
            return torch.nn.functional.conv2d(x, w)

    def fwd_bwd():
        xg.grad = wg.grad = None
        y = torch.nn.functional.conv2d(xg, wg)
        y.backward(g)
        return y

    y = fwd_bwd()
    outs = [
        y.detach().numpy().reshape(BATCH, -1),
        xg.grad.numpy().reshape(BATCH, -1),
        wg.grad.numpy().reshape(NKERN, -1),
    ]
    return fwd, fwd_bwd, outs


def legacy_server(data_path, out_path):
    """In the legacy venv: build the legacy peers, save their outputs, then answer
    ``<peer index> <fwd|fb> <reps>`` lines on stdin with a best time."""
    from pytensor.sparse.sandbox import sp
    from pytensor.tensor.nnet import conv2d

    data = np.load(data_path)
    inputs = data["images"], data["kerns"], data["gy"]
    dtype = str(inputs[0].dtype)
    peers, outputs = [], {}
    for name, build in (
        (LEGACY, sparse_convolve(sp, dtype, None)),
        ("legacy dense conv2d", dense_conv2d(conv2d, dtype, None)),
    ):
        fwd, fwd_bwd, outs = pytensor_peer(build, inputs)
        peers.append((name, {"fwd": fwd, "fb": fwd_bwd}))
        outputs.update({f"{name}/{i}": arr for i, arr in enumerate(outs)})
    np.savez(out_path, **outputs)
    print(json.dumps([name for name, _ in peers]), flush=True)
    for line in sys.stdin:
        index, kind, reps = line.split()
        print(best_time(peers[int(index)][1][kind], int(reps)), flush=True)


class RemotePeer:
    """A peer timed in the legacy process (see ``legacy_server``)."""

    def __init__(self, process, index):
        self.process, self.index = process, index

    def time(self, kind, reps):
        self.process.stdin.write(f"{self.index} {kind} {reps}\n")
        self.process.stdin.flush()
        return float(self.process.stdout.readline())


class LocalPeer:
    def __init__(self, fwd, fwd_bwd):
        self.calls = {"fwd": fwd, "fb": fwd_bwd}

    def time(self, kind, reps):
        return best_time(self.calls[kind], reps)


def start_legacy(inputs, tmp):
    """The legacy process and ({name: RemotePeer}, {name: outputs}); empty without the legacy Python."""
    if not LEGACY_PYTHON:
        return None, {}, {}
    data_path, out_path = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
    np.savez(data_path, images=inputs[0], kerns=inputs[1], gy=inputs[2])
    process = subprocess.Popen(
        [*LEGACY_PYTHON, os.path.abspath(__file__), "--peer", "legacy", data_path, out_path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    header = process.stdout.readline()
    if not header:
        print("legacy peers skipped: the legacy process failed", file=sys.stderr)
        return None, {}, {}
    names = json.loads(header)
    saved = np.load(out_path)
    outputs = {name: [saved[f"{name}/{i}"] for i in range(3)] for name in names}
    return process, {name: RemotePeer(process, i) for i, name in enumerate(names)}, outputs


def local_peers(dtype, inputs):
    """{name: LocalPeer} and {name: outputs} of the peers of this process."""
    from pytensor.compile.mode import Mode

    from pytensor_nnet import sparse

    builders = {
        OURS: lambda: pytensor_peer(sparse_convolve(sparse, dtype, "NUMBA"), inputs),
        "ours sparse convolve (C backend)": lambda: pytensor_peer(
            sparse_convolve(sparse, dtype, Mode(linker="cvm")), inputs
        ),
    }
    try:
        from pytensor_nnet import conv2d
    except ImportError:
        pass
    else:
        builders["ours dense conv2d (Numba)"] = lambda: pytensor_peer(dense_conv2d(conv2d, dtype, "NUMBA"), inputs)
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        builders["torch dense conv2d"] = lambda: torch_peer(inputs)
    peers, outputs = {}, {}
    for name, build in builders.items():
        fwd, fwd_bwd, outputs[name] = build()
        peers[name] = LocalPeer(fwd, fwd_bwd)
    return peers, outputs


def measure(dtype, rounds, reps):
    inputs = problem(dtype)
    peers, outputs = local_peers(dtype, inputs)
    with tempfile.TemporaryDirectory() as tmp:
        process, legacy, legacy_outputs = start_legacy(inputs, tmp)
        peers.update(legacy)
        outputs.update(legacy_outputs)
        best = {name: {"fwd": np.inf, "fb": np.inf} for name in peers}
        try:
            for _ in range(rounds):
                for name, peer in peers.items():
                    for kind in ("fwd", "fb"):
                        time.sleep(SETTLE_S)
                        best[name][kind] = min(best[name][kind], peer.time(kind, reps))
        finally:
            if process is not None:
                process.stdin.close()
                process.wait()
    return best, outputs


def print_table(dtype, best, outputs):
    base = LEGACY if LEGACY in best else OURS
    print(
        f"\nconvolve {BATCH}x{CHANNELS}x{HEIGHT}x{WIDTH}, {NKERN} kernels {KH}x{KW}, {dtype}: best "
        f"round; 'x' = time / time of {base} (<1: faster than it)"
    )
    print(
        f"{'peer':34s} {'fwd ms':>8s} {'f+b ms':>8s} {'x fwd':>6s} {'x f+b':>6s}  "
        "max relative |diff| vs ours: y, dX, dK"
    )
    ref = outputs[OURS]
    for name, t in sorted(best.items(), key=lambda kv: kv[1]["fb"]):
        diffs = " ".join(
            f"{np.abs(np.asarray(o, dtype=float) - r).max() / np.abs(r).max():.1e}" for o, r in zip(outputs[name], ref)
        )
        print(
            f"{name:34s} {t['fwd'] * 1e3:8.2f} {t['fb'] * 1e3:8.2f} {t['fwd'] / best[base]['fwd']:6.2f} "
            f"{t['fb'] / best[base]['fb']:6.2f}  {diffs}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    parser.add_argument("--peer", choices=["legacy"], help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peer == "legacy":
        legacy_server(*args.paths)
        return
    for dtype in ["float64", "float32"] if args.dtype == "both" else [args.dtype]:
        print_table(dtype, *measure(dtype, args.rounds, args.reps))


if __name__ == "__main__":
    main()
