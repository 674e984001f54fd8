"""A second process that compiles boundary kernels while this one compiles the graph.

With empty caches, the first call of a float32 conv2d + relu + pool_2d + grad function spent
about 55 s in Numba on one core of two: the boundary kernels (``boundary``) for the graph's
nodes (the convolution's driver and shape check, the pooling entries: ~17 s), PyTensor's
compile of the graph's own function (~19 s), then the convolution entries each direction
plans (~18 s), one after the other. Numba compiles under a process-wide lock, so threads
cannot share that work, but a second process can: the kernels behind the boundary are
cached on disk (``numba_cache``) and a process loads a cached one in a fraction of a second.

So a graph's build looks each kernel it will call up in Numba's cache (``LazyKernels.prefetch``)
and queues the ones it does not find (:func:`queue`). The first queued kernel starts a helper
process, which compiles the queue into the cache while this process compiles the graph. When a
call needs a kernel (:func:`obtain`): if nobody has started it, this process compiles it; if
the helper has finished it, it is loaded from the cache; while the helper is still at it, this
process compiles the next queued kernel nobody has started, then waits.

The queue is in the order the graph's nodes were built, about the order its first call needs
the kernels, so this process takes it from the front and the helper from the back: the two
meet in the middle, and at the end neither waits for long on a kernel the other started late.
(Taken in order by both, the helper had run out of work for 5 s while this process compiled
the last kernel of a conv2d + pool_2d + grad step alone.)
A kernel is claimed by creating a file in a directory of this process (exclusive creation),
so none is compiled twice; a helper that died leaves its claims to this process.

The helper exits when this process does (its stdin closes) or after :data:`IDLE_EXIT_S`
without work; a later queue starts another. ``PYTENSOR_NNET_COMPILE_HELPER=0`` turns the
helper off (so does a single core): every kernel is then compiled by the process that needs
it, when it needs it.
A process forked from this one (multiprocessing) starts afresh, with no helper.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from typing import NamedTuple

#: Set to "0" to compile every kernel in the process that needs it.
ENV_SWITCH = "PYTENSOR_NNET_COMPILE_HELPER"
#: The helper exits after this many seconds without a kernel to compile.
IDLE_EXIT_S = 20.0
#: How often a waiting process or an idle helper looks for news (seconds).
POLL_S = 0.02
#: How long this process waits, as it exits, for the helper to exit with its stdin (seconds).
EXIT_WAIT_S = 2.0

_log = logging.getLogger("pytensor_nnet")


class Task(NamedTuple):
    """A boundary kernel to compile: ``key`` names it uniquely (its symbol and slot), the body
    is ``boundary.body_named(module, name)``, compiled for ``dtype``."""

    key: str
    module: str
    name: str
    dtype: str


def enabled():
    """Whether kernels may be queued for a helper process: not turned off
    (``PYTENSOR_NNET_COMPILE_HELPER``), a second core to run it on, and a Python interpreter
    to start it with (not a frozen application)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return os.environ.get(ENV_SWITCH, "1") != "0" and cores > 1 and not getattr(sys, "frozen", False)


