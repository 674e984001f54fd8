"""Bilinear kernels and (fractional) bilinear upsampling: interpolation reference, backends, bad input."""

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad

from pytensor_nnet.abstract_conv import (
    bilinear_kernel_1D,
    bilinear_kernel_2D,
    bilinear_upsampling,
    frac_bilinear_upsampling,
)
from tests.backends import EVERY_BACKEND, backend_params
from tests.reference.conv import bilinear_upsampling_ref


def test_kernels():
    for ratio in (1, 2, 3, 5):
        tri = np.concatenate([np.arange(1, ratio + 1), np.arange(ratio - 1, 0, -1)]).astype(float)
        np.testing.assert_allclose(bilinear_kernel_1D(ratio).eval(), tri / ratio)
        np.testing.assert_allclose(bilinear_kernel_1D(ratio, normalize=False).eval(), tri)
        np.testing.assert_allclose(bilinear_kernel_2D(ratio).eval(), np.outer(tri, tri) / ratio**2)
    r = pt.iscalar("r")
    f = pytensor.function([r], [bilinear_kernel_1D(r), bilinear_kernel_2D(r, normalize=False)], mode="FAST_COMPILE")
    k1, k2 = f(4)
    np.testing.assert_allclose(k1, [0.25, 0.5, 0.75, 1, 0.75, 0.5, 0.25])
    np.testing.assert_allclose(k2, np.outer([1, 2, 3, 4, 3, 2, 1], [1, 2, 3, 4, 3, 2, 1]))
    assert bilinear_kernel_1D(pt.constant(3, dtype="int8")).type.shape == (5,)


def test_integer_and_fractional_ratios_both_kernels():
    """Ratios 1-5 and fractional ratios (per axis, reducible, below 1), 1-d and 2-d kernels,
    with unknown and with static input shapes, against the interpolation reference, in one
    compiled function."""
    rng = np.random.default_rng(0)
    x_val = rng.standard_normal((2, 3, 4, 5))
    inputs = [pt.tensor4("x"), pt.tensor("x_static", shape=x_val.shape)]
    cases = [dict(ratio=r) for r in (1, 2, 3, 4, 5)]
    cases += [
        dict(frac_ratio=f)
        for f in ((3, 2), (5, 3), ((3, 2), (5, 2)), (4, 3), (2, 3), (7, 4), (1, 2), (6, 4), ((2, 1), (1, 3)))
    ]
    outputs, expected, static = [], [], []
    for x in inputs:
        for case in cases:
            want = bilinear_upsampling_ref(x_val, **case)
            ups = [bilinear_upsampling(x, use_1D_kernel=use_1d, **case) for use_1d in (True, False)]
            if "frac_ratio" in case:
                ups.append(frac_bilinear_upsampling(x, case["frac_ratio"]))
            outputs += ups
            expected += [want] * len(ups)
            static += [x is inputs[1]] * len(ups)
    results = pytensor.function(inputs, outputs, mode="FAST_COMPILE")(x_val, x_val)
    for got, want, out, from_static in zip(results, expected, outputs, static, strict=True):
        assert got.shape == want.shape
        if from_static:
            assert out.type.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-12)


def test_even_ratio_asymmetry_is_exact():
    """Even ratios repeat the last row/column once more than the first; odd ratios are symmetric."""
    x_val = np.arange(12.0).reshape(1, 1, 3, 4)
    x = pt.tensor4()
    f = pytensor.function([x], [bilinear_upsampling(x, 2), bilinear_upsampling(x, 3)], mode="FAST_COMPILE")
    up2, up3 = f(x_val)
    np.testing.assert_array_equal(up2[0, 0, 0], [0, 0.5, 1, 1.5, 2, 2.5, 3, 3])
    np.testing.assert_array_equal(up2[0, 0, :, 0], [0, 2, 4, 6, 8, 8])
    assert (up2[0, 0, 0] != up2[0, 0, 1]).all() and (up2[0, 0, -1] == up2[0, 0, -2]).all()
    np.testing.assert_allclose(up3[0, 0, :, 0], [0, 0, 4 / 3, 8 / 3, 4, 16 / 3, 20 / 3, 8, 8])
    np.testing.assert_allclose(up3[0, 0, :, 0], 8 - up3[0, 0, ::-1, 0])  # symmetric
    frac = pytensor.function([x], frac_bilinear_upsampling(x, (2, 3)), mode="FAST_COMPILE")(x_val)
    np.testing.assert_array_equal(frac[0, 0, :, 0], [0, 6])  # ratio 2 -> [0, 2, 4, 6, 8, 8], every 3rd


