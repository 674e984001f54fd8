"""separable_conv2d / separable_conv3d and causal_conv1d: references, backends, gradients, bad input."""

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad

from pytensor_nnet.abstract_conv import causal_conv1d, separable_conv2d, separable_conv3d
from tests.backends import EVERY_BACKEND, backend_params
from tests.reference.conv import causal_conv1d_ref, conv_grads_ref, conv_ref, unshared_conv_ref


def separable_ref(x, depthwise, pointwise, num_channels, **params):
    """Depthwise (one group per channel) then pointwise, from the plain convolution reference."""
    flip = params.get("filter_flip", True)
    return conv_ref(conv_ref(x, depthwise, num_groups=num_channels, **params), pointwise, filter_flip=flip)


SEP_PARAMS = dict(border_mode=(1, (0, 2)), subsample=(2, 1), filter_dilation=(1, 2), filter_flip=False)


@pytest.mark.parametrize("mode", backend_params(*EVERY_BACKEND))
def test_separable_conv2d_in_every_backend(mode):
    rng = np.random.default_rng(0)
    x_val, d_val, p_val = (rng.standard_normal(s) for s in ((2, 3, 7, 6), (6, 1, 3, 2), (5, 6, 1, 1)))
    x, d, p = pt.tensor4("x"), pt.tensor4("d"), pt.tensor4("p")
    y = separable_conv2d(x, d, p, 3, **SEP_PARAMS)
    g = pt.tensor4("g")
    grads = pytensor.grad(None, [x, d, p], known_grads={y: g})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = pytensor.function([x, d, p, g], [y, *grads], mode=mode)
    y_ref = separable_ref(x_val, d_val, p_val, 3, **SEP_PARAMS)
    g_val = rng.standard_normal(y_ref.shape)
    y_val, dx, dd, dp = f(x_val, d_val, p_val, g_val)
    np.testing.assert_allclose(y_val, y_ref, atol=1e-10)
    # chain rule through the two references
    depth = conv_ref(x_val, d_val, num_groups=3, **SEP_PARAMS)
    d_depth, dp_ref = conv_grads_ref(depth, p_val, g_val, filter_flip=False)
    dx_ref, dd_ref = conv_grads_ref(x_val, d_val, d_depth, num_groups=3, **SEP_PARAMS)
    for got, want in ((dx, dx_ref), (dd, dd_ref), (dp, dp_ref)):
        np.testing.assert_allclose(got, want, atol=1e-10)


def test_separable_conv3d_and_verify_grad():
    rng = np.random.default_rng(1)
    x_val, d_val, p_val = (rng.standard_normal(s) for s in ((1, 2, 4, 3, 4), (4, 1, 2, 2, 1), (3, 4, 1, 1, 1)))
    params = dict(border_mode="half", subsample=(1, 2, 1))
    x, d, p = pt.tensor5(), pt.tensor5(), pt.tensor5()
    f = pytensor.function([x, d, p], separable_conv3d(x, d, p, 2, **params), mode="FAST_COMPILE")
    np.testing.assert_allclose(f(x_val, d_val, p_val), separable_ref(x_val, d_val, p_val, 2, **params), atol=1e-10)
    verify_grad(
        lambda x, d, p: separable_conv3d(x, d, p, 2, **params), [x_val, d_val, p_val], rng=rng, mode="FAST_COMPILE"
    )
    x2, d2, p2 = (rng.standard_normal(s) for s in ((2, 2, 4, 5), (2, 1, 2, 2), (3, 2, 1, 1)))
    verify_grad(lambda x, d, p: separable_conv2d(x, d, p, 2, border_mode=1), [x2, d2, p2], rng=rng, mode="FAST_COMPILE")


