"""Random sparse matrices: statistics over many draws with fixed seeds, seeding and
reproducibility, backends, legacy call forms and bad input."""

import numpy as np
import pytensor
import pytensor.sparse as ps
import pytensor.tensor as pt
import pytest
import scipy.sparse
from pytensor.gradient import NullTypeGradError

from pytensor_nnet import sparse as S
from pytensor_nnet.compat import shared_rng, symbolic_rng
from tests.backends import backend_params

BACKENDS = backend_params("NUMBA", "FAST_COMPILE", "C")


def assert_mean_var(samples, mean, var, n_sigma=5.0):
    """Sample mean and variance within ``n_sigma`` standard errors of the expected ones."""
    samples = np.asarray(samples, dtype=float)
    n = samples.size
    assert abs(samples.mean() - mean) <= n_sigma * np.sqrt(var / n), (samples.mean(), mean)
    # the variance of the sample variance is about 2 var^2 / n (exact for the normal; the
    # distributions here have small excess kurtosis at these parameters, so 3 var^2 / n)
    assert abs(samples.var() - var) <= n_sigma * np.sqrt(3 * var**2 / n), (samples.var(), var)


def draw_twice(make, inputs, values, mode, seed=11):
    """Compile ``make(rng)`` and return (first draw, second draw, first draw after a reset)."""
    rng = shared_rng(seed=seed)
    next_rng, draws = make(rng)
    f = pytensor.function(inputs, draws, updates={rng: next_rng}, mode=mode)
    first, second = f(*values), f(*values)
    rng.set_value(np.random.default_rng(seed))
    return first, second, f(*values)


def assert_same_sparse(a, b):
    assert a.format == b.format and a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)


# ---------------------------------------------------------------------------------------
# Poisson
# ---------------------------------------------------------------------------------------


def poisson_means(fmt, dtype):
    """A 300 x 40 sparse matrix: means 0.5, 3 and 20 in thirds of the rows, 1/4 stored."""
    rng = np.random.default_rng(0)
    dense = np.repeat([0.5, 3.0, 20.0], 100)[:, None] * (rng.random((300, 40)) < 0.25)
    return scipy.sparse.csr_matrix(dense.astype(dtype)).asformat(fmt)


@pytest.mark.parametrize("mode", BACKENDS)
def test_poisson_statistics_and_seeding(mode):
    x = ps.csr_matrix("x")
    means = poisson_means("csr", "float64")
    first, second, again = draw_twice(lambda rng: S.poisson(x, rng=rng, return_next_rng=True), [x], [means], mode)
    assert_same_sparse(first, again)  # reproducible from the seed
    assert (first != second).nnz > 0  # the state advances
    assert first.format == "csr" and first.dtype == "float64" and first.shape == means.shape
    assert np.all(first.data != 0)  # zeros dropped
    assert set(zip(*first.nonzero())) <= set(zip(*means.nonzero()))
    dense = first.toarray()
    stored = means.toarray() != 0
    for block, lam in enumerate([0.5, 3.0, 20.0]):
        rows = slice(100 * block, 100 * (block + 1))
        assert_mean_var(dense[rows][stored[rows]], lam, lam)


def test_poisson_same_draws_in_every_backend_and_format():
    results = []
    for mode, fmt, dtype in [
        ("NUMBA", "csr", "float64"),
        ("FAST_COMPILE", "csr", "float64"),
        ("NUMBA", "csc", "float32"),
        ("FAST_COMPILE", "csc", "float32"),
    ]:
        x = ps.matrix(fmt, dtype=dtype)
        out, _, _ = draw_twice(
            lambda rng: S.poisson(x, rng=rng, return_next_rng=True), [x], [poisson_means(fmt, dtype)], mode, seed=3
        )
        assert out.format == fmt and out.dtype == dtype
        results.append(out)
    assert_same_sparse(results[0], results[1])
    assert_same_sparse(results[2], results[3])


