"""Block-sparse kernels against the loops of their definitions written in numpy, and their input checks."""

import numpy as np
import pytest

from pytensor_nnet.kernels.blocksparse import (
    GEMV_LAYOUT,
    PARALLEL_MIN_MACS,
    BlockIndexError,
    BlockShapeError,
    block_gemv,
    block_outer,
    lazy_zeros,
    match_dims,
)
from tests.reference.blocksparse import gemv_ref, outer_ref


def gemv_inputs(rng, batch, i_blocks, o_blocks, i_size, o_size, i_win, o_win, dtype="float64"):
    """Random GEMV inputs ``(o, W, h, inputIdx, outputIdx)``; indices repeat on purpose."""
    return (
        rng.standard_normal((batch, o_win, o_size)).astype(dtype),
        rng.standard_normal((i_blocks, o_blocks, i_size, o_size)).astype(dtype),
        rng.standard_normal((batch, i_win, i_size)).astype(dtype),
        rng.integers(0, i_blocks, (batch, i_win)),
        rng.integers(0, o_blocks, (batch, o_win)),
    )


def outer_inputs(rng, batch, x_blocks, y_blocks, x_size, y_size, x_win, y_win, dtype="float64"):
    """Random outer-product inputs ``(o, x, y, xIdx, yIdx)``."""
    return (
        rng.standard_normal((x_blocks, y_blocks, x_size, y_size)).astype(dtype),
        rng.standard_normal((batch, x_win, x_size)).astype(dtype),
        rng.standard_normal((batch, y_win, y_size)).astype(dtype),
        rng.integers(0, x_blocks, (batch, x_win)),
        rng.integers(0, y_blocks, (batch, y_win)),
    )


# (batch, iBlocks, oBlocks, iSize, oSize, iWin, oWin): general, batch of 1 with a single
# block, windows larger than the number of blocks (forced repeats), sizes of 1, empty batch.
SHAPES = [
    (4, 5, 6, 3, 4, 2, 3),
    (1, 1, 1, 3, 2, 1, 1),
    (3, 2, 2, 2, 5, 4, 3),
    (2, 3, 4, 1, 1, 2, 2),
    (0, 3, 4, 2, 2, 2, 1),
]


