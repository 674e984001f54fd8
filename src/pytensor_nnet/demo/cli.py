"""``python -m pytensor_nnet demo``: train a LeNet on handwritten digits, or its Bayesian twin.

The classic run trains :mod:`pytensor_nnet.demo.lenet` on scikit-learn's digits framed as
28x28 images (:mod:`pytensor_nnet.demo.data`), shows a progress bar per epoch, prints the
test accuracy, the time per epoch and the compile time, and writes a PNG. ``--bayes`` fits
the Bayesian twin (:mod:`pytensor_nnet.demo.bayes`) with PyMC instead.

Bad input (a missing optional dependency, an unknown mode, an output that cannot be written)
ends with one line on stderr and exit code 2; the output is checked before any training.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

MODES = ("NUMBA", "JAX", "PYTORCH", "C")
# PyTensor's mode for each --mode: "C" is the C virtual machine (C code where an Op has it,
# Python ``perform`` otherwise), as Theano's default mode was.
PYTENSOR_MODES = {"NUMBA": "NUMBA", "JAX": "JAX", "PYTORCH": "PYTORCH", "C": "CVM"}
DEMO_EXTRA = 'pip install "pytensor-nnet[demo]"'
INSTALL_HINTS = {
    "rich": DEMO_EXTRA,
    "matplotlib": DEMO_EXTRA,
    "sklearn": DEMO_EXTRA,
    "pymc": 'pip install "pytensor-nnet[pymc]"',
    "jax": 'pip install "pytensor-nnet[jax]"',
    "torch": 'pip install "pytensor-nnet[torch]"',
}
PIP_NAMES = {"sklearn": "scikit-learn"}


class DemoError(Exception):
    """A problem the user can fix; ``main`` prints it as one line and returns 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        raise DemoError(f"{message} (see python -m pytensor_nnet demo --help)")


def build_parser():
    parser = _Parser(
        prog="python -m pytensor_nnet demo",
        description="Train a LeNet-style CNN (pytensor_nnet conv2d + pool_2d, SGD with momentum through "
        "pytensor.function updates) on scikit-learn's handwritten digits framed like MNIST (28x28), "
        "or with --bayes the same kind of CNN as a Bayesian model in PyMC. Writes a PNG report.",
    )
    parser.add_argument("--epochs", type=int, default=12, help="passes over the training set (default 12)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per SGD step (default 32)")
    parser.add_argument("--lr", type=float, default=0.02, help="learning rate (default 0.02, momentum 0.9)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default float32")
    parser.add_argument(
        "--mode",
        type=str.upper,
        choices=MODES,
        default="NUMBA",
        help="PyTensor backend (default NUMBA; C is PyTensor's C virtual machine, CVM)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights and the shuffling")
    parser.add_argument(
        "--out",
        default=".",
        help="PNG path, or a directory for demo.png / demo_bayes.png (default: the current directory)",
    )
    parser.add_argument(
        "--n-train", type=int, default=None, help="train on a stratified subset of this many images (default all 1,257)"
    )
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        help="BLAS threads (default 1: faster for these small matrices, and much faster on a busy machine)",
    )
    parser.add_argument("--bayes", action="store_true", help="fit the Bayesian CNN with PyMC (ADVI) instead")
    parser.add_argument("--nuts", action="store_true", help="with --bayes: sample with NUTS instead of ADVI")
    parser.add_argument("--filters", type=int, default=None, help="first-layer filters (default 20; 6 with --bayes)")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="with --bayes: ADVI iterations (default 5000), or NUTS tuning steps per chain (default 100)",
    )
    parser.add_argument(
        "--draws",
        type=int,
        default=None,
        help="with --bayes: posterior draws (default 300 for ADVI, 50 per chain for NUTS; "
        "NUTS trains on 200 images unless --n-train)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def require(*modules):
    """Import ``modules``; a missing one raises :class:`DemoError` with the command that installs it."""
    loaded = []
    for name in modules:
        try:
            loaded.append(importlib.import_module(name))
        except ImportError as exc:
            if exc.name not in (name, None):
                raise DemoError(
                    f"{name} is installed but failed to import ({exc}); reinstall it: {INSTALL_HINTS[name]}"
                ) from None
            raise DemoError(
                f"the demo needs {PIP_NAMES.get(name, name)}, which is not installed: {INSTALL_HINTS[name]}"
            ) from None
        except Exception as exc:  # noqa: BLE001 (a broken install: say so in one line)
            raise DemoError(
                f"{name} is installed but failed to import ({type(exc).__name__}: {exc}); "
                f"reinstall it: {INSTALL_HINTS[name]}"
            ) from None
    return loaded


def output_path(out, default_name):
    """The PNG path that ``--out`` names, checked writable (before any training)."""
    path = Path(out).expanduser()
    if path.is_dir() or out.endswith(("/", os.sep)):
        path = path / default_name
    elif path.suffix.lower() != ".png":
        raise DemoError(f"--out {out!r} is neither a directory nor a .png file; pass e.g. --out {default_name}")
    parent = path.parent
    if not parent.is_dir():
        raise DemoError(f"cannot write {path}: the directory {parent} does not exist; create it or pass another --out")
    if path.is_dir():
        raise DemoError(f"cannot write {path}: it is a directory; pass another --out")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".demo-", suffix=".png"):
            pass
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(13, "permission denied")
    except OSError as exc:
        raise DemoError(f"cannot write {path}: {exc.strerror or exc}; pass a writable --out") from None
    return path.resolve()