def test_poisson_legacy_call_form_and_gradient():
    x = ps.csr_matrix("x")
    draws = S.poisson(x, seed=42)  # legacy form: an owned, seeded generator that advances
    f = pytensor.function([x], draws)
    means = poisson_means("csr", "float64")
    a, b = f(means), f(means)
    assert (a != b).nnz > 0
    assert_same_sparse(a, pytensor.function([x], S.poisson(x, seed=42))(means))
    with pytest.raises(NullTypeGradError):
        pytensor.grad(ps.sp_sum(draws), x)
    with pytest.raises(ValueError, match="rng or seed"):
        S.poisson(x, rng=shared_rng(seed=1), seed=2)
    with pytest.raises(TypeError, match="rng"):
        S.poisson(x, rng=pt.dscalar())


@pytest.mark.parametrize("mode", ["NUMBA", "FAST_COMPILE"])
def test_poisson_bad_means(mode):
    x = ps.csr_matrix("x")
    f = pytensor.function([x], S.poisson(x, seed=1), mode=mode)
    for bad in (-1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="x must hold finite, non-negative means"):
            f(scipy.sparse.csr_matrix(np.array([[0.0, bad], [2.0, 0.0]])))


# ---------------------------------------------------------------------------------------
# Binomial
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", BACKENDS)
def test_binomial_statistics_and_seeding(mode):
    n, p, shape = pt.lscalar("n"), pt.dscalar("p"), pt.lvector("shape")
    first, second, again = draw_twice(
        lambda rng: S.csr_dbinomial(n, p, shape, rng=rng, return_next_rng=True),
        [n, p, shape],
        [12, 0.3, [120, 90]],
        mode,
    )
    assert_same_sparse(first, again)
    assert (first != second).nnz > 0
    assert first.format == "csr" and first.dtype == "float64" and first.shape == (120, 90)
    assert np.all(first.data != 0)
    assert_mean_var(first.toarray(), 12 * 0.3, 12 * 0.3 * 0.7)


def test_binomial_formats_dtypes_and_legacy_instances():
    seen = []
    for op, mode in [
        (S.csr_fbinomial, "NUMBA"),
        (S.csc_fbinomial, "NUMBA"),
        (S.Binomial("csc", "int64"), "FAST_COMPILE"),
        (S.csr_dbinomial, "FAST_COMPILE"),
    ]:
        out, _, _ = draw_twice(lambda rng: op(5, 0.4, (7, 9), rng=rng, return_next_rng=True), [], [], mode, seed=8)
        assert out.format == op.format and out.dtype == op.dtype and out.shape == (7, 9)
        seen.append(out.toarray())
    for other in seen[1:]:
        np.testing.assert_array_equal(other, seen[0])  # C-order draws: same matrix
    assert S.csr_fbinomial(5, 0.4, (7, 9)).type.shape == (7, 9)
    assert S.Binomial("csr", "float32") == S.csr_fbinomial


@pytest.mark.parametrize("mode", ["NUMBA", "FAST_COMPILE"])
def test_binomial_bad_input(mode):
    n, p, shape = pt.lscalar("n"), pt.dscalar("p"), pt.lvector("shape")
    f = pytensor.function([n, p, shape], S.csr_dbinomial(n, p, shape, seed=1), mode=mode)
    f(3, 0.5, [2, 2])
    with pytest.raises(ValueError, match="n must be >= 0"):
        f(-1, 0.5, [2, 2])
    for bad_p in (-0.1, 1.5, np.nan):
        with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
            f(3, bad_p, [2, 2])
    with pytest.raises(ValueError, match="shape"):
        f(3, 0.5, [2, 2, 2])
    with pytest.raises(ValueError, match="shape"):
        f(3, 0.5, [-2, 2])