@pytest.mark.parametrize(
    "x_shape, d_shape, p_shape, num_channels, match",
    [
        ((2, 3, 6, 6), (6, 2, 3, 3), (4, 6, 1, 1), 3, r"depthwise_filters must have one input channel"),
        ((2, 3, 6, 6), (5, 1, 3, 3), (4, 5, 1, 1), 3, r"depthwise_filters.shape\[0\] \(5\) must be a multiple"),
        ((2, 3, 6, 6), (6, 1, 3, 3), (4, 5, 1, 1), 3, r"pointwise_filters.shape\[1\] \(5\) must equal"),
        ((2, 3, 6, 6), (6, 1, 3, 3), (4, 6, 2, 2), 3, r"pointwise_filters must be 1x1"),
        (
            (2, 3, 6, 6),
            (6, 1, 3, 3),
            (4, 6, 1, 1),
            2,
            r"input channels \(input.shape\[1\] = 3\) must equal num_channels",
        ),
        ((2, 3, 6, 6), (6, 1, 3, 3), (4, 6, 1, 1), 0, r"num_channels must be a positive int"),
        ((2, 3, 6), (6, 1, 3, 3), (4, 6, 1, 1), 3, r"input must be a 4-d tensor"),
    ],
)
def test_separable_filters_that_do_not_chain(x_shape, d_shape, p_shape, num_channels, match):
    x, d, p = (pt.tensor(shape=s) for s in (x_shape, d_shape, p_shape))
    with pytest.raises(ValueError, match=match):
        separable_conv2d(x, d, p, num_channels)


def test_separable_shape_hints_are_checked():
    x, d, p = pt.tensor4(), pt.tensor4(), pt.tensor4()
    with pytest.raises(ValueError, match=r"pointwise_filters.shape\[1\] \(5\)"):
        separable_conv2d(x, d, p, 3, depthwise_filter_shape=(6, 1, 3, 3), pointwise_filter_shape=(4, 5, 1, 1))
    f = pytensor.function([x, d, p], separable_conv2d(x, d, p, 3), mode="FAST_COMPILE")
    with pytest.raises(ValueError, match="input channels"):  # dynamic shapes: checked when run
        f(np.zeros((2, 3, 6, 6)), np.zeros((6, 1, 3, 3)), np.zeros((4, 5, 1, 1)))


