"""Every Op of the package in PyTensor's PyTorch backend (mode="PYTORCH").

Two ways of running the same rewritten graph: eagerly (``EAGER``: PyTensor's PyTorch linker
without ``torch.compile``, which is how most cases run, because compiling is slow) and compiled
(``mode="PYTORCH"``, a few graphs that gather many Ops each). Results are checked against the
slow numpy references (``tests/reference.py``, ``tests/pool_reference.py``, loops here) or
against the Python linker running the same graph (``PY_MODE``).
"""

import subprocess
import sys

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode, get_mode

torch = pytest.importorskip("torch")

from pytensor.link.pytorch.dispatch import pytorch_typify  # noqa: E402
from pytensor.link.pytorch.linker import PytorchLinker  # noqa: E402

import pytensor_nnet.dispatch.pytorch  # noqa: E402,F401  (registers the PyTorch implementations)
from pytensor_nnet import conv2d, conv3d, pool  # noqa: E402
from pytensor_nnet import im2col as im2col_module  # noqa: E402
from pytensor_nnet import sparse as S  # noqa: E402
from pytensor_nnet.blocksparse import sparse_block_dot, sparse_block_outer  # noqa: E402
from pytensor_nnet.conv import ops  # noqa: E402
from pytensor_nnet.dispatch.pytorch.pool import max_grad_ties  # noqa: E402
from pytensor_nnet.pool import pool_2d, pool_3d  # noqa: E402
from pytensor_nnet.shapes import get_conv_output_shape  # noqa: E402
from tests.backends import PY_MODE  # noqa: E402
from tests.reference.blocksparse import sparse_block_dot_ref  # noqa: E402
from tests.reference.conv import conv_grads_ref, conv_ref, unshared_conv_ref, unshared_grads_ref  # noqa: E402
from tests.reference.pool import im2col_ref, max_pool_grad_grad_ref, pool_grad_ref, pool_ref  # noqa: E402


class EagerPytorchLinker(PytorchLinker):
    """PyTensor's PyTorch linker without ``torch.compile``: the generated function runs eagerly."""

    def jit_compile(self, fn):
        def run(*inputs):
            outputs = fn(*(pytorch_typify(i) for i in inputs))
            return tuple(out.cpu().numpy() for out in outputs)

        return run


EAGER = Mode(linker=EagerPytorchLinker(), optimizer=get_mode("PYTORCH").optimizer)
COMPILED = "PYTORCH"
RTOL = 1e-10


def _run(mode, inputs, outputs, values):
    f = pytensor.function(inputs, outputs, mode=mode, on_unused_input="ignore")
    return [np.asarray(v) for v in f(*values)]


def _assert_all_close(got, want, rtol=RTOL, atol=1e-10):
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape, (i, g.shape, w.shape)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"output {i}")


# ----------------------------------------------------------------------------- convolution
CONV_CASES = [
    # (x shape, (filters, in/group, *kernel), params, static shapes)
    ((2, 3, 11), (4, 3, 3), dict(border_mode=((1, 2),), subsample=(2,), filter_dilation=(2,)), True),
    ((2, 3, 7, 6), (4, 3, 3, 2), dict(), False),
    (
        (2, 4, 9, 8),
        (6, 2, 3, 2),
        dict(border_mode="half", subsample=(2, 1), filter_dilation=(1, 2), num_groups=2, filter_flip=False),
        True,
    ),
    ((1, 3, 5, 5), (3, 1, 2, 3), dict(border_mode="full", num_groups=3), False),
    ((2, 2, 8, 7), (3, 2, 3, 3), dict(border_mode=((1, 0), (2, 1)), subsample=(2, 3)), False),
    ((1, 4, 5, 6, 5), (4, 2, 2, 3, 2), dict(border_mode=((1, 0), 0, (2, 1)), subsample=(1, 2, 1), num_groups=2), True),
]


def _conv_graph(x_shape, w_shape, params, static, unshared=False):
    """Inputs (x, w, gy) and outputs (y, dx, dw) of a convolution and its gradients."""
    nd = len(x_shape) - 2
    x = pt.tensor("x", shape=x_shape if static else (None,) * len(x_shape))
    w = pt.tensor("w", shape=w_shape if static else (None,) * len(w_shape))
    op = ops.AbstractConv(nd, unshared=unshared, **params)
    y = op(x, w)
    gy = pt.tensor("gy", shape=(None,) * y.ndim)
    dx, dw = pytensor.grad((y * gy).sum(), [x, w])
    return [x, w, gy], [y, dx, dw]


