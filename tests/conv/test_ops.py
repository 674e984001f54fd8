"""Abstract conv Ops and the legacy API: values in every backend, gradients, shapes, bad input."""

import re
import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad

from pytensor_nnet import (
    AbstractConv2d,
    AbstractConv2d_gradInputs,
    AbstractConv3d_gradWeights,
    AbstractConv_gradInputs,
    AbstractConv_gradWeights,
    conv2d,
    conv2d_grad_wrt_inputs,
    conv2d_grad_wrt_weights,
    conv3d,
    conv3d_grad_wrt_inputs,
    conv3d_grad_wrt_weights,
    set_column_buffer_bytes,
)
from pytensor_nnet.compat import pushforward
from pytensor_nnet.conv import ops
from tests.backends import EVERY_BACKEND, PY_MODE, backend_params
from tests.reference.conv import conv_grads_ref, conv_ref

PARAMS_2D = dict(border_mode=((1, 2), 1), subsample=(2, 1), filter_dilation=(1, 2), num_groups=2)
PARAMS_3D = dict(border_mode="half", subsample=(1, 2, 1), filter_dilation=(2, 1, 1), num_groups=1)


def _data(x_shape, w_shape, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)


@pytest.mark.parametrize("mode", backend_params(*EVERY_BACKEND))
@pytest.mark.parametrize("nd", [2, 3])
def test_forward_and_both_gradients_in_every_backend(mode, nd):
    if nd == 2:
        x_shape, w_shape, params, fn = (3, 4, 7, 6), (6, 2, 3, 2), PARAMS_2D, conv2d
    else:
        x_shape, w_shape, params, fn = (2, 3, 5, 4, 6), (4, 3, 2, 3, 2), PARAMS_3D, conv3d
    xv, wv = _data(x_shape, w_shape)
    x = pt.tensor(shape=(None,) * (nd + 2), name="x")
    w = pt.tensor(shape=(None,) * (nd + 2), name="w")
    y = fn(x, w, **params)
    gy = pt.tensor(shape=(None,) * (nd + 2), name="gy")
    dx, dw = pytensor.grad(None, [x, w], known_grads={y: gy})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an object-mode fallback warns: that is a failure here
        f = pytensor.function([x, w, gy], [y, dx, dw], mode=mode)
    y_ref = conv_ref(xv, wv, **params)
    gyv = np.random.default_rng(1).standard_normal(y_ref.shape)
    dx_ref, dw_ref = conv_grads_ref(xv, wv, gyv, **params)
    y_val, dx_val, dw_val = f(xv, wv, gyv)
    np.testing.assert_allclose(y_val, y_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dx_val, dx_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dw_val, dw_ref, rtol=1e-10, atol=1e-10)


def test_numba_mode_uses_no_object_mode_for_any_op():
    x, w, gy = pt.tensor4("x"), pt.tensor4("w"), pt.tensor4("gy")
    gi = AbstractConv2d_gradInputs(subsample=(2, 2))(w, gy, [7, 7])
    gw = ops.AbstractConv2d_gradWeights(subsample=(2, 2))(x, gy, [3, 3])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f = pytensor.function([x, w, gy], [gi, gw], mode="NUMBA")
    assert not [w for w in caught if "object mode" in str(w.message).lower()]
    xv, wv = _data((2, 3, 7, 7), (4, 3, 3, 3))
    gyv = np.ones((2, 4, 3, 3))
    gi_v, gw_v = f(xv, wv, gyv)
    dx_ref, dw_ref = conv_grads_ref(xv, wv, gyv, subsample=(2, 2))
    np.testing.assert_allclose(gi_v, dx_ref)
    np.testing.assert_allclose(gw_v, dw_ref)