# ----------------------------------------------------------------------------- causal
def test_causal_sweep_dilation_stride_groups():
    """Dilation x stride x groups x flip, forward and both gradients, in one compiled function."""
    rng = np.random.default_rng(2)
    inputs, outputs, values, expected = [], [], [], []
    for i, (dil, sub, groups) in enumerate((d, s, g) for d in (1, 2, 3) for s in (1, 2, 3) for g in (1, 2)):
        x_val, w_val = rng.standard_normal((2, 4, 9)), rng.standard_normal((6, 4 // groups, 3))
        params = dict(subsample=sub, filter_dilation=dil, num_groups=groups, filter_flip=i % 2 == 0)
        x, w, g = pt.tensor3(), pt.tensor3(), pt.tensor3()
        y = causal_conv1d(x, w, w_val.shape, **params)
        y_ref = causal_conv1d_ref(x_val, w_val, **params)
        assert y_ref.shape[2] == (9 - 1) // sub + 1
        g_val = rng.standard_normal(y_ref.shape)
        pad = (3 - 1) * dil
        dxp, dw_ref = conv_grads_ref(
            np.pad(x_val, [(0, 0), (0, 0), (pad, 0)]),
            w_val,
            g_val,
            subsample=(sub,),
            filter_flip=params["filter_flip"],
            filter_dilation=(dil,),
            num_groups=groups,
        )
        inputs += [x, w, g]
        outputs += [y, *pytensor.grad(None, [x, w], known_grads={y: g})]
        values += [x_val, w_val, g_val]
        expected += [y_ref, dxp[:, :, pad:], dw_ref]
    f = pytensor.function(inputs, outputs, mode="FAST_COMPILE")
    for got, want in zip(f(*values), expected):
        np.testing.assert_allclose(got, want, atol=1e-10)


@pytest.mark.parametrize("mode", backend_params(*EVERY_BACKEND))
def test_causal_in_every_backend_and_is_causal(mode):
    rng = np.random.default_rng(3)
    x_val, w_val = rng.standard_normal((2, 2, 10)), rng.standard_normal((3, 2, 4))
    # static shapes: JAX cannot trace the zeros of the gradient of y[:, :, 5] otherwise
    x, w = pt.tensor("x", shape=x_val.shape), pt.tensor("w", shape=w_val.shape)
    y = causal_conv1d(x, w, (3, 2, 4), filter_dilation=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = pytensor.function([x, w], [y, pytensor.grad(y[:, :, 5].sum(), x)], mode=mode)
    y_val, dx = f(x_val, w_val)
    np.testing.assert_allclose(y_val, causal_conv1d_ref(x_val, w_val, filter_dilation=2), atol=1e-10)
    assert y_val.shape == (2, 3, 10)
    # output 5 depends on inputs <= 5 only (and on 5, 3, 1: dilation 2)
    assert not dx[:, :, 6:].any() and dx[:, :, [1, 3, 5]].all() and not dx[:, :, [0, 2, 4]].any()


def test_causal_unshared_symbolic_length_and_verify_grad():
    """unshared=True (the legacy code raised "Filters should be 3D") and a symbolic filter length."""
    rng = np.random.default_rng(4)
    x_val = rng.standard_normal((2, 4, 7))
    wu_val = rng.standard_normal((2, 4, 2, 3))  # (out, out_length, in // groups, length); stride 2
    x, wu = pt.tensor3(), pt.tensor4()
    y = causal_conv1d(x, wu, (2, 4, 2, 3), subsample=2, num_groups=2, unshared=True)
    f = pytensor.function([x, wu], y, mode="FAST_COMPILE")
    xp = np.pad(x_val, [(0, 0), (0, 0), (2, 0)])
    np.testing.assert_allclose(
        f(x_val, wu_val), unshared_conv_ref(xp, wu_val, subsample=(2,), num_groups=2), atol=1e-10
    )
    verify_grad(
        lambda x, w: causal_conv1d(x, w, (2, 4, 2, 3), subsample=2, num_groups=2, unshared=True),
        [x_val, wu_val],
        rng=rng,
        mode="FAST_COMPILE",
    )
    w_val = rng.standard_normal((3, 4, 3))
    length = pt.iscalar("length")
    w = pt.tensor3()
    y_sym = causal_conv1d(x, w, (None, None, length), filter_dilation=2)
    f_sym = pytensor.function([x, w, length], y_sym, mode="FAST_COMPILE")
    np.testing.assert_allclose(f_sym(x_val, w_val, 3), causal_conv1d_ref(x_val, w_val, filter_dilation=2), atol=1e-10)
    verify_grad(
        lambda x, w: causal_conv1d(x, w, (3, 4, 3), filter_dilation=3), [x_val, w_val], rng=rng, mode="FAST_COMPILE"
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(filter_shape=(3, 2)), r"filter_shape must have 3 entries"),
        (dict(filter_shape=(3, 2, 3), unshared=True), r"filter_shape must have 4 entries \(unshared\)"),
        (dict(filter_shape=(3, 2, 0)), r"filter length \(filter_shape\[-1\]\) must be positive"),
        (dict(filter_shape=(3, 2, 3), subsample=0), r"subsample must be a positive int"),
        (dict(filter_shape=(3, 2, 3), filter_dilation=-1), r"filter_dilation must be a positive int"),
        (dict(filter_shape=(3, 2, 4)), r"filter_shape=\(3, 2, 4\) does not match the shape \(3, 2, 3\) of filters"),
    ],
)
def test_causal_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        causal_conv1d(pt.tensor3(), pt.tensor(shape=(3, 2, 3)), **kwargs)
