"""``ContiguousSum``, its kernel, and the rewrite that puts it into graphs with the package's Ops."""

import numpy as np
import pytensor
import pytensor.scalar as ps
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytensor.compile.mode import get_mode
from pytensor.gradient import verify_grad
from pytensor.graph.basic import Apply
from pytensor.tensor.elemwise import CAReduce

from pytensor_nnet import conv2d
from pytensor_nnet.compat import pushforward
from pytensor_nnet.contiguous_sum import ContiguousSum, contiguous_sum
from pytensor_nnet.kernels.contiguous_sum import sum_runs_into
from pytensor_nnet.pool import pool_2d
from pytensor_nnet.rewriting.contiguous_sum import contiguous_sum_for
from tests.backends import PY_MODE, backend_params

REWRITE = "pytensor_nnet_contiguous_sum"


def sum_ops(function):
    """The sums a compiled function runs as nodes of its graph (not inside fused loops):
    ``ContiguousSum`` and PyTensor's sums, with the rank of what they sum."""
    kinds = []
    for node in function.maker.fgraph.apply_nodes:
        ndim = node.inputs[0].type.ndim if node.inputs else 0
        if isinstance(node.op, ContiguousSum):
            kinds.append(f"ContiguousSum{ndim}")
        if isinstance(node.op, CAReduce) and isinstance(node.op.scalar_op, ps.Add):
            kinds.append(f"Sum{ndim}")
    return sorted(kinds)


def reference_sum(x, axes, acc_dtype, dtype):
    """The sum in float128 where it exists (exact enough to judge either order), as ``dtype``."""
    wide = np.longdouble if np.finfo(np.longdouble).nmant > 52 else np.float64
    return np.asarray(np.sum(np.asarray(x, dtype=wide), axis=axes)).astype(dtype)


def tolerance(x, acc_dtype):
    """A bound on the rounding of any order of summing ``x`` in ``acc_dtype``."""
    return 4 * x.size * np.finfo(acc_dtype).eps * max(float(np.abs(x).sum()), 1.0) + 1e-30


# ---- the kernel ------------------------------------------------------------------------------


def kernel_sum(x, axes, acc_dtype):
    """The kernel's sum of the C-contiguous ``x`` over ``axes`` (runs made here the slow way:
    one run per axis, a length-1 axis included)."""
    x = np.ascontiguousarray(x)
    runs = np.array(x.shape or (1,), np.int64)
    summed = np.array([axis in axes for axis in range(x.ndim)] or [True], np.int64)
    kept = tuple(size for axis, size in enumerate(x.shape) if axis not in axes)
    out = np.zeros(int(np.prod(kept)), acc_dtype)
    sum_runs_into(x.ravel(), runs, summed, out, np.dtype(acc_dtype).type(0))
    return out.reshape(kept)


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(0, 5), min_size=1, max_size=5),
    data=st.data(),
    dtype=st.sampled_from(["float32", "float64"]),
    acc_dtype=st.sampled_from(["float32", "float64"]),
)
def test_kernel_against_numpy(shape, data, dtype, acc_dtype):
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, len(shape) - 1)))))
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(dtype)
    result = kernel_sum(x, axes, acc_dtype)
    expected = reference_sum(x, axes, acc_dtype, acc_dtype)
    assert result.shape == expected.shape
    np.testing.assert_allclose(result, expected, rtol=0, atol=tolerance(x, acc_dtype))


def test_kernel_merged_runs_and_long_rows():
    """The runs a node passes (axes merged), with rows long enough for the vectorised loops."""
    x = np.random.default_rng(0).standard_normal((3, 4, 5, 67))
    for runs, summed, expected in [
        ((3, 4, 335), (1, 0, 1), x.sum(axis=(0, 2, 3))),
        ((12, 335), (0, 1), x.reshape(12, -1).sum(axis=1)),
        ((3, 1340), (1, 0), x.reshape(3, -1).sum(axis=0)),
        ((4020,), (1,), np.array([x.sum()])),
    ]:
        out = np.zeros(expected.size)
        sum_runs_into(x.ravel(), np.array(runs), np.array(summed), out, 0.0)
        np.testing.assert_allclose(out, expected.ravel(), rtol=1e-13)


