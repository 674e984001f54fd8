"""pool_2d / pool_3d and the pooling Ops: legacy golden fixtures (legacy tie rule), loop
references, gradients of first and second order, every backend, shapes and bad input. The tie
rule of max pooling's gradient on tied inputs is tested in test_pool_ties.py."""

import json
import os
import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytensor.gradient import verify_grad

from pytensor_nnet.compat import pushforward
from pytensor_nnet.im2col import max_pool_forward_im2col
from pytensor_nnet.kernels import pool as kp
from pytensor_nnet.pool import (
    AveragePoolGrad,
    DownsampleFactorMaxGradGrad,
    MaxPoolGrad,
    Pool,
    max_pool_2d_same_size,
    pool_2d,
    pool_3d,
)
from tests.backends import EVERY_BACKEND, PY_MODE, backend_params
from tests.reference.pool import max_pool_grad_grad_ref, pool_grad_ref, pool_ref

MODES = ["max", "sum", "average_inc_pad", "average_exc_pad"]
GOLDEN = os.path.join(os.path.dirname(__file__), "data", "pool_golden.npz")


def _golden():
    data = np.load(GOLDEN)
    return data, json.loads(str(data["meta"]))


def _cotangent(shape):
    """Same deterministic gradient as tests/data/make_pool_fixtures.py."""
    n = int(np.prod(shape))
    return (np.cos(np.arange(n) * 1.7) + np.arange(n) * 1e-3).reshape(shape)


def _opt(t):
    return None if t is None else tuple(t)


# ----------------------------------------------------------------------------- legacy golden fixtures
def test_golden_fixtures_from_legacy_reference():
    """All 144 legacy cases (2d and 3d; every mode x ignore_border x stride x pad x window on an
    integer-valued input full of ties): forward, input gradient and, for max, the legacy
    second-order op - in one compiled function, with ``max_grad_ties="all"`` (the legacy tie
    rule) - and our loop reference agrees too."""
    data, meta = _golden()
    xs = {2: pt.tensor("x2", shape=(None,) * 4), 3: pt.tensor("x3", shape=(None,) * 5)}
    outputs, expected = [], []
    for case in meta:
        nd, i = case["nd"], case["id"]
        x = xs[nd]
        kwargs = dict(
            ws=tuple(case["ws"]),
            ignore_border=case["ignore_border"],
            stride=_opt(case["stride"]),
            pad=tuple(case["pad"]),
            mode=case["mode"],
        )
        y = (pool_2d if nd == 2 else pool_3d)(x, **kwargs, max_grad_ties="all")
        want_y = data[f"{i}_y"]
        outputs.append(y)
        expected.append((want_y, case, "y"))
        dx = pytensor.grad(None, x, known_grads={y: pt.constant(_cotangent(want_y.shape))})
        outputs.append(dx)
        # the legacy gradient of average_exc_pad with padding raises; ours must equal the reference
        want_dx = (
            data[f"{i}_dx"]
            if case["dx_error"] is None
            else pool_grad_ref(
                data[f"x{nd}"],
                _cotangent(want_y.shape),
                kwargs["ws"],
                kwargs["ignore_border"],
                kwargs["stride"],
                kwargs["pad"],
                kwargs["mode"],
                ties="all",
            )
        )
        expected.append((want_dx, case, "dx"))
        if case["mode"] == "max":
            stride = kwargs["stride"] or kwargs["ws"]
            gg = DownsampleFactorMaxGradGrad(case["ignore_border"], ndim=nd, max_grad_ties="all")(
                x, y, pt.constant(_cotangent(data[f"x{nd}"].shape) + 0.5), kwargs["ws"], stride, kwargs["pad"]
            )
            outputs.append(gg)
            expected.append((data[f"{i}_ggz"], case, "ggz"))
    assert len(meta) == 144 and sum(c["dx_error"] is not None for c in meta) >= 10
    f = pytensor.function(list(xs.values()), outputs, mode=PY_MODE)
    for got, (want, case, what) in zip(f(data["x2"], data["x3"]), expected):
        assert got.shape == want.shape, (what, case)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=f"{what} {case}")
    for case in meta[::7]:  # the reference reproduces the legacy values as well
        nd, i = case["nd"], case["id"]
        args = (tuple(case["ws"]), case["ignore_border"], _opt(case["stride"]), tuple(case["pad"]), case["mode"])
        ref = pool_ref(data[f"x{nd}"], *args)
        np.testing.assert_allclose(ref, data[f"{i}_y"], rtol=1e-12, err_msg=str(case))
        if case["dx_error"] is None:
            ref_dx = pool_grad_ref(data[f"x{nd}"], _cotangent(ref.shape), *args, ties="all")
            np.testing.assert_allclose(ref_dx, data[f"{i}_dx"], rtol=1e-12, atol=1e-12, err_msg=str(case))


