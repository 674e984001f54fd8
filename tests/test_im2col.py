"""The im2col / col2im toolkit and the Im2Col / Col2Im Ops: references, the legacy pooling
fixtures, hand-written CS231n-style backprop snippets run on the toolkit (where right, and where not)."""

import json
import os
import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad

from pytensor_nnet.im2col import (
    Col2Im,
    Im2Col,
    avg_pool_backward_im2col,
    avg_pool_forward_im2col,
    col2im,
    conv_backward_im2col,
    conv_forward_im2col,
    im2col,
    im2col_output_shape,
    max_pool_backward_im2col,
    max_pool_forward_im2col,
)
from tests.backends import EVERY_BACKEND, PY_MODE, backend_params
from tests.reference.conv import conv_grads_ref, conv_ref
from tests.reference.pool import im2col_ref, pool_grad_ref, pool_ref

GOLDEN = os.path.join(os.path.dirname(__file__), "data", "pool_golden.npz")
# (x shape, kernel, stride, pad (before, after) pairs, dilation): 1d, 2d, 3d; overlapping,
# non-square, non-tiling, asymmetric padding, dilation
GEOMETRIES = [
    ((2, 4, 9), (3,), (2,), ((1, 2),), (1,)),
    ((3, 2, 7, 6), (3, 2), (2, 1), ((1, 1), (0, 2)), (1, 2)),
    ((2, 2, 5, 7), (2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1)),
    ((2, 2, 4, 5, 4), (2, 3, 1), (1, 2, 2), ((1, 0), (1, 1), (0, 1)), (2, 1, 1)),
]


