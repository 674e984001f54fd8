"""Sparse-matrix convolution, max pooling and local connections.

References: slow numpy loops over output positions (``tests/reference/sparse_conv.py``, and
scipy's correlate2d), and golden fixtures from the legacy implementation (``tests/data/sparse_conv_*.npz``, written by
``tests/data/sparse_conv_make_fixtures.py``).
"""

import json
import os

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.signal
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st
from pytensor.gradient import verify_grad

from pytensor_nnet import sparse as S
from pytensor_nnet.compat import pushforward
from pytensor_nnet.sparse.convolution import (
    SparseConv,
    SparseConvGradImages,
    SparseConvGradKernels,
    SparseMaxPool,
)
from tests.backends import C_MODE, EVERY_BACKEND, backend_params
from tests.reference.sparse_conv import (
    block_max_reference,
    correlate_reference,
    local_reference,
    padded_image,
    patches_reference,
    split_shape,
)

DATA = os.path.join(os.path.dirname(__file__), os.pardir, "data")


def load_cases(name):
    data = np.load(os.path.join(DATA, f"sparse_conv_{name}.npz"))
    cases = json.loads(str(data["cases"]))
    return [
        (case, {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith(f"{i}/")})
        for i, case in enumerate(cases)
    ]


def legacy_strides(strides):
    """Axis-order strides -> the legacy (dx, dy) order."""
    return tuple(strides[::-1])


def test_references_agree_with_scipy():
    rng = np.random.default_rng(0)
    images, kerns = rng.standard_normal((2, 30)), rng.standard_normal((3, 6))
    for mode in ("valid", "full"):
        ours = correlate_reference(images, kerns, (5, 6), (2, 3), (1, 1), mode)
        scipy_ref = [
            [scipy.signal.correlate2d(img.reshape(5, 6), k.reshape(2, 3), mode).ravel() for k in kerns]
            for img in images
        ]
        np.testing.assert_allclose(ours, scipy_ref, atol=1e-12)


# ---------------------------------------------------------------------------------------
# ConvolutionIndices
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", load_cases("indices"), ids=lambda c: str(c[0]))
def test_convolution_indices_match_legacy(case):
    (inshp, kshp, strides, mode), golden = case
    indices, indptr, shape, fmt, outshp = S.ConvolutionIndices.evaluate(inshp, kshp, strides, mode=mode)
    assert fmt == "csc"
    assert indices.dtype == np.int32 and indptr.dtype == np.int32
    np.testing.assert_array_equal(indices, golden["indices"])
    np.testing.assert_array_equal(indptr, golden["indptr"])
    assert shape == tuple(golden["shape"])
    np.testing.assert_array_equal(outshp, golden["outshp"])


geometries = st.integers(1, 3).flatmap(
    lambda nd: st.tuples(
        st.integers(1, 2),  # channels
        st.lists(st.integers(1, 6), min_size=nd, max_size=nd),  # image
        st.lists(st.integers(1, 3), min_size=nd, max_size=nd),  # kernel
        st.lists(st.integers(1, 3), min_size=nd, max_size=nd),  # strides (axis order)
        st.sampled_from(["valid", "full"]),
        st.booleans(),  # channel entry in imgshp
    )
)


@settings(max_examples=60, deadline=None)
@given(geometries)
def test_patch_matrix_gathers_patches(geometry):
    channels, in_sp, k_sp, strides, mode, with_channel = geometry
    if mode == "valid" and any(k > n for k, n in zip(k_sp, in_sp)):
        return
    imgshp = (channels, *in_sp) if with_channel or channels > 1 else tuple(in_sp)
    image = np.random.default_rng(1).standard_normal(int(np.prod(imgshp)))
    indices, indptr, shape, _, outshp = S.ConvolutionIndices.evaluate(imgshp, k_sp, legacy_strides(strides), mode=mode)
    M = scipy.sparse.csc_matrix((np.ones(len(indices)), indices, indptr), shape)
    expected = patches_reference(image, imgshp, k_sp, strides, mode)
    assert tuple(outshp) == tuple(
        len(range(0, n - k + 1, s)) for n, k, s in zip(padded_image(image, imgshp, k_sp, mode).shape[1:], k_sp, strides)
    )
    np.testing.assert_array_equal((M @ image).reshape(expected.shape), expected)
    assert M.has_sorted_indices and M.max() == 1