def test_golden_fixtures_from_legacy_reference():
    """Every case of tests/data/conv_golden.npz (2d and 3d, border modes x subsample x
    dilation x groups x flip, float32 and float64), forward and both gradients, in one
    compiled function."""
    import json
    import os

    data = np.load(os.path.join(os.path.dirname(__file__), "..", "data", "conv_golden.npz"))
    meta = json.loads(str(data["meta"]))
    inputs, outputs, expected, values = [], [], [], []
    for i, case in enumerate(meta):
        bm = case["border_mode"]
        bm = tuple(tuple(b) if isinstance(b, list) else b for b in bm) if isinstance(bm, list) else bm
        fn = conv2d if case["nd"] == 2 else conv3d
        x, w, gy = (pt.tensor(dtype=case["dtype"], shape=data[f"{i}_{k}"].shape) for k in ("x", "w", "gy"))
        y = fn(
            x,
            w,
            border_mode=bm,
            subsample=tuple(case["subsample"]),
            filter_flip=case["filter_flip"],
            filter_dilation=tuple(case["filter_dilation"]),
            num_groups=case["num_groups"],
        )
        dx, dw = pytensor.grad(None, [x, w], known_grads={y: gy})
        inputs += [x, w, gy]
        outputs += [y, dx, dw]
        values += [data[f"{i}_{k}"] for k in ("x", "w", "gy")]
        expected += [(data[f"{i}_{k}"], case) for k in ("y", "dx", "dw")]
    assert len(meta) >= 150
    f = pytensor.function(inputs, outputs, mode=PY_MODE)
    for got, (want, case) in zip(f(*values), expected):
        tol = 2e-4 if case["dtype"] == "float32" else 1e-10
        assert got.dtype == want.dtype, case
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=str(case))


@pytest.mark.parametrize("nd", [2, 3])
def test_verify_grad_of_each_op(nd):
    rng = np.random.default_rng(42)
    if nd == 2:
        x_shape, w_shape, params = (2, 4, 5, 4), (4, 2, 2, 3), dict(PARAMS_2D, border_mode=((1, 0), 1))
    else:
        x_shape, w_shape, params = (1, 2, 4, 3, 4), (2, 2, 2, 2, 1), PARAMS_3D
    op_fwd = ops.AbstractConv(nd, **params)
    xv, wv = _data(x_shape, w_shape)
    verify_grad(op_fwd, [xv, wv], rng=rng, mode=PY_MODE)
    top_shape = conv_ref(xv, wv, **params).shape
    gyv = rng.standard_normal(top_shape)
    op_gi = ops.AbstractConv_gradInputs(nd, **params)
    op_gw = ops.AbstractConv_gradWeights(nd, **params)
    verify_grad(lambda w, g: op_gi(w, g, list(x_shape[2:])), [wv, gyv], rng=rng, mode=PY_MODE)
    verify_grad(lambda x, g: op_gw(x, g, list(w_shape[2:])), [xv, gyv], rng=rng, mode=PY_MODE)


def test_second_derivative_and_numba_verify_grad():
    rng = np.random.default_rng(3)
    xv, wv = _data((2, 2, 5, 5), (3, 2, 3, 3))

    def grad_wrt_x(x, w):
        return pytensor.grad((conv2d(x, w, border_mode="half", subsample=(2, 2)) ** 2).sum(), x)

    verify_grad(grad_wrt_x, [xv, wv], rng=rng)  # default mode: Numba


def test_pushforward_rop():
    x, w, vx, vw = pt.tensor4("x"), pt.tensor4("w"), pt.tensor4("vx"), pt.tensor4("vw")
    y = conv2d(x, w, **PARAMS_2D)
    # use_op_pushforward: exercise AbstractConv.pushforward itself, not the double pullback
    jvp = pushforward(y, [x, w], [vx, vw], use_op_pushforward=True)
    jvp_x_only = pushforward(y, x, vx, use_op_pushforward=True)
    f = pytensor.function([x, w, vx, vw], [jvp, jvp_x_only], mode="FAST_COMPILE", on_unused_input="ignore")
    xv, wv = _data((3, 4, 7, 6), (6, 2, 3, 2))
    vxv, vwv = _data((3, 4, 7, 6), (6, 2, 3, 2), seed=5)
    both, x_only = f(xv, wv, vxv, vwv)
    expected_x = conv_ref(vxv, wv, **PARAMS_2D)
    np.testing.assert_allclose(both, expected_x + conv_ref(xv, vwv, **PARAMS_2D), atol=1e-10)
    np.testing.assert_allclose(x_only, expected_x, atol=1e-10)


