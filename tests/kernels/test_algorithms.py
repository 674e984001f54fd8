"""The specialised convolution algorithms (direct: depthwise and single-channel; Winograd)
against the slow reference, and the selection rule of ``kernels.select``."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytensor_nnet.kernels import select
from pytensor_nnet.kernels.conv import conv_forward, conv_grad_inputs, conv_grad_weights
from pytensor_nnet.kernels.winograd import TILE_BLOCK, winograd_forward, winograd_grad_inputs, winograd_grad_weights
from tests.reference.conv import conv_grads_ref, conv_ref


def _check_against_reference(x_shape, w_shape, params, dtype, seed, exclude=None):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    y = conv_forward(x, w, **params, exclude=exclude)
    tol = 2e-4 if dtype == "float32" else 1e-10
    assert y.dtype == dtype
    np.testing.assert_allclose(y, conv_ref(x.astype(float), w.astype(float), **params), rtol=tol, atol=tol)
    gy = rng.standard_normal(y.shape)
    dx_ref, dw_ref = conv_grads_ref(x.astype(float), w.astype(float), gy, **params)
    dx = conv_grad_inputs(w, gy.astype(dtype), x_shape[2:], **params, exclude=exclude)
    dw = conv_grad_weights(x, gy.astype(dtype), w_shape[2:], **params, exclude=exclude)
    assert dx.dtype == dw.dtype == dtype
    np.testing.assert_allclose(dx, dx_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(dw, dw_ref, rtol=tol, atol=tol)


def _one_channel_problem(draw, spatial, kernel, groups, multiplier, **params):
    """A problem with one input channel per group: batch, flip, dtype and seed drawn."""
    return dict(
        x_shape=(draw(st.integers(1, 2)), groups, *spatial),
        w_shape=(groups * multiplier, 1, *kernel),
        params=dict(params, num_groups=groups, filter_flip=draw(st.booleans())),
        dtype=draw(st.sampled_from(["float32", "float64"])),
        seed=draw(st.integers(0, 2**16)),
    )


@st.composite
def one_channel_per_group_problems(draw):
    """Depthwise problems (several groups), and single-channel images with a few filters (the
    forward pass runs them four at a time, then two, then one: 1 to 7 per group take each
    path and their mixes)."""
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 4))
    multiplier = draw(st.integers(1, 7))
    kernel = [draw(st.integers(1, 4)) for _ in range(nd)]
    dilation = [draw(st.integers(1, 2)) for _ in range(nd)]
    subsample = [draw(st.sampled_from([1, 1, 2, 3])) for _ in range(nd)]
    border_mode = draw(
        st.one_of(
            st.sampled_from(["valid", "full", "half"]),
            st.tuples(*[st.tuples(st.integers(0, 3), st.integers(0, 3)) for _ in range(nd)]),
        )
    )
    spatial = [(k - 1) * d + 1 + draw(st.integers(0, 9)) for k, d in zip(kernel, dilation)]
    return _one_channel_problem(
        draw,
        spatial,
        kernel,
        groups,
        multiplier,
        border_mode=border_mode,
        subsample=tuple(subsample),
        filter_dilation=tuple(dilation),
    )


@settings(max_examples=60, deadline=None)
@given(one_channel_per_group_problems())
def test_direct_problems_match_reference(problem):
    _check_against_reference(**problem)


@st.composite
def direct_rows_problems(draw):
    """One-channel-per-group problems whose output keeps the input's width under a filter
    three columns wide (any row padding, dilation and filter height up to three; a depth
    axis of one tap): the forward pass that runs on the input's own rows (``"direct_rows"``)."""
    nd = draw(st.integers(2, 3))
    kh = draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    width = draw(st.integers(2 * dw + 1, 2 * dw + 9))
    height = draw(st.integers(1, 9))
    rows_pad = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    height = max(height, (kh - 1) * dh + 1 - sum(rows_pad))
    spatial, kernel, dilation, border = [height, width], [kh, 3], [dh, dw], [rows_pad, (dw, dw)]
    if nd == 3:
        spatial.insert(0, draw(st.integers(1, 3)))
        kernel.insert(0, 1)
        dilation.insert(0, 1)
        border.insert(0, (draw(st.integers(0, 2)), draw(st.integers(0, 2))))
    groups = draw(st.integers(1, 4))
    multiplier = draw(st.integers(1, 3))
    return _one_channel_problem(
        draw, spatial, kernel, groups, multiplier, border_mode=tuple(border), filter_dilation=tuple(dilation)
    )


