"""Every Op of the pytensor.sparse audit against numpy/scipy, in Numba, Python and C modes.

The references are written on dense numpy arrays (``toarray()`` sums duplicates), so they are
independent of both PyTensor's ``perform`` and our Numba implementations. One compiled
function per (mode, format) evaluates all the Ops at once to keep compilation time low.
Inputs are "messy": unsorted indices, duplicate entries and stored zeros.

Numba-mode tests turn PyTensor's object-mode warning into an error, so any Op of the list
falling back to object mode fails the test.
"""

from __future__ import annotations

import functools

import numpy as np
import pytensor
import pytensor.sparse as ps
import pytensor.sparse.math as psm
import pytensor.tensor as pt
import pytest
import scipy.linalg
import scipy.sparse as sp
from pytensor.link.numba.dispatch.basic import numba_funcify
from pytensor.sparse.linalg import SparseBlockDiagonal, block_diag

import pytensor_nnet  # noqa: F401
from pytensor_nnet.compat import sparse_math_op
from pytensor_nnet.sparse_basic.patch import pytensor_classes_to_patch
from tests.backends import C_MODE

OBJMODE_IS_ERROR = pytest.mark.filterwarnings("error:Numba will use object mode:UserWarning")
pytestmark = OBJMODE_IS_ERROR

# The Ops that ran in object mode in PyTensor 3.0.7 (audit), plus the ones whose Numba
# implementation this package replaces.
COVERED_OPS = [
    ps.CSMGrad,
    ps.ConstructSparseFromList,
    ps.EnsureSortedIndices,
    ps.Remove0,
    SparseBlockDiagonal,
    sparse_math_op("AddSparseSparse"),
    sparse_math_op("AddSparseSparseData"),
    sparse_math_op("AddSparseDense"),
    sparse_math_op("StructuredAddSparseDenseVector"),
    sparse_math_op("MultiplySparseSparse"),
    psm.TrueDot,
    psm.SamplingDot,
    psm.Usmm,
    sparse_math_op("EqualSparseSparse"),
    sparse_math_op("NotEqualSparseSparse"),
    sparse_math_op("LessThanSparseSparse"),
    sparse_math_op("GreaterThanSparseSparse"),
    sparse_math_op("LessEqualSparseSparse"),
    sparse_math_op("GreaterEqualSparseSparse"),
    sparse_math_op("EqualSparseDense"),
    sparse_math_op("NotEqualSparseDense"),
    sparse_math_op("LessThanSparseDense"),
    sparse_math_op("GreaterThanSparseDense"),
    sparse_math_op("LessEqualSparseDense"),
    sparse_math_op("GreaterEqualSparseDense"),
    psm.Dot,
    psm.StructuredDot,
    psm.StructuredDotGradCSR,
    psm.StructuredDotGradCSC,
    ps.Cast,
    ps.DenseFromSparse,
]


# ---------------------------------------------------------------------------------------------
# Messy sparse matrices


def compressed(rows, cols, vals, shape, fmt, rng):
    """A CSR/CSC matrix storing exactly these entries, shuffled inside each major slice."""
    rows = np.asarray(rows)
    cols = np.asarray(cols)
    vals = np.asarray(vals)
    major, minor = (rows, cols) if fmt == "csr" else (cols, rows)
    n_major = shape[0] if fmt == "csr" else shape[1]
    order = np.lexsort((rng.random(len(vals)), major))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(major, minlength=n_major))])
    cls = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
    return cls((vals[order], minor[order].astype(np.int32), indptr.astype(np.int32)), shape=shape)


def messy(shape, fmt, seed, dtype="float64", density=0.5, duplicates=True):
    """Random matrix with unsorted indices, a duplicated entry and a stored zero."""
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < density
    rows, cols = np.nonzero(mask)
    vals = rng.normal(size=len(rows))
    if duplicates:  # split the first entry in two
        rows = np.concatenate([rows, rows[:1]])
        cols = np.concatenate([cols, cols[:1]])
        vals = np.concatenate([vals, vals[:1] * 0.25])
        vals[0] *= 0.75
    # store a zero at an empty position
    empty = np.argwhere(~mask)
    if len(empty):
        rows = np.concatenate([rows, empty[:1, 0]])
        cols = np.concatenate([cols, empty[:1, 1]])
        vals = np.concatenate([vals, [0.0]])
    return compressed(rows, cols, vals.astype(dtype), shape, fmt, rng)


def test_messy_is_messy():
    m = messy((5, 4), "csr", 0)
    assert not m.has_canonical_format
    assert (m.data == 0).any()
    np.testing.assert_allclose(m.toarray(), sp.csr_matrix(m.toarray()).toarray())


