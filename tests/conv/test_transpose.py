"""conv2d_transpose / conv3d_transpose: reference sweep, every backend, PyTorch, gradients, bad input."""

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad

from pytensor_nnet import conv2d
from pytensor_nnet.abstract_conv import conv2d_transpose, conv3d_transpose
from pytensor_nnet.conv import ops
from tests.backends import EVERY_BACKEND, backend_params
from tests.reference.conv import conv_grads_ref, conv_ref, pads_for, transpose_conv_ref, unshared_conv_ref


def _output_size(in_size, kernel, stride, dilation, pads, extra=0):
    """A forward-input size whose convolution has ``in_size`` outputs (``extra < stride`` more rows)."""
    return (in_size - 1) * stride + (kernel - 1) * dilation + 1 - pads[0] - pads[1] + extra


def _problem(x_shape, w_shape, border_mode, stride, dilation, groups, extra=0, seed=0):
    rng = np.random.default_rng(seed)
    pads = pads_for(border_mode, w_shape[2:], dilation)
    spatial = tuple(
        _output_size(n, k, s, d, p, min(extra, s - 1))
        for n, k, s, d, p in zip(x_shape[2:], w_shape[2:], stride, dilation, pads)
    )
    out_shape = (x_shape[0], w_shape[1] * groups) + spatial
    return rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(out_shape), out_shape


def _adjoint_grads(x, w, g, **params):
    """Gradients of sum(transpose(x, w) * g): the forward conv of g (wrt x), and the filter
    gradient of a forward conv of g whose output gradient is x (wrt w), from the references."""
    fwd = dict(
        border_mode=params["border_mode"],
        subsample=params["input_dilation"],
        filter_flip=params["filter_flip"],
        filter_dilation=params["filter_dilation"],
        num_groups=params["num_groups"],
    )
    _, dw = conv_grads_ref(g, w, x, **fwd)
    return conv_ref(g, w, **fwd), dw


PARAMS = dict(border_mode=((1, 0), 2), input_dilation=(2, 3), filter_flip=True, filter_dilation=(1, 2), num_groups=2)


@pytest.mark.parametrize("mode", backend_params(*EVERY_BACKEND))
def test_forward_and_gradients_in_every_backend(mode):
    x_val, w_val, g_val, out_shape = _problem(
        (2, 4, 3, 4),
        (4, 3, 3, 2),
        PARAMS["border_mode"],
        PARAMS["input_dilation"],
        PARAMS["filter_dilation"],
        2,
        extra=1,
    )
    x, w, g = pt.tensor4("x"), pt.tensor4("w"), pt.tensor4("g")
    y = conv2d_transpose(x, w, out_shape, **PARAMS)
    assert isinstance(y.owner.op, ops.AbstractConv2d_gradInputs)
    dx, dw = pytensor.grad(None, [x, w], known_grads={y: g})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no object-mode fallback
        f = pytensor.function([x, w, g], [y, dx, dw], mode=mode)
    y_val, dx_val, dw_val = f(x_val, w_val, g_val)
    np.testing.assert_allclose(y_val, transpose_conv_ref(x_val, w_val, out_shape[2:], **PARAMS), atol=1e-10)
    dx_ref, dw_ref = _adjoint_grads(x_val, w_val, g_val, **PARAMS)
    np.testing.assert_allclose(dx_val, dx_ref, atol=1e-10)
    np.testing.assert_allclose(dw_val, dw_ref, atol=1e-10)


