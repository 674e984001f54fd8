"""conv2d forward + backward and a LeNet training step in PyTensor's JAX and PYTORCH modes,
against the raw library calls, on the GPU when there is one (CPU otherwise).

Usage::

    python benchmarks/bench_gpu.py [--device auto|gpu|cpu] [--dtype float32|float64]
                                   [--repeats 20] [--no-lenet]

It first checks correctness (each mode against the raw library call, and the two libraries
against each other), then prints tables of milliseconds and ratios (mode / raw call; target:
at most 1.1).

Modes: ``PYTORCH`` is PyTensor's own; ``nnet PYTORCH`` is ``pytensor_nnet.pytorch_mode()``,
the same with TorchInductor's channels-last layout optimisation off (see
``pytensor_nnet.modes``); ``JAX`` is PyTensor's.

Devices
-------
* PYTORCH modes: PyTensor's PyTorch linker turns numpy inputs into tensors with
  ``torch.as_tensor``, i.e. on torch's default device, so the functions are compiled *and*
  called inside ``with torch.device("cuda"):``. Outputs come back as numpy arrays (a copy to
  the host).
* JAX mode: JAX puts numpy inputs on its default device (the GPU when jax has one); the
  functions are compiled and called inside ``jax.default_device(...)``.

Each mode is timed twice: ``fn`` is the PyTensor function called with numpy arrays (so it
includes the copies to and from the device), ``dev`` calls the compiled graph inside it with
arrays already on the device and leaves the outputs there, which is what the raw library calls
do. ``dev`` uses the linker's ``fn.vm.jit_fn`` (PyTensor 3.0 to 3.3).

Only numpy, torch, jax, pytensor and pytensor_nnet are needed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

import numpy as np

from pytensor_nnet.bench import SHAPES  # name: (N, C, H, W, K, kh, kw, pad, stride, dilation, groups)

TARGET = 1.1


# ----------------------------------------------------------------------------- set-up
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("auto", "gpu", "cpu"), default="auto")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--repeats", type=int, default=20, help="timed batches per case (best is reported)")
    parser.add_argument("--no-lenet", action="store_true", help="skip the LeNet training step")
    parser.add_argument(
        "--cudagraphs",
        action="store_true",
        help="PYTORCH mode: let torch.compile replay CUDA graphs (as its mode='reduce-overhead')",
    )
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated conv2d cases (default: all)")
    return parser.parse_args(argv)


class Backends:
    """The torch device and jax device to use, and how to wait for each."""

    def __init__(self, device):
        import torch

        self.torch = torch
        want_gpu = device in ("auto", "gpu")
        self.torch_device = torch.device("cuda" if want_gpu and torch.cuda.is_available() else "cpu")
        if device == "gpu" and self.torch_device.type != "cuda":
            sys.exit("--device gpu: torch sees no CUDA device")
        try:
            import jax

            self.jax = jax
            gpus = [d for d in jax.devices() if d.platform == "gpu"] if want_gpu else []
            self.jax_device = gpus[0] if gpus else jax.devices("cpu")[0]
            if device == "gpu" and not gpus:
                print("warning: jax sees no GPU; JAX runs on the CPU", file=sys.stderr)
        except ImportError:
            self.jax = self.jax_device = None
            print("warning: jax is not installed; JAX columns are skipped", file=sys.stderr)

    def warm_up(self, seconds=1.0):
        """Run the GPU flat out for a moment so that its clocks are up before anything is timed."""
        if self.torch_device.type != "cuda":
            return
        a = self.torch.randn(4096, 4096, device=self.torch_device)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            for _ in range(10):
                a @ a
            self.torch_sync()

    def torch_sync(self):
        if self.torch_device.type == "cuda":
            self.torch.cuda.synchronize()

    def jax_sync(self, value):
        self.jax.block_until_ready(value)

    def torch_context(self):
        return self.torch.device(self.torch_device)

    def jax_context(self):
        return self.jax.default_device(self.jax_device) if self.jax else contextlib.nullcontext()

    def describe(self):
        torch = self.torch
        name = torch.cuda.get_device_name(0) if self.torch_device.type == "cuda" else "CPU"
        jax_part = f"jax {self.jax.__version__} on {self.jax_device}" if self.jax else "no jax"
        import pytensor

        return f"torch {torch.__version__} on {self.torch_device} ({name}); {jax_part}; pytensor {pytensor.__version__}"


def best_ms(call, sync, repeats, min_batch_s=0.02):
    """Best per-call time (ms) over ``repeats`` batches, each long enough to time reliably."""
    sync(call())
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            out = call()
        sync(out)
        elapsed = time.perf_counter() - start
        if elapsed >= min_batch_s or n >= 4096:
            break
        n *= 2
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            out = call()
        sync(out)
        times.append((time.perf_counter() - start) / n)
    return 1e3 * min(times)


def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def device_runner(fn, backend):
    """The compiled graph inside a PyTensor function, called with device arrays (or None)."""
    jit = getattr(getattr(fn, "vm", None), "jit_fn", None)
    if jit is None:
        return None
    if backend == "jax":
        return jit
    compiled, functors = getattr(jit, "fn", None), getattr(jit, "gen_functors", None)
    if compiled is None or functors is None:
        return None
    import pytensor.link.utils as link_utils

    def run(*tensors):
        for name, functor in functors:  # what PyTensor's wrapper does before each call
            setattr(link_utils, name[1:], functor)
        return compiled(*tensors)

    return run


class Mode:
    """A PyTensor mode to compile in, with its library's device context and array type."""

    def __init__(self, name, backends):
        self.name, self.b = name, backends
        self.library = "jax" if name == "JAX" else "torch"
        if name == "nnet PYTORCH":  # pytensor_nnet.pytorch_mode(): PYTORCH with NCHW kept
            from pytensor_nnet import pytorch_mode

            self.pytensor_mode = pytorch_mode(cudagraphs=backends.cudagraphs)
        else:
            self.pytensor_mode = name

    def context(self):
        return self.b.torch_context() if self.library == "torch" else self.b.jax_context()

    def to_device(self, a):
        if self.library == "torch":
            return self.b.torch.as_tensor(a, device=self.b.torch_device)
        return self.b.jax.device_put(a, self.b.jax_device)

    def sync(self, out):
        if self.library == "torch":
            self.b.torch_sync()
        else:
            self.b.jax_sync(out)

    def compile(self, inputs, outputs, values):
        """(fn, dev, numpy outputs, compile seconds): ``dev`` runs on device arrays."""
        import pytensor

        with self.context():
            start = time.perf_counter()
            fn = pytensor.function(inputs, outputs, mode=self.pytensor_mode)
            out = fn(*values)
            seconds = time.perf_counter() - start
        dev = device_runner(fn, self.library)
        return fn, dev, [np.asarray(o) for o in out], seconds

    def time(self, fn, dev, values, repeats):
        """(fn ms, dev ms): numpy in/out, and device arrays in/out.

        ``dev`` runs outside ``torch.device(...)``: that context (like
        ``torch.set_default_device``) routes every torch call of the compiled function through
        a Python handler, which costs more than the small convolutions themselves; the data is
        on the device already. (torch.compile recompiles once for the changed context.)
        """
        with self.context():
            fn_ms = best_ms(lambda: fn(*values), self.sync, repeats)
            dev_values = [self.to_device(v) for v in values]
        dev_ms = float("nan")
        if dev is not None:
            with self.context() if self.library == "jax" else contextlib.nullcontext():
                dev_ms = best_ms(lambda: dev(*dev_values), self.sync, repeats)
        return fn_ms, dev_ms