def test_kernel_refuses_runs_that_do_not_describe_its_arrays():
    x, out = np.ones(12), np.zeros(3)
    with pytest.raises(ValueError, match="do not describe"):
        sum_runs_into(x, np.array([3, 5]), np.array([0, 1]), out, 0.0)  # 15 elements, not 12
    with pytest.raises(ValueError, match="do not describe"):
        sum_runs_into(x, np.array([4, 3]), np.array([0, 1]), out, 0.0)  # 4 outputs, not 3
    with pytest.raises(ValueError, match="one length"):
        sum_runs_into(x, np.array([12]), np.array([1, 1]), out, 0.0)


# ---- the Op ------------------------------------------------------------------------------------

CASES = [
    ("float64", (3, 4, 5, 6), None, None),
    ("float32", (3, 4, 5, 6), (0, 2, 3), None),
    ("float32", (7, 9), (0,), "float32"),
    ("float64", (7, 9), (1,), None),
    ("float32", (2, 1, 3, 1), (1, 3), None),  # summed axes of length 1
    ("float32", (1, 1), None, None),  # one element
    ("float64", (0, 4, 2), (0,), None),  # empty
    ("float64", (3, 0), (1,), None),
    ("float32", (4, 3, 2), (), None),  # no axis: a copy
]


@pytest.mark.parametrize("mode", backend_params("NUMBA", "C", "PY", "JAX", "PYTORCH"))
@pytest.mark.parametrize("dtype, shape, axis, acc_dtype", CASES)
def test_contiguous_sum_in_every_backend(mode, dtype, shape, axis, acc_dtype):
    x = pt.tensor("x", dtype=dtype, shape=(None,) * len(shape))
    out = contiguous_sum(x, axis=axis, acc_dtype=acc_dtype)
    stock = pt.sum(x, axis=axis, acc_dtype=acc_dtype)
    assert out.type == stock.type
    f = pytensor.function([x], out, mode=mode)
    value = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    result = np.asarray(f(value))
    op = out.owner.op
    expected = reference_sum(value, op.axes, op.acc_dtype, op.dtype)
    assert result.dtype == expected.dtype and result.shape == expected.shape
    np.testing.assert_allclose(result, expected, rtol=0, atol=tolerance(value, op.acc_dtype))


@pytest.mark.parametrize("layout", ["transposed", "strided", "negative"])
def test_other_layouts_in_numba(layout):
    x = pt.tensor3("x")
    view = {"transposed": x.transpose(2, 0, 1), "strided": x[:, ::2, 1:], "negative": x[::-1, :, ::-1]}[layout]
    f = pytensor.function([x], contiguous_sum(view, axis=(0, 2)), mode="NUMBA")
    value = np.random.default_rng(2).standard_normal((5, 6, 7))
    expected = pytensor.function([x], view.sum(axis=(0, 2)), mode=PY_MODE)(value)
    np.testing.assert_allclose(f(value), expected, rtol=1e-13)


@pytest.mark.parametrize("mode", backend_params("NUMBA", "C"))
def test_gradient(mode):
    values = [np.random.default_rng(3).standard_normal((3, 4, 5))]
    for axis in [None, (0, 2), (1,)]:
        verify_grad(lambda x: contiguous_sum(x, axis=axis) ** 2, values, rng=np.random.default_rng(4), mode=mode)


def test_pushforward():
    x = pt.matrix("x")
    value, tangent = np.arange(6.0).reshape(2, 3), np.linspace(1, 2, 6).reshape(2, 3)
    jvp = pushforward(contiguous_sum(x, axis=1), x, tangent, use_op_pushforward=True)
    jvp_of = pytensor.function([x], jvp, on_unused_input="ignore")  # a sum's is x's own
    np.testing.assert_allclose(jvp_of(value), tangent.sum(axis=1), rtol=1e-14)


def test_static_shape_and_infer_shape():
    x = pt.tensor("x", dtype="float32", shape=(2, None, 4))
    out = contiguous_sum(x, axis=(0, 2))
    assert out.type.shape == (None,) and out.type.dtype == "float32"
    shape = pytensor.function([x], out.shape, mode="NUMBA")
    assert tuple(shape(np.ones((2, 3, 4), "float32"))) == (3,)


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="ndim"):
        ContiguousSum(-1, None, "float64", "float64")
    with pytest.raises(ValueError, match="axes"):
        ContiguousSum(2, (2,), "float64", "float64")
    with pytest.raises(ValueError, match="axes"):
        ContiguousSum(2, (0, 0), "float64", "float64")
    with pytest.raises(TypeError, match="acc_dtype"):
        ContiguousSum(2, None, "int64", "float64")
    with pytest.raises(TypeError, match="dtype"):
        ContiguousSum(2, None, "float64", "nonsense")
    with pytest.raises(TypeError, match="3 dimensions"):
        ContiguousSum(3, None, "float64", "float64")(pt.matrix())
    with pytest.raises(TypeError, match="x's dtype"):
        ContiguousSum(2, None, "float64", "float64")(pt.matrix(dtype="int32"))