def _planned_forward(problem):
    x_shape, w_shape, params = problem["x_shape"], problem["w_shape"], problem["params"]
    nd = len(x_shape) - 2
    border = [(0, 0)] * (3 - nd) + list(params["border_mode"])
    ksize = (1,) * (3 - nd) + tuple(w_shape[2:])
    dilation = (1,) * (3 - nd) + tuple(params["filter_dilation"])
    in_size = (1,) * (3 - nd) + tuple(x_shape[2:])
    out = tuple(i + lo + hi - (k - 1) * d for i, (lo, hi), k, d in zip(in_size, border, ksize, dilation))
    groups = params["num_groups"]
    return select.algorithm_name(
        select.FORWARD,
        1,
        w_shape[0] // groups,
        groups,
        ksize,
        (1, 1, 1),
        tuple(lo for lo, _ in border),
        tuple(hi for _, hi in border),
        dilation,
        out,
        excluded=[],
        in_size=in_size,
    )


@settings(max_examples=60, deadline=None)
@given(direct_rows_problems())
def test_direct_rows_problems_match_reference(problem):
    assert _planned_forward(problem) == "direct_rows"
    _check_against_reference(**problem)


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_direct_rows_forward_reads_only_the_window(value):
    """A non-finite input point reaches exactly the outputs whose window holds it: the reads
    that leave a row on the input's own rows are never summed."""
    x = np.random.default_rng(3).standard_normal((1, 2, 6, 7))
    w = np.random.default_rng(4).standard_normal((2, 1, 3, 3))
    for point in [(0, 0), (2, 0), (2, 6), (5, 6), (0, 6), (5, 0), (3, 3)]:
        xv = x.copy()
        xv[0, 1][point] = value
        params = dict(border_mode="half", num_groups=2)
        y = conv_forward(xv, w, **params)
        expected = conv_ref(xv, w, **params)
        assert np.array_equal(np.isfinite(y), np.isfinite(expected)), point
        np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "x_shape, w_shape, params",
    [
        ((3, 1, 28, 28), (20, 1, 5, 5), {}),  # LeNet's first layer
        ((2, 1, 9, 8), (5, 1, 3, 3), dict(border_mode="half")),
        ((2, 1, 11, 10), (3, 1, 3, 2), dict(border_mode=(2, 1), subsample=(2, 3), filter_dilation=(1, 2))),
        ((2, 1, 5, 6, 7), (4, 1, 2, 3, 3), dict(border_mode="full")),
    ],
)
def test_single_channel_problems_by_direct_and_by_gemm(x_shape, w_shape, params, dtype):
    taps = int(np.prod(w_shape[2:]))
    assert w_shape[0] * taps <= select.DIRECT_MAX_FILTER_TAPS[select.FORWARD]
    _check_against_reference(x_shape, w_shape, params, dtype, seed=11)
    _check_against_reference(x_shape, w_shape, params, dtype, seed=11, exclude="direct")


@pytest.mark.parametrize(
    "x_shape, w_shape, params",
    [
        ((300, 1, 8, 8), (4, 1, 3, 3), {}),  # images stacked in two chunks, the last one partial
        ((300, 1, 7, 6), (5, 1, 3, 2), dict(border_mode="half", filter_dilation=(2, 1))),
        ((40, 1, 3, 5, 4), (3, 1, 2, 3, 3), dict(border_mode="full")),
        ((3, 1, 95, 90), (2, 1, 3, 3), dict(border_mode=(1, 2))),  # a plane larger than a chunk
    ],
)
def test_single_channel_images_stacked_on_one_grid(x_shape, w_shape, params):
    """The direct kernel lays the padded planes of single-channel images one after the other
    and runs one grid over a chunk of them (``STACK_POINTS``): forward and filter gradient,
    several chunks, and a plane too large to share a chunk, against the reference."""
    _check_against_reference(x_shape, w_shape, params, "float64", seed=5)


