"""SparseBlockGemv, SparseBlockOuter and sparse_block_dot: values in every backend, against the
loops of their definitions and the legacy implementation's golden outputs, gradients, rewrites
and bad input."""

import os
import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.io import In
from pytensor.compile.mode import Mode, get_mode
from pytensor.gradient import DisconnectedInputError, verify_grad
from pytensor.graph.rewriting.db import RewriteDatabaseQuery

import pytensor_nnet.blocksparse as blocksparse
from pytensor_nnet.blocksparse import (
    BlockZeros,
    SparseBlockGemv,
    SparseBlockOuter,
    sparse_block_dot,
    sparse_block_gemv,
    sparse_block_gemv_inplace,
    sparse_block_outer,
    sparse_block_outer_inplace,
)
from pytensor_nnet.compat import pushforward
from tests import backends
from tests.backends import EVERY_BACKEND, PY_FAST_RUN, backend_params
from tests.kernels.test_blocksparse import gemv_inputs, outer_inputs
from tests.reference.blocksparse import gemv_grads_ref, gemv_ref, outer_grads_ref, outer_ref

GOLDEN = os.path.join(os.path.dirname(__file__), "data", "blocksparse_golden.npz")
# The rewrites of the Numba mode with the Python linker: graph checks without compile time.
REWRITES_ONLY = Mode(linker="py", optimizer=RewriteDatabaseQuery(include=["fast_run", "numba"]))


