"""The kernels' workspaces: pieces, claims, growth, release, and no page faults per call."""

from __future__ import annotations

import ctypes
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

from pytensor_nnet.kernels import workspace
from pytensor_nnet.kernels.jit import typed_pointer

pytestmark = pytest.mark.skipif(not workspace.AVAILABLE, reason="no malloc in the C library")


@numba.njit
def _claim_and_fill(sizes, like):
    """Claim a workspace, take one piece per size (the last zero-filled: its sum before the
    writes is the last of ``sums``' row 0), write i into item i of each; returns the claimed
    slot, each piece's address and sum."""
    claim = workspace.begin()
    addresses = np.zeros(sizes.shape[0], dtype=np.int64)
    sums = np.zeros((2, sizes.shape[0]))
    for k in range(sizes.shape[0]):
        last = k == sizes.shape[0] - 1
        dtype = like.dtype
        piece = workspace.take_zeros(claim, sizes[k], dtype) if last else workspace.take(claim, sizes[k], dtype)
        if last:
            sums[0, k] = piece.sum()
        for i in range(sizes[k]):
            piece[i] = i
        addresses[k] = piece.ctypes.data
    # Every piece still holds what was written into it (none overlaps another).
    for k in range(sizes.shape[0]):
        piece = numba.carray(typed_pointer(addresses[k], like.dtype), (sizes[k],))
        sums[1, k] = piece.sum() if sizes[k] > 0 else 0.0
    workspace.end(claim)
    return claim, addresses, sums


@numba.njit
def _hold(count):
    """Claim ``count`` workspaces at once; returns the claims (``NO_WORKSPACE``: none free)."""
    claims = np.empty(count, dtype=np.int64)
    for k in range(count):
        claims[k] = workspace.begin()
    slots = claims.copy()
    for k in range(count):
        workspace.end(claims[k])
    return slots


@numba.njit
def _take_without_memory(count, like):
    """Fill every workspace's claim, then take a piece with none left; returns its sum."""
    claims = np.empty(workspace.SLOTS, dtype=np.int64)
    for k in range(workspace.SLOTS):
        claims[k] = workspace.begin()
    claim = workspace.begin()
    piece = workspace.take_zeros(claim, count, like.dtype)
    for i in range(count):
        piece[i] += 1
    total = piece.sum()
    workspace.end(claim)
    for k in range(workspace.SLOTS):
        workspace.end(claims[k])
    return claim, total


@pytest.fixture(autouse=True)
def _released():
    workspace.release()
    yield
    workspace.release()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pieces_are_aligned_disjoint_and_grow_the_workspace(dtype):
    sizes = np.array([1000, 3, 0, 77, 500], dtype=np.int64)
    like = np.zeros(1, dtype=dtype)
    expected = [n * (n - 1) / 2 for n in sizes]
    slot, _, sums = _claim_and_fill(sizes, like)
    assert slot == 0 and list(sums[1]) == expected and sums[0, -1] == 0
    held = workspace.held_bytes()
    itemsize = like.itemsize
    assert held == sum(-(-int(n) * itemsize // workspace.ALIGN) * workspace.ALIGN for n in sizes)
    # The second claim fits: its pieces lie in the workspace, in order, aligned, apart.
    slot, second, sums = _claim_and_fill(sizes, like)
    assert slot == 0 and list(sums[1]) == expected and sums[0, -1] == 0 and workspace.held_bytes() == held
    taken = [(a, int(n) * itemsize) for a, n in zip(second, sizes, strict=True) if n > 0]
    assert all(a % workspace.ALIGN == 0 for a, _ in taken)
    assert all(a0 + n0 <= a1 for (a0, n0), (a1, _) in zip(taken, taken[1:], strict=False))
    assert taken[-1][0] + taken[-1][1] - taken[0][0] <= held
    # A larger claim allocates what does not fit, then grows the workspace.
    slot, _, sums = _claim_and_fill(2 * sizes, like)
    assert list(sums[1]) == [n * (n - 1) / 2 for n in 2 * sizes]
    assert workspace.held_bytes() > held


def test_claims_at_once_get_their_own_workspaces():
    assert list(_hold(3)) == [0, 1, 2]
    slots = _hold(workspace.SLOTS + 2)
    assert sorted(slots[: workspace.SLOTS]) == list(range(workspace.SLOTS))
    assert list(slots[workspace.SLOTS :]) == [workspace.NO_WORKSPACE] * 2


def test_a_claim_without_a_workspace_allocates():
    slot, total = _take_without_memory(1000, np.zeros(1))
    assert slot == workspace.NO_WORKSPACE and total == 1000
    # Every claim ended: the workspaces are free again.
    assert list(_hold(2)) == [0, 1]


def test_release_frees_the_idle_workspaces():
    _claim_and_fill(np.array([10_000], dtype=np.int64), np.zeros(1))
    held = workspace.held_bytes()
    assert held >= 80_000
    assert workspace.release() == held
    assert workspace.held_bytes() == 0


_FAULTS_SCRIPT = textwrap.dedent(
    """
    import ctypes, resource, sys
    import numpy as np
    libc = ctypes.CDLL(None)
    # glibc: every block over 64 KiB from mmap, freed blocks back to the system at once.
    assert libc.mallopt(-3, 65536) == 1 and libc.mallopt(-1, 131072) == 1
    from pytensor_nnet.dispatch.numba import workers
    from pytensor_nnet.kernels import corr
    direction = sys.argv[1]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 32, 64, 64)).astype(np.float32).reshape(4, 32, 1, 64, 64)
    w = rng.standard_normal((64, 32, 1, 3, 3)).astype(np.float32)
    geometry = ((1, 2, 2), (0, 2, 2), (0, 2, 2), (1, 2, 2))
    y = corr.corr_forward(x, w, *geometry, 1, 1 << 24)
    def call():
        if direction == "forward":
            return corr.corr_forward(x, w, *geometry, 1, 1 << 24)
        if direction == "grad_inputs":
            return corr.corr_grad_inputs(w, y, (1, 64, 64), *geometry, 1, 1 << 24)
        return corr.corr_grad_weights(x, y, (1, 3, 3), *geometry, 1, 1 << 24)
    with workers.forced_parts(1):
        result = call()
        call()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(10):
            call()
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10
    print(faults, result.nbytes)
    """
)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(ctypes.CDLL(None), "mallopt"), reason="glibc only"
)
@pytest.mark.parametrize("direction", ["forward", "grad_inputs", "grad_weights"])
def test_a_strided_convolution_faults_only_for_its_result(direction):
    """With ``malloc`` mapping fresh pages for every block over 64 KiB (the state a process can
    end up in by itself), a strided 3x3 convolution's calls fault on the pages of their
    result, not on those of their scratch (the subsampled images, the Winograd planes and
    tiles: about as many again)."""
    run = subprocess.run(
        [sys.executable, "-c", _FAULTS_SCRIPT, direction], capture_output=True, text=True, check=True, timeout=600
    )
    faults, result_bytes = (float(v) for v in run.stdout.split())
    assert faults <= result_bytes / 4096 + 64, run.stdout