def test_legacy_output_shape_table_and_out_shape():
    data, _ = _golden()
    for n, w, s, out in data["out_shape_table"]:
        assert Pool.out_shape((3, int(n), 1), (int(w), 1), False, (int(s), 1))[1:] == [int(out), 1]
    # symbolic sizes give the same numbers
    n = pt.lscalar("n")
    sym = Pool.out_shape((2, n, 9), (3, 2), ignore_border=False, stride=(2, 3))
    assert sym[0] == 2 and sym[2] == 3  # static entries stay ints
    f = pytensor.function([n], sym[1], mode=PY_MODE)
    for size in range(1, 9):
        assert int(f(size)) == Pool.out_shape((2, size, 9), (3, 2), False, (2, 3))[1]
    assert Pool.out_shape((5, 6), (2, 2), True, (1, 1), (1, 1)) == [6, 7]


def test_integer_input_matches_legacy_truncation():
    data, _ = _golden()
    x = pt.lmatrix("x")
    outs = [pool_2d(x, (2, 3), ignore_border=False, stride=(1, 1), mode=m) for m in MODES]
    assert all(o.dtype == "int64" for o in outs)
    for got, mode in zip(pytensor.function([x], outs, mode=PY_MODE)(data["int_x"]), MODES):
        np.testing.assert_array_equal(got, data[f"int_{mode}"], err_msg=mode)


def test_legacy_tie_rule_behind_max_grad_ties_all():
    """max_grad_ties="all": every element equal to its window's max gets the window's full
    gradient (values from the legacy reference), and the second-order op sums the tied
    elements."""
    x = pt.tensor4("x")
    g, gg = pt.tensor4("g"), pt.tensor4("gg")
    y = pool_2d(x, (2, 2), ignore_border=True, stride=(1, 1), max_grad_ties="all")
    dx = pytensor.grad(None, x, known_grads={y: g})
    ggz = DownsampleFactorMaxGradGrad(True, max_grad_ties="all")(x, y, gg, (2, 2), (1, 1), (0, 0))
    f = pytensor.function([x, g, gg], [y, dx, ggz], mode="NUMBA")
    xv = np.array([[1, 3, 3], [3, 0, 2], [3, 1, 3]], dtype="float64").reshape(1, 1, 3, 3)
    gv = np.array([[1, 10], [100, 1000]], dtype="float64").reshape(1, 1, 2, 2)
    ggv = np.arange(1, 10, dtype="float64").reshape(1, 1, 3, 3)
    yv, dxv, ggzv = f(xv, gv, ggv)
    np.testing.assert_array_equal(yv[0, 0], [[3, 3], [3, 3]])
    np.testing.assert_array_equal(dxv[0, 0], [[0, 11, 10], [101, 0, 0], [100, 0, 1000]])
    np.testing.assert_array_equal(ggzv[0, 0], [[6, 5], [11, 9]])


@pytest.mark.parametrize("backend", backend_params("NUMBA", "JAX", pairs=True))
def test_nan_in_a_window_gives_nan(backend):
    """NaN propagates wherever it is in the window (the legacy code only kept a leading NaN)."""
    x = pt.tensor4("x")
    f = pytensor.function([x], pool_2d(x, (2, 2), ignore_border=True, pad=(1, 1)), mode=backend[1])
    xv = np.array([[np.nan, 1.0, 2.0, -1.0], [0.5, 3.0, 1.0, np.nan]]).reshape(1, 1, 2, 4)
    want = [[np.nan, 2.0, -1.0], [0.5, 3.0, np.nan]]
    np.testing.assert_array_equal(np.asarray(f(xv)).reshape(2, 3), np.reshape(want, (2, 3)))
    out, _ = max_pool_forward_im2col(xv, (2, 2), pad=(1, 1))
    np.testing.assert_array_equal(out.reshape(2, 3), np.reshape(want, (2, 3)))


def test_max_pool_2d_same_size_matches_legacy():
    x = pt.tensor4("x")
    f = pytensor.function([x], max_pool_2d_same_size(x, (2, 2)), mode="NUMBA")
    xv = np.arange(25.0).reshape(1, 1, 5, 5)[..., ::-1].copy()
    expected = np.zeros((5, 5))
    expected[[1, 1, 3, 3], [0, 2, 0, 2]] = [9, 7, 19, 17]  # legacy output
    np.testing.assert_array_equal(f(xv)[0, 0], expected)


