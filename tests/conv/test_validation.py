"""Bad shapes give the same clear message in every Op, at graph build and at run time.

The gradient Ops check the whole forward geometry: a cost linear in a convolution's output
never runs the forward Op, so its gradients must reject what the forward Op would. Every
run-time case runs with the Python linker, in Numba, JAX and PyTorch (few graphs: each
compiles once and is fed several bad shapes).
"""

import re

import numba
import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pytensor_nnet import (
    AbstractConv_gradInputs,
    AbstractConv_gradWeights,
    conv2d,
    conv2d_grad_wrt_inputs,
    conv2d_grad_wrt_weights,
    conv3d,
    shapes,
)
from pytensor_nnet.abstract_conv import conv2d_transpose
from pytensor_nnet.conv import ops
from tests.backends import PY_FAST_RUN, backend_params
from tests.reference.conv import conv_grads_ref

# PY_FAST_RUN: the rewrites of a real compilation drop the forward Op from the gradient graphs
# of linear costs.
MODES = pytest.mark.parametrize("mode", backend_params("NUMBA", "PY_FAST_RUN", "JAX", "PYTORCH"))
# the same; compiling the gradient graphs with torch.compile takes about a minute
MODES_SLOW_PYTORCH = pytest.mark.parametrize(
    "mode", backend_params("NUMBA", "PY_FAST_RUN", "JAX", "PYTORCH", slow=("PYTORCH",))
)


def _raises(f, args, message):
    """Call ``f(*args)``; the ValueError must contain ``message`` verbatim."""
    with pytest.raises(ValueError, match=re.escape(message)):
        f(*args)


def _zeros(*shapes_):
    return [np.zeros(s) for s in shapes_]


def _channels(c, cg, groups, image="input.shape", filters="filters.shape", axis=1):
    return (
        f"input channels ({image}[1] = {c}) must equal filters' input channels ({filters}[{axis}] = {cg}) "
        f"* num_groups ({groups})"
    )


# ----------------------------------------------------------------------------- linear costs
@MODES_SLOW_PYTORCH
def test_gradients_of_a_linear_cost_check_the_forward_geometry(mode):
    """``grad(conv2d(x, w).sum(), x)`` (and wrt ``w``) never runs the forward Op."""
    x, w = pt.tensor4("x"), pt.tensor4("w")
    cost = conv2d(x, w, num_groups=2, border_mode=(1, 0)).sum()
    gx, gw = pytensor.grad(cost, [x, w])
    f_gx = pytensor.function([x, w], gx, mode=mode)
    f_gw = pytensor.function([x, w], gw, mode=mode)
    for f in (f_gx, f_gw):
        assert not any(type(node.op) is ops.AbstractConv2d for node in f.maker.fgraph.apply_nodes)
    for f in (f_gx, f_gw):
        _raises(f, _zeros((2, 6, 5, 5), (4, 2, 3, 3)), _channels(6, 2, 2))
        _raises(f, _zeros((2, 4, 5, 5), (3, 2, 3, 3)), "num_groups (2) must divide the number of filters")
        _raises(
            f, _zeros((2, 3, 5, 5), (4, 1, 3, 3)), "num_groups (2) must divide the input channels (input.shape[1] = 3)"
        )
        _raises(
            f,
            _zeros((2, 4, 5, 2), (4, 2, 3, 3)),
            "the (dilated) filter (filters.shape spatial (3, 3), filter_dilation (1, 1)) is larger than the "
            "padded input (input.shape spatial (5, 2), border_mode ((1, 1), (0, 0))) on spatial axis 1",
        )
    # consistent shapes: the gradients of the sum, against the reference
    rng = np.random.default_rng(0)
    xv, wv = rng.standard_normal((2, 4, 5, 5)), rng.standard_normal((4, 2, 3, 3))
    dx_ref, dw_ref = conv_grads_ref(xv, wv, np.ones((2, 4, 5, 3)), border_mode=(1, 0), num_groups=2)
    np.testing.assert_allclose(f_gx(xv, wv), dx_ref, atol=1e-12)
    np.testing.assert_allclose(f_gw(xv, wv), dw_ref, atol=1e-12)


def test_the_first_example_of_the_report():
    x, w = pt.tensor4("x"), pt.tensor4("w")
    f = pytensor.function([x, w], pytensor.grad(conv2d(x, w).sum(), [x, w]), mode=PY_FAST_RUN)
    _raises(f, _zeros((8, 3, 32, 32), (16, 4, 5, 5)), _channels(3, 4, 1))


