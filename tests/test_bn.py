"""Batch normalization (``pytensor_nnet.bn``): legacy golden fixtures (outputs, running
averages, gradients) in Numba and the Python linker, a numpy reference, gradients, dtypes,
and bad input."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad

from pytensor_nnet import bn
from tests.backends import PY_MODE
from tests.test_nnet import MODES, check_golden_cases, compile_checked, golden


def _axes_arg(meta):
    axes = tuple(meta["axes"])
    return {(0,): "per-activation", (0, 2, 3): "spatial"}.get(axes, axes)


def _build(case, m, v):
    if case.startswith("bn_train"):
        outs = bn.batch_normalization_train(
            v["inputs"],
            v["gamma"],
            v["beta"],
            axes=_axes_arg(m),
            epsilon=m["epsilon"],
            running_average_factor=m["running_average_factor"],
            running_mean=v["running_mean"],
            running_var=v["running_var"],
        )
        return dict(zip(["out", "mean", "invstd", "new_running_mean", "new_running_var"], outs))
    if case.startswith("bn_test"):
        return {
            "out": bn.batch_normalization_test(
                v["inputs"], v["gamma"], v["beta"], v["mean"], v["var"], axes=_axes_arg(m), epsilon=m["epsilon"]
            )
        }
    return {"out": bn.batch_normalization(v["inputs"], v["gamma"], v["beta"], v["mean"], v["std"], mode=m["mode"])}


NUMBA_CASES = ["bn_train_spatial_compact", "bn_train_(0, 2)_full", "bn_test_(1,)_compact", "bn_high_mem"]


@pytest.mark.parametrize("mode", MODES)
def test_golden_fixtures_from_legacy_reference(mode):
    """Outputs, statistics, running averages and the gradients of ``out`` wrt inputs, gamma and
    beta, for every axes choice and both parameter layouts; the legacy code has no gradient
    through the returned statistics (ours has: see test_verify_grad_train)."""
    _, meta = golden()
    cases = sorted(c for c in meta if c.startswith("bn_"))
    assert len(cases) == 16
    assert all(meta[c]["grads"] == ["out"] for c in cases)
    if mode == "NUMBA":  # each case is a separate compilation: a representative subset
        cases = NUMBA_CASES
    n = check_golden_cases(cases, _build, mode)
    assert n >= 5 * len(cases)


def test_against_numpy_reference_float32_spatial():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3, 4, 2)).astype("float32") * 3 + 2
    g, b = rng.uniform(0.5, 1.5, 3).astype("float32"), rng.standard_normal(3).astype("float32")
    rm, rv = rng.standard_normal(3).astype("float32"), rng.uniform(0.5, 2, 3).astype("float32")
    X = pt.tensor4("x", dtype="float32")
    G, B, RM, RV = (pt.vector(n, dtype="float32") for n in ("g", "b", "rm", "rv"))
    outs = bn.batch_normalization_train(X, G, B, "spatial", 1e-3, 0.25, RM, RV)
    assert all(o.dtype == "float32" for o in outs)
    got = compile_checked([X, G, B, RM, RV], list(outs), "NUMBA")(x, g, b, rm, rv)
    xd = x.astype("float64")
    mean, var = xd.mean((0, 2, 3)), xd.var((0, 2, 3))
    invstd = 1 / np.sqrt(var + 1e-3)
    c = (slice(None), None, None)
    want = [
        (xd - mean[c]) * invstd[c] * g[c] + b[c],
        mean,
        invstd,
        0.75 * rm + 0.25 * mean,
        0.75 * rv + 0.25 * var * 48 / 47,
    ]
    for o, w in zip(got, want):
        np.testing.assert_allclose(o, w, rtol=2e-5, atol=2e-5)


def test_verify_grad_train_test_and_normalization():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 2, 3))
    g, b = rng.uniform(0.5, 1.5, (2,)), rng.standard_normal((2,))
    for k in range(3):  # out, and (extension) the returned mean and invstd
        verify_grad(
            lambda x_, g_, b_: bn.batch_normalization_train(x_, g_, b_, "spatial")[k], [x, g, b], rng=rng, mode=PY_MODE
        )
    gf = rng.uniform(0.5, 1.5, (1, 2, 3))
    verify_grad(lambda x_, g_, b_: bn.batch_normalization_train(x_, g_, b_)[0], [x, gf, gf - 1], rng=rng, mode=PY_MODE)
    m, v = rng.standard_normal((2,)), rng.uniform(0.5, 2, (2,))
    verify_grad(lambda *a: bn.batch_normalization_test(*a, axes="spatial"), [x, g, b, m, v], rng=rng, mode=PY_MODE)
    verify_grad(
        lambda *a: bn.batch_normalization(*a, mode="high_mem"),
        [x[0], g[:, None], b[:, None], m[:, None], v[:, None]],
        rng=rng,
        mode=PY_MODE,
    )


def test_compact_and_full_parameter_layouts_agree():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3, 5))
    X = pt.dtensor3("x")
    g_c, g_f = pt.dvector("gc"), pt.dtensor3("gf")
    out_c = bn.batch_normalization_train(X, g_c, g_c, axes=(0, 2))
    out_f = bn.batch_normalization_train(X, g_f, g_f, axes=(0, 2))
    assert out_c[1].type.shape == (None,) and out_f[1].type.shape == (1, None, 1)
    gv = rng.uniform(size=3)
    f = pytensor.function([X, g_c, g_f], [*out_c, *out_f], mode=PY_MODE)
    res = f(x, gv, gv[None, :, None])
    for a, b in zip(res[:3], res[3:]):
        np.testing.assert_allclose(np.squeeze(a), np.squeeze(b))


X4, V = pt.dtensor4("x"), pt.dvector("v")
BAD_AT_BUILD = [
    (lambda: bn.batch_normalization(X4, V, V, V, V, mode="fast"), ValueError, "mode must be 'low_mem' or 'high_mem'"),
    (lambda: bn.batch_normalization(V, X4, V, V, V), ValueError, "gamma has more axes"),
    (lambda: bn.batch_normalization_train(X4, X4, X4, axes="channel"), ValueError, "axes must be 'per-activation'"),
    (lambda: bn.batch_normalization_train(X4, X4, X4, axes=(0, 4)), ValueError, r"axes \(0, 4\) out of range"),
    (lambda: bn.batch_normalization_train(X4, X4, X4, axes=(0, 0)), ValueError, "distinct"),
    (lambda: bn.batch_normalization_train(X4, X4, X4, axes=0), ValueError, "axes must be"),
    (lambda: bn.batch_normalization_train(X4, X4, X4, running_mean=X4), ValueError, "both be given"),
    (lambda: bn.batch_normalization_train(X4, pt.dmatrix(), X4), ValueError, "gamma must have 4 axes"),
    (
        lambda: bn.batch_normalization_train(X4, V, V, axes="spatial", running_mean=V, running_var=pt.dmatrix()),
        ValueError,
        "running_var must have 4 axes",
    ),
    (lambda: bn.batch_normalization_train(X4, pt.dtensor3(), X4), ValueError, "gamma and beta must have the same rank"),
    (lambda: bn.batch_normalization_train(X4, X4, X4, epsilon=-1.0), ValueError, "epsilon must be >= 0"),
    (lambda: bn.batch_normalization_train(X4, X4, X4, epsilon=V), ValueError, "epsilon must be a scalar"),
    (
        lambda: bn.batch_normalization_train(
            pt.tensor(shape=(2, 3, 4, 4)), pt.tensor(shape=(1, 3, 4, 4)), pt.tensor(shape=(1, 3, 4, 4)), axes="spatial"
        ),
        ValueError,
        "length 1 on the normalised axes",
    ),
    (
        lambda: bn.batch_normalization_train(
            pt.tensor(shape=(2, 3, 4, 4)), pt.tensor(shape=(4,)), pt.tensor(shape=(4,)), axes="spatial"
        ),
        ValueError,
        "gamma has shape .4,., which does not fit inputs",
    ),
    (lambda: bn.batch_normalization_test(X4, V, V, V, pt.dmatrix(), axes="spatial"), ValueError, "var must have"),
    (lambda: bn.batch_normalization_train(pt.dscalar(), V, V), ValueError, "at least 1 axis"),
]


@pytest.mark.parametrize("build, exc, match", BAD_AT_BUILD)
def test_bad_input_raises_at_graph_build_time(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


@pytest.mark.parametrize("mode", MODES)
def test_parameter_shapes_checked_at_run_time(mode):
    x, g, b, g4, b4 = pt.dtensor4("x"), pt.dvector("g"), pt.dvector("b"), pt.dtensor4("g4"), pt.dtensor4("b4")
    out_c = bn.batch_normalization_train(x, g, b, axes="spatial")[0]
    out_f = bn.batch_normalization_train(x, g4, b4, axes="spatial")[0]
    fc = compile_checked([x, g, b], out_c, mode)
    ff = compile_checked([x, g4, b4], out_f, mode)
    xv = np.ones((2, 3, 2, 2))
    fc(xv, np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="gamma does not fit the shape of inputs"):
        fc(xv, np.ones(4), np.ones(3))
    with pytest.raises(ValueError, match="gamma must have length 1 on the normalised axes"):
        ff(xv, np.ones((1, 3, 2, 1)), np.ones((1, 3, 1, 1)))