# ----------------------------------------------------------------------------- references
SWEEP = [  # (x shape, ws, stride, pad, ignore_border): overlapping, non-square, non-tiling, padded
    ((2, 3, 7, 6), (3, 2), (2, 1), (1, 1), True),
    ((2, 3, 7, 6), (3, 2), (2, 3), (0, 0), False),
    ((5, 6), (4, 4), (1, 3), (3, 2), True),
    ((2, 1, 2, 3, 5, 4), (2, 3, 2), (1, 2, 3), (1, 0, 1), True),
    ((3, 4, 3, 5), (2, 2, 3), None, (0, 0, 0), False),
    ((2, 9), (4,), (3,), (2,), True),
    ((2, 9), (4,), (3,), (0,), False),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_against_loop_reference_any_rank_and_leading_dims(dtype):
    """Every mode on 1, 2 and 3 pooled axes with 0 to 3 leading axes, forward and gradient,
    against the loop reference; float data with a few forced ties."""
    rng = np.random.default_rng(0)
    inputs, values, outputs, expected = [], [], [], []
    for shape, ws, stride, pad, ib in SWEEP:
        xv = rng.standard_normal(shape).astype(dtype)
        xv.reshape(-1)[1] = xv.reshape(-1)[0]  # a tie
        x = pt.tensor(dtype=dtype, shape=(None,) * len(shape))
        inputs.append(x)
        values.append(xv)
        for mode in MODES:
            y = Pool(ib, mode=mode, ndim=len(ws))(x, ws, stride, pad)
            y_ref = pool_ref(xv.astype("float64"), ws, ib, stride, pad, mode)
            gy = _cotangent(y_ref.shape)
            dx = pytensor.grad(None, x, known_grads={y: pt.constant(gy.astype(dtype))})
            outputs += [y, dx]
            expected += [
                (y_ref, mode, shape),
                (pool_grad_ref(xv.astype("float64"), gy, ws, ib, stride, pad, mode), mode, shape),
            ]
    f = pytensor.function(inputs, outputs, mode=PY_MODE)
    tol = 1e-5 if dtype == "float32" else 1e-12
    for got, (want, mode, shape) in zip(f(*values), expected):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=f"{mode} {shape}")


#: (x shape, ws, stride, pad, ignore_border) on both sides of ``SMALL_PLANE``: the kernels pool
#: small planes batch-minor, in blocks of ``PLANE_BLOCK`` planes, and larger ones row by row.
PLANE_SIZES = [
    ((300, 6, 6), (2, 2), (2, 2), (0, 0), True),  # two blocks, the last one partial
    ((3, 2, 16, 16), (3, 2), (2, 1), (1, 1), True),  # 256 points: the largest small plane
    ((2, 3, 19, 17), (3, 2), (2, 1), (1, 1), True),
    ((2, 20, 15), (3, 3), (2, 2), (0, 0), False),
    ((2, 2, 4, 9, 8), (2, 3, 2), (1, 2, 3), (1, 0, 1), True),
    ((2, 5, 4, 9, 8), (2, 2, 3), None, (0, 0, 0), False),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_small_and_large_planes_against_the_loop_reference(dtype):
    """The kernels on planes below and above ``SMALL_PLANE`` points (two loop orders), every
    mode and both tie rules, with ties, NaNs and -inf in the data."""
    assert {int(np.prod(c[0][-len(c[1]) :])) <= kp.SMALL_PLANE for c in PLANE_SIZES} == {True, False}
    assert any(int(np.prod(c[0][: -len(c[1])])) > kp.PLANE_BLOCK for c in PLANE_SIZES)
    rng = np.random.default_rng(3)
    for shape, ws, stride, pad, ib in PLANE_SIZES:
        nd = len(ws)
        xv = np.round(rng.standard_normal(shape), 1).astype(dtype)  # rounded: many ties
        flat = xv.reshape(-1)
        flat[rng.choice(flat.size, 5, replace=False)] = np.nan
        flat[rng.choice(flat.size, 5, replace=False)] = -np.inf
        x4 = xv.reshape((-1, *(1,) * (3 - nd), *shape[-nd:]))
        ws3, stride3 = (1,) * (3 - nd) + ws, (1,) * (3 - nd) + (stride or ws)
        pad3 = (0,) * (3 - nd) + pad
        for mode in MODES:
            want = pool_ref(xv.astype("float64"), ws, ib, stride, pad, mode)
            got = kp.pool_forward(x4, ws3, stride3, pad3, ib, kp.MODES[mode], kp.lowest_value(x4.dtype))
            np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-6, atol=1e-5, err_msg=f"{mode} {shape}")
        maxout = kp.pool_forward(x4, ws3, stride3, pad3, ib, kp.MAX, kp.lowest_value(x4.dtype))
        gz = _cotangent(maxout.shape).astype(dtype)
        gy = gz.reshape(pool_ref(xv, ws, ib, stride, pad).shape).astype("float64")
        for ties in ("first", "all"):
            want = pool_grad_ref(xv.astype("float64"), gy, ws, ib, stride, pad, "max", ties)
            got = kp.max_pool_grad(x4, maxout, gz, ws3, stride3, pad3, ib, kp.TIE_RULES[ties])
            np.testing.assert_allclose(got.reshape(shape), want, rtol=1e-6, atol=1e-5, err_msg=f"{ties} {shape}")