def _conv_problem(x_shape, w_shape, params, seed=0):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    out = get_conv_output_shape(
        x_shape, w_shape, params.get("border_mode", "valid"), params.get("subsample"), params.get("filter_dilation")
    )
    return x, w, rng.standard_normal(out)


@pytest.mark.parametrize("x_shape, w_shape, params, static", CONV_CASES)
def test_conv_forward_and_gradients_eager(x_shape, w_shape, params, static):
    """1-d, 2-d, 3-d; groups, strides, dilation, asymmetric padding, both flips, with and
    without static shapes (the gradients' shape input then comes from the operands)."""
    inputs, outputs = _conv_graph(x_shape, w_shape, params, static)
    x, w, gy = _conv_problem(x_shape, w_shape, params)
    want = [conv_ref(x, w, **params), *conv_grads_ref(x, w, gy, **params)]
    _assert_all_close(_run(EAGER, inputs, outputs, [x, w, gy]), want)


UNSHARED_CASES = [
    ((2, 4, 7, 6), (6, 2, 3, 2), dict(border_mode=((1, 0), 1), subsample=(2, 1), filter_dilation=(1, 2), num_groups=2)),
    ((2, 3, 5, 5), (3, 1, 2, 2), dict(border_mode="full", num_groups=3, filter_flip=False)),
    ((2, 2, 9), (3, 2, 3), dict(border_mode="half", subsample=(2,), filter_dilation=(2,))),
]


def _unshared_problem(x_shape, kshp, params, seed=0):
    nd = len(x_shape) - 2
    out = get_conv_output_shape(
        x_shape, kshp, params.get("border_mode", "valid"), params.get("subsample"), params.get("filter_dilation")
    )
    rng = np.random.default_rng(seed)
    w_shape = (kshp[0], *out[2:], kshp[1], *kshp[2:])
    assert len(w_shape) == 2 + 2 * nd
    return rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(out)


@pytest.mark.parametrize("x_shape, kshp, params", UNSHARED_CASES)
def test_unshared_conv_eager(x_shape, kshp, params):
    x, w, gy = _unshared_problem(x_shape, kshp, params)
    inputs, outputs = _conv_graph(x_shape, w.shape, params, static=True, unshared=True)
    want = [unshared_conv_ref(x, w, **params), *unshared_grads_ref(x, w, gy, **params)]
    _assert_all_close(_run(EAGER, inputs, outputs, [x, w, gy]), want)


def test_conv_second_order_and_legacy_api_eager():
    """Derivatives of the gradient Ops (each is the other Ops), through ``conv2d``/``conv3d``."""
    x, w = pt.tensor4("x"), pt.tensor4("w")
    y = conv2d(x, w, border_mode=((0, 1), 2), subsample=(2, 1), filter_dilation=(1, 2), num_groups=2)
    gx, gw = pytensor.grad((y**2).sum(), [x, w])
    second = pytensor.grad((gx**2).sum() + (gw**2).sum(), [x, w])
    v, u = pt.tensor5("v"), pt.tensor5("u")
    z = conv3d(v, u, border_mode="half", filter_flip=False)
    outputs = [y, gx, gw, *second, z, *pytensor.grad(z.sum(), [v, u])]
    rng = np.random.default_rng(1)
    values = [
        rng.standard_normal((2, 4, 6, 7)),
        rng.standard_normal((4, 2, 3, 2)),
        rng.standard_normal((1, 2, 4, 3, 5)),
        rng.standard_normal((3, 2, 3, 1, 3)),
    ]
    inputs = [x, w, v, u]
    _assert_all_close(_run(EAGER, inputs, outputs, values), _run(PY_MODE, inputs, outputs, values), rtol=1e-9)


def test_conv_float32():
    x, w = pt.tensor4("x", dtype="float32"), pt.tensor4("w", dtype="float32")
    y = conv2d(x, w, border_mode=1)
    outputs = [y, *pytensor.grad(y.sum(), [x, w])]
    rng = np.random.default_rng(2)
    values = [rng.standard_normal((2, 3, 6, 6)).astype("float32"), rng.standard_normal((4, 3, 3, 3)).astype("float32")]
    got = _run(EAGER, [x, w], outputs, values)
    assert all(g.dtype == np.float32 for g in got)
    _assert_all_close(got, _run(PY_MODE, [x, w], outputs, values), rtol=1e-4, atol=1e-4)