def test_binomial_bad_input_at_build_time():
    with pytest.raises(ValueError, match="n=-1"):
        S.csr_dbinomial(-1, 0.5, (2, 2))
    with pytest.raises(ValueError, match="p=1.5"):
        S.csr_dbinomial(3, 1.5, (2, 2))
    with pytest.raises(ValueError, match="shape must have 2 entries"):
        S.csr_dbinomial(3, 0.5, (2, 2, 2))
    with pytest.raises(TypeError, match="n must be an integer scalar"):
        S.csr_dbinomial(3.0, 0.5, (2, 2))
    with pytest.raises(ValueError, match="format"):
        S.Binomial("coo", "float64")


# ---------------------------------------------------------------------------------------
# Multinomial
# ---------------------------------------------------------------------------------------


def multinomial_p(fmt, dtype="float64", n_rows=1500):
    """Rows alternate between two patterns with probabilities (0.2, 0.5, 0.3) and
    (0.1, 0.9), stored at different columns."""
    dense = np.zeros((n_rows, 6))
    dense[0::2, [0, 2, 5]] = [0.2, 0.5, 0.3]
    dense[1::2, [1, 4]] = [0.1, 0.9]
    return scipy.sparse.csr_matrix(dense.astype(dtype)).asformat(fmt)


@pytest.mark.parametrize("mode", BACKENDS)
def test_multinomial_statistics_and_seeding(mode):
    n, p = pt.lvector("n"), ps.csr_matrix("p")
    P = multinomial_p("csr")
    trials = np.where(np.arange(P.shape[0]) % 2 == 0, 10, 25)
    first, second, again = draw_twice(
        lambda rng: S.multinomial(n, p, rng=rng, return_next_rng=True), [n, p], [trials, P], mode
    )
    assert_same_sparse(first, again)
    assert (first != second).nnz > 0
    np.testing.assert_array_equal(first.indptr, P.indptr)  # p's exact pattern
    np.testing.assert_array_equal(first.indices, P.indices)
    np.testing.assert_array_equal(first.sum(axis=1).A.ravel(), trials)
    counts = first.toarray()
    for rows, trial, cols, probs in [
        (slice(0, None, 2), 10, [0, 2, 5], [0.2, 0.5, 0.3]),
        (slice(1, None, 2), 25, [1, 4], [0.1, 0.9]),
    ]:
        for col, prob in zip(cols, probs):
            assert_mean_var(counts[rows, col], trial * prob, trial * prob * (1 - prob))


def test_multinomial_csc_scalar_n_float32_and_backends_agree():
    results = []
    for fmt, mode in [("csr", "NUMBA"), ("csr", "FAST_COMPILE"), ("csc", "NUMBA"), ("csc", "FAST_COMPILE")]:
        p = ps.matrix(fmt, dtype="float32")
        out, _, _ = draw_twice(
            lambda rng: S.multinomial(7, p, rng=rng, return_next_rng=True),
            [p],
            [multinomial_p(fmt, "float32", 40)],
            mode,
            seed=5,
        )
        assert out.format == fmt and out.dtype == "float32"
        np.testing.assert_array_equal(out.sum(axis=1).A.ravel(), 7)
        results.append(out.toarray())
    for other in results[1:]:  # CSC rows are drawn in column order: the same matrix
        np.testing.assert_array_equal(other, results[0])


def test_multinomial_legacy_call_form():
    p = ps.csr_matrix("p")
    out = S.multinomial(np.int64(3), p)  # unseeded: fresh entropy, advancing state
    counts = pytensor.function([p], out)(multinomial_p("csr", n_rows=4))
    np.testing.assert_array_equal(counts.sum(axis=1).A.ravel(), 3)
    with pytest.raises(NullTypeGradError):
        pytensor.grad(ps.sp_sum(out), p)