def test_infer_shape_needs_no_convolution():
    x, w, gy = pt.tensor4("x"), pt.tensor4("w"), pt.tensor4("gy")
    y = conv2d(x, w, **PARAMS_2D)
    dx, dw = pytensor.grad(None, [x, w], known_grads={y: gy})
    f = pytensor.function([x, w, gy], [y.shape, dx.shape, dw.shape], on_unused_input="ignore")
    assert not [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, ops.BaseAbstractConv)]
    xv, wv = _data((3, 4, 7, 6), (6, 2, 3, 2))
    top_shape = conv_ref(xv, wv, **PARAMS_2D).shape
    y_shape, dx_shape, dw_shape = f(xv, wv, np.zeros(top_shape))
    assert tuple(y_shape) == top_shape
    assert tuple(dx_shape) == xv.shape and tuple(dw_shape) == wv.shape


def test_static_output_shapes():
    x = pt.tensor(shape=(3, 4, 7, 6))
    w = pt.tensor(shape=(6, 2, 3, 2))
    y = conv2d(x, w, **PARAMS_2D)
    assert y.type.shape == (3, 6, 4, 6)
    y_hint = conv2d(pt.tensor4(), pt.tensor4(), input_shape=(3, 4, 7, 6), filter_shape=(6, 2, 3, 2), **PARAMS_2D)
    assert y_hint.type.shape == (3, 6, 4, 6)
    dx, dw = pytensor.grad(y.sum(), [x, w])
    assert dx.type.shape == x.type.shape and dw.type.shape == w.type.shape


def test_grad_functions_with_symbolic_sizes():
    gy, w, x = pt.tensor4("gy"), pt.tensor4("w"), pt.tensor4("x")
    rows, cols = pt.iscalar("rows"), pt.iscalar("cols")
    dx = conv2d_grad_wrt_inputs(gy, w, (None, None, rows, cols), subsample=(2, 2), filter_flip=False)
    dw = conv2d_grad_wrt_weights(x, gy, (None, None, 3, 3), subsample=(2, 2), filter_flip=False)
    f = pytensor.function([gy, w, x, rows, cols], [dx, dw])
    xv, wv = _data((2, 3, 8, 7), (4, 3, 3, 3))
    gyv = np.random.default_rng(0).standard_normal((2, 4, 3, 3))
    dx_ref, dw_ref = conv_grads_ref(xv, wv, gyv, subsample=(2, 2), filter_flip=False)
    dx_v, dw_v = f(gyv, wv, xv, 8, 7)
    np.testing.assert_allclose(dx_v, dx_ref)
    np.testing.assert_allclose(dw_v, dw_ref)
    # 8 and 7 rows give the same output with stride 2: the size decides
    assert f(gyv, wv, xv, 7, 7)[0].shape == (2, 3, 7, 7)


def test_conv3d_gradient_functions():
    xv, wv = _data((1, 2, 4, 5, 4), (3, 1, 2, 2, 3))
    gyv = np.random.default_rng(2).standard_normal(conv_ref(xv, wv, num_groups=2).shape)
    gy, w, x = pt.tensor5("gy"), pt.tensor5("w"), pt.tensor5("x")
    with pytest.raises(ValueError, match="divide"):
        conv3d_grad_wrt_inputs(gy, w, xv.shape, num_groups=2, filter_shape=(3, 1, 2, 2, 3))
    wv = np.concatenate([wv, wv[:1]])  # 4 filters: divisible by 2 groups
    gyv = np.random.default_rng(2).standard_normal(conv_ref(xv, wv, num_groups=2).shape)
    dx = conv3d_grad_wrt_inputs(gy, w, xv.shape, num_groups=2)
    dw = conv3d_grad_wrt_weights(x, gy, wv.shape, num_groups=2)
    assert isinstance(dw.owner.op, AbstractConv3d_gradWeights)
    dx_ref, dw_ref = conv_grads_ref(xv, wv, gyv, num_groups=2)
    dx_v, dw_v = pytensor.function([gy, w, x], [dx, dw])(gyv, wv, xv)
    np.testing.assert_allclose(dx_v, dx_ref)
    np.testing.assert_allclose(dw_v, dw_ref)