def compile_strict(inputs, outputs, mode, **kwargs):
    """``pytensor.function`` where any warning (e.g. a Numba object-mode fallback) fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return pytensor.function(inputs, outputs, mode=mode, **kwargs)


def gemv_vars(dtype="float64"):
    return (
        pt.tensor3("o", dtype=dtype),
        pt.tensor4("W", dtype=dtype),
        pt.tensor3("h", dtype=dtype),
        pt.lmatrix("iIdx"),
        pt.lmatrix("oIdx"),
    )


def outer_vars(dtype="float64"):
    return (
        pt.tensor4("O", dtype=dtype),
        pt.tensor3("x", dtype=dtype),
        pt.tensor3("y", dtype=dtype),
        pt.lmatrix("xIdx"),
        pt.lmatrix("yIdx"),
    )


# --------------------------------------------------------------------------- every backend


@pytest.mark.parametrize("mode", backend_params(*EVERY_BACKEND))
def test_values_and_gradients_in_every_backend(mode):
    """One compiled function per backend: GEMV, outer product and sparse_block_dot, each with
    its gradients, against the loops of their definitions; no object-mode fallback warning."""
    rng = np.random.default_rng(0)
    o, W, h, ii, oi = gemv_vars()
    O, x, y, xi, yi = outer_vars()
    alpha, b = pt.dscalar("alpha"), pt.matrix("b")
    g_gemv, g_outer = pt.tensor3("g_gemv"), pt.tensor4("g_outer")
    gemv = sparse_block_gemv(o, W, h, ii, oi)
    outer = sparse_block_outer(O, x, y, xi, yi, alpha)
    dot = sparse_block_dot(W, h, ii, b, oi)
    cost = (gemv * g_gemv).sum() + (outer * g_outer).sum() + (dot * g_gemv).sum()
    outputs = [gemv, outer, dot, *pytensor.grad(cost, [o, W, h, O, x, y, alpha, b])]
    f = compile_strict([o, W, h, ii, oi, O, x, y, xi, yi, alpha, b, g_gemv, g_outer], outputs, mode)

    vo, vW, vh, vii, voi = gemv_inputs(rng, 3, 4, 5, 3, 2, 2, 3)
    vO, vx, vy, vxi, vyi = outer_inputs(rng, 4, 2, 3, 2, 3, 2, 2)
    va, vb = 0.7, rng.standard_normal((5, 2))
    vg, vG = rng.standard_normal(vo.shape), rng.standard_normal(vO.shape)
    got = f(vo, vW, vh, vii, voi, vO, vx, vy, vxi, vyi, va, vb, vg, vG)

    g_W, g_h = gemv_grads_ref(vW, vh, vii, voi, vg)
    g_x, g_y, g_alpha = outer_grads_ref(vx, vy, vxi, vyi, va, vG)
    expected = [
        gemv_ref(vo, vW, vh, vii, voi),
        outer_ref(vO, vx, vy, vxi, vyi, va),
        gemv_ref(vb[voi], vW, vh, vii, voi),
        vg,  # d/do
        2 * g_W,  # d/dW: the GEMV and sparse_block_dot both use W with the same cotangent
        2 * g_h,
        vG,  # d/dO
        g_x,
        g_y,
        g_alpha,
        np.stack([vg[voi == k].sum(0) for k in range(5)]),  # d/db: scatter-add of g
    ]
    for name, a, e in zip(
        ["gemv", "outer", "dot", "o", "W", "h", "O", "x", "y", "alpha", "b"], got, expected, strict=True
    ):
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-10, err_msg=name)


def test_float32_and_int32_in_numba():
    """float32 stays float32 (forward here; the float32 gradients are checked against the
    legacy golden outputs below)."""
    rng = np.random.default_rng(1)
    o, W, h = gemv_vars("float32")[:3]
    ii, oi = pt.imatrix("iIdx"), pt.imatrix("oIdx")
    f = compile_strict([o, W, h, ii, oi], sparse_block_gemv(o, W, h, ii, oi), "NUMBA")
    values = gemv_inputs(rng, 3, 4, 5, 8, 8, 2, 3, dtype="float32")
    got = f(*values[:3], *(idx.astype("int32") for idx in values[3:]))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, gemv_ref(*values), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- legacy golden outputs


def golden(case):
    with np.load(GOLDEN) as data:
        return {key.split("/", 1)[1]: data[key] for key in data.files if key.startswith(case + "/")}


@pytest.mark.parametrize("case", ["gemv", "gemv_batch1_single_block", "gemv_float32"])
def test_gemv_matches_legacy(case):
    d = golden(case)
    dtype = str(d["W"].dtype)
    o, W, h, ii, oi = gemv_vars(dtype)
    g = pt.tensor3("g", dtype=dtype)
    out = sparse_block_gemv(o, W, h, ii, oi)
    f = pytensor.function([o, W, h, ii, oi, g], [out, *pytensor.grad((out * g).sum(), [o, W, h])], mode="FAST_COMPILE")
    got = f(d["o"], d["W"], d["h"], d["inputIdx"], d["outputIdx"], d["g"])
    tol = 1e-5 if dtype == "float32" else 1e-12
    for name, value in zip(["out", "grad_o", "grad_W", "grad_h"], got, strict=True):
        assert value.dtype == d[name].dtype
        np.testing.assert_allclose(value, d[name], rtol=tol, atol=tol, err_msg=name)


def test_outer_matches_legacy_which_ignores_alpha():
    """The legacy op drops ``alpha`` (its output with alpha=0.7 is the alpha=1 one); we apply it
    as documented, and agree with the legacy wherever alpha is 1."""
    d = golden("outer")
    O, x, y, xi, yi = outer_vars()
    alpha = pt.dscalar("alpha")
    f = pytensor.function(
        [O, x, y, xi, yi, alpha],
        [sparse_block_outer(O, x, y, xi, yi), sparse_block_outer(O, x, y, xi, yi, alpha)],
        mode="FAST_COMPILE",
    )
    args = (d["o"], d["x"], d["y"], d["xIdx"].astype("int64"), d["yIdx"].astype("int64"))
    got_default, got_alpha = f(*args, d["alpha"])
    np.testing.assert_allclose(got_default, d["out_alpha_default"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_default, d["out"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_alpha, outer_ref(*args, d["alpha"]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", ["dot", "dot_unbatched"])
def test_sparse_block_dot_matches_legacy(case):
    d = golden(case)
    W, b, g = pt.tensor4("W"), pt.matrix("b"), pt.tensor3("g")
    h = pt.tensor(shape=(None,) * d["h"].ndim, name="h")
    ii = pt.tensor(dtype="int32", shape=(None,) * d["inputIdx"].ndim, name="iIdx")
    oi = pt.tensor(dtype="int32", shape=(None,) * d["outputIdx"].ndim, name="oIdx")
    out = sparse_block_dot(W, h, ii, b, oi)
    assert out.ndim == 3  # a single example (2-d h) still gets a batch axis, as in the legacy
    f = pytensor.function([W, h, ii, b, oi, g], [out, *pytensor.grad((out * g).sum(), [W, h, b])], mode="FAST_COMPILE")
    got = f(d["W"], d["h"], d["inputIdx"], d["b"], d["outputIdx"], d["g"])
    for name, value in zip(["out", "grad_W", "grad_h", "grad_b"], got, strict=True):
        np.testing.assert_allclose(value, d[name], rtol=1e-12, atol=1e-12, err_msg=name)


# --------------------------------------------------------------------------- gradients


def _closed_over_indices(rng, batch, n_in, n_out, win_in, win_out):
    ii = rng.integers(0, n_in, (batch, win_in))
    oi = rng.integers(0, n_out, (batch, win_out))
    if win_in > 1:
        ii[0, 1] = ii[0, 0]  # repeated index inside an example
    return ii, oi


# (batch, iBlocks, oBlocks, iSize, oSize, iWin, oWin)
GRAD_SHAPES = [(3, 4, 3, 2, 3, 3, 2), (1, 1, 1, 2, 3, 1, 1), (2, 1, 2, 3, 2, 2, 3)]


@pytest.mark.parametrize("shape", GRAD_SHAPES)
def test_verify_grad_gemv(shape):
    rng = np.random.default_rng(sum(shape))
    batch, n_in, n_out, s_in, s_out, w_in, w_out = shape
    ii, oi = _closed_over_indices(rng, batch, n_in, n_out, w_in, w_out)
    o, W, h = gemv_inputs(rng, *shape)[:3]
    verify_grad(lambda o, W, h: sparse_block_gemv(o, W, h, ii, oi), [o, W, h], rng=rng, mode="FAST_COMPILE")


@pytest.mark.parametrize("shape", GRAD_SHAPES[:2])
def test_verify_grad_outer(shape):
    rng = np.random.default_rng(sum(shape) + 1)
    batch, n_x, n_y, s_x, s_y, w_x, w_y = shape
    xi, yi = _closed_over_indices(rng, batch, n_x, n_y, w_x, w_y)
    o, x, y = outer_inputs(rng, *shape)[:3]
    verify_grad(
        lambda o, x, y, alpha: sparse_block_outer(o, x, y, xi, yi, alpha),
        [o, x, y, np.asarray(0.8)],
        rng=rng,
        mode="FAST_COMPILE",
    )


def test_verify_grad_sparse_block_dot_with_repeated_output_blocks():
    rng = np.random.default_rng(3)
    ii = np.array([[0, 0], [2, 1]])
    oi = np.array([[1, 1, 0], [2, 1, 1]])  # repeated: the bias gradient accumulates
    W = rng.standard_normal((3, 3, 2, 4))
    h = rng.standard_normal((2, 2, 2))
    b = rng.standard_normal((3, 4))
    verify_grad(lambda W, h, b: sparse_block_dot(W, h, ii, b, oi), [W, h, b], rng=rng, mode="FAST_COMPILE")


def test_verify_grad_of_the_gradient():
    """Second order: the pullback of the GEMV's pullback (SparseBlockOuter's own gradient)."""
    rng = np.random.default_rng(4)
    ii, oi = _closed_over_indices(rng, 2, 3, 2, 2, 2)
    o, W, h = gemv_inputs(rng, 2, 3, 2, 2, 3, 2, 2)[:3]

    def grad_wrt_h(W, h):
        out = sparse_block_gemv(o, W, h, ii, oi)
        return pytensor.grad((out**2).sum(), h)

    verify_grad(grad_wrt_h, [W, h], rng=rng, mode="FAST_COMPILE")


def test_pushforward():
    """Forward mode through the Ops' own ``pushforward``, against the linearisation by hand.

    (PyTensor 3.0.7's default double-pullback pushforward is not usable as the reference: it
    drops every path but the identity one for outputs like ``o + f(x)``, ours included.)
    """
    rng = np.random.default_rng(5)
    o, W, h, ii, oi = gemv_vars()
    O, x, y, xi, yi = outer_vars()
    alpha = pt.dscalar("alpha")
    gemv = sparse_block_gemv(o, W, h, ii, oi)
    outer = sparse_block_outer(O, x, y, xi, yi, alpha)
    wrt = [o, W, h, O, x, y, alpha]
    tangents = [v.type() for v in wrt]
    d_gemv, d_outer = pushforward([gemv, outer], wrt, tangents, use_op_pushforward=True)
    # Only h moving: the other tangents reach the Op as disconnected.
    d_h = pushforward(gemv, [h], [tangents[2]], use_op_pushforward=True)
    f = pytensor.function(
        [o, W, h, ii, oi, O, x, y, xi, yi, alpha, *tangents],
        [d_gemv, d_outer, d_h],
        mode="FAST_COMPILE",
        on_unused_input="ignore",
    )
    vo, vW, vh, vii, voi = gemv_inputs(rng, 2, 3, 4, 2, 3, 2, 2)
    vO, vx, vy, vxi, vyi = outer_inputs(rng, 3, 2, 3, 2, 2, 2, 2)
    t_o, t_W, t_h, t_O, t_x, t_y = (rng.standard_normal(v.shape) for v in (vo, vW, vh, vO, vx, vy))
    got_gemv, got_outer, got_h = f(vo, vW, vh, vii, voi, vO, vx, vy, vxi, vyi, 0.6, t_o, t_W, t_h, t_O, t_x, t_y, 0.3)
    zeros_o = np.zeros_like(vo)
    expected_h = gemv_ref(zeros_o, vW, t_h, vii, voi)
    np.testing.assert_allclose(got_h, expected_h, rtol=1e-12)
    np.testing.assert_allclose(got_gemv, t_o + gemv_ref(zeros_o, t_W, vh, vii, voi) + expected_h, rtol=1e-12)
    zeros_O = np.zeros_like(vO)
    expected_outer = (
        t_O
        + outer_ref(zeros_O, t_x, vy, vxi, vyi, 0.6)
        + outer_ref(zeros_O, vx, t_y, vxi, vyi, 0.6)
        + outer_ref(zeros_O, vx, vy, vxi, vyi, 0.3)
    )
    np.testing.assert_allclose(got_outer, expected_outer, rtol=1e-12)


def test_indices_are_not_differentiable():
    o, W, h, ii, oi = gemv_vars()
    out = sparse_block_gemv(o, W, h, ii, oi)
    assert out.owner.op.connection_pattern(out.owner) == [[True], [True], [True], [False], [False]]
    with pytest.raises(DisconnectedInputError):
        pytensor.grad(out.sum(), ii)
    O, x, y, xi, yi = outer_vars()
    outer = sparse_block_outer(O, x, y, xi, yi)
    assert outer.owner.op.connection_pattern(outer.owner) == [
        [True],
        [True],
        [True],
        [False],
        [False],
        [True],
    ]
    with pytest.raises(DisconnectedInputError):
        pytensor.grad(outer.sum(), yi)


def test_infer_shape_does_not_run_the_op():
    o, W, h, ii, oi = gemv_vars()
    O, x, y, xi, yi = outer_vars()
    gemv = sparse_block_gemv(o, W, h, ii, oi)
    outer = sparse_block_outer(O, x, y, xi, yi)
    inputs = [o, W, h, ii, oi, O, x, y, xi, yi]
    f = pytensor.function(
        inputs,
        [gemv.shape, outer.shape],
        on_unused_input="ignore",
        mode=PY_FAST_RUN,
    )
    assert not any(isinstance(n.op, SparseBlockGemv | SparseBlockOuter) for n in f.maker.fgraph.apply_nodes)
    dummies = [np.zeros((0,) * v.ndim, v.dtype) for v in inputs]  # never read
    dummies[0], dummies[5] = np.zeros((2, 3, 4)), np.zeros((5, 6, 7, 8))
    shapes = f(*dummies)
    assert [tuple(s) for s in shapes] == [(2, 3, 4), (5, 6, 7, 8)]


def test_static_output_shape_and_dtype():
    out = sparse_block_gemv(
        pt.tensor3(shape=(2, None, 4)),
        pt.tensor4(),
        pt.tensor3(shape=(None, 7, None)),
        pt.lmatrix(),
        pt.lmatrix(shape=(None, 3)),
    )
    assert out.type.shape == (2, 3, 4)
    outer = sparse_block_outer(
        pt.tensor4(shape=(5, None, None, 2)),
        pt.tensor3(shape=(None, None, 3)),
        pt.tensor3(),
        pt.lmatrix(),
        pt.lmatrix(),
    )
    assert outer.type.shape == (5, None, 3, 2)
    # PyTensor's upcasting (the legacy output silently took o's dtype); integers give floats.
    assert (
        sparse_block_gemv(
            pt.tensor3(dtype="float32"), pt.tensor4(), pt.tensor3(dtype="float32"), pt.lmatrix(), pt.lmatrix()
        ).dtype
        == "float64"
    )
    assert (
        sparse_block_gemv(
            pt.tensor3(dtype="float32"),
            pt.tensor4(dtype="float32"),
            pt.tensor3(dtype="float32"),
            pt.imatrix(),
            pt.bmatrix(),
        ).dtype
        == "float32"
    )
    assert sparse_block_gemv(
        pt.tensor3(dtype="int32"),
        pt.tensor4(dtype="int8"),
        pt.tensor3(dtype="int16"),
        pt.lmatrix(),
        pt.lmatrix(),
    ).dtype.startswith("float")
    alpha = sparse_block_outer(
        pt.tensor4(dtype="float32"),
        pt.tensor3(dtype="float32"),
        pt.tensor3(dtype="float32"),
        pt.lmatrix(),
        pt.lmatrix(),
        pt.dscalar(),
    ).owner.inputs[-1]
    assert alpha.dtype == "float32"


# --------------------------------------------------------------------------- inplace


def _op_flags(f, op_type):
    return sorted(n.op.inplace for n in f.maker.fgraph.apply_nodes if isinstance(n.op, op_type))


def test_inplace_rewrite_on_gradients_and_its_exclusion():
    o, W, h, ii, oi = gemv_vars()
    out = sparse_block_gemv(o, W, h, ii, oi)
    g_W, g_h = pytensor.grad((out**2).sum(), [W, h])
    f = compile_strict([o, W, h, ii, oi], [out, g_W, g_h], "NUMBA")
    # The gradients' zeros are intermediate buffers: accumulated into in place. The forward
    # GEMV's o is a user input: never destroyed. W's zeros are lazily allocated (BlockZeros).
    assert _op_flags(f, SparseBlockOuter) == [True]
    assert _op_flags(f, SparseBlockGemv) == [False, True]
    [outer_node] = [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, SparseBlockOuter)]
    assert isinstance(outer_node.inputs[0].owner.op, BlockZeros)
    values = gemv_inputs(np.random.default_rng(6), 2, 3, 3, 2, 2, 2, 2)
    o_before = values[0].copy()
    got = f(*values)
    np.testing.assert_array_equal(values[0], o_before)
    ref_W, ref_h = gemv_grads_ref(*values[1:], 2 * gemv_ref(*values))
    np.testing.assert_allclose(got[1], ref_W, rtol=1e-12)
    np.testing.assert_allclose(got[2], ref_h, rtol=1e-12)

    f_off = pytensor.function(
        [o, W, h, ii, oi],
        [out, g_W, g_h],
        mode=REWRITES_ONLY.excluding("blocksparse_inplace", "blocksparse_lazy_zeros"),
    )
    assert _op_flags(f_off, SparseBlockOuter) == [False]
    assert not any(isinstance(n.op, BlockZeros) for n in f_off.maker.fgraph.apply_nodes)
    assert _op_flags(f_off, SparseBlockGemv) == [False, False]
    for a, e in zip(f_off(*values), got, strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-12)


@pytest.mark.parametrize("linker", ["numba", "py"])
def test_inplace_flag_is_honoured(linker):
    """With a mutable ``o`` the rewrite makes both Ops inplace, and the Numba kernels and
    ``perform`` then write into ``o``; excluding the rewrite leaves ``o`` alone. (PyTensor 3
    refuses graphs that contain inplace Ops before rewriting, so only the rewrite makes them.)"""
    rng = np.random.default_rng(7)
    o, W, h, ii, oi = gemv_vars()
    O, x, y, xi, yi = outer_vars()
    inputs = [In(o, mutable=True), W, h, ii, oi, In(O, mutable=True), x, y, xi, yi]
    outputs = [sparse_block_gemv(o, W, h, ii, oi), sparse_block_outer(O, x, y, xi, yi, 2.0)]
    mode = get_mode("NUMBA") if linker == "numba" else PY_FAST_RUN
    gemv_vals = gemv_inputs(rng, 2, 3, 3, 2, 2, 2, 2)
    outer_vals = outer_inputs(rng, 3, 2, 3, 2, 2, 2, 2)
    for rewrite in (True, False):
        f = compile_strict(inputs, outputs, mode if rewrite else mode.excluding("blocksparse_inplace"))
        assert _op_flags(f, SparseBlockGemv) == _op_flags(f, SparseBlockOuter) == [rewrite]
        o_val, O_val = gemv_vals[0].copy(), outer_vals[0].copy()
        got_gemv, got_outer = f(o_val, *gemv_vals[1:], O_val, *outer_vals[1:])
        np.testing.assert_allclose(got_gemv, gemv_ref(*gemv_vals), rtol=1e-12)
        np.testing.assert_allclose(got_outer, outer_ref(*outer_vals, 2.0), rtol=1e-12)
        np.testing.assert_array_equal(o_val, got_gemv if rewrite else gemv_vals[0])
        np.testing.assert_array_equal(O_val, got_outer if rewrite else outer_vals[0])


def test_sgd_update_folds_into_the_outer_product():
    """``W - lr * grad(W)`` becomes one SparseBlockOuter into W itself, in place: no W-sized
    gradient. Not when the gradient is wanted too, nor with the rewrite excluded."""
    rng = np.random.default_rng(8)
    W0 = rng.standard_normal((5, 4, 3, 2))
    W = pytensor.shared(W0.copy(), name="W")
    h, b, g = pt.tensor3("h"), pt.matrix("b"), pt.tensor3("g")
    ii, oi, lr = pt.lmatrix("iIdx"), pt.lmatrix("oIdx"), pt.dscalar("lr")
    out = sparse_block_dot(W, h, ii, b, oi)
    g_W = pytensor.grad((out * g).sum(), W)
    values = [rng.standard_normal((3, 2, 3)), rng.integers(0, 5, (3, 2)), rng.standard_normal((4, 2))]
    values += [rng.integers(0, 4, (3, 3)), rng.standard_normal((3, 3, 2))]
    expected_W = W0 - 0.1 * outer_ref(np.zeros_like(W0), values[0], values[4], values[1], values[3])
    for outputs, mode, folded in [
        (out, get_mode("NUMBA"), True),
        ([out, g_W], REWRITES_ONLY, False),
        (out, REWRITES_ONLY.excluding("blocksparse_update"), False),
    ]:
        W.set_value(W0.copy())
        f = compile_strict([h, ii, b, oi, g, lr], outputs, mode, updates=[(W, W - lr * g_W)])
        outers = [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, SparseBlockOuter)]
        assert len(outers) == 1 and outers[0].op.inplace
        assert (outers[0].inputs[0].owner is None) == folded  # o is W itself, or lazy zeros
        f(*values, 0.1)
        np.testing.assert_allclose(W.get_value(), expected_W, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "args, error, message",
    [
        (
            dict(inputIdx=pt.matrix()),
            TypeError,
            "inputIdx must hold integer block indices, got dtype float64",
        ),
        (
            dict(outputIdx=pt.bmatrix().astype(bool)),
            TypeError,
            "outputIdx must hold integer block indices, got dtype bool",
        ),
        (dict(inputIdx=pt.lvector()), TypeError, r"inputIdx must be a 2-d tensor \(batch, window\), got 1"),
        (dict(o=pt.matrix()), TypeError, r"o must be a 3-d tensor \(batch, oWin, oSize\), got 2"),
        (
            dict(W=pt.tensor3()),
            TypeError,
            r"W must be a 4-d tensor \(iBlocks, oBlocks, iSize, oSize\), got 3",
        ),
        (dict(h=pt.tensor4()), TypeError, r"h must be a 3-d tensor \(batch, iWin, iSize\), got 4"),
        (dict(h=pt.tensor3(dtype="complex128")), TypeError, "h must be real"),
        (
            dict(o=pt.tensor3(dtype="float16"), W=pt.tensor4(dtype="float16"), h=pt.tensor3(dtype="float16")),
            TypeError,
            "float16",
        ),
        (
            dict(W=pt.tensor4(shape=(None, None, 5, None))),
            ValueError,
            r"W.shape\[2\] is 5 but iSize is 2 \(from h.shape\[2\]\)",
        ),
        (
            dict(inputIdx=pt.lmatrix(shape=(4, None))),
            ValueError,
            r"inputIdx.shape\[0\] is 4 but batch is 3 \(from o.shape\[0\]\)",
        ),
        (
            dict(W=pt.tensor4(shape=(2, 3, None, None)), inputIdx=pt.as_tensor(np.array([[0, 2]] * 3))),
            ValueError,
            r"inputIdx\[0, 1\] = 2 is not a valid block index: it must be in \[0, 2\)",
        ),
        (
            dict(W=pt.tensor4(shape=(2, 3, None, None)), outputIdx=pt.as_tensor(-np.ones((3, 1), int))),
            ValueError,
            r"outputIdx\[0, 0\] = -1 is not a valid block index",
        ),
    ],
)
def test_gemv_bad_input_at_graph_build_time(args, error, message):
    inputs = dict(
        o=pt.tensor3(shape=(3, None, None)),
        W=pt.tensor4(),
        h=pt.tensor3(shape=(None, None, 2)),
        inputIdx=pt.lmatrix(),
        outputIdx=pt.lmatrix(),
    )
    inputs.update(args)
    with pytest.raises(error, match=message):
        sparse_block_gemv(*inputs.values())


def test_outer_and_dot_bad_input_at_graph_build_time():
    O, x, y, xi, yi = outer_vars()
    with pytest.raises(TypeError, match="alpha must be a scalar, got a 1-d tensor"):
        sparse_block_outer(O, x, y, xi, yi, pt.vector())
    with pytest.raises(TypeError, match="yIdx must hold integer block indices"):
        sparse_block_outer(O, x, y, xi, pt.matrix())
    with pytest.raises(ValueError, match=r"o.shape\[3\] is 4 but ySize is 3 \(from y.shape\[2\]\)"):
        sparse_block_outer(pt.tensor4(shape=(None, None, None, 4)), x, pt.tensor3(shape=(None, None, 3)), xi, yi)
    W, h, b = pt.tensor4(), pt.tensor3(), pt.matrix()
    with pytest.raises(TypeError, match=r"h must be a 3-d \(batch, iWin, iSize\) or 2-d \(iWin, iSize\) tensor"):
        sparse_block_dot(W, pt.tensor4(), xi, b, yi)
    with pytest.raises(TypeError, match=r"outputIdx must be a 2-d tensor"):
        sparse_block_dot(W, h, xi, b, pt.lvector())
    with pytest.raises(TypeError, match=r"b must be a 2-d \(oBlocks, oSize\) tensor"):
        sparse_block_dot(W, h, xi, pt.vector(), yi)
    with pytest.raises(ValueError, match=r"b.shape\[0\] is 3 but oBlocks is 4 \(from W.shape\[1\]\)"):
        sparse_block_dot(pt.tensor4(shape=(2, 4, 2, 2)), h, xi, pt.matrix(shape=(3, 2)), yi)


@pytest.mark.parametrize("mode", backend_params("NUMBA", "FAST_COMPILE", "C"))
def test_bad_input_at_run_time_raises_before_the_kernel(mode):
    rng = np.random.default_rng(8)
    o, W, h, ii, oi = gemv_vars()
    O, x, y, xi, yi = outer_vars()
    f = compile_strict(
        [o, W, h, ii, oi, O, x, y, xi, yi],
        [sparse_block_gemv(o, W, h, ii, oi), sparse_block_outer(O, x, y, xi, yi)],
        mode,
    )
    good = {"o": gemv_inputs(rng, 2, 3, 4, 2, 3, 2, 2), "O": outer_inputs(rng, 2, 2, 3, 2, 2, 2, 2)}
    for op, position, bad, message in [
        (
            "o",
            3,
            [[0, -1], [1, 2]],
            r"inputIdx\[0, 1\] = -1 is not a valid block index: it must be in \[0, 3\) ",
        ),
        (
            "o",
            4,
            [[0, 1], [4, 0]],
            r"outputIdx\[1, 0\] = 4 is not a valid block index: it must be in \[0, 4\)",
        ),
        ("o", 2, np.zeros((2, 2, 1)), r"W.shape\[2\] is 2 but iSize is 1 \(from h.shape\[2\]\)"),
        (
            "O",
            3,
            [[0, 1], [1, 2]],
            r"xIdx\[1, 1\] = 2 is not a valid block index: it must be in \[0, 2\) \(xBlocks",
        ),
        ("O", 4, [[0], [1]], r"yIdx.shape\[1\] is 1 but yWin is 2 \(from y.shape\[1\]\)"),
    ]:
        values = {k: list(v) for k, v in good.items()}
        values[op][position] = np.array(bad)
        with pytest.raises(ValueError, match=message):
            f(*values["o"], *values["O"])


@pytest.mark.parametrize("backend", ["NUMBA", "PY"])
def test_sparse_block_dot_checks_output_indices_before_the_bias_gather(backend):
    """``b[outputIdx]`` runs before the GEMV checks: it must not read past ``b`` (an
    ``IndexError``, or an out-of-bounds read in Numba), in the forward pass nor in the gradient
    wrt ``b`` of a linear cost (which never runs the GEMV once rewritten)."""
    mode = "NUMBA" if backend == "NUMBA" else Mode(linker="py")
    W, h, b = pt.tensor4("W"), pt.tensor3("h"), pt.matrix("b")
    ii, oi = pt.lmatrix("inputIdx"), pt.lmatrix("outputIdx")
    out = sparse_block_dot(W, h, ii, b, oi)
    f = compile_strict([W, h, ii, b, oi], out, mode)
    f_gb = compile_strict([W, h, ii, b, oi], pytensor.grad(out.sum(), b), mode)
    assert not any(isinstance(n.op, SparseBlockGemv) for n in f_gb.maker.fgraph.apply_nodes)
    rng = np.random.default_rng(3)
    vW, vh, vb = rng.standard_normal((3, 4, 2, 5)), rng.standard_normal((2, 1, 2)), rng.standard_normal((4, 5))
    vii, voi = np.array([[0], [2]]), np.array([[0, 3], [1, 2]])
    for fn in (f, f_gb):
        for bad_ii, bad_oi, bad_b, message in [
            (
                vii,
                [[0, 9], [1, 2]],
                vb,
                r"outputIdx\[0, 1\] = 9 is not a valid block index: it must be in \[0, 4\) "
                r"\(oBlocks = W.shape\[1\]\)",
            ),
            (vii, [[0, 1], [-1, 2]], vb, r"outputIdx\[1, 0\] = -1 is not a valid block index: it must be in \[0, 4\)"),
            (vii, voi, vb[:3], r"b.shape\[0\] is 3 but oBlocks is 4 \(from W.shape\[1\]\)"),
        ]:
            with pytest.raises(ValueError, match=message):
                fn(vW, vh, np.array(bad_ii), bad_b, np.array(bad_oi))
    with pytest.raises(
        ValueError,
        match=r"inputIdx\[1, 0\] = 7 is not a valid block index: it must be in \[0, 3\) "
        r"\(iBlocks = W.shape\[0\]\)",
    ):
        f(vW, vh, np.array([[0], [7]]), vb, voi)
    np.testing.assert_allclose(f(vW, vh, vii, vb, voi), gemv_ref(vb[voi], vW, vh, vii, voi), rtol=1e-12)
    np.testing.assert_allclose(f_gb(vW, vh, vii, vb, voi), np.stack([(voi == k).sum() * np.ones(5) for k in range(4)]))


def test_float_indices_name_the_argument():
    o, W, h, ii, oi = gemv_vars()
    O, x, y, xi, yi = outer_vars()
    b, fidx = pt.matrix("b"), pt.matrix("f")
    for build, name in [
        (lambda: sparse_block_dot(W, h, fidx, b, oi), "inputIdx"),
        (lambda: sparse_block_dot(W, h, ii, b, fidx), "outputIdx"),
        (lambda: sparse_block_gemv(o, W, h, ii, fidx), "outputIdx"),
        (lambda: sparse_block_gemv(o, W, h, fidx, oi), "inputIdx"),
        (lambda: sparse_block_outer(O, x, y, fidx, yi), "xIdx"),
    ]:
        with pytest.raises(TypeError, match=f"{name} must hold integer block indices, got dtype float64"):
            build()
    with pytest.raises(TypeError, match=r"W must be a 4-d tensor \(iBlocks, oBlocks, iSize, oSize\), got 3"):
        sparse_block_dot(pt.tensor3(), h, ii, b, oi)
    with pytest.raises(ValueError, match=r"outputIdx\[0, 1\] = 4 is not a valid block index"):
        sparse_block_dot(pt.tensor4(shape=(2, 4, 2, 2)), h, ii, b, np.array([[0, 4]]))


def test_jax_poisons_out_of_range_indices_with_nan():
    mode = backends.get_mode("JAX")
    rng = np.random.default_rng(9)
    o, W, h, ii, oi = gemv_vars()
    O, x, y, xi, yi = outer_vars()
    f = compile_strict(
        [o, W, h, ii, oi, O, x, y, xi, yi],
        [sparse_block_gemv(o, W, h, ii, oi), sparse_block_outer(O, x, y, xi, yi)],
        mode,
    )
    gemv_vals = list(gemv_inputs(rng, 2, 3, 4, 2, 3, 2, 2))
    outer_vals = list(outer_inputs(rng, 2, 2, 3, 2, 2, 2, 2))
    good = f(*gemv_vals, *outer_vals)
    assert all(np.isfinite(a).all() for a in good)
    gemv_vals[3] = np.array([[0, -1], [1, 2]])  # negative: JAX would wrap around
    outer_vals[4] = np.array([[0, 3], [1, 2]])  # past the end: JAX would drop the update
    bad_gemv, bad_outer = f(*gemv_vals, *outer_vals)
    assert np.isnan(bad_gemv).all() and np.isnan(bad_outer).all()
    with pytest.raises(ValueError, match=r"W.shape\[2\] is 2 but iSize is 1 \(from h.shape\[2\]\)"):
        f(gemv_vals[0], gemv_vals[1], gemv_vals[2][:, :, :1], *gemv_vals[3:], *outer_vals)


def test_block_zeros():
    shape = [pt.lscalar(f"s{i}") for i in range(4)]
    zeros = BlockZeros("float32")(shape[0], 3, shape[2], 2)
    assert zeros.type.shape == (None, 3, None, 2) and zeros.dtype == "float32"
    f = pytensor.function(shape, zeros, on_unused_input="ignore", mode="FAST_COMPILE")
    np.testing.assert_array_equal(f(2, 0, 4, 0), np.zeros((2, 3, 4, 2), np.float32))
    with pytest.raises(TypeError, match="4 dimensions"):
        BlockZeros("float64")(2, 3)
    with pytest.raises(TypeError, match="integer scalars"):
        BlockZeros("float64")(2, 3, 4, 0.5)


def test_legacy_module_names():
    assert set(blocksparse.__all__) == {
        "SparseBlockGemv",
        "SparseBlockOuter",
        "sparse_block_dot",
        "sparse_block_gemv",
        "sparse_block_gemv_inplace",
        "sparse_block_outer",
        "sparse_block_outer_inplace",
    }
    assert sparse_block_gemv == SparseBlockGemv() and sparse_block_gemv_inplace == SparseBlockGemv(inplace=True)
    assert sparse_block_outer_inplace.destroy_map == {0: [0]} and not sparse_block_outer.destroy_map