@pytest.mark.parametrize("mode", ["valid", "full"])
def test_local_connections_indices(mode):
    imgshp, kshp, strides, nkern = (2, 4, 5), (2, 3), (1, 2), 3
    indices, indptr, shape, _, outshp, kmap = S.ConvolutionIndices.evaluate(
        imgshp, kshp, legacy_strides(strides), nkern, mode, ws=False
    )
    rng = np.random.default_rng(2)
    ksize = 2 * 6
    weights = rng.standard_normal(nkern * int(np.prod(outshp)) * ksize)
    W = scipy.sparse.csc_matrix((weights[kmap], indices, indptr), shape)
    images = rng.standard_normal((2, 40))
    expected = local_reference(images, weights, imgshp, kshp, strides, mode, nkern)
    np.testing.assert_allclose(images @ W.T, expected, atol=1e-12)
    assert len(np.unique(kmap)) == len(kmap)


@pytest.mark.parametrize("ws", [True, False])
def test_convolution_indices_symbolic(ws):
    inshp, kshp, strides = pt.lvector(), pt.lvector(), pt.lvector()
    op = S.ConvolutionIndices("full", ws)
    outs = op(pt.specify_shape(inshp, 3), pt.specify_shape(kshp, 2), pt.specify_shape(strides, 2), 2)
    expected = S.ConvolutionIndices.evaluate((2, 4, 5), (2, 3), (1, 2), 2, "full", ws)
    expected = [expected[0], expected[1], np.asarray(expected[2]), *expected[4:]]
    for mode in ("NUMBA", "FAST_COMPILE", C_MODE):
        f = pytensor.function([inshp, kshp, strides], outs, mode=mode)
        got = f([2, 4, 5], [2, 3], [1, 2])
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype or a.dtype == np.int32
        if mode == "NUMBA":
            with pytest.raises(ValueError, match="strides"):
                f([2, 4, 5], [2, 3], [0, 2])
            with pytest.raises(ValueError, match="inshp"):
                f([0, 4, 5], [2, 3], [1, 1])
    if ws:
        pytest.importorskip("jax")
        with pytest.raises(NotImplementedError, match="JAX cannot trace"):
            pytensor.function([inshp, kshp, strides], outs, mode="JAX")
    # the Op builds a pytensor.sparse matrix usable in a graph
    indices, indptr, shape, outshp = S.ConvolutionIndices()(pt.as_tensor([4, 4]), [2, 2], [1, 1], 1)
    M = pytensor.sparse.CSM("csc")(pt.ones(indices.shape[0]), indices, indptr, shape)
    dense = pytensor.function([], pytensor.sparse.dense_from_sparse(M), mode="FAST_COMPILE")()
    assert dense.shape == (36, 16) and dense.sum() == 36


def test_convolution_indices_bad_input():
    evaluate = S.ConvolutionIndices.evaluate
    with pytest.raises(ValueError, match="kshp.*larger than the image inshp"):
        evaluate((4, 4), (5, 2))
    with pytest.raises(ValueError, match="strides"):
        evaluate((4, 4), (2, 2), (0, 1))
    with pytest.raises(ValueError, match="strides"):
        evaluate((4, 4), (2, 2), (1, -2))
    with pytest.raises(ValueError, match="inshp"):
        evaluate((2, 3, 4, 4), (2, 2))
    with pytest.raises(ValueError, match="strides"):
        evaluate((4, 4), (2, 2), (1, 1, 1))
    with pytest.raises(ValueError, match="mode"):
        evaluate((4, 4), (2, 2), mode="same")
    with pytest.raises(ValueError, match="nkern"):
        evaluate((4, 4), (2, 2), nkern=0, ws=False)
    with pytest.raises(TypeError, match="kshp"):
        evaluate((4, 4), (2.5, 2))
    with pytest.raises(ValueError, match="kshp"):
        evaluate((4, 4), (0, 2))
    with pytest.raises(ValueError, match="inshp"):
        S.ConvolutionIndices()(pt.lvector(), [2, 2], [1, 1])


