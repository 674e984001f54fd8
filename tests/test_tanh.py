"""``VectorisedTanh`` and the rewrite that puts it into graphs with the package's Ops."""

import numpy as np
import pytensor
import pytensor.scalar as ps
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import get_mode
from pytensor.gradient import verify_grad
from pytensor.tensor.elemwise import Elemwise

from pytensor_nnet import conv2d
from pytensor_nnet.compat import pushforward
from pytensor_nnet.tanh import VectorisedTanh, vectorised_tanh
from tests.backends import backend_params

REWRITE = "pytensor_nnet_vectorised_tanh"


def tanh_ops(function):
    """The kinds of ``tanh`` a compiled function runs: ``VectorisedTanh`` nodes and PyTensor's
    ``Tanh`` in elementwise nodes, fused ones and those inside other Ops' inner graphs included."""

    def walk(op):
        if isinstance(op, VectorisedTanh):
            yield "VectorisedTanh"
        if isinstance(op, ps.Tanh):
            yield "Tanh"
        if isinstance(op, Elemwise):
            yield from walk(op.scalar_op)
        inner = getattr(op, "fgraph", None)
        for node in inner.apply_nodes if inner is not None else ():
            yield from walk(node.op)

    return sorted(kind for node in function.maker.fgraph.apply_nodes for kind in walk(node.op))


def conv_tanh_graph(dtype="float64"):
    x, w = pt.tensor4("x", dtype=dtype), pt.tensor4("w", dtype=dtype)
    b = pt.vector("b", dtype=dtype)
    return [x, w, b], pt.tanh(conv2d(x, w) + b[None, :, None, None])


def conv_tanh_values(dtype="float64"):
    rng = np.random.default_rng(0)
    shapes = (((3, 2, 9, 8), 1.0), ((4, 2, 3, 3), 2.0), ((4,), 1.0))
    return [(rng.standard_normal(shape) * scale).astype(dtype) for shape, scale in shapes]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_graphs_with_the_package_ops_get_the_vectorised_tanh(dtype):
    inputs, out = conv_tanh_graph(dtype)
    values = conv_tanh_values(dtype)
    ours = pytensor.function(inputs, out, mode="NUMBA")
    stock = pytensor.function(inputs, out, mode=get_mode("NUMBA").excluding(REWRITE))
    assert tanh_ops(ours) == ["VectorisedTanh"]
    assert tanh_ops(stock) == ["Tanh"]
    expected = stock(*values)
    assert (np.abs(expected) == 1).any() and (np.abs(expected) < 0.5).any()  # saturated and not
    result = ours(*values)
    assert result.dtype == dtype
    np.testing.assert_allclose(result, expected, rtol=4 * np.finfo(dtype).eps, atol=0)


def test_graphs_without_the_package_ops_keep_pytensor_tanh():
    x = pt.matrix("x")
    f = pytensor.function([x], pt.tanh(x @ x.T + 1), mode="NUMBA")
    assert tanh_ops(f) == ["Tanh"]


@pytest.mark.parametrize("mode", backend_params("C", "PY", "JAX"))
def test_other_backends_keep_pytensor_tanh(mode):
    inputs, out = conv_tanh_graph()
    assert tanh_ops(pytensor.function(inputs, out, mode=mode)) == ["Tanh"]


def test_complex_tanh_stays_and_integer_tanh_keeps_its_dtype():
    inputs, out = conv_tanh_graph()
    z = pt.vector("z", dtype="complex128")
    n = pt.vector("n", dtype="int8")
    f = pytensor.function([*inputs, z, n], [out, pt.tanh(z), pt.tanh(n)], mode="NUMBA")
    assert tanh_ops(f) == ["Tanh", "VectorisedTanh", "VectorisedTanh"]
    zv = np.array([0.5 + 1j, -2j])
    nv = np.array([-128, -3, 0, 1, 127], dtype="int8")
    _, complex_out, int_out = f(*conv_tanh_values(), zv, nv)
    assert int_out.dtype == np.float32
    np.testing.assert_allclose(int_out, np.tanh(nv.astype(np.float64)), rtol=1e-7)
    np.testing.assert_allclose(complex_out, np.tanh(zv), rtol=1e-14)


@pytest.mark.parametrize("mode", backend_params("NUMBA", "C", "PY", "JAX", "PYTORCH"))
@pytest.mark.parametrize(
    "dtype, shape",
    [("float64", (121,)), ("float32", (11, 11)), ("int8", (256,)), ("float64", ()), ("float64", (0, 3))],
)
def test_vectorised_tanh_in_every_backend(mode, dtype, shape):
    x = pt.tensor("x", dtype=dtype, shape=(None,) * len(shape))
    out = vectorised_tanh(x)
    f = pytensor.function([x], out, mode=mode)
    size = int(np.prod(shape))
    value = (np.arange(-128, 128) if dtype == "int8" else np.linspace(-30, 30, size)).reshape(shape).astype(dtype)
    result = np.asarray(f(value))
    assert result.dtype == out.dtype and result.shape == shape
    # JAX's float64 tanh is within 4 ulp
    np.testing.assert_allclose(result, np.tanh(value.astype(np.float64)), rtol=8 * np.finfo(out.dtype).eps, atol=0)


def test_strided_input_in_numba():
    x = pt.matrix("x")
    f = pytensor.function([x], vectorised_tanh(x.T[::2]), mode="NUMBA")
    value = np.linspace(-4, 4, 35).reshape(5, 7)
    np.testing.assert_allclose(f(value), np.tanh(value.T[::2]), rtol=4e-16, atol=0)


@pytest.mark.parametrize("mode", backend_params("NUMBA", "C"))
def test_gradient(mode):
    def cost(x, w, b):
        return pt.tanh(conv2d(x, w) + b[None, :, None, None])

    verify_grad(cost, conv_tanh_values(), rng=np.random.default_rng(2), mode=mode)
    verify_grad(vectorised_tanh, [np.linspace(-3, 3, 13)], rng=np.random.default_rng(3), mode=mode)


def test_pushforward():
    x = pt.vector("x")
    value, tangent = np.linspace(-3, 3, 7), np.linspace(1, 2, 7)
    jvp = pushforward(vectorised_tanh(x), x, tangent, use_op_pushforward=True)
    np.testing.assert_allclose(jvp.eval({x: value}), tangent / np.cosh(value) ** 2, rtol=1e-12)


def test_integer_input_has_a_zero_gradient():
    n = pt.vector("n", dtype="int8")
    grad = pytensor.grad(vectorised_tanh(n).sum(), n)
    np.testing.assert_array_equal(grad.eval({n: np.arange(3, dtype="int8")}), np.zeros(3))


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="dtype"):
        VectorisedTanh("int32")
    with pytest.raises(TypeError, match="x must be real"):
        VectorisedTanh("float64")(pt.vector(dtype="complex128"))
