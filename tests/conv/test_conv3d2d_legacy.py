"""conv3d2d.conv3d, the deprecated conv.conv2d, the debugging reference
(BaseAbstractConv.conv / unshared2d / flops), legacy import paths, and the golden fixtures of
the transposed, unshared, causal, separable and upsampling functions from the legacy
implementation."""

import json
import os
import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad

import pytensor_nnet
from pytensor_nnet import abstract_conv, conv3d2d
from pytensor_nnet import conv as legacy_conv
from pytensor_nnet.conv import ops
from tests.backends import EVERY_BACKEND, backend_params
from tests.reference.conv import conv_grads_ref, conv_ref, unshared_conv_ref, unshared_grads_ref

TO_NCDHW = (0, 2, 1, 3, 4)


@pytest.mark.parametrize("mode", backend_params(*EVERY_BACKEND))
def test_conv3d2d_layout_flip_and_gradients(mode):
    rng = np.random.default_rng(0)
    s_val, f_val = rng.standard_normal((2, 5, 3, 6, 4)), rng.standard_normal((4, 2, 3, 3, 2))
    s, f = pt.tensor5("s"), pt.tensor5("f")
    y = conv3d2d.conv3d(s, f, signals_shape=s_val.shape, filters_shape=f_val.shape, border_mode="half")
    g = pt.tensor5("g")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fn = pytensor.function([s, f, g], [y, *pytensor.grad(None, [s, f], known_grads={y: g})], mode=mode)
    x, w = s_val.transpose(TO_NCDHW), f_val.transpose(TO_NCDHW)
    y_ref = conv_ref(x, w, "half")
    g_val = rng.standard_normal(y_ref.shape).transpose(TO_NCDHW)
    dx_ref, dw_ref = conv_grads_ref(x, w, g_val.transpose(TO_NCDHW), border_mode="half")
    y_val, ds, df = fn(s_val, f_val, g_val)
    assert y_val.shape == (2, 6, 4, 6, 5)  # (batch, time, out channels, rows, cols)
    np.testing.assert_allclose(y_val, y_ref.transpose(TO_NCDHW), atol=1e-10)
    np.testing.assert_allclose(ds, dx_ref.transpose(TO_NCDHW), atol=1e-10)
    np.testing.assert_allclose(df, dw_ref.transpose(TO_NCDHW), atol=1e-10)


def test_conv3d2d_verify_grad_and_bad_input():
    rng = np.random.default_rng(1)
    verify_grad(
        lambda s, f: conv3d2d.conv3d(s, f, border_mode="full"),
        [rng.standard_normal((1, 3, 2, 3, 3)), rng.standard_normal((2, 2, 2, 2, 1))],
        rng=rng,
        mode="FAST_COMPILE",
    )
    s, f = pt.tensor(shape=(2, 5, 3, 6, 4)), pt.tensor(shape=(4, 2, 2, 3, 2))
    with pytest.raises(ValueError, match=r"signals channels \(signals.shape\[2\] = 3\) must equal filters channels"):
        conv3d2d.conv3d(s, f)
    with pytest.raises(ValueError, match="border_mode must be 'valid', 'full' or 'half'"):
        conv3d2d.conv3d(s, pt.tensor5(), border_mode=("valid", "full"))
    with pytest.raises(ValueError, match="signals must be a 5-d tensor"):
        conv3d2d.conv3d(pt.tensor4(), f)
    with pytest.raises(ValueError, match="signals_shape must have 5 entries"):
        conv3d2d.conv3d(pt.tensor5(), pt.tensor5(), signals_shape=(2, 5, 3))
    with pytest.raises(ValueError, match="larger than the padded input"):  # longer in time than the movie
        conv3d2d.conv3d(s, pt.tensor(shape=(4, 7, 3, 3, 2)))


