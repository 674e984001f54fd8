"""images2neibs / neibs2images (``pytensor_nnet.neighbours``): legacy golden fixtures in Numba
and the Python linker, a loop reference for every mode, gradients for every mode (the legacy
code had them only for non-overlapping valid/ignore_borders), and bad input."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad

from pytensor_nnet.neighbours import images2neibs, neibs2images
from tests.backends import PY_MODE
from tests.reference.neighbours import neibs_reference
from tests.test_nnet import MODES, check_golden_cases, compile_checked, golden


def _build(case, m, v):
    if case.startswith("images2neibs"):
        return {"y": images2neibs(v["ten4"], m["neib_shape"], m["neib_step"], mode=m["mode"])}
    return {"y": neibs2images(v["neibs"], m["neib_shape"], m["original_shape"], mode=m["mode"])}


NUMBA_CASES = ["images2neibs_3", "images2neibs_7", "images2neibs_10", "images2neibs_15", "neibs2images_2"]


@pytest.mark.parametrize("mode", MODES)
def test_golden_fixtures_from_legacy_reference(mode):
    """Every mode against the legacy outputs, and the legacy gradients where it had them (the
    Numba run checks one case per mode: each case is a separate compilation)."""
    _, meta = golden()
    cases = sorted(c for c in meta if c.startswith(("images2neibs", "neibs2images")))
    assert len(cases) == 22
    if mode == "NUMBA":
        cases = NUMBA_CASES
    n = check_golden_cases(cases, _build, mode)
    assert n >= len(cases)


REF_CASES = [
    ("valid", (2, 3), (1, 3)),
    ("ignore_borders", (4, 2), (3, 3)),
    ("half", (3, 2), (2, 1)),
    ("full", (2, 4), (1, 1)),
    ("wrap_centered", (3, 5), (2, 4)),
    ("wrap_centered", (7, 1), (3, 1)),
]


def test_against_loop_reference_and_numba_without_fallback():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 7, 9)).astype("float32")
    t = pt.tensor4("x", dtype="float32")
    outs = [images2neibs(t, s, st, mode=m) for m, s, st in REF_CASES]
    results = compile_checked([t], outs, "NUMBA")(x)
    assert all(got.dtype == np.float32 for got in results)
    _assert_match_the_loop_reference(x, results)


def _assert_match_the_loop_reference(x, results):
    """``results`` are ``images2neibs(x, ...)`` for each of ``REF_CASES``, in order."""
    for got, (m, s, st) in zip(results, REF_CASES, strict=True):
        np.testing.assert_array_equal(got, neibs_reference(x, s, st, m), err_msg=f"{m} {s} {st}")


def test_static_shapes_give_the_same_windows():
    """With static input shapes (the slice bounds fold to constants): the same windows."""
    x = np.random.default_rng(4).standard_normal((2, 2, 7, 9))
    t = pt.tensor("x", shape=x.shape)
    outs = [images2neibs(t, s, st, mode=m) for m, s, st in REF_CASES]
    _assert_match_the_loop_reference(x, pytensor.function([t], outs, mode=PY_MODE)(x))


@pytest.mark.parametrize("mode, shape, step", REF_CASES + [("valid", (2, 2), None), ("wrap_centered", (1, 1), (2, 2))])
def test_verify_grad_every_mode(mode, shape, step):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 7, 9))
    if mode == "valid" and step is None:
        x = x[:, :, :6, :8]
    verify_grad(lambda v: images2neibs(v, shape, step, mode=mode), [x], rng=rng, mode=PY_MODE)


def test_neibs2images_inverts_images2neibs_and_its_gradient():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 7, 8))
    t = pt.dtensor4("x")
    neibs = images2neibs(t, (2, 3), mode="ignore_borders")
    back = neibs2images(neibs, (2, 3), t.shape, mode="ignore_borders")
    ok = images2neibs(t[:, :, :6, :6], (2, 3))
    back_ok = neibs2images(ok, (2, 3), (2, 3, 6, 6))
    b, bo = compile_checked([t], [back, back_ok], "NUMBA")(x)
    want = np.zeros_like(x)
    want[:, :, :6, :6] = x[:, :, :6, :6]
    np.testing.assert_array_equal(b, want)
    np.testing.assert_array_equal(bo, x[:, :, :6, :6])
    nb = rng.standard_normal((2 * 3 * 3 * 2, 6))
    verify_grad(lambda v: neibs2images(v, (2, 3), (2, 3, 7, 8), mode="ignore_borders"), [nb], rng=rng, mode=PY_MODE)


def test_second_derivative():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 1, 5, 5))

    def grad_of_cube(v):
        return pytensor.grad((images2neibs(v, (3, 3), (1, 1), mode="wrap_centered") ** 3).sum(), v)

    verify_grad(grad_of_cube, [x], rng=rng, mode=PY_MODE)


def test_integer_images_and_constant_tensor_geometry():
    t = pt.ltensor4("x")
    y = images2neibs(t, pt.constant(np.array([2, 2])), pt.as_tensor([1, 2]), mode="valid")
    x = np.arange(2 * 5 * 6).reshape(1, 2, 5, 6)
    got = pytensor.function([t], y, mode=PY_MODE)(x)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, neibs_reference(x, (2, 2), (1, 2), "valid"))


X4 = pt.dtensor4("x")
STATIC = pt.tensor("s", shape=(1, 2, 5, 6))
BAD_AT_BUILD = [
    (lambda: images2neibs(pt.dtensor3(), (2, 2)), ValueError, "ten4 must be 4-d"),
    (lambda: images2neibs(X4, (2, 2), mode="same"), ValueError, "mode must be one of"),
    (lambda: images2neibs(X4, (2, 2, 2)), ValueError, "neib_shape must have 2 entries"),
    (lambda: images2neibs(X4, (0, 2)), ValueError, "neib_shape entries must be >= 1"),
    (lambda: images2neibs(X4, (2, 2), (1, 0)), ValueError, "neib_step entries must be >= 1"),
    (lambda: images2neibs(X4, (2.5, 2)), ValueError, "neib_shape entries must be ints"),
    (lambda: images2neibs(X4, pt.lvector("ns")), TypeError, "neib_shape must be known when the graph is built"),
    (lambda: images2neibs(X4, (2, 2), mode="wrap_centered"), ValueError, "odd neib_shape"),
    (lambda: images2neibs(STATIC, (2, 2)), ValueError, "must tile the input exactly"),
    (lambda: images2neibs(STATIC, (3, 3), (2, 2), mode="half"), ValueError, "must tile the input exactly"),
    (lambda: images2neibs(STATIC, (7, 1), mode="ignore_borders"), ValueError, "neib_shape rows .7. larger than"),
    (lambda: images2neibs(STATIC, (7, 1), mode="wrap_centered"), ValueError, "neib_shape rows .7. larger than"),
    (lambda: neibs2images(pt.dmatrix(), (2, 2), (1, 1, 4, 4), mode="half"), ValueError, "mode must be one of"),
    (lambda: neibs2images(X4, (2, 2), (1, 1, 4, 4)), ValueError, "neibs must be a matrix"),
    (lambda: neibs2images(pt.dmatrix(), (2, 2), (1, 4, 4)), ValueError, "original_shape must be 4 ints"),
    (lambda: neibs2images(pt.dmatrix(), (2, 2), (1, 1, 5, 4)), ValueError, "must be multiples of neib_shape"),
    (lambda: neibs2images(pt.tensor(shape=(None, 3)), (2, 2), (1, 1, 4, 4)), ValueError, "neibs has 3 columns"),
]


@pytest.mark.parametrize("build, exc, match", BAD_AT_BUILD)
def test_bad_input_raises_at_graph_build_time(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


@pytest.mark.parametrize("mode", MODES)
def test_bad_shapes_raise_at_run_time(mode):
    n = pt.dmatrix("n")
    f = compile_checked([X4], [images2neibs(X4, (2, 2)), images2neibs(X4, (5, 1), mode="wrap_centered")], mode)
    g = compile_checked([n], neibs2images(n, (2, 2), (1, 1, 4, 4)), mode)
    f(np.ones((1, 1, 6, 4)))
    with pytest.raises(ValueError, match="do not fit ten4's rows in mode 'valid'"):
        f(np.ones((1, 1, 5, 4)))
    with pytest.raises(ValueError, match="do not fit ten4's rows in mode 'wrap_centered'"):
        f(np.ones((1, 1, 4, 4)))
    g(np.ones((4, 4)))
    with pytest.raises(ValueError, match="neibs must have shape"):
        g(np.ones((3, 4)))
