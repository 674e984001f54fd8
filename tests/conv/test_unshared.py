"""Unshared (locally connected) convolution: kernels, Ops in every backend, gradients, bad input."""

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytensor.gradient import verify_grad

from pytensor_nnet import conv2d, conv2d_grad_wrt_inputs, conv2d_grad_wrt_weights
from pytensor_nnet.compat import pushforward
from pytensor_nnet.conv import ops
from pytensor_nnet.kernels import unshared as kernels
from pytensor_nnet.kernels.conv import kernel_geometry
from pytensor_nnet.kernels.im2col import as_3d_array, as_3d_geometry
from pytensor_nnet.shapes import get_conv_output_shape, normalize_border_mode, resolve_pads
from tests.backends import EVERY_BACKEND, backend_params
from tests.reference.conv import unshared_conv_ref, unshared_grads_ref

PARAMS = dict(border_mode=((1, 0), 1), subsample=(2, 1), filter_dilation=(1, 2), num_groups=2)


def _problem(x_shape, n_filters, in_per_group, kernel, seed=0, **params):
    """x, unshared w (M, *out, Cg, *kernel) and an output gradient for these parameters."""
    rng = np.random.default_rng(seed)
    out = get_conv_output_shape(
        x_shape,
        (n_filters, in_per_group) + kernel,
        params.get("border_mode", "valid"),
        params.get("subsample"),
        params.get("filter_dilation"),
    )
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((n_filters,) + out[2:] + (in_per_group,) + kernel)
    return x, w, rng.standard_normal(out)


def _run_kernels(x, w, gy, buffer_bytes=64 * 2**20, **params):
    nd = x.ndim - 2
    geo = kernel_geometry(
        normalize_border_mode(params.get("border_mode", "valid"), nd),
        params.get("subsample", (1,) * nd),
        params.get("filter_dilation", (1,) * nd),
    )
    pads = resolve_pads(geo.pad_before, geo.pad_after, as_3d_geometry(w.shape[-nd:], 1), geo.dilation)
    args = (geo.stride, *pads, geo.dilation, params.get("num_groups", 1), buffer_bytes)
    w3 = kernels.as_3d_unshared(w, nd)
    y = kernels.unshared_forward(as_3d_array(x, 2), w3, *args)
    dx = kernels.unshared_grad_inputs(w3, as_3d_array(gy, 2), as_3d_geometry(x.shape[2:], 1), *args)
    dw = kernels.unshared_grad_weights(as_3d_array(x, 2), as_3d_array(gy, 2), as_3d_geometry(w.shape[-nd:], 1), *args)
    lead = lambda a: a.reshape(a.shape[:2] + a.shape[5 - nd :])  # noqa: E731
    return lead(y), lead(dx), kernels.from_3d_unshared(dw, nd)


