"""The gradient of max pooling on tied inputs (zeros, ReLU outputs, integer values): each
window's gradient goes to its first maximum (``max_grad_ties="first"``), as PyTorch does, in
every backend and in 1, 2 and 3 pooled dims; the second-order Op is its adjoint; a short HMC
trajectory through conv -> tanh -> max pool follows the reference one; and graphs on inputs of
unknown static shape compile in JAX."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad

from pytensor_nnet import conv2d
from pytensor_nnet.im2col import Col2Im, Im2Col, im2col_output_shape
from pytensor_nnet.kernels import pool as pool_kernels
from pytensor_nnet.pool import (
    AveragePoolGrad,
    DownsampleFactorMaxGradGrad,
    MaxPoolGrad,
    Pool,
    WindowCount,
    pool_2d,
    pool_3d,
)
from tests.backends import PY_MODE, backend_params, installed_backends
from tests.reference.pool import max_pool_grad_grad_ref, pool_grad_ref, pool_ref, pool_windows

torch = pytest.importorskip("torch")
F = torch.nn.functional

BACKENDS = ("PY", "NUMBA", "JAX")

#: (x shape, ws, stride, pad, ignore_border): 1, 2 and 3 pooled dims; tiling, overlapping,
#: padded, partial windows at the end (PyTorch's ceil_mode=True); pad <= ws / 2 for PyTorch.
CASES = [
    ((2, 3, 9), (3,), (2,), (1,), True),
    ((2, 2, 6, 8), (2, 2), (2, 2), (0, 0), True),
    ((2, 2, 7, 6), (3, 3), (2, 1), (1, 1), True),
    ((1, 2, 7, 5), (2, 3), (2, 2), (0, 0), False),
    ((1, 2, 4, 5, 4), (2, 2, 3), (1, 2, 2), (1, 0, 1), True),
]


def _tied_inputs(shape, rng):
    """All zeros, ReLU-like (about half exact zeros), small integers."""
    return {
        "zeros": np.zeros(shape),
        "relu": np.maximum(rng.standard_normal(shape), 0.0),
        "integers": rng.integers(0, 3, size=shape).astype("float64"),
    }


def _torch_pool(x, ws, stride, pad, ignore_border):
    fn = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[len(ws) - 1]
    return fn(x, ws, stride, pad, ceil_mode=not ignore_border)


def _torch_grads(xv, gy, v, case):
    """PyTorch autograd: dx for the output gradient gy, and the adjoint of dx in gy applied to
    v (the second-order op, by double backward)."""
    _, ws, stride, pad, ib = case
    x = torch.tensor(xv, requires_grad=True)
    g = torch.tensor(gy, requires_grad=True)
    y = _torch_pool(x, ws, stride, pad, ib)
    assert y.shape == gy.shape
    (dx,) = torch.autograd.grad(y, x, g, create_graph=True)
    (gg,) = torch.autograd.grad(dx, g, torch.tensor(v))
    return dx.detach().numpy(), gg.numpy()


def _ops(outputs):
    """The Ops of the graph of ``outputs``."""
    ops, seen, todo = [], set(), list(outputs)
    while todo:
        var = todo.pop()
        if var.owner is not None and var.owner not in seen:
            seen.add(var.owner)
            ops.append(var.owner.op)
            todo.extend(var.owner.inputs)
    return ops


# ----------------------------------------------------------------------------- first maximum
def test_tie_rule_example():
    """The example of docs/pool.md: each window's gradient goes to its first maximum."""
    x = pt.tensor4("x")
    g, gg = pt.tensor4("g"), pt.tensor4("gg")
    y = pool_2d(x, (2, 2), ignore_border=True, stride=(1, 1))
    dx = pytensor.grad(None, x, known_grads={y: g})
    ggz = DownsampleFactorMaxGradGrad(True)(x, y, gg, (2, 2), (1, 1), (0, 0))
    f = pytensor.function([x, g, gg], [dx, ggz], mode=PY_MODE)
    xv = np.array([[1, 3, 3], [3, 0, 2], [3, 1, 3]], dtype="float64").reshape(1, 1, 3, 3)
    gv = np.array([[1, 10], [100, 1000]], dtype="float64").reshape(1, 1, 2, 2)
    ggv = np.arange(1, 10, dtype="float64").reshape(1, 1, 3, 3)
    dxv, ggzv = f(xv, gv, ggv)
    np.testing.assert_array_equal(dxv[0, 0], [[0, 11, 0], [100, 0, 0], [0, 0, 1000]])
    np.testing.assert_array_equal(ggzv[0, 0], [[2, 2], [4, 9]])
    np.testing.assert_array_equal(dxv, _torch_grads(xv, gv, ggv, ((), (2, 2), (1, 1), (0, 0), True))[0])


