"""Gradients, pushforwards and bad input of ``pytensor_nnet.sparse``.

Each gradient / pushforward fix is checked on PyTensor's Op too: that variant is marked
``xfail(strict=True)``, so the suite fails if PyTensor's version ever passes (the test would
then no longer demonstrate a fix) and shows which check our version fixes. A fix PyTensor
made upstream is pinned to the releases that still have the bug (``fixed_in``).

Gradient checks use ``pytensor.gradient.verify_grad`` in the legacy's two variants:
"S" (structured) differentiates with respect to the data vector of a ``CSM``, "R" (regular)
with respect to a dense matrix made sparse by ``csr_from_dense``/``csc_from_dense``. They run
in Python mode (FAST_COMPILE, cheap to compile); one test recomputes all of them in Numba mode.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.sparse as ps
import pytensor.sparse.math as psm
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from pytensor.gradient import GradientError, NullTypeGradError
from pytensor.gradient import verify_grad as _verify_grad

import pytensor_nnet.sparse as nsp
from pytensor_nnet.compat import PYTENSOR_VERSION, pushforward, sparse_math_op
from pytensor_nnet.sparse_basic.patch import pytensor_classes_to_patch

PY = "FAST_COMPILE"
OURS = "pytensor_nnet"
PYTENSOR = "pytensor"


def both(reason, raises, fixed_in=None):
    """Parametrize over our implementation and PyTensor's, expected to raise ``raises``
    (on PyTensor releases before ``fixed_in``, when upstream fixed it)."""
    if fixed_in is not None and PYTENSOR_VERSION >= fixed_in:
        return pytest.mark.parametrize("impl", [OURS, PYTENSOR])
    xfail = pytest.mark.xfail(strict=True, reason=reason, raises=raises)
    return pytest.mark.parametrize("impl", [OURS, pytest.param(PYTENSOR, marks=xfail)])


def pick(impl, name):
    """``name`` from pytensor_nnet.sparse or from pytensor.sparse."""
    if impl == OURS:
        return getattr(nsp, name)
    return {
        "get_item_2d": ps.get_item_2d,
        "get_item_scalar": ps.get_item_scalar,
        "structured_add_s_v": psm.structured_add_s_v,
        "usmm": psm.usmm,
        "sub": ps.subtract,
    }.get(name) or getattr(ps, name)


def matrix(shape, fmt, seed, density=0.5):
    return sp.random(*shape, density=density, format=fmt, random_state=seed)


def csm(fmt, a):
    """``data -> CSM(data, indices, indptr, shape)`` with a's pattern (the S variant)."""
    return lambda data: ps.CSM(fmt)(data, a.indices, a.indptr, a.shape)


def from_dense(fmt):
    return nsp.csr_from_dense if fmt == "csr" else nsp.csc_from_dense


def regular_dense(x):
    """Dense view of a sparse output whose gradient is the full (regular) one."""
    return ps.DenseFromSparse(structured=False)(x)


RNG = np.random.default_rng(42)


def verify_grad(fun, point, rng=RNG, mode=PY):
    """``pytensor.gradient.verify_grad`` with every function compiled in ``mode``.

    ``no_debug_ref=False``: by default the finite-difference cost is compiled in FAST_RUN
    (Numba) whatever ``mode`` says.
    """
    _verify_grad(fun, point, rng=rng, mode=mode, no_debug_ref=False)


# ---------------------------------------------------------------------------------------------
# Gradient fixes, each failing with PyTensor's Op


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@both("PyTensor's Dot returns a dense gradient for the sparse operand", TypeError)
def test_dot_grad_through_csm(impl, fmt):
    a = matrix((5, 4), fmt, 0)
    w = pt.as_tensor(RNG.normal(size=(4, 3)))
    dot = pick(impl, "dot")
    verify_grad(lambda d: dot(csm(fmt, a)(d), w), [a.data], rng=RNG, mode=PY)
    verify_grad(lambda d: dot(w.T[:2, :], csm(fmt, a)(d).T), [a.data], rng=RNG, mode=PY)


