"""The compile helper of ``dispatch/numba/compile_helper.py``: kernels missing from Numba's
cache are compiled by a second process and loaded by the first; a waiting process compiles
other queued kernels, and takes over from a helper that died; no kernel is compiled twice."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytensor_nnet.dispatch.numba import boundary, compile_helper
from pytensor_nnet.dispatch.numba.compile_helper import Task

ROOT = Path(__file__).resolve().parents[1]

_COLD_KERNEL = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    from pytensor_nnet.dispatch.numba import boundary, compile_helper
    from tests.boundary_bodies import add_body
    from tests.test_boundary import _entry_caller

    entries = boundary.lazy_kernel(add_body, "float64", "helper_test")
    coordinator = compile_helper._coordinator
    if os.environ.get(compile_helper.ENV_SWITCH) == "0":
        assert coordinator is None and entries.compiled == [None]
    else:
        assert coordinator.helper_alive() and compile_helper.queued(entries.task(0))
        deadline = time.monotonic() + 300
        while not coordinator.work.finished(entries.task(0)):  # compiled by the helper
            assert time.monotonic() < deadline
            time.sleep(0.05)
    a, out, meta = np.arange(4.0), np.zeros(4), np.array([4])
    assert _entry_caller(entries)(a, a, a, out, meta) == 0
    assert (out == 2 * a).all()
    print("cache hits", entries.compiled[0].cache_hits)
    if coordinator is not None:
        helper = coordinator.helper
        coordinator.close()
        assert helper.returncode == 0  # gone with its stdin, and reaped: not left running at exit
        assert not os.path.exists(coordinator.work.directory)
    """
)