@MODES_SLOW_PYTORCH
def test_unshared_gradients_of_a_linear_cost(mode):
    x, w = pt.tensor4("x"), pt.tensor("w", shape=(None,) * 6)
    gx, gw = pytensor.grad(conv2d(x, w, unshared=True, num_groups=2).sum(), [x, w])
    f = pytensor.function([x, w], [gx, gw], mode=mode)
    _raises(
        f,
        _zeros((2, 4, 5, 6), (6, 4, 4, 2, 3, 3)),
        "the unshared filters' output region (filters.shape[1:3] = (4, 4)) must match the output's spatial "
        "shape (3, 4) (input.shape spatial (5, 6), border_mode 'valid', subsample (1, 1), filter_dilation (1, 1))",
    )
    _raises(f, _zeros((2, 4, 5, 6), (6, 3, 4, 3, 3, 3)), _channels(4, 3, 2, axis=3))
    gx_v, gw_v = f(*_zeros((2, 4, 5, 6), (6, 3, 4, 2, 3, 3)))
    assert gx_v.shape == (2, 4, 5, 6) and gw_v.shape == (6, 3, 4, 2, 3, 3)


@MODES
def test_other_ranks(mode):
    x, w = pt.tensor5("x"), pt.tensor5("w")
    f = pytensor.function([x, w], pytensor.grad(conv3d(x, w, subsample=(1, 2, 1)).sum(), [x, w]), mode=mode)
    _raises(f, _zeros((1, 2, 4, 5, 4), (3, 1, 2, 2, 3)), _channels(2, 1, 1))
    _raises(
        f,
        _zeros((1, 2, 4, 5, 2), (3, 2, 2, 2, 3)),
        "the (dilated) filter (filters.shape spatial (2, 2, 3), filter_dilation (1, 1, 1)) is larger than the "
        "padded input (input.shape spatial (4, 5, 2), border_mode 'valid') on spatial axis 2",
    )
    assert [a.shape for a in f(*_zeros((1, 2, 4, 5, 4), (3, 2, 2, 2, 3)))] == [(1, 2, 4, 5, 4), (3, 2, 2, 2, 3)]
    x1, w1 = pt.tensor3("x"), pt.tensor3("w")
    y1 = ops.AbstractConv(1, filter_dilation=2)(x1, w1)
    f1 = pytensor.function([x1, w1], pytensor.grad(y1.sum(), [x1, w1]), mode=mode)
    _raises(f1, _zeros((2, 3, 6), (4, 2, 3)), _channels(3, 2, 1))
    _raises(
        f1,
        _zeros((2, 3, 4), (4, 3, 3)),
        "the (dilated) filter (filters.shape spatial (3,), filter_dilation (2,)) is larger than the padded "
        "input (input.shape spatial (4,), border_mode 'valid') on spatial axis 0",
    )


# ----------------------------------------------------------------------------- public functions
@MODES
def test_grad_wrt_inputs_checks_input_shape_at_run_time(mode):
    gy, w = pt.tensor4("output_grad"), pt.tensor4("filters")
    n, c, rows, cols = (pt.lscalar(s) for s in "ncrk")
    dx = conv2d_grad_wrt_inputs(gy, w, (n, c, rows, cols), subsample=(2, 1))
    f = pytensor.function([gy, w, n, c, rows, cols], dx, mode=mode)
    gyv, wv = _zeros((2, 4, 3, 5), (4, 3, 3, 3))
    assert f(gyv, wv, 2, 3, 8, 7).shape == (2, 3, 8, 7)
    _raises(f, (gyv, wv, 3, 3, 8, 7), "batch sizes differ: output_grad.shape[0] = 2 must equal input_shape[0] = 3")
    _raises(f, (gyv, wv, 2, 5, 8, 7), _channels(5, 3, 1, image="input_shape"))
    _raises(f, (gyv, wv[:, :2], 2, 3, 8, 7), _channels(3, 2, 1, image="input_shape"))
    _raises(
        f,
        (gyv[:, :3], wv, 2, 3, 8, 7),
        "channels differ: output_grad.shape[1] = 3 must equal the number of filters filters.shape[0] = 4",
    )
    _raises(
        f,
        (gyv, wv, 2, 3, 10, 7),
        "output_grad.shape spatial (3, 5) does not match the convolution's output spatial shape (4, 5) "
        "(input_shape spatial (10, 7), border_mode 'valid', subsample (2, 1), filter_dilation (1, 1), "
        "filters.shape spatial (3, 3))",
    )
    _raises(
        f,
        (gyv, wv, 2, 3, 8, 0),
        "input_shape entries must be positive (batch and channels non-negative); got (2, 3, 8, 0)",
    )