@both(
    "PyTensor's sparse x scalar: dense gradient for x (TypeError in CSM), matrix for s",
    (TypeError, ValueError),
    fixed_in=(3, 3, 0),
)
def test_sparse_times_scalar_grad(impl):
    a = matrix((5, 4), "csr", 1)
    multiply = pick(impl, "multiply")
    verify_grad(
        lambda d, s: ps.dense_from_sparse(multiply(csm("csr", a)(d), s)), [a.data, np.array(1.7)], rng=RNG, mode=PY
    )


def test_sparse_times_dense_grad():
    a = matrix((5, 4), "csc", 2)
    multiply = nsp.multiply
    verify_grad(
        lambda d, y: ps.dense_from_sparse(multiply(csm("csc", a)(d), y)),
        [a.data, RNG.normal(size=(5, 4))],
        rng=RNG,
        mode=PY,
    )


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@both("PyTensor's StructuredAddSV sums the gradient of v over whole columns", GradientError)
def test_structured_add_s_v_grad_of_v(impl, fmt):
    # A regular gradient (entries outside x's pattern) reaches the Op through
    # DenseFromSparse(structured=False); v only moves the non-zero entries of x.
    x = matrix((6, 4), fmt, 3)
    add_s_v = pick(impl, "structured_add_s_v")
    verify_grad(lambda v: regular_dense(add_s_v(x, v)), [RNG.normal(size=4)], rng=RNG, mode=PY)


def test_structured_add_s_v_grad_of_x():
    x = matrix((6, 4), "csr", 4)
    v = RNG.normal(size=4)
    verify_grad(lambda d: regular_dense(nsp.structured_add_s_v(csm("csr", x)(d), v)), [x.data], rng=RNG, mode=PY)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@both("PyTensor's SamplingDot has no gradient for p", NullTypeGradError)
def test_sampling_dot_grad_of_p(impl, fmt):
    p = matrix((5, 6), fmt, 5)
    x, y = RNG.normal(size=(5, 3)), RNG.normal(size=(6, 3))
    sampling_dot = pick(impl, "sampling_dot")
    verify_grad(
        lambda d: regular_dense(sampling_dot(pt.as_tensor(x), pt.as_tensor(y), csm(fmt, p)(d))),
        [p.data],
        rng=RNG,
        mode=PY,
    )


def test_sampling_dot_grad_of_x_and_y():
    p = matrix((5, 6), "csr", 6)
    verify_grad(
        lambda x, y: regular_dense(nsp.sampling_dot(x, y, p)),
        [RNG.normal(size=(5, 3)), RNG.normal(size=(6, 3))],
        rng=RNG,
        mode=PY,
    )


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@both("PyTensor's sub negates a sparse y with CSM: structured gradient", GradientError)
def test_sub_regular_grad_of_sparse_y(impl, fmt):
    # Y has zeros: the regular gradient is -1 there too, the structured one 0
    x = matrix((5, 4), fmt, 7)
    y_dense = matrix((5, 4), fmt, 8).toarray()
    sub = pick(impl, "sub")
    verify_grad(lambda y: regular_dense(sub(x, from_dense(fmt)(y))), [y_dense], rng=RNG, mode=PY)


def test_sub_with_a_dense_operand():
    # documented: structured for the sparse operand when the other one is dense
    x = matrix((5, 4), "csr", 9)
    d = RNG.normal(size=(5, 4))
    verify_grad(lambda data: nsp.sub(pt.as_tensor(d), csm("csr", x)(data)), [x.data], rng=RNG, mode=PY)
    verify_grad(lambda data, y: nsp.sub(csm("csr", x)(data), y), [x.data, d], rng=RNG, mode=PY)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize(
    "index",
    [(slice(1, 4), slice(None, None, 2)), (slice(None, None, -2), slice(4, 0, -1)), (slice(-3, None), slice(None))],
)
@both("PyTensor's GetItem2d has no gradient", NotImplementedError)
def test_get_item_2d_grad(impl, fmt, index):
    a = matrix((6, 5), fmt, 10)
    get_item_2d = pick(impl, "get_item_2d")
    verify_grad(lambda d: regular_dense(get_item_2d(csm(fmt, a)(d), index)), [a.data], rng=RNG, mode=PY)
    verify_grad(lambda w: regular_dense(get_item_2d(from_dense(fmt)(w), index)), [a.toarray()], rng=RNG, mode=PY)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@both("PyTensor's GetItemScalar has no gradient", NotImplementedError)