@pytest.mark.parametrize("mode", ["NUMBA", "FAST_COMPILE"])
def test_multinomial_bad_input(mode):
    n, p = pt.dvector("n"), ps.csr_matrix("p")
    f = pytensor.function([n, p], S.multinomial(n, p, seed=1), mode=mode)
    good = multinomial_p("csr", n_rows=2)
    f([2.0, 3.0], good)
    not_normalised = good.copy()
    not_normalised.data[0] = 0.3
    with pytest.raises(ValueError, match="each row of p must sum to 1"):
        f([2.0, 3.0], not_normalised)
    empty_row = scipy.sparse.csr_matrix(np.array([[0.5, 0.5], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="each row of p must sum to 1"):
        f([2.0, 0.0], empty_row)
    negative = scipy.sparse.csr_matrix(np.array([[-0.5, 1.5], [0.5, 0.5]]))
    with pytest.raises(ValueError, match=r"p must hold probabilities in \[0, 1\]"):
        f([2.0, 3.0], negative)
    with pytest.raises(ValueError, match="n must be >= 0"):
        f([-1.0, 3.0], good)
    with pytest.raises(ValueError, match="whole numbers"):
        f([1.5, 3.0], good)
    with pytest.raises(ValueError, match="n must have one entry per row of p|n has 3 entries"):
        f([1.0, 2.0, 3.0], good)


def test_multinomial_bad_input_at_build_time():
    p = ps.csr_matrix("p")
    with pytest.raises(ValueError, match="n must be >= 0"):
        S.multinomial(-2, p)
    with pytest.raises(TypeError, match="n must be a scalar or a vector"):
        S.multinomial(pt.lmatrix(), p)
    with pytest.raises(TypeError, match="p must hold float probabilities"):
        S.multinomial(3, ps.csr_matrix(dtype="int64"))


def test_random_ops_are_cpu_only_in_jax():
    pytest.importorskip("jax")
    x, rng = ps.csr_matrix("x"), symbolic_rng()
    with pytest.raises(NotImplementedError, match="JAX cannot trace"):
        pytensor.function([rng, x], S.poisson(x, rng=rng), mode="JAX")


# ----------------------------------------------------------------------------- shape inference
def _shape_cases():
    x = ps.csr_matrix("x", dtype="float64")
    n, p, shape = pt.iscalar("n"), pt.dscalar("p"), pt.lvector("shape")
    probs = ps.csc_matrix("probs", dtype="float64")
    x_val = scipy.sparse.csr_matrix(np.array([[0, 2.0, 0], [1.0, 0, 3.0]]))
    probs_val = scipy.sparse.csc_matrix(np.array([[0.5, 0.5, 0], [0, 0, 1.0]]))
    return [
        (S.Poisson, lambda rng: S.poisson(x, rng=rng, return_next_rng=True), [x], [x_val], (2, 3)),
        (
            S.Binomial,
            lambda rng: S.csr_dbinomial(n, p, shape, rng=rng, return_next_rng=True),
            [n, p, shape],
            [5, 0.5, np.array([3, 4])],
            (3, 4),
        ),
        (
            S.Multinomial,
            lambda rng: S.multinomial(n, probs, rng=rng, return_next_rng=True),
            [n, probs],
            [4, probs_val],
            (2, 3),
        ),
    ]


@pytest.mark.parametrize("mode", backend_params("NUMBA", "PY_FAST_RUN", "FAST_COMPILE"))
def test_the_draws_shape_is_inferred_without_drawing(mode):
    for op_class, make, inputs, values, expected in _shape_cases():
        rng = shared_rng(seed=5)
        next_rng, draws = make(rng)
        state = rng.get_value().bit_generator.state
        f = pytensor.function(inputs, draws.shape, updates={rng: next_rng}, mode=mode)
        assert not any(isinstance(node.op, op_class) for node in f.maker.fgraph.toposort())
        assert tuple(f(*values)) == expected
        assert rng.get_value().bit_generator.state == state  # nothing drawn: the generator did not advance
        # the draws themselves still advance it, and have the inferred shape
        g = pytensor.function(inputs, draws, updates={rng: next_rng}, mode=mode)
        assert g(*values).shape == expected
        assert rng.get_value().bit_generator.state != state
