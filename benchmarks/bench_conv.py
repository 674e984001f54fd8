"""conv2d benchmarks behind the numbers of the README (not part of the test suite).

    python benchmarks/bench_conv.py                 # everything
    python benchmarks/bench_conv.py --only table    # or: compile, latency, memory, steady, entries, pymc

- table: forward and forward+backward on the five shapes of ``pytensor_nnet.bench.SHAPES``,
  float32 and float64, beside PyTorch, JAX and the legacy ops (with ``PYTENSOR_NNET_LEGACY_BENCH``),
  in one sitting (see ``pytensor_nnet.bench``);
- compile: time to build and first-call a float32 conv2d + relu + pool_2d + grad function in
  fresh processes: cold (empty Numba and PyTensor caches), warm (a second process), the second
  dtype (float64, after the float32 one), and a new graph (another border mode) with warm caches;
- latency: time per call of the log-density and its gradient of a small CNN (batch 100 of 1x8x8
  images, 4 filters 3x3, tanh or ReLU, 2x2 max pool, dense layer to 10 classes) in PyTensor's default mode,
  beside ``jax.jit`` and PyTorch eager on the same data, interleaved, median of 3 repeats;
- memory: peak extra RSS of a conv2d forward and of forward+backward on a batch whose
  whole-batch im2col buffer would need 3.7 GB, in fresh processes;
- steady: calls in a row, as a training loop makes them, each shape and peer in a fresh
  process that has not freed a large block yet (its data made without temporaries): the mean
  time per call of 40 calls after 10 warm-up ones, and the page faults per call. glibc's
  ``malloc`` maps fresh pages for every block above a threshold that only grows when such a
  block is freed, and gives the top of its heap back when much of it lies free, so where a
  call's memory comes from depends on the process's history; the table's best-of-turns in one
  long-lived process does not see it;
- entries (not part of "everything"): the compile time of the convolution's driver and of its
  three im2col + GEMM entries, float32, compiled one after the other in a fresh process with an
  empty Numba cache, three processes. The first-step benchmark races two processes on the
  cores and swings by seconds between runs; this one is steady to about 0.2 s, so judge a
  change to the kernels' compile time by it, alternated with the old code;
- pymc (not part of "everything": it needs PyMC, and nutpie for its row): the same small CNN as
  a PyMC model (Normal priors, categorical likelihood): build + first call of its log-density
  and gradient compiled by PyMC in the default mode, and by nutpie (Numba backend) with a
  short run of its sampler, with empty caches and then in a second process, and the time per
  call of PyMC's compiled function. Beside it, two models of PyTensor's own Ops compiled the
  same way: the same CNN with the convolution as nine shifted ``tensordot`` and the pooling as a
  reshape and a max, and the floor of PyMC's own compile for this model: no convolution and no
  pooling (the images' first 36 pixels go straight to the dense layer; w and b stay in the
  graph).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

COMPILE_SNIPPET = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np, pytensor, pytensor.tensor as pt
from pytensor_nnet import conv2d
from pytensor_nnet.pool import pool_2d
t1 = time.perf_counter()
dtype, border = sys.argv[1], int(sys.argv[2])
X, W = pt.tensor4("x", dtype=dtype), pt.tensor4("w", dtype=dtype)
h = pt.maximum(conv2d(X, W, border_mode=border), 0)
loss = (pool_2d(h, (2, 2), ignore_border=True) ** 2).sum()
f = pytensor.function([X, W], [loss, *pytensor.grad(loss, [X, W])])
t2 = time.perf_counter()
f(np.ones((16, 3, 16, 16), dtype), np.ones((8, 3, 3, 3), dtype))
t3 = time.perf_counter()
print(json.dumps(dict(import_s=t1 - t0, compile_s=t2 - t1, first_call_s=t3 - t2)))
"""

LENET_SNIPPET = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np, pytensor, pytensor.tensor as pt
from pytensor_nnet import conv2d
from pytensor_nnet.pool import pool_2d
from pytensor_nnet.nnet import softmax
t1 = time.perf_counter()
batch = int(sys.argv[1])
rng = np.random.default_rng(0)
shapes = [(20, 1, 5, 5), (20,), (50, 20, 5, 5), (50,), (800, 500), (500,), (500, 10), (10,)]
params = [pytensor.shared(rng.standard_normal(s).astype("float32") * 0.1) for s in shapes]
w1, b1, w2, b2, w3, b3, w4, b4 = params
x, y = pt.tensor4("x", dtype="float32"), pt.ivector("y")
h = pt.tanh(pool_2d(conv2d(x, w1, input_shape=(batch, 1, 28, 28), filter_shape=shapes[0]), (2, 2), ignore_border=True)
            + b1.dimshuffle("x", 0, "x", "x"))
