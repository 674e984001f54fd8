"""Sparse graph rewrites, registered in PyTensor's ``specialize`` database by
:func:`pytensor_nnet.sparse.patch_pytensor_sparse` (opt-in: they act on PyTensor's own Ops).

``pytensor_nnet_usmm_fusion`` (tag ``numba``: Numba mode only)
    ``z + alpha * dot(x, y)``, ``z - alpha * dot(x, y)``, ``dot(x, y) + z``, ... with one of
    ``x``, ``y`` sparse becomes ``Usmm(alpha, x, y, z)``: the product accumulates straight
    into a copy of ``z``. PyTensor's own ``local_usmm`` is ``cxx_only`` and needs a BLAS
    library, so it never fires in Numba mode.

``pytensor_nnet_csm_grad_sampled_dot`` (tag ``fast_run``: Numba and C modes)
    ``CSMGrad(x, csm_properties(SparseFromDense(dot(L, R))))``, the gradient of a ``CSM`` data
    vector when the incoming (regular) sparse gradient is a dense product, becomes
    ``StructuredDotGrad(indices, indptr, R.T, L)``: only the ``nnz`` entries of the product
    that the pattern needs are computed, instead of the whole dense matrix. This is the graph
    that :func:`pytensor_nnet.sparse.dot`'s gradient produces for ``dot(CSM(data, ...), W)``.

Exclude either by name, e.g. ``mode.excluding("pytensor_nnet_usmm_fusion")``.
"""

from __future__ import annotations

import pytensor.scalar as ps
import pytensor.sparse.basic as psb
import pytensor.sparse.math as psm
import pytensor.tensor as pt
from pytensor.compile import optdb
from pytensor.graph.rewriting.basic import node_rewriter
from pytensor.tensor.blas import Dot22
from pytensor.tensor.elemwise import DimShuffle, Elemwise
from pytensor.tensor.math import Dot as DenseDot
from pytensor.tensor.shape import specify_shape

from pytensor_nnet.compat import sparse_math_op

USMM_FUSION = "pytensor_nnet_usmm_fusion"
CSM_GRAD_SAMPLED_DOT = "pytensor_nnet_csm_grad_sampled_dot"


def _single_client(fgraph, var):
    return len(fgraph.clients.get(var, ())) == 1


def _is_scalar_like(var):
    return all(var.type.broadcastable)


def _as_scaled_sparse_dot(fgraph, var):
    """``(alpha, dot_node)`` when ``var`` is ``dot(x, y)`` or ``alpha * dot(x, y)``, else None.

    ``dot`` is PyTensor's sparse ``Dot`` (or a subclass) with a 2-d result; ``alpha`` is a
    variable with only broadcastable dimensions (None when 1). The product must have no other
    client, or fusing would compute it twice.
    """
    owner = var.owner
    if owner is None or not _single_client(fgraph, var):
        return None
    if isinstance(owner.op, psm.Dot) and var.type.ndim == 2:
        return None, owner
    if isinstance(owner.op, Elemwise) and isinstance(owner.op.scalar_op, ps.Mul) and len(owner.inputs) == 2:
        for dot_var, alpha in (owner.inputs, owner.inputs[::-1]):
            dot_owner = dot_var.owner
            if (
                dot_owner is not None
                and isinstance(dot_owner.op, psm.Dot)
                and dot_var.type.ndim == 2
                and _is_scalar_like(alpha)
                and _single_client(fgraph, dot_var)
            ):
                return alpha, dot_owner
    return None


def _elemwise_of(node, scalar_op_class):
    return isinstance(node.op, Elemwise) and isinstance(node.op.scalar_op, scalar_op_class)