@st.composite
def winograd_problems(draw):
    groups = draw(st.integers(1, 2))
    cg = draw(st.sampled_from([1, 3, 16]))
    mg = draw(st.sampled_from([1, 2, 16]))
    pads = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(2))
    spatial = [draw(st.integers(1, 22)) for _ in range(2)]  # whole and partial 2x2 and 4x4 tiles
    spatial = [max(s, 3 - p[0] - p[1]) for s, p in zip(spatial, pads)]
    depth = draw(st.sampled_from([(), (draw(st.integers(1, 3)),)]))
    return dict(
        x_shape=(draw(st.integers(1, 3)), cg * groups, *depth, *spatial),
        w_shape=(mg * groups, cg, *([1] if depth else []), 3, 3),
        pads=pads,
        groups=groups,
        tile=draw(st.sampled_from([2, 4])),
        dtype=draw(st.sampled_from(["float32", "float64"])),
        seed=draw(st.integers(0, 2**16)),
    )


#: Tolerance of the Winograd kernels in float32 by tile: F(4x4, 3x3)'s transforms multiply by
#: up to 8 (its rounding error is about 10x that of F(2x2, 3x3)); a wrong coefficient is off
#: by the order of the output itself.
WINOGRAD_FLOAT32_TOL = {2: 2e-4, 4: 1e-3}