def all_modes(b):
    """PyTensor's PYTORCH mode, ``pytensor_nnet.pytorch_mode()``, and JAX when installed."""
    return [Mode("PYTORCH", b), Mode("nnet PYTORCH", b)] + ([Mode("JAX", b)] if b.jax else [])


# ----------------------------------------------------------------------------- conv2d
def conv_data(shape, dtype, seed=0):
    N, C, H, W, K, kh, kw, pad, s, d, g = shape
    rng = np.random.default_rng(seed)
    oh = (H + 2 * pad - d * (kh - 1) - 1) // s + 1
    ow = (W + 2 * pad - d * (kw - 1) - 1) // s + 1
    return [rng.standard_normal(sh).astype(dtype) for sh in ((N, C, H, W), (K, C // g, kh, kw), (N, K, oh, ow))]


def conv_graph(shape, dtype):
    """PyTensor inputs (x, w, gy) and outputs (y, dx, dw) of a correlation (filter_flip=False)."""
    import pytensor
    import pytensor.tensor as pt

    from pytensor_nnet import conv2d

    N, C, H, W, K, kh, kw, pad, s, d, g = shape
    x = pt.tensor("x", dtype=dtype, shape=(N, C, H, W))
    w = pt.tensor("w", dtype=dtype, shape=(K, C // g, kh, kw))
    y = conv2d(x, w, border_mode=pad, subsample=(s, s), filter_dilation=(d, d), num_groups=g, filter_flip=False)
    gy = pt.tensor("gy", dtype=dtype, shape=y.type.shape)
    dx, dw = pytensor.grad(None, [x, w], known_grads={y: gy})
    return [x, w, gy], [y, dx, dw]


def raw_torch_conv(b, shape, values):
    """Raw ``F.conv2d`` + autograd on device tensors: ``call() -> (y, dx, dw)``."""
    torch = b.torch
    F = torch.nn.functional
    _, _, _, _, _, _, _, pad, s, d, g = shape
    x, w, gy = (torch.as_tensor(v, device=b.torch_device) for v in values)
    x.requires_grad_(True)
    w.requires_grad_(True)

    def call():
        y = F.conv2d(x, w, None, s, pad, d, g)
        dx, dw = torch.autograd.grad(y, (x, w), gy)
        return y, dx, dw

    return call


def raw_jax_conv(b, shape, values):
    """Raw ``jax.lax.conv_general_dilated`` + ``jax.vjp``, jitted: ``call() -> (y, dx, dw)``."""
    jax = b.jax
    _, _, _, _, _, _, _, pad, s, d, g = shape

    def conv(x, w):
        return jax.lax.conv_general_dilated(x, w, (s, s), [(pad, pad)] * 2, rhs_dilation=(d, d), feature_group_count=g)

    @jax.jit
    def fwd_bwd(x, w, gy):
        y, pullback = jax.vjp(conv, x, w)
        return (y, *pullback(gy))

    args = [jax.device_put(v, b.jax_device) for v in values]
    return lambda: fwd_bwd(*args)


def bench_conv(b, args):
    dtype = args.dtype
    modes = all_modes(b)
    rows, failures = [], []
    tol_same = 1e-5 if dtype == "float32" else 1e-12
    # TF32 (GPU float32 default in both libraries) and different algorithms: looser across libraries
    tol_cross = 2e-2 if dtype == "float32" else 1e-10
    for name in args.shapes.split(","):
        shape = SHAPES[name]
        values = conv_data(shape, dtype)
        raw = {"torch": raw_torch_conv(b, shape, values)}
        if b.jax:
            with b.jax_context():
                raw["jax"] = raw_jax_conv(b, shape, values)
        raw_out = {}
        for lib, call in raw.items():
            sync = (lambda out: b.torch_sync()) if lib == "torch" else b.jax_sync
            raw_out[lib] = [np.asarray(o.detach().cpu() if lib == "torch" else o) for o in call()]
            raw_out[lib + "_ms"] = best_ms(call, sync, args.repeats)
        if b.jax:
            for k, (a, r) in enumerate(zip(raw_out["jax"], raw_out["torch"])):
                if rel_err(a, r) > tol_cross:
                    failures.append(f"{name}: raw jax vs raw torch output {k}: rel err {rel_err(a, r):.1e}")
        row = {"name": name, "raw torch": raw_out["torch_ms"], "raw jax": raw_out.get("jax_ms", float("nan"))}
        for mode in modes:
            inputs, outputs = conv_graph(shape, dtype)
            fn, dev, out, seconds = mode.compile(inputs, outputs, values)
            for k, (a, r) in enumerate(zip(out, raw_out[mode.library])):
                if rel_err(a, r) > tol_same:
                    failures.append(
                        f"{name}: {mode.name} vs raw {mode.library} output {k}: rel err {rel_err(a, r):.1e}"
                    )
            row[mode.name + " fn"], row[mode.name + " dev"] = mode.time(fn, dev, values, args.repeats)
            row[mode.name + " compile s"] = seconds
        rows.append(row)
        print(f"  {name}: done", file=sys.stderr, flush=True)
    return rows, failures


# ----------------------------------------------------------------------------- LeNet step
LENET = dict(batch=128, lr=0.01)


def lenet_params(dtype, seed=1):
    rng = np.random.default_rng(seed)

    def init(*shape):
        fan_in = int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]
        return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(dtype)

    params = [
        init(20, 1, 5, 5),
        np.zeros(20, dtype),
        init(50, 20, 5, 5),
        np.zeros(50, dtype),
        init(800, 500),
        np.zeros(500, dtype),
        init(500, 10),
        np.zeros(10, dtype),
    ]
    x = rng.standard_normal((LENET["batch"], 1, 28, 28)).astype(dtype)
    labels = rng.integers(0, 10, LENET["batch"])
    onehot = np.eye(10, dtype=dtype)[labels]
    return params, x, onehot


def lenet_graph(dtype):
    """One SGD step: inputs (W1, b1, W2, b2, W3, b3, W4, b4, x, onehot) -> (loss, *new params)."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.tensor.special import log_softmax

    from pytensor_nnet import conv2d
    from pytensor_nnet.pool import pool_2d

    shapes = [(20, 1, 5, 5), (20,), (50, 20, 5, 5), (50,), (800, 500), (500,), (500, 10), (10,)]
    params = [pt.tensor(f"p{i}", dtype=dtype, shape=s) for i, s in enumerate(shapes)]
    W1, b1, W2, b2, W3, b3, W4, b4 = params
    x = pt.tensor("x", dtype=dtype, shape=(LENET["batch"], 1, 28, 28))
    onehot = pt.tensor("onehot", dtype=dtype, shape=(LENET["batch"], 10))
    h = pt.tanh(conv2d(x, W1, filter_flip=False) + b1[None, :, None, None])
    h = pool_2d(h, (2, 2), ignore_border=True)
    h = pt.tanh(conv2d(h, W2, filter_flip=False) + b2[None, :, None, None])
    h = pool_2d(h, (2, 2), ignore_border=True).reshape((LENET["batch"], 800))
    h = pt.tanh(h @ W3 + b3)
    logp = log_softmax(h @ W4 + b4, axis=-1)
    loss = -(onehot * logp).sum() / LENET["batch"]
    grads = pytensor.grad(loss, params)
    return [*params, x, onehot], [loss, *(p - LENET["lr"] * g for p, g in zip(params, grads))]


def raw_torch_lenet(b, values):
    torch = b.torch
    F = torch.nn.functional
    tensors = [torch.as_tensor(v, device=b.torch_device) for v in values]
    params, (x, onehot) = tensors[:8], tensors[8:]
    for p in params:
        p.requires_grad_(True)

    def call():
        W1, b1, W2, b2, W3, b3, W4, b4 = params
        h = F.max_pool2d(torch.tanh(F.conv2d(x, W1, b1)), 2)
        h = F.max_pool2d(torch.tanh(F.conv2d(h, W2, b2)), 2).reshape(x.shape[0], 800)
        h = torch.tanh(h @ W3 + b3)
        loss = -(onehot * torch.log_softmax(h @ W4 + b4, dim=-1)).sum() / x.shape[0]
        grads = torch.autograd.grad(loss, params)
        return (loss.detach(), *(p.detach() - LENET["lr"] * g for p, g in zip(params, grads)))

    return call


def raw_jax_lenet(b, values):
    jax = b.jax
    jnp = jax.numpy

    def loss_fn(params, x, onehot):
        W1, b1, W2, b2, W3, b3, W4, b4 = params

        def conv(a, w, bias):
            return jax.lax.conv_general_dilated(a, w, (1, 1), "VALID") + bias[None, :, None, None]

        def pool(a):
            return jax.lax.reduce_window(a, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

        h = pool(jnp.tanh(conv(x, W1, b1)))
        h = pool(jnp.tanh(conv(h, W2, b2))).reshape(x.shape[0], 800)
        h = jnp.tanh(h @ W3 + b3)
        return -(onehot * jax.nn.log_softmax(h @ W4 + b4, axis=-1)).sum() / x.shape[0]

    @jax.jit
    def step(params, x, onehot):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, onehot)
        return (loss, *(p - LENET["lr"] * g for p, g in zip(params, grads)))

    args = [jax.device_put(v, b.jax_device) for v in values]
    return lambda: step(args[:8], args[8], args[9])


def bench_lenet(b, args):
    params, x, onehot = lenet_params(args.dtype)
    values = [*params, x, onehot]
    row, failures = {"name": "lenet step"}, []
    tol_same = 1e-4 if args.dtype == "float32" else 1e-10
    tol_cross = 2e-2 if args.dtype == "float32" else 1e-9
    raw = {"torch": raw_torch_lenet(b, values)}
    if b.jax:
        with b.jax_context():
            raw["jax"] = raw_jax_lenet(b, values)
    raw_out = {}
    for lib, call in raw.items():
        sync = (lambda out: b.torch_sync()) if lib == "torch" else b.jax_sync
        raw_out[lib] = [np.asarray(o.detach().cpu() if lib == "torch" else o) for o in call()]
        row["raw " + lib] = best_ms(call, sync, args.repeats)
    if b.jax:
        for k, (a, r) in enumerate(zip(raw_out["jax"], raw_out["torch"])):
            if rel_err(a, r) > tol_cross:
                failures.append(f"lenet: raw jax vs raw torch output {k}: rel err {rel_err(a, r):.1e}")
    for mode in all_modes(b):
        inputs, outputs = lenet_graph(args.dtype)
        fn, dev, out, seconds = mode.compile(inputs, outputs, values)
        for k, (a, r) in enumerate(zip(out, raw_out[mode.library])):
            if rel_err(a, r) > tol_same:
                failures.append(f"lenet: {mode.name} vs raw {mode.library} output {k}: rel err {rel_err(a, r):.1e}")
        row[mode.name + " fn"], row[mode.name + " dev"] = mode.time(fn, dev, values, args.repeats)
        row[mode.name + " compile s"] = seconds
    return [row], failures


# ----------------------------------------------------------------------------- report
def print_table(title, rows, has_jax):
    print(f"\n{title}")
    libs = [("PYTORCH", "raw torch"), ("nnet PYTORCH", "raw torch")] + ([("JAX", "raw jax")] if has_jax else [])
    header = f"{'case':14s}"
    for mode, raw in libs:
        header += (
            f" | {raw:>9s} {mode + ' dev':>{len(mode) + 4}s} {'ratio':>6s}"
            f" {mode + ' fn':>{len(mode) + 3}s} {'compile':>8s}"
        )
    print(header)
    print("-" * len(header))
    worst = []
    for row in rows:
        line = f"{row['name']:14s}"
        for mode, raw in libs:
            ratio = row[mode + " dev"] / row[raw]
            worst.append((ratio, mode, row["name"]))
            flag = " " if ratio <= TARGET else "*"
            line += (
                f" | {row[raw]:9.3f} {row[mode + ' dev']:{len(mode) + 4}.3f} {ratio:5.2f}{flag}"
                f" {row[mode + ' fn']:{len(mode) + 3}.3f} {row[mode + ' compile s']:7.1f}s"
            )
        print(line)
    print(
        f"(ms per call, best of batches; ratio = mode dev / raw call, * above {TARGET}; "
        "fn = PyTensor function on numpy arrays incl. host<->device copies; compile = first call)"
    )
    return worst


def main(argv=None):
    args = parse_args(argv)
    # floatX = the benchmark's dtype: python-float constants stay in it, and PyTensor's JAX
    # backend enables 64-bit JAX (where its float32 sums come back as float64) only for float64.
    os.environ["PYTENSOR_FLAGS"] = ",".join(f for f in (os.environ.get("PYTENSOR_FLAGS"), f"floatX={args.dtype}") if f)
    if "pytensor" in sys.modules:
        sys.modules["pytensor"].config.floatX = args.dtype
    b = Backends(args.device)
    b.cudagraphs = args.cudagraphs
    if args.cudagraphs:
        import torch._inductor.config

        torch._inductor.config.triton.cudagraphs = True
    import pytensor_nnet  # noqa: F401
    import pytensor_nnet.dispatch.pytorch  # noqa: F401  (PyTorch registrations)

    b.warm_up()
    print(
        f"bench_gpu: {b.describe()}; dtype {args.dtype}, repeats {args.repeats}"
        + ("; PYTORCH with CUDA graphs" if args.cudagraphs else "")
    )
    rows, failures = bench_conv(b, args)
    worst = print_table("conv2d forward + backward (y, dX, dW)", rows, b.jax is not None)
    if not args.no_lenet:
        lenet_rows, lenet_failures = bench_lenet(b, args)
        failures += lenet_failures
        worst += print_table(
            "LeNet training step (conv 1->20 5x5, pool 2, conv 20->50 5x5, pool 2, dense 500, softmax; batch 128)",
            lenet_rows,
            b.jax is not None,
        )
    print("\ncorrectness:", "all checks passed" if not failures else f"{len(failures)} FAILED")
    for f in failures:
        print("  " + f)
    over = [w for w in worst if not w[0] <= TARGET]
    print(
        f"speed: {len(worst) - len(over)} of {len(worst)} within {TARGET}x of the raw call"
        + ("" if not over else "; over: " + ", ".join(f"{m} {n} {r:.2f}x" for r, m, n in over))
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