@MODES
def test_grad_wrt_weights_checks_filter_shape_at_run_time(mode):
    x, gy = pt.tensor4("input"), pt.tensor4("output_grad")
    m, c, rows, cols = (pt.lscalar(s) for s in "mcrk")
    dw = conv2d_grad_wrt_weights(x, gy, (m, c, rows, cols), border_mode="half", num_groups=2)
    f = pytensor.function([x, gy, m, c, rows, cols], dw, mode=mode)
    xv, gyv = _zeros((2, 4, 6, 5), (2, 6, 6, 5))
    assert f(xv, gyv, 6, 2, 3, 3).shape == (6, 2, 3, 3)
    _raises(
        f,
        (xv, gyv, 8, 2, 3, 3),
        "channels differ: output_grad.shape[1] = 6 must equal the number of filters filter_shape[0] = 8",
    )
    _raises(f, (xv, gyv, 6, 1, 3, 3), _channels(4, 1, 2, filters="filter_shape"))
    _raises(f, (xv[:1], gyv, 6, 2, 3, 3), "batch sizes differ: output_grad.shape[0] = 2 must equal input.shape[0] = 1")
    _raises(f, (xv[:, :3], gyv, 6, 2, 3, 3), "num_groups (2) must divide the input channels (input.shape[1] = 3)")
    _raises(
        f, (xv, gyv[:, :5], 6, 2, 3, 3), "num_groups (2) must divide the number of filters (output_grad.shape[1] = 5)"
    )
    _raises(
        f,
        (xv, gyv, 6, 2, 3, 4),
        "output_grad.shape spatial (6, 5) does not match the convolution's output spatial shape (6, 6) "
        "(input.shape spatial (6, 5), border_mode 'half', subsample (1, 1), filter_dilation (1, 1), "
        "filter_shape spatial (3, 4))",
    )


@MODES
def test_conv2d_transpose_names_its_own_arguments_at_run_time(mode):
    x, w = pt.tensor4("input"), pt.tensor4("filters")
    n, c, rows, cols = (pt.lscalar(s) for s in "ncrk")
    y = conv2d_transpose(x, w, (n, c, rows, cols), input_dilation=(2, 2))
    f = pytensor.function([x, w, n, c, rows, cols], y, mode=mode)
    xv, wv = _zeros((1, 2, 3, 3), (2, 1, 2, 2))
    assert f(xv, wv, 1, 1, 6, 7).shape == (1, 1, 6, 7)
    _raises(f, (xv, wv, 2, 1, 6, 7), "batch sizes differ: input.shape[0] = 1 must equal output_shape[0] = 2")
    _raises(f, (xv, wv, 1, 3, 6, 7), _channels(3, 1, 1, image="output_shape"))
    _raises(
        f,
        (xv, wv, 1, 1, 8, 6),
        "input.shape spatial (3, 3) does not match the convolution's output spatial shape (4, 3) "
        "(output_shape spatial (8, 6), border_mode 'valid', input_dilation (2, 2), filter_dilation (1, 1), "
        "filters.shape spatial (2, 2))",
    )


def test_public_functions_check_static_shapes_with_the_same_messages():
    """Static shapes: the same messages when the graph is built."""
    gy, w = pt.tensor(shape=(2, 4, 3, 5)), pt.tensor(shape=(4, 3, 3, 3))
    with pytest.raises(
        ValueError, match=re.escape("batch sizes differ: output_grad.shape[0] = 2 must equal input_shape[0] = 3")
    ):
        conv2d_grad_wrt_inputs(gy, w, (3, 3, 8, 7), subsample=(2, 1))
    with pytest.raises(ValueError, match=re.escape(_channels(5, 3, 1, image="input_shape"))):
        conv2d_grad_wrt_inputs(gy, w, (2, 5, 8, 7), subsample=(2, 1))
    with pytest.raises(ValueError, match=re.escape("output_grad.shape spatial (3, 5) does not match")):
        conv2d_grad_wrt_inputs(gy, w, (None, None, 10, 7), subsample=(2, 1))
    with pytest.raises(ValueError, match=re.escape("input_shape[3] (a spatial size) is required")):
        conv2d_grad_wrt_inputs(gy, w, (2, 3, 8, None))
    x, gy = pt.tensor(shape=(2, 4, 6, 5)), pt.tensor(shape=(2, 6, 6, 5))
    with pytest.raises(ValueError, match=re.escape(_channels(4, 1, 2, filters="filter_shape"))):
        conv2d_grad_wrt_weights(x, gy, (6, 1, 3, 3), border_mode="half", num_groups=2)
    with pytest.raises(ValueError, match=re.escape("filter_shape[2] (a spatial size) is required")):
        conv2d_grad_wrt_weights(x, gy, (6, 2, None, 3), border_mode="half", num_groups=2)