h = pt.tanh(pool_2d(conv2d(h, w2, input_shape=(batch, 20, 12, 12), filter_shape=shapes[2]), (2, 2), ignore_border=True)
            + b2.dimshuffle("x", 0, "x", "x"))
h = pt.tanh(h.flatten(2) @ w3 + b3)
p = softmax(h @ w4 + b4)
cost = -pt.mean(pt.log(p)[pt.arange(y.shape[0]), y])
updates = [(q, q - np.float32(0.1) * g) for q, g in zip(params, pytensor.grad(cost, params))]
train = pytensor.function([x, y], cost, updates=updates)
t2 = time.perf_counter()
train(np.ones((batch, 1, 28, 28), "float32"), np.zeros(batch, "int32"))
t3 = time.perf_counter()
print(json.dumps(dict(import_s=t1 - t0, compile_s=t2 - t1, first_call_s=t3 - t2)))
"""

LATENCY_SNIPPET = r"""
import json, sys, time
import numpy as np
which, repeats, activation = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
N, classes = 100, 10
images = rng.standard_normal((N, 1, 8, 8)).astype("float64")
labels = rng.integers(0, classes, N)
onehot = np.eye(classes)[labels]
params = [rng.standard_normal(s) * 0.3 for s in ((4, 1, 3, 3), (4,), (36, classes), (classes,))]

if which.startswith("pytensor"):
    import pytensor, pytensor.tensor as pt
    from pytensor.compile.mode import get_default_mode
    from pytensor_nnet import conv2d
    from pytensor_nnet.pool import pool_2d
    X, Y = pt.constant(images), pt.constant(onehot)
    w, b, v, c = (pt.tensor(f"p{i}", shape=p.shape, dtype="float64") for i, p in enumerate(params))
    act = pt.tanh if activation == "tanh" else (lambda a: pt.maximum(a, 0))
    h = act(conv2d(X, w) + b[None, :, None, None])
    z = pool_2d(h, (2, 2), ignore_border=True).reshape((N, 36)) @ v + c
    logp = (Y * pt.special.log_softmax(z, axis=-1)).sum() - 0.5 * sum((p ** 2).sum() for p in (w, b, v, c))
    mode = get_default_mode()
    if which == "pytensor-own-tanh":  # PyTensor's elementwise tanh instead of the package's
        mode = mode.excluding("pytensor_nnet_vectorised_tanh")
    f = pytensor.function([w, b, v, c], [logp, *pytensor.grad(logp, [w, b, v, c])], mode=mode)
    call = lambda: f(*params)
elif which == "jax":
    import jax, jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
    X, Y = jnp.asarray(images), jnp.asarray(onehot)
    act = jnp.tanh if activation == "tanh" else (lambda a: jnp.maximum(a, 0))
    def logp(w, b, v, c):
        h = act(jax.lax.conv_general_dilated(X, w, (1, 1), "VALID") + b[None, :, None, None])
        pooled = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        z = pooled.reshape((N, 36)) @ v + c
        return (Y * jax.nn.log_softmax(z, axis=-1)).sum() - 0.5 * sum((p ** 2).sum() for p in (w, b, v, c))
    f = jax.jit(jax.value_and_grad(logp, argnums=(0, 1, 2, 3)))
    jparams = [jnp.asarray(p) for p in params]
    call = lambda: jax.block_until_ready(f(*jparams))
else:
    import torch
    torch.set_num_threads(2)
    X, Y = torch.from_numpy(images), torch.from_numpy(onehot)
    tparams = [torch.from_numpy(p).requires_grad_() for p in params]
    act = torch.tanh if activation == "tanh" else torch.relu
    def call():
        w, b, v, c = tparams
        h = act(torch.nn.functional.conv2d(X, w) + b[None, :, None, None])
        z = torch.nn.functional.max_pool2d(h, 2).reshape(N, 36) @ v + c
        logp = (Y * torch.log_softmax(z, dim=-1)).sum() - 0.5 * sum((p ** 2).sum() for p in tparams)
        return torch.autograd.grad(logp, tparams)
