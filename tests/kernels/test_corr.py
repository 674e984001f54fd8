"""The compiled N-d kernels against the slow reference, over the whole parameter space."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytensor_nnet.kernels.conv import conv_forward, conv_grad_inputs, conv_grad_weights
from pytensor_nnet.kernels.im2col import as_3d_array, col2im_add, im2col_into
from tests.reference.conv import conv_grads_ref, conv_ref


@st.composite
def conv_problems(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 2, 3]))
    cg = draw(st.integers(1, 2))
    mg = draw(st.integers(1, 2))
    kernel = [draw(st.integers(1, 3)) for _ in range(nd)]
    dilation = [draw(st.integers(1, 2)) for _ in range(nd)]
    subsample = [draw(st.integers(1, 3)) for _ in range(nd)]
    mode = draw(st.sampled_from(["valid", "full", "half", "int", "pairs"]))
    if mode == "int":
        border_mode = draw(st.integers(0, 2))
    elif mode == "pairs":
        border_mode = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
    else:
        border_mode = mode
    spatial = [(k - 1) * d + 1 + draw(st.integers(0, 4)) for k, d in zip(kernel, dilation)]
    batch = draw(st.integers(1, 3))
    return dict(
        x_shape=(batch, cg * groups, *spatial),
        w_shape=(mg * groups, cg, *kernel),
        params=dict(
            border_mode=border_mode,
            subsample=tuple(subsample),
            filter_dilation=tuple(dilation),
            num_groups=groups,
            filter_flip=draw(st.booleans()),
        ),
        buffer_bytes=draw(st.sampled_from([1, 10_000, 64 * 2**20])),
        dtype=draw(st.sampled_from(["float32", "float64"])),
        seed=draw(st.integers(0, 2**16)),
    )


@settings(max_examples=60, deadline=None)
@given(conv_problems())
def test_kernels_match_reference(problem):
    rng = np.random.default_rng(problem["seed"])
    dtype = problem["dtype"]
    x = rng.standard_normal(problem["x_shape"]).astype(dtype)
    w = rng.standard_normal(problem["w_shape"]).astype(dtype)
    params = problem["params"]
    buffer_bytes = problem["buffer_bytes"]
    y_ref = conv_ref(x.astype(float), w.astype(float), **params)
    y = conv_forward(x, w, **params, buffer_bytes=buffer_bytes)
    tol = 1e-4 if dtype == "float32" else 1e-10
    assert y.dtype == dtype
    np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol)
    gy = rng.standard_normal(y.shape)
    dx_ref, dw_ref = conv_grads_ref(x.astype(float), w.astype(float), gy, **params)
    dx = conv_grad_inputs(w, gy.astype(dtype), x.shape[2:], **params, buffer_bytes=buffer_bytes)
    dw = conv_grad_weights(x, gy.astype(dtype), w.shape[2:], **params, buffer_bytes=buffer_bytes)
    np.testing.assert_allclose(dx, dx_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(dw, dw_ref, rtol=tol, atol=tol)


def test_im2col_col2im_are_adjoint():
    rng = np.random.default_rng(0)
    img = rng.standard_normal((3, 4, 5, 6))
    geometry = dict(ksize=(2, 3, 2), stride=(1, 2, 2), pad=(1, 0, 1), dilation=(2, 1, 1), out=(3, 2, 3))
    rows, ncols = 3 * 2 * 3 * 2, 2 + 3 * 2 * 3
    cols = np.full((rows, ncols), np.nan)
    im2col_into(img, cols, 2, *geometry.values())
    assert np.isnan(cols[:, :2]).all() and not np.isnan(cols[:, 2:]).any()
    probe = rng.standard_normal((rows, ncols))
    back = np.zeros_like(img)
    col2im_add(probe, 2, back, *geometry.values())
    # <im2col(img), probe> == <img, col2im(probe)>
    np.testing.assert_allclose(np.sum(cols[:, 2:] * probe[:, 2:]), np.sum(img * back))


def test_pointwise_fast_path_and_chunking_agree_with_general_path():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 6, 4, 3))
    w = rng.standard_normal((4, 3, 1, 1))
    y_fast = conv_forward(x, w, num_groups=2)
    y_general = conv_forward(x, w, border_mode=((0, 0), (0, 1)), num_groups=2)[..., :3]
    np.testing.assert_allclose(y_fast, y_general)
    np.testing.assert_allclose(y_fast, conv_forward(x, w, num_groups=2, exclude="pointwise"))
    chunked = conv_forward(x, w, 1, num_groups=2, buffer_bytes=1)  # one image per chunk
    np.testing.assert_allclose(chunked, conv_forward(x, w, 1, num_groups=2))


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs, match",
    [
        ((2, 4, 5, 5), (3, 3, 2, 2), {}, "input channels"),
        ((2, 4, 5, 5), (3, 2, 2, 2), {"num_groups": 2}, "divide the number of filters"),
        ((2, 4, 3, 3), (4, 4, 5, 1), {}, "larger than the padded input"),
        ((2, 4, 3, 3), (4, 4, 1, 1), {"subsample": (0, 1)}, "subsample"),
        ((2, 4, 3, 3), (4, 4, 1, 1), {"filter_dilation": (1, 0)}, "filter_dilation"),
    ],
)
def test_kernel_errors(x_shape, w_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        conv_forward(np.zeros(x_shape), np.zeros(w_shape), **kwargs)


def test_grad_kernels_check_shapes_before_touching_memory():
    w = np.zeros((4, 2, 3, 3))
    with pytest.raises(ValueError, match="does not match"):
        conv_grad_inputs(w, np.zeros((2, 4, 6, 6)), (7, 7))
    with pytest.raises(ValueError, match="top.shape\\[1\\] = 3"):
        conv_grad_inputs(w, np.zeros((2, 3, 6, 6)), (8, 8))
    with pytest.raises(ValueError, match="does not match"):
        conv_grad_weights(np.zeros((2, 2, 8, 8)), np.zeros((2, 4, 6, 6)), (2, 2))
    with pytest.raises(ValueError, match="batch size"):
        conv_grad_weights(np.zeros((3, 2, 8, 8)), np.zeros((2, 4, 6, 6)), (3, 3))


def test_as_3d_array_is_a_view_for_contiguous_input():
    x = np.zeros((2, 3, 4, 5))
    assert as_3d_array(x, 2).shape == (2, 3, 1, 4, 5)
    assert np.shares_memory(as_3d_array(x, 2), x)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "x_shape, w_shape, params",
    [
        ((2, 3, 7, 6), (6, 1, 3, 2), dict(border_mode="half", num_groups=3)),  # depthwise, multiplier 2
        (
            (2, 4, 9, 8),
            (4, 1, 3, 3),
            dict(border_mode=((2, 0), 1), subsample=(2, 3), filter_dilation=(2, 1), num_groups=4),
        ),
        ((1, 2, 4, 5, 6), (2, 1, 2, 3, 2), dict(border_mode="full", subsample=(1, 1, 2), num_groups=2)),
    ],
)
def test_direct_depthwise_path(x_shape, w_shape, params, dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    y = conv_forward(x, w, **params)
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(y, conv_ref(x.astype(float), w.astype(float), **params), rtol=tol, atol=tol)
    gy = rng.standard_normal(y.shape)
    dx_ref, dw_ref = conv_grads_ref(x.astype(float), w.astype(float), gy, **params)
    np.testing.assert_allclose(conv_grad_inputs(w, gy.astype(dtype), x_shape[2:], **params), dx_ref, rtol=tol, atol=tol)
    dw = conv_grad_weights(x, gy.astype(dtype), w_shape[2:], **params)
    np.testing.assert_allclose(dw, dw_ref, rtol=tol, atol=tol)
