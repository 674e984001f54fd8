"""Sparse x dense product, forward and backward: pytensor_nnet vs scipy vs PyTensor's kernels.

The audit's size: CSR 20000 x 20000 with density 1e-3 (400k stored entries) times a dense
20000 x 64 matrix, in float64 and float32. Everything runs in one process, in interleaved
rounds (each candidate once per round, minimum over the rounds), so the ratios come from one
sitting on a shared, noisy machine.

Candidates
----------
- ``scipy``: ``A @ B`` (forward), ``A.T @ G`` (gradient of B); for the gradient of A's stored
  entries (``G @ B.T`` sampled at A's pattern, no scipy primitive) a numpy gather + einsum.
- ``pytensor numba`` / ``pytensor py``: PyTensor 3's own implementations, compiled *before*
  ``pytensor_nnet.sparse.patch_pytensor_sparse()`` gives PyTensor's sparse Ops ours.
- ``nnet numba``: the same PyTensor graphs compiled after the (opt-in) patch.

Rows ``dot`` / ``structured_dot`` use ``pytensor.sparse.dot`` / ``structured_dot``; the
backward rows differentiate ``sum(G * dot(A, B))`` with respect to ``B`` and (structured_dot,
and ``pytensor_nnet.sparse.dot``) with respect to the data vector of ``A``. A last table
times ``z + dot(A, B)`` with and without the Usmm fusion rewrite.

Usage: ``python benchmarks/bench_sparse_dot.py [--rounds 7] [--size 20000] [--k 64]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pytensor
import pytensor.sparse as ps
import pytensor.tensor as pt
import scipy.sparse as sp


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--density", type=float, default=1e-3)
    parser.add_argument("--rounds", type=int, default=7)
    return parser.parse_args()


def problem(size, k, density, dtype):
    rng = np.random.default_rng(0)
    a = sp.random(size, size, density=density, format="csr", random_state=rng, dtype=dtype)
    b = rng.normal(size=(size, k)).astype(dtype)
    g = rng.normal(size=(size, k)).astype(dtype)
    return a, b, g


def graphs(dtype, dot_fn, structured_fn):
    """Forward and backward graphs for ``dot_fn`` and ``structured_fn`` (CSR ``A``), and the
    forward product of a CSC ``A`` (key ``"dot csc"``)."""
    data = pt.vector("data", dtype=dtype)
    indices = pt.ivector("indices")
    indptr = pt.ivector("indptr")
    shape = pt.ivector("shape")
    b = pt.matrix("b", dtype=dtype)
    g = pt.matrix("g", dtype=dtype)
    a = ps.CSR(data, indices, indptr, shape)
    inputs = [data, indices, indptr, shape, b, g]
    out = {"dot csc": (inputs[:5], [dot_fn(ps.CSC(data, indices, indptr, shape), b)])}
    for name, fn in (("dot", dot_fn), ("structured_dot", structured_fn)):
        if fn is None:
            continue
        z = fn(a, b)
        out[name] = (inputs[:5], [z])
        cost = (z * g).sum()
        wrt = [b, data]
        try:
            grads = pytensor.grad(cost, wrt)
        except Exception:  # PyTensor's dot cannot differentiate through CSM
            grads = [pytensor.grad(cost, b), None]
        out[name + " grad"] = (inputs, [grads[0]])
        if grads[1] is not None:
            out[name + " grad data"] = (inputs, [grads[1]])
    return out


def compile_all(graph_dict, mode):
    return {
        name: pytensor.function(ins, outs, mode=mode, on_unused_input="ignore", trust_input=True)
        for name, (ins, outs) in graph_dict.items()
    }


def timed(fn, args):
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def run_rounds(candidates, rounds):
    """``{name: min seconds}`` over interleaved rounds (every candidate once per round)."""
    best = {name: np.inf for name in candidates}
    for fn, args in candidates.values():  # warm up / compile
        fn(*args)
    for _ in range(rounds):
        for name, (fn, args) in candidates.items():
            best[name] = min(best[name], timed(fn, args))
    return best


def print_table(title, best):
    """Markdown table of ``{name: seconds}``, ratios to the first row."""
    ref = next(iter(best.values()))
    print(f"### {title}\n")
    print("| implementation | ms | ratio |")
    print("|---|---|---|")
    for name, sec in best.items():
        print(f"| {name} | {sec * 1e3:.2f} | {sec / ref:.2f} |")
    print()


def call(fn, args):
    result = fn(*args)
    return result[0] if isinstance(result, list) else result


def check_close(candidates, reference, rtol):
    """Every candidate's result equals the reference before anything is timed."""
    for name, (fn, args) in candidates.items():
        np.testing.assert_allclose(call(fn, args), reference, rtol=rtol, atol=rtol * 10, err_msg=name)


