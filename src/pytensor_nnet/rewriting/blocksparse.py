"""Rewrites for the block-sparse Ops: inplace accumulation, lazily zeroed gradients.

``blocksparse_inplace`` (tags ``fast_run``, ``inplace``) makes ``SparseBlockGemv`` and
``SparseBlockOuter`` accumulate into the buffer of their ``o`` input instead of a copy, when
PyTensor's destroy handler agrees it is safe (``o`` is an intermediate result nobody else
reads afterwards, or a mutable input). This matters most for the gradient wrt ``W``, whose
``o`` is a ``zeros_like(W)`` as large as ``W``. Disable it with
``mode.excluding("blocksparse_inplace")``.

``blocksparse_lazy_zeros`` (tag ``numba``, so in PyTensor's default Numba mode) replaces the
``Alloc`` of zeros that ``SparseBlockOuter`` accumulates into with ``BlockZeros``, a lazily
zero-filled memory map: untouched pages of a W-sized gradient are never written. (Numba's
zeros memsets all of it: 4 GiB of page faults for a 4 GiB ``W``, seconds per step.)
Disable it with ``mode.excluding("blocksparse_lazy_zeros")``.

``local_sparse_block_outer_update`` (``specialize``, tags ``fast_run``, ``blocksparse_update``)
folds an update of a block matrix by its block-sparse gradient into the outer product:
``A + s * SparseBlockOuter(zeros, x, y, xIdx, yIdx, alpha)`` (or ``A - ...``, ``s`` a scalar,
``zeros`` of ``A``'s shape) becomes ``SparseBlockOuter(A, x, y, xIdx, yIdx, +-s * alpha)``.
An SGD step ``W - lr * grad(cost, W)`` then never builds the dense W-sized gradient: with
``W`` a shared variable it is updated in place, block by block. Disable it with
``mode.excluding("blocksparse_update")``.
"""

from pytensor import scalar as ps
from pytensor.compile import optdb
from pytensor.graph.basic import Constant
from pytensor.graph.rewriting.basic import copy_stack_trace, dfs_rewriter, node_rewriter
from pytensor.tensor.basic import Alloc, get_underlying_scalar_constant_value
from pytensor.tensor.elemwise import Elemwise
from pytensor.tensor.exceptions import NotScalarConstantError
from pytensor.tensor.rewriting.basic import register_specialize

from pytensor_nnet.blocksparse import BlockZeros, SparseBlockGemv, SparseBlockOuter

__all__ = [
    "local_inplace_sparse_block_gemv",
    "local_inplace_sparse_block_outer",
    "local_sparse_block_outer_lazy_zeros",
    "local_sparse_block_outer_update",
]


def _inplace_version(node):
    """The node's output computed by the inplace twin of its Op, or None if not allowed."""
    o = node.inputs[0]
    if node.op.inplace or isinstance(o, Constant) or o.type.dtype != node.outputs[0].type.dtype:
        return None
    new_out = type(node.op)(inplace=True)(*node.inputs)
    copy_stack_trace(node.outputs, new_out)
    return [new_out]


@node_rewriter([SparseBlockGemv], inplace=True)
def local_inplace_sparse_block_gemv(fgraph, node):
    """``SparseBlockGemv(inplace=False)`` -> ``SparseBlockGemv(inplace=True)``."""
    return _inplace_version(node)


@node_rewriter([SparseBlockOuter], inplace=True)
def local_inplace_sparse_block_outer(fgraph, node):
    """``SparseBlockOuter(inplace=False)`` -> ``SparseBlockOuter(inplace=True)``."""
    return _inplace_version(node)


optdb.register(
    "blocksparse_inplace",
    dfs_rewriter(local_inplace_sparse_block_gemv, local_inplace_sparse_block_outer, name="blocksparse_inplace"),
    "fast_run",
    "inplace",
    # With the other destructive rewrites, after the destroy handler is added (49.5) and
    # before elemwise ops are made inplace (70.5).
    position=50.3,
)