def test_legacy_signature_and_names():
    x, w = pt.tensor4("x"), pt.tensor4("w")
    # positional order: input, filters, input_shape, filter_shape, border_mode, subsample, filter_flip, image_shape
    with pytest.warns(DeprecationWarning, match="image_shape"):
        y = conv2d(x, w, None, None, "valid", (1, 1), True, (2, 3, 5, 5), unroll_kern=4)
    assert isinstance(y.owner.op, AbstractConv2d) and y.owner.op.imshp == (2, 3, 5, 5)
    g = pytensor.grad(y.sum(), x)
    # the gradient has x's type: the static shape the hint gives is dropped by a reshape (a view)
    assert g.type == x.type
    assert isinstance(g.owner.inputs[0].owner.op, AbstractConv2d_gradInputs)
    assert isinstance(g.owner.inputs[0].owner.op, AbstractConv_gradInputs)
    y_unshared = conv2d(x, pt.tensor("w6", shape=(None,) * 6), unshared=True)  # tests/conv/test_unshared.py
    assert y_unshared.owner.op.unshared


def test_integer_inputs_are_upcast():
    x = pt.tensor4("x", dtype="int32")
    w = pt.tensor4("w", dtype="float32")
    y = conv2d(x, w)
    assert y.dtype == "float64"  # int32 * float32 upcasts like PyTensor's arithmetic
    assert conv2d(pt.tensor4(dtype="float32"), w).dtype == "float32"
    with pytest.raises(TypeError, match="float32 and float64"):
        conv2d(pt.tensor4(dtype="complex128"), w)


def test_column_buffer_bound_gives_same_result():
    xv, wv = _data((4, 3, 6, 6), (2, 3, 3, 3))
    x, w = pt.tensor4("x"), pt.tensor4("w")
    expected = conv_ref(xv, wv, border_mode=1)
    try:
        set_column_buffer_bytes(100)
        small = pytensor.function([x, w], conv2d(x, w, border_mode=1), mode="NUMBA")(xv, wv)
    finally:
        set_column_buffer_bytes(64 * 2**20)
    np.testing.assert_allclose(small, expected)
    with pytest.raises(ValueError, match="nbytes"):
        set_column_buffer_bytes(0)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs, match",
    [
        ((2, 3, 5, 5), (4, 2, 3, 3), {}, r"input channels \(input.shape\[1\] = 3\)"),
        ((2, 4, 5, 5), (3, 2, 3, 3), {"num_groups": 2}, r"num_groups \(2\) must divide the number of filters"),
        ((2, 3, 5, 5), (3, 1, 3, 3), {"num_groups": 3, "filter_dilation": (3, 1)}, "larger than the padded input"),
        ((2, 3, 5, 5), (3, 3, 3, 3), {"subsample": (0, 1)}, "subsample"),
        ((2, 3, 5, 5), (3, 3, 3, 3), {"filter_dilation": (1, -1)}, "filter_dilation"),
        ((2, 3, 5, 5), (3, 3, 3, 3), {"border_mode": "same"}, "border_mode"),
        (
            (2, 3, 5, 5),
            (3, 3, 3, 3),
            {"input_shape": (2, 4, 5, 5)},
            r"input_shape=\(2, 4, 5, 5\) does not match the shape \(2, 3, 5, 5\) of input",
        ),
        (
            (2, 3, 5, 5),
            (3, 3, 3, 3),
            {"filter_shape": (3, 3, 2, 3)},
            r"filter_shape=\(3, 3, 2, 3\) does not match the shape \(3, 3, 3, 3\) of filters",
        ),
        ((2, 3, 5, 5), (3, 3, 3, 3), {"num_groups": 0}, "num_groups"),
    ],
)
def test_bad_input_raises_at_graph_build(x_shape, w_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        conv2d(pt.tensor(shape=x_shape), pt.tensor(shape=w_shape), **kwargs)


def test_wrong_ndim_names_the_argument():
    with pytest.raises(ValueError, match="input must be a 4-d tensor"):
        conv2d(pt.tensor3(), pt.tensor4())
    with pytest.raises(ValueError, match="filters must be a 5-d tensor"):
        conv3d(pt.tensor5(), pt.tensor4())
    with pytest.raises(ValueError, match="input_shape must have 4 entries"):
        conv2d(pt.tensor4(), pt.tensor4(), input_shape=(1, 2, 3))


@pytest.mark.parametrize("mode", ["NUMBA", "FAST_COMPILE"])
@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs, match",
    [
        (
            (2, 3, 5, 5),
            (4, 2, 3, 3),
            {},
            r"input channels \(input.shape\[1\] = 3\) must equal filters' input channels \(filters.shape\[1\] = 2\) "
            r"\* num_groups \(1\)",
        ),
        (
            (2, 4, 5, 5),
            (3, 2, 3, 3),
            {"num_groups": 2},
            r"num_groups \(2\) must divide the number of filters \(filters.shape\[0\] = 3\)",
        ),
        (
            (2, 3, 2, 5),
            (4, 3, 3, 3),
            {},
            r"the \(dilated\) filter \(filters.shape spatial \(3, 3\), filter_dilation \(1, 1\)\) is larger than the "
            r"padded input \(input.shape spatial \(2, 5\), border_mode 'valid'\) on spatial axis 0",
        ),
        (
            (2, 3, 5, 5),
            (4, 3, 3, 3),
            {"input_shape": (None, None, 6, None)},
            r"input_shape=\(None, None, 6, None\) does not match the shape \(2, 3, 5, 5\) of input",
        ),
    ],
)
def test_bad_input_raises_at_run_time(mode, x_shape, w_shape, kwargs, match):
    x, w = pt.tensor4("x"), pt.tensor4("w")
    f = pytensor.function([x, w], conv2d(x, w, **kwargs), mode=mode)
    with pytest.raises(ValueError, match=match):
        f(np.zeros(x_shape), np.zeros(w_shape))