def main():
    args = parse_args()
    dtypes = ("float64", "float32")
    problems = {dt: problem(args.size, args.k, args.density, dt) for dt in dtypes}

    # PyTensor's own implementations, compiled before the opt-in patch replaces them
    pytensor_numba = {dt: compile_all(graphs(dt, ps.dot, ps.structured_dot), "NUMBA") for dt in dtypes}
    pytensor_py = {dt: compile_all(graphs(dt, ps.dot, ps.structured_dot), "FAST_COMPILE") for dt in dtypes}

    import pytensor_nnet.sparse as nsp

    nsp.patch_pytensor_sparse()  # our kernels and rewrites for PyTensor's own sparse Ops

    nnet_numba = {dt: compile_all(graphs(dt, ps.dot, ps.structured_dot), "NUMBA") for dt in dtypes}
    nnet_numba_ours = {dt: compile_all(graphs(dt, nsp.dot, None), "NUMBA") for dt in dtypes}

    print(
        f"CSR {args.size}x{args.size}, density {args.density:g} "
        f"({problems['float64'][0].nnz} stored), times dense {args.size}x{args.k}; "
        f"min of {args.rounds} interleaved rounds, ms (ratio to scipy)\n"
    )

    for dt in dtypes:
        a, b, g = problems[dt]
        at = a.T.tocsr()  # scipy's best layout for the transposed product, built once
        ac = a.tocsc()
        ins = [a.data, a.indices, a.indptr, np.asarray(a.shape, dtype="int32"), b, g]
        ins_csc = [ac.data, ac.indices, ac.indptr, np.asarray(a.shape, dtype="int32"), b]
        rows = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
        cols = a.indices

        def sampled_numpy(g=g, b=b, rows=rows, cols=cols):
            return np.einsum("ij,ij->i", g[rows], b[cols])

        tables = {
            "forward": {
                "scipy A @ B": (lambda a=a, b=b: a @ b, ()),
                "pytensor numba dot": (pytensor_numba[dt]["dot"], ins[:5]),
                "pytensor numba structured_dot": (pytensor_numba[dt]["structured_dot"], ins[:5]),
                "pytensor py dot": (pytensor_py[dt]["dot"], ins[:5]),
                "pytensor py structured_dot": (pytensor_py[dt]["structured_dot"], ins[:5]),
                "nnet numba dot": (nnet_numba[dt]["dot"], ins[:5]),
                "nnet numba structured_dot": (nnet_numba[dt]["structured_dot"], ins[:5]),
            },
            "forward, A in CSC": {
                "scipy A @ B": (lambda ac=ac, b=b: ac @ b, ()),
                "pytensor numba dot": (pytensor_numba[dt]["dot csc"], ins_csc),
                "pytensor py dot": (pytensor_py[dt]["dot csc"], ins_csc),
                "nnet numba dot": (nnet_numba[dt]["dot csc"], ins_csc),
            },
            "backward, gradient of B (A.T @ G)": {
                "scipy A.T @ G (A.T as csc)": (lambda a=a, g=g: a.T @ g, ()),
                "scipy A.T @ G (A.T as csr)": (lambda at=at, g=g: at @ g, ()),
                "pytensor numba dot": (pytensor_numba[dt]["dot grad"], ins),
                "pytensor numba structured_dot": (pytensor_numba[dt]["structured_dot grad"], ins),
                "pytensor py dot": (pytensor_py[dt]["dot grad"], ins),
                "nnet numba dot": (nnet_numba[dt]["dot grad"], ins),
                "nnet numba structured_dot": (nnet_numba[dt]["structured_dot grad"], ins),
            },
            "backward, gradient of A's data (G @ B.T at A's pattern)": {
                "numpy gather + einsum": (sampled_numpy, ()),
                "pytensor numba structured_dot": (pytensor_numba[dt]["structured_dot grad data"], ins),
                "pytensor py structured_dot": (pytensor_py[dt]["structured_dot grad data"], ins),
                "nnet numba structured_dot": (nnet_numba[dt]["structured_dot grad data"], ins),
                "nnet numba pytensor_nnet.sparse.dot": (nnet_numba_ours[dt]["dot grad data"], ins),
            },
        }
        rtol = 1e-4 if dt == "float32" else 1e-8
        references = (a @ b, a @ b, a.T @ g, sampled_numpy())
        for candidates, reference in zip(tables.values(), references):
            check_close(candidates, reference, rtol)
        for title, candidates in tables.items():
            print_table(f"{dt}: {title}", run_rounds(candidates, args.rounds))

    # Usmm fusion: z + dot(A, B), fused (default) vs excluded
    from pytensor_nnet.sparse_basic.rewriting import USMM_FUSION

    for dt in dtypes:
        a, b, _g = problems[dt]
        z_val = np.random.default_rng(1).normal(size=(a.shape[0], args.k)).astype(dt)
        x = ps.csr_matrix("x", dtype=dt)
        bm = pt.matrix("b", dtype=dt)
        z = pt.matrix("z", dtype=dt)
        expr = z - 0.5 * ps.dot(x, bm)
        mode = pytensor.compile.mode.get_mode("NUMBA")
        fused = pytensor.function([x, bm, z], expr, mode=mode, trust_input=True)
        unfused = pytensor.function([x, bm, z], expr, mode=mode.excluding(USMM_FUSION), trust_input=True)
        assert any(type(n.op).__name__ == "Usmm" for n in fused.maker.fgraph.apply_nodes)
        ref = z_val - 0.5 * (a @ b)
        for f in (fused, unfused):
            tol = 1e-4 if dt == "float32" else 1e-8
            np.testing.assert_allclose(f(a, b, z_val), ref, rtol=tol, atol=tol)
        print_table(
            f"{dt}: z - 0.5 * dot(A, B)",
            run_rounds(
                {
                    "scipy z - 0.5 * (A @ B)": (lambda a=a, b=b, z_val=z_val: z_val - 0.5 * (a @ b), ()),
                    "nnet numba, Usmm fusion": (fused, (a, b, z_val)),
                    "nnet numba, fusion excluded": (unfused, (a, b, z_val)),
                },
                args.rounds,
            ),
        )


if __name__ == "__main__":
    main()