def _is_alloc_of_zeros(var):
    """Whether ``var`` is ``Alloc(0, *shape)`` (what ``zeros_like`` becomes)."""
    if var.owner is None or not isinstance(var.owner.op, Alloc):
        return False
    try:
        return get_underlying_scalar_constant_value(var.owner.inputs[0]) == 0
    except NotScalarConstantError:
        return False


@node_rewriter([SparseBlockOuter])
def local_sparse_block_outer_lazy_zeros(fgraph, node):
    """``SparseBlockOuter(Alloc(0, *shape), ...)`` -> ``SparseBlockOuter(BlockZeros(*shape), ...)``."""
    o = node.inputs[0]
    if not _is_alloc_of_zeros(o) or len(o.owner.inputs) != 5:
        return None
    zeros = BlockZeros(o.type.dtype)(*o.owner.inputs[1:])
    new_out = node.op(zeros, *node.inputs[1:])
    copy_stack_trace(node.outputs, new_out)
    return [new_out]


optdb.register(
    "blocksparse_lazy_zeros",
    dfs_rewriter(local_sparse_block_outer_lazy_zeros, name="blocksparse_lazy_zeros"),
    "numba",
    # After the canonical zeros_like -> Alloc rewrites and fusion, before the inplace ones.
    position=49.4,
)


def _only_client(fgraph, var, node):
    return [client for client, _ in fgraph.clients[var]] == [node]


def _scaled_gradient(fgraph, term, node):
    """``(outer_node, s)`` when ``term`` is ``SparseBlockOuter(zeros, ...)`` (``s`` None) or
    ``s * SparseBlockOuter(zeros, ...)`` with ``s`` a broadcast scalar, used only by ``node``."""
    if term.owner is None or not _only_client(fgraph, term, node):
        return None
    if isinstance(term.owner.op, SparseBlockOuter):
        outer_node, s = term.owner, None
    elif isinstance(term.owner.op, Elemwise) and isinstance(term.owner.op.scalar_op, ps.Mul):
        is_outer = [v.owner is not None and isinstance(v.owner.op, SparseBlockOuter) for v in term.owner.inputs]
        if sum(is_outer) != 1:
            return None
        outer = term.owner.inputs[is_outer.index(True)]
        factors = [v for v, o in zip(term.owner.inputs, is_outer, strict=True) if not o]
        if not all(all(f.type.broadcastable) for f in factors) or not _only_client(fgraph, outer, term.owner):
            return None
        outer_node, s = outer.owner, factors[0].dimshuffle([])
        for f in factors[1:]:
            s = s * f.dimshuffle([])
    else:
        return None
    zeros = outer_node.inputs[0]
    if not (_is_alloc_of_zeros(zeros) or (zeros.owner is not None and isinstance(zeros.owner.op, BlockZeros))):
        return None
    return outer_node, s


@register_specialize("blocksparse_update")
@node_rewriter([Elemwise])
def local_sparse_block_outer_update(fgraph, node):
    """``A +- s * SparseBlockOuter(zeros_like(A), x, y, ...)`` -> ``SparseBlockOuter(A, x, y, ...)``."""
    if len(node.inputs) != 2 or not isinstance(node.op.scalar_op, ps.Add | ps.Sub):
        return None
    a, b = node.inputs
    out = node.outputs[0]
    # (A, term, sign of the term): A + term, term + A, A - term.
    candidates = [(a, b, 1), (b, a, 1)] if isinstance(node.op.scalar_op, ps.Add) else [(a, b, -1)]
    shape_feature = getattr(fgraph, "shape_feature", None)
    for base, term, sign in candidates:
        found = _scaled_gradient(fgraph, term, node)
        if found is None or base.type.dtype != out.type.dtype or base.type.broadcastable != out.type.broadcastable:
            continue
        outer_node, s = found
        zeros, x, y, x_idx, y_idx, alpha = outer_node.inputs
        # zeros_like(A) or the like: same shape, so no shape error of the sum is lost.
        if shape_feature is None or not shape_feature.same_shape(base, zeros):
            continue
        scale = alpha if s is None else alpha * s
        new_out = SparseBlockOuter()(base, x, y, x_idx, y_idx, scale if sign > 0 else -scale)
        copy_stack_trace(node.outputs, new_out)
        return [new_out]
    return None
