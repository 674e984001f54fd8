"""Activations, softmax family and losses (``pytensor_nnet.nnet``): legacy golden fixtures
(outputs and gradients) in Numba and the Python linker, gradients, stability, dtypes, the
row-wise softmax trap, and bad input."""

import json
import os
import re
import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad

import pytensor_nnet
from pytensor_nnet import nnet
from tests.backends import PY_MODE, backend_params

GOLDEN = os.path.join(os.path.dirname(__file__), "data", "nnet_golden.npz")
MODES = backend_params("NUMBA", "PY")


def cotangent(shape):
    """Same deterministic output gradient as tests/data/make_nnet_fixtures.py."""
    n = int(np.prod(shape))
    return (np.cos(np.arange(n) * 1.7) + np.arange(n) * 1e-3).reshape(shape)


def golden():
    data = np.load(GOLDEN)
    return data, json.loads(str(data["meta"]))


def compile_checked(inputs, outputs, mode, **kwargs):
    """``pytensor.function`` that fails on any ``UserWarning`` (e.g. a Numba object-mode fallback)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        return pytensor.function(inputs, outputs, mode=mode, **kwargs)


def check_golden_cases(cases, build, mode, rtol=1e-9, atol=1e-12):
    """Compare ``build(case, meta, variables) -> {output name: expression}`` with the legacy
    outputs and gradients of every case in ``cases``, all in one compiled function (one Numba
    compilation). Inputs have no static shapes, so the run-time checks are in the graph."""
    data, meta = golden()
    inputs, values, outputs, expected = [], [], [], []
    for case in cases:
        m = meta[case]
        variables = {}
        for name in m["inputs"]:
            value = data[f"{case}/in/{name}"]
            label = re.sub(r"\W+", "_", f"{case}_{name}")
            variables[name] = pt.tensor(label, dtype=str(value.dtype), shape=(None,) * value.ndim)
            inputs.append(variables[name])
            values.append(value)
        got = build(case, m, variables)
        assert set(got) == set(m["outputs"]), case
        for name in m["outputs"]:
            outputs.append(got[name])
            expected.append((case, name, data[f"{case}/out/{name}"]))
        for name in m["grads"]:
            cost = (got[name] * cotangent(data[f"{case}/out/{name}"].shape)).sum()
            grads = pytensor.grad(cost, [variables[n] for n in m["wrt"]], disconnected_inputs="ignore")
            for n, g in zip(m["wrt"], grads):
                outputs.append(g)
                expected.append((case, f"d {name} / d {n}", data[f"{case}/grad/{name}/{n}"]))
    f = compile_checked(inputs, outputs, mode, on_unused_input="ignore")
    results = f(*values)
    for (case, name, want), got in zip(expected, results):
        assert np.shape(got) == want.shape, f"{case}: {name}"
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"{case}: {name}")
    return len(expected)


# ----------------------------------------------------------------------------- golden fixtures
def _pair(names, outs):
    return dict(zip(names, outs))


NNET_BUILDERS = {
    "activations": lambda m, v: {
        "sigmoid": nnet.sigmoid(v["x"]),
        "softplus": nnet.softplus(v["x"]),
        "hard_sigmoid": nnet.hard_sigmoid(v["x"]),
        "softsign": nnet.softsign(v["x"]),
        "relu": nnet.relu(v["x"]),
        "relu_alpha": nnet.relu(v["x"], 0.1),
        "elu": nnet.elu(v["x"]),
        "elu_alpha": nnet.elu(v["x"], 0.5),
        "selu": nnet.selu(v["x"]),
    },
    "ultra_fast_sigmoid": lambda m, v: {"y": nnet.ultra_fast_sigmoid(v["x"])},
    "relu_tensor_alpha": lambda m, v: {"y": nnet.relu(v["x"], v["alpha"])},
    **{
        f"softmax_{nd}d": lambda m, v: {
            "softmax": nnet.softmax(v["c"]),
            "logsoftmax": nnet.logsoftmax(v["c"]),
            "softmax_legacy": nnet.softmax_legacy(v["c"]),
        }
        for nd in (1, 2, 3)
    },
    "softmax_with_bias": lambda m, v: {"y": nnet.softmax_with_bias(v["x"], v["b"])},
    "softmax_grad_legacy": lambda m, v: {"y": nnet.softmax_grad_legacy(v["dy"], v["sm"])},
    "xent_softmax_1hot": lambda m, v: _pair(["nll", "sm"], nnet.crossentropy_softmax_1hot(v["x"], v["y_idx"])),
    "xent_softmax_1hot_with_bias": lambda m, v: _pair(
        ["nll", "sm"], nnet.crossentropy_softmax_1hot_with_bias(v["x"], v["b"], v["y_idx"])
    ),
    "xent_softmax_argmax_1hot_with_bias": lambda m, v: _pair(
        ["nll", "sm", "argmax"], nnet.crossentropy_softmax_argmax_1hot_with_bias(v["x"], v["b"], v["y_idx"])
    ),
    "xent_softmax_max_and_argmax_1hot": lambda m, v: _pair(
        ["nll", "sm", "max", "argmax"], nnet.crossentropy_softmax_max_and_argmax_1hot(v["x"], v["y_idx"])
    ),
    "xent_softmax_max_and_argmax_1hot_with_bias": lambda m, v: _pair(
        ["nll", "sm", "max", "argmax"],
        nnet.crossentropy_softmax_max_and_argmax_1hot_with_bias(v["x"], v["b"], v["y_idx"]),
    ),
    "xent_softmax_1hot_with_bias_dx": lambda m, v: {
        "dx": nnet.crossentropy_softmax_1hot_with_bias_dx(v["dy"], v["sm"], v["y_idx"])
    },
    "xent_categorical_1hot": lambda m, v: {
        "y": nnet.crossentropy_categorical_1hot(v["coding_dist"], v["true_one_of_n"])
    },
    "xent_categorical_1hot_grad": lambda m, v: {
        "y": nnet.crossentropy_categorical_1hot_grad(v["g_y"], v["coding_dist"], v["true_one_of_n"])
    },
    **{
        case: lambda m, v: {"y": nnet.categorical_crossentropy(v["coding_dist"], v["true_dist"])}
        for case in ("cce_int", "cce_onehot", "cce_soft", "cce_vector")
    },
    "cce_of_softmax_int": lambda m, v: {"y": nnet.categorical_crossentropy(nnet.softmax(v["x"]), v["true_dist"])},
    **{
        case: lambda m, v: {"y": nnet.binary_crossentropy(v["output"], v["target"])}
        for case in ("binary_crossentropy", "binary_crossentropy_soft", "binary_crossentropy_broadcast")
    },
    "sigmoid_binary_crossentropy": lambda m, v: {"y": nnet.sigmoid_binary_crossentropy(v["output"], v["target"])},
    "h_softmax_full": lambda m, v: {
        "y": nnet.h_softmax(
            v["x"],
            m["batch_size"],
            m["n_outputs"],
            m["n_classes"],
            m["n_outputs_per_class"],
            v["W1"],
            v["b1"],
            v["W2"],
            v["b2"],
        )
    },
    "h_softmax_target": lambda m, v: {
        "y": nnet.h_softmax(
            v["x"],
            v["x"].shape[0],
            m["n_outputs"],
            m["n_classes"],
            m["n_outputs_per_class"],
            v["W1"],
            v["b1"],
            v["W2"],
            v["b2"],
            v["target"],
        )
    },
    **{
        case: lambda m, v: _pair(["conf_mat", "order"], nnet.confusion_matrix(v["actual"], v["pred"]))
        for case in ("confusion_matrix", "confusion_matrix_float")
    },
    "prepend_0": lambda m, v: {"y": nnet.prepend_0_to_each_row(v["mat"])},
    "prepend_1": lambda m, v: {"y": nnet.prepend_1_to_each_row(v["mat"])},
    "prepend_scalar": lambda m, v: {"y": nnet.prepend_scalar_to_each_row(v["val"], v["mat"])},
}


#: One case per function family for Numba (every distinct node is a separate compilation).
NUMBA_CASES = [
    "activations",
    "ultra_fast_sigmoid",
    "softmax_3d",
    "softmax_with_bias",
    "softmax_grad_legacy",
    "xent_softmax_max_and_argmax_1hot_with_bias",
    "xent_softmax_1hot_with_bias_dx",
    "xent_categorical_1hot_grad",
    "cce_int",
    "cce_soft",
    "cce_of_softmax_int",
    "binary_crossentropy_broadcast",
    "sigmoid_binary_crossentropy",
    "h_softmax_full",
    "h_softmax_target",
    "confusion_matrix_float",
    "prepend_scalar",
]


@pytest.mark.parametrize("mode", MODES)
def test_golden_fixtures_from_legacy_reference(mode):
    """Every nnet function against the legacy outputs and gradients, in one compiled function."""
    cases = NUMBA_CASES if mode == "NUMBA" else list(NNET_BUILDERS)
    n = check_golden_cases(cases, lambda case, m, v: NNET_BUILDERS[case](m, v), mode)
    assert n >= (60 if mode == "NUMBA" else 120)


def test_golden_file_covers_every_case():
    _, meta = golden()
    nnet_cases = {c for c in meta if not c.startswith(("bn", "images2neibs", "neibs2images"))}
    assert nnet_cases == set(NNET_BUILDERS)


# ----------------------------------------------------------------------------- semantics
def test_softmax_is_row_wise_not_whole_minibatch():
    """The LeNet trap: with zero weights the step-0 cost is log(n_classes), not log(batch * n_classes)."""
    z, y = pt.matrix("z"), pt.lvector("y")
    zv, yv = np.zeros((500, 10), dtype=z.dtype), np.arange(500) % 10
    ours = pt.mean(nnet.categorical_crossentropy(nnet.softmax(z), y))
    whole = pt.mean(nnet.categorical_crossentropy(pt.special.softmax(z), y))  # axis=None
    ours_v, whole_v = pytensor.function([z, y], [ours, whole], mode=PY_MODE)(zv, yv)
    np.testing.assert_allclose(ours_v, np.log(10), rtol=1e-6)
    np.testing.assert_allclose(whole_v, np.log(5000), rtol=1e-6)
    assert pytensor_nnet.softmax is nnet.softmax
    graph = pytensor.function([z], nnet.softmax_graph(z), mode=PY_MODE)(np.eye(3, dtype=z.dtype) * 3)
    np.testing.assert_allclose(graph, np.exp(np.eye(3) * 3) / np.exp(np.eye(3) * 3).sum(1, keepdims=True), rtol=1e-6)
    assert nnet.softmax(pt.tensor3()).owner.op.axis in ((2,), -1)  # last axis (PyTensor 3 / 2.38)
    assert nnet.softmax(pt.matrix(), axis=None).owner.op.axis in (None, (0, 1))  # all axes


def test_losses_of_a_softmax_are_stable_for_huge_logits():
    """log(softmax) is taken as log_softmax: finite costs and gradients where softmax underflows."""
    x, y = pt.dmatrix("x"), pt.lvector("y")
    xv = np.array([[0.0, 1000.0, -1000.0], [2000.0, 0.0, 0.0]])
    yv = np.array([2, 1])
    want = np.array([2000.0, 2000.0])
    costs = [
        nnet.categorical_crossentropy(nnet.softmax(x), y),
        nnet.categorical_crossentropy(nnet.softmax(x), pt.eq(pt.arange(3)[None, :], y[:, None])),
        nnet.crossentropy_categorical_1hot(nnet.softmax(x), y),
        nnet.crossentropy_softmax_1hot(x, y)[0],
    ]
    grads = [pytensor.grad(c.sum(), x) for c in costs]
    f = compile_checked([x, y], costs + grads, "NUMBA")
    res = f(xv, yv)
    for c in res[:4]:
        np.testing.assert_allclose(c, want)
    sm = np.exp(xv - xv.max(1, keepdims=True))
    sm /= sm.sum(1, keepdims=True)
    for g in res[4:]:
        np.testing.assert_allclose(g, sm - np.eye(3)[yv], atol=1e-12)


def test_sigmoid_binary_crossentropy_is_stable():
    x, t = pt.dvector("x"), pt.dvector("t")
    y = nnet.sigmoid_binary_crossentropy(x, t)
    f = pytensor.function([x, t], [y, pytensor.grad(y.sum(), x)], mode=PY_MODE)
    yv, gv = f(np.array([-800.0, 800.0, 0.0]), np.array([1.0, 0.0, 0.5]))
    np.testing.assert_allclose(yv, [800.0, 800.0, np.log(2)])
    np.testing.assert_allclose(gv, [-1.0, 1.0, 0.0])


def test_ultra_fast_sigmoid_gradient_is_the_derivative_of_the_approximation():
    """Legacy: no gradient. Ours: the exact derivative of the piecewise approximation."""
    x = pt.dvector("x")
    y = nnet.ultra_fast_sigmoid(x)
    xv = np.array([-9.0, -5.0, -1.0, 0.0, 0.3, 2.0, 4.5, 7.0])
    g = pytensor.function([x], pytensor.grad(y.sum(), x), mode=PY_MODE)(xv)
    h = np.abs(xv) / 2
    want = np.where(h < 1.7, 0.5 * 1.5 / (1 + h) ** 2 * 0.5, np.where(h < 3, 0.5 * 0.0458812946797165 * 0.5, 0.0))
    np.testing.assert_allclose(g, want)
    np.testing.assert_allclose(pytensor.function([x], y, mode=PY_MODE)(xv), 1 / (1 + np.exp(-xv)), atol=0.025)


def test_relu_gradient_at_zero_is_the_legacy_one():
    x = pt.dvector("x")
    gs = [pytensor.grad(nnet.relu(x, a).sum(), x) for a in (0, 0.2)]
    g0, g1 = pytensor.function([x], gs, mode=PY_MODE)(np.zeros(2))
    np.testing.assert_allclose(g0, 0.5)
    np.testing.assert_allclose(g1, 0.6)


def test_float32_stays_float32():
    x, b, y = pt.fmatrix("x"), pt.fvector("b"), pt.ivector("y")
    exprs = [
        nnet.sigmoid(x),
        nnet.softplus(x),
        nnet.ultra_fast_sigmoid(x),
        nnet.hard_sigmoid(x),
        nnet.softsign(x),
        nnet.relu(x),
        nnet.relu(x, 0.1),
        nnet.elu(x),
        nnet.elu(x, 0.3),
        nnet.selu(x),
        nnet.softmax(x),
        nnet.logsoftmax(x),
        nnet.softmax_with_bias(x, b),
        *nnet.crossentropy_softmax_1hot_with_bias(x, b, y),
        nnet.categorical_crossentropy(nnet.softmax(x), y),
        nnet.binary_crossentropy(nnet.sigmoid(x), x),
        nnet.sigmoid_binary_crossentropy(x, x),
        nnet.prepend_scalar_to_each_row(pt.dscalar(), x),
    ]
    assert all(e.dtype == "float32" for e in exprs), [e.dtype for e in exprs]


def test_categorical_crossentropy_class_indices_of_any_rank():
    """Extension: (..., n_classes) predictions with (...) integer targets."""
    c, t = pt.dtensor3("c"), pt.lmatrix("t")
    rng = np.random.default_rng(0)
    cv = rng.uniform(0.1, 1, size=(2, 3, 4))
    tv = rng.integers(0, 4, size=(2, 3))
    y = nnet.categorical_crossentropy(c, t)
    ys = nnet.categorical_crossentropy(nnet.softmax(c), t)
    yv, ysv = pytensor.function([c, t], [y, ys], mode=PY_MODE)(cv, tv)
    np.testing.assert_allclose(yv, -np.log(np.take_along_axis(cv, tv[..., None], -1)[..., 0]))
    sm = np.exp(cv) / np.exp(cv).sum(-1, keepdims=True)
    np.testing.assert_allclose(ysv, -np.log(np.take_along_axis(sm, tv[..., None], -1)[..., 0]))
    v = nnet.categorical_crossentropy(pt.dvector(), pt.lscalar())
    assert v.ndim == 0


def test_top_level_exports():
    names = [
        "softmax",
        "logsoftmax",
        "softmax_with_bias",
        "softmax_legacy",
        "softmax_grad_legacy",
        "sigmoid",
        "ultra_fast_sigmoid",
        "hard_sigmoid",
        "softplus",
        "softsign",
        "relu",
        "elu",
        "selu",
        "categorical_crossentropy",
        "binary_crossentropy",
        "sigmoid_binary_crossentropy",
        "crossentropy_softmax_1hot",
        "crossentropy_softmax_1hot_with_bias",
        "crossentropy_softmax_argmax_1hot_with_bias",
        "crossentropy_softmax_max_and_argmax_1hot",
        "crossentropy_softmax_max_and_argmax_1hot_with_bias",
        "crossentropy_categorical_1hot",
        "crossentropy_categorical_1hot_grad",
        "crossentropy_softmax_1hot_with_bias_dx",
        "h_softmax",
        "confusion_matrix",
        "prepend_0_to_each_row",
        "prepend_1_to_each_row",
        "prepend_scalar_to_each_row",
        "batch_normalization",
        "images2neibs",
        "neibs2images",
    ]
    for name in names:
        assert callable(getattr(pytensor_nnet, name)), name
        assert name in pytensor_nnet.__all__, name
    assert pytensor_nnet.bn.batch_normalization_train is pytensor_nnet.batchnorm.batch_normalization_train
    assert pytensor_nnet.sigm.ultra_fast_sigmoid is pytensor_nnet.basic.ultra_fast_sigmoid


# ----------------------------------------------------------------------------- gradients
def _rand(rng, *shape):
    return rng.standard_normal(shape)


def test_verify_grad_activations_and_softmax():
    rng = np.random.default_rng(1)
    x = rng.uniform(0.2, 2.5, size=(3, 4)) * rng.choice([-1, 1], size=(3, 4))  # away from 0
    for fn in [
        nnet.ultra_fast_sigmoid,
        nnet.hard_sigmoid,
        nnet.softsign,
        nnet.relu,
        lambda v: nnet.relu(v, 0.3),
        nnet.elu,
        nnet.selu,
        nnet.softmax,
        nnet.logsoftmax,
        nnet.softmax_legacy,
        lambda v: nnet.softmax(v, axis=0),
    ]:
        verify_grad(fn, [x], rng=rng, mode=PY_MODE)
    verify_grad(lambda v, a: nnet.relu(v, a), [x, rng.uniform(0, 0.5, size=4)], rng=rng, mode=PY_MODE)
    verify_grad(lambda v, a: nnet.elu(v, a), [x, np.array(0.7)], rng=rng, mode=PY_MODE)
    verify_grad(nnet.softmax_with_bias, [x, _rand(rng, 4)], rng=rng, mode=PY_MODE)
    verify_grad(nnet.softmax_grad_legacy, [x, nnet.softmax(x).eval()], rng=rng, mode=PY_MODE)


def test_verify_grad_losses():
    rng = np.random.default_rng(2)
    x, b, y = _rand(rng, 4, 5), _rand(rng, 5), np.array([0, 4, 2, 2])
    p = rng.uniform(0.1, 0.9, size=(4, 5))
    t = rng.uniform(size=(4, 5))
    yc = pt.constant(y)
    for k in range(2):
        verify_grad(lambda v, w: nnet.crossentropy_softmax_1hot_with_bias(v, w, yc)[k], [x, b], rng=rng, mode=PY_MODE)
    verify_grad(lambda v: nnet.crossentropy_softmax_1hot(v, yc)[0], [x], rng=rng, mode=PY_MODE)
    verify_grad(
        lambda v, w: nnet.crossentropy_softmax_max_and_argmax_1hot_with_bias(v, w, yc)[2], [x, b], rng=rng, mode=PY_MODE
    )
    verify_grad(lambda v: nnet.crossentropy_categorical_1hot(v, yc), [p], rng=rng, mode=PY_MODE)
    verify_grad(lambda v: nnet.categorical_crossentropy(v, yc), [p], rng=rng, mode=PY_MODE)
    verify_grad(lambda v: nnet.categorical_crossentropy(nnet.softmax(v), yc), [x], rng=rng, mode=PY_MODE)
    verify_grad(lambda v, w: nnet.categorical_crossentropy(v, w), [p, t], rng=rng, mode=PY_MODE)
    verify_grad(lambda v, w: nnet.binary_crossentropy(v, w), [p, t], rng=rng, mode=PY_MODE)
    verify_grad(lambda v, w: nnet.sigmoid_binary_crossentropy(v, w), [x, t], rng=rng, mode=PY_MODE)
    verify_grad(
        lambda g, v: nnet.crossentropy_softmax_1hot_with_bias_dx(g, v, yc), [_rand(rng, 4), p], rng=rng, mode=PY_MODE
    )
    verify_grad(
        lambda g, v: nnet.crossentropy_categorical_1hot_grad(g, v, yc), [_rand(rng, 4), p], rng=rng, mode=PY_MODE
    )
    verify_grad(lambda s, m: nnet.prepend_scalar_to_each_row(s, m), [np.array(1.5), p], rng=rng, mode=PY_MODE)
    verify_grad(nnet.prepend_1_to_each_row, [p], rng=rng, mode=PY_MODE)


def test_verify_grad_h_softmax():
    rng = np.random.default_rng(3)
    args = [_rand(rng, 4, 3), _rand(rng, 3, 2), _rand(rng, 2), _rand(rng, 2, 3, 3), _rand(rng, 2, 3)]
    target = pt.constant(np.array([0, 4, 2, 1]))
    verify_grad(lambda *a: nnet.h_softmax(a[0], 4, 5, 2, 3, *a[1:]), args, rng=rng, mode=PY_MODE)
    verify_grad(lambda *a: nnet.h_softmax(a[0], 4, 5, 2, 3, *a[1:], target=target), args, rng=rng, mode=PY_MODE)


def test_h_softmax_target_matches_the_full_distribution():
    rng = np.random.default_rng(4)
    x, W1, b1, W2, b2 = pt.dmatrix(), pt.dmatrix(), pt.dvector(), pt.dtensor3(), pt.dmatrix()
    t = pt.lmatrix()
    full = nnet.h_softmax(x, x.shape[0], 7, 3, 3, W1, b1, W2, b2)
    pick = nnet.h_softmax(x, x.shape[0], 7, 3, 3, W1, b1, W2, b2, target=t)
    vals = [_rand(rng, 5, 2), _rand(rng, 2, 3), _rand(rng, 3), _rand(rng, 3, 2, 3), _rand(rng, 3, 3)]
    tv = np.array([[0], [6], [3], [5], [1]])
    fv, pv = pytensor.function([x, W1, b1, W2, b2, t], [full, pick], mode=PY_MODE)(*vals, tv)
    assert fv.shape == (5, 7)
    np.testing.assert_allclose(pv, fv[np.arange(5), tv[:, 0]])


# ----------------------------------------------------------------------------- bad input
M, V, IV = pt.dmatrix("m"), pt.dvector("v"), pt.lvector("iv")
BAD_AT_BUILD = [
    (lambda: nnet.softmax(pt.dscalar()), ValueError, "c must have at least 1 axis"),
    (lambda: nnet.softmax_with_bias(V, V), ValueError, "x must be a matrix"),
    (lambda: nnet.softmax_with_bias(M, M), ValueError, "b must be a vector"),
    (
        lambda: nnet.softmax_with_bias(pt.tensor(shape=(2, 3)), pt.tensor(shape=(4,))),
        ValueError,
        "x has 3 columns but b",
    ),
    (lambda: nnet.crossentropy_softmax_1hot(M, V), TypeError, "y_idx must have an integer dtype"),
    (lambda: nnet.crossentropy_softmax_1hot(M, pt.lmatrix()), ValueError, "y_idx must be a vector"),
    (lambda: nnet.crossentropy_softmax_1hot(V, IV), ValueError, "x must be a matrix"),
    (lambda: nnet.crossentropy_softmax_1hot(M, IV, foo=1), TypeError, "unexpected keyword arguments"),
    (
        lambda: nnet.crossentropy_softmax_1hot(pt.tensor(shape=(3, 4)), pt.tensor(dtype="int64", shape=(2,))),
        ValueError,
        "y_idx has 2 entries but x has 3 rows",
    ),
    (lambda: nnet.categorical_crossentropy(M, V), TypeError, "true_dist .* integer dtype"),
    (lambda: nnet.categorical_crossentropy(M, pt.dtensor3()), ValueError, "true_dist must have the shape"),
    (lambda: nnet.categorical_crossentropy(pt.dscalar(), IV), ValueError, "coding_dist must have a class axis"),
    (lambda: nnet.categorical_crossentropy(pt.lmatrix(), IV), TypeError, "coding_dist must have a float dtype"),
    (
        lambda: nnet.categorical_crossentropy(pt.tensor(shape=(3, 4)), pt.tensor(shape=(3, 5))),
        ValueError,
        "true_dist has shape",
    ),
    (lambda: nnet.crossentropy_categorical_1hot(V, IV), ValueError, "coding_dist must be a matrix"),
    (lambda: nnet.crossentropy_categorical_1hot(M, V), TypeError, "true_one_of_n must have an integer dtype"),
    (lambda: nnet.binary_crossentropy(V, M), ValueError, "target has more axes"),
    (lambda: nnet.binary_crossentropy(pt.tensor(shape=(3,)), pt.tensor(shape=(4,))), ValueError, "target has shape"),
    (
        lambda: nnet.sigmoid_binary_crossentropy(pt.tensor(shape=(3, 2)), pt.tensor(shape=(3,))),
        ValueError,
        "target has shape",
    ),
    (lambda: nnet.h_softmax(M, 3, 13, 3, 4, M, V, pt.dtensor3(), M), ValueError, "n_outputs .13. must be at most"),
    (lambda: nnet.h_softmax(M, 3, 10, 3, 4, V, V, pt.dtensor3(), M), ValueError, "W1 must be 2-d"),
    (
        lambda: nnet.h_softmax(M, 3, 10, 3, 4, M, V, pt.dtensor3(), M, target=V),
        TypeError,
        "target must have an integer",
    ),
    (lambda: nnet.h_softmax(M, 3, 0, 3, 4, M, V, pt.dtensor3(), M), ValueError, "n_outputs must be a positive int"),
    (lambda: nnet.confusion_matrix(pt.lmatrix(), IV), ValueError, "actual must be a vector"),
    (lambda: nnet.prepend_0_to_each_row(V), ValueError, "mat must be a matrix"),
    (lambda: nnet.prepend_scalar_to_each_row(V, M), ValueError, "val must be a scalar"),
    (lambda: nnet.softmax_grad_legacy(M, V), ValueError, "same rank"),
    (lambda: nnet.crossentropy_softmax_1hot_with_bias_dx(M, M, IV), ValueError, "dy must be a vector"),
    (lambda: nnet.relu("a"), TypeError, "relu: x must be a tensor"),
]


@pytest.mark.parametrize("build, exc, match", BAD_AT_BUILD)
def test_bad_input_raises_at_graph_build_time(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


@pytest.mark.parametrize("mode", MODES)
def test_bad_values_raise_at_run_time(mode):
    """Dynamic shapes and label values are checked when the function runs (ValueError)."""
    x, b, y = pt.dmatrix("x"), pt.dvector("b"), pt.lvector("y")
    p, t = pt.dmatrix("p"), pt.dmatrix("t")
    a, q = pt.lvector("a"), pt.lvector("q")
    cases = {
        "xent": (nnet.crossentropy_softmax_1hot_with_bias(x, b, y)[0], [x, b, y]),
        "cce": (nnet.categorical_crossentropy(p, y), [p, y]),
        "cce_dist": (nnet.categorical_crossentropy(p, t), [p, t]),
        "bce": (nnet.binary_crossentropy(p, t), [p, t]),
        "cm": (nnet.confusion_matrix(a, q)[0], [a, q]),
    }
    w2 = pt.dtensor3("w2")
    cases["hsm"] = (nnet.h_softmax(x, x.shape[0], 5, 2, 3, p, b, w2, t, target=y), [x, p, b, w2, t, y])
    fs = {k: compile_checked(ins, out, mode) for k, (out, ins) in cases.items()}
    ok = np.ones((2, 3))
    fs["xent"](ok, np.ones(3), np.array([0, 2]))
    bad = [
        ("xent", (ok, np.ones(3), np.array([0, 3])), "y_idx values must be class indices"),
        ("xent", (ok, np.ones(3), np.array([0, -1])), "y_idx values must be class indices"),
        ("xent", (ok, np.ones(3), np.array([0])), "y_idx must have one entry per row of x"),
        ("xent", (ok, np.ones(4), np.array([0, 1])), "length of b must be the number of columns of x"),
        ("cce", (ok, np.array([0, 5])), "true_one_of_n values must be class indices"),
        ("cce_dist", (ok, np.ones((2, 4))), "true_dist and coding_dist have different lengths"),
        ("bce", (ok, np.ones((3, 3))), "target and output have different lengths"),
        ("cm", (np.array([1, 2]), np.array([1])), "pred and actual have different lengths"),
        (
            "hsm",
            (ok, np.ones((3, 2)), np.ones(2), np.ones((2, 3, 3)), np.ones((2, 3)), np.array([0, 5])),
            "target values must be class indices",
        ),
    ]
    for key, args, match in bad:
        with pytest.raises(ValueError, match=match):
            fs[key](*args)