def test_get_item_scalar_grad(impl, fmt):
    a = matrix((6, 5), fmt, 11)
    get_item_scalar = pick(impl, "get_item_scalar")
    for i, j in [(-2, 1), (0, 4)]:
        verify_grad(
            lambda w: get_item_scalar(from_dense(fmt)(w), (pt.as_tensor(np.int32(i)), j)),
            [a.toarray()],
            rng=RNG,
            mode=PY,
        )


@both("PyTensor's Usmm has no gradient", NotImplementedError)
def test_usmm_grad(impl):
    a = matrix((5, 4), "csr", 12)
    usmm = pick(impl, "usmm")
    verify_grad(
        lambda alpha, d, w, z: usmm(alpha, csm("csr", a)(d), w, z),
        [np.full((1, 1), 0.7), a.data, RNG.normal(size=(4, 3)), RNG.normal(size=(5, 3))],
        rng=RNG,
        mode=PY,
    )
    verify_grad(
        lambda w, d: usmm(pt.constant(np.full((1, 1), -1.5)), w, csm("csc", a.tocsc())(d), pt.zeros((3, 4))),
        [RNG.normal(size=(3, 5)), a.tocsc().data],
        rng=RNG,
        mode=PY,
    )


# ---------------------------------------------------------------------------------------------
# Pushforward (forward mode) with the Ops' own pushforward


def _jvp(f, point, tangent):
    """Op-pushforward of ``f`` at ``point`` along ``tangent``, evaluated."""
    w = pt.matrix("w")
    t = pt.matrix("t")
    out = pushforward(f(w), w, t, use_op_pushforward=True)
    return pytensor.function([w, t], out, mode=PY)(point, tangent)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@both("PyTensor's Dot, SparseFromDense have no pushforward", NotImplementedError)
def test_dot_pushforward(impl, fmt):
    w_val = matrix((5, 4), fmt, 13).toarray()
    t_val = RNG.normal(size=(5, 4))
    b = RNG.normal(size=(4, 3))
    dot = pick(impl, "dot")
    convert = from_dense(fmt) if impl == OURS else ps.SparseFromDense(fmt)
    np.testing.assert_allclose(_jvp(lambda w: dot(convert(w), pt.as_tensor(b)), w_val, t_val), t_val @ b)
    # bilinear: both operands move
    np.testing.assert_allclose(_jvp(lambda w: dot(convert(w), w.T), w_val, t_val), t_val @ w_val.T + w_val @ t_val.T)


@both("PyTensor's StructuredDot, SparseFromDense have no pushforward", NotImplementedError)
def test_structured_dot_pushforward(impl):
    w_val = matrix((5, 4), "csr", 14).toarray()
    t_val = RNG.normal(size=(5, 4))
    structured_dot = pick(impl, "structured_dot")
    convert = nsp.csr_from_dense if impl == OURS else ps.csr_from_dense
    np.testing.assert_allclose(
        _jvp(lambda w: structured_dot(convert(w), w.T), w_val, t_val),
        t_val @ w_val.T + w_val @ t_val.T,
    )


@both("PyTensor's DenseFromSparse, SparseFromDense: no pushforward", NotImplementedError)
def test_dense_sparse_conversions_pushforward(impl):
    w_val = matrix((5, 4), "csc", 15).toarray()
    t_val = RNG.normal(size=(5, 4))
    to_dense = nsp.dense_from_sparse if impl == OURS else ps.dense_from_sparse
    convert = nsp.csc_from_dense if impl == OURS else ps.csc_from_dense
    np.testing.assert_allclose(_jvp(lambda w: to_dense(convert(w)) * 2, w_val, t_val), 2 * t_val)