def test_legacy_conv_module_conv2d():
    assert legacy_conv.conv2d is not pytensor_nnet.conv2d
    assert abstract_conv.conv2d is pytensor_nnet.conv2d
    x, w = pt.tensor4("x"), pt.tensor4("w")
    with pytest.warns(DeprecationWarning, match="deprecated old conv2d"):
        y = legacy_conv.conv2d(
            x, w, (2, 3, 6, 7), (4, 3, 3, 2), "full", (2, 1), unroll_batch=2, unroll_kern=4, openmp=False
        )
    assert isinstance(y.owner.op, ops.AbstractConv2d) and y.owner.op.filter_flip
    assert y.type.shape == (2, 4, 4, 8)
    rng = np.random.default_rng(2)
    x_val, w_val = rng.standard_normal((2, 3, 6, 7)), rng.standard_normal((4, 3, 3, 2))
    np.testing.assert_allclose(
        pytensor.function([x, w], y, mode="FAST_COMPILE")(x_val, w_val),
        conv_ref(x_val, w_val, "full", (2, 1)),
        atol=1e-10,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ValueError, match="border_mode must be 'valid' or 'full' in the old conv2d"):
            legacy_conv.conv2d(x, w, border_mode="half")
        with pytest.raises(ValueError, match=r"input_shape=\(2, 4, 6, 7\) does not match"):
            legacy_conv.conv2d(pt.tensor(shape=(2, 3, 6, 7)), w, image_shape=(2, 4, 6, 7))
        with pytest.raises(ValueError, match="input must be a 4-d tensor"):
            legacy_conv.conv2d(pt.tensor3(), w)


def test_legacy_import_paths():
    for name in (
        "conv2d_transpose",
        "conv3d_transpose",
        "separable_conv2d",
        "separable_conv3d",
        "causal_conv1d",
        "bilinear_kernel_1D",
        "bilinear_kernel_2D",
        "bilinear_upsampling",
        "frac_bilinear_upsampling",
    ):
        assert callable(getattr(abstract_conv, name)), name
    assert conv3d2d.conv3d.__module__ == "pytensor_nnet.conv.conv3d2d_impl"


# ----------------------------------------------------------------------------- debugging reference
def test_debug_reference_against_the_kernels():
    """BaseAbstractConv.conv is a true convolution (shared and unshared), its unshared
    directions are the adjoints, flops counts 2 x multiply-adds."""
    rng = np.random.default_rng(3)
    op = ops.AbstractConv2d()
    img, kern = rng.standard_normal((2, 4, 6, 5)), rng.standard_normal((6, 2, 3, 2))
    for mode, dil in (("valid", 1), ("full", (2, 1))):
        np.testing.assert_allclose(
            op.conv(img, kern, mode, dil, num_groups=2),
            conv_ref(img, kern, mode, filter_dilation=dil if dil != 1 else None, num_groups=2),
            atol=1e-10,
        )
    img3, kern3 = rng.standard_normal((1, 2, 4, 3, 4)), rng.standard_normal((3, 2, 2, 2, 3))
    np.testing.assert_allclose(op.conv(img3, kern3, "full"), conv_ref(img3, kern3, "full"), atol=1e-10)
    ku = rng.standard_normal((6, 4, 4, 2, 3, 2))
    np.testing.assert_allclose(
        op.conv(img, ku, unshared=True, num_groups=2, dilation=(1, 1)),
        unshared_conv_ref(img, ku, num_groups=2),
        atol=1e-10,
    )
    top = rng.standard_normal((2, 6, 4, 4))
    dx_ref, dw_ref = unshared_grads_ref(img, ku, top, num_groups=2)
    np.testing.assert_allclose(
        op.conv(top, ku, "full", unshared=True, num_groups=2, direction="backprop inputs"), dx_ref, atol=1e-10
    )
    np.testing.assert_allclose(
        op.conv(img, top, unshared=True, num_groups=2, direction="backprop weights"),
        dw_ref[..., ::-1, ::-1],
        atol=1e-10,
    )  # unflipped gradients
    k4 = rng.standard_normal((4, 4, 3, 2))
    np.testing.assert_allclose(
        op.unshared2d(img[0, 0], k4, (4, 4)), unshared_conv_ref(img[:1, :1], k4[None, :, :, None])[0, 0], atol=1e-10
    )
    assert op.flops([img.shape, (6, 4, 3, 2)], [(2, 6, 4, 4)]) == 2 * 2 * 6 * 16 * 4 * 6
    assert ops.AbstractConv2d(num_groups=2).flops([img.shape, kern.shape], [(2, 6, 4, 4)]) == 2 * 2 * 6 * 16 * 2 * 6
    unshared_op = ops.AbstractConv2d(unshared=True, num_groups=2)
    assert unshared_op.flops([img.shape, ku.shape], (2, 6, 4, 4)) == 2 * 2 * 6 * 16 * 2 * 6
    assert ops.AbstractConv3d().flops([img3.shape, kern3.shape], (1, 3, 3, 2, 2)) == 2 * 36 * 2 * 12
    with pytest.raises(ValueError, match='must be either "valid" or "full"'):
        op.conv(img, kern, "half")
    with pytest.raises(ValueError, match="direction"):
        op.conv(img, kern, direction="sideways")
    with pytest.raises(ValueError, match="input channels"):
        op.flops([img.shape, kern.shape], [(2, 6, 4, 4)])  # 4 channels, 2 per filter, 1 group