@node_rewriter([Elemwise])
def usmm_fusion(fgraph, node):
    """``z +/- alpha * dot(x, y)`` (one of x, y sparse) -> ``Usmm(+/-alpha, x, y, z)``."""
    [out] = node.outputs
    if out.type.ndim != 2 or out.type.dtype not in ("float32", "float64"):
        return None
    if _elemwise_of(node, ps.Add):
        for k, term in enumerate(node.inputs):
            found = _as_scaled_sparse_dot(fgraph, term)
            if found is not None:
                rest = node.inputs[:k] + node.inputs[k + 1 :]
                z = rest[0] if len(rest) == 1 else pt.add(*rest)
                alpha, dot_node = found
                sign = 1
                break
        else:
            return None
    elif _elemwise_of(node, ps.Sub):
        z, term = node.inputs
        found = _as_scaled_sparse_dot(fgraph, term)
        sign = -1
        if found is None:
            term, z = node.inputs
            found = _as_scaled_sparse_dot(fgraph, term)
            if found is None:
                return None
            z = -z
            sign = 1
        alpha, dot_node = found
    else:
        return None

    if z.type.ndim != 2:
        return None
    dtype = out.type.dtype
    if alpha is not None and alpha.owner is not None and isinstance(alpha.owner.op, DimShuffle):
        if alpha.owner.inputs[0].type.ndim == 0:  # alpha = ExpandDims(scalar)
            alpha = alpha.owner.inputs[0]
    alpha = pt.constant(1.0, dtype=dtype) if alpha is None else pt.cast(alpha, dtype)
    # (1, 1): PyTensor's C-only rewrite of Usmm asserts that shape (a 0-d alpha fails there)
    alpha = pt.reshape(alpha, (1, 1))
    if sign < 0:
        alpha = -alpha
    x, y = dot_node.inputs
    new = psm.usmm(alpha, x, y, pt.cast(z, dtype))
    if new.type != out.type:
        new = specify_shape(new, out.type.shape)
    return [new]


def _gradient_terms(var, fmt):
    """The terms of ``var`` when it is a tree of sparse additions in format ``fmt``."""
    owner = var.owner
    if (
        owner is not None
        and isinstance(owner.op, sparse_math_op("AddSparseSparse"))
        and var.type.format == fmt
        and all(inp.type.format == fmt for inp in owner.inputs)
    ):
        return [term for inp in owner.inputs for term in _gradient_terms(inp, fmt)]
    return [var]


def _sampled_product(term, fmt, x_indices, x_indptr):
    """``StructuredDotGrad`` for a term ``[Cast](SparseFromDense{fmt}(dot(L, R)))``, or None."""
    if term.owner is not None and isinstance(term.owner.op, psb.Cast):
        term = term.owner.inputs[0]
    if term.owner is None or not isinstance(term.owner.op, psb.SparseFromDense):
        return None
    if term.owner.op.format != fmt:
        return None
    product = term.owner.inputs[0]
    if product.owner is None or not isinstance(product.owner.op, DenseDot | Dot22):
        return None
    left, right = product.owner.inputs
    if left.type.ndim != 2 or right.type.ndim != 2:
        return None
    grad_op = psm.sdg_csr if fmt == "csr" else psm.sdg_csc
    return grad_op(x_indices, x_indptr, right.T, left)


@node_rewriter([psb.CSMGrad])
def csm_grad_sampled_dot(fgraph, node):
    """``CSMGrad`` of a dense product made sparse -> the product sampled at the pattern.

    An exact identity: ``CSMGrad`` reads the gradient's arrays in the orientation of its own
    format (the format of ``SparseFromDense``), and ``StructuredDotGrad`` of that format reads
    ``x``'s arrays the same way, so both give ``D[i, j]`` for every stored entry ``(i, j)``.
    ``CSMGrad`` is linear in the gradient, so a sum of such products (several uses of the
    matrix) becomes a sum of sampled products.
    """
    x_data, x_indices, x_indptr, x_shape, g_data, g_indices, g_indptr, g_shape = node.inputs
    props = g_data.owner
    if props is None or not isinstance(props.op, psb.CSMProperties):
        return None
    if [g_data, g_indices, g_indptr, g_shape] != list(props.outputs):
        return None
    gradient = props.inputs[0]
    fmt = gradient.type.format
    terms = _gradient_terms(gradient, fmt)
    sampled = [_sampled_product(term, fmt, x_indices, x_indptr) for term in terms]
    if all(part is None for part in sampled):
        return None
    dtype = node.outputs[0].type.dtype
    parts = []
    for term, part in zip(terms, sampled):
        if part is None:  # any other gradient term keeps its CSMGrad
            part = node.op(x_data, x_indices, x_indptr, x_shape, *psb.csm_properties(term))
        parts.append(pt.cast(part, dtype) if part.type.dtype != dtype else part)
    return [parts[0] if len(parts) == 1 else pt.add(*parts)]


def register_sparse_rewrites():
    """Register both rewrites in PyTensor's ``specialize`` database (by
    :func:`pytensor_nnet.sparse.patch_pytensor_sparse`; they act on PyTensor's own Ops)."""
    optdb["specialize"].register(USMM_FUSION, usmm_fusion, "numba")
    optdb["specialize"].register(CSM_GRAD_SAMPLED_DOT, csm_grad_sampled_dot, "fast_run")


__all__ = [
    "USMM_FUSION",
    "CSM_GRAD_SAMPLED_DOT",
    "csm_grad_sampled_dot",
    "register_sparse_rewrites",
    "usmm_fusion",
]