def test_conv_gradient_ops_with_runtime_shape_input():
    """Strided gradients whose ``shape`` input is a run-time vector (no static shape, not
    deducible from the operands): read from the tensor."""
    kern, top, shape = pt.tensor4("kern"), pt.tensor4("top"), pt.lvector("shape")
    img = pt.tensor4("img")
    op_args = dict(border_mode=1, subsample=(2, 2))
    gi = ops.AbstractConv_gradInputs(2, **op_args)(kern, top, shape)
    gw = ops.AbstractConv_gradWeights(2, **op_args)(img, top, shape)
    rng = np.random.default_rng(3)
    k, t, i = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal((2, 4, 4, 4)), rng.standard_normal((2, 3, 8, 7))
    inputs = [kern, top, img, shape]
    for outputs, values in (([gi], [k, t, i, np.array([8, 7])]), ([gw], [k, t, i, np.array([3, 3])])):
        _assert_all_close(_run(EAGER, inputs, outputs, values), _run(PY_MODE, inputs, outputs, values))


@pytest.mark.xfail(
    reason="after other compiled graphs in the same process, torch inductor may recompile with "
    "dynamic shapes and fail to lower convolution_backward (ValueRangeError); seen with PyTensor "
    "2.38 and 3.0.7, depending on which tests ran before in the worker; passes on its own",
    strict=False,
)
def test_conv_compiled():
    """One ``torch.compile``d function: 2-d (asymmetric padding, stride, groups, dilation) and
    3-d convolutions with both gradients, and an unshared one."""
    cases = (CONV_CASES[2], CONV_CASES[4], CONV_CASES[5])
    graphs = [(_conv_graph(xs, ws, p, st), _conv_problem(xs, ws, p), p) for xs, ws, p, st in cases]
    x_shape, kshp, uparams = UNSHARED_CASES[0]
    ux, uw, ugy = _unshared_problem(x_shape, kshp, uparams)
    inputs, outputs, values, want = [], [], [], []
    for (ins, outs), (x, w, gy), params in graphs:
        inputs += ins
        outputs += outs
        values += [x, w, gy]
        want += [conv_ref(x, w, **params), *conv_grads_ref(x, w, gy, **params)]
    ins, outs = _conv_graph(x_shape, uw.shape, uparams, static=True, unshared=True)
    inputs += ins
    outputs += outs
    values += [ux, uw, ugy]
    want += [unshared_conv_ref(ux, uw, **uparams), *unshared_grads_ref(ux, uw, ugy, **uparams)]
    _assert_all_close(_run(COMPILED, inputs, outputs, values), want)


def test_pytorch_mode_passes_inductor_options(monkeypatch):
    """``pytorch_mode()`` compiles with Inductor options for its functions only (NCHW kept by
    default) and computes what PyTensor's PYTORCH mode computes."""
    from pytensor_nnet.modes import pytorch_mode

    seen = []
    real_compile = torch.compile

    def recording_compile(fn, *args, **kwargs):
        seen.append(kwargs.get("options"))
        return real_compile(fn, *args, **kwargs)

    monkeypatch.setattr(torch, "compile", recording_compile)
    xs, ws, params, static = CONV_CASES[2]
    inputs, outputs = _conv_graph(xs, ws, params, static)
    values = list(_conv_problem(xs, ws, params))
    got = pytensor.function(inputs, outputs, mode=pytorch_mode(cudagraphs=False))(*values)
    assert {"layout_optimization": False, "triton.cudagraphs": False} in seen
    x, w, gy = values
    _assert_all_close(got, [conv_ref(x, w, **params), *conv_grads_ref(x, w, gy, **params)])
    # the global Inductor settings are untouched
    import torch._inductor.config as inductor_config

    assert inductor_config.layout_optimization is True


def _graph_breaks(inputs, outputs, values):
    """Graph breaks ``torch.compile`` would make in the PyTorch function of this graph
    (``torch._dynamo.explain`` traces without compiling)."""
    from pytensor.link.pytorch.dispatch import pytorch_funcify

    fn = pytensor.function(inputs, outputs, mode=EAGER)
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(pytorch_funcify(fn.maker.fgraph))(*(torch.as_tensor(v) for v in values))
    return [str(r.reason).splitlines()[0] for r in explanation.break_reasons]