# ----------------------------------------------------------------------------- golden fixtures
def _golden():
    data = np.load(os.path.join(os.path.dirname(__file__), "..", "data", "conv_extra_golden.npz"))
    return data, json.loads(str(data["meta"]))


def _tuplify(value):
    return tuple(_tuplify(v) for v in value) if isinstance(value, list) else value


def _build(case, variables):
    """Our graph for one golden case (the legacy call it was generated with)."""
    kind = case["kind"]
    params = {k: _tuplify(v) for k, v in case.items() if k not in ("kind",)}
    if kind in ("transpose2d", "transpose3d"):
        fn = abstract_conv.conv2d_transpose if kind == "transpose2d" else abstract_conv.conv3d_transpose
        return fn(*variables, **params)
    if kind == "unshared2d":
        return pytensor_nnet.conv2d(*variables, unshared=True, **params)
    if kind == "causal":
        return abstract_conv.causal_conv1d(*variables, **params)
    if kind in ("separable2d", "separable3d"):
        fn = abstract_conv.separable_conv2d if kind == "separable2d" else abstract_conv.separable_conv3d
        return fn(*variables, **params)
    if kind == "bilinear":
        return abstract_conv.bilinear_upsampling(*variables, **params)
    if kind == "frac_bilinear":
        return abstract_conv.frac_bilinear_upsampling(*variables, **params)
    if kind == "conv3d2d":
        return conv3d2d.conv3d(*variables, **params)
    if kind == "old_conv2d":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return legacy_conv.conv2d(*variables, **params)
    raise AssertionError(kind)


def test_golden_fixtures_from_legacy_reference():
    """Every graph case of tests/data/conv_extra_golden.npz (transposed 2d/3d over border modes,
    strides, dilations, groups, flips; unshared over groups, strides, border modes; causal over
    dilation, stride, groups; separable; bilinear and fractional upsampling; conv3d2d; the old
    conv2d): outputs and gradients, in one compiled function."""
    data, meta = _golden()
    inputs, outputs, values, expected = [], [], [], []
    for i, case in enumerate(meta):
        if case["kind"].startswith(("method_", "kernel")):
            continue
        names = sorted(k.split("_", 1)[1] for k in data.files if k.startswith(f"{i}_in"))
        arrays = [data[f"{i}_{n}"] for n in names]
        variables = [pt.tensor(dtype=str(a.dtype), shape=(None,) * a.ndim) for a in arrays]
        y = _build(case, variables)
        inputs += variables
        values += arrays
        outputs.append(y)
        expected.append((data[f"{i}_y"], case))
        if f"{i}_gy" in data.files:
            gy = pt.tensor(dtype=y.dtype, shape=(None,) * y.ndim)
            inputs.append(gy)
            values.append(data[f"{i}_gy"])
            outputs += pytensor.grad(None, variables, known_grads={y: gy})
            expected += [(data[f"{i}_d{j}"], case) for j in range(len(variables))]
    assert len(outputs) == 231
    f = pytensor.function(inputs, outputs, mode="FAST_COMPILE")
    for got, (want, case) in zip(f(*values), expected):
        tol = 2e-4 if want.dtype == np.float32 else 1e-10
        assert got.shape == want.shape, case
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=str(case))


def test_golden_kernels_and_debug_methods():
    data, meta = _golden()
    op = ops.AbstractConv2d()
    checked = 0
    for i, case in enumerate(meta):
        kind, want = case["kind"], data[f"{i}_y"]
        if kind == "kernel1d":
            got = abstract_conv.bilinear_kernel_1D(case["ratio"], case["normalize"]).eval()
        elif kind == "kernel2d":
            got = abstract_conv.bilinear_kernel_2D(case["ratio"], case["normalize"]).eval()
        elif kind == "method_conv":
            got = op.conv(data[f"{i}_in0"], data[f"{i}_in1"], case["mode"], _tuplify(case["dilation"]))
        elif kind == "method_conv_unshared":
            got = op.conv(data[f"{i}_in0"], data[f"{i}_in1"], unshared=True)
        elif kind == "method_unshared2d":
            got = op.unshared2d(data[f"{i}_in0"], data[f"{i}_in1"], case["out_shape"], case["direction"])
        elif kind == "method_flops":
            got = op.flops(case["inp"], case["outp"])
        else:
            continue
        np.testing.assert_allclose(got, want, atol=1e-12, err_msg=str(case))
        checked += 1
    assert checked == 25