def test_build_and_run_time_messages_are_identical():
    """One case, statically and at run time (Python linker): the very same text."""
    static_x, static_w = pt.tensor(shape=(2, 3, 5, 5)), pt.tensor(shape=(4, 2, 3, 3))
    with pytest.raises(ValueError) as at_build:
        conv2d(static_x, static_w, num_groups=1)
    x, w = pt.tensor4("x"), pt.tensor4("w")
    f = pytensor.function([x, w], pytensor.grad(conv2d(x, w).sum(), x), mode=PY_FAST_RUN)
    with pytest.raises(ValueError) as at_run:
        f(*_zeros((2, 3, 5, 5), (4, 2, 3, 3)))
    # (PyTensor 2.38 appends its report of the failing node to run-time messages)
    run_message = str(at_run.value).split("\nApply node that caused the error")[0]
    assert str(at_build.value) == run_message == _channels(3, 2, 1)


# ----------------------------------------------------------------------------- the Ops themselves
@MODES
def test_gradient_ops_check_their_shape_input(mode):
    w, gy, x = pt.tensor4("w"), pt.tensor4("gy"), pt.tensor4("x")
    size = pt.lvector("size")
    if mode == "JAX":  # JAX traces with concrete shapes: a shape read from values is refused
        with pytest.raises(NotImplementedError, match="JAX needs the input's spatial shape"):
            pytensor.function([w, gy, size], AbstractConv_gradInputs(2)(w, gy, size), mode=mode)
        return
    f_gi = pytensor.function([w, gy, size], AbstractConv_gradInputs(2)(w, gy, size), mode=mode)
    f_gw = pytensor.function([x, gy, size], AbstractConv_gradWeights(2)(x, gy, size), mode=mode)
    wv, gyv, xv = _zeros((4, 3, 3, 3), (2, 4, 5, 5), (2, 3, 7, 7))
    # a vector of unknown length is read as spatial sizes: never past its end
    _raises(f_gi, (wv, gyv, [7]), "shape must have 2 entries; got 1")
    _raises(f_gw, (xv, gyv, [3, 3, 3]), "shape must have 2 entries; got 3")
    _raises(f_gi, (wv, gyv, [7, -1]), "shape entries must be positive (batch and channels non-negative); got (7, -1)")
    _raises(
        f_gi,
        (wv, gyv, [8, 7]),
        "output_grad.shape spatial (5, 5) does not match the convolution's output spatial shape (6, 5)",
    )
    _raises(
        f_gw,
        (xv, gyv, [2, 3]),
        "output_grad.shape spatial (5, 5) does not match the convolution's output spatial shape (6, 5)",
    )
    _raises(f_gw, (xv[:1], gyv, [3, 3]), "batch sizes differ: output_grad.shape[0] = 2 must equal input.shape[0] = 1")
    assert f_gi(wv, gyv, [7, 7]).shape == (2, 3, 7, 7) and f_gw(xv, gyv, [3, 3]).shape == (4, 3, 3, 3)


