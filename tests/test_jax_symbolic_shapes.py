"""JAX mode with symbolic shapes: every Op, forward and gradients, on inputs whose static shape
is unknown (shared variables with ``shape=(None, ...)``, as ``pm.Data`` makes them, and plain
symbolic inputs), against the same graph on the Python linker; second derivatives; shapes
given as scalar inputs; clear errors for shapes computed from values, and the other backends'
shape errors."""

import subprocess
import sys
import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import get_mode

from pytensor_nnet import conv2d, conv3d
from pytensor_nnet import sparse as S
from pytensor_nnet.abstract_conv import (
    bilinear_kernel_1D,
    bilinear_kernel_2D,
    bilinear_upsampling,
    causal_conv1d,
    conv2d_grad_wrt_inputs,
    conv2d_grad_wrt_weights,
    conv2d_transpose,
    separable_conv2d,
)
from pytensor_nnet.blocksparse import sparse_block_dot
from pytensor_nnet.rewriting.jax_shapes import StaticCheckAndRaise, StaticShape, StaticSplit
from tests.backends import PY_FAST_RUN

pytest.importorskip("jax")


def _transpose(x, w):
    # output_shape from the input's symbolic shape: stride 2 admits two sizes per axis.
    out = (None, None, x.shape[2] * 2, x.shape[3] * 2 + 1)
    return conv2d_transpose(x, w, out, border_mode=1, input_dilation=(2, 2), filter_flip=False)


# name -> (builder of the output from symbolic inputs, their shapes; ("int", high, shape): indices)
CASES = {
    "conv2d_groups_stride_dilation_asymmetric": (
        lambda x, w: conv2d(x, w, border_mode=((1, 2), (0, 1)), subsample=(2, 3), filter_dilation=(1, 2), num_groups=2),
        [(2, 4, 11, 12), (6, 2, 3, 3)],
    ),
    "conv2d_half_stride": (
        lambda x, w: conv2d(x, w, border_mode="half", subsample=(2, 2)),
        [(2, 3, 10, 9), (4, 3, 3, 3)],
    ),
    "conv2d_full_correlation": (
        lambda x, w: conv2d(x, w, border_mode="full", subsample=(2, 1), filter_flip=False),
        [(2, 3, 7, 6), (4, 3, 3, 2)],
    ),
    "conv3d_groups_stride": (
        lambda x, w: conv3d(x, w, border_mode="half", subsample=(2, 1, 2), num_groups=3),
        [(2, 3, 6, 5, 7), (6, 1, 3, 2, 3)],
    ),
    "unshared": (
        lambda x, w: conv2d(x, w, unshared=True, subsample=(2, 2), border_mode=1, num_groups=2),
        [(2, 4, 7, 7), (4, 4, 4, 2, 3, 3)],
    ),
    "grad_wrt_inputs": (
        lambda top, w: conv2d_grad_wrt_inputs(top, w, (None, None, 9, 10), subsample=(2, 2), border_mode=(1, 0)),
        [(2, 4, 5, 4), (4, 3, 3, 3)],
    ),
    "grad_wrt_weights": (
        lambda x, top: conv2d_grad_wrt_weights(x, top, (4, 3, 3, 3), subsample=(2, 2), border_mode="half"),
        [(2, 3, 9, 9), (2, 4, 5, 5)],
    ),
    "transpose_output_shape_from_input": (_transpose, [(2, 4, 5, 6), (4, 3, 4, 4)]),
    "separable": (
        lambda x, d, p: separable_conv2d(x, d, p, 3, border_mode="half", subsample=(2, 2)),
        [(2, 3, 8, 8), (6, 1, 3, 3), (5, 6, 1, 1)],
    ),
    "causal_dilated": (lambda x, w: causal_conv1d(x, w, (3, 2, 4), filter_dilation=2), [(2, 2, 10), (3, 2, 4)]),
    "causal_strided": (lambda x, w: causal_conv1d(x, w, (3, 2, 4), subsample=2), [(2, 2, 10), (3, 2, 4)]),
    "upsampling_1d_kernel": (lambda x: bilinear_upsampling(x, 2), [(2, 2, 3, 4)]),
    "upsampling_2d_kernel": (lambda x: bilinear_upsampling(x, 3, use_1D_kernel=False), [(2, 2, 3, 4)]),
    "upsampling_fractional": (lambda x: bilinear_upsampling(x, frac_ratio=((3, 2), (1, 1))), [(2, 2, 3, 4)]),
    "sparse_block_dot": (
        lambda W, h, b, i_idx, o_idx: sparse_block_dot(W, h, i_idx, b, o_idx),
        [(5, 4, 3, 2), (3, 2, 3), (4, 2), ("int", 5, (3, 2)), ("int", 4, (3, 3))],
    ),
    "sparse_convolve": (lambda k, im: S.convolve(k, (3, 3), 4, im, (2, 6, 6), step=(1, 2))[0], [(4, 18), (3, 72)]),
    "sparse_convolve_full_bias": (
        lambda k, im, b: S.convolve(k, (3, 3), 4, im, (6, 6), bias=b, mode="full", flatten=False)[0],
        [(4, 9), (3, 36), (4,)],
    ),
    "sparse_max_pool": (lambda im: S.max_pool(im, (2, 6, 6), (2, 3))[0], [(3, 72)]),
}