@pytest.mark.parametrize("mode", ["NUMBA", "FAST_COMPILE"])
def test_grad_ops_reject_inconsistent_shapes_at_run_time(mode):
    w, gy, x = pt.tensor4("w"), pt.tensor4("gy"), pt.tensor4("x")
    size = pt.ivector("size")
    f_gi = pytensor.function([w, gy, size], AbstractConv_gradInputs(2)(w, gy, size), mode=mode)
    f_gw = pytensor.function([x, gy, size], AbstractConv_gradWeights(2)(x, gy, size), mode=mode)
    with pytest.raises(
        ValueError,
        match=r"output_grad.shape spatial \(5, 5\) does not match the convolution's "
        r"output spatial shape \(6, 5\)",
    ):
        f_gi(np.zeros((4, 3, 3, 3)), np.zeros((2, 4, 5, 5)), [8, 7])
    with pytest.raises(
        ValueError,
        match=r"output_grad.shape spatial \(5, 5\) does not match the convolution's "
        r"output spatial shape \(6, 5\)",
    ):
        f_gw(np.zeros((2, 3, 7, 7)), np.zeros((2, 4, 5, 5)), [2, 3])


@pytest.mark.parametrize("mode", ["NUMBA", "FAST_COMPILE"])
def test_grad_ops_check_their_result_against_the_shape_hints_at_run_time(mode):
    w, gy, x = pt.tensor4("w"), pt.tensor4("gy"), pt.tensor4("x")
    size = pt.ivector("size")
    grad_inputs = AbstractConv_gradInputs(2, imshp=(None, None, 8, 7))(w, gy, size)
    grad_weights = AbstractConv_gradWeights(2, kshp=(None, None, 3, 2))(x, gy, size)
    f_gi = pytensor.function([w, gy, size], grad_inputs, mode=mode)
    f_gw = pytensor.function([x, gy, size], grad_weights, mode=mode)
    assert f_gi(np.zeros((4, 3, 4, 3)), np.zeros((2, 4, 5, 5)), [8, 7]).shape == (2, 3, 8, 7)
    with pytest.raises(
        ValueError, match=re.escape("input_shape=(None, None, 8, 7) does not match the shape (2, 3, 7, 7) of input")
    ):
        f_gi(np.zeros((4, 3, 3, 3)), np.zeros((2, 4, 5, 5)), [7, 7])
    assert f_gw(np.zeros((2, 3, 7, 6)), np.zeros((2, 4, 5, 5)), [3, 2]).shape == (4, 3, 3, 2)
    with pytest.raises(
        ValueError, match=re.escape("filter_shape=(None, None, 3, 2) does not match the shape (4, 3, 3, 3) of filters")
    ):
        f_gw(np.zeros((2, 3, 7, 7)), np.zeros((2, 4, 5, 5)), [3, 3])