def test_sweep_border_modes_dilation_groups():
    """Every border mode x stride x dilation x groups x flip, 2d and 3d, in one compiled function."""
    inputs, outputs, values, expected = [], [], [], []
    modes_2d = ["valid", "full", "half", 1, (2, 1), ((1, 0), (0, 2))]
    i = 0
    for bm in modes_2d:
        for stride, dilation in (((1, 1), (1, 1)), ((2, 1), (1, 2)), ((3, 2), (2, 1))):
            for groups in (1, 2):
                params = dict(
                    border_mode=bm,
                    input_dilation=stride,
                    filter_dilation=dilation,
                    num_groups=groups,
                    filter_flip=i % 3 != 0,
                )
                x_val, w_val, _, out_shape = _problem(
                    (2, 4, 3, 3), (4, 2, 3, 2), bm, stride, dilation, groups, extra=i % 3, seed=i
                )
                if min(out_shape[2:]) < 1:
                    continue
                x, w = pt.tensor4(), pt.tensor4()
                inputs += [x, w]
                outputs.append(conv2d_transpose(x, w, out_shape, **params))
                values += [x_val, w_val]
                expected.append(transpose_conv_ref(x_val, w_val, out_shape[2:], **params))
                i += 1
    for bm, stride, groups in (("half", (2, 1, 2), 1), ((1, 0, (0, 1)), (1, 2, 1), 2), ("full", (1, 1, 3), 2)):
        x_val, w_val, _, out_shape = _problem((1, 2, 2, 3, 2), (2, 2, 2, 1, 3), bm, stride, (1, 1, 1), groups, 1, i)
        params = dict(border_mode=bm, input_dilation=stride, num_groups=groups)
        x, w = pt.tensor5(), pt.tensor5()
        inputs += [x, w]
        outputs.append(conv3d_transpose(x, w, out_shape, **params))
        values += [x_val, w_val]
        expected.append(transpose_conv_ref(x_val, w_val, out_shape[2:], **params))
    assert len(expected) > 35
    f = pytensor.function(inputs, outputs, mode="FAST_COMPILE")
    for got, want in zip(f(*values), expected):
        np.testing.assert_allclose(got, want, atol=1e-10)