def _values(shapes, rng):
    return [rng.integers(s[1], size=s[2]) if s[0] == "int" else rng.standard_normal(s) for s in shapes]


def _symbolic(values, kind):
    """Variables of unknown static shape holding ``values``: (variables, function inputs, their values)."""
    if kind == "shared":
        return [pytensor.shared(v, shape=(None,) * v.ndim) for v in values], [], []
    variables = [pt.tensor(dtype=v.dtype, shape=(None,) * v.ndim) for v in values]
    return variables, variables, values


def _outputs_and_gradients(build, variables):
    out = build(*variables)
    cost = (out**2).sum() + out.sum()
    floats = [v for v in variables if v.dtype.startswith("float")]
    return [out, *pytensor.grad(cost, floats)]


def _compare(inputs, outputs, values, atol=1e-10):
    """JAX against the Python linker; no warning (e.g. a skipped check) when compiling for JAX."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = pytensor.function(inputs, outputs, mode="JAX")
    expected = pytensor.function(inputs, outputs, mode=PY_FAST_RUN)(*values)
    got = f(*values)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        np.testing.assert_allclose(np.asarray(g), e, atol=atol, rtol=1e-10)
    return f


@pytest.mark.parametrize("kind", ["shared", "input"])
@pytest.mark.parametrize("case", list(CASES))
def test_forward_and_gradients_with_unknown_static_shapes(case, kind):
    build, shapes = CASES[case]
    values = _values(shapes, np.random.default_rng(len(case)))
    variables, inputs, input_values = _symbolic(values, kind)
    _compare(inputs, _outputs_and_gradients(build, variables), input_values)


def bilinear_upsampling_3(x):
    return bilinear_upsampling(x, 3)


def test_shapes_change_between_calls():
    """The shape graphs are evaluated again for each new input shape (JAX traces again)."""
    rng = np.random.default_rng(0)
    x = pytensor.shared(rng.standard_normal((2, 4, 5, 6)), shape=(None,) * 4)
    w = pytensor.shared(rng.standard_normal((4, 3, 4, 4)), shape=(None,) * 4)
    outputs = _outputs_and_gradients(_transpose, [x, w]) + _outputs_and_gradients(bilinear_upsampling_3, [x])
    f = pytensor.function([], outputs, mode="JAX")
    ref = pytensor.function([], outputs, mode=PY_FAST_RUN)
    for shape in [(2, 4, 5, 6), (3, 4, 7, 3)]:
        x.set_value(rng.standard_normal(shape))
        for got, expected in zip(f(), ref(), strict=True):
            np.testing.assert_allclose(np.asarray(got), expected, atol=1e-10)
    assert f()[0].shape == (3, 3, 14, 7)


def test_gradient_of_a_slice():
    """The gradient of ``y[:, :, 5]`` allocates zeros of ``y``'s shape, computed from ``x``'s."""
    rng = np.random.default_rng(7)
    x, w = pt.tensor3("x"), pt.tensor3("w")
    y = causal_conv1d(x, w, (3, 2, 4), filter_dilation=2)
    _compare(
        [x, w],
        pytensor.grad(y[:, :, 5].sum(), [x, w]),
        [rng.standard_normal((2, 2, 10)), rng.standard_normal((3, 2, 4))],
    )


def test_second_derivatives():
    rng = np.random.default_rng(1)
    x = pytensor.shared(rng.standard_normal((2, 4, 9, 8)), shape=(None,) * 4)
    w = pytensor.shared(rng.standard_normal((4, 2, 3, 3)), shape=(None,) * 4)
    wt = pytensor.shared(rng.standard_normal((4, 3, 4, 4)), shape=(None,) * 4)
    y = conv2d(x, w, subsample=(2, 2), border_mode="half", num_groups=2)
    dw = pytensor.grad((y**2).sum(), w)
    t = _transpose(x, wt)
    dx = pytensor.grad((t**2).sum(), x)
    outputs = pytensor.grad((dw**2).sum() + (dx**2).sum(), [x, w, wt])
    _compare([], outputs, [], atol=1e-8)


def test_scalar_shape_inputs_are_static_arguments():
    """Scalars used only as shapes become static arguments: one JAX compilation per value."""
    rng = np.random.default_rng(2)
    x, w = pt.tensor4("x"), pt.tensor4("w")
    rows, cols = pt.iscalar("rows"), pt.iscalar("cols")
    outputs = _outputs_and_gradients(
        lambda x, w: conv2d_transpose(x, w, (None, None, rows, cols), border_mode=1, input_dilation=(2, 2)), [x, w]
    )
    f = pytensor.function([x, w, rows, cols], outputs, mode="JAX")
    ref = pytensor.function([x, w, rows, cols], outputs, mode=PY_FAST_RUN)
    xv, wv = rng.standard_normal((2, 4, 5, 6)), rng.standard_normal((4, 3, 4, 4))
    for size in [(10, 12), (11, 13)]:
        for got, expected in zip(f(xv, wv, *size), ref(xv, wv, *size), strict=True):
            np.testing.assert_allclose(np.asarray(got), expected, atol=1e-10)
    assert f(xv, wv, 11, 13)[0].shape == (2, 3, 11, 13)


def test_the_rewrite_makes_shape_inputs_concrete():
    rng = np.random.default_rng(3)
    x = pytensor.shared(rng.standard_normal((2, 2, 3, 4)), shape=(None,) * 4)
    # The gradient of a concatenation is a Split whose sizes are computed from x's shape.
    cost = (bilinear_upsampling(pt.concatenate([x, x[:, :, :1]], axis=2), 2) ** 2).sum()
    f = pytensor.function([], pytensor.grad(cost, x), mode="JAX")
    ops = {type(node.op) for node in f.maker.fgraph.apply_nodes}
    assert {StaticShape, StaticSplit} <= ops
    ref = pytensor.function([], pytensor.grad(cost, x), mode=PY_FAST_RUN)
    np.testing.assert_allclose(np.asarray(f()), ref(), atol=1e-10)
    # In other modes nothing changes.
    assert not {StaticShape, StaticSplit} & {type(node.op) for node in ref.maker.fgraph.apply_nodes}


def test_shape_computed_from_values_names_the_variable():
    x, w = pt.tensor4("x"), pt.tensor4("w")
    rows = pt.cast(x.sum() > 0, "int64") + 10
    y = conv2d_transpose(x, w, (None, None, rows, 12), border_mode=1, input_dilation=(2, 2))
    with pytest.raises(NotImplementedError, match=r"output_shape\[2:\] of conv2d_transpose.*values of `x`"):
        pytensor.function([x, w], y, mode="JAX")


def test_scalar_shape_input_used_as_a_value_too():
    rng = np.random.default_rng(4)
    x, w, rows = pt.tensor4("x"), pt.tensor4("w"), pt.iscalar("rows")
    y = conv2d_transpose(x, w, (None, None, rows, 12), border_mode=1, input_dilation=(2, 2)) * rows
    _compare([x, w, rows], [y], [rng.standard_normal((2, 4, 5, 6)), rng.standard_normal((4, 3, 4, 4)), 10])
    # The bilinear kernels with a symbolic ratio: an arange of it, divided by it.
    ratio = pt.iscalar("ratio")
    kernels = [bilinear_kernel_1D(ratio), bilinear_kernel_2D(ratio, normalize=False)]
    f = _compare([ratio], kernels, [3])
    np.testing.assert_allclose(f(2)[0], [0.5, 1, 0.5])


def test_scalar_shape_input_that_is_also_an_output_is_named():
    rng = np.random.default_rng(4)
    x, w, rows = pt.tensor4("x"), pt.tensor4("w"), pt.iscalar("rows")
    y = conv2d_transpose(x, w, (None, None, rows, 12), border_mode=1, input_dilation=(2, 2))
    f = pytensor.function([x, w, rows], [y, rows], mode="JAX")
    with pytest.raises(NotImplementedError, match="computed from `rows`"):
        f(rng.standard_normal((2, 4, 5, 6)), rng.standard_normal((4, 3, 4, 4)), 10)


def test_excluding_the_rewrite_gives_a_clear_error():
    rng = np.random.default_rng(5)
    x = pytensor.shared(rng.standard_normal((2, 3, 6, 6)), shape=(None,) * 4)
    w = pytensor.shared(rng.standard_normal((4, 3, 3, 3)), shape=(None,) * 4)
    dw = pytensor.grad(conv2d(x, w).sum(), w)
    f = pytensor.function([], dw, mode=get_mode("JAX").excluding("pytensor_nnet_jax_conv_static_shape"))
    with pytest.raises(NotImplementedError, match="pytensor_nnet_jax_conv_static_shape"):
        f()


@pytest.mark.parametrize(
    "build, shapes, match",
    [
        (lambda x, w: conv2d(x, w), [(2, 4, 5, 6), (4, 3, 3, 3)], r"input channels \(input.shape\[1\] = 4\)"),
        (lambda x, w: conv2d(x, w), [(2, 3, 5, 6), (4, 3, 6, 3)], "larger than the padded input"),
        (
            lambda x, w: conv2d_transpose(x, w, (None, None, 9, 12), border_mode=1, input_dilation=(2, 2)),
            [(2, 4, 5, 6), (4, 3, 4, 4)],
            r"input.shape spatial \(5, 6\) does not match the convolution's output spatial shape \(4, 6\)",
        ),
        (lambda k, im: S.convolve(k, (3, 3), 4, im, (2, 6, 6))[0], [(4, 17), (3, 72)], r"kerns.shape\[1\] must be 18"),
        (lambda im: S.max_pool(im, (2, 6, 6), (2, 3))[0], [(3, 70)], r"images.shape\[1\] must be 72"),
    ],
    ids=["channels", "filter_too_large", "transpose_output_shape", "sparse_convolve_kerns", "sparse_max_pool"],
)
def test_bad_shapes_raise_value_errors_as_in_the_other_backends(build, shapes, match):
    values = _values(shapes, np.random.default_rng(6))
    variables, inputs, input_values = _symbolic(values, "input")
    y = build(*variables)
    with pytest.raises(ValueError):
        pytensor.function(inputs, y, mode=PY_FAST_RUN)(*input_values)
    with pytest.raises(ValueError, match=match):
        pytensor.function(inputs, y, mode="JAX")(*input_values)


def test_static_check_and_raise_and_static_shape_run_outside_jax():
    """The rewrite's Ops have a ``perform`` (e.g. for debugging a rewritten graph)."""
    from pytensor_nnet.rewriting.jax_shapes import concrete_scalars

    x = pt.tensor4("x")
    (size,) = concrete_scalars([x.shape[2] * 2 + x.shape[3]])
    assert isinstance(size.owner.op, StaticShape)
    check = StaticCheckAndRaise(ValueError, "too small")(x, size > 7)
    f = pytensor.function([x], [size, check], mode=PY_FAST_RUN)
    assert int(f(np.zeros((1, 1, 3, 4)))[0]) == 10
    with pytest.raises(ValueError, match="too small"):
        f(np.zeros((1, 1, 2, 3)))


def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300)


def test_the_rewrites_do_not_import_jax():
    # Stand in for the JAX registrations: what remains of the package must not import jax.
    result = _run(
        "import sys, types\n"
        "sys.modules['pytensor_nnet.dispatch.jax'] = types.ModuleType('pytensor_nnet.dispatch.jax')\n"
        "import pytensor_nnet, pytensor_nnet.rewriting.jax_shapes, pytensor_nnet.rewriting.conv\n"
        "assert 'jax' not in sys.modules, 'jax was imported'\n"
    )
    assert result.returncode == 0, result.stderr


def test_the_conv_dispatch_module_registers_on_its_own():
    result = _run(
        "from pytensor.link.jax.dispatch import jax_funcify\n"
        "import pytensor_nnet.dispatch.jax.conv\n"
        "from pytensor_nnet.conv.ops import AbstractConv, AbstractConv_gradInputs\n"
        "from pytensor_nnet.rewriting.jax_shapes import StaticShape\n"
        "for cls in (AbstractConv, AbstractConv_gradInputs, StaticShape):\n"
        "    assert jax_funcify.dispatch(cls).__module__.startswith('pytensor_nnet'), cls\n"
    )
    assert result.returncode == 0, result.stderr