def check_args(args):
    for name in ("epochs", "batch_size", "blas_threads"):
        if getattr(args, name) < 1:
            raise DemoError(f"--{name.replace('_', '-')} must be at least 1; got {getattr(args, name)}")
    for name in ("filters", "steps", "draws"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise DemoError(f"--{name} must be at least 1; got {getattr(args, name)}")
    if args.lr <= 0:
        raise DemoError(f"--lr must be positive; got {args.lr}")
    if args.n_train is not None and not 10 <= args.n_train:
        raise DemoError(f"--n-train must be at least 10 (one image per class); got {args.n_train}")
    if args.nuts and not args.bayes:
        raise DemoError("--nuts goes with --bayes: python -m pytensor_nnet demo --bayes --nuts")
    if args.mode == "JAX":
        require("jax")


def blas_threads(n):
    """A context limiting BLAS to ``n`` threads (threadpoolctl, which scikit-learn brings)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(n, user_api="blas")


def compile_error(mode, exc):
    """A :class:`DemoError` for a backend that cannot compile the network."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    missing = re.search(r"conversion for the given `Op`: (\w+)", message)
    if missing:
        message = f"no {mode.title()} implementation of {missing.group(1)}"
    fallback = "NUMBA (default) or JAX" if mode == "PYTORCH" else "NUMBA (default)"
    return DemoError(f"--mode {mode} cannot run this network yet ({message}); use --mode {fallback}")


def check_jax_dtype(dtype):
    """Fail early where PyTensor's JAX backend returns float64 from float32 sums (it does in 3.0-3.3)."""
    if dtype != "float32":
        return
    import pytensor
    import pytensor.tensor as pt

    x = pt.vector("x", dtype="float32")
    total = pytensor.function([x], x.sum(), mode="JAX")(np.ones(2, dtype="float32"))
    if total.dtype != np.float32:
        raise DemoError(
            "--mode JAX cannot train in float32 with this PyTensor (its JAX sums of float32 "
            "return float64): add --dtype float64, or use --mode NUMBA (default)"
        )


class Progress:
    """One rich progress bar per epoch: images done, loss, validation accuracy, images/s."""

    def __init__(self, console, epochs, n_images, enabled=True):
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self.epochs, self.n_images, self.enabled = epochs, n_images, enabled
        self.bar = RichProgress(
            TextColumn("epoch {task.fields[epoch]:>{task.fields[width]}}/{task.fields[epochs]}"),
            BarColumn(bar_width=28),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TextColumn("val {task.fields[val]}"),
            TextColumn("{task.fields[rate]:>6.0f} img/s"),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,
        )
        self.task = None

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def on_batch(self, epoch, done, loss, seconds):
        if self.task is None:
            self.task = self.bar.add_task(
                "",
                total=self.n_images,
                epoch=epoch + 1,
                epochs=self.epochs,
                width=len(str(self.epochs)),
                loss=loss,
                val="  -  ",
                rate=0.0,
            )
        self.bar.update(self.task, completed=done, loss=loss, rate=done / max(seconds, 1e-9))

    def on_epoch(self, epoch, loss, val_acc, seconds):
        self.bar.update(
            self.task,
            completed=self.n_images,
            loss=loss,
            val=f"{100 * val_acc:5.1f}%",
            rate=self.n_images / max(seconds, 1e-9),
        )
        self.bar.stop_task(self.task)
        self.task = None


def compile_and_warm_up(lenet, arch, init, data, args):
    """The compiled network and the seconds spent in ``pytensor.function`` and the first calls."""
    tic = time.perf_counter()
    try:
        net = lenet.compile_network(arch, init, mode=PYTENSOR_MODES[args.mode], dtype=args.dtype)
        # First calls (Numba compiles at the first call); lr = 0 leaves the weights as they are.
        net.train(data.x_train[: args.batch_size], data.y_train[: args.batch_size], np.zeros((), args.dtype))
        net.predict(data.x_val)
    except (NotImplementedError, ImportError) as exc:
        raise compile_error(args.mode, exc) from None
    return net, time.perf_counter() - tic


def run_lenet(args, console):
    """The classic run; returns a dict of the numbers it printed."""
    from pytensor_nnet.demo import data as digits_data
    from pytensor_nnet.demo import lenet
    from pytensor_nnet.demo.report import training_report

    out = output_path(args.out, "demo.png")
    if args.mode == "JAX":
        check_jax_dtype(args.dtype)
    data = digits_data.load(n_train=args.n_train, dtype=args.dtype)
    arch = lenet.Architecture(filters=(args.filters or 20, 50))
    rng = np.random.default_rng(args.seed)
    init = lenet.init_params(arch, rng, args.dtype)
    console.print(
        f"[bold]LeNet on handwritten digits[/]: {len(data.y_train)} training, {len(data.y_val)} "
        f"validation, {len(data.y_test)} test images of 28x28; {args.dtype}, mode {args.mode}, "
        f"batch {args.batch_size}, lr {args.lr}, seed {args.seed}"
    )

    with warnings.catch_warnings():
        # The JAX backend says it drops the graph's shape assertions (the demo's shapes are fixed).
        warnings.filterwarnings("ignore", message="Skipping Assert", category=UserWarning)
        net, compile_s = compile_and_warm_up(lenet, arch, init, data, args)
        progress = Progress(console, args.epochs, len(data.y_train), enabled=not args.quiet)
        with progress:
            history = lenet.fit(
                net,
                data,
                args.epochs,
                args.batch_size,
                args.lr,
                rng,
                on_batch=progress.on_batch,
                on_epoch=progress.on_epoch,
            )
    test_acc, probs = lenet.accuracy(net, data.x_test, data.y_test)

    per_epoch = float(np.median(history.epoch_seconds))
    n_right = int(round(test_acc * len(data.y_test)))
    title = (
        f"LeNet ({arch.filters[0]}-{arch.filters[1]}-{arch.hidden}, {arch.activation}) on scikit-learn digits "
        f"as 28x28: test accuracy {100 * test_acc:.1f}%  ({args.epochs} epochs, {args.mode}, {args.dtype})"
    )
    training_report(out, history, np.asarray(net.params[0].get_value()), data.x_test, data.y_test, probs, title)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    console.print(f"test accuracy   {100 * test_acc:.1f}% ({n_right}/{len(data.y_test)})")
    console.print(
        f"time per epoch  {per_epoch:.2f} s (median of {args.epochs}; "
        f"{len(data.y_train) / per_epoch:,.0f} images/s; training {sum(history.epoch_seconds):.1f} s)"
    )
    console.print(f"compile time    {compile_s:.1f} s (pytensor.function and first calls)")
    console.print(f"load average    {load:.2f} (1 min), {os.cpu_count()} CPUs, {args.blas_threads} BLAS thread(s)")
    console.print(f"picture         {out}")
    return {
        "test_accuracy": test_acc,
        "epoch_seconds": history.epoch_seconds,
        "compile_seconds": compile_s,
        "history": history,
        "out": out,
    }


def run(argv, console=None):
    """Run the demo with command-line arguments ``argv``; returns the numbers it printed.

    Raises :class:`DemoError` for bad input (before any training).
    """
    args = build_parser().parse_args(argv)
    check_args(args)
    require("rich", "matplotlib", "sklearn")
    if args.bayes:
        require("pymc")
    if console is None:
        from rich.console import Console

        console = Console(highlight=False)
    with blas_threads(args.blas_threads):
        if args.bayes:
            from pytensor_nnet.demo.bayes import run_bayes

            return run_bayes(args, console)
        return run_lenet(args, console)


def main(argv=None, console=None):
    """Command-line entry point; returns the exit code (2 for bad input, with one line on stderr)."""
    try:
        run(sys.argv[1:] if argv is None else argv, console)
    except DemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