@pytest.mark.parametrize("switch", ["1", "0"])
def test_a_kernel_missing_from_the_cache_is_compiled_by_the_helper(tmp_path, switch):
    env = {
        **os.environ,
        "NUMBA_CACHE_DIR": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        compile_helper.ENV_SWITCH: switch,
    }
    done = subprocess.run(
        [sys.executable, "-c", _COLD_KERNEL], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # loaded from the cache the helper wrote; compiled here without the helper
    assert done.stdout.split()[-1] == ("1" if switch == "1" else "0")


class _Helper:
    """A stand-in for the helper process: alive until :meth:`die`; a caller that keeps
    waiting on it fails the test."""

    def __init__(self):
        self.alive, self.polls = True, 0

    def poll(self):
        self.polls += 1
        if self.polls > 500:  # 10 s of waiting
            pytest.fail("waited on a helper that never finishes")
        return None if self.alive else 0

    def die(self):
        self.alive = False


@pytest.fixture
def coordinator(monkeypatch):
    made = compile_helper._Coordinator()
    made.helper = _Helper()
    monkeypatch.setattr(compile_helper, "_coordinator", made)
    yield made
    made.helper = None
    made.close()


def _queue(coordinator, *tasks):
    for task in tasks:
        coordinator.keys.add(task.key)
        coordinator.work.append(task)


def test_a_waiting_process_compiles_other_kernels_then_takes_over_from_a_dead_helper(coordinator, monkeypatch):
    mine, other = Task("mine", "m", "n", "float64"), Task("other", "m", "n", "float32")
    _queue(coordinator, mine, other)
    assert coordinator.work.claim(mine)  # the helper is compiling it
    compiled = []

    def compile_task(task):
        compiled.append(task.key)
        coordinator.helper.die()  # before it finished ``mine``

    monkeypatch.setattr(boundary, "compile_task", compile_task)
    assert compile_helper.obtain(mine, lambda: "compiled here") == "compiled here"
    assert compiled == ["other"]  # while waiting
    assert coordinator.work.finished(other) and not coordinator.work.finished(mine)


def test_a_kernel_the_helper_finished_is_loaded_and_none_is_compiled_twice(coordinator, monkeypatch):
    done, unclaimed = Task("done", "m", "n", "float64"), Task("unclaimed", "m", "n", "float64")
    _queue(coordinator, done, unclaimed)
    coordinator.work.claim(done)
    coordinator.work.finish(done)
    monkeypatch.setattr(boundary, "compile_task", lambda task: pytest.fail("compiled twice"))
    assert compile_helper.obtain(done, lambda: "loaded") == "loaded"
    assert compile_helper.obtain(unclaimed, lambda: "compiled here") == "compiled here"
    assert coordinator.work.finished(unclaimed)  # claimed and marked: the helper skips it
    assert coordinator.work.next_unclaimed() is None


def test_a_failed_compile_in_the_helper_is_marked_and_compiled_again_here(coordinator):
    broken = Task("broken", "tests.boundary_bodies", "broken_body", "float64")
    _queue(coordinator, broken)
    assert coordinator.work.next_unclaimed() == broken
    compile_helper._compile_and_finish(coordinator.work, broken)  # as the helper does
    mark = Path(coordinator.work.directory) / "broken.done"
    assert "no_such_attribute" in mark.read_text()
    with pytest.raises(RuntimeError, match="again here"):
        compile_helper.obtain(broken, lambda: (_ for _ in ()).throw(RuntimeError("again here")))


def test_unqueued_kernels_and_forked_processes_compile_here(coordinator, monkeypatch):
    task = Task("queued", "m", "n", "float64")
    _queue(coordinator, task)
    assert compile_helper.queued(task)
    assert compile_helper.obtain(Task("elsewhere", "m", "n", "float64"), lambda: "here") == "here"
    monkeypatch.setattr(coordinator, "pid", -1)  # as seen from a forked child
    assert not compile_helper.queued(task)
    assert compile_helper.obtain(task, lambda: "here") == "here"


def test_the_helper_serves_the_queue_from_its_end_and_exits_when_idle(tmp_path, monkeypatch):
    work = compile_helper._Queue(str(tmp_path))
    tasks = [Task(f"t{i}", "m", "n", "float64") for i in range(4)]
    for task in tasks[:3]:
        work.append(task)
    work.claim(tasks[1])  # taken by the other process
    compiled = []

    def compile_task(task):
        compiled.append(task.key)
        if task.key == "t2":  # a later graph queues another while the helper works
            work.append(tasks[3])

    monkeypatch.setattr(boundary, "compile_task", compile_task)
    monkeypatch.setattr(compile_helper, "IDLE_EXIT_S", 0.2)
    monkeypatch.setattr(compile_helper, "_exit_when_stdin_closes", lambda: None)
    compile_helper.serve(str(tmp_path))
    assert compiled == ["t2", "t3", "t0"]
    assert [work.finished(task) for task in tasks] == [True, False, True, True]
    assert work.next_unclaimed() is None  # the process that needs them takes the front


def test_a_cached_kernel_is_loaded_at_build_without_a_helper(monkeypatch):
    from tests.boundary_bodies import add_body

    boundary.LazyKernels("pytensor_nnet_test_warm_add", (add_body,), "float64").address(0)  # now cached
    monkeypatch.setattr(compile_helper, "queue", lambda task: pytest.fail("queued a cached kernel"))
    entries = boundary.LazyKernels("pytensor_nnet_test_warm_add_again", (add_body,), "float64")
    entries.prefetch(0)
    assert entries.compiled[0] is not None and entries.compiled[0].cache_hits == 1


@pytest.mark.parametrize(
    "hints, expected",
    [
        (None, ("gemm", "gemm", "gemm")),  # sizes unknown: GEMM, the usual plan
        (((8, 1, 28, 28), (20, 1, 5, 5)), ("direct", "gemm", "direct")),  # one input channel
        (((8, 32, 20, 20), (32, 32, 3, 3)), ("winograd", "winograd", "winograd")),
        (((8, 32, 20, 20), (32, 32, 5, 5)), ("gemm", "gemm", "gemm")),
    ],
)
def test_a_graph_queues_the_entries_its_static_sizes_plan(monkeypatch, hints, expected):
    import pytensor
    import pytensor.tensor as pt

    from pytensor_nnet import conv2d
    from pytensor_nnet.dispatch.numba import conv as numba_conv
    from pytensor_nnet.kernels import select

    fetched = {}

    def prefetch(entries, slot, keep=True):
        if "_corr_" not in entries.name:  # the driver's, the check's
            return
        direction = next(d for d, name in enumerate(select.DIRECTION_NAMES) if f"_corr_{name}_" in entries.name)
        fetched[direction] = (select.NAMES[slot], keep)

    monkeypatch.setattr(boundary.LazyKernels, "prefetch", prefetch)
    x, w = pt.tensor4("x"), pt.tensor4("w")
    image_shape, filter_shape = hints or (None, None)
    y = conv2d(x, w, input_shape=image_shape, filter_shape=filter_shape)
    dx, dw = pytensor.grad(y.sum(), [x, w])
    funcify = {
        numba_conv.ops.AbstractConv: numba_conv.numba_funcify_AbstractConv,
        numba_conv.ops.AbstractConv_gradInputs: numba_conv.numba_funcify_AbstractConv_gradInputs,
        numba_conv.ops.AbstractConv_gradWeights: numba_conv.numba_funcify_AbstractConv_gradWeights,
    }
    for output in (y, dx, dw):
        node = output.owner
        while not isinstance(node.op, tuple(funcify)):  # under a reshape or a flip
            node = node.inputs[0].owner
        [(_, make)] = [(op, make) for op, make in funcify.items() if isinstance(node.op, op)]
        make(node.op, node)
    assert [fetched[d] for d in range(3)] == [(name, hints is not None) for name in expected]  # planned: kept
    if hints:  # the planning rule itself, called with the sizes
        (_, _, h, wd), (m, cg, kh, kw) = image_shape, filter_shape
        out = (1, h - kh + 1, wd - kw + 1)
        one, zero = (1, 1, 1), (0, 0, 0)
        for direction, name in enumerate(expected):
            planned = select.algorithm_name(
                direction, cg, m, 1, (1, kh, kw), one, zero, zero, one, out, in_size=(1, h, wd)
            )
            assert planned == name


def test_a_helper_that_exited_is_replaced_and_its_pipe_closed(coordinator, monkeypatch):
    exited = subprocess.Popen([sys.executable, "-c", "pass"], stdin=subprocess.PIPE)
    exited.wait(timeout=60)
    coordinator.helper = exited
    monkeypatch.setattr(compile_helper, "_start_helper", lambda directory: _Helper())
    coordinator.queue(Task("new", "m", "n", "float64"))
    assert exited.stdin.closed  # not left to the garbage collector (a ResourceWarning)
    assert isinstance(coordinator.helper, _Helper)