@pytest.mark.parametrize("mode", backend_params(*EVERY_BACKEND))
@pytest.mark.parametrize("filter_flip", [True, False])
def test_strided_and_reversed_operands(mode, filter_flip):
    """Operands that are views (transposed, reversed, every other element), forward and both
    gradients, against the reference."""
    x_data, w_data = _data((2, 4, 11, 9), (6, 2, 3, 2), seed=3)
    x, w = pt.tensor4("x"), pt.tensor4("w")
    x_view, w_view = x.dimshuffle(0, 1, 3, 2)[:, :, ::-1, ::2], w[:, :, ::-1, :]
    y = conv2d(x_view, w_view, border_mode=1, filter_flip=filter_flip, num_groups=2)
    cost = (y * pt.arange(y.size).reshape(y.shape)).sum()
    f = pytensor.function([x, w], [y, *pytensor.grad(cost, [x, w])], mode=mode)
    y_value, dx, dw = f(x_data, w_data)
    x_ref, w_ref = x_data.transpose(0, 1, 3, 2)[:, :, ::-1, ::2], w_data[:, :, ::-1, :]
    expected = conv_ref(x_ref, w_ref, border_mode=1, filter_flip=filter_flip, num_groups=2)
    np.testing.assert_allclose(y_value, expected, rtol=1e-10, atol=1e-10)
    weights = np.arange(expected.size, dtype=float).reshape(expected.shape)
    dx_ref, dw_ref = conv_grads_ref(x_ref, w_ref, weights, border_mode=1, filter_flip=filter_flip, num_groups=2)
    dx_expected = np.zeros_like(x_data)
    dx_expected.transpose(0, 1, 3, 2)[:, :, ::-1, ::2] = dx_ref
    np.testing.assert_allclose(dx, dx_expected, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(dw, dw_ref[:, :, ::-1, :], rtol=1e-10, atol=1e-8)


def test_grad_ops_static_checks():
    with pytest.raises(ValueError, match=r"output_grad.shape spatial \(5, 5\) does not match"):
        AbstractConv_gradInputs(2)(pt.tensor(shape=(4, 3, 3, 3)), pt.tensor(shape=(2, 4, 5, 5)), [8, 7])
    with pytest.raises(
        ValueError,
        match=r"channels differ: output_grad.shape\[1\] = 5 must equal the number of "
        r"filters filters.shape\[0\] = 4",
    ):
        AbstractConv_gradInputs(2)(pt.tensor(shape=(4, 3, 3, 3)), pt.tensor(shape=(2, 5, 5, 5)), [7, 7])
    with pytest.raises(ValueError, match="shape .* is required"):
        AbstractConv_gradInputs(2, subsample=(2, 2))(pt.tensor4(), pt.tensor4())
    message = r"batch sizes differ: output_grad.shape\[0\] = 3 must equal input.shape\[0\] = 2"
    with pytest.raises(ValueError, match=message):
        AbstractConv_gradWeights(2)(pt.tensor(shape=(2, 3, 7, 7)), pt.tensor(shape=(3, 4, 5, 5)), [3, 3])
    with pytest.raises(TypeError, match="int vector"):
        AbstractConv_gradWeights(2)(pt.tensor4(), pt.tensor4(), pt.vector())
    # deduced when stride is 1
    gi = AbstractConv_gradInputs(2)(pt.tensor(shape=(4, 3, 3, 3)), pt.tensor(shape=(2, 4, 5, 5)))
    assert gi.type.shape == (2, 3, 7, 7)