@pytest.mark.parametrize("mode", ["max", "average_exc_pad"])
def test_numba_nodes_with_static_plane_sizes(mode):
    """In Numba, a node whose input has static pooled lengths compiles the batch-minor entries
    where its planes are small, the row-wise ones where they are not: forward and gradient of
    both against the loop reference (the data of the kernel test above)."""
    from pytensor_nnet.dispatch.numba import pool as numba_pool

    rng = np.random.default_rng(4)
    inputs, values, outputs, expected, small, keys = [], [], [], [], set(), set()
    for shape, ws, stride, pad, ib in PLANE_SIZES[:3]:
        xv = np.round(rng.standard_normal(shape), 1)
        x = pt.tensor(shape=shape, name="x")
        y = Pool(ib, mode=mode, ndim=len(ws))(x, ws, stride or ws, pad)
        small.add(numba_pool._small_planes(y.owner, len(ws)))
        keys.add(numba_pool.numba_funcify_Pool(y.owner.op, y.owner)[1])
        y_ref = pool_ref(xv, ws, ib, stride, pad, mode)
        gy = _cotangent(y_ref.shape)
        inputs.append(x)
        values.append(xv)
        outputs += [y, pytensor.grad(None, x, known_grads={y: pt.constant(gy)})]
        expected += [y_ref, pool_grad_ref(xv, gy, ws, ib, stride, pad, mode)]
    # The last two differ only in their planes' sizes: their compiled code calls other entries.
    assert small == {0, 1} and len(keys) == 3
    for got, want in zip(pytensor.function(inputs, outputs, mode="NUMBA")(*values), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["max", "average_exc_pad"])
def test_numba_views_of_any_rank(mode):
    """In Numba, operands that are views (the last two axes swapped, the last reversed), 1 to 3
    pooled axes under 1 to 3 leading axes: forward and gradient against the loop reference."""
    rng = np.random.default_rng(5)
    cases = [
        ((5, 9, 4), (2,), (1,), (0,)),
        ((2, 3, 7, 6), (3, 2), (2, 1), (1, 0)),
        ((2, 1, 3, 5, 4, 5), (2, 3, 2), (2, 1, 2), (1, 1, 0)),
    ]
    for shape, ws, stride, pad in cases:
        xv = rng.standard_normal(shape)
        x = pt.tensor(shape=(None,) * len(shape), name="x")
        axes = list(range(len(shape) - 2)) + [len(shape) - 1, len(shape) - 2]
        y = Pool(True, mode=mode, ndim=len(ws))(x.dimshuffle(*axes)[..., ::-1], ws, stride, pad)
        view = np.swapaxes(xv, -1, -2)[..., ::-1]
        y_ref = pool_ref(view, ws, True, stride, pad, mode)
        gy = _cotangent(y_ref.shape)
        dx = pytensor.grad(None, x, known_grads={y: pt.constant(gy)})
        got_y, got_dx = pytensor.function([x], [y, dx], mode="NUMBA")(xv)
        want_dx = np.zeros_like(xv)
        np.swapaxes(want_dx, -1, -2)[..., ::-1] = pool_grad_ref(view, gy, ws, True, stride, pad, mode)
        np.testing.assert_allclose(got_y, y_ref, rtol=1e-12, atol=1e-12, err_msg=str(shape))
        np.testing.assert_allclose(got_dx, want_dx, rtol=1e-12, atol=1e-12, err_msg=str(shape))


# ----------------------------------------------------------------------------- backends
ALL_CASES = [(mode, ib) for mode in MODES for ib in (True, False)]
#: Numba compiles every node (seconds each on a cold cache): mode and ignore_border are plain
#: arguments of the same compiled kernels, so a few nodes cover the Numba-specific code.
NUMBA_CASES = {2: [("max", True)], 3: [("average_exc_pad", True)]}


def _backend_graph(nd, cases):
    """Forward, gradient and (max) second-order outputs of ``cases`` (mode, ignore_border); max
    under both tie rules (the input has a tie)."""
    if nd == 2:
        shape, ws, stride, pad = (2, 3, 7, 6), (3, 2), (2, 1), (1, 1)
        fn = pool_2d
    else:
        shape, ws, stride, pad = (2, 2, 5, 4, 5), (2, 3, 2), (2, 1, 2), (1, 0, 1)
        fn = pool_3d
    x = pt.tensor(shape=(None,) * len(shape), name="x")
    gg = pt.tensor(shape=(None,) * len(shape), name="gg")
    outs, refs = [], []
    xv = np.random.default_rng(nd).standard_normal(shape)
    xv[0, 0, 0, 0] = xv[0, 0, 0, 1]  # a tie
    ggv = _cotangent(shape)
    for mode, ib in cases:
        p = pad if ib else (0,) * nd
        for ties in ("first", "all") if mode == "max" else ("first",):
            y = fn(x, ws, ignore_border=ib, stride=stride, pad=p, mode=mode, max_grad_ties=ties)
            y_ref = pool_ref(xv, ws, ib, stride, p, mode)
            gy = _cotangent(y_ref.shape)
            outs += [y, pytensor.grad(None, x, known_grads={y: pt.constant(gy)})]
            refs += [y_ref, pool_grad_ref(xv, gy, ws, ib, stride, p, mode, ties)]
            if mode == "max":
                outs.append(DownsampleFactorMaxGradGrad(ib, ndim=nd, max_grad_ties=ties)(x, y, gg, ws, stride, p))
                refs.append(max_pool_grad_grad_ref(xv, ggv, ws, ib, stride, p, ties))
    return [x, gg], outs, [xv, ggv], refs