def test_every_covered_op_has_a_numba_implementation():
    fallback = numba_funcify.registry[object]
    missing = [op.__name__ for op in COVERED_OPS if numba_funcify.dispatch(op) is fallback]
    assert missing == []


# ---------------------------------------------------------------------------------------------
# All Ops in one function


def _other(fmt):
    return "csc" if fmt == "csr" else "csr"


def build_graph(fmt):
    """Symbolic inputs and ``{name: output}`` for every Op of the audit table."""
    x = ps.matrix(fmt, "x", dtype="float64")
    y = ps.matrix(fmt, "y", dtype="float64")
    yo = ps.matrix(_other(fmt), "yo", dtype="float64")
    x32 = ps.matrix(fmt, "x32", dtype="float32")
    d = pt.matrix("d")  # same shape as x (5, 4)
    w = pt.matrix("w")  # (4, 3)
    r = pt.matrix("r")  # (5, 3)
    q = pt.matrix("q")  # (4, 3)
    v = pt.vector("v")  # (4,)
    vals = pt.matrix("vals")  # (3, 4)
    ilist = pt.ivector("ilist")  # (3,)
    xc = ps.matrix(fmt, "xc", dtype="float64")  # no duplicates: gradients through CSM
    data, indices, indptr, shape = ps.csm_properties(xc)
    rebuilt = ps.CSM(fmt)(data * 2, indices, indptr, shape)
    i = pt.iscalar("i")

    outs = {
        "csm_properties.data_sum": data.sum(),
        "csm": rebuilt,
        "csr_from_dense": ps.csr_from_dense(d),
        "csc_from_dense": ps.csc_from_dense(d),
        "dense_from_sparse": ps.dense_from_sparse(x),
        "cast32": ps.cast(x, "float32"),
        "cast64": ps.cast(x32, "float64"),
        "dot": ps.dot(x, w),
        "dot_dense_left": ps.dot(r.T, x),
        "dot_vector": ps.dot(x, v),
        "dot_mixed_dtypes": ps.dot(x32, w),
        "dot_strided_dense": ps.dot(x, vals.T),
        "structured_dot_float32": ps.structured_dot(x32, pt.cast(w, "float32")),
        "dot_sparse": ps.dot(x, yo.T),
        "structured_dot": ps.structured_dot(x, w),
        "structured_dot_sparse": ps.structured_dot(x, yo.T),
        "true_dot_dense": ps.true_dot(x, w),
        "true_dot_sparse": ps.true_dot(x, yo.T),
        "sampling_dot": ps.sampling_dot(r, q, x),
        "usmm": psm.usmm(pt.constant(np.full((1, 1), -0.5)), x, w, r),
        "usmm_dense_sparse": psm.usmm(pt.constant(np.full((1, 1), 2.0)), r.T, x, q.T),
        "getitem2d": x[1:4, ::2],
        "getitem_scalar": x[i, 1],
        "sp_sum0": ps.sp_sum(x, axis=0),
        "sp_sum_all": ps.sp_sum(x),
        "add_ss": ps.add(x, y),
        "add_ss_mixed_formats": ps.add(x, yo),
        "add_ss_data": psm.add_s_s_data(x, x),
        "add_sd": ps.add(x, d),
        "sub_sd": ps.sub(d, x),
        "structured_add_s_v": psm.structured_add_s_v(x, v),
        "mul_ss": ps.multiply(x, yo),
        "ensure_sorted_indices": ps.ensure_sorted_indices(x),
        "ensure_sorted_inplace": ps.EnsureSortedIndices(inplace=True)(x),
        "remove0": ps.remove0(x),
        "clean": ps.clean(x),
        "construct_sparse_from_list": ps.construct_sparse_from_list(d, vals, ilist),
        "block_diag": block_diag(x, r, yo, format=fmt),
        "csm_grad": pytensor.grad((ps.DenseFromSparse(structured=False)(rebuilt) * d).sum(), data),
        "structured_dot_grad": pytensor.grad((ps.structured_dot(rebuilt, w) * r).sum(), data),
    }
    for name, cmp in (("eq", ps.eq), ("neq", ps.neq), ("lt", ps.lt), ("gt", ps.gt), ("le", ps.le), ("ge", ps.ge)):
        outs[f"{name}_ss"] = cmp(x, y)
        outs[f"{name}_sd"] = cmp(x, d)
    inputs = [x, xc, y, yo, x32, d, w, r, q, v, vals, ilist, i]
    return inputs, outs


