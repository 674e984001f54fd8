"""Block-sparse dot (hierarchical-softmax size): ours vs the legacy ops vs PyTorch, CPU.

    python benchmarks/bench_blocksparse.py                 # all peers, the default size
    python benchmarks/bench_blocksparse.py --blocks 256    # smaller W (less memory)

Default problem (a hierarchical softmax): batch 64, iBlocks = oBlocks = 1024, iSize = oSize = 32, iWin = 8,
oWin = 16, float32, so W is 1024 x 1024 blocks of 32 x 32 (4 GiB). The graph is
``sparse_block_dot(W, h, inputIdx, b, outputIdx)`` and a random output gradient ``g``:

- ``fwd``: the output only;
- ``fwd+bwd(h,b)``: output and the gradients wrt ``h`` and ``b`` (W frozen);
- ``fwd+bwd(W,h,b)``: all gradients; the gradient wrt W is dense (a W-sized array), as in
  the legacy API;
- ``sgd step``: output, and ``W -= lr * grad(W)`` in place (W a shared variable / a
  parameter); ``lr = 0`` so that W, hence the checksums, stay put (the work is the same).

Peers, each in its own process, one after the other (only one W in memory at a time):

- ``ours``: pytensor_nnet in PyTensor's default mode (Numba);
- ``oldpt``: the legacy ops (pytensor 2.8.11), run by the Python of the environment variable
  ``PYTENSOR_NNET_LEGACY_PYTHON`` (left out when it is unset);
- ``torch-gather``: PyTorch gathering the selected blocks and an einsum (autograd);
- ``torch-dense``: PyTorch on the dense (iBlocks*iSize, oBlocks*oSize) matrix, scattering h
  into a dense input and gathering the selected output blocks (autograd).

Prints best-of-N milliseconds, the ratio peer / ours (> 1: we are faster), the resident
memory one call adds at its peak, a checksum of the outputs (the peers must agree), and the
memory and work of the dense product. The machine is shared and noisy: compare ratios from one
run, not absolute times across runs.
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
PEERS = ["ours", "oldpt", "torch-gather", "torch-dense"]
CASES = ["fwd", "fwd+bwd(h,b)", "fwd+bwd(W,h,b)", "sgd step"]


def make_data(a):
    """The same inputs in every process (seeded)."""
    rng = np.random.default_rng(0)
    W = rng.random((a.blocks, a.blocks, a.size, a.size), dtype=np.float32)
    W -= np.float32(0.5)
    h = rng.standard_normal((a.batch, a.iwin, a.size)).astype(np.float32)
    b = rng.standard_normal((a.blocks, a.size)).astype(np.float32)
    ii = rng.integers(0, a.blocks, (a.batch, a.iwin)).astype(np.int32)
    oi = rng.integers(0, a.blocks, (a.batch, a.owin)).astype(np.int32)
    g = rng.standard_normal((a.batch, a.owin, a.size)).astype(np.float32)
    return [W, h, ii, b, oi, g]


def best_ms(fn, reps):
    fn()  # warm-up (compilation, first-touch)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * min(times)


def checksum(arrays):
    return [float(np.asarray(x, dtype=np.float64).sum()) for x in arrays]


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def peak_extra_mib(fn):
    """Resident memory one call adds at its peak (Linux: VmHWM after resetting it), in MiB."""
    import gc

    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak to the current resident size
    except OSError:
        return float("nan")
    base = _status_kib("VmRSS")
    result = fn()
    peak = _status_kib("VmHWM")
    del result
    return (peak - base) / 1024


def pytensor_fns(sparse_block_dot, W, h, ii, b, oi, g):
    """Compiled forward and forward+backward functions of either PyTensor (ours or legacy)."""
    import pytensor
    import pytensor.tensor as pt

    vW, vh, vb = (
        pt.tensor4("W", dtype="float32"),
        pt.tensor3("h", dtype="float32"),
        pt.matrix("b", dtype="float32"),
    )
    vii, voi, vg = pt.imatrix("ii"), pt.imatrix("oi"), pt.tensor3("g", dtype="float32")
    out = sparse_block_dot(vW, vh, vii, vb, voi)
    cost = (out * vg).sum()
    g_h, g_b = pytensor.grad(cost, [vh, vb])
    g_W = pytensor.grad(cost, vW)
    inputs = [vW, vh, vii, vb, voi, vg]
    f_fwd = pytensor.function(inputs[:-1], out)
    f_hb = pytensor.function(inputs, [out, g_h, g_b])
    f_all = pytensor.function(inputs, [out, g_W, g_h, g_b])
    W_shared, lr = pytensor.shared(W, borrow=True), pt.scalar("lr", dtype="float32")
    out_s = sparse_block_dot(W_shared, vh, vii, vb, voi)
    g_Ws = pytensor.grad((out_s * vg).sum(), W_shared)
    f_step = pytensor.function(inputs[1:] + [lr], out_s, updates=[(W_shared, W_shared - lr * g_Ws)])
    args = (W, h, ii, b, oi, g)
    return {
        "fwd": lambda: [f_fwd(*args[:-1])],
        "fwd+bwd(h,b)": lambda: f_hb(*args),
        "fwd+bwd(W,h,b)": lambda: f_all(*args),
        "sgd step": lambda: [f_step(*args[1:], np.float32(0))],
    }


def peer_ours(data):
    from pytensor_nnet.blocksparse import sparse_block_dot

    return pytensor_fns(sparse_block_dot, *data)


def peer_oldpt(data):
    import warnings

    warnings.simplefilter("ignore", DeprecationWarning)
    from pytensor.tensor.nnet.blocksparse import sparse_block_dot

    return pytensor_fns(sparse_block_dot, *data)


def peer_torch(data, dense):
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    W, h, ii, b, oi, g = data
    n_blocks, o_blocks, i_size, o_size = W.shape
    batch = h.shape[0]
    tW = torch.from_numpy(W)
    if dense:  # (iBlocks*iSize, oBlocks*oSize), made once outside the timings
        tW = tW.permute(0, 2, 1, 3).reshape(n_blocks * i_size, o_blocks * o_size).contiguous()
        data[0] = W = None  # one W in memory, not two
    th, tb, tg = torch.from_numpy(h), torch.from_numpy(b), torch.from_numpy(g)
    tii, toi = torch.from_numpy(ii).long(), torch.from_numpy(oi).long()
    rows = torch.arange(batch)[:, None]

    def forward(W_, h_, b_):
        if dense:
            h_dense = torch.zeros(batch, n_blocks, i_size).index_put((rows.expand_as(tii), tii), h_, accumulate=True)
            out_dense = (h_dense.reshape(batch, -1) @ W_).reshape(batch, o_blocks, o_size)
            return out_dense[rows, toi] + b_[toi]
        blocks = W_[tii[:, :, None], toi[:, None, :]]  # (batch, iWin, oWin, iSize, oSize)
        return torch.einsum("bik,bijkl->bjl", h_, blocks) + b_[toi]

    def run(wrt_W):
        W_ = tW.detach().requires_grad_(wrt_W)
        h_ = th.detach().requires_grad_(True)
        b_ = tb.detach().requires_grad_(True)
        out = forward(W_, h_, b_)
        out.backward(tg)
        grads = [W_.grad] if wrt_W else []
        return [out.detach(), *grads, h_.grad, b_.grad]

    def fwd():
        with torch.no_grad():
            return [forward(tW, th, tb)]

    param = tW.detach().requires_grad_(True)

    def sgd_step(lr=0.0):
        param.grad = None
        out = forward(param, th, tb)
        out.backward(tg)
        with torch.no_grad():
            param.sub_(lr * param.grad)
        return [out.detach()]

    return {
        "fwd": fwd,
        "fwd+bwd(h,b)": lambda: run(False),
        "fwd+bwd(W,h,b)": lambda: run(True),
        "sgd step": sgd_step,
    }


def run_peer(a):
    data = make_data(a)
    if a.peer == "ours":
        fns = peer_ours(data)
    elif a.peer == "oldpt":
        fns = peer_oldpt(data)
    else:
        fns = peer_torch(data, dense=a.peer == "torch-dense")
    result = {}
    for case in CASES:
        reps = a.reps if case in ("fwd", "fwd+bwd(h,b)") else max(1, a.reps // 4)
        if a.peer == "torch-dense":
            reps = max(1, reps // 4)
        ms = best_ms(fns[case], reps)
        sums = checksum(fns[case]())
        result[case] = {"ms": ms, "checksum": sums, "extra_mib": peak_extra_mib(fns[case])}
    print("RESULT " + json.dumps(result))


def spawn(peer, a):
    argv = [os.path.abspath(__file__), "--peer", peer, *sys.argv[1:]]
    cmd = [*LEGACY_PYTHON, *argv] if peer == "oldpt" else [sys.executable, *argv]
    env = dict(os.environ)
    if peer == "oldpt":
        env.pop("PYTHONPATH", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        print(f"[{peer}] failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(lines[-1][len("RESULT ") :])


def sizes(a):
    gib = 2.0**-30
    w = a.blocks * a.blocks * a.size * a.size * 4 * gib
    dense_act = 2 * a.batch * a.blocks * a.size * 4 * gib
    sparse_act = a.batch * a.owin * a.size * 4 * gib
    dense_flop = 2 * a.batch * (a.blocks * a.size) ** 2
    sparse_flop = 2 * a.batch * a.iwin * a.owin * a.size * a.size
    return w, dense_act, sparse_act, dense_flop, sparse_flop


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--blocks", type=int, default=1024, help="iBlocks = oBlocks")
    p.add_argument("--size", type=int, default=32, help="iSize = oSize")
    p.add_argument("--iwin", type=int, default=8)
    p.add_argument("--owin", type=int, default=16)
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--peers", default=",".join(PEERS))
    p.add_argument("--peer", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.peer:
        run_peer(a)
        return

    w, dense_act, sparse_act, dense_flop, sparse_flop = sizes(a)
    print(
        f"batch={a.batch} iBlocks=oBlocks={a.blocks} iSize=oSize={a.size} iWin={a.iwin} oWin={a.owin} float32; "
        f"W = {w:.2f} GiB; {os.cpu_count()} cores"
    )
    results = {}
    for peer in a.peers.split(","):
        if peer == "oldpt" and not LEGACY_PYTHON:
            print("oldpt skipped: PYTENSOR_NNET_LEGACY_PYTHON is not set", file=sys.stderr)
            continue
        t = time.perf_counter()
        results[peer] = spawn(peer, a)
        print(f"  ran {peer} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    ours = results.get("ours")
    print()
    print(f"{'case':16s} " + " ".join(f"{peer:>22s}" for peer in results))
    for case in CASES:
        cells = []
        for peer, r in results.items():
            if r is None:
                cells.append(f"{'failed':>22s}")
                continue
            ms = r[case]["ms"]
            ratio = f" ({ms / ours[case]['ms']:.1f}x)" if ours and peer != "ours" else ""
            cells.append(f"{f'{ms:.2f} ms{ratio}':>22s}")
        print(f"{case:16s} " + " ".join(cells))
    print("(ratio = peer time / our time: > 1 means we are faster)")
    print()
    print("peak resident memory added by one call (beyond the inputs), MiB:")
    print(f"{'case':16s} " + " ".join(f"{peer:>22s}" for peer in results))
    for case in CASES:
        cells = [f"{r[case]['extra_mib']:22.1f}" if r else f"{'-':>22s}" for r in results.values()]
        print(f"{case:16s} " + " ".join(cells))
    print()
    print("checksums (sum of each output; peers must agree to float32 rounding):")
    for case in CASES:
        for peer, r in results.items():
            if r:
                print(f"  {case:16s} {peer:14s} " + " ".join(f"{s: .5e}" for s in r[case]["checksum"]))
    print()
    print(
        f"memory beside W ({w:.2f} GiB): forward activations {sparse_act * 2**20:.0f} KiB block-sparse vs "
        f"{dense_act * 2**10:.1f} MiB dense (dense input and output); "
        f"work {sparse_flop / 1e6:.1f} MFLOP block-sparse vs {dense_flop / 1e9:.1f} GFLOP dense "
        f"({dense_flop / sparse_flop:.0f}x); a dense W gradient is another {w:.2f} GiB either way."
    )


if __name__ == "__main__":
    main()