@pytest.mark.parametrize("backend", backend_params(*EVERY_BACKEND, pairs=True))
def test_every_backend_without_fallback(backend):
    """Numba (no object mode: warnings are errors), Python, C and JAX, 2d and 3d; every mode x
    ignore_border except in Numba (see NUMBA_CASES)."""
    name, mode = backend
    inputs, outputs, values, refs = [], [], [], []
    for nd in (2, 3):
        ins, outs, vals, rs = _backend_graph(nd, NUMBA_CASES[nd] if name == "NUMBA" else ALL_CASES)
        inputs += ins
        outputs += outs
        values += vals
        refs += rs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = pytensor.function(inputs, outputs, mode=mode, on_unused_input="ignore")
    for got, want in zip(f(*values), refs):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12)


def test_numba_runtime_geometry_and_symbolic_window():
    """ws / stride / pad as run-time inputs (the legacy Ops allow it) in Numba, with run-time
    validation of bad values."""
    x, ws, st = pt.tensor4("x"), pt.lvector("ws"), pt.lvector("st")
    y = Pool(ignore_border=True)(x, ws, st, [1, 0])
    dx = pytensor.grad(y.sum(), x)
    f = pytensor.function([x, ws, st], [y, dx], mode="NUMBA")
    xv = np.random.default_rng(1).standard_normal((2, 2, 6, 5))
    yv, dxv = f(xv, [3, 2], [2, 2])
    np.testing.assert_allclose(yv, pool_ref(xv, (3, 2), True, (2, 2), (1, 0), "max"), atol=1e-12)
    np.testing.assert_allclose(
        dxv, pool_grad_ref(xv, np.ones(yv.shape), (3, 2), True, (2, 2), (1, 0), "max"), atol=1e-12
    )
    with pytest.raises(ValueError, match="stride"):
        f(xv, [3, 2], [0, 2])
    with pytest.raises(ValueError, match="pad must be smaller than ws"):
        f(xv, [1, 2], [1, 1])
    yv, dxv = f(xv, [3, 7], [1, 1])  # the window is larger than the padded input: empty output
    assert yv.shape == (2, 2, 6, 0) and not dxv.any()


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("mode", MODES)
def test_verify_grad_pool(mode):
    rng = np.random.default_rng(7)
    xv = rng.permutation(2 * 2 * 5 * 6).reshape(2, 2, 5, 6) / 7.0  # distinct values: no ties
    for ib, pad, stride in ((True, (1, 2), (2, 1)), (False, (0, 0), (2, 3))):
        verify_grad(lambda x: Pool(ib, mode=mode)(x, (3, 3), stride, pad), [xv], rng=rng, mode=PY_MODE)
    x3 = rng.permutation(2 * 4 * 3 * 5).reshape(2, 4, 3, 5) / 7.0
    verify_grad(lambda x: pool_3d(x, (2, 2, 3), True, (1, 2, 2), (1, 0, 1), mode), [x3], rng=rng, mode=PY_MODE)


def test_verify_grad_of_the_gradient_ops():
    """Each gradient Op's own pullback: MaxPoolGrad (-> DownsampleFactorMaxGradGrad),
    DownsampleFactorMaxGradGrad (-> MaxPoolGrad), AveragePoolGrad (-> Pool)."""
    rng = np.random.default_rng(11)
    xv = rng.permutation(2 * 5 * 6).reshape(1, 2, 5, 6) / 5.0
    xv[0, 0, 0, :2] = 9.0  # ties: the adjoint pairs hold with them too
    geometry = ((3, 2), (2, 1), (1, 1))
    y_val = pool_ref(xv, geometry[0], True, geometry[1], geometry[2], "max")
    x_const = pt.constant(xv)
    y_const = Pool(True)(x_const, *geometry)
    verify_grad(
        lambda gz: MaxPoolGrad(True)(x_const, y_const, gz, *geometry),
        [rng.standard_normal(y_val.shape)],
        rng=rng,
        mode=PY_MODE,
    )
    verify_grad(
        lambda gg: DownsampleFactorMaxGradGrad(True)(x_const, y_const, gg, *geometry),
        [rng.standard_normal(xv.shape)],
        rng=rng,
        mode=PY_MODE,
    )
    for mode in ("sum", "average_inc_pad", "average_exc_pad"):
        verify_grad(
            lambda gz: AveragePoolGrad(True, mode=mode)(x_const, gz, *geometry),
            [rng.standard_normal(y_val.shape)],
            rng=rng,
            mode=PY_MODE,
        )