@pytest.mark.parametrize("mode", backend_params(*EVERY_BACKEND))
def test_every_backend_with_gradient(mode):
    rng = np.random.default_rng(1)
    x_val = rng.standard_normal((2, 2, 3, 4))
    x = pt.tensor("x", shape=x_val.shape)  # JAX needs static shapes
    y1 = bilinear_upsampling(x, ratio=2, batch_size=2, num_input_channels=2)
    y2 = bilinear_upsampling(x, frac_ratio=((3, 2), (1, 1)), use_1D_kernel=False)
    assert y1.type.shape == (2, 2, 6, 8) and y2.type.shape == (2, 2, 5, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = pytensor.function([x], [y1, y2, pytensor.grad((y1**2).sum() + y2.sum(), x)], mode=mode)
    y1_val, y2_val, g_val = f(x_val)
    np.testing.assert_allclose(y1_val, bilinear_upsampling_ref(x_val, 2), atol=1e-12)
    np.testing.assert_allclose(y2_val, bilinear_upsampling_ref(x_val, frac_ratio=((3, 2), (1, 1))), atol=1e-12)
    assert g_val.shape == x_val.shape


def test_verify_grad_and_dtypes():
    rng = np.random.default_rng(2)
    x_val = rng.standard_normal((1, 2, 3, 3))
    verify_grad(lambda x: bilinear_upsampling(x, 3), [x_val], rng=rng, mode="FAST_COMPILE")
    verify_grad(
        lambda x: bilinear_upsampling(x, frac_ratio=(5, 2), use_1D_kernel=True), [x_val], rng=rng, mode="FAST_COMPILE"
    )
    assert bilinear_upsampling(pt.tensor4(dtype="float32"), 2).dtype == "float32"
    assert bilinear_upsampling(pt.tensor4(dtype="int32"), 2).dtype == pytensor.config.floatX


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(ratio=0), r"ratio must be a positive int; got 0"),
        (dict(ratio=-2), r"ratio must be a positive int; got -2"),
        (dict(ratio=1.5), r"ratio must be a positive int"),
        (dict(ratio=pt.iscalar()), r"ratio must be known when the graph is built"),
        (dict(ratio=2, frac_ratio=(3, 2)), r"ratio or frac_ratio, not both"),
        (dict(), r"no ratio \(or frac_ratio\) given"),
        (dict(frac_ratio=(0, 1)), r"frac_ratio numerators and denominators must be positive"),
        (dict(frac_ratio=(3, -1)), r"frac_ratio numerators and denominators must be positive"),
        (dict(frac_ratio=((3, 2), (2, 0))), r"frac_ratio numerators and denominators must be positive"),
        (dict(frac_ratio=(1.5, 1)), r"frac_ratio entries must be"),
        (dict(frac_ratio=3), r"frac_ratio must be"),
        (dict(ratio=2, batch_size=3), r"batch_size \(3\) does not match"),
    ],
)
def test_bad_ratios_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bilinear_upsampling(pt.tensor(shape=(2, 3, 4, 4)), **kwargs)


def test_bad_kernel_ratio_and_runtime_hints():
    with pytest.raises(ValueError, match="ratio must be a positive int"):
        bilinear_kernel_1D(0)
    with pytest.raises(ValueError, match="ratio must be a positive int or an int scalar"):
        bilinear_kernel_2D(pt.dscalar())
    with pytest.raises(ValueError, match="input must be a 4-d tensor"):
        bilinear_upsampling(pt.tensor3(), 2)
    x = pt.tensor4()
    f = pytensor.function([x], bilinear_upsampling(x, 2, num_input_channels=3), mode="FAST_COMPILE")
    with pytest.raises(AssertionError, match="SpecifyShape"):
        f(np.zeros((1, 2, 3, 3)))