# --------------------------------------------------------------------------- GEMV


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gemv_matches_reference(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    o, W, h, ii, oi = gemv_inputs(rng, *shape, dtype=dtype)
    tol = 1e-5 if dtype == "float32" else 1e-12
    out = block_gemv(o, W, h, ii, oi)
    assert out.dtype == dtype and out.shape == o.shape
    np.testing.assert_allclose(out, gemv_ref(o, W, h, ii, oi), rtol=tol, atol=tol)


def test_gemv_reads_every_layout_of_W():
    """C-contiguous W, its transposed view (the gradient wrt h), and arbitrary strides."""
    rng = np.random.default_rng(1)
    o, W, h, ii, oi = gemv_inputs(rng, 3, 4, 5, 3, 2, 2, 3)
    expected = gemv_ref(o, W, h, ii, oi)
    transposed = np.ascontiguousarray(W.transpose(1, 0, 3, 2)).transpose(1, 0, 3, 2)
    strided = np.repeat(W, 2, axis=1)[:, ::2]
    fortran = np.asfortranarray(W)
    for layout in (W, transposed, strided, fortran):
        np.testing.assert_allclose(block_gemv(o, layout, h, ii, oi), expected, rtol=1e-12)


def test_gemv_inplace_writes_into_o_and_copy_does_not():
    rng = np.random.default_rng(2)
    o, W, h, ii, oi = gemv_inputs(rng, 2, 3, 3, 2, 2, 2, 2)
    expected = gemv_ref(o, W, h, ii, oi)
    o_before = o.copy()
    out = block_gemv(o, W, h, ii, oi)
    np.testing.assert_array_equal(o, o_before)
    out_inplace = block_gemv(o, W, h, ii, oi, inplace=True)
    assert np.shares_memory(out_inplace, o)
    np.testing.assert_allclose(o, expected, rtol=1e-12)
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_gemv_threaded_path_matches_reference():
    """Big enough for the threads (PARALLEL_MIN_MACS); repeated blocks across examples."""
    rng = np.random.default_rng(3)
    o, W, h, ii, oi = gemv_inputs(rng, 64, 3, 2, 32, 16, 8, 8)
    assert h.size * oi.shape[1] * W.shape[3] >= PARALLEL_MIN_MACS
    np.testing.assert_allclose(block_gemv(o, W, h, ii, oi), gemv_ref(o, W, h, ii, oi), rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------- outer


@pytest.mark.parametrize("shape", SHAPES)
def test_outer_matches_reference(shape):
    rng = np.random.default_rng(sum(shape) + 1)
    o, x, y, xi, yi = outer_inputs(rng, *shape)
    out = block_outer(o, x, y, xi, yi, alpha=0.5)
    np.testing.assert_allclose(out, outer_ref(o, x, y, xi, yi, 0.5), rtol=1e-12, atol=1e-12)


def test_outer_accumulates_examples_hitting_the_same_block():
    """Every example writes the same block: the sum must hold all of them (no lost updates)."""
    x = np.ones((200, 1, 2))
    y = np.ones((200, 1, 3))
    idx = np.zeros((200, 1), np.int64)
    out = block_outer(np.zeros((2, 2, 2, 3)), x, y, idx, idx)
    np.testing.assert_array_equal(out[0, 0], np.full((2, 3), 200.0))
    assert not out[1:].any() and not out[0, 1:].any()


def test_outer_threaded_path_is_race_free_and_exact():
    """Threaded run with heavy block collisions: same bits as a sequential sum in (b, i, j) order."""
    rng = np.random.default_rng(4)
    o, x, y, xi, yi = outer_inputs(rng, 64, 3, 2, 32, 16, 8, 8)
    assert x.size * yi.shape[1] * y.shape[2] >= PARALLEL_MIN_MACS
    expected = o.copy()
    for b in range(x.shape[0]):
        for i in range(x.shape[1]):
            for j in range(y.shape[1]):
                block = expected[xi[b, i], yi[b, j]]
                for k in range(x.shape[2]):
                    block[k] += (1.5 * x[b, i, k]) * y[b, j]
    for _ in range(3):
        np.testing.assert_allclose(block_outer(o, x, y, xi, yi, alpha=1.5), expected, rtol=1e-13, atol=1e-12)


def test_outer_inplace():
    rng = np.random.default_rng(5)
    o, x, y, xi, yi = outer_inputs(rng, 3, 2, 3, 2, 2, 2, 2)
    expected = outer_ref(o, x, y, xi, yi)
    out = block_outer(o, x, y, xi, yi, inplace=True)
    assert np.shares_memory(out, o)
    np.testing.assert_allclose(o, expected, rtol=1e-12)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "arg, bad, message",
    [
        ("inputIdx", -1, r"inputIdx\[1, 0\] = -1 is not a valid block index: it must be in \[0, 4\)"),
        ("inputIdx", 4, r"inputIdx\[1, 0\] = 4 .* \[0, 4\) \(iBlocks = W.shape\[0\]\)"),
        ("outputIdx", 5, r"outputIdx\[1, 0\] = 5 .* \[0, 5\) \(oBlocks = W.shape\[1\]\)"),
        ("outputIdx", -7, r"outputIdx\[1, 0\] = -7"),
    ],
)
def test_gemv_rejects_out_of_range_indices(arg, bad, message):
    rng = np.random.default_rng(6)
    o, W, h, ii, oi = gemv_inputs(rng, 2, 4, 5, 2, 3, 2, 2)
    (ii if arg == "inputIdx" else oi)[1, 0] = bad
    o_before = o.copy()
    with pytest.raises(BlockIndexError, match=message):
        block_gemv(o, W, h, ii, oi, inplace=True)
    np.testing.assert_array_equal(o, o_before)  # nothing was written


@pytest.mark.parametrize(
    "arg, bad, message",
    [
        ("xIdx", 3, r"xIdx\[1, 0\] = 3 .* \[0, 3\) \(xBlocks = o.shape\[0\]\)"),
        ("yIdx", -1, r"yIdx\[1, 0\] = -1 .* \[0, 2\) \(yBlocks = o.shape\[1\]\)"),
    ],
)
def test_outer_rejects_out_of_range_indices(arg, bad, message):
    rng = np.random.default_rng(7)
    o, x, y, xi, yi = outer_inputs(rng, 2, 3, 2, 2, 2, 2, 2)
    (xi if arg == "xIdx" else yi)[1, 0] = bad
    with pytest.raises(BlockIndexError, match=message):
        block_outer(o, x, y, xi, yi)


def test_uint64_indices_past_int64_are_rejected():
    rng = np.random.default_rng(8)
    o, W, h, ii, oi = gemv_inputs(rng, 1, 2, 2, 2, 2, 1, 1)
    with pytest.raises(BlockIndexError, match="inputIdx"):
        block_gemv(o, W, h, np.array([[2**63 + 1]], np.uint64), oi)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.update(h=a["h"][:, :, :1]), r"W.shape\[2\] is 2 but iSize is 1 \(from h.shape\[2\]\)"),
        (lambda a: a.update(o=a["o"][:, :, :1]), r"W.shape\[3\] is 3 but oSize is 1 \(from o.shape\[2\]\)"),
        (lambda a: a.update(o=a["o"][:1]), r"o.shape\[0\] is 1 but batch is 2 \(from h.shape\[0\]\)"),
        (lambda a: a.update(ii=a["ii"][:, :1]), r"inputIdx.shape\[1\] is 1 but iWin is 2"),
        (lambda a: a.update(oi=a["oi"][:1]), r"outputIdx.shape\[0\] is 1 but batch is 2"),
        (
            lambda a: a.update(oi=a["oi"][:, :1]),
            r"outputIdx.shape\[1\] is 1 but oWin is 2 \(from o.shape\[1\]\)",
        ),
    ],
)
def test_gemv_rejects_mismatched_shapes(change, message):
    rng = np.random.default_rng(9)
    args = dict(zip(["o", "W", "h", "ii", "oi"], gemv_inputs(rng, 2, 4, 5, 2, 3, 2, 2), strict=True))
    change(args)
    with pytest.raises(BlockShapeError, match=message):
        block_gemv(*args.values())