def input_values(fmt, seed=0, canonical=False):
    """Inputs of :func:`build_graph`; ``canonical`` sums duplicates, drops stored zeros, sorts."""
    rng = np.random.default_rng(seed)
    x = messy((5, 4), fmt, seed)
    values = {
        "x": x,
        "xc": messy((5, 4), fmt, seed + 4, duplicates=False),
        "y": messy((5, 4), fmt, seed + 1),
        "yo": messy((5, 4), _other(fmt), seed + 2),
        "x32": messy((5, 4), fmt, seed + 3, dtype="float32"),
        "d": np.round(rng.normal(size=(5, 4)), 1),
        "w": rng.normal(size=(4, 3)),
        "r": rng.normal(size=(5, 3)),
        "q": rng.normal(size=(4, 3)),
        "v": rng.normal(size=4),
        "vals": rng.normal(size=(3, 4)),
        "ilist": np.array([4, 0, 4], dtype=np.int32),
        "i": np.int32(-2),
    }
    if canonical:
        for value in values.values():
            if sp.issparse(value):
                value.sum_duplicates()
                value.eliminate_zeros()
    return values


def references(vals, fmt):
    """Dense numpy results of every output of :func:`build_graph`."""
    X = vals["x"].toarray()
    Y = vals["y"].toarray()
    YO = vals["yo"].toarray()
    X32 = vals["x32"].toarray()
    d, w, r, q, v = (vals[k] for k in "dwrqv")
    x = vals["xc"]
    XC = x.toarray()
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr)) if fmt == "csr" else x.indices
    cols = x.indices if fmt == "csr" else np.repeat(np.arange(x.shape[1]), np.diff(x.indptr))
    nnz = x.indptr[-1]
    G = r @ w.T  # gradient of sum(structured_dot(xc, w) * r) wrt xc
    construct = np.zeros((5, 4))
    for k, row in enumerate(vals["ilist"]):
        construct[row] += vals["vals"][k]
    ref = {
        "csm_properties.data_sum": vals["xc"].data.sum(),
        "csm": 2 * XC,
        "csr_from_dense": d,
        "csc_from_dense": d,
        "dense_from_sparse": X,
        "cast32": X.astype("float32"),
        "cast64": X32.astype("float64"),
        "dot": X @ w,
        "dot_dense_left": r.T @ X,
        "dot_vector": X @ v,
        "dot_mixed_dtypes": X32.astype("float64") @ w,
        "dot_strided_dense": X @ vals["vals"].T,
        "structured_dot_float32": X32 @ w.astype("float32"),
        "dot_sparse": X @ YO.T,
        "structured_dot": X @ w,
        "structured_dot_sparse": X @ YO.T,
        "true_dot_dense": X @ w,
        "true_dot_sparse": X @ YO.T,
        "sampling_dot": X * (r @ q.T),
        "usmm": -0.5 * X @ w + r,
        "usmm_dense_sparse": 2.0 * r.T @ X + q.T,
        "getitem2d": X[1:4, ::2],
        "getitem_scalar": X[-2, 1],
        "sp_sum0": X.sum(axis=0),
        "sp_sum_all": X.sum(),
        "add_ss": X + Y,
        "add_ss_mixed_formats": X + YO,
        "add_ss_data": 2 * X,
        "add_sd": X + d,
        "sub_sd": d - X,
        "structured_add_s_v": np.where(X != 0, X + v, 0.0),
        "mul_ss": X * YO,
        "ensure_sorted_indices": X,
        "ensure_sorted_inplace": X,
        "remove0": X,
        "clean": X,
        "construct_sparse_from_list": construct,
        "block_diag": scipy.linalg.block_diag(X, r, YO),
        "csm_grad": np.concatenate([2 * d[rows, cols], np.zeros(len(x.data) - nnz)]),
        "structured_dot_grad": np.concatenate([2 * G[rows, cols], np.zeros(len(x.data) - nnz)]),
    }
    for name, op in (
        ("eq", np.equal),
        ("neq", np.not_equal),
        ("lt", np.less),
        ("gt", np.greater),
        ("le", np.less_equal),
        ("ge", np.greater_equal),
    ):
        ref[f"{name}_ss"] = op(X, Y).astype("uint8")
        ref[f"{name}_sd"] = op(X, d).astype("uint8")
    return ref