for _ in range(20):
    call()
times = []
for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(200):
        call()
    times.append((time.perf_counter() - start) / 200)
print(json.dumps(dict(which=which, ms=[t * 1e3 for t in times])))
"""

PYMC_SNIPPET = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np, pytensor, pytensor.tensor as pt, pymc as pm
from pytensor_nnet import conv2d
from pytensor_nnet.pool import pool_2d
t1 = time.perf_counter()
which, activation, kind = sys.argv[1], sys.argv[2], sys.argv[3]
rng = np.random.default_rng(0)
N, classes = 100, 10
images = rng.standard_normal((N, 1, 8, 8))
labels = rng.integers(0, classes, N)
with pm.Model() as model:
    w = pm.Normal("w", 0, 1, shape=(4, 1, 3, 3))
    b = pm.Normal("b", 0, 1, shape=4)
    v = pm.Normal("v", 0, 1, shape=(36, classes))
    c = pm.Normal("c", 0, 1, shape=classes)
    act = pt.tanh if activation == "tanh" else (lambda a: pt.maximum(a, 0))
    x = pt.as_tensor(images)
    if kind == "ours":
        h = act(conv2d(x, w) + b[None, :, None, None])
        z = pool_2d(h, (2, 2), ignore_border=True).reshape((N, 36)) @ v + c
    elif kind == "pytensor":  # a convolution flips its filters
        taps = [(i, j) for i in range(3) for j in range(3)]
        y = sum(pt.tensordot(x[:, :, i : i + 6, j : j + 6], w[:, :, 2 - i, 2 - j], axes=[[1], [1]]) for i, j in taps)
        h = act(y.transpose(0, 3, 1, 2) + b[None, :, None, None])
        z = h.reshape((N, 4, 3, 2, 3, 2)).max(axis=(3, 5)).reshape((N, 36)) @ v + c
    else:
        z = act(x.reshape((N, 64))[:, :36] * b.sum() + w.sum()) @ v + c
    pm.Categorical("y", logit_p=z, observed=labels)
result = {}
if which == "pymc":
    logp = model.logp()
    f = pm.pytensorf.compile(model.value_vars, [logp, *pytensor.grad(logp, model.value_vars)])
    point = model.initial_point()
    args = [point[var.name] for var in model.value_vars]
    t2 = time.perf_counter()
    f(*args)
    t3 = time.perf_counter()
    for _ in range(20):
        f(*args)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(200):
            f(*args)
        times.append((time.perf_counter() - start) / 200)
    result["call_ms"] = sorted(times)[len(times) // 2] * 1e3
else:
    import nutpie
    compiled = nutpie.compile_pymc_model(model, backend="numba")
    t2 = time.perf_counter()
    nutpie.sample(compiled, draws=20, tune=20, chains=1, progress_bar=False, seed=0)
    t3 = time.perf_counter()
result.update(import_s=t1 - t0, compile_s=t2 - t1, first_call_s=t3 - t2)
print(json.dumps(result))
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


STEADY_SNIPPET = r"""
import json, resource, sys, time
import numpy as np
peer, name, dtype = sys.argv[1:4]
from pytensor_nnet.bench import SHAPES, out_size
N, C, H, W, K, kh, kw, pad, s, d, g = SHAPES[name]
rng = np.random.default_rng(0)
x = rng.standard_normal((N, C, H, W), dtype=dtype)
w = rng.standard_normal((K, C // g, kh, kw), dtype=dtype)
gy = rng.standard_normal((N, K, out_size(H, kh, pad, s, d), out_size(W, kw, pad, s, d)), dtype=dtype)
if peer == "ours":
    import pytensor, pytensor.tensor as pt
    from pytensor_nnet import conv2d
    X, Wv = pt.tensor4(dtype=dtype), pt.tensor4(dtype=dtype)
    y = conv2d(X, Wv, input_shape=x.shape, filter_shape=w.shape, border_mode=pad, subsample=(s, s),
               filter_dilation=(d, d), num_groups=g, filter_flip=False)
    G = y.type()
    f_fwd = pytensor.function([X, Wv], y)
    f_all = pytensor.function([X, Wv, G], [y, *pytensor.grad(None, [X, Wv], known_grads={y: G})])
    calls = {"fwd": lambda: f_fwd(x, w), "f+b": lambda: f_all(x, w, gy)}
else:
    import torch
    torch.set_num_threads(2)
    tx, tw, tg = (torch.from_numpy(a) for a in (x, w, gy))
    txg, twg = tx.clone().requires_grad_(), tw.clone().requires_grad_()
    def fwd():
        with torch.no_grad():
            return torch.nn.functional.conv2d(tx, tw, None, s, pad, d, g)
    def fwd_bwd():
        torch.nn.functional.conv2d(txg, twg, None, s, pad, d, g).backward(tg)
    calls = {"fwd": fwd, "f+b": fwd_bwd}
result = {}
for direction, call in calls.items():
    for _ in range(10):
        call()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    for _ in range(40):
        call()
    result[direction] = ((time.perf_counter() - start) / 40 * 1e3,
                         (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / 40)
print(json.dumps(result))
"""


def steady(dtype="float32", repeats=3):
    """Mean ms and page faults per call of calls in a row, fresh processes (see the module doc)."""
    from pytensor_nnet.bench import SHAPES

    peers = ["ours"] + (["torch"] if available("torch") else [])
    print(f"\nCalls in a row, {dtype}, fresh processes: mean ms per call (page faults per call), median of {repeats}")
    print(f"{'shape':12s} " + " ".join(f"{p + ' ' + d:>22s}" for p in peers for d in ("fwd", "f+b")))
    for name in SHAPES:
        runs = {p: [run_snippet(STEADY_SNIPPET, args=(p, name, dtype)) for _ in range(repeats)] for p in peers}
        cells = []
        for p in peers:
            for d in ("fwd", "f+b"):
                ms = sorted(r[d][0] for r in runs[p])[repeats // 2]
                faults = sorted(r[d][1] for r in runs[p])[repeats // 2]
                cells.append(f"{ms:13.2f} ({faults:6.0f})")
        print(f"{name:12s} " + " ".join(cells))


ENTRIES = ("conv_drive", "corr_forward_gemm_c", "corr_grad_inputs_gemm_c", "corr_grad_weights_gemm_c")

ENTRIES_SNIPPET = r"""
import json, sys, time
from pytensor_nnet.dispatch.numba import boundary, compile_helper
dtype, names = sys.argv[1], sys.argv[2:]
seconds = {}
for name in names:
    start = time.perf_counter()
    boundary.compile_task(compile_helper.Task(name, "pytensor_nnet.dispatch.numba.conv", name, dtype))
    seconds[name] = time.perf_counter() - start
print(json.dumps(seconds))
"""


def run_snippet(snippet, env=None, args=()):
    out = subprocess.run([sys.executable, "-c", snippet, *args], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cache_env(tmp):
    """The environment of a process whose Numba and PyTensor caches start empty in ``tmp``."""
    return dict(
        os.environ,
        NUMBA_CACHE_DIR=os.path.join(tmp, "numba"),
        # base_compiledir, not compiledir: PyTensor keeps its Numba graph cache beside the
        # latter (``base_compiledir/numba``), so a run with only compiledir set is warm there.
        PYTENSOR_FLAGS=f"base_compiledir={os.path.join(tmp, 'pytensor')}",
    )


def times_row(r):
    """Import, build, first-call and total seconds of a snippet's result, as table columns."""
    total = r["import_s"] + r["compile_s"] + r["first_call_s"]
    return f"{r['import_s']:9.2f} {r['compile_s']:8.2f} {r['first_call_s']:13.2f} {total:8.2f}"


def compile_times():
    with tempfile.TemporaryDirectory() as tmp:
        env = cache_env(tmp)
        runs = [
            ("cold (empty caches)", ("float32", "1")),
            ("warm (second process)", ("float32", "1")),
            ("second dtype (float64)", ("float64", "1")),
            ("new graph (border 2)", ("float32", "2")),
        ]
        results = [(name, run_snippet(COMPILE_SNIPPET, env, args)) for name, args in runs]
        lenet = [(f"LeNet step, batch {batch}", run_snippet(LENET_SNIPPET, env, (str(batch),))) for batch in (100, 50)]
    print("\nconv2d + relu + pool_2d + grad function (Numba mode), fresh processes, in this order:")
    print(f"{'':24s} {'import s':>9s} {'build s':>8s} {'first call s':>13s} {'total s':>8s}")
    for name, r in results:
        print(f"{name:24s} {times_row(r)}")
    print("Theano LeNet tutorial's training function (shape hints with the batch size), same caches, then:")
    for name, r in lenet:
        print(f"{name:24s} {times_row(r)}")


def available(module):
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


def latency(repeats=3):
    """Per-call time of a small CNN's logp + gradient, interleaved across the peers, with a
    tanh activation and with a ReLU one (in these graphs ``tanh`` runs as the package's
    ``VectorisedTanh``, ~2.5 ns an element here; PyTensor's own calls the C library's scalar
    ``tanh``, ~17 ns, about 0.2 ms a call on this model)."""
    others = [name for name, module in (("jax", "jax"), ("torch", "torch")) if available(module)]
    for activation in ("tanh", "relu"):
        peers = ["pytensor"] + (["pytensor-own-tanh"] if activation == "tanh" else []) + others
        times = {name: [] for name in peers}
        for _ in range(repeats):
            for name in peers:
                times[name] += run_snippet(LATENCY_SNIPPET, args=(name, "3", activation))["ms"]
        ours = sorted(times["pytensor"])[len(times["pytensor"]) // 2]
        print(
            f"\nlogp + gradient of a small CNN (batch 100 of 1x8x8, 4 filters 3x3, {activation}, 2x2 max pool, "
            "dense 36->10), float64:"
        )
        print(f"{'':18s} {'ms/call (median)':>17s} {'x (peer / ours)':>16s}")
        for name in peers:
            median = sorted(times[name])[len(times[name]) // 2]
            print(f"{name:18s} {median:17.3f} {median / ours:16.2f}")


def pymc_times(activation="relu"):
    """Compile and first-call times of the small CNN as a PyMC model, cold then warm."""
    if not available("pymc"):
        print("\npymc: not installed (pip install pymc; nutpie for its row)")
        return
    runners = ["pymc"] + (["nutpie"] if available("nutpie") else [])
    kinds = {"ours": "ours", "pytensor": "PyTensor Ops", "floor": "no conv"}
    rows = []
    for which in runners:
        for kind in kinds:  # caches of their own: each runner and model starts cold
            with tempfile.TemporaryDirectory() as tmp:
                env = cache_env(tmp)
                for when in ("cold (empty caches)", "warm (second process)"):
                    rows.append((which, kinds[kind], when, run_snippet(PYMC_SNIPPET, env, (which, activation, kind))))
    print(
        f"\nsmall CNN as a PyMC model ({activation}), logp + gradient, fresh processes in this order "
        "(nutpie: its first call is a 20 + 20 draw run; PyTensor Ops: the same CNN without ours; "
        "no conv: the model without convolution and pooling):"
    )
    header = f"{'import s':>9s} {'build s':>8s} {'first call s':>13s} {'total s':>8s} {'ms/call':>8s}"
    print(f"{'':8s} {'':12s} {'':22s} {header}")
    for which, kind, when, r in rows:
        call = f"{r['call_ms']:8.3f}" if "call_ms" in r else ""
        print(f"{which:8s} {kind:12s} {when:22s} {times_row(r)} {call}")


def entry_compile_times(rounds=3):
    per_entry = {name: [] for name in ENTRIES}
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            result = run_snippet(ENTRIES_SNIPPET, cache_env(tmp), ("float32", *ENTRIES))
        for name in ENTRIES:
            per_entry[name].append(result[name])
    print(
        f"\nCompile of the convolution's entries, float32, one after the other in a fresh process with "
        f"an empty cache ({rounds} processes):"
    )
    print(f"{'entry':26s} {'seconds per process':>30s} {'median':>7s}")
    totals = [sum(per_entry[name][i] for name in ENTRIES) for i in range(rounds)]
    for name, values in [*per_entry.items(), ("total", totals)]:
        runs = " / ".join(f"{v:.2f}" for v in values)
        print(f"{name:26s} {runs:>30s} {sorted(values)[rounds // 2]:7.2f}")


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
    parser.add_argument("--only", choices=["table", "compile", "latency", "memory", "steady", "entries", "pymc"])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    if args.only in (None, "table"):
        from pytensor_nnet.bench import main as bench_main

        bench_main(["--dtype", "both", "--reps", str(args.reps)])
    if args.only in (None, "compile"):
        compile_times()
    if args.only in (None, "latency"):
        latency()
    if args.only in (None, "memory"):
        memory()
    if args.only in (None, "steady"):
        steady()
    if args.only == "entries":
        entry_compile_times()
    if args.only == "pymc":
        pymc_times()


if __name__ == "__main__":
    main()