def test_no_graph_breaks():
    """A training-like graph (static shapes: convolutions with asymmetric padding and groups,
    max and average pooling, im2col, their gradients and the gradients' SpecifyShape) is one
    ``torch.compile`` graph: nothing reads tensor values or branches on them."""
    x = pt.tensor("x", shape=(2, 4, 9, 8))
    w = pt.tensor("w", shape=(6, 2, 3, 2))
    y = conv2d(x, w, border_mode=((1, 0), 2), subsample=(2, 1), num_groups=2)
    pa = pool_2d(y, (2, 2), ignore_border=True, pad=(1, 1))
    pb = pool_2d(y, (2, 2), ignore_border=False, mode="average_exc_pad")
    cols = im2col_module.Im2Col((2, 2), 1, 1)(pa)
    outputs = [pa, pb, *pytensor.grad((cols**2).sum() + (pb**2).sum(), [x, w])]
    rng = np.random.default_rng(12)
    values = [rng.standard_normal((2, 4, 9, 8)), rng.standard_normal((6, 2, 3, 2))]
    assert _graph_breaks([x, w], outputs, values) == []


# ----------------------------------------------------------------------------- pooling
POOL_CASES = [
    # (x shape, ws, ignore_border, stride, pad)
    ((2, 3, 7, 6), (2, 3), True, None, (0, 0)),
    ((2, 3, 7, 6), (3, 2), True, (2, 1), (1, 1)),
    ((2, 7, 6), (3, 2), False, (2, 1), (0, 0)),
    ((3, 7, 5), (2, 2), False, None, (0, 0)),
    ((1, 2, 5, 4, 6), (2, 3, 2), True, (1, 2, 3), (1, 0, 1)),
    ((2, 5, 4, 6), (3, 2, 2), False, (2, 3, 1), (0, 0, 0)),
    ((3, 9), (4,), False, (3,), (0,)),
    ((2, 9), (3,), True, (2,), (1,)),
]


def _pool_graph(x_shape, ws, ignore_border, stride, pad, mode, static=True):
    nd = len(ws)
    x = pt.tensor("x", shape=x_shape if static else (None,) * len(x_shape))
    y = pool.Pool(ignore_border, mode=mode, ndim=nd)(x, ws, stride, pad)
    gy = pt.tensor("gy", shape=(None,) * y.ndim)
    (dx,) = pytensor.grad((y * gy).sum(), [x])
    return x, gy, y, dx


@pytest.mark.parametrize("mode", ["max", "sum", "average_inc_pad", "average_exc_pad"])
@pytest.mark.parametrize("x_shape, ws, ignore_border, stride, pad", POOL_CASES)
def test_pool_forward_and_gradient_eager(x_shape, ws, ignore_border, stride, pad, mode):
    """1-d, 2-d, 3-d; strides, padding, partial windows (ignore_border=False), every mode.
    Random data has no ties, so the max gradient is the same under either tie rule."""
    x, gy, y, dx = _pool_graph(x_shape, ws, ignore_border, stride, pad, mode, static=len(x_shape) % 2 == 0)
    rng = np.random.default_rng(0)
    xv = rng.standard_normal(x_shape)
    want_y = pool_ref(xv, ws, ignore_border, stride, pad, mode)
    gyv = rng.standard_normal(want_y.shape)
    want = [want_y, pool_grad_ref(xv, gyv, ws, ignore_border, stride, pad, mode)]
    _assert_all_close(_run(EAGER, [x, gy], [y, dx], [xv, gyv]), want)


@pytest.mark.parametrize("x_shape, ws, ignore_border, stride, pad", [POOL_CASES[1], POOL_CASES[2], POOL_CASES[4]])
def test_max_pool_second_order_eager(x_shape, ws, ignore_border, stride, pad):
    """DownsampleFactorMaxGradGrad (the pushforward and the gradient of MaxPoolGrad)."""
    x, gy, y, dx = _pool_graph(x_shape, ws, ignore_border, stride, pad, "max")
    ggx = pt.tensor("ggx", shape=(None,) * len(x_shape))
    ggz = pytensor.grad((dx * ggx).sum(), gy)
    rng = np.random.default_rng(1)
    xv = rng.standard_normal(x_shape)
    ggxv = rng.standard_normal(x_shape)
    gyv = rng.standard_normal(pool_ref(xv, ws, ignore_border, stride, pad).shape)
    got = _run(EAGER, [x, gy, ggx], [ggz], [xv, gyv, ggxv])
    _assert_all_close(got, [max_pool_grad_grad_ref(xv, ggxv, ws, ignore_border, stride, pad)])