# ---------------------------------------------------------------------------------------
# convolve
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", load_cases("convolve"), ids=lambda c: str(c[0]))
def test_convolve_matches_legacy(case):
    (kshp, nkern, imgshp, step, mode, with_bias, flatten), g = case
    K, X, B = pt.dmatrix("K"), pt.dmatrix("X"), pt.dvector("B")
    out, outshp = S.convolve(K, kshp, nkern, X, imgshp, step, B if with_bias else None, mode, flatten)
    np.testing.assert_array_equal(outshp, g["outshp"])
    assert outshp.dtype == np.int64
    cost = (out.flatten() * g["weights"]).sum()
    f = pytensor.function([K, X, B], [out, *pytensor.grad(cost, [K, X])], mode="FAST_COMPILE", on_unused_input="ignore")
    value, dkerns, dimages = f(g["kerns"], g["images"], g["bias"])
    np.testing.assert_allclose(value, g["out"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dkerns, g["dkerns"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dimages, g["dimages"], rtol=1e-12, atol=1e-12)
    # and the legacy values are a correlation (no flip), whatever the step order
    expected = correlate_reference(g["images"], g["kerns"], imgshp, kshp, legacy_strides(step), mode)
    if with_bias:
        expected = expected + g["bias"][None, :, None]
    np.testing.assert_allclose(value.reshape(expected.shape), expected, atol=1e-12)


CONVOLVE_SWEEP = [
    # kshp, nkern, imgshp, step (legacy order), mode
    ((3,), 2, (7,), (2,), "valid"),
    ((2,), 1, (3, 5), (1,), "full"),
    ((2, 2, 2), 2, (3, 4, 3), (1, 1, 2), "valid"),
    ((2, 1, 3), 1, (2, 2, 3, 4), (2, 1, 1), "full"),
    ((1, 1), 3, (2, 3, 3), (1, 1), "valid"),
    ((4, 5), 2, (4, 5), (3, 3), "valid"),
    ((3, 2), 2, (1, 4, 4), (2, 3), "full"),
]


@pytest.mark.parametrize("kshp, nkern, imgshp, step, mode", CONVOLVE_SWEEP)
def test_convolve_nd_against_reference(kshp, nkern, imgshp, step, mode):
    rng = np.random.default_rng(3)
    channels, _ = split_shape(imgshp, kshp)
    kerns = rng.standard_normal((nkern, channels * int(np.prod(kshp))))
    images = rng.standard_normal((2, int(np.prod(imgshp))))
    K, X = pt.dmatrix(), pt.dmatrix()
    out, outshp = S.convolve(K, kshp, nkern, X, imgshp, step, mode=mode, flatten=False)
    f = pytensor.function([K, X], out, mode="FAST_COMPILE")
    expected = correlate_reference(images, kerns, imgshp, kshp, legacy_strides(step), mode)
    np.testing.assert_allclose(f(kerns, images), expected, atol=1e-12)
    assert outshp[0] == nkern and int(np.prod(outshp[1:])) == expected.shape[2]


@pytest.fixture(scope="module")
def lenet_like():
    """Forward and gradients of one small convolve + max_pool graph, for mode comparisons."""
    rng = np.random.default_rng(4)
    K = pt.tensor("K", shape=(3, 2 * 3 * 2))
    X = pt.tensor("X", shape=(4, 2 * 6 * 7))
    B = pt.tensor("B", shape=(3,))
    out, outshp = S.convolve(K, (3, 2), 3, X, (2, 6, 7), step=(2, 1), bias=B, mode="full")
    pooled, _ = S.max_pool(out, tuple(int(v) for v in outshp), (2, 2))
    weights = rng.standard_normal(4 * pooled.type.shape[1])
    cost = (pooled.flatten() * weights).sum() + (out**2).sum()
    outputs = [out, pooled, *pytensor.grad(cost, [K, X, B])]
    values = [rng.standard_normal(v.type.shape) for v in (K, X, B)]
    return (K, X, B), outputs, values


@pytest.mark.parametrize("mode", backend_params(*EVERY_BACKEND))
def test_convolve_and_max_pool_in_every_backend(lenet_like, mode):
    inputs, outputs, values = lenet_like
    reference = pytensor.function(inputs, outputs, mode="FAST_COMPILE")(*values)
    f = pytensor.function(inputs, outputs, mode=mode)
    for got, ref in zip(f(*values), reference, strict=True):
        np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-10, atol=1e-10)
    ops = {type(node.op) for node in f.maker.fgraph.apply_nodes}
    assert SparseConv in ops and SparseMaxPool in ops


def test_convolve_verify_grad():
    rng = np.random.default_rng(5)

    def conv(kerns, images, bias):
        return S.convolve(kerns, (2, 3), 2, images, (2, 4, 5), (2, 1), bias, "full")[0]

    values = [rng.standard_normal(s) for s in ((2, 12), (3, 40), (2,))]
    verify_grad(conv, values, rng=rng, mode="FAST_COMPILE")
    one_d = [rng.standard_normal((2, 3)), rng.standard_normal((2, 6))]
    verify_grad(lambda k, x: S.convolve(k, (3,), 2, x, (6,), 2)[0], one_d, rng=rng, mode="NUMBA")


def test_convolve_second_order_and_pushforward():
    rng = np.random.default_rng(6)
    K, X = pt.dmatrix(), pt.dmatrix()
    M = S.convolve(K, (2, 2), 2, X, (3, 4), mode="full")[0].owner.inputs[0].owner.inputs[2]
    kerns, images = rng.standard_normal((2, 4)), rng.standard_normal((3, 12))
    gout = rng.standard_normal((3, 2, 20))
    verify_grad(lambda k, g: SparseConvGradImages()(k, g, M), [kerns, gout], rng=rng, mode="FAST_COMPILE")
    verify_grad(lambda x, g: SparseConvGradKernels()(x, g, M), [images, gout], rng=rng, mode="FAST_COMPILE")
    # the three Ops are bilinear: f(a + da, b + db) = f(a, b) + jvp + f(da, db)
    for op, a, b in (
        (SparseConv(), kerns, images),
        (SparseConvGradImages(), kerns, gout),
        (SparseConvGradKernels(), images, gout),
    ):
        A, B = pt.tensor(shape=(None,) * a.ndim), pt.tensor(shape=(None,) * b.ndim)
        dA, dB = A.type(), B.type()
        jvp = pushforward(op(A, B, M), [A, B], [dA, dB])
        f = pytensor.function(
            [A, B, dA, dB], [jvp, op(A + dA, B + dB, M) - op(A, B, M) - op(dA, dB, M)], mode="FAST_COMPILE"
        )
        got, expected = f(a, b, rng.standard_normal(a.shape), rng.standard_normal(b.shape))
        np.testing.assert_allclose(got, expected, atol=1e-10)


def test_convolve_shapes_dtypes_and_infer_shape():
    K32, X32 = pt.fmatrix(), pt.fmatrix()
    out, outshp = S.convolve(K32, (2, 2), 4, X32, (5, 5), flatten=False)
    assert out.dtype == "float32" and out.type.shape == (None, 4, 16)
    np.testing.assert_array_equal(outshp, [4, 4, 4])
    out_int, _ = S.convolve(pt.fmatrix(), (2, 2), 4, pt.imatrix(), (5, 5))
    assert out_int.dtype == "float64"
    f = pytensor.function([K32, X32], out.shape, mode="FAST_RUN")
    assert not any(isinstance(n.op, SparseConv) for n in f.maker.fgraph.apply_nodes)
    np.testing.assert_array_equal(f(np.zeros((4, 4), "float32"), np.zeros((7, 25), "float32")), [7, 4, 16])


def test_convolve_bad_input():
    K, X = pt.dmatrix(), pt.dmatrix()
    with pytest.raises(ValueError, match="kshp.*larger than the image imgshp"):
        S.convolve(K, (5, 5), 2, X, (4, 5))
    with pytest.raises(ValueError, match="step"):
        S.convolve(K, (2, 2), 2, X, (4, 5), step=(0, 1))
    with pytest.raises(ValueError, match="step"):
        S.convolve(K, (2, 2), 2, X, (4, 5), step=(1, -1))
    with pytest.raises(ValueError, match="imgshp"):
        S.convolve(K, (2, 2), 2, X, (3, 3, 4, 5))
    with pytest.raises(ValueError, match="mode"):
        S.convolve(K, (2, 2), 2, X, (4, 5), mode="same")
    with pytest.raises(ValueError, match="nkern"):
        S.convolve(K, (2, 2), 0, X, (4, 5))
    with pytest.raises(TypeError, match="kerns"):
        S.convolve(pt.tensor3(), (2, 2), 2, X, (4, 5))
    with pytest.raises(TypeError, match="images"):
        S.convolve(K, (2, 2), 2, pt.tensor4(), (4, 5))
    with pytest.raises(ValueError, match=r"kerns.shape\[1\] must be 8"):
        S.convolve(pt.tensor(shape=(2, 4)), (2, 2), 2, X, (2, 4, 5))
    with pytest.raises(ValueError, match=r"kerns.shape\[0\] must be 2"):
        S.convolve(pt.tensor(shape=(3, 4)), (2, 2), 2, X, (4, 5))
    with pytest.raises(ValueError, match=r"images.shape\[1\] must be 20"):
        S.convolve(K, (2, 2), 2, pt.tensor(shape=(None, 21)), (4, 5))
    with pytest.raises(ValueError, match=r"bias.shape\[0\] must be 2"):
        S.convolve(K, (2, 2), 2, X, (4, 5), bias=pt.tensor(shape=(3,)))
    # shapes known only at run time: the same messages, in every backend
    b = pt.dvector("b")
    out, _ = S.convolve(K, (2, 2), 2, X, (4, 5), bias=b)
    for mode in ("NUMBA", "FAST_COMPILE"):
        f = pytensor.function([K, X, b], out, mode=mode)
        ok = [np.ones((2, 4)), np.ones((3, 20)), np.ones(2)]
        f(*ok)
        with pytest.raises(ValueError, match=r"kerns.shape\[1\] must be 4"):
            f(np.ones((2, 5)), *ok[1:])
        with pytest.raises(ValueError, match=r"kerns.shape\[0\] must be 2"):
            f(np.ones((3, 4)), *ok[1:])
        with pytest.raises(ValueError, match="images"):
            f(ok[0], np.ones((3, 21)), ok[2])
        with pytest.raises(ValueError, match="bias"):
            f(*ok[:2], np.ones(3))


def test_sparse_conv_op_checks_the_patch_matrix():
    M = scipy.sparse.csr_matrix((np.ones(3), [0, 1, 7], [0, 1, 2, 3, 3]), shape=(4, 8))
    K, X, Ms = pt.dmatrix(), pt.dmatrix(), pytensor.sparse.csr_matrix(dtype="float64")
    out = SparseConv()(K, X, Ms)
    for mode in ("NUMBA", "FAST_COMPILE"):
        f = pytensor.function([K, X, Ms], out, mode=mode)
        got = f(np.ones((1, 2)), np.arange(16.0).reshape(2, 8), M)
        np.testing.assert_allclose(got, [[[1, 7]], [[17, 15]]])
        bad = M.copy()
        bad.indices = np.array([0, 1, 8], dtype=np.int32)  # out of range
        with pytest.raises(ValueError, match="out of range"):
            f(np.ones((1, 2)), np.zeros((2, 8)), bad)
        with pytest.raises(ValueError, match="images"):
            f(np.ones((1, 2)), np.zeros((2, 9)), M)
        with pytest.raises(ValueError, match="multiple"):
            f(np.ones((1, 3)), np.zeros((2, 8)), M)
    # a CSC patch matrix gives the same result
    f = pytensor.function([K, X], SparseConv()(K, X, M.tocsc()), mode="NUMBA")
    np.testing.assert_allclose(f(np.ones((1, 2)), np.arange(16.0).reshape(2, 8)), [[[1, 7]], [[17, 15]]])


# ---------------------------------------------------------------------------------------
# max_pool
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", load_cases("maxpool"), ids=lambda c: str(c[0]))
def test_max_pool_matches_legacy(case):
    (imgshp, poolshp), g = case
    X = pt.dmatrix()
    out, outshp = S.max_pool(X, imgshp, poolshp)
    np.testing.assert_array_equal(outshp, g["outshp"])
    cost = (out.flatten() * g["weights"]).sum()
    f = pytensor.function([X], [out, pytensor.grad(cost, X)], mode="FAST_COMPILE")
    value, dimages = f(g["images"])
    np.testing.assert_allclose(value, g["out"], rtol=0, atol=0)
    np.testing.assert_allclose(dimages, g["dimages"], atol=1e-12)
    np.testing.assert_allclose(value, block_max_reference(g["images"], imgshp, poolshp))


@pytest.mark.parametrize(
    "imgshp, pool", [((6, 6), (3, 2)), ((2, 5, 7), (2, 3)), ((9,), (4,)), ((2, 4, 4, 6), (2, 2, 3))]
)
def test_max_pool_non_square_and_nd(imgshp, pool):
    rng = np.random.default_rng(7)
    images = rng.permutation(3 * int(np.prod(imgshp))).reshape(3, -1).astype(float)
    X = pt.dmatrix()
    out, outshp = S.max_pool(X, imgshp, pool)
    _, in_sp = split_shape(imgshp, pool)
    np.testing.assert_array_equal(outshp, [n // p for n, p in zip(in_sp, pool)])
    f = pytensor.function([X], out, mode="FAST_COMPILE")
    np.testing.assert_array_equal(f(images), block_max_reference(images, imgshp, pool))


def test_max_pool_gradient_and_ties():
    rng = np.random.default_rng(8)
    X = pt.dmatrix()
    verify_grad(
        lambda x: S.max_pool(x, (2, 4, 5), (2, 2))[0],
        [rng.permutation(80).reshape(2, 40) / 7.0],
        rng=rng,
        mode="FAST_COMPILE",
    )
    out, _ = S.max_pool(X, (2, 2), (2, 2))
    for mode in ("NUMBA", "FAST_COMPILE"):
        g = pytensor.function([X], pytensor.grad(out.sum(), X), mode=mode)(np.array([[1.0, 3.0, 3.0, 0.0]]))
        np.testing.assert_array_equal(g, [[0, 1, 0, 0]])  # the first maximum takes it


def test_max_pool_bad_input():
    X = pt.dmatrix()
    with pytest.raises(ValueError, match="maxpoolshp.*larger than the image imgshp"):
        S.max_pool(X, (4, 4), (5, 2))
    with pytest.raises(ValueError, match="maxpoolshp"):
        S.max_pool(X, (4, 4), (0, 2))
    with pytest.raises(ValueError, match="imgshp"):
        S.max_pool(X, (4,), (2, 2))
    with pytest.raises(ValueError, match=r"images.shape\[1\] must be 16"):
        S.max_pool(pt.tensor(shape=(2, 15)), (4, 4), (2, 2))
    f = pytensor.function([X], S.max_pool(X, (4, 4), (2, 2))[0], mode="NUMBA")
    with pytest.raises(ValueError, match="images"):
        f(np.zeros((2, 15)))


# ---------------------------------------------------------------------------------------
# Sparse local connections (a pytensor.sparse structured dot)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["valid", "full"])
def test_apply_sparse_filter_against_reference(mode):
    rng = np.random.default_rng(9)
    imgshp, kshp, step, nkern = (2, 4, 5), (2, 3), (2, 1), 2
    W, X, B = pt.dvector(), pt.dmatrix(), pt.dvector()
    out, outshp = S.applySparseFilter(W, kshp, nkern, X, imgshp, step, B, mode)
    n_weights = nkern * int(np.prod(outshp[1:])) * 12
    weights, images, bias = rng.standard_normal(n_weights), rng.standard_normal((3, 40)), rng.standard_normal(nkern)
    f = pytensor.function([W, X, B], out, mode="FAST_COMPILE")
    expected = local_reference(images, weights, imgshp, kshp, legacy_strides(step), mode, nkern)
    expected += np.repeat(bias, int(np.prod(outshp[1:])))
    np.testing.assert_allclose(f(weights, images, bias), expected, atol=1e-12)


# The weights' gradient goes through PyTensor's CSMGrad, which has no Numba implementation in
# PyTensor 3.0.7; pytensor_nnet registers one, so nothing here may fall back to object mode.
@pytest.mark.filterwarnings("error:Numba will use object mode:UserWarning")
def test_apply_sparse_filter_gradient():
    rng = np.random.default_rng(10)

    def layer(weights, images):
        return S.applySparseFilter(weights, (2, 2), 2, images, (3, 4), (1, 1), None, "full")[0]

    values = [rng.standard_normal(2 * 20 * 4), rng.standard_normal((2, 12))]
    verify_grad(layer, values, rng=rng, mode="FAST_COMPILE")
    W, X = pt.dvector(), pt.dmatrix()
    out = layer(W, X)
    grads = pytensor.grad((out**2).sum(), [W, X])
    expected = pytensor.function([W, X], grads, mode="FAST_COMPILE")(*values)
    for got, ref in zip(pytensor.function([W, X], grads, mode="NUMBA")(*values), expected, strict=True):
        np.testing.assert_allclose(got, ref, atol=1e-10)


def test_apply_sparse_filter_bad_input():
    with pytest.raises(ValueError, match=r"kerns.flatten\(\).shape\[0\] must be 192"):
        S.applySparseFilter(pt.tensor(shape=(10,)), (2, 2), 2, pt.dmatrix(), (2, 4, 5))
    with pytest.raises(ValueError, match="step"):
        S.applySparseFilter(pt.dvector(), (2, 2), 2, pt.dmatrix(), (4, 5), step=(0, 1))