def test_second_derivative_of_max_pooling():
    """Hessian-vector products of sum(pool(x) ** 2) through max pooling, checked numerically."""
    rng = np.random.default_rng(5)
    xv = rng.permutation(2 * 6 * 5).reshape(1, 2, 6, 5) / 3.0

    def grad_of_square(x):
        y = pool_2d(x, (3, 2), ignore_border=True, stride=(2, 1), pad=(1, 1))
        return pytensor.grad((y**2).sum(), x)

    verify_grad(grad_of_square, [xv], rng=rng, mode=PY_MODE)
    # and the exact value: d/dx sum(pool(x)^2) = 2 * MaxPoolGrad(x, y, y); its pullback of v is
    # 2 * MaxPoolGrad(x, y, DownsampleFactorMaxGradGrad(x, y, v))
    x, v = pt.tensor4("x"), pt.tensor4("v")
    hvp = pytensor.grad(None, x, known_grads={grad_of_square(x): v})
    vv = rng.standard_normal(xv.shape)
    got = pytensor.function([x, v], hvp, mode=PY_MODE)(xv, vv)
    args = ((3, 2), True, (2, 1), (1, 1))
    ggz = max_pool_grad_grad_ref(xv, vv, *args)
    np.testing.assert_allclose(got, 2 * pool_grad_ref(xv, ggz, args[0], *args[1:], mode="max"), atol=1e-12)


def test_pushforward_uses_the_op_rules():
    x, v = pt.tensor4("x"), pt.tensor4("v")
    outs = []
    for mode in MODES:
        y = pool_2d(x, (2, 3), ignore_border=True, stride=(1, 2), pad=(1, 1), mode=mode)
        outs.append(pushforward(y, x, v, use_op_pushforward=True))
    f = pytensor.function([x, v], outs, mode=PY_MODE)
    rng = np.random.default_rng(2)
    xv, vv = rng.standard_normal((2, 1, 4, 5)), rng.standard_normal((2, 1, 4, 5))
    for got, mode in zip(f(xv, vv), MODES):
        if mode == "max":
            want = max_pool_grad_grad_ref(xv, vv, (2, 3), True, (1, 2), (1, 1))
        else:
            want = pool_ref(vv, (2, 3), True, (1, 2), (1, 1), mode)
        np.testing.assert_allclose(got, want, atol=1e-12, err_msg=mode)


# ----------------------------------------------------------------------------- shapes, API
def test_static_shapes_and_infer_shape():
    x = pt.tensor(shape=(2, 3, 7, 6))
    y = pool_2d(x, (3, 2), ignore_border=False, stride=(2, 2))
    assert y.type.shape == (2, 3, 3, 3)
    assert pool_2d(x, 2, ignore_border=True, pad=1).type.shape == (2, 3, 4, 4)
    assert pool_3d(pt.tensor(shape=(4, 5, 6)), (2, 2, 2), ignore_border=True).type.shape == (2, 2, 3)
    gx = pytensor.grad(y.sum(), x)
    assert gx.type.shape == x.type.shape
    xd = pt.tensor4("xd")
    yd = pool_2d(xd, (3, 2), ignore_border=False, stride=(2, 2), mode="average_exc_pad")
    gd = pytensor.grad(yd.sum(), xd)
    f = pytensor.function([xd], [yd.shape, gd.shape], mode=PY_MODE)
    assert not [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, (Pool, AveragePoolGrad))]
    ys, gs = f(np.zeros((2, 3, 7, 6)))
    assert tuple(ys) == (2, 3, 3, 3) and tuple(gs) == (2, 3, 7, 6)


