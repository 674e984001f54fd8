"""The kernels called across the boundary of ``dispatch/numba/boundary.py``: a new graph does not
compile them again, refused arguments raise, and a long first compile is announced once."""

import logging
import re

import numba
import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pytensor_nnet import conv2d
from pytensor_nnet.dispatch.numba import boundary
from pytensor_nnet.dispatch.numba import conv as numba_conv
from pytensor_nnet.pool import pool_2d
from tests.reference.conv import conv_ref


def _step(border_mode, dtype="float64"):
    x, w = pt.tensor4("x", dtype=dtype), pt.tensor4("w", dtype=dtype)
    h = pt.maximum(conv2d(x, w, border_mode=border_mode), 0)
    loss = (pool_2d(h, (2, 2), ignore_border=True) ** 2).sum()
    return pytensor.function([x, w], [h, *pytensor.grad(loss, [x, w])], mode="NUMBA")


def _glue_llvm(node, funcify, *inputs):
    """LLVM of a node's compiled function (linked modules included), compiled outside any cache."""
    fn, _ = funcify(node.op, node)
    wrapper = numba.njit(lambda *args: fn(*args))
    wrapper(*inputs)
    return "\n".join(wrapper.inspect_llvm().values())


def test_the_graph_declares_the_kernels_instead_of_linking_them():
    x, w = pt.tensor4("x"), pt.tensor4("w")
    y = conv2d(x, w, border_mode=1)
    llvm = _glue_llvm(y.owner, numba_conv.numba_funcify_AbstractConv, np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)))
    defined = re.findall(r"^define [^@]*@\"?([^\"(]+)", llvm, re.M)
    declared = re.findall(r"^declare [^@]*@\"?([^\"(]+)", llvm, re.M)
    assert any(name.startswith("pytensor_nnet_conv_corr_forward_c_float64_") for name in declared)
    assert not [name for name in defined if "im2col" in name or "forward_into" in name or "gemm" in name]


def test_a_new_graph_reuses_the_compiled_kernels():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 9, 9)), rng.standard_normal((4, 3, 3, 3))
    _step(1)(x, w)
    registered = dict(boundary._registered)
    h, dx, dw = _step(2)(x, w)
    assert boundary._registered == registered  # no new C entry point
    names = " ".join(registered)
    for entry in ("corr_forward_c", "corr_grad_inputs_c", "corr_grad_weights_c", "pool_forward_c", "max_pool_grad_c"):
        assert f"_{entry}_float64_" in names
    np.testing.assert_allclose(h, np.maximum(conv_ref(x, w, border_mode=2), 0), rtol=1e-10, atol=1e-12)
    assert dx.shape == x.shape and dw.shape == w.shape


def test_refused_arguments_raise_instead_of_writing_out_of_bounds():
    call = numba_conv._boundary_call(numba_conv.corr_forward_c, "float64")

    @numba.njit  # the graph's functions have no Python wrapper: call it from compiled code
    def forward(x, w, out):
        call(x, w, out, (1, 1, 1), (0, 0, 0), (0, 0, 0), (1, 1, 1), 1, 2**20)

    x, w = np.ones((1, 2, 1, 5, 5)), np.ones((3, 2, 1, 3, 3))
    wrong_out = np.zeros((1, 3, 1, 4, 4))  # the output is (1, 3, 1, 3, 3)
    with pytest.raises(ValueError, match="refused its arguments"):
        forward(x, w, wrong_out)
    assert not wrong_out.any()
    out = np.zeros((1, 3, 1, 3, 3))
    forward(x, w, out)
    np.testing.assert_allclose(out, 18.0)


def _tiny_body(a, b, c, out, meta):
    n = numba.carray(meta, (1,))[0]
    for i in range(n):
        out[i] = a[i] + b[i]
    return 0


def test_a_long_first_compile_is_announced_once(monkeypatch, caplog):
    monkeypatch.setattr(boundary, "SLOW_COMPILE_NOTICE_S", 0.0)
    monkeypatch.setattr(boundary, "_noticed", type(boundary._noticed)())
    monkeypatch.setattr(boundary, "_registered", {})
    with caplog.at_level(logging.INFO, logger="pytensor_nnet"):
        kernel = boundary.external_kernel(_tiny_body, "float64", "tiny")
        boundary.external_kernel(_tiny_body, "float32", "tiny")
    notices = [r for r in caplog.records if r.levelno == logging.INFO and "compiling its kernels" in r.message]
    assert len(notices) == 1

    @numba.njit
    def add(a, b):
        out = np.empty_like(a)
        meta = np.array([a.shape[0]], dtype=np.int64)
        kernel(a.ctypes, b.ctypes, a.ctypes, out.ctypes, meta.ctypes)
        return out

    np.testing.assert_array_equal(add(np.arange(3.0), np.ones(3)), [1.0, 2.0, 3.0])