def _max_grad_ref(x, gy, ws, ignore_border, stride, pad, rule):
    """Max pooling gradient: rule "first" gives each window's gradient to its first maximum in
    row-major window order (input elements only), "all" to every element equal to the maximum."""
    nd = len(ws)
    stride = ws if stride is None else stride
    y = pool_ref(x, ws, ignore_border, stride, pad)
    gx = np.zeros(x.shape)
    for lead in np.ndindex(*x.shape[:-nd]):
        for pos in np.ndindex(*y.shape[-nd:]):
            starts = [p * s - q for p, s, q in zip(pos, stride, pad)]
            inside = []
            for tap in np.ndindex(*ws):
                idx = tuple(st + t for st, t in zip(starts, tap))
                if all(0 <= i < n for i, n in zip(idx, x.shape[-nd:])):
                    inside.append(idx)
            winners = [i for i in inside if x[lead + i] == y[lead + pos]]
            for idx in winners[:1] if rule == "first" else winners:
                gx[lead + idx] += gy[lead + pos]
    return gx


def _max_grad_op(cls, ignore_border, nd, rule):
    try:
        return cls(ignore_border, ndim=nd, max_grad_ties=rule)
    except TypeError:  # Ops without the max_grad_ties prop: the registration reads the attribute
        op = cls(ignore_border, ndim=nd)
        op.max_grad_ties = rule
        return op