def test_hint_messages_name_the_public_arguments():
    with pytest.raises(
        ValueError, match=re.escape("input_shape=(2, 4, 5, 5) does not match the shape (2, 3, 5, 5) of input")
    ):
        conv2d(pt.tensor(shape=(2, 3, 5, 5)), pt.tensor4(), input_shape=(2, 4, 5, 5))
    with pytest.raises(
        ValueError, match=re.escape("filter_shape=(3, 3, 2, 3) does not match the shape (3, 3, 3, 3) of filters")
    ):
        conv2d(pt.tensor4(), pt.tensor(shape=(3, 3, 3, 3)), filter_shape=(3, 3, 2, 3))
    with pytest.raises(ValueError, match=re.escape(_channels(3, 2, 1, "input_shape", "filter_shape"))):
        conv2d(pt.tensor4(), pt.tensor4(), input_shape=(2, 3, 5, 5), filter_shape=(4, 2, 3, 3))
    with pytest.raises(ValueError, match="input_shape entries must be non-negative"):
        conv2d(pt.tensor4(), pt.tensor4(), input_shape=(2, -3, 5, 5))
    x, w = pt.tensor4("x"), pt.tensor4("w")
    f = pytensor.function([x, w], conv2d(x, w, input_shape=(None, None, 6, None)), mode=PY_FAST_RUN)
    _raises(
        f,
        _zeros((2, 3, 5, 5), (4, 3, 3, 3)),
        "input_shape=(None, None, 6, None) does not match the shape (2, 3, 5, 5) of input",
    )


@numba.njit
def _compiled_problem(convdim, groups, unshared, image, filters, region, top, stride, pad_before, pad_after, dilation):
    return shapes.conv_shape_problem(
        convdim, groups, unshared, image, filters, region, top, stride, pad_before, pad_after, dilation
    )


def test_compiled_and_python_checks_agree():
    """``shapes.conv_shape_problem`` compiled (as in the Numba functions) and in Python (graph
    build, ``perform``): the same problem, which ``conv_shape_error`` words."""
    unknown = shapes.UNKNOWN
    none3, none5 = (unknown,) * 3, (unknown,) * 5
    names = ("input.shape", "filters.shape", "output_grad.shape", "subsample")
    geometry = ((1, 2, 1), (0, 1, shapes.PAD_FULL), (0, 1, shapes.PAD_FULL), (1, 1, 2))
    cases = [
        ((2, 1, 0, (8, 3, 1, 6, 6), (16, 4, 1, 3, 3), none3, none5), shapes.CHANNELS),
        ((2, 2, 0, (8, 4, 1, 6, 6), (5, 2, 1, 3, 3), none3, none5), shapes.FILTER_GROUPS),
        ((2, 2, 0, (8, 4, 1, 6, 6), (6, 2, 1, 3, 3), none3, (7, 6, 1, 3, 10)), shapes.BATCH),
        ((2, 2, 0, (8, 4, 1, 6, 6), (6, 2, 1, 3, 3), none3, (8, 6, 1, 4, 9)), shapes.TOP_SPATIAL),
        ((1, 1, 1, (8, 4, 1, 1, 6), (6, 4, 1, 1, 3), (1, 1, 5), none5), shapes.REGION),
        ((3, 1, 0, (8, 4, 1, 6, 6), (6, 4, 3, 3, 3), none3, none5), shapes.TOO_LARGE),
        ((2, 1, 0, (8, 4, 1, 6, 6), (6, 4, 1, 3, 3), none3, (8, 6, 1, 3, 10)), shapes.SHAPES_OK),
    ]
    for case, expected in cases:
        args = [np.int64(a) if isinstance(a, int) else np.array(a, dtype=np.int64) for a in case]
        args += [tuple(np.int64(v) for v in t) for t in geometry]
        problem = shapes.conv_shape_problem(*args)
        assert tuple(_compiled_problem(*args)) == tuple(problem) and problem[0] == expected
        assert bool(shapes.conv_shape_error(*args, "'full'", names)) == (expected != shapes.SHAPES_OK)


def test_numpy_kernels_give_the_same_messages():
    """The framework-free ``kernels.conv`` functions check their shapes the same way."""
    from pytensor_nnet.kernels import conv as kernels

    x, w = np.ones((2, 3, 5, 5)), np.ones((4, 3, 3, 3))
    with pytest.raises(ValueError, match=re.escape(_channels(3, 2, 1, "x.shape", "w.shape"))):
        kernels.conv_forward(x, w[:, :2])
    with pytest.raises(
        ValueError,
        match=re.escape(
            "top.shape spatial (3, 4) does not match the convolution's output "
            "spatial shape (3, 3) (input_spatial_shape spatial (5, 5)"
        ),
    ):
        kernels.conv_grad_inputs(w, np.ones((2, 4, 3, 4)), (5, 5))
    with pytest.raises(ValueError, match=re.escape("batch sizes differ: top.shape[0] = 1 must equal x.shape[0] = 2")):
        kernels.conv_grad_weights(x, np.ones((1, 4, 3, 3)), (3, 3))
