"""The sparse rewrites of pytensor_nnet: Usmm fusion in Numba mode, sampled CSM gradients."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.sparse as ps
import pytensor.sparse.math as psm
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from pytensor.compile.mode import get_mode

import pytensor_nnet.sparse as nsp
from pytensor_nnet.sparse_basic.rewriting import CSM_GRAD_SAMPLED_DOT, USMM_FUSION
from tests.backends import C_MODE

pytestmark = pytest.mark.filterwarnings("error:Numba will use object mode:UserWarning")

RNG = np.random.default_rng(7)


def op_names(fn):
    return [type(node.op).__name__ for node in fn.maker.fgraph.toposort()]


def fusion_cases(dtype):
    """``{name: (expression, numpy reference)}``: each case has its own product."""
    x = ps.csr_matrix("x", dtype=dtype)
    xc = ps.csc_matrix("xc", dtype=dtype)
    z = pt.matrix("z", dtype=dtype)
    zt = pt.matrix("zt", dtype=dtype)
    a = pt.scalar("a", dtype=dtype)
    b = pt.vector("b", dtype=dtype)
    ws = [pt.matrix(f"w{k}", dtype=dtype) for k in range(8)]
    inputs = [x, xc, z, zt, a, b, *ws]
    values = {
        "x": sp.random(6, 5, density=0.4, format="csr", random_state=1, dtype=dtype),
        "xc": sp.random(6, 5, density=0.4, format="csc", random_state=2, dtype=dtype),
        "z": RNG.normal(size=(6, 3)).astype(dtype),
        "zt": RNG.normal(size=(3, 5)).astype(dtype),
        "a": np.asarray(0.7, dtype=dtype),
        "b": RNG.normal(size=3).astype(dtype),
        **{f"w{k}": RNG.normal(size=(5, 3)).astype(dtype) for k in range(8)},
    }
    wt = pt.matrix("wt", dtype=dtype)
    inputs.append(wt)
    values["wt"] = RNG.normal(size=(3, 6)).astype(dtype)
    X, XC = values["x"].toarray(), values["xc"].toarray()
    Z, ZT, A, B, WT = values["z"], values["zt"], values["a"], values["b"], values["wt"]
    W = [values[f"w{k}"] for k in range(8)]
    cases = {
        "z - a * dot": (z - a * ps.dot(x, ws[0]), Z - A * X @ W[0]),
        "z + 2 * dot": (z + 2 * ps.dot(x, ws[1]), Z + 2 * X @ W[1]),
        "dot + z": (ps.dot(x, ws[2]) + z, X @ W[2] + Z),
        "dot + row": (ps.dot(x, ws[3]) + b, X @ W[3] + B),
        "z - dot (csc)": (z - ps.dot(xc, ws[4]), Z - XC @ W[4]),
        "dot - z": (ps.dot(x, ws[5]) - z, X @ W[5] - Z),
        "ours: dot * a + z": (nsp.dot(x, ws[6]) * a + z, X @ W[6] * A + Z),
        "dense x sparse": (zt + ps.dot(wt, xc), ZT + WT @ XC),
    }
    return inputs, values, cases


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_usmm_fusion_numba(dtype):
    inputs, values, cases = fusion_cases(dtype)
    names = list(cases)
    fn = pytensor.function(inputs, [cases[n][0] for n in names], mode="NUMBA", on_unused_input="ignore")
    ops = op_names(fn)
    assert ops.count("Usmm") == len(cases)
    assert "SparseDot" not in [str(node.op) for node in fn.maker.fgraph.apply_nodes]
    outputs = fn(*[values[v.name] for v in inputs])
    tol = 1e-5 if dtype == "float32" else 1e-12
    for name, out in zip(names, outputs):
        assert out.dtype == dtype, name
        np.testing.assert_allclose(out, cases[name][1], rtol=tol, atol=tol, err_msg=name)


def test_usmm_fusion_only_in_numba_and_can_be_excluded():
    x = ps.csr_matrix("x")
    w, z = pt.matrix("w"), pt.matrix("z")
    expr = z - 0.5 * ps.dot(x, w)
    for mode in ("FAST_COMPILE", C_MODE, get_mode("NUMBA").excluding(USMM_FUSION)):
        fn = pytensor.function([x, w, z], expr, mode=mode)
        assert "Usmm" not in op_names(fn)


def test_usmm_fusion_skips_a_shared_product():
    x = ps.csr_matrix("x")
    w, z = pt.matrix("w"), pt.matrix("z")
    d = ps.dot(x, w)
    fn = pytensor.function([x, w, z], [z + d, d * 2], mode="NUMBA")
    assert "Usmm" not in op_names(fn)
    xv = sp.random(4, 3, density=0.5, format="csr", random_state=3)
    wv, zv = RNG.normal(size=(3, 2)), RNG.normal(size=(4, 2))
    out, twice = fn(xv, wv, zv)
    np.testing.assert_allclose(out, zv + xv @ wv)
    np.testing.assert_allclose(twice, 2 * (xv @ wv))


def _grad_graph(fmt):
    """Gradients of the data of a CSM through ``pytensor_nnet.sparse.dot`` (both sides)."""
    a = sp.random(6, 5, density=0.4, format=fmt, random_state=4)
    data = pt.vector("data")
    w = pt.matrix("w")
    v = pt.matrix("v")
    x = ps.CSM(fmt)(data, a.indices, a.indptr, a.shape)
    cost = (nsp.dot(x, w) ** 2).sum() + (nsp.dot(v, x) * 3).sum()
    g = pytensor.grad(cost, data)
    values = [a.data, RNG.normal(size=(5, 3)), RNG.normal(size=(2, 6))]
    # reference: dense gradient sampled at the pattern
    dense = a.toarray()
    full = 2 * (dense @ values[1]) @ values[1].T + 3 * values[2].T @ np.ones((2, 5))
    rows, cols = a.nonzero()
    order = np.lexsort((cols, rows) if fmt == "csr" else (rows, cols))
    return [data, w, v], g, values, full[rows[order], cols[order]]


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("mode", ["NUMBA", "C"])
def test_csm_grad_sampled_dot(fmt, mode):
    inputs, g, values, expected = _grad_graph(fmt)
    mode = C_MODE.excluding("local_usmm_csx") if mode == "C" else mode
    fn = pytensor.function(inputs, g, mode=mode)
    ops = op_names(fn)
    assert "SparseFromDense" not in ops and "CSMGrad" not in ops
    assert ops.count(f"StructuredDotGrad{fmt.upper()}") == 2
    np.testing.assert_allclose(fn(*values), expected)
    excluded = pytensor.function(inputs, g, mode=get_mode("NUMBA").excluding(CSM_GRAD_SAMPLED_DOT))
    assert "CSMGrad" in op_names(excluded)
    np.testing.assert_allclose(excluded(*values), expected)
    python = pytensor.function(inputs, g, mode="FAST_COMPILE")
    assert "CSMGrad" in op_names(python)
    np.testing.assert_allclose(python(*values), expected)


def test_usmm_op_directly():
    # PyTensor's usmm with a 0-d alpha: our Numba implementation handles every alpha shape
    x = ps.csc_matrix("x")
    y, z = pt.matrix("y"), pt.matrix("z")
    alpha = pt.scalar("alpha")
    fn = pytensor.function([alpha, x, y, z], psm.usmm(alpha, x, y, z), mode="NUMBA")
    xv = sp.random(4, 3, density=0.5, format="csc", random_state=5)
    yv, zv = RNG.normal(size=(3, 2)), RNG.normal(size=(1, 2))
    np.testing.assert_allclose(fn(1.5, xv, yv, zv), 1.5 * xv @ yv + zv)
    with pytest.raises(ValueError, match="does not broadcast"):
        fn(1.5, xv, yv, RNG.normal(size=(3, 2)))
