"""Shape hints given as PyTensor constants (any integer dtype), the type of gradients taken
through hinted convolutions, and the exception class of a hint that disagrees with the data.

Values are checked against the numpy references of ``tests/reference/conv.py``.
"""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pytensor_nnet import AbstractConv2d, conv2d, conv3d, shapes
from tests.backends import PY_MODE, backend_params
from tests.reference.conv import conv_grads_ref, conv_ref

MODES = pytest.mark.parametrize("mode", backend_params("NUMBA", "PY"))
RNG = np.random.default_rng(3)
X = RNG.standard_normal((3, 2, 7, 5))
W = RNG.standard_normal((4, 2, 3, 3))


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint8"])
@MODES
def test_constant_hints_of_any_integer_dtype(dtype, mode):
    x, w = pt.tensor4("x"), pt.tensor4("w")
    const = lambda v: pt.constant(v, dtype=dtype)  # noqa: E731
    y = conv2d(x, w, input_shape=(const(3), 2, const(7), 5), filter_shape=(const(4), const(2), 3, 3))
    assert y.type.shape == (3, 4, 5, 3)
    f = pytensor.function([x, w], y, mode=mode)
    np.testing.assert_allclose(f(X, W), conv_ref(X, W), rtol=1e-10)


def test_constant_hints_do_not_overflow_their_dtype():
    # 100 + 2 * 30 padding is out of int8's range: the hint is read as a Python int
    x, w = pt.tensor4("x"), pt.tensor4("w")
    size = pt.constant(100, dtype="int8")
    y = conv2d(x, w, input_shape=(3, 2, size, size), filter_shape=(4, 2, 3, 3), border_mode=(30, 30))
    assert y.type.shape == (3, 4, 158, 158)


def test_symbolic_scalar_hints_are_unknown_entries():
    x, w = pt.tensor4("x"), pt.tensor4("w")
    y = conv2d(x, w, input_shape=(pt.iscalar("n"), 2, 7, 5), filter_shape=(4, 2, 3, 3))
    assert y.type.shape == (None, 4, 5, 3)


@pytest.mark.parametrize(
    "hint",
    [pt.lvector(), pt.constant([3, 2, 7, 5]), pt.tensor4().shape],
    ids=["vector", "constant_vector", "shape"],
)
def test_a_symbolic_vector_is_not_a_hint(hint):
    with pytest.raises(ValueError, match="not a symbolic vector"):
        AbstractConv2d(imshp=hint)


@pytest.mark.parametrize("entry", [pt.constant(3.0), pt.dscalar()], ids=["float_constant", "float_scalar"])
def test_float_hint_entries_are_refused(entry):
    with pytest.raises(ValueError, match="input_shape entries must be ints, None or symbolic int scalars"):
        conv2d(pt.tensor4(), pt.tensor4(), input_shape=(entry, 2, 7, 5))


@MODES
def test_gradients_have_the_type_of_their_variable(mode):
    # the hints give more static information than the shared variables' types: the
    # gradients still have the variables' types, so they can update them
    xs = pytensor.shared(X.copy())
    ws = pytensor.shared(W.copy())
    y = conv2d(xs, ws, input_shape=X.shape, filter_shape=W.shape)
    gx, gw = pytensor.grad((y * y).sum(), [xs, ws])
    assert gx.type == xs.type and gw.type == ws.type
    f = pytensor.function([], [], updates=[(xs, gx), (ws, gw)], mode=mode)
    f()
    dx, dw = conv_grads_ref(X, W, 2 * conv_ref(X, W))
    np.testing.assert_allclose(xs.get_value(), dx, rtol=1e-10)
    np.testing.assert_allclose(ws.get_value(), dw, rtol=1e-10)


@MODES
def test_hint_mismatch_is_a_value_error_and_an_assertion_error(mode):
    assert issubclass(shapes.ShapeMismatchError, ValueError)
    assert issubclass(shapes.ShapeMismatchError, AssertionError)
    x, w = pt.tensor5("x"), pt.tensor5("w")
    y = conv3d(x, w, input_shape=(3, 5, 7, 11, 13), filter_shape=(7, 5, 3, 3, 3))
    f = pytensor.function([x, w], y, mode=mode)
    bad = (np.zeros((3, 5, 9, 11, 13)), np.zeros((7, 5, 3, 3, 3)))
    for cls in (ValueError, AssertionError):
        with pytest.raises(cls, match=r"input_shape=\(3, 5, 7, 11, 13\) does not match the shape \(3, 5, 9, 11, 13\)"):
            f(*bad)
    with pytest.raises(AssertionError, match="does not match"):
        conv2d(pt.tensor(shape=(3, 5, 9, 11)), w[0], input_shape=(3, 5, 7, 11))


def test_operands_that_disagree_raise_shape_mismatch_error():
    # the hints' channels disagree: a ValueError, and the AssertionError of the legacy ConvOp
    with pytest.raises(shapes.ShapeMismatchError, match=r"input channels \(input_shape\[1\] = 2\)"):
        conv2d(pt.tensor4(), pt.tensor4(), input_shape=(3, 2, 8, 8), filter_shape=(4, 3, 5, 5))


def test_the_old_interface_takes_a_constant_vector_hint():
    from pytensor_nnet import conv

    x, w = pt.tensor4("x"), pt.tensor4("w")
    with pytest.warns(DeprecationWarning, match="old conv2d interface"):
        y = conv.conv2d(x, w, pt.as_tensor_variable([3, 2, 7, 5]), pt.as_tensor_variable((4, 2, 3, 3)))
    assert y.type.shape == (3, 4, 5, 3)
    f = pytensor.function([x, w], y, mode=PY_MODE)
    np.testing.assert_allclose(f(X, W), conv_ref(X, W), rtol=1e-10)