@pytest.mark.parametrize("rule", ["first", "all"])
@pytest.mark.parametrize("x_shape, ws, ignore_border, stride, pad", [POOL_CASES[1], POOL_CASES[2], POOL_CASES[5]])
def test_max_pool_gradient_tie_rules(x_shape, ws, ignore_border, stride, pad, rule):
    """Integer-valued data full of ties, overlapping windows: both tie rules, and GradGrad is the
    adjoint of MaxPoolGrad under each (<MaxPoolGrad(gz), g> = <gz, GradGrad(g)>)."""
    nd = len(ws)
    rng = np.random.default_rng(2)
    xv = rng.integers(0, 3, x_shape).astype(float)
    yv = pool_ref(xv, ws, ignore_border, stride, pad)
    gzv, gv = rng.standard_normal(yv.shape), rng.standard_normal(x_shape)
    x, maxout, gz, g = (
        pt.tensor(n, shape=(None,) * len(s))
        for n, s in (("x", x_shape), ("maxout", yv.shape), ("gz", yv.shape), ("g", x_shape))
    )
    gx = _max_grad_op(pool.MaxPoolGrad, ignore_border, nd, rule)(x, maxout, gz, ws, stride, pad)
    ggz = _max_grad_op(pool.DownsampleFactorMaxGradGrad, ignore_border, nd, rule)(x, maxout, g, ws, stride, pad)
    assert max_grad_ties(gx.owner.op) == rule
    got_gx, got_ggz = _run(EAGER, [x, maxout, gz, g], [gx, ggz], [xv, yv, gzv, gv])
    want = _max_grad_ref(xv, gzv, ws, ignore_border, stride, pad, rule)
    np.testing.assert_allclose(got_gx, want, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(np.vdot(got_gx, gv), np.vdot(gzv, got_ggz), rtol=1e-10)
    if rule == "first":  # a true subgradient: each window's gradient is handed out exactly once
        ones = _run(EAGER, [x, maxout, gz, g], [gx], [xv, yv, np.ones_like(gzv), gv])[0]
        assert ones.sum() == gzv.size


def test_pool_integer_input_and_runtime_geometry():
    """Integer max/sum pooling (no float kernels), and ws/stride/pad given as run-time vectors."""
    x = pt.tensor("x", dtype="int64", shape=(None,) * 3)
    ws, stride = pt.lvector("ws"), pt.lvector("stride")
    outputs = [pool.Pool(True, mode=m, ndim=2)(x, ws, stride, (0, 0)) for m in ("max", "sum")]
    xv = np.random.default_rng(3).integers(-50, 50, (2, 6, 7))
    values = [xv, np.array([2, 3]), np.array([2, 2])]
    got = _run(EAGER, [x, ws, stride], outputs, values)
    want = _run(PY_MODE, [x, ws, stride], outputs, values)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


def test_pool_matches_python_linker_with_nan_and_inf():
    """NaN and -inf inside windows: forward and both gradient rules agree with the Python linker."""
    x = pt.tensor4("x")
    y = pool_2d(x, (2, 2), ignore_border=True, stride=(1, 1), pad=(1, 1))
    outputs = [y, pytensor.grad(y.sum(), x)]
    xv = np.random.default_rng(4).standard_normal((1, 2, 4, 5))
    xv[0, 0, 1, 1] = np.nan
    xv[0, 1, :2, :2] = -np.inf
    got = _run(EAGER, [x], outputs, [xv])
    want = _run(PY_MODE, [x], outputs, [xv])
    _assert_all_close(got, want)


def test_pool_compiled():
    """One ``torch.compile``d function: max (gradient and second order) and average pooling."""
    x = pt.tensor4("x")
    xv = np.random.default_rng(5).standard_normal((2, 3, 7, 6))
    y_max = pool_2d(x, (3, 2), ignore_border=True, stride=(2, 1), pad=(1, 1))
    y_avg = pool_2d(x, (2, 3), ignore_border=False, stride=(2, 2), mode="average_exc_pad")
    y3 = pool_3d(x, (2, 2, 3), ignore_border=True, mode="average_inc_pad")
    gx_max = pytensor.grad((y_max**2).sum(), x)
    second = pytensor.grad((gx_max * pt.cos(x)).sum(), x)  # through DownsampleFactorMaxGradGrad
    outputs = [y_max, y_avg, y3, gx_max, second, pytensor.grad(y_avg.sum() + y3.sum(), x)]
    _assert_all_close(_run(COMPILED, [x], outputs, [xv]), _run(PY_MODE, [x], outputs, [xv]))


@pytest.mark.skipif(not hasattr(pool, "WindowCount"), reason="this version's shape graphs have no WindowCount")
def test_shape_graphs_with_window_count():
    """Pooled and im2col shapes of an input without static shape (``WindowCount`` nodes)."""
    x = pt.tensor4("x")
    y = pool_2d(x, (2, 3), ignore_border=False, stride=(2, 2))
    outputs = [y.shape, im2col_module.Im2Col((2, 2), 1, 1)(x).shape, pt.zeros_like(y) + 1]
    fn = pytensor.function([x], outputs, mode=EAGER)
    assert any(isinstance(n.op, pool.WindowCount) for n in fn.maker.fgraph.apply_nodes)
    xv = np.random.default_rng(13).standard_normal((2, 3, 7, 8))
    _assert_all_close([np.asarray(o) for o in fn(xv)], _run(PY_MODE, [x], outputs, [xv]))
    assert _graph_breaks([x], outputs, [xv]) == []


# ----------------------------------------------------------------------------- im2col
IM2COL_CASES = [
    ((2, 3, 7, 6), (3, 2), (2, 1), ((1, 0), (2, 1)), (1, 2)),
    ((2, 2, 9), (3,), (2,), ((1, 1),), (2,)),
    ((1, 2, 4, 5, 4), (2, 2, 3), (1, 2, 1), ((0, 1), (1, 1), (0, 0)), (1, 1, 1)),
]


@pytest.mark.parametrize("x_shape, kernel, stride, pads, dilation", IM2COL_CASES)
def test_im2col_col2im_eager(x_shape, kernel, stride, pads, dilation):
    """Im2Col against the loop reference; Col2Im is its adjoint; both gradients run."""
    x = pt.tensor("x", shape=(None,) * len(x_shape))
    op = im2col_module.Im2Col(kernel, stride, pads, dilation)
    cols = op(x)
    c = pt.matrix("c")
    back = im2col_module.Col2Im(kernel, stride, pads, dilation)(c, x.shape)
    gx = pytensor.grad((cols * c).sum(), x)
    rng = np.random.default_rng(6)
    xv = rng.standard_normal(x_shape)
    want_cols = im2col_ref(xv, kernel, stride, pads, dilation)
    cv = rng.standard_normal(want_cols.shape)
    got_cols, got_back, got_gx = _run(EAGER, [x, c], [cols, back, gx], [xv, cv])
    np.testing.assert_allclose(got_cols, want_cols, rtol=RTOL)
    np.testing.assert_allclose(np.vdot(got_cols, cv), np.vdot(xv, got_back), rtol=1e-10)
    np.testing.assert_allclose(got_gx, got_back, rtol=RTOL)


def test_col2im_bad_cols_shape():
    c = pt.matrix("c")
    back = im2col_module.Col2Im((2, 2))(c, pt.as_tensor([1, 2, 4, 4]))
    f = pytensor.function([c], back, mode=EAGER)
    with pytest.raises(ValueError, match="cols has shape"):
        f(np.zeros((8, 10)))


# ----------------------------------------------------------------------------- block-sparse
def _block_problem(rng, batch=3, i_blocks=5, o_blocks=4, i_win=2, o_win=3, i_size=3, o_size=2):
    W = rng.standard_normal((i_blocks, o_blocks, i_size, o_size))
    h = rng.standard_normal((batch, i_win, i_size))
    b = rng.standard_normal((o_blocks, o_size))
    i_idx = np.stack([rng.choice(i_blocks, i_win, replace=False) for _ in range(batch)])
    o_idx = np.stack([rng.choice(o_blocks, o_win, replace=False) for _ in range(batch)])
    return W, h, b, i_idx, o_idx


def test_blocksparse_eager():
    """sparse_block_dot forward against loops; gradients (SparseBlockOuter, transposed GEMV)
    against the Python linker; an outer product that hits a block twice accumulates."""
    rng = np.random.default_rng(7)
    Wv, hv, bv, iv, ov = _block_problem(rng)
    W, h, b = pt.tensor4("W"), pt.tensor3("h"), pt.matrix("b")
    i_idx, o_idx = pt.lmatrix("i_idx"), pt.lmatrix("o_idx")
    y = sparse_block_dot(W, h, i_idx, b, o_idx)
    grads = pytensor.grad((y**2).sum(), [W, h, b])
    x, z = pt.tensor3("x"), pt.tensor3("z")
    outer = sparse_block_outer(pt.zeros_like(W), x, z, i_idx, o_idx, 0.5)
    xv, zv = rng.standard_normal((3, 2, 3)), rng.standard_normal((3, 3, 2))
    iv[1] = iv[0]  # two examples hit the same blocks
    inputs, outputs = [W, h, b, i_idx, o_idx, x, z], [y, *grads, outer]
    values = [Wv, hv, bv, iv, ov, xv, zv]
    got = _run(EAGER, inputs, outputs, values)
    np.testing.assert_allclose(got[0], sparse_block_dot_ref(Wv, hv, bv, iv, ov), rtol=RTOL)
    _assert_all_close(got, _run(PY_MODE, inputs, outputs, values))


def test_blocksparse_out_of_range_index_gives_nan():
    rng = np.random.default_rng(8)
    Wv, hv, bv, iv, ov = _block_problem(rng)
    W, h, o = pt.tensor4("W"), pt.tensor3("h"), pt.tensor3("o")
    i_idx, o_idx = pt.lmatrix("i_idx"), pt.lmatrix("o_idx")
    from pytensor_nnet.blocksparse import sparse_block_gemv

    f = pytensor.function([o, W, h, i_idx, o_idx], sparse_block_gemv(o, W, h, i_idx, o_idx), mode=EAGER)
    ov_vals = bv[ov]
    assert np.isfinite(f(ov_vals, Wv, hv, iv, ov)).all()
    bad = iv.copy()
    bad[0, 0] = -1
    assert np.isnan(f(ov_vals, Wv, hv, bad, ov)).all()


# ----------------------------------------------------------------------------- sparse convolution
def test_sparse_convolve_and_max_pool_eager():
    """convolve (valid and full, strides, bias) and max_pool, with gradients wrt kernels,
    images and bias, against the Python linker."""
    images, kerns, bias = pt.matrix("images"), pt.matrix("kerns"), pt.vector("bias")
    maps, outshp = S.convolve(kerns, (3, 2), 4, images, (2, 6, 5), step=(2, 1), bias=bias)
    full, _ = S.convolve(kerns, (3, 2), 4, images, (2, 6, 5), mode="full", flatten=False)
    pooled, _ = S.max_pool(pt.tanh(maps), tuple(int(s) for s in outshp), (2, 2))
    cost = (pooled**2).sum() + (full * pt.sin(full)).sum()
    outputs = [maps, full, pooled, *pytensor.grad(cost, [images, kerns, bias])]
    rng = np.random.default_rng(9)
    values = [rng.standard_normal((3, 60)), rng.standard_normal((4, 12)), rng.standard_normal(4)]
    inputs = [images, kerns, bias]
    _assert_all_close(_run(EAGER, inputs, outputs, values), _run(PY_MODE, inputs, outputs, values))


def test_sparse_conv_compiled_with_ties():
    """Compiled: convolve + max_pool with tied maxima (the gradient goes to the first)."""
    images, kerns = pt.matrix("images"), pt.matrix("kerns")
    maps, outshp = S.convolve(kerns, (2, 2), 2, images, (5, 5))
    pooled, _ = S.max_pool(maps, tuple(int(s) for s in outshp), (2, 2))  # integer data: ties
    outputs = [maps, pooled, *pytensor.grad(pooled.sum(), [images, kerns])]
    rng = np.random.default_rng(10)
    values = [rng.integers(0, 2, (2, 25)).astype(float), rng.integers(0, 2, (2, 4)).astype(float)]
    _assert_all_close(_run(COMPILED, [images, kerns], outputs, values), _run(PY_MODE, [images, kerns], outputs, values))


def test_sparse_conv_with_symbolic_patch_matrix_raises():
    from pytensor_nnet.sparse.convolution import SparseConv

    M = pytensor.sparse.csr_matrix("M")
    out = SparseConv()(pt.matrix("k"), pt.matrix("x"), M)
    with pytest.raises(NotImplementedError, match=r"SparseConv.*PyTorch.*not a constant.*Numba"):
        pytensor.function([out.owner.inputs[0], out.owner.inputs[1], M], out, mode=EAGER)


def test_convolution_indices_symbolic_raises():
    from pytensor_nnet.sparse.convolution import ConvolutionIndices

    inshp, kshp = pt.lvector("inshp"), pt.lvector("kshp")
    outs = ConvolutionIndices("valid", True)(pt.specify_shape(inshp, 2), pt.specify_shape(kshp, 2), (1, 1), 1)
    with pytest.raises(NotImplementedError, match=r"ConvolutionIndices.*PyTorch.*Numba"):
        pytensor.function([inshp, kshp], outs[:2], mode=EAGER)


@pytest.mark.parametrize("draw", ["poisson", "binomial", "multinomial"])
def test_random_sparse_ops_raise(draw):
    p = pytensor.sparse.csr_matrix("p")
    if draw == "poisson":
        out = S.poisson(p, seed=0)
    elif draw == "binomial":
        out = S.csr_fbinomial(1, 0.5, (3, 4), seed=0)
    else:
        out = S.multinomial(3, p, seed=0)
    with pytest.raises(NotImplementedError, match=r"(Poisson|Binomial|Multinomial).*PyTorch.*Numba.*C/Python"):
        pytensor.function([p], out, mode=EAGER, on_unused_input="ignore")


def test_sparse_basic_ops_raise():
    from pytensor_nnet.sparse import basic

    x, y = pytensor.sparse.csr_matrix("x"), pt.matrix("y")
    with pytest.raises(NotImplementedError, match=r"PyTorch"):
        pytensor.function([x, y], basic.dot(x, y), mode=EAGER)


# ----------------------------------------------------------------------------- packaging, device
def test_import_pytensor_nnet_does_not_import_torch():
    code = "import sys, pytensor_nnet; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("mode", [EAGER, COMPILED], ids=["eager", "compiled"])
def test_conv_pool_on_gpu(mode):
    """Inside ``with torch.device("cuda")`` the function runs on the GPU (inputs are moved there)."""
    x, w = pt.tensor4("x"), pt.tensor4("w")
    y = pool_2d(conv2d(x, w, border_mode=((1, 0), 1), num_groups=2), (2, 2), ignore_border=True)
    outputs = [y, *pytensor.grad((y**2).sum(), [x, w])]
    rng = np.random.default_rng(11)
    values = [rng.standard_normal((2, 4, 8, 8)), rng.standard_normal((6, 2, 3, 3))]
    with torch.device("cuda"):
        got = _run(mode, [x, w], outputs, values)
    _assert_all_close(got, _run(PY_MODE, [x, w], outputs, values), rtol=1e-7, atol=1e-8)