class _Queue:
    """A directory holding the queue (one JSON task per line), the claims and the finished
    marks, shared by this process and its helper."""

    def __init__(self, directory):
        self.directory = directory
        self.path = os.path.join(directory, "queue")

    def tasks(self):
        try:
            with open(self.path) as lines:
                return [Task(*json.loads(line)) for line in lines if line.endswith("\n")]
        except FileNotFoundError:
            return []

    def append(self, task):
        with open(self.path, "a") as lines:
            lines.write(json.dumps(list(task)) + "\n")

    def claim(self, task):
        """Whether this caller is the first to claim ``task`` (then it must compile it)."""
        try:
            os.close(os.open(os.path.join(self.directory, task.key + ".claim"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def finish(self, task, failure=""):
        """Mark ``task`` compiled into Numba's cache (or failed: the traceback)."""
        with open(os.path.join(self.directory, task.key + ".done"), "w") as mark:
            mark.write(failure)

    def finished(self, task):
        return os.path.exists(os.path.join(self.directory, task.key + ".done"))

    def next_unclaimed(self, from_the_end=False):
        """Claim and return the first queued task nobody has claimed (``from_the_end``: the
        last), or None."""
        tasks = self.tasks()
        for task in reversed(tasks) if from_the_end else tasks:
            if self.claim(task):
                return task
        return None


def _compile_and_finish(work, task):
    from pytensor_nnet.dispatch.numba import boundary

    try:
        boundary.compile_task(task)
    except Exception:
        work.finish(task, traceback.format_exc())
        return
    work.finish(task)


class _Coordinator:
    """This process's side: the queue's directory, the helper, the keys queued."""

    def __init__(self):
        self.pid = os.getpid()
        self.work = _Queue(tempfile.mkdtemp(prefix="pytensor_nnet_compile_"))
        self.keys = set()
        self.helper = None
        atexit.register(self.close)

    def queue(self, task):
        if task.key in self.keys:
            return
        self.keys.add(task.key)
        self.work.append(task)
        if not self.helper_alive():
            self._let_go_of_helper()  # one that exited idle
            self.helper = _start_helper(self.work.directory)

    def helper_alive(self):
        return self.helper is not None and self.helper.poll() is None

    def obtain(self, task, compile_here):
        while True:
            if self.work.claim(task):
                compiled = compile_here()
                self.work.finish(task)
                return compiled
            if self.work.finished(task) or not self.helper_alive():
                return compile_here()  # from the cache, unless the helper failed
            other = self.work.next_unclaimed()
            if other is not None:
                _compile_and_finish(self.work, other)
            else:
                time.sleep(POLL_S)

    def _let_go_of_helper(self):
        """Close the helper's stdin (a running helper exits) so that its pipe is not left
        open for the garbage collector (a ``ResourceWarning``)."""
        if self.helper is not None and self.helper.stdin is not None:
            self.helper.stdin.close()

    def close(self):
        self._let_go_of_helper()
        if self.helper is not None:
            try:  # reaped, not left running at exit (Python warns of such a child)
                self.helper.wait(timeout=EXIT_WAIT_S)
            except subprocess.TimeoutExpired:
                pass  # still importing: it exits when it finds its stdin closed
        shutil.rmtree(self.work.directory, ignore_errors=True)


_coordinator: _Coordinator | None = None
_lock = threading.RLock()


def _current(create):
    global _coordinator
    with _lock:
        if _coordinator is not None and _coordinator.pid != os.getpid():
            _coordinator = None  # forked: the helper and the queue are the parent's
        if _coordinator is None and create:
            _coordinator = _Coordinator()
        return _coordinator


def queue(task):
    """Have the helper compile ``task`` into Numba's cache (starting it if needed), unless the
    helper is turned off."""
    if enabled():
        with _lock:
            _current(create=True).queue(task)


def queued(task):
    """Whether ``task`` was queued by this process."""
    coordinator = _current(create=False)
    return coordinator is not None and task.key in coordinator.keys


def obtain(task, compile_here):
    """The compiled ``task``: ``compile_here()`` (which compiles, or loads from Numba's cache)
    once nobody else is compiling it; while the helper compiles it, this process compiles
    other queued tasks or waits."""
    if not queued(task):
        return compile_here()
    return _current(create=False).obtain(task, compile_here)


def _start_helper(directory):
    environment = dict(os.environ)
    environment[ENV_SWITCH] = "0"
    environment["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)
    command = f"from {__name__} import serve; serve({directory!r})"
    try:
        helper = subprocess.Popen(
            [sys.executable, "-c", command],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=environment,
        )
    except OSError:
        _log.debug("pytensor_nnet: could not start the compile helper", exc_info=True)
        return None
    _log.debug("pytensor_nnet: compile helper started (pid %d)", helper.pid)
    return helper


def _exit_when_stdin_closes():
    sys.stdin.buffer.read()
    os._exit(0)


def serve(directory):
    """The helper's loop: compile the queue of ``directory`` into Numba's cache from its end
    (see the module's doc), skipping claimed tasks, until stdin closes or nothing comes for
    :data:`IDLE_EXIT_S`."""
    threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    work = _Queue(directory)
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < IDLE_EXIT_S:
        task = work.next_unclaimed(from_the_end=True)
        if task is None:
            time.sleep(POLL_S)
            continue
        _compile_and_finish(work, task)
        idle_since = time.monotonic()