@pytest.mark.parametrize("nd", [2, 3])
def test_against_pytorch_conv_transpose(nd):
    """PyTorch's conv_transpose{2,3}d (cross-correlation: filter_flip=False), output_padding included."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    if nd == 2:
        x_val, w_val = rng.standard_normal((2, 4, 5, 4)), rng.standard_normal((4, 3, 3, 2))
        stride, padding, out_pad, dilation, groups = (2, 3), (1, 0), (1, 2), (1, 2), 2
        fn, torch_fn = conv2d_transpose, torch.nn.functional.conv_transpose2d
    else:
        x_val, w_val = rng.standard_normal((1, 2, 3, 2, 3)), rng.standard_normal((2, 2, 2, 3, 2))
        stride, padding, out_pad, dilation, groups = (2, 1, 2), (0, 1, 1), (1, 0, 0), (1, 1, 2), 1
        fn, torch_fn = conv3d_transpose, torch.nn.functional.conv_transpose3d
    xt = torch.from_numpy(x_val).requires_grad_()
    wt = torch.from_numpy(w_val).requires_grad_()
    yt = torch_fn(xt, wt, None, stride, padding, out_pad, groups, dilation)
    g_val = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.from_numpy(g_val))
    x, w, g = (pt.tensor(shape=(None,) * (nd + 2)) for _ in range(3))
    y = fn(
        x,
        w,
        tuple(yt.shape),
        border_mode=padding,
        input_dilation=stride,
        filter_flip=False,
        filter_dilation=dilation,
        num_groups=groups,
    )
    f = pytensor.function([x, w, g], [y, *pytensor.grad(None, [x, w], known_grads={y: g})], mode="NUMBA")
    y_val, dx_val, dw_val = f(x_val, w_val, g_val)
    np.testing.assert_allclose(y_val, yt.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(dx_val, xt.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(dw_val, wt.grad.numpy(), atol=1e-10)


def test_verify_grad_and_unshared_transpose():
    rng = np.random.default_rng(9)
    x_val, w_val, _, out_shape = _problem((2, 4, 3, 3), (4, 1, 2, 3), "half", (2, 1), (1, 1), 2, extra=1)
    params = dict(border_mode="half", input_dilation=(2, 1), num_groups=2)
    verify_grad(lambda x, w: conv2d_transpose(x, w, out_shape, **params), [x_val, w_val], rng=rng, mode="FAST_COMPILE")
    # unshared: filters (in_channels, in_rows, in_cols, out_channels // groups, kh, kw); the
    # transposed convolution is the adjoint of the unshared forward convolution
    wu = rng.standard_normal((4, 3, 3, 1, 2, 3))
    x, w, img = pt.tensor4(), pt.tensor(shape=(None,) * 6), pt.tensor4()
    y = conv2d_transpose(x, w, out_shape, unshared=True, **params)
    img_val = rng.standard_normal(out_shape)
    fwd = conv2d(img, w, unshared=True, border_mode="half", subsample=(2, 1), num_groups=2)
    f = pytensor.function([x, w, img], [(y * img).sum(), (fwd * x).sum()], mode="FAST_COMPILE")
    lhs, rhs = f(x_val, wu, img_val)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10)
    fwd_ref = unshared_conv_ref(img_val, wu, border_mode="half", subsample=(2, 1), num_groups=2)
    np.testing.assert_allclose(rhs, (fwd_ref * x_val).sum(), rtol=1e-10)
    verify_grad(
        lambda x, w: conv2d_transpose(x, w, out_shape, unshared=True, **params),
        [x_val, wu],
        rng=rng,
        mode="FAST_COMPILE",
    )


def test_bad_output_shape_names_the_argument():
    x, w = pt.tensor(shape=(2, 4, 3, 3)), pt.tensor(shape=(4, 1, 3, 2))
    params = dict(border_mode=1, input_dilation=(3, 2), num_groups=2)
    possible = r"output_shape \(2, 2, 11, 7\) is not a possible output.*\[\(7, 9\), \(4, 5\)\]"
    with pytest.raises(ValueError, match=possible):
        conv2d_transpose(x, w, (2, 2, 11, 7), **params)
    with pytest.raises(ValueError, match=r"num_groups \(2\) must divide the input channels \(output_shape\[1\] = 3\)"):
        conv2d_transpose(x, w, (2, 3, 8, 5), **params)
    with pytest.raises(ValueError, match=r"input.shape\[0\] = 2 must equal output_shape\[0\] = 3"):
        conv2d_transpose(x, w, (3, 2, 8, 5), **params)
    with pytest.raises(ValueError, match="output_shape must have 4 entries"):
        conv2d_transpose(x, w, (8, 5), **params)
    with pytest.raises(ValueError, match=r"output_shape\[3\] \(a spatial size\) is required"):
        conv2d_transpose(x, w, (2, 2, 8, None), **params)
    with pytest.raises(ValueError, match="input_dilation"):
        conv2d_transpose(x, w, (2, 2, 8, 5), border_mode=1, input_dilation=(0, 1), num_groups=2)
    with pytest.raises(ValueError, match=r"filters must be a 5-d tensor"):
        conv3d_transpose(pt.tensor5(), pt.tensor4(), (1, 1, 2, 2, 2))
    assert conv2d_transpose(x, w, (None, None, 8, 5), **params).type.shape == (2, 2, 8, 5)


@pytest.mark.parametrize("mode", ["NUMBA", "FAST_COMPILE"])
def test_bad_symbolic_output_shape_at_run_time(mode):
    x, w = pt.tensor4("x"), pt.tensor4("w")
    rows, cols = pt.iscalar("rows"), pt.iscalar("cols")
    f = pytensor.function(
        [x, w, rows, cols], conv2d_transpose(x, w, (None, None, rows, cols), input_dilation=(2, 2)), mode=mode
    )
    x_val, w_val = np.ones((1, 2, 3, 3)), np.ones((2, 1, 2, 2))
    assert f(x_val, w_val, 6, 7).shape == (1, 1, 6, 7)  # 6 and 7 are both possible with stride 2
    with pytest.raises(ValueError, match="does not match"):
        f(x_val, w_val, 8, 6)