def _rng(seed=0):
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- im2col / col2im
@pytest.mark.parametrize("shape, kernel, stride, pad, dilation", GEOMETRIES)
def test_im2col_layout_and_col2im_adjoint(shape, kernel, stride, pad, dilation):
    rng = _rng()
    x = rng.standard_normal(shape)
    cols = im2col(x, kernel, stride, pad, dilation)
    np.testing.assert_array_equal(cols, im2col_ref(x, kernel, stride, pad, dilation))
    assert cols.shape == im2col_output_shape(shape, kernel, stride, pad, dilation)
    c = rng.standard_normal(cols.shape)
    back = col2im(c, shape, kernel, stride, pad, dilation)
    assert back.shape == shape
    np.testing.assert_allclose(np.vdot(cols, c), np.vdot(x, back), rtol=1e-12)  # <Ax, c> = <x, A^T c>
    # col2im also equals the transposed matrix of im2col, built column by column
    basis = np.eye(x.size).reshape((x.size,) + shape)
    matrix = np.stack([im2col(b, kernel, stride, pad, dilation).ravel() for b in basis[:: max(1, x.size // 40)]])
    np.testing.assert_allclose(matrix @ c.ravel(), back.ravel()[:: max(1, x.size // 40)], atol=1e-12)


def test_im2col_float32_int_and_non_contiguous_inputs():
    """Any dtype is kept; strided (non-contiguous) views work."""
    x = _rng().standard_normal((3, 2, 6, 5)).astype("float32")[:, :, ::-1]
    np.testing.assert_array_equal(
        im2col(x, (2, 2), 1, 1), im2col_ref(np.ascontiguousarray(x), (2, 2), (1, 1), ((1, 1), (1, 1)), (1, 1))
    )
    xi = np.arange(24).reshape(1, 2, 3, 4)
    cols = im2col(xi, 2)
    assert cols.dtype == xi.dtype
    np.testing.assert_array_equal(cols, im2col_ref(xi, (2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1)))


# ----------------------------------------------------------------------------- layers
@pytest.mark.parametrize("shape, kernel, stride, pad, dilation", GEOMETRIES)
@pytest.mark.parametrize("groups", [1, 2])
def test_conv_layer_forward_backward_against_reference(shape, kernel, stride, pad, dilation, groups):
    rng = _rng(1)
    N, C = shape[:2]
    if C % groups:
        pytest.skip("channels not divisible by groups")
    x = rng.standard_normal(shape)
    w = rng.standard_normal((4, C // groups) + kernel)
    b = rng.standard_normal(4)
    params = dict(border_mode=pad, subsample=stride, filter_dilation=dilation, filter_flip=False, num_groups=groups)
    out, cache = conv_forward_im2col(x, w, b, stride, pad, dilation, groups)
    y_ref = conv_ref(x, w, **params)
    np.testing.assert_allclose(out, y_ref + b.reshape((1, 4) + (1,) * len(kernel)), atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv_backward_im2col(dout, cache)
    dx_ref, dw_ref = conv_grads_ref(x, w, dout, **params)
    np.testing.assert_allclose(dx, dx_ref, atol=1e-12)
    np.testing.assert_allclose(dw, dw_ref, atol=1e-12)
    np.testing.assert_allclose(db, dout.sum(axis=(0, *range(2, dout.ndim))), atol=1e-12)


def test_pool_layers_match_the_legacy_fixtures():
    """All 144 legacy cases (max and averages, 2d and 3d, ignore_border, stride, pad, ties;
    max with the legacy tie rule, max_grad_ties="all")."""
    data = np.load(GOLDEN)
    for case in json.loads(str(data["meta"])):
        nd, i = case["nd"], case["id"]
        x = data[f"x{nd}"]
        args = (
            tuple(case["ws"]),
            None if case["stride"] is None else tuple(case["stride"]),
            tuple(case["pad"]),
            case["ignore_border"],
        )
        if case["mode"] == "max":
            out, cache = max_pool_forward_im2col(x, *args)

            def backward(dout, cache):
                return max_pool_backward_im2col(dout, cache, max_grad_ties="all")
        else:
            out, cache = avg_pool_forward_im2col(x, *args, mode=case["mode"])
            backward = avg_pool_backward_im2col
        np.testing.assert_allclose(out, data[f"{i}_y"], rtol=1e-12, err_msg=str(case))
        n = int(np.prod(out.shape))
        dout = (np.cos(np.arange(n) * 1.7) + np.arange(n) * 1e-3).reshape(out.shape)
        want = (
            data[f"{i}_dx"]
            if case["dx_error"] is None
            else pool_grad_ref(x, dout, args[0], args[3], args[1], args[2], case["mode"], ties="all")
        )
        np.testing.assert_allclose(backward(dout, cache), want, rtol=1e-12, atol=1e-12, err_msg=str(case))


def test_pool_layers_1d_float32():
    x = _rng(2).standard_normal((2, 3, 11)).astype("float32")
    for mode in ("max", "average_exc_pad"):
        fwd = max_pool_forward_im2col if mode == "max" else avg_pool_forward_im2col
        kwargs = {} if mode == "max" else {"mode": mode}
        out, cache = fwd(x, (4,), (3,), (1,), True, **kwargs)
        np.testing.assert_allclose(out, pool_ref(x, (4,), True, (3,), (1,), mode), rtol=1e-6)
        dout = np.ones(out.shape, dtype="float32")
        bwd = max_pool_backward_im2col if mode == "max" else avg_pool_backward_im2col
        np.testing.assert_allclose(bwd(dout, cache), pool_grad_ref(x, dout, (4,), True, (3,), (1,), mode), rtol=1e-6)


@pytest.mark.parametrize(
    "shape, ws, stride, pad, ignore_border",
    [
        ((2, 3, 6, 7), (2, 2), (2, 2), (0, 0), True),  # tiling
        ((2, 2, 7, 6), (3, 2), (1, 2), (1, 1), True),  # overlapping rows, padding
        ((2, 2, 7, 7), (3, 3), (2, 2), (0, 0), False),  # overlapping, partial windows at the end
        ((1, 2, 4, 5, 4), (2, 3, 2), (1, 2, 2), (1, 1, 0), True),
        ((3, 2, 9), (4,), (3,), (2,), True),
    ],
)
def test_max_pool_backward_first_maximum_on_tied_inputs(shape, ws, stride, pad, ignore_border):
    """Inputs full of ties (zeros, ReLU-like, small integers): each window's gradient goes to
    its first maximum (the loop reference), padding never wins, not even against -inf."""
    rng = _rng(9)
    inputs = [
        np.zeros(shape),
        np.maximum(rng.standard_normal(shape), 0),
        rng.integers(-2, 2, shape).astype(float),
        np.full(shape, -np.inf),
    ]
    for x in inputs:
        out, cache = max_pool_forward_im2col(x, ws, stride, pad, ignore_border)
        dout = rng.standard_normal(out.shape)
        for ties in ("first", "all"):
            want = pool_grad_ref(x, dout, ws, ignore_border, stride, pad, "max", ties)
            np.testing.assert_allclose(max_pool_backward_im2col(dout, cache, max_grad_ties=ties), want, atol=1e-12)
    with pytest.raises(ValueError, match="max_grad_ties"):
        max_pool_backward_im2col(dout, cache, max_grad_ties="last")


# ----------------------------------------------------------------------------- CS231n-style snippets
# Adapters with the signatures of the CS231n helpers the snippets call; the column layout is the same.
def col2im_cython(cols, N, C, H, W, field_height, field_width, padding, stride):
    return col2im(cols, (N, C, H, W), (field_height, field_width), stride, padding)


def im2col_cython(x, field_height, field_width, padding, stride):
    return im2col(x, (field_height, field_width), stride, padding)


# fmt: off
def cs231n_conv_backward_im2col(dout, cache):
    """A CS231n-style conv backward pass, verbatim."""
    x, w, b, conv_param, x_cols = cache
    stride, pad = conv_param['stride'], conv_param['pad']

    db = np.sum(dout, axis=(0, 2, 3))

    num_filters, _, filter_height, filter_width = w.shape
    dout_reshaped = dout.transpose(1, 2, 3, 0).reshape(num_filters, -1)
    dw = dout_reshaped.dot(x_cols.T).reshape(w.shape)

    dx_cols = w.reshape(num_filters, -1).T.dot(dout_reshaped)
    dx = col2im_cython(dx_cols, x.shape[0], x.shape[1], x.shape[2], x.shape[3],
                       filter_height, filter_width, pad, stride)

    return dx, dw, db


def cs231n_max_pool_backward_im2col(dout, cache):
    """A CS231n-style max pooling backward pass, verbatim."""
    x_shape, x_cols, x_cols_argmax, pool_param = cache
    N, C, H, W = x_shape
    pool_height, pool_width = pool_param[
        'pool_height'], pool_param['pool_width']
    stride = pool_param['stride']

    dout_reshaped = dout.transpose(2, 3, 0, 1).flatten()
    dx_cols = np.zeros_like(x_cols)
    dx_cols[x_cols_argmax, np.arange(dx_cols.shape[1])] = dout_reshaped
    dx = col2im_cython(dx_cols, N * C, 1, H, W, pool_height, pool_width,
                       padding=0, stride=stride)
    dx = dx.reshape(x_shape)

    return dx


def cs231n_avg_pool_backward_im2col(dout, cache):
    """A CS231n-style average pooling backward pass, verbatim, with its warning: "possibly bogus
    if used w/o square pooling regions that tile the input"."""
    x_shape, x_cols, pool_param = cache
    N, C, H, W = x_shape
    pool_height, pool_width = pool_param[
        'pool_height'], pool_param['pool_width']
    stride = pool_param['stride']
    pool_dim = pool_height * pool_width

    dout_reshaped = dout.transpose(2, 3, 0, 1).flatten()
    dx_cols = np.zeros_like(x_cols)
    dx_cols[:, np.arange(dx_cols.shape[1])] = 1. / pool_dim * dout_reshaped
    dx = col2im_cython(dx_cols, N * C, 1, H, W, pool_height, pool_width,
                       padding=0, stride=stride)

    dx = dx.reshape(x_shape)

    return dx


def cs231n_bprop_conv(imgs, imgs_cols, convout_grad, filters, stride, pad):
    """A CS231n-style conv backward pass that divides by the batch size, verbatim (filters are
    (C_in, C_out, h, w))."""
    N, C, H, W = imgs.shape
    w = np.transpose(filters, axes=(1, 0, 2, 3))
    num_filters, _, filter_height, filter_width = w.shape
    out_grad_reshaped = convout_grad.transpose(1, 2, 3, 0).reshape(num_filters, -1)
    dW = out_grad_reshaped.dot(imgs_cols.T).reshape(w.shape)
    dFilter = np.transpose(dW, axes=(1, 0, 2, 3)) / N
    dImg_cols = w.reshape(num_filters, -1).T.dot(out_grad_reshaped)
    dImg = col2im_cython(dImg_cols, N, C, H, W, filter_height, filter_width, pad, stride)
    return dImg, dFilter


# fmt: on
def _cs231n_pool_cache(x, ph, pw, stride):
    """What the CS231n-style forward pass caches: columns of x as (N * C) one-channel images."""
    N, C, H, W = x.shape
    x_cols = im2col_cython(x.reshape(N * C, 1, H, W), ph, pw, 0, stride)
    return x_cols, np.argmax(x_cols, axis=0), dict(pool_height=ph, pool_width=pw, stride=stride)


@pytest.mark.parametrize("kernel, stride, pad", [((3, 3), 1, 1), ((3, 2), 2, 1), ((2, 4), 3, 0)])
def test_cs231n_conv_backward_reproduced(kernel, stride, pad):
    """The CS231n-style conv backward, run on our im2col/col2im, is right (square or not, strided,
    padded) and equals ours."""
    rng = _rng(3)
    x = rng.standard_normal((3, 2, 8, 7))
    w = rng.standard_normal((4, 2) + kernel)
    b = rng.standard_normal(4)
    out, cache = conv_forward_im2col(x, w, b, stride, pad)
    dout = rng.standard_normal(out.shape)
    x_cols = im2col_cython(x, kernel[0], kernel[1], pad, stride)
    theirs = cs231n_conv_backward_im2col(dout, (x, w, b, dict(stride=stride, pad=pad), x_cols))
    ours = conv_backward_im2col(dout, cache)
    dx_ref, dw_ref = conv_grads_ref(x, w, dout, border_mode=pad, subsample=(stride, stride), filter_flip=False)
    for got_theirs, got_ours, want in zip(theirs, ours, (dx_ref, dw_ref, dout.sum(axis=(0, 2, 3)))):
        np.testing.assert_allclose(got_theirs, want, atol=1e-12)
        np.testing.assert_allclose(got_ours, want, atol=1e-12)


@pytest.mark.parametrize(
    "shape, ws, stride",
    [
        ((2, 3, 8, 8), (2, 2), 2),  # square windows tiling the input
        ((2, 3, 7, 9), (3, 3), 2),  # overlapping, not tiling (last row / column unused)
        ((2, 3, 7, 8), (3, 2), 2),  # non-square, overlapping rows
    ],
)
def test_cs231n_pool_backward_reproduced_where_right(shape, ws, stride):
    """With ignore_border=True and no padding, the CS231n-style max and average backward passes are
    right even for overlapping, non-square and non-tiling windows (col2im adds up the
    overlaps), and for max with ties too; they equal ours and the loop reference."""
    rng = _rng(4)
    x = rng.standard_normal(shape)
    x_cols, argmax, param = _cs231n_pool_cache(x, ws[0], ws[1], stride)
    out, cache = max_pool_forward_im2col(x, ws, (stride, stride), 0, True)
    dout = rng.standard_normal(out.shape)
    want = pool_grad_ref(x, dout, ws, True, (stride, stride), (0, 0), "max")
    theirs = cs231n_max_pool_backward_im2col(dout, (x.shape, x_cols, argmax, param))
    np.testing.assert_allclose(theirs, want, atol=1e-12)
    np.testing.assert_allclose(max_pool_backward_im2col(dout, cache), want, atol=1e-12)
    out, cache = avg_pool_forward_im2col(x, ws, (stride, stride), 0, True)
    want = pool_grad_ref(x, dout, ws, True, (stride, stride), (0, 0), "average_inc_pad")
    np.testing.assert_allclose(cs231n_avg_pool_backward_im2col(dout, (x.shape, x_cols, param)), want, atol=1e-12)
    np.testing.assert_allclose(avg_pool_backward_im2col(dout, cache), want, atol=1e-12)
    # with ties (a ReLU's zeros), the snippet's argmax and our default rule both pick the first maximum
    x = np.maximum(np.round(x), 0.0)
    x_cols, argmax, param = _cs231n_pool_cache(x, ws[0], ws[1], stride)
    out, cache = max_pool_forward_im2col(x, ws, (stride, stride), 0, True)
    want = pool_grad_ref(x, dout, ws, True, (stride, stride), (0, 0), "max")
    assert not np.allclose(want, pool_grad_ref(x, dout, ws, True, (stride, stride), (0, 0), "max", ties="all"))
    theirs = cs231n_max_pool_backward_im2col(dout, (x.shape, x_cols, argmax, param))
    np.testing.assert_allclose(theirs, want, atol=1e-12)
    np.testing.assert_allclose(max_pool_backward_im2col(dout, cache), want, atol=1e-12)


def test_where_cs231n_style_snippets_are_wrong_and_ours_is_right():
    rng = _rng(5)
    # 1. This bprop_conv divides the filter gradient by N: wrong for the gradient of a sum.
    x = rng.standard_normal((3, 2, 6, 6))
    filters = rng.standard_normal((2, 4, 3, 3))  # (C_in, C_out, h, w) in that snippet
    w = filters.transpose(1, 0, 2, 3)
    out, cache = conv_forward_im2col(x, w, None, 1, 1)
    dout = rng.standard_normal(out.shape)
    _, d_filter = cs231n_bprop_conv(x, im2col_cython(x, 3, 3, 1, 1), dout, filters, 1, 1)
    _, dw, _ = conv_backward_im2col(dout, cache)
    _, dw_ref = conv_grads_ref(x, w, dout, border_mode=1, filter_flip=False)
    np.testing.assert_allclose(dw, dw_ref, atol=1e-12)
    np.testing.assert_allclose(d_filter.transpose(1, 0, 2, 3) * x.shape[0], dw_ref, atol=1e-12)
    assert not np.allclose(d_filter.transpose(1, 0, 2, 3), dw_ref)

    # 2. Average pooling that does not tile the input, legacy ignore_border=False: the snippet's
    #    fixed windows cannot see the partial last windows, so their gradient is lost.
    x = rng.standard_normal((1, 2, 7, 7))
    out, cache = avg_pool_forward_im2col(x, (2, 2), (2, 2), 0, ignore_border=False)
    assert out.shape == (1, 2, 4, 4)
    dout = rng.standard_normal(out.shape)
    want = pool_grad_ref(x, dout, (2, 2), False, (2, 2), (0, 0), "average_inc_pad")
    np.testing.assert_allclose(avg_pool_backward_im2col(dout, cache), want, atol=1e-12)
    x_cols, _, param = _cs231n_pool_cache(x, 2, 2, 2)
    their_dx = cs231n_avg_pool_backward_im2col(dout[:, :, :3, :3], (x.shape, x_cols, param))
    assert np.all(their_dx[..., 6, :] == 0) and np.all(their_dx[..., :, 6] == 0)
    assert not np.allclose(their_dx, want)

    # 3. Padding (which the snippets cannot pass) with average_exc_pad: the divisor near the border
    #    is the number of input elements, not prod(ws).
    out, cache = avg_pool_forward_im2col(x, (3, 3), (2, 2), (1, 1), True, mode="average_exc_pad")
    dout = np.ones(out.shape)
    np.testing.assert_allclose(
        avg_pool_backward_im2col(dout, cache),
        pool_grad_ref(x, dout, (3, 3), True, (2, 2), (1, 1), "average_exc_pad"),
        atol=1e-12,
    )

    # 4. Ties in max pooling: the snippet's argmax hands the gradient to the first tied element, as
    #    ours does by default; the legacy rule (max_grad_ties="all") hands it to every one.
    x = np.array([[[[1.0, 3.0], [3.0, 0.0]]]])
    out, cache = max_pool_forward_im2col(x, (2, 2))
    x_cols, argmax, param = _cs231n_pool_cache(x, 2, 2, 2)
    their_dx = cs231n_max_pool_backward_im2col(np.ones(out.shape), (x.shape, x_cols, argmax, param))
    np.testing.assert_array_equal(their_dx[0, 0], [[0, 1], [0, 0]])
    np.testing.assert_array_equal(max_pool_backward_im2col(np.ones(out.shape), cache)[0, 0], [[0, 1], [0, 0]])
    np.testing.assert_array_equal(
        max_pool_backward_im2col(np.ones(out.shape), cache, max_grad_ties="all")[0, 0], [[0, 1], [1, 0]]
    )

    # 5. The MXNet snippet calls im2col_cython(x, f_w, f_h, ...): height and width swapped, so
    #    its weight gradient is wrong for non-square filters (shapes still fit on square inputs).
    x = rng.standard_normal((2, 2, 6, 6))
    w = rng.standard_normal((3, 2, 3, 2))
    out, cache = conv_forward_im2col(x, w)
    dout = rng.standard_normal(out.shape)
    dout_ = dout.transpose(1, 2, 3, 0).reshape(3, -1)
    swapped = dout_.dot(im2col_cython(x, 2, 3, 0, 1).T).reshape(w.shape)
    _, dw_ref = conv_grads_ref(x, w, dout, filter_flip=False)
    assert not np.allclose(swapped, dw_ref)
    np.testing.assert_allclose(conv_backward_im2col(dout, cache)[1], dw_ref, atol=1e-12)


# ----------------------------------------------------------------------------- Ops
@pytest.mark.parametrize("backend", backend_params(*EVERY_BACKEND, pairs=True))
def test_ops_in_every_backend(backend):
    """Im2Col, Col2Im and their gradients (each other), 2d with every geometry feature."""
    name, mode = backend
    shape, kernel, stride, pad, dilation = GEOMETRIES[1]
    x = pt.tensor4("x")
    c = pt.matrix("c")
    op_args = (kernel, stride, pad, dilation)
    cols = Im2Col(*op_args)(x)
    img = Col2Im(*op_args)(c, x.shape)
    gx = pytensor.grad(None, x, known_grads={cols: c})
    gc = pytensor.grad(None, c, known_grads={img: x})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = pytensor.function([x, c], [cols, img, gx, gc], mode=mode)
    rng = _rng(6)
    xv = rng.standard_normal(shape)
    cv = rng.standard_normal(im2col_output_shape(shape, *op_args))
    got = f(xv, cv)
    want = [im2col(xv, *op_args), col2im(cv, shape, *op_args), col2im(cv, shape, *op_args), im2col(xv, *op_args)]
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), w, atol=1e-12)


def test_ops_verify_grad_and_static_shapes():
    rng = _rng(7)
    for shape, kernel, stride, pad, dilation in (GEOMETRIES[0], GEOMETRIES[3]):
        op_args = (kernel, stride, pad, dilation)
        xv = rng.standard_normal(shape)
        cv = rng.standard_normal(im2col_output_shape(shape, *op_args))
        verify_grad(Im2Col(*op_args), [xv], rng=rng, mode=PY_MODE)
        verify_grad(lambda c: Col2Im(*op_args)(c, shape), [cv], rng=rng, mode=PY_MODE)
        cols = Im2Col(*op_args)(pt.tensor(shape=shape))
        assert cols.type.shape == cv.shape
        assert Col2Im(*op_args)(pt.matrix(), list(shape)).type.shape == shape
    x = pt.tensor4("x")
    cols = Im2Col((3, 2), 2, 1)(x)
    f = pytensor.function([x], cols.shape, mode=PY_MODE)
    assert not [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, Im2Col)]
    assert tuple(f(np.zeros((2, 3, 7, 6)))) == im2col_output_shape((2, 3, 7, 6), (3, 2), 2, 1)


def test_bad_input():
    x = np.zeros((2, 3, 5, 6))
    cols = im2col(x, (3, 2), 1, 1)
    with pytest.raises(ValueError, match="cols has shape .* does not fit x_shape"):
        col2im(cols[:, :-1], x.shape, (3, 2), 1, 1)
    with pytest.raises(ValueError, match="cols has shape .* does not fit x_shape"):
        col2im(cols, (2, 3, 5, 7), (3, 2), 1, 1)
    with pytest.raises(ValueError, match="kernel_shape .* larger than the padded input on spatial axis 0"):
        im2col(x, (8, 2))
    with pytest.raises(ValueError, match="stride entries must be >= 1"):
        im2col(x, (3, 2), (0, 1))
    with pytest.raises(ValueError, match="dilation must have 2 entries"):
        im2col(x, (3, 2), 1, 0, (1, 1, 1))
    with pytest.raises(ValueError, match="pad entries must be >= 0"):
        im2col(x, (3, 2), 1, ((1, -1), 0))
    with pytest.raises(ValueError, match="groups"):
        conv_forward_im2col(x, np.zeros((4, 2, 3, 3)), groups=2)
    out, cache = conv_forward_im2col(x, np.zeros((4, 3, 3, 3)))
    with pytest.raises(ValueError, match="dout must have the forward output's shape"):
        conv_backward_im2col(out[:, :2], cache)
    with pytest.raises(ValueError, match="pad must be smaller than ws"):
        max_pool_forward_im2col(x, (2, 2), pad=2)
    with pytest.raises(ValueError, match="requires ignore_border=True"):
        avg_pool_forward_im2col(x, (2, 2), pad=1, ignore_border=False)
    with pytest.raises(ValueError, match="mode must be"):
        avg_pool_forward_im2col(x, (2, 2), mode="max")
    with pytest.raises(ValueError, match="cols has static shape"):
        Col2Im((3, 2), 1, 1)(pt.tensor(shape=(18, 7)), [2, 3, 5, 6])
    with pytest.raises(ValueError, match="larger than the padded input"):
        Im2Col((8, 2))(pt.tensor(shape=(2, 3, 5, 6)))
    c = pt.matrix("c")
    f = pytensor.function([c], Col2Im((3, 2), 1, 1)(c, [2, 3, 5, 6]), mode="NUMBA")
    with pytest.raises(ValueError, match="cols.shape does not fit x_shape"):
        f(cols[:, :-1])