# ---------------------------------------------------------------------------------------------
# Other gradients of our Ops (not fixes: PyTensor's are right too)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_dot_regular_grads(fmt):
    a = matrix((5, 4), fmt, 16)
    b = RNG.normal(size=(4, 3))
    verify_grad(lambda w, y: nsp.dot(from_dense(fmt)(w), y), [a.toarray(), b], rng=RNG, mode=PY)
    verify_grad(lambda w, v: nsp.dot(v, from_dense(fmt)(w)), [a.toarray(), RNG.normal(size=5)], rng=RNG, mode=PY)
    verify_grad(lambda w, v: nsp.dot(from_dense(fmt)(w), v), [a.toarray(), RNG.normal(size=4)], rng=RNG, mode=PY)
    y = matrix((4, 3), "csr", 17).toarray()
    verify_grad(lambda w, y: nsp.dot(from_dense(fmt)(w), nsp.csr_from_dense(y)), [a.toarray(), y], rng=RNG, mode=PY)


def test_dot_grad_of_sparse_input_is_sparse():
    x = ps.csc_matrix("x")
    w = pt.matrix("w")
    gx, gw = pytensor.grad(nsp.dot(x, w).sum(), [x, w])
    assert gx.type == x.type
    assert gw.type == w.type
    assert ps.dot(x, w).owner.op != nsp.dot(x, w).owner.op  # ours is its own Op


def test_structured_dot_grad():
    a = matrix((5, 4), "csr", 18)
    verify_grad(
        lambda d, y: nsp.structured_dot(csm("csr", a)(d), y), [a.data, RNG.normal(size=(4, 3))], rng=RNG, mode=PY
    )


# ---------------------------------------------------------------------------------------------
# The same gradients in Numba mode


def all_gradients(fmt):
    """Inputs and the gradients of one cost through every fixed Op (S and R variants)."""
    a = matrix((6, 5), fmt, 19)
    data = pt.vector("data")
    w = pt.matrix("w")  # (6, 5), dense stand-in for the R variant
    b = pt.matrix("b")  # (5, 3)
    v = pt.vector("v")  # (5,)
    x = csm(fmt, a)(data)
    xr = from_dense(fmt)(w)
    p = pt.matrix("p")  # (6, 3)
    terms = [
        (nsp.dot(x, b) ** 2).sum(),
        (nsp.dot(xr, b) * p).sum(),
        ps.sp_sum(nsp.multiply(x, 2.5) * x, sparse_grad=False),
        regular_dense(nsp.structured_add_s_v(xr, v)).sum(),
        regular_dense(nsp.sampling_dot(p, b, x)).sum(),
        regular_dense(nsp.sub(xr, x)).sum() * 3,
        regular_dense(nsp.get_item_2d(x, (slice(1, 5), slice(None, None, -2)))).sum(),
        nsp.get_item_scalar(xr, (pt.as_tensor(np.int32(-1)), 2)) * 5,
        (nsp.usmm(pt.constant(np.full((1, 1), 0.5)), xr, b, p) ** 2).sum(),
    ]
    cost = pt.add(*terms)
    wrt = [data, w, b, v, p]
    values = [a.data, a.toarray(), RNG.normal(size=(5, 3)), RNG.normal(size=5), RNG.normal(size=(6, 3))]
    return wrt, pytensor.grad(cost, wrt), values


@pytest.mark.filterwarnings("error:Numba will use object mode:UserWarning")
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_gradients_numba_equal_python(fmt):
    wrt, grads, values = all_gradients(fmt)
    py = pytensor.function(wrt, grads, mode=PY)(*values)
    nb = pytensor.function(wrt, grads, mode="NUMBA")(*values)
    for g_py, g_nb, var in zip(py, nb, wrt):
        np.testing.assert_allclose(g_nb, g_py, rtol=1e-8, atol=1e-10, err_msg=var.name)


# ---------------------------------------------------------------------------------------------
# Bad input: clear errors, at graph-build time or before the Numba kernels run


def _csr_from_parts():
    data = pt.vector("data")
    indices = pt.ivector("indices")
    indptr = pt.ivector("indptr")
    x = ps.CSR(data, indices, indptr, pt.as_tensor(np.array([3, 4], dtype="int32")))
    return [data, indices, indptr], x


@pytest.fixture(scope="module")
def numba_dot():
    inputs, x = _csr_from_parts()
    w = pt.matrix("w")
    return pytensor.function([*inputs, w], nsp.dot(x, w), mode="NUMBA")


GOOD = (np.array([1.0, 2.0, 3.0]), np.array([0, 3, 1], dtype="int32"), np.array([0, 2, 2, 3], dtype="int32"))