# ---- the rewrite -------------------------------------------------------------------------------


def conv_sum_graph(dtype):
    """Sums over every axis and over three axes of a convolution's and a pooling's outputs
    (which no PyTensor release fuses into an elementwise loop), a loss and its gradients."""
    x, w, b = pt.tensor4("x", dtype=dtype), pt.tensor4("w", dtype=dtype), pt.vector("b", dtype=dtype)
    y = conv2d(x, w)
    p = pool_2d(y, (2, 2), ignore_border=True)
    loss = ((p + b[None, :, None, None]) ** 2).sum()
    return [x, w, b], [loss, y.sum(axis=(0, 2, 3)), p.sum(), *pytensor.grad(loss, [w, b])]


def conv_sum_values(dtype):
    rng = np.random.default_rng(5)
    return [rng.standard_normal(shape).astype(dtype) for shape in ((3, 2, 9, 8), (4, 2, 3, 3), (4,))]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_graphs_with_the_package_ops_get_contiguous_sums(dtype):
    inputs, outs = conv_sum_graph(dtype)
    ours = pytensor.function(inputs, outs, mode="NUMBA")
    stock = pytensor.function(inputs, outs, mode=get_mode("NUMBA").excluding(REWRITE))
    kinds = sum_ops(ours)
    assert kinds.count("ContiguousSum4") >= 2 and "Sum4" not in kinds, kinds
    assert "ContiguousSum4" not in sum_ops(stock) and "Sum4" in sum_ops(stock)
    values = conv_sum_values(dtype)
    for result, expected in zip(ours(*values), stock(*values)):
        assert result.dtype == expected.dtype
        np.testing.assert_allclose(result, expected, rtol=50 * np.finfo(dtype).eps)


def test_graphs_without_the_package_ops_keep_pytensor_sums():
    x = pt.tensor4("x")
    f = pytensor.function([x], [x.sum(), (x * 2).sum(axis=(0, 2))], mode="NUMBA")
    assert not any(kind.startswith("ContiguousSum") for kind in sum_ops(f))


@pytest.mark.parametrize("mode", backend_params("C", "PY", "JAX"))
def test_other_backends_keep_pytensor_sums(mode):
    inputs, outs = conv_sum_graph("float64")
    assert not any(kind.startswith("ContiguousSum") for kind in sum_ops(pytensor.function(inputs, outs, mode=mode)))


def test_sums_it_leaves_alone():
    """Vectors (PyTensor compiles their sums quickly), integers, complex numbers and other
    reductions stay PyTensor's."""
    inputs, outs = conv_sum_graph("float64")
    v, n = pt.vector("v"), pt.tensor3("n", dtype="int32")
    z = pt.matrix("z", dtype="complex128")
    extra = [v.sum(), n.sum(axis=(0, 1)), z.sum(), pt.prod(inputs[0], axis=1)]
    f = pytensor.function([*inputs, v, n, z], [*outs, *extra], mode="NUMBA")
    kinds = sum_ops(f)
    assert [kind for kind in kinds if kind.startswith("Sum")] == ["Sum1", "Sum2", "Sum3"], kinds
    values = conv_sum_values("float64")
    nv, zv = np.arange(24, dtype="int32").reshape(2, 3, 4), np.full((2, 2), 1 + 2j)
    results = f(*values, np.arange(4.0), nv, zv)[len(outs) :]
    assert results[0] == 6.0 and results[2] == 4 + 8j
    np.testing.assert_array_equal(results[1], nv.sum(axis=(0, 1)))


def test_a_sum_whose_output_type_knows_less_is_replaced():
    """Rewrites can leave a sum whose output has a less precise static shape than its input
    gives (a (100, ?) matrix summed over axis 1 typed (?,)): the replacement knows (100,)."""
    x = pt.tensor("x", dtype="float32", shape=(100, None))
    op = pt.sum(x, axis=1).owner.op
    node = Apply(op, [x], [pt.TensorType("float32", shape=(None,))()])
    new = contiguous_sum_for(node)
    assert isinstance(new.owner.op, ContiguousSum) and new.type.shape == (100,)
    assert contiguous_sum_for(pt.sum(pt.vector(), axis=0).owner) is None  # a vector's sum stays