@pytest.mark.parametrize("backend", backend_params(*BACKENDS, pairs=True))
def test_matches_pytorch_on_tied_inputs(backend):
    """Input gradient and second-order op (the adjoint of the input gradient in the output
    gradient) against PyTorch autograd, 1-3 pooled dims, inputs full of ties; one compiled
    function per backend, run on each kind of input. The Numba nodes call the kernels that
    perform (PY) calls, so Numba runs two cases (2d and 3d, overlapping and padded)."""
    name, mode = backend
    cases = [CASES[2], CASES[4]] if name == "NUMBA" else CASES  # Numba compiles each node
    rng = np.random.default_rng(3)
    inputs, outputs = [], []
    for shape, ws, stride, pad, ib in cases:
        x = pt.tensor(shape=(None,) * len(shape), name="x")
        gy = pt.tensor(shape=(None,) * len(shape), name="gy")
        v = pt.tensor(shape=(None,) * len(shape), name="v")
        y = Pool(ib, ndim=len(ws))(x, ws, stride, pad)
        outputs += [
            pytensor.grad(None, x, known_grads={y: gy}),
            DownsampleFactorMaxGradGrad(ib, ndim=len(ws))(x, y, v, ws, stride, pad),
        ]
        inputs += [x, gy, v]
    f = pytensor.function(inputs, outputs, mode=mode)
    for kind in ("zeros", "relu", "integers"):
        values, expected = [], []
        for case in cases:
            shape, ws, stride, pad, ib = case
            xv = _tied_inputs(shape, rng)[kind]
            y_shape = pool_ref(xv, ws, ib, stride, pad).shape
            gyv, vv = rng.standard_normal(y_shape), rng.standard_normal(shape)
            values += [xv, gyv, vv]
            expected += list(_torch_grads(xv, gyv, vv, case))
            # the loop reference agrees with PyTorch, and the legacy rule does not
            np.testing.assert_allclose(pool_grad_ref(xv, gyv, ws, ib, stride, pad), expected[-2], atol=1e-12)
            if kind != "relu":  # ties at the maximum for sure
                assert not np.allclose(pool_grad_ref(xv, gyv, ws, ib, stride, pad, ties="all"), expected[-2])
        for got, want, i in zip(f(*values), expected, range(len(expected))):
            np.testing.assert_allclose(
                np.asarray(got),
                want,
                rtol=1e-12,
                atol=1e-12,
                err_msg=f"{name} {kind} {cases[i // 2]} {('dx', 'ggz')[i % 2]}",
            )


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{len(c[1])}d")
def test_gradient_sums_to_the_output_gradient_per_window(case):
    """Non-overlapping windows (stride = ws): exactly one element per window gets the window's
    gradient, so the input gradient summed over each window is the output gradient."""
    shape, ws, _, _, _ = case
    nd = len(ws)
    rng = np.random.default_rng(4)
    op = MaxPoolGrad(True, ndim=nd)
    for xv in _tied_inputs(shape, rng).values():
        y = pool_ref(xv, ws, True, ws, (0,) * nd)
        gy = rng.uniform(1, 2, size=y.shape)  # no zero: every window's winner shows
        storage = [[None]]
        op.perform(None, [xv, y, gy, ws, ws, (0,) * nd], storage)
        gx = storage[0][0]
        windows = gx[(Ellipsis,) + tuple(slice(0, o * w) for o, w in zip(y.shape[-nd:], ws))]
        split = windows.reshape(windows.shape[:-nd] + sum(((o, w) for o, w in zip(y.shape[-nd:], ws)), ()))
        axes_w = tuple(range(windows.ndim - nd + 1, windows.ndim + nd, 2))
        np.testing.assert_allclose(split.sum(axis=axes_w), gy, rtol=1e-14)
        assert np.array_equal(np.count_nonzero(split, axis=axes_w), np.ones(y.shape, dtype=int))
        assert np.count_nonzero(gx) == gy.size