@pytest.mark.parametrize(
    "x_shape, n_filters, in_per_group, kernel, params",
    [
        ((3, 4, 7, 6), 6, 2, (3, 2), PARAMS),
        ((2, 3, 5, 5), 3, 1, (2, 2), dict(border_mode="full", num_groups=3)),
        ((2, 4, 9), 4, 4, (3,), dict(border_mode="half", subsample=(2,), filter_dilation=(2,))),
        ((2, 2, 4, 4, 5), 4, 1, (2, 1, 3), dict(border_mode=((0, 1), 0, (2, 1)), subsample=(1, 2, 1), num_groups=2)),
    ],
)
def test_kernels_against_reference_with_small_chunks(x_shape, n_filters, in_per_group, kernel, params):
    """1-d, 2-d and 3-d, groups, asymmetric padding; a 1-byte buffer bound forces 1-image chunks."""
    x, w, gy = _problem(x_shape, n_filters, in_per_group, kernel, **params)
    ref = unshared_conv_ref(x, w, filter_flip=False, **params)
    dx_ref, dw_ref = unshared_grads_ref(x, w, gy, filter_flip=False, **params)
    for buffer_bytes in (1, 64 * 2**20):
        y, dx, dw = _run_kernels(x, w, gy, buffer_bytes, **params)
        np.testing.assert_allclose(y, ref, atol=1e-12)
        np.testing.assert_allclose(dx, dx_ref, atol=1e-12)
        np.testing.assert_allclose(dw, dw_ref, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    nd=st.integers(1, 3),
    groups=st.sampled_from([1, 2]),
    filters_per_group=st.integers(1, 2),
    in_per_group=st.integers(1, 2),
    data=st.data(),
)
def test_kernels_property_random_geometry(nd, groups, filters_per_group, in_per_group, data):
    kernel = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(data.draw(st.integers(1, 2)) for _ in range(nd))
    dilation = tuple(data.draw(st.integers(1, 2)) for _ in range(nd))
    pads = tuple((data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in range(nd))
    spatial = tuple((k - 1) * d + 1 + data.draw(st.integers(0, 3)) for k, d in zip(kernel, dilation))
    params = dict(border_mode=pads, subsample=stride, filter_dilation=dilation, num_groups=groups)
    x, w, gy = _problem(
        (2, in_per_group * groups) + spatial,
        filters_per_group * groups,
        in_per_group,
        kernel,
        seed=data.draw(st.integers(0, 99)),
        **params,
    )
    y, dx, dw = _run_kernels(x, w, gy, 1, **params)
    dx_ref, dw_ref = unshared_grads_ref(x, w, gy, filter_flip=False, **params)
    np.testing.assert_allclose(y, unshared_conv_ref(x, w, filter_flip=False, **params), atol=1e-12)
    np.testing.assert_allclose(dx, dx_ref, atol=1e-12)
    np.testing.assert_allclose(dw, dw_ref, atol=1e-12)


@pytest.mark.parametrize("mode", backend_params(*EVERY_BACKEND))
def test_forward_and_both_gradients_in_every_backend(mode):
    x_val, w_val, gy_val = _problem((3, 4, 7, 6), 6, 2, (3, 2), **PARAMS)
    x, w, gy = pt.tensor4("x"), pt.tensor("w", shape=(None,) * 6), pt.tensor4("gy")
    y = conv2d(x, w, unshared=True, **PARAMS)
    dx, dw = pytensor.grad(None, [x, w], known_grads={y: gy})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an object-mode fallback warns: that is a failure here
        f = pytensor.function([x, w, gy], [y, dx, dw], mode=mode)
    dx_ref, dw_ref = unshared_grads_ref(x_val, w_val, gy_val, **PARAMS)
    y_val, dx_val, dw_val = f(x_val, w_val, gy_val)
    np.testing.assert_allclose(y_val, unshared_conv_ref(x_val, w_val, **PARAMS), atol=1e-10)
    np.testing.assert_allclose(dx_val, dx_ref, atol=1e-10)
    np.testing.assert_allclose(dw_val, dw_ref, atol=1e-10)


def test_sweep_groups_strides_border_modes():
    """Groups x strides x border modes x flip, forward and both gradients, in one function."""
    cases = []
    for i, (groups, stride, bm) in enumerate(
        (g, s, b) for g in (1, 2) for s in ((1, 1), (2, 1), (1, 3), (2, 2)) for b in ("valid", "half", ((2, 0), (0, 1)))
    ):
        params = dict(
            border_mode=bm,
            subsample=stride,
            num_groups=groups,
            filter_flip=i % 2 == 0,
            filter_dilation=(2, 1) if i % 5 == 0 else (1, 1),
        )
        cases.append((params,) + _problem((2, 2 * groups, 5, 6), 2 * groups, 2, (3, 2), seed=i, **params))
    inputs, outputs, values, expected = [], [], [], []
    for params, x_val, w_val, gy_val in cases:
        x, w, gy = pt.tensor4(), pt.tensor(shape=(None,) * 6), pt.tensor4()
        y = conv2d(x, w, unshared=True, **params)
        inputs += [x, w, gy]
        outputs += [y, *pytensor.grad(None, [x, w], known_grads={y: gy})]
        values += [x_val, w_val, gy_val]
        expected += [unshared_conv_ref(x_val, w_val, **params), *unshared_grads_ref(x_val, w_val, gy_val, **params)]
    f = pytensor.function(inputs, outputs, mode="FAST_COMPILE")
    for got, want in zip(f(*values), expected):
        np.testing.assert_allclose(got, want, atol=1e-10)


def test_verify_grad_of_each_op():
    rng = np.random.default_rng(7)
    params = dict(border_mode=(1, 0), subsample=(1, 2), num_groups=2)
    x_val, w_val, gy_val = _problem((2, 4, 4, 5), 2, 2, (2, 2), **params)
    fwd = ops.AbstractConv(2, unshared=True, **params)
    gi = ops.AbstractConv_gradInputs(2, unshared=True, **params)
    gw = ops.AbstractConv_gradWeights(2, unshared=True, **params)
    verify_grad(fwd, [x_val, w_val], rng=rng, mode="FAST_COMPILE")
    verify_grad(lambda w, g: gi(w, g, list(x_val.shape[2:])), [w_val, gy_val], rng=rng, mode="FAST_COMPILE")
    verify_grad(lambda x, g: gw(x, g, list(w_val.shape[-2:])), [x_val, gy_val], rng=rng, mode="FAST_COMPILE")


def test_gradient_functions_static_shapes_and_infer_shape():
    x_val, w_val, gy_val = _problem((2, 4, 7, 6), 6, 2, (3, 2), **PARAMS)
    x = pt.tensor("x", shape=x_val.shape)
    w = pt.tensor("w", shape=w_val.shape)
    y = conv2d(x, w, unshared=True, **PARAMS)
    assert y.type.shape == gy_val.shape
    dx, dw = pytensor.grad((y * gy_val).sum(), [x, w])
    assert dx.type.shape == x_val.shape and dw.type.shape == w_val.shape
    gy = pt.tensor4("gy")
    gi = conv2d_grad_wrt_inputs(gy, w, x_val.shape, filter_shape=w_val.shape, unshared=True, **PARAMS)
    gw = conv2d_grad_wrt_weights(x, gy, w_val.shape, unshared=True, **PARAMS)
    assert gw.type.shape == w_val.shape
    f = pytensor.function([x, w, gy], [gi, gw, gi.shape, gw.shape])
    dx_ref, dw_ref = unshared_grads_ref(x_val, w_val, gy_val, **PARAMS)
    gi_val, gw_val, gi_shape, gw_shape = f(x_val, w_val, gy_val)
    np.testing.assert_allclose(gi_val, dx_ref, atol=1e-10)
    np.testing.assert_allclose(gw_val, dw_ref, atol=1e-10)
    assert tuple(gi_shape) == x_val.shape and tuple(gw_shape) == w_val.shape
    shape_only = pytensor.function([x, w, gy], [gi.shape, gw.shape, y.shape])
    assert not [n for n in shape_only.maker.fgraph.apply_nodes if isinstance(n.op, ops.BaseAbstractConv)]


def test_bad_input_names_the_argument():
    x = pt.tensor(shape=(2, 4, 5, 6))
    with pytest.raises(ValueError, match=r"unshared filters' output region \(filters.shape\[1:3\] = \(4, 4\)\)"):
        conv2d(x, pt.tensor(shape=(6, 4, 4, 4, 3, 3)), unshared=True)  # output is (3, 4)
    with pytest.raises(ValueError, match="filters must be a 6-d tensor"):
        conv2d(x, pt.tensor4(), unshared=True)
    with pytest.raises(ValueError, match="filter_shape must have 6 entries"):
        conv2d(x, pt.tensor(shape=(None,) * 6), filter_shape=(6, 4, 3, 3), unshared=True)
    with pytest.raises(ValueError, match=r"input channels .* num_groups"):
        conv2d(x, pt.tensor(shape=(6, 3, 4, 3, 3, 3)), unshared=True, num_groups=2)
    with pytest.raises(
        ValueError,
        match=r"input channels \(input.shape\[1\] = 4\) must equal filters' input "
        r"channels \(filter_shape\[3\] = 4\) \* num_groups \(2\)",
    ):
        conv2d_grad_wrt_weights(x, pt.tensor(shape=(2, 6, 3, 4)), (6, 2, 4, 4, 3, 3), unshared=True, num_groups=2)
    with pytest.raises(ValueError, match="output region"):
        conv2d_grad_wrt_inputs(
            pt.tensor(shape=(2, 6, 3, 4)),
            pt.tensor(shape=(6, 4, 4, 2, 3, 3)),
            (2, 4, 5, 6),
            unshared=True,
            num_groups=2,
        )


@pytest.mark.parametrize("mode", ["NUMBA", "FAST_COMPILE"])
def test_bad_input_at_run_time(mode):
    x, w = pt.tensor4("x"), pt.tensor("w", shape=(None,) * 6)
    f = pytensor.function([x, w], conv2d(x, w, unshared=True, num_groups=2), mode=mode)
    with pytest.raises(ValueError, match="output region"):
        f(np.zeros((2, 4, 5, 6)), np.zeros((6, 4, 4, 2, 3, 3)))
    with pytest.raises(ValueError, match="input channels"):
        f(np.zeros((2, 4, 5, 6)), np.zeros((6, 3, 4, 3, 3, 3)))


def test_pushforward_and_second_derivative():
    params = dict(border_mode=1, subsample=(1, 2), num_groups=2)
    x_val, w_val, _ = _problem((2, 4, 4, 5), 4, 2, (3, 2), **params)
    vx_val, vw_val, _ = _problem((2, 4, 4, 5), 4, 2, (3, 2), seed=1, **params)
    x, w, vx, vw = pt.tensor4(), pt.tensor(shape=(None,) * 6), pt.tensor4(), pt.tensor(shape=(None,) * 6)
    y = conv2d(x, w, unshared=True, **params)
    jvp = pushforward(y, [x, w], [vx, vw], use_op_pushforward=True)
    f = pytensor.function([x, w, vx, vw], jvp, mode="FAST_COMPILE")
    expected = unshared_conv_ref(vx_val, w_val, **params) + unshared_conv_ref(x_val, vw_val, **params)
    np.testing.assert_allclose(f(x_val, w_val, vx_val, vw_val), expected, atol=1e-10)
    rng = np.random.default_rng(8)
    verify_grad(
        lambda x, w: pytensor.grad((conv2d(x, w, unshared=True, **params) ** 2).sum(), w),
        [x_val, w_val],
        rng=rng,
        mode="FAST_COMPILE",
    )