def test_default_ignore_border_warns_and_means_false():
    x = pt.tensor4("x")
    with pytest.warns(DeprecationWarning, match="ignore_border"):
        y = pool_2d(x, (2, 2))
    assert y.owner.op.ignore_border is False
    with pytest.warns(DeprecationWarning, match="'ds'"):
        y = pool_2d(x, ds=(2, 2), ignore_border=True)
    assert y.owner.op.ignore_border is True
    with pytest.warns(DeprecationWarning, match="'st'"):
        pool_2d(x, (2, 2), ignore_border=True, st=(1, 1))
    with pytest.warns(DeprecationWarning, match="'padding'"):
        pool_2d(x, (3, 3), ignore_border=True, padding=(1, 1))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(ws=(3, 3), ignore_border=True, pad=(3, 0)), "pad must be smaller than ws"),
        (dict(ws=(3, 3), ignore_border=False, pad=(1, 1)), "requires ignore_border=True"),
        (dict(ws=(2, 2), ignore_border=True, mode="average"), "mode must be one of"),
        (dict(ws=(2, 2), ignore_border=True, stride=(0, 1)), "stride entries must be >= 1"),
        (dict(ws=(2, 2), ignore_border=True, stride=(-1, 1)), "stride entries must be >= 1"),
        (dict(ws=(0, 2), ignore_border=True), "ws entries must be >= 1"),
        (dict(ws=(2, 2), ignore_border=True, pad=(-1, 0)), "pad entries must be >= 0"),
        (dict(ws=(2, 2, 2), ignore_border=True), "ws must have 2 entries"),
        (dict(ignore_border=True), "ws .* is required"),
    ],
)
def test_bad_input_raises_at_graph_build_time(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pool_2d(pt.tensor(shape=(2, 3, 5, 5)), **kwargs)


def test_bad_input_raises_at_run_time_when_shapes_are_dynamic():
    x = pt.tensor4("x")
    y = pool_2d(x, (4, 2), ignore_border=True)
    g = pytensor.function([x, gz := pt.tensor4("gz")], MaxPoolGrad(True)(x, y, gz, (4, 2)), mode="NUMBA")
    with pytest.raises(ValueError, match="output gradient's shape"):
        g(np.zeros((1, 1, 8, 4)), np.zeros((1, 1, 3, 2)))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        pool_2d(pt.vector(), (2, 2), ignore_border=True)
    with pytest.raises(ValueError, match="maxout has static shape"):
        MaxPoolGrad(True)(pt.tensor(shape=(1, 4, 4)), pt.tensor(shape=(1, 3, 3)), pt.tensor(shape=(1, 2, 2)), (2, 2))


# ----------------------------------------------------------------------------- property test
def _run_perform(op, *inputs):
    storage = [[None]]
    op.perform(None, list(inputs), storage)
    return storage[0][0]


@st.composite
def _geometries(draw):
    nd = draw(st.integers(1, 3))
    ignore_border = draw(st.booleans())
    ws = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    pad = tuple(draw(st.integers(0, w - 1)) if ignore_border else 0 for w in ws)
    spatial = tuple(draw(st.integers(max(1, w - 2 * p) if ignore_border else 1, 6)) for w, p in zip(ws, pad))
    lead = tuple(draw(st.lists(st.integers(1, 2), min_size=0, max_size=2)))
    return lead + spatial, ws, stride, pad, ignore_border, draw(st.sampled_from(MODES))


@settings(max_examples=60, deadline=None)
@given(_geometries(), st.integers(0, 2**16))
def test_property_kernels_toolkit_and_reference_agree(geometry, seed):
    """Random geometries (1-3 pooled axes, any leading axes, overlapping / gapped / padded /
    partial windows), integer-valued data with ties, either tie rule: the Ops' kernels
    (forward, gradient, second-order), the im2col toolkit and the loop reference give the
    same numbers."""
    from pytensor_nnet.im2col import (
        avg_pool_backward_im2col,
        avg_pool_forward_im2col,
        max_pool_backward_im2col,
        max_pool_forward_im2col,
    )

    shape, ws, stride, pad, ib, mode = geometry
    nd = len(ws)
    ties = ("first", "all")[seed % 2]
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, size=shape).astype("float64")
    y = _run_perform(Pool(ib, mode=mode, ndim=nd), x, ws, stride, pad)
    y_ref = pool_ref(x, ws, ib, stride, pad, mode)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12)
    gy = rng.standard_normal(y.shape)
    dx_ref = pool_grad_ref(x, gy, ws, ib, stride, pad, mode, ties)
    if mode == "max":
        dx = _run_perform(MaxPoolGrad(ib, ndim=nd, max_grad_ties=ties), x, y, gy, ws, stride, pad)
        gg = rng.standard_normal(shape)
        ggz = _run_perform(DownsampleFactorMaxGradGrad(ib, ndim=nd, max_grad_ties=ties), x, y, gg, ws, stride, pad)
        np.testing.assert_allclose(ggz, max_pool_grad_grad_ref(x, gg, ws, ib, stride, pad, ties), atol=1e-12)
    else:
        dx = _run_perform(AveragePoolGrad(ib, mode=mode, ndim=nd), x, gy, ws, stride, pad)
    np.testing.assert_allclose(dx, dx_ref, atol=1e-12)
    if len(shape) == nd + 2:  # the toolkit takes (N, C, *spatial)
        if mode == "max":
            out, cache = max_pool_forward_im2col(x, ws, stride, pad, ib)
            dx_toolkit = max_pool_backward_im2col(gy, cache, max_grad_ties=ties)
        else:
            out, cache = avg_pool_forward_im2col(x, ws, stride, pad, ib, mode)
            dx_toolkit = avg_pool_backward_im2col(gy, cache)
        np.testing.assert_allclose(out, y_ref, rtol=1e-12)
        np.testing.assert_allclose(dx_toolkit, dx_ref, atol=1e-12)