def test_finite_differences_where_the_maxima_are_unique():
    """Inputs full of exact zeros (tied, below the maxima) whose window maxima are unique: the
    gradient is the derivative (verify_grad, central differences), in 1, 2 and 3 pooled dims."""
    rng = np.random.default_rng(5)
    for shape, ws, stride, pad, ib in CASES:
        nd = len(ws)
        x = np.zeros(shape)
        values = iter(0.5 + rng.permutation(x.size) / x.size)  # distinct, >= 0.5
        flat = x.reshape(-1)
        for i in rng.choice(x.size, size=x.size // 4, replace=False):
            flat[i] = next(values)
        for _, axes, _ in pool_windows(shape, ws, stride, pad, ib):  # a positive in every window
            idx = (Ellipsis,) + tuple(slice(lo, hi) for _, lo, hi in axes)
            lead = x[idx].reshape(x.shape[:-nd] + (-1,))
            for j in np.ndindex(*x.shape[:-nd]):
                if lead[j].max() == 0:
                    x[j + tuple(lo for _, lo, _ in axes)] = next(values)
        assert np.count_nonzero(x == 0) > x.size // 3
        assert pool_ref(x, ws, ib, stride, pad).min() >= 0.5
        verify_grad(lambda a: Pool(ib, ndim=nd)(a, ws, stride, pad), [x], rng=rng, mode=PY_MODE, eps=1e-6)


# ----------------------------------------------------------------------------- second order
@pytest.mark.parametrize("ties", ["first", "all"])
def test_second_order_op_is_the_adjoint_on_tied_inputs(ties):
    """<MaxPoolGrad(gz), v> == <gz, DownsampleFactorMaxGradGrad(v)> for both rules, 1-3 pooled
    dims, on inputs full of ties, and verify_grad of both Ops in their gradient argument."""
    rng = np.random.default_rng(6)
    for shape, ws, stride, pad, ib in CASES:
        nd = len(ws)
        grad_op = MaxPoolGrad(ib, ndim=nd, max_grad_ties=ties)
        adjoint_op = DownsampleFactorMaxGradGrad(ib, ndim=nd, max_grad_ties=ties)
        for xv in _tied_inputs(shape, rng).values():
            y = pool_ref(xv, ws, ib, stride, pad)
            gz, v = rng.standard_normal(y.shape), rng.standard_normal(shape)
            out = [[None]], [[None]]
            grad_op.perform(None, [xv, y, gz, ws, stride, pad], out[0])
            adjoint_op.perform(None, [xv, y, v, ws, stride, pad], out[1])
            np.testing.assert_allclose(np.vdot(out[0][0][0], v), np.vdot(gz, out[1][0][0]), rtol=1e-12)
            np.testing.assert_allclose(
                out[1][0][0], max_pool_grad_grad_ref(xv, v, ws, ib, stride, pad, ties), atol=1e-12
            )
    # the pullbacks of the two Ops are each other (verify_grad of the gradient graph in gz)
    shape, ws, stride, pad, ib = CASES[2]
    xv = rng.integers(0, 2, size=shape).astype("float64")
    x_const = pt.constant(xv)
    y_const = Pool(ib, max_grad_ties=ties)(x_const, ws, stride, pad)
    y_shape = pool_ref(xv, ws, ib, stride, pad).shape
    verify_grad(
        lambda gz: pytensor.grad(None, x_const, known_grads={y_const: gz}),
        [rng.standard_normal(y_shape)],
        rng=rng,
        mode=PY_MODE,
    )
    verify_grad(
        lambda v: DownsampleFactorMaxGradGrad(ib, max_grad_ties=ties)(x_const, y_const, v, ws, stride, pad),
        [rng.standard_normal(shape)],
        rng=rng,
        mode=PY_MODE,
    )


def test_hessian_vector_product_matches_pytorch_on_tied_inputs():
    """d/dx <d/dx sum(pool(x) ** 2), v> through both gradient Ops, against PyTorch's double
    backward, on integer-valued inputs (many ties), 2d and 3d."""
    rng = np.random.default_rng(7)
    for shape, ws, stride, pad, ib in (CASES[2], CASES[4]):
        x, v = pt.tensor(shape=(None,) * len(shape)), pt.tensor(shape=(None,) * len(shape))
        y = Pool(ib, ndim=len(ws))(x, ws, stride, pad)
        gx = pytensor.grad((y**2).sum(), x)
        hvp = pytensor.grad((gx * v).sum(), x)
        f = pytensor.function([x, v], [gx, hvp], mode=PY_MODE)
        xv, vv = rng.integers(0, 3, size=shape).astype("float64"), rng.standard_normal(shape)
        xt = torch.tensor(xv, requires_grad=True)
        (gxt,) = torch.autograd.grad((_torch_pool(xt, ws, stride, pad, ib) ** 2).sum(), xt, create_graph=True)
        (hvpt,) = torch.autograd.grad((gxt * torch.tensor(vv)).sum(), xt)
        got_gx, got_hvp = f(xv, vv)
        np.testing.assert_allclose(got_gx, gxt.detach().numpy(), atol=1e-12)
        np.testing.assert_allclose(got_hvp, hvpt.numpy(), atol=1e-12)


# ----------------------------------------------------------------------------- the option
def test_max_grad_ties_is_a_prop_that_reaches_every_op():
    x = pt.tensor4("x")
    assert Pool(True) != Pool(True, max_grad_ties="all")
    assert hash(MaxPoolGrad(True)) != hash(MaxPoolGrad(True, max_grad_ties="all"))
    for ties in ("first", "all"):
        y = pool_2d(x, (2, 2), ignore_border=True, max_grad_ties=ties)
        assert y.owner.op.max_grad_ties == ties
        gx = pytensor.grad(y.sum(), x)
        hvp = pytensor.grad((gx * x).sum(), x)
        ops = _ops([hvp])
        assert {op.max_grad_ties for op in ops if isinstance(op, MaxPoolGrad | DownsampleFactorMaxGradGrad)} == {ties}
        assert pool_3d(pt.tensor5(), (2, 2, 2), True, max_grad_ties=ties).owner.op.max_grad_ties == ties
    # graphs that differ only by the rule are not merged
    y1 = pool_2d(x, (2, 2), ignore_border=True)
    y2 = pool_2d(x, (2, 2), ignore_border=True, max_grad_ties="all")
    f = pytensor.function([x], [pytensor.grad(y1.sum(), x), pytensor.grad(y2.sum(), x)], mode=PY_MODE)
    d_first, d_all = f(np.zeros((1, 1, 2, 2)))
    np.testing.assert_array_equal(d_first[0, 0], [[1, 0], [0, 0]])
    np.testing.assert_array_equal(d_all[0, 0], [[1, 1], [1, 1]])
    for bad in (
        lambda: pool_2d(x, (2, 2), True, max_grad_ties="last"),
        lambda: MaxPoolGrad(True, max_grad_ties=1),
        lambda: DownsampleFactorMaxGradGrad(True, max_grad_ties=None),
    ):
        with pytest.raises(ValueError, match="max_grad_ties must be 'first'.*or 'all'"):
            bad()


def test_padding_never_wins_and_nan_counts_as_the_maximum():
    """-inf everywhere with padding: the first real element of each window wins (as PyTorch);
    a NaN is the maximum and the first NaN of the window gets the gradient (as numpy's argmax)."""
    x = pt.tensor4("x")
    y = pool_2d(x, (2, 2), ignore_border=True, pad=(1, 1))
    g = pt.tensor4("g")
    outs = [pytensor.grad(None, x, known_grads={y: g})]
    xv = np.full((1, 1, 3, 3), -np.inf)
    gv = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    case = ((), (2, 2), (2, 2), (1, 1), True)
    for name, mode in installed_backends(*BACKENDS):
        f = pytensor.function([x, g], outs, mode=mode)
        np.testing.assert_array_equal(
            np.asarray(f(xv, gv)[0]), _torch_grads(xv, gv, np.zeros(xv.shape), case)[0], err_msg=name
        )
        xn = np.zeros((1, 1, 3, 3))
        xn[0, 0, 0, 2] = xn[0, 0, 1, 0] = xn[0, 0, 1, 2] = xn[0, 0, 2, 1] = np.nan
        xn[0, 0, 0, 1] = 5.0
        want = pool_grad_ref(xn, gv, (2, 2), True, (2, 2), (1, 1))
        np.testing.assert_array_equal(want[0, 0], [[1, 0, 2], [3, 0, 4], [0, 0, 0]])
        np.testing.assert_array_equal(np.asarray(f(xn, gv)[0]), want, err_msg=name)


# ----------------------------------------------------------------------------- HMC
def _model_data(rng):
    """Four 10x10 "digits": binary strokes on an exact-zero background."""
    x = np.zeros((4, 1, 10, 10))
    x[:, :, 3:7, 2:8] = rng.random((4, 1, 4, 6)) < 0.5
    return x, rng.standard_normal(4)


def _split(theta):
    return theta[:18].reshape((2, 1, 3, 3)), theta[18:20], theta[20:52].reshape((32, 1)), theta[52]


def _torch_logp_grad(data, targets):
    x, t = torch.tensor(data), torch.tensor(targets)

    def logp_grad(theta_np):
        theta = torch.tensor(theta_np, requires_grad=True)
        w, b, v, c = _split(theta)
        h = F.max_pool2d(torch.tanh(F.conv2d(x, w, b)), 2).reshape(4, 32)
        out = (h @ v)[:, 0] + c
        logp = -0.5 * (theta**2).sum() - 0.5 * (((out - t) / 0.5) ** 2).sum()
        (grad,) = torch.autograd.grad(logp, theta)
        return logp.item(), grad.numpy()

    return logp_grad


def _pytensor_logp_grad(data, targets, ties):
    theta = pt.dvector("theta")
    w, b, v, c = _split(theta)
    conv = conv2d(pt.constant(data), w, filter_flip=False) + b.dimshuffle("x", 0, "x", "x")
    h = pool_2d(pt.tanh(conv), (2, 2), ignore_border=True, max_grad_ties=ties).reshape((4, 32))
    out = pt.dot(h, v)[:, 0] + c
    logp = -0.5 * (theta**2).sum() - 0.5 * (((out - targets) / 0.5) ** 2).sum()
    f = pytensor.function([theta], [logp, pytensor.grad(logp, theta)], mode=PY_MODE)
    return lambda th: tuple(np.asarray(a) for a in f(th))


def _leapfrog(logp_grad, q, p, step, n_steps):
    """Energy error and final position of a leapfrog trajectory (unit mass)."""
    logp0, grad = logp_grad(q)
    h0 = -logp0 + 0.5 * p @ p
    for _ in range(n_steps):
        p = p + 0.5 * step * grad
        q = q + step * p
        logp, grad = logp_grad(q)
        p = p + 0.5 * step * grad
    return -logp + 0.5 * p @ p - h0, q


def test_hmc_trajectory_through_max_pooling_matches_the_reference():
    """conv2d -> tanh -> max pool_2d -> dense -> Gaussian log-density on images with exact-zero
    backgrounds (every background window is a tie): the gradient equals PyTorch's, and a
    20-step leapfrog trajectory has the reference's energy error and positions. The legacy
    rule inflates the conv bias gradient (each tied element gets the window's gradient), and
    its trajectory drifts."""
    rng = np.random.default_rng(8)
    data, targets = _model_data(rng)
    reference = _torch_logp_grad(data, targets)
    ours = _pytensor_logp_grad(data, targets, "first")
    legacy = _pytensor_logp_grad(data, targets, "all")
    q0, p0 = 0.3 * rng.standard_normal(53), rng.standard_normal(53)

    (lp_ref, g_ref), (lp, g), (_, g_legacy) = reference(q0), ours(q0), legacy(q0)
    np.testing.assert_allclose(lp, lp_ref, rtol=1e-12)
    np.testing.assert_allclose(g, g_ref, rtol=1e-9, atol=1e-9)
    assert np.abs(g_legacy[18:20] - g_ref[18:20]).max() > 1  # the bias gradient, many ties per window

    step = 0.005
    de_ref, q_ref = _leapfrog(reference, q0, p0, step, 20)
    de, q = _leapfrog(ours, q0, p0, step, 20)
    de_legacy, q_legacy = _leapfrog(legacy, q0, p0, step, 20)
    assert abs(de_ref) < 0.01
    np.testing.assert_allclose(q, q_ref, rtol=0, atol=1e-10)
    assert abs(de - de_ref) < 1e-9
    assert abs(de_legacy) > 0.05 and np.abs(q_legacy - q_ref).max() > 1e-2


# ----------------------------------------------------------------------------- symbolic shapes
def test_window_count_matches_the_kernels_in_every_backend():
    """WindowCount (the output sizes of the shape graphs) against the kernels' output size and
    the im2col geometry, as plain ints and compiled in Numba and JAX."""
    n = pt.lscalar("n")
    m = pt.lscalar("m")
    geoms = [(3, 2, 0, 0, 1, True), (2, 3, 0, 0, 1, True), (3, 2, 1, 1, 1, False), (3, 1, 2, 1, 2, False)]
    outs = [WindowCount((g,))(n) for g in geoms] + [WindowCount((geoms[2], geoms[3]), factor=3)(n, m, n)]

    def want(nv, mv):
        out = []
        for ws, s, lo, hi, d, partial in geoms:
            if partial:
                out.append(pool_kernels.out_size_1axis(nv, ws, s, 0, False))
            else:
                span = (ws - 1) * d + 1
                out.append(max(0, (nv + lo + hi - span) // s + 1))
        return out + [3 * nv * out[2] * max(0, (mv + 3 - 5) // 1 + 1)]

    assert want(7, 4)[2] == pool_kernels.out_size_1axis(7, 3, 2, 1, True)
    assert want(9, 4)[3] == im2col_output_shape((1, 1, 9), (3,), 1, ((2, 1),), 2)[1]
    for name, mode in installed_backends(*BACKENDS):
        f = pytensor.function([n, m], outs, mode=mode)
        for nv, mv in ((1, 1), (2, 5), (7, 4), (9, 8)):
            assert [int(v) for v in f(nv, mv)] == want(nv, mv), (name, nv, mv)


def test_jax_pooling_and_im2col_on_inputs_of_unknown_static_shape():
    """Images in a shared variable of unknown static shape (what pm.Data makes): every pool
    mode, the gradients (MaxPoolGrad, AveragePoolGrad), the second-order op
    (DownsampleFactorMaxGradGrad) and Im2Col / Col2Im compile in JAX mode and agree with the
    Python backend."""
    pytest.importorskip("jax")
    rng = np.random.default_rng(9)
    xv = np.maximum(rng.standard_normal((3, 2, 9, 8)), 0)
    x = pytensor.shared(xv, shape=(None,) * 4)
    a = pt.dscalar("a")
    xa = x * a
    outs = []
    for mode in ("max", "sum", "average_inc_pad", "average_exc_pad"):
        y = pool_2d(xa, (3, 2), ignore_border=True, stride=(2, 2), pad=(1, 0), mode=mode)
        outs.append(y)
        if mode in ("max", "average_exc_pad"):  # the gradient of a sum allocates ones of the pooled shape
            outs.append(pytensor.grad(y.sum(), a))
        if mode == "max":  # second order: DownsampleFactorMaxGradGrad
            ga = pytensor.grad((y**2).sum(), a)
            outs += [ga, pytensor.grad(ga, a)]
    y3 = pool_3d(xa, (2, 2, 3), ignore_border=False, stride=(1, 2, 2))
    outs += [y3, pytensor.grad(y3.sum(), a)]
    cols = Im2Col((3, 2), stride=(2, 1), pad=1)(xa)
    ga = pytensor.grad((cols**2).sum(), a)
    outs += [
        cols,
        pytensor.grad(cols.sum(), a),
        ga,
        pytensor.grad(ga, a),
        Col2Im((3, 2), stride=(2, 1), pad=1)(cols, x.shape),
    ]
    ops = {type(op) for op in _ops(outs)}
    assert {Pool, MaxPoolGrad, AveragePoolGrad, DownsampleFactorMaxGradGrad, Im2Col, Col2Im} <= ops
    f_jax = pytensor.function([a], outs, mode="JAX")
    f_py = pytensor.function([a], outs, mode=PY_MODE)
    for got, want in zip(f_jax(1.3), f_py(1.3)):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10, atol=1e-10)
    # the shapes follow the data
    x.set_value(np.maximum(rng.standard_normal((2, 1, 7, 10)), 0))
    for got, want in zip(f_jax(0.7), f_py(0.7)):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10, atol=1e-10)


def test_jax_needs_constant_pooling_geometry():
    pytest.importorskip("jax")
    x, ws = pt.tensor4("x"), pt.lvector("ws")
    with pytest.raises(NotImplementedError, match="JAX needs ws to be a constant"):
        pytensor.function([x, ws], Pool(True)(x, ws), mode="JAX")