def test_outer_rejects_mismatched_shapes():
    rng = np.random.default_rng(10)
    o, x, y, xi, yi = outer_inputs(rng, 2, 3, 2, 2, 2, 2, 2)
    with pytest.raises(BlockShapeError, match=r"o.shape\[3\] is 2 but ySize is 1 \(from y.shape\[2\]\)"):
        block_outer(o, x, y[:, :, :1], xi, yi)
    with pytest.raises(BlockShapeError, match=r"yIdx.shape\[0\] is 1 but batch is 2"):
        block_outer(o, x, y, xi, yi[:1])


def test_kernel_entry_points_check_dtype_and_ndim():
    rng = np.random.default_rng(11)
    o, W, h, ii, oi = gemv_inputs(rng, 2, 4, 5, 2, 3, 2, 2)
    with pytest.raises(TypeError, match="inputIdx must hold integer block indices, got dtype float64"):
        block_gemv(o, W, h, ii.astype(float), oi)
    with pytest.raises(ValueError, match=r"outputIdx must be a 2-d \(batch, window\) array"):
        block_gemv(o, W, h, ii, oi[0])
    with pytest.raises(ValueError, match=r"W must be a 4-d array \(iBlocks, oBlocks, iSize, oSize\)"):
        block_gemv(o, W[0], h, ii, oi)
    with pytest.raises(TypeError, match="h must be a real floating-point array"):
        block_gemv(o, W, h.astype(int), ii, oi)


def test_match_dims_skips_unknown_sizes_and_names_both_arguments():
    shapes = {"o": (None, 3, 4), "W": (5, 6, None, 4), "h": (2, None, 3)}
    assert match_dims(GEMV_LAYOUT, shapes) == {
        "oWin": 3,
        "oSize": 4,
        "iBlocks": 5,
        "oBlocks": 6,
        "batch": 2,
        "iSize": 3,
    }
    # References come from h and o first, as in the compiled checks.
    with pytest.raises(ValueError, match=r"W.shape\[2\] is 2 but iSize is 3 \(from h.shape\[2\]\)"):
        match_dims(GEMV_LAYOUT, {"W": (5, 6, 2, 4), "h": (2, None, 3)})


def test_lazy_zeros():
    big = lazy_zeros((64, 64, 32, 32), "float32")  # 16 MiB: a lazily zero-filled memory map
    assert big.shape == (64, 64, 32, 32) and big.dtype == np.float32 and big.flags.writeable
    assert not big.any()
    big[3, 4] += 1
    assert big.sum() == 32 * 32
    small = lazy_zeros((2, 3), np.float64)
    assert small.dtype == np.float64 and not small.any()