# Stored structure checked on top of the values: sorted indices and no stored zeros where the
# Op promises them in every mode ...
SORTED = {"ensure_sorted_indices", "ensure_sorted_inplace", "clean"}
# PyTensor's perform of EnsureSortedIndices(inplace=True) returns None (scipy's sort_indices)
NUMBA_ONLY = {"ensure_sorted_inplace"}
NO_ZEROS = {"remove0", "clean"}
# ... and canonical outputs (sorted, no duplicates) of the Numba implementations.
CANONICAL_NUMBA = {
    "add_ss",
    "add_ss_mixed_formats",
    "mul_ss",
    "structured_add_s_v",
    "true_dot_dense",
    "true_dot_sparse",
    "sampling_dot",
    "block_diag",
    "eq_ss",
    "lt_ss",
    "getitem2d",
}
NO_ZEROS_NUMBA = {"add_ss", "mul_ss", "structured_add_s_v", "true_dot_dense", "lt_ss"}
# Outputs of Ops that keep PyTensor's own Numba implementation where it has one (newer
# releases): the promises above are ours, not checked for PyTensor's.
UPSTREAM_CAN_OWN = {
    "add_ss": "AddSparseSparse",
    "add_ss_mixed_formats": "AddSparseSparse",
    "mul_ss": "MultiplySparseSparse",
    "structured_add_s_v": "StructuredAddSparseDenseVector",
    "add_sd": "AddSparseDense",
    "add_ss_data": "AddSparseSparseData",
}


def ours_in_numba(name):
    op_name = UPSTREAM_CAN_OWN.get(name)
    return op_name is None or sparse_math_op(op_name) in pytensor_classes_to_patch()


@functools.cache
def inplace_ops_allowed_in_user_graphs():
    """Newer PyTensor releases refuse to compile a user graph holding an inplace Op."""
    x = ps.csr_matrix("x")
    try:
        pytensor.function([x], ps.EnsureSortedIndices(inplace=True)(x), mode="FAST_COMPILE")
    except TypeError:
        return False
    return True


def check_outputs(names, outputs, ref, out_vars, fmt, atol, numba=False):
    for name, value, var in zip(names, outputs, out_vars):
        expected = ref[name]
        if isinstance(var.type, ps.SparseTensorType):
            assert sp.issparse(value), name
            assert value.format == var.type.format, name
            assert value.dtype == var.type.dtype, name
            ours = numba and ours_in_numba(name)
            if name in SORTED or (ours and name in CANONICAL_NUMBA):
                assert value.has_sorted_indices, name
            if ours and name in CANONICAL_NUMBA:
                assert value.has_canonical_format, name
            if name in NO_ZEROS or (ours and name in NO_ZEROS_NUMBA):
                assert (value.data[: value.indptr[-1]] != 0).all(), name
            value = value.toarray()
        else:
            assert np.asarray(value).dtype == var.type.dtype, name
        np.testing.assert_allclose(value, expected, atol=atol, err_msg=name)


# In Numba mode, csc runs the Ops whose implementation depends on the format (the others, and
# all comparisons but two, share their code with csr): compiling costs ~1 s per Op.
CSC_NUMBA = {
    "dot",
    "dot_dense_left",
    "dot_vector",
    "dot_sparse",
    "structured_dot",
    "true_dot_dense",
    "dot_mixed_dtypes",
    "dot_strided_dense",
    "structured_dot_float32",
    "true_dot_sparse",
    "sampling_dot",
    "usmm",
    "usmm_dense_sparse",
    "getitem2d",
    "add_sd",
    "add_ss_mixed_formats",
    "mul_ss",
    "structured_add_s_v",
    "block_diag",
    "dense_from_sparse",
    "csm_grad",
    "structured_dot_grad",
    "eq_ss",
    "lt_sd",
}


def run_all_ops(mode, fmt, canonical=False, only=None):
    inputs, outs = build_graph(fmt)
    names = [
        name
        for name in outs
        if (only is None or name in only)
        and (mode == "NUMBA" or name not in NUMBA_ONLY)
        and (name != "ensure_sorted_inplace" or inplace_ops_allowed_in_user_graphs())
    ]
    fn = pytensor.function(inputs, [outs[n] for n in names], mode=mode, on_unused_input="ignore")
    vals = input_values(fmt, canonical=canonical)
    # fresh copies for the references: scipy may canonicalize its inputs in place
    ref = references(input_values(fmt, canonical=canonical), fmt)
    outputs = fn(*[vals[v.name] for v in inputs])
    check_outputs(names, outputs, ref, [outs[n] for n in names], fmt, atol=1e-5, numba=mode == "NUMBA")


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_all_ops_numba(fmt):
    run_all_ops("NUMBA", fmt, only=CSC_NUMBA if fmt == "csc" else None)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_all_ops_python(fmt):
    run_all_ops("FAST_COMPILE", fmt)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_all_ops_c(fmt):
    # Canonical inputs: PyTensor's C implementations (selected by cxx_only rewrites) handle
    # stored zeros differently from its Python ones (e.g. StructuredAddSVCSR adds v to a
    # stored zero, StructuredAddSV.perform does not); that is PyTensor's, not checked here.
    # local_usmm_csx is excluded: its UsmmCscDense calls BLAS daxpy_ even when PyTensor has
    # no BLAS to link (this machine), and the module fails to import.
    run_all_ops(C_MODE.excluding("local_usmm_csx"), fmt, canonical=True)