@settings(max_examples=80, deadline=None)
@given(winograd_problems())
def test_winograd_matches_reference(problem):
    """The Winograd kernels on both tiles, called directly (the selection would skip the small
    problems and pick the tile by size); the filter gradient has one tile."""
    rng = np.random.default_rng(problem["seed"])
    tile = problem["tile"]
    dtype, groups, pads = problem["dtype"], problem["groups"], problem["pads"]
    x = rng.standard_normal(problem["x_shape"]).astype(dtype)
    w = rng.standard_normal(problem["w_shape"]).astype(dtype)
    border_mode = ((0, 0),) * (x.ndim - 4) + pads
    params = dict(border_mode=border_mode, num_groups=groups, filter_flip=False)
    x5, w5 = x.reshape((x.shape[0], x.shape[1], -1, *x.shape[-2:])), w.reshape((w.shape[0], w.shape[1], 1, 3, 3))
    lo, hi = (0, pads[0][0], pads[1][0]), (0, pads[0][1], pads[1][1])
    y = winograd_forward(x5, w5, lo, hi, groups, tile)
    y_ref = conv_ref(x.astype(float), w.astype(float), **params)
    tol = WINOGRAD_FLOAT32_TOL[tile] if dtype == "float32" else 1e-10
    assert y.dtype == dtype
    np.testing.assert_allclose(y.reshape(y_ref.shape), y_ref, rtol=tol, atol=tol)
    gy = rng.standard_normal(y_ref.shape)
    dx_ref, dw_ref = conv_grads_ref(x.astype(float), w.astype(float), gy, **params)
    dx = winograd_grad_inputs(w5, gy.astype(dtype).reshape(y.shape), lo, hi, groups, tile)
    dw = winograd_grad_weights(x5, gy.astype(dtype).reshape(y.shape), lo, hi, groups)
    assert dx.dtype == dw.dtype == dtype
    np.testing.assert_allclose(dx.reshape(x.shape), dx_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(dw.reshape(w.shape), dw_ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "x_shape, w_shape, params",
    [
        ((2, 16, 9, 8), (16, 16, 3, 3), dict(border_mode="half")),
        ((1, 32, 12, 11), (32, 16, 3, 3), dict(border_mode=((2, 0), (1, 2)), num_groups=2)),
        ((2, 16, 3, 10, 9), (20, 16, 1, 3, 3), dict(border_mode=((0, 0), (1, 1), (0, 2)))),
        ((2, 16, 18, 17), (16, 16, 3, 3), dict(border_mode="half")),  # 4x4 tiles, a partial one
        ((1, 32, 21, 19), (32, 16, 3, 3), dict(border_mode=((0, 2), (1, 0)), num_groups=2)),
    ],
)
def test_selected_winograd_matches_reference(x_shape, w_shape, params, dtype):
    """Problems the selection sends to Winograd, through the wrappers; then without the large
    tiles and without Winograd."""
    _check_against_reference(x_shape, w_shape, params, dtype, seed=3)
    _check_against_reference(x_shape, w_shape, params, dtype, seed=3, exclude="winograd4x4")
    _check_against_reference(x_shape, w_shape, params, dtype, seed=3, exclude="winograd")


@pytest.mark.parametrize(
    "out_h, out_w, excluded, tile",
    [
        (56, 56, (), 4),  # resnet 3x3
        (32, 32, (), 4),  # strided_dil after the strided reduction
        (16, 16, (), 4),
        (15, 56, (), 2),
        (56, 15, (), 2),
        (9, 8, (), 2),
        (56, 56, ("winograd4x4",), 2),
    ],
)
def test_winograd_tile_rule(out_h, out_w, excluded, tile):
    assert select.WINOGRAD_LARGE_TILE_MIN_SIDE == 16
    assert select.winograd_tile(out_h, out_w, select.excluded_mask(excluded)) == tile


def test_winograd_tiles_agree_with_each_other():
    """Both tiles on one problem with partial tiles on both sides: the same correlation."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 16, 1, 23, 18))
    w = rng.standard_normal((8, 16, 1, 3, 3))
    lo, hi = (0, 1, 0), (0, 2, 1)
    small, large = winograd_forward(x, w, lo, hi, 1, 2), winograd_forward(x, w, lo, hi, 1, 4)
    assert small.shape == large.shape == (2, 8, 1, 24, 17)
    np.testing.assert_allclose(large, small, rtol=1e-11, atol=1e-11)
    gy = rng.standard_normal(small.shape)
    dx_small, dx_large = winograd_grad_inputs(w, gy, lo, hi, 1, 2), winograd_grad_inputs(w, gy, lo, hi, 1, 4)
    np.testing.assert_allclose(dx_large, dx_small, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("tile", [2, 4])
def test_winograd_planes_of_several_tile_blocks(tile):
    """A plane of more than ``TILE_BLOCK`` tiles runs in blocks of tile rows (the last one
    partial): the forward pass and the input gradient against the reference."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 16, 1, 130, 133))
    w = rng.standard_normal((8, 16, 1, 3, 3))
    lo, hi = (0, 1, 1), (0, 1, 1)
    tiles = -(-130 // tile) * -(-133 // tile)
    assert tiles > TILE_BLOCK and tiles % (TILE_BLOCK // -(-133 // tile) * -(-133 // tile)) != 0
    params = dict(border_mode=((1, 1), (1, 1)), filter_flip=False)
    x4, w4 = x[:, :, 0], w[:, :, 0]
    y = winograd_forward(x, w, lo, hi, 1, tile)
    y_ref = conv_ref(x4, w4, **params)
    np.testing.assert_allclose(y[:, :, 0], y_ref, rtol=1e-10, atol=1e-10)
    gy = rng.standard_normal(y.shape)
    dx_ref, _ = conv_grads_ref(x4, w4, gy[:, :, 0], **params)
    np.testing.assert_allclose(winograd_grad_inputs(w, gy, lo, hi, 1, tile)[:, :, 0], dx_ref, rtol=1e-10, atol=1e-10)


def _choice(
    direction, Cg, Mg, groups, ksize, stride=(1, 1, 1), pad=(0, 1, 1), dilation=(1, 1, 1), out=(1, 28, 28), **kw
):
    return select.algorithm_name(direction, Cg, Mg, groups, ksize, stride, pad, pad, dilation, out, **kw)


@pytest.mark.parametrize(
    "args, expected",
    [
        ((select.FORWARD, 64, 64, 1, (1, 3, 3)), "winograd"),  # resnet 3x3
        ((select.GRAD_INPUTS, 64, 64, 1, (1, 3, 3)), "winograd"),
        ((select.GRAD_WEIGHTS, 64, 64, 1, (1, 3, 3)), "winograd"),
        ((select.FORWARD, 1, 1, 128, (1, 3, 3)), "direct_rows"),  # depthwise, output as wide as input
        ((select.FORWARD, 1, 1, 128, (1, 3, 3), (1, 1, 1), (0, 0, 0), (1, 1, 1), (1, 26, 26)), "direct"),  # valid
        ((select.FORWARD, 1, 1, 128, (1, 3, 3), (1, 1, 1), (0, 2, 2), (1, 2, 2)), "direct_rows"),  # dilated
        ((select.FORWARD, 1, 1, 128, (1, 3, 3), (1, 2, 2)), "direct"),  # strided
        ((select.FORWARD, 1, 1, 128, (1, 5, 5), (1, 1, 1), (0, 2, 2)), "direct"),  # five columns
        ((select.FORWARD, 1, 1, 128, (1, 5, 3)), "direct"),  # five rows
        ((select.FORWARD, 1, 1, 128, (3, 3, 3), (1, 1, 1), (1, 1, 1)), "direct"),  # three depth taps
        ((select.FORWARD, 1, 8, 1, (1, 3, 3)), "direct_rows"),  # one channel, a few filters
        ((select.GRAD_INPUTS, 1, 2, 128, (1, 3, 3)), "direct"),
        ((select.GRAD_WEIGHTS, 1, 1, 128, (1, 3, 3)), "direct"),
        ((select.FORWARD, 8, 64, 1, (1, 3, 3)), "gemm"),  # too few input channels
        ((select.FORWARD, 64, 64, 1, (1, 3, 3), (1, 1, 1), (0, 1, 1), (1, 1, 1), (1, 7, 7)), "gemm"),  # small
        ((select.FORWARD, 64, 64, 1, (1, 3, 3), (1, 2, 2)), "gemm"),  # strided
        ((select.FORWARD, 64, 64, 1, (1, 3, 3), (1, 1, 1), (0, 1, 1), (1, 2, 2)), "gemm"),  # dilated
        ((select.FORWARD, 64, 64, 1, (1, 3, 3), (1, 1, 1), (0, 3, 3)), "gemm"),  # pad > 2
        ((select.FORWARD, 64, 64, 1, (3, 3, 3)), "gemm"),  # 3-d window
        ((select.FORWARD, 64, 64, 1, (1, 5, 5)), "gemm"),
        ((select.FORWARD, 1, 20, 1, (1, 5, 5)), "direct"),  # lenet: few filters, one channel
        ((select.GRAD_WEIGHTS, 1, 20, 1, (1, 5, 5)), "direct"),
        ((select.GRAD_INPUTS, 1, 20, 1, (1, 5, 5)), "gemm"),
        ((select.FORWARD, 1, 64, 1, (1, 3, 3)), "gemm"),  # one channel, many filters
        ((select.GRAD_WEIGHTS, 1, 64, 1, (1, 3, 3)), "direct"),
        ((select.GRAD_WEIGHTS, 1, 32, 1, (1, 7, 7)), "gemm"),
        ((select.FORWARD, 2, 20, 1, (1, 5, 5)), "gemm"),
        ((select.FORWARD, 256, 256, 1, (1, 1, 1), (1, 1, 1), (0, 0, 0)), "pointwise"),
        ((select.GRAD_INPUTS, 256, 256, 1, (1, 1, 1), (1, 1, 1), (0, 0, 0)), "pointwise"),
        ((select.GRAD_WEIGHTS, 64, 32, 4, (1, 1, 1), (1, 1, 1), (0, 0, 0)), "pointwise"),  # groups
        ((select.FORWARD, 256, 256, 1, (1, 1, 1), (1, 1, 1), (0, 1, 1)), "gemm"),  # padded
        ((select.FORWARD, 256, 256, 1, (1, 1, 1), (1, 2, 2), (0, 0, 0)), "gemm"),  # strided, not reduced
        ((select.FORWARD, 256, 256, 1, (1, 1, 3), (1, 1, 1), (0, 0, 0)), "gemm"),  # 1x3
        ((select.FORWARD, 1, 8, 1, (1, 1, 1), (1, 1, 1), (0, 0, 0)), "direct"),  # one channel
    ],
)
def test_selection_rule(args, expected):
    assert _choice(*args, excluded=()) == expected


def test_exclusion_by_argument_and_environment(monkeypatch):
    resnet = (select.FORWARD, 64, 64, 1, (1, 3, 3))
    depthwise = (select.FORWARD, 1, 1, 128, (1, 3, 3))
    assert _choice(*resnet, excluded="winograd") == "gemm"
    assert _choice(*depthwise, excluded=["direct"]) == "gemm"
    assert _choice(*depthwise, excluded=["direct_rows"]) == "direct"
    pointwise = (select.FORWARD, 256, 256, 1, (1, 1, 1), (1, 1, 1), (0, 0, 0))
    assert _choice(*pointwise, excluded=["pointwise"]) == "gemm"
    monkeypatch.setenv(select.EXCLUDE_VAR, "winograd, direct")
    assert select.excluded_mask() == (1 << select.WINOGRAD) | (1 << select.DIRECT)
    assert _choice(*resnet) == "gemm"
    assert _choice(*depthwise) == "gemm"
    monkeypatch.setenv(select.EXCLUDE_VAR, "")
    assert _choice(*resnet) == "winograd"


@pytest.mark.parametrize("names, match", [("fft", "unknown"), ("gemm", "cannot be excluded")])
def test_exclusion_errors(names, match):
    with pytest.raises(ValueError, match=match):
        select.excluded_mask(names)


@st.composite
def pointwise_problems(draw):
    """1x1 filters in 1-3 spatial dims: at stride 1, or strided (the reduction makes them
    stride 1), over groups, with an odd batch and channel counts."""
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    Cg, Mg = draw(st.integers(2, 5)), draw(st.integers(1, 5))
    subsample = tuple(draw(st.sampled_from([1, 1, 2, 3])) for _ in range(nd))
    spatial = tuple(draw(st.integers(1, 9)) for _ in range(nd))
    return dict(
        x_shape=(draw(st.integers(1, 3)), groups * Cg, *spatial),
        w_shape=(groups * Mg, Cg, *(1,) * nd),
        params=dict(subsample=subsample, num_groups=groups, filter_flip=draw(st.booleans())),
        dtype=draw(st.sampled_from(["float32", "float64"])),
        seed=draw(st.integers(0, 2**16)),
    )


@settings(max_examples=40, deadline=None)
@given(pointwise_problems())
def test_pointwise_problems_match_reference(problem):
    """Planned ``pointwise`` (subsampled when strided) in every direction; the same problem
    with ``pointwise`` excluded runs through im2col + GEMM, and both match the reference."""
    nd = len(problem["x_shape"]) - 2
    x_shape, stride = problem["x_shape"], problem["params"]["subsample"]
    in_size = (1,) * (3 - nd) + x_shape[2:]
    stride3 = (1,) * (3 - nd) + stride
    out = tuple((i - 1) // s + 1 for i, s in zip(in_size, stride3))
    groups = problem["params"]["num_groups"]
    Cg, Mg = problem["w_shape"][1], problem["w_shape"][0] // groups
    zero = (0, 0, 0)
    for direction in (select.FORWARD, select.GRAD_INPUTS, select.GRAD_WEIGHTS):
        args = (direction, Cg, Mg, groups, (1, 1, 1), stride3, zero, zero, (1, 1, 1), out)
        name = select.algorithm_name(*args, excluded=(), in_size=in_size)
        assert name == ("subsampled pointwise" if max(stride3) > 1 else "pointwise")
    _check_against_reference(**problem)
    _check_against_reference(**problem, exclude="pointwise")


def test_depthwise_runs_through_gemm_when_direct_is_excluded():
    _check_against_reference((2, 3, 7, 6), (6, 1, 3, 2), dict(border_mode="half", num_groups=3), "float64", 5, "direct")


@st.composite
def strided_problems(draw):
    """Strides whose axes have a dilation that is a multiple of the stride, or one tap."""
    nd = draw(st.integers(1, 3))
    subsample, dilation, kernel = [], [], []
    for _ in range(nd):
        s = draw(st.integers(1, 3))
        k = draw(st.integers(1, 3))
        subsample.append(s)
        kernel.append(k)
        dilation.append(draw(st.sampled_from([1, 2])) * (s if k > 1 else draw(st.integers(1, 2))))
    groups = draw(st.integers(1, 2))
    spatial = [(k - 1) * d + 1 + draw(st.integers(0, 8)) for k, d in zip(kernel, dilation)]
    cg = draw(st.sampled_from([1, 2, 16]))
    pads = st.tuples(*[st.tuples(st.integers(0, 4), st.integers(0, 4)) for _ in range(nd)])
    return dict(
        x_shape=(draw(st.integers(1, 2)), groups * cg, *spatial),
        w_shape=(groups * draw(st.integers(1, 3)), cg, *kernel),
        params={
            "border_mode": draw(st.one_of(st.sampled_from(["valid", "full", "half"]), pads)),
            "subsample": tuple(subsample),
            "filter_dilation": tuple(dilation),
            "num_groups": groups,
            "filter_flip": draw(st.booleans()),
        },
        dtype=draw(st.sampled_from(["float32", "float64"])),
        seed=draw(st.integers(0, 2**16)),
    )


@settings(max_examples=60, deadline=None)
@given(strided_problems())
def test_strided_problems_reduced_to_stride_one_match_reference(problem):
    _check_against_reference(**problem)
    _check_against_reference(**problem, exclude="subsample")


@pytest.mark.parametrize(
    "in_size, ksize, stride, pad, dilation, expected",
    [
        ((1, 64, 64), (1, 3, 3), (1, 2, 2), (0, 2, 2), (1, 2, 2), "subsampled winograd"),  # strided_dil
        ((1, 56, 56), (1, 1, 1), (1, 2, 2), (0, 0, 0), (1, 1, 1), "subsampled pointwise"),  # ResNet shortcut
        ((1, 56, 56), (1, 3, 3), (1, 2, 2), (0, 1, 1), (1, 1, 1), "gemm"),  # plain stride 2
        ((1, 56, 56), (1, 3, 3), (1, 1, 1), (0, 1, 1), (1, 1, 1), "winograd"),
    ],
)
def test_selection_after_the_strided_reduction(in_size, ksize, stride, pad, dilation, expected):
    out = tuple((i + 2 * p - d * (k - 1) - 1) // s + 1 for i, k, s, p, d in zip(in_size, ksize, stride, pad, dilation))
    args = (select.FORWARD, 32, 64, 1, ksize, stride, pad, pad, dilation, out)
    assert select.algorithm_name(*args, excluded=(), in_size=in_size) == expected
    without = "gemm" if expected.startswith("subsampled") else expected
    assert select.algorithm_name(*args, excluded=("subsample",), in_size=in_size) == without


@st.composite
def planning_problems(draw):
    """Arguments of ``select.plan`` for the problems the rules tell apart: one or many
    channels, depthwise groups, 3x3 windows, strides and dilations that do or do not reduce."""
    ksize = (draw(st.integers(1, 2)), *(draw(st.sampled_from([1, 2, 3, 5])) for _ in range(2)))
    stride = tuple(draw(st.sampled_from([1, 1, 2, 3])) for _ in range(3))
    dilation = tuple(draw(st.sampled_from([1, 2, 4])) for _ in range(3))
    pad_lo = tuple(draw(st.integers(0, 3)) for _ in range(3))
    pad_hi = tuple(draw(st.integers(0, 3)) for _ in range(3))
    if draw(st.booleans()):  # a 3x3 window over a plane (the Winograd rule's problems, some strided)
        plane_stride, plane_dilation = draw(st.sampled_from([1, 1, 2])), draw(st.sampled_from([1, 1, 2]))
        ksize, stride, dilation = (1, 3, 3), (1, plane_stride, plane_stride), (1, plane_dilation, plane_dilation)
        pad_lo, pad_hi = ((0, min(p[1], 2), min(p[2], 2)) for p in (pad_lo, pad_hi))
    in_size = tuple((k - 1) * d + 1 + draw(st.integers(0, 40)) for k, d in zip(ksize, dilation))
    out = tuple(
        (i + lo + hi - d * (k - 1) - 1) // s + 1
        for i, lo, hi, k, d, s in zip(in_size, pad_lo, pad_hi, ksize, dilation, stride)
    )
    groups = draw(st.sampled_from([1, 1, 4]))
    Cg, Mg = draw(st.sampled_from([1, 3, 16, 32])), draw(st.sampled_from([1, 8, 16, 64]))
    excluded = draw(
        st.sampled_from([0, 1 << select.DIRECT, 1 << select.SUBSAMPLE, 1 << select.WINOGRAD, 1 << select.POINTWISE])
    )
    direction = draw(st.sampled_from([select.FORWARD, select.GRAD_INPUTS, select.GRAD_WEIGHTS]))
    return (direction, in_size, Cg, Mg, groups, ksize, stride, pad_lo, pad_hi, dilation, out, excluded)


def _as_ints(value):
    return tuple(_as_ints(v) for v in value) if isinstance(value, tuple) else int(value)


@settings(max_examples=150, deadline=None)
@given(planning_problems())
def test_the_plan_in_python_is_the_compiled_plan(args):
    """A graph's build predicts the entry a call will plan with the Python rule: it must
    plan what the kernels' compiled rule plans."""
    assert _as_ints(select.plan_rule(*args)) == _as_ints(select.plan(*args))