@pytest.mark.parametrize(
    "parts, message",
    [
        ((GOOD[0], GOOD[1], np.array([0, 2, 2, 7], dtype="int32")), "indptr is inconsistent with the data length"),
        ((GOOD[0], GOOD[1], np.array([0, 2, 1, 3], dtype="int32")), "indptr decreases"),
        ((GOOD[0], GOOD[1], np.array([0, 2, 3], dtype="int32")), "indptr has the wrong length"),
        ((GOOD[0], np.array([0, 4, 1], dtype="int32"), GOOD[2]), "out of range"),
        ((GOOD[0], np.array([0, -1, 1], dtype="int32"), GOOD[2]), "out of range"),
        ((GOOD[0][:2], GOOD[1], GOOD[2]), "data and indices have different lengths"),
    ],
)
def test_invalid_structure_is_rejected_before_the_kernel(numba_dot, parts, message):
    with pytest.raises(ValueError, match=message):
        numba_dot(*parts, np.ones((4, 2)))


def test_mismatched_inner_dimensions(numba_dot):
    with pytest.raises(ValueError, match="inner dimensions do not match"):
        numba_dot(*GOOD, np.ones((5, 2)))
    np.testing.assert_allclose(
        numba_dot(*GOOD, np.ones((4, 2))),
        sp.csr_matrix((GOOD[0], GOOD[1], GOOD[2]), shape=(3, 4)) @ np.ones((4, 2)),
    )


def test_build_time_errors():
    with pytest.raises(TypeError, match="at least one of x and y must be sparse"):
        nsp.dot(pt.matrix(), pt.matrix())
    with pytest.raises(TypeError, match="at least one sparse"):
        nsp.structured_dot(pt.matrix(), pt.matrix())
    x = ps.matrix("csr", shape=(3, 4))
    for fn in (nsp.dot, nsp.structured_dot):
        with pytest.raises(ValueError, match="inner dimensions"):
            fn(x, pt.matrix(shape=(5, 2)))
        assert fn(x, pt.matrix(shape=(4, 2))).type.ndim == 2
    with pytest.raises(ValueError, match="inner dimensions"):
        nsp.dot(pt.matrix(shape=(2, 5)), x)


@pytest.mark.filterwarnings("error:Numba will use object mode:UserWarning")
def test_bad_input_of_other_ops_numba():
    # CSMGrad: csc arrays of the matrix with a csr gradient (mixed formats)
    x_data, x_indices, x_indptr = pt.vector("x_data"), pt.ivector("x_ind"), pt.ivector("x_ptr")
    g = ps.csr_matrix("g")
    grad = ps.CSMGrad()(x_data, x_indices, x_indptr, pt.as_tensor(np.array([3, 5], "int32")), *ps.csm_properties(g))
    # AddSSData with different patterns; ConstructSparseFromList with an index out of range
    x, y = ps.csr_matrix("x"), ps.csr_matrix("y")
    vals, ilist = pt.matrix("vals"), pt.ivector("ilist")
    fn = pytensor.function(
        [x_data, x_indices, x_indptr, g, x, y, vals, ilist],
        [grad, psm.add_s_s_data(x, y), ps.construct_sparse_from_list(pt.zeros((4, 2)), vals, ilist)],
        mode="NUMBA",
    )
    a = matrix((3, 5), "csr", 20)
    good = [a.data, a.indices, a.indptr, a, a, a.copy(), np.ones((2, 2)), np.array([0, 3], dtype="int32")]
    grad_value, added, constructed = fn(*good)
    np.testing.assert_allclose(grad_value, a.data)
    np.testing.assert_allclose(added.toarray(), 2 * a.toarray())
    assert constructed.shape == (4, 2)
    ac = a.tocsc()
    with pytest.raises(ValueError, match="mixed formats"):
        fn(ac.data, ac.indices, ac.indptr, *good[3:])
    if sparse_math_op("AddSparseSparseData") in pytensor_classes_to_patch():
        with pytest.raises(ValueError, match="different sparsity patterns"):
            fn(*good[:5], matrix((3, 5), "csr", 21), *good[6:])
    with pytest.raises(ValueError, match="out of range"):
        fn(*good[:7], np.array([0, 4], dtype="int32"))