# The first-maximum kernels work on blocks of output rows (``FIRST_MAX_BLOCK`` elements per
# window-row buffer): many short rows per block, a partial last block, and rows too wide for
# one block; with ties, NaN and the dtype's lowest value (which must still beat the padding).
WIDE_AND_MANY_ROWS = [
    ((30, 2, 20, 41), (3, 3), (2, 2), (1, 1), True),  # ~190 rows per block, 4 blocks
    ((2, 3, 9000), (3,), (1,), (2,), True),  # one row wider than a block
    ((4, 5, 7, 30), (2, 2, 3), (3, 1, 4), (0, 0, 0), False),  # gaps, windows cut at the end
    ((3, 2, 700), (4,), (3,), (3,), True),
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int16", "uint8"])
@pytest.mark.parametrize("case", WIDE_AND_MANY_ROWS, ids=lambda c: "x".join(map(str, c[0])))
def test_first_maximum_on_many_and_wide_rows(case, dtype):
    shape, ws, stride, pad, ib = case
    nd = len(ws)
    rng = np.random.default_rng(7)
    lowest = np.iinfo(dtype).min if dtype.startswith(("int", "uint")) else -np.inf
    x = rng.integers(0, 3, size=shape).astype(dtype)
    x[rng.random(shape) < 0.3] = lowest
    x[..., : shape[-1] // 3] = lowest  # whole windows of the lowest value, padded ones among them
    if dtype.startswith("float"):
        x[rng.random(shape) < 0.02] = np.nan
    y = _run_perform(Pool(ib, ndim=nd), x, ws, stride, pad)
    gy = rng.standard_normal(y.shape)
    dx = _run_perform(MaxPoolGrad(ib, ndim=nd), x, y, gy, ws, stride, pad)
    np.testing.assert_allclose(dx, pool_grad_ref(x, gy, ws, ib, stride, pad), atol=1e-12)
    gg = rng.standard_normal(shape)
    ggz = _run_perform(DownsampleFactorMaxGradGrad(ib, ndim=nd), x, y, gg, ws, stride, pad)
    np.testing.assert_allclose(ggz, max_pool_grad_grad_ref(x, gg, ws, ib, stride, pad), atol=1e-12)


# ----------------------------------------------------------------------------- legacy geometries
# The oracle's (pytensor 2.8.11) output shapes for a window larger than the padded input with
# ignore_border=True, on a (2, 1, 5, 5) input: an empty output, and a zero gradient.
EMPTY_CASES = [
    (dict(ws=(7, 7)), (2, 1, 0, 0)),
    (dict(ws=(9, 9), stride=(3, 3)), (2, 1, 0, 0)),
    (dict(ws=(20, 2), stride=(1, 1)), (2, 1, 0, 4)),
    (dict(ws=(7, 7), mode="average_exc_pad"), (2, 1, 0, 0)),
    (dict(ws=(3, 3), pad=(1, 1), stride=(7, 1), mode="sum"), (2, 1, 1, 5)),
]


@pytest.mark.parametrize("backend", backend_params("NUMBA", "PY", "JAX", "PYTORCH", pairs=True, slow=("PYTORCH",)))
def test_window_larger_than_the_padded_input_gives_an_empty_output(backend):
    _, mode = backend
    x = pt.tensor4("x")
    xv = np.arange(50, dtype=float).reshape(2, 1, 5, 5)
    outputs, expected = [], []
    for kwargs, shape in EMPTY_CASES:
        y = pool_2d(x, ignore_border=True, **kwargs)
        assert y.type.shape[2:] == (None, None)
        outputs += [y, pytensor.grad(y.sum(), x)]
        mode_name = kwargs.get("mode", "max")
        params = (kwargs["ws"], True, kwargs.get("stride"), kwargs.get("pad", (0, 0)), mode_name)
        expected += [pool_ref(xv, *params), pool_grad_ref(xv, np.ones(shape), *params)]
    y = pool_2d(x, (9, 9), ignore_border=True, stride=(3, 3))
    outputs.append(DownsampleFactorMaxGradGrad(True)(x, y, x, (9, 9), (3, 3), (0, 0)))
    expected.append(np.zeros((2, 1, 0, 0)))
    for got, want in zip(pytensor.function([x], outputs, mode=mode)(xv), expected):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-12)
    static = pool_2d(pt.tensor(shape=(2, 1, 5, 5)), (7, 2), ignore_border=True, stride=(1, 1))
    assert static.type.shape == (2, 1, 0, 4)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(ws=(2.5, 2.5)), "ws"),
        (dict(ws=(2.0, 2)), "ws"),
        (dict(ws=(2, 2), stride=(1.5, 1)), "stride"),
        (dict(ws=(2, 2), pad=(0.5, 0)), "pad"),
        (dict(ws=(pt.dscalar(), 2)), "ws"),
    ],
)
def test_non_integer_geometry_is_a_type_error(kwargs, name):
    # the legacy API raised TypeError("Pool downsample parameters must be ints."); never truncate
    with pytest.raises(TypeError, match=f"{name} entries must be ints or symbolic int scalars"):
        pool_2d(pt.tensor4(), ignore_border=True, **kwargs)


def test_pad_must_stay_smaller_than_the_window_in_every_op():
    x, gz = pt.tensor4("x"), pt.tensor4("gz")
    with pytest.raises(ValueError, match="pad must be smaller than ws"):
        Pool(ignore_border=True, mode="sum")(x, (2, 2), (1, 1), (2, 0))
    with pytest.raises(ValueError, match="pad must be smaller than ws"):
        AveragePoolGrad(ignore_border=True, mode="sum")(x, gz, (2, 2), (1, 1), (2, 0))
