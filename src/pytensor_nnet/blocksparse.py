"""Block-sparse dot products: ``SparseBlockGemv``, ``SparseBlockOuter``, ``sparse_block_dot``.

The legacy ``theano.tensor.nnet.blocksparse`` API on PyTensor 3 (migrating is one import
line). A weight matrix ``W`` of shape ``(iBlocks, oBlocks, iSize, oSize)`` is cut into blocks,
and each example of a minibatch multiplies only the blocks it selects. This is what
hierarchical softmax, mixtures of experts and conditional computation need: the cost and the
memory scale with ``batch * iWin * oWin * iSize * oSize``, not with the size of ``W``.

Shape names (legacy docstrings):

==========  ===============================================================
``batch``   number of examples in the minibatch
``iBlocks`` number of input blocks; ``iSize`` the size of each
``iWin``    number of input blocks each example uses (``inputIdx``)
``oBlocks`` number of output blocks; ``oSize`` the size of each
``oWin``    number of output blocks each example computes (``outputIdx``)
==========  ===============================================================

Differences from the legacy ops, all deliberate:

- Bad shapes and out-of-range indices (negative ones included, which the legacy code wrapped
  around silently) raise ``ValueError`` naming the argument; at graph-build time when the
  static shapes or constant indices allow it, otherwise before the kernel runs.
- The output dtype follows PyTensor's upcasting of ``o``, ``W`` and ``h`` (the legacy output
  silently took the dtype of ``o``); integer inputs give ``floatX`` (or wider) outputs.
- ``SparseBlockOuter`` is differentiable (wrt ``o``, ``x``, ``y`` and ``alpha``); ``alpha``
  must be a scalar and is cast to the output dtype.
- Both Ops have a ``pushforward`` (forward mode).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor import config
from pytensor.gradient import DisconnectedType, disconnected_type
from pytensor.graph.basic import Apply, Constant
from pytensor.scalar import upcast
from pytensor.tensor.type import TensorType, continuous_dtypes, discrete_dtypes

from pytensor_nnet.compat import Op
from pytensor_nnet.kernels.blocksparse import (
    GEMV_LAYOUT,
    OUTER_LAYOUT,
    BlockIndexError,
    block_gemv,
    block_outer,
    check_block_indices,
    lazy_zeros,
    match_dims,
)

__all__ = [
    "SparseBlockGemv",
    "SparseBlockOuter",
    "sparse_block_dot",
    "sparse_block_gemv",
    "sparse_block_gemv_inplace",
    "sparse_block_outer",
    "sparse_block_outer_inplace",
]


# --------------------------------------------------------------------------- input checks


def _as_index(idx, name, ndim=2):
    """``idx`` as an integer tensor of ``ndim`` dimensions, or a ``TypeError`` naming it."""
    idx = pt.as_tensor_variable(idx)
    if idx.type.dtype not in discrete_dtypes or idx.type.dtype == "bool":
        raise TypeError(f"{name} must hold integer block indices, got dtype {idx.type.dtype}")
    if idx.type.ndim != ndim:
        raise TypeError(f"{name} must be a {ndim}-d tensor (batch, window), got {idx.type.ndim} dimensions")
    return idx


def _as_floats(named, layouts):
    """Tensors of ``named`` (name -> value) checked for ndim and cast to their upcast dtype.

    Integer inputs upcast with ``floatX``, the way ``true_div`` does; complex inputs are
    refused (the kernels and gradients are real), and so is float16 (Numba has no float16
    arithmetic).
    """
    tensors = {}
    for name, value in named.items():
        var = pt.as_tensor_variable(value)
        layout = layouts[name]
        if var.type.ndim != len(layout):
            raise TypeError(
                f"{name} must be a {len(layout)}-d tensor ({', '.join(layout)}), got {var.type.ndim} dimensions"
            )
        if var.type.dtype.startswith("complex"):
            raise TypeError(f"{name} must be real, got dtype {var.type.dtype}")
        tensors[name] = var
    dtype = upcast(*(v.type.dtype for v in tensors.values()))
    if dtype not in continuous_dtypes:
        dtype = upcast(dtype, config.floatX)
    if dtype == "float16":
        raise TypeError(f"{', '.join(named)} are float16, which the kernels do not support: cast them to float32")
    return {name: var if var.type.dtype == dtype else pt.cast(var, dtype) for name, var in tensors.items()}, dtype


def _check_constant_indices(idx, name, n_blocks, blocks_from):
    """Raise now, at graph-build time, for a constant index outside ``[0, n_blocks)``."""
    if not isinstance(idx, Constant) or n_blocks is None or idx.data.size == 0:
        return
    bad = np.argwhere((idx.data < 0) | (idx.data >= n_blocks))
    if bad.size:
        b, i = bad[0]
        raise BlockIndexError(name, b, i, idx.data[b, i], n_blocks, blocks_from)


def _static_shape_checked(inputs, layout, out_dims):
    """Check the static shapes of ``inputs`` (name -> variable) against ``layout``.

    Returns the static output shape (``None`` where unknown) for the dims ``out_dims``.
    """
    dims = match_dims(layout, {name: var.type.shape for name, var in inputs.items()})
    return tuple(dims.get(d) for d in out_dims)


# --------------------------------------------------------------------------- Ops


class SparseBlockGemv(Op):
    """Block-sparse matrix-vector product, plus ``o``.

    ::

        for b in range(batch):
            for j in range(oWin):
                for i in range(iWin):
                    o[b, j, :] += h[b, i] @ W[inputIdx[b, i], outputIdx[b, j]]

    Parameters
    ----------
    inplace : bool, default False
        Accumulate into the buffer of ``o`` (it is destroyed). The ``blocksparse_inplace``
        rewrite sets it when that is safe; you should not need to.

    See :meth:`make_node` for the inputs.
    """

    __props__ = ("inplace",)

    def __init__(self, inplace=False):
        self.inplace = bool(inplace)
        if self.inplace:
            self.destroy_map = {0: [0]}

    def make_node(self, o, W, h, inputIdx, outputIdx):
        """Build ``o + block_sparse(h @ W)``.

        Parameters
        ----------
        o : (batch, oWin, oSize) tensor
            Added to the result (the bias of the selected output blocks, or zeros).
        W : (iBlocks, oBlocks, iSize, oSize) tensor
            Weight matrix, as blocks.
        h : (batch, iWin, iSize) tensor
            The selected input blocks of each example.
        inputIdx : (batch, iWin) integer tensor
            Which input block of ``W`` each ``h[b, i]`` is, in ``[0, iBlocks)``.
        outputIdx : (batch, oWin) integer tensor
            Which output blocks of ``W`` to compute, in ``[0, oBlocks)``.

        Returns
        -------
        (batch, oWin, oSize) tensor
        """
        floats, dtype = _as_floats({"o": o, "W": W, "h": h}, GEMV_LAYOUT)
        inputIdx = _as_index(inputIdx, "inputIdx")
        outputIdx = _as_index(outputIdx, "outputIdx")
        inputs = dict(floats, inputIdx=inputIdx, outputIdx=outputIdx)
        i_blocks, o_blocks, *out_shape = _static_shape_checked(
            inputs, GEMV_LAYOUT, ("iBlocks", "oBlocks", "batch", "oWin", "oSize")
        )
        _check_constant_indices(inputIdx, "inputIdx", i_blocks, "iBlocks = W.shape[0]")
        _check_constant_indices(outputIdx, "outputIdx", o_blocks, "oBlocks = W.shape[1]")
        out = TensorType(dtype, shape=tuple(out_shape))()
        return Apply(self, list(inputs.values()), [out])

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = block_gemv(*inputs, inplace=self.inplace)

    def infer_shape(self, fgraph, node, input_shapes):
        return [input_shapes[0]]

    def connection_pattern(self, node):
        return [[True], [True], [True], [False], [False]]

    def pullback(self, inputs, outputs, cotangents):
        o, W, h, inputIdx, outputIdx = inputs
        (g_out,) = cotangents
        g_W = sparse_block_outer(pt.zeros_like(W), h, g_out, inputIdx, outputIdx)
        g_h = sparse_block_gemv(pt.zeros_like(h), W.dimshuffle(1, 0, 3, 2), g_out, outputIdx, inputIdx)
        return [g_out, g_W, g_h, disconnected_type(), disconnected_type()]

    def pushforward(self, inputs, outputs, tangents):
        o, W, h, inputIdx, outputIdx = inputs
        t_o, t_W, t_h = (None if isinstance(t.type, DisconnectedType) else t for t in tangents[:3])
        if t_o is None and t_W is None and t_h is None:
            return [disconnected_type()]
        t_out = pt.zeros_like(outputs[0]) if t_o is None else t_o
        if t_W is not None:
            t_out = sparse_block_gemv(t_out, t_W, h, inputIdx, outputIdx)
        if t_h is not None:
            t_out = sparse_block_gemv(t_out, W, t_h, inputIdx, outputIdx)
        return [t_out]


class SparseBlockOuter(Op):
    """Block-sparse outer product, accumulated into a full block matrix ``o``.

    ::

        for b in range(batch):
            for i in range(xWin):
                for j in range(yWin):
                    o[xIdx[b, i], yIdx[b, j]] += alpha * outer(x[b, i], y[b, j])

    Examples that hit the same block add up. This is the gradient of
    :class:`SparseBlockGemv` wrt ``W``.

    Parameters
    ----------
    inplace : bool, default False
        Accumulate into the buffer of ``o`` (it is destroyed); set by the
        ``blocksparse_inplace`` rewrite when safe.
    """

    __props__ = ("inplace",)

    def __init__(self, inplace=False):
        self.inplace = bool(inplace)
        if self.inplace:
            self.destroy_map = {0: [0]}

    def make_node(self, o, x, y, xIdx, yIdx, alpha=None):
        """Build ``o + alpha * block_sparse(outer(x, y))``.

        Parameters
        ----------
        o : (xBlocks, yBlocks, xSize, ySize) tensor
        x : (batch, xWin, xSize) tensor
        y : (batch, yWin, ySize) tensor
        xIdx : (batch, xWin) integer tensor
            Block row of each ``x[b, i]``, in ``[0, xBlocks)``.
        yIdx : (batch, yWin) integer tensor
            Block column of each ``y[b, j]``, in ``[0, yBlocks)``.
        alpha : scalar, default 1
            Scale of the outer products; cast to the output dtype.

        Returns
        -------
        (xBlocks, yBlocks, xSize, ySize) tensor
        """
        floats, dtype = _as_floats({"o": o, "x": x, "y": y}, OUTER_LAYOUT)
        xIdx = _as_index(xIdx, "xIdx")
        yIdx = _as_index(yIdx, "yIdx")
        alpha = pt.as_tensor_variable(1.0 if alpha is None else alpha)
        if alpha.type.ndim != 0:
            raise TypeError(f"alpha must be a scalar, got a {alpha.type.ndim}-d tensor")
        if alpha.type.dtype.startswith("complex"):
            raise TypeError(f"alpha must be real, got dtype {alpha.type.dtype}")
        alpha = pt.cast(alpha, dtype) if alpha.type.dtype != dtype else alpha
        inputs = dict(floats, xIdx=xIdx, yIdx=yIdx)
        out_shape = _static_shape_checked(inputs, OUTER_LAYOUT, ("xBlocks", "yBlocks", "xSize", "ySize"))
        _check_constant_indices(xIdx, "xIdx", out_shape[0], "xBlocks = o.shape[0]")
        _check_constant_indices(yIdx, "yIdx", out_shape[1], "yBlocks = o.shape[1]")
        out = TensorType(dtype, shape=out_shape)()
        return Apply(self, [*inputs.values(), alpha], [out])

    def perform(self, node, inputs, output_storage):
        o, x, y, xIdx, yIdx, alpha = inputs
        output_storage[0][0] = block_outer(o, x, y, xIdx, yIdx, alpha.item(), inplace=self.inplace)

    def infer_shape(self, fgraph, node, input_shapes):
        return [input_shapes[0]]

    def connection_pattern(self, node):
        return [[True], [True], [True], [False], [False], [True]]

    def pullback(self, inputs, outputs, cotangents):
        o, x, y, xIdx, yIdx, alpha = inputs
        (g_out,) = cotangents
        # d/dy of <g_out, outer products>: x's blocks times g_out's blocks, a GEMV.
        g_y_unscaled = sparse_block_gemv(pt.zeros_like(y), g_out, x, xIdx, yIdx)
        g_x = sparse_block_gemv(pt.zeros_like(x), g_out.dimshuffle(1, 0, 3, 2), y, yIdx, xIdx)
        g_alpha = (y * g_y_unscaled).sum(dtype=alpha.type.dtype)
        return [g_out, alpha * g_x, alpha * g_y_unscaled, disconnected_type(), disconnected_type(), g_alpha]

    def pushforward(self, inputs, outputs, tangents):
        o, x, y, xIdx, yIdx, alpha = inputs
        t_o, t_x, t_y, _, _, t_alpha = (None if isinstance(t.type, DisconnectedType) else t for t in tangents)
        if t_o is None and t_x is None and t_y is None and t_alpha is None:
            return [disconnected_type()]
        t_out = pt.zeros_like(outputs[0]) if t_o is None else t_o
        for tx, ty, a in ((t_x, y, alpha), (x, t_y, alpha), (x, y, t_alpha)):
            if tx is not None and ty is not None and a is not None:
                t_out = sparse_block_outer(t_out, tx, ty, xIdx, yIdx, a)
        return [t_out]


class BlockZeros(Op):
    """A zero block matrix ``(xBlocks, yBlocks, xSize, ySize)`` whose untouched pages stay virtual.

    Internal: the ``blocksparse_lazy_zeros`` rewrite puts it in place of the ``zeros_like(W)``
    that :class:`SparseBlockOuter` accumulates into for the gradient wrt ``W``. It is
    allocated by :func:`~pytensor_nnet.kernels.blocksparse.lazy_zeros`: the operating system
    hands out zeroed 4 KiB pages only where the outer products write, so a W-sized gradient
    costs the blocks it touches, not a W-sized memset (which is what Numba's ``zeros``, and so
    PyTensor's ``Alloc`` there, do).
    """

    __props__ = ("dtype",)

    def __init__(self, dtype):
        self.dtype = str(dtype)

    def make_node(self, *shape):
        if len(shape) != 4:
            raise TypeError(f"BlockZeros takes the 4 dimensions of the block matrix, got {len(shape)}")
        shape = [pt.as_tensor_variable(s) for s in shape]
        if any(s.type.ndim != 0 or s.type.dtype not in discrete_dtypes for s in shape):
            raise TypeError("BlockZeros takes integer scalars")
        static = tuple(int(s.data) if isinstance(s, Constant) else None for s in shape)
        return Apply(self, shape, [TensorType(self.dtype, shape=static)()])

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = lazy_zeros(tuple(int(s) for s in inputs), self.dtype)

    def infer_shape(self, fgraph, node, input_shapes):
        return [tuple(node.inputs)]

    def do_constant_folding(self, fgraph, node):
        return False  # a W-sized constant is the opposite of the point

    def connection_pattern(self, node):
        return [[False]] * 4

    def pullback(self, inputs, outputs, cotangents):
        return [disconnected_type()] * 4


class CheckBlockIndices(Op):
    """``idx`` itself, once checked: every entry in ``[0, n_blocks)``, and ``rows == n_blocks``.

    Internal: :func:`sparse_block_dot` gathers the bias ``b[outputIdx]`` through it, so that a
    bad ``outputIdx`` raises the :class:`SparseBlockGemv` message (naming ``outputIdx`` and the
    value) before the gather reads ``b``, in the forward pass and in the gradient wrt ``b``.
    ``make_node(idx, n_blocks, rows)``: ``idx`` a 2-d integer tensor, ``n_blocks`` and ``rows``
    integer scalars (``W.shape[1]`` and ``b.shape[0]``).

    Parameters
    ----------
    name : str
        The argument ``idx`` comes from (``"outputIdx"``).
    dim : str
        The dimension it indexes (``"oBlocks"``).
    blocks_from, rows_from : str
        Where ``n_blocks`` and ``rows`` come from (``"W.shape[1]"``, ``"b.shape[0]"``).
    """

    __props__ = ("name", "dim", "blocks_from", "rows_from")
    view_map = {0: [0]}

    def __init__(self, name, dim, blocks_from, rows_from):
        self.name, self.dim, self.blocks_from, self.rows_from = name, dim, blocks_from, rows_from

    def make_node(self, idx, n_blocks, rows):
        idx = _as_index(idx, self.name)
        n_blocks, rows = (pt.as_tensor_variable(s) for s in (n_blocks, rows))
        if any(s.type.ndim != 0 or s.type.dtype not in discrete_dtypes for s in (n_blocks, rows)):
            raise TypeError("n_blocks and rows must be integer scalars")
        static = [int(s.data) if isinstance(s, Constant) else None for s in (n_blocks, rows)]
        if None not in static and static[0] != static[1]:
            check_block_indices(
                np.zeros((0, 0), np.int64), static[0], static[1], self.name, self.dim, self.blocks_from, self.rows_from
            )
        _check_constant_indices(idx, self.name, static[0], f"{self.dim} = {self.blocks_from}")
        return Apply(self, [idx, n_blocks, rows], [idx.type()])

    def perform(self, node, inputs, output_storage):
        idx, n_blocks, rows = inputs
        check_block_indices(idx, int(n_blocks), int(rows), self.name, self.dim, self.blocks_from, self.rows_from)
        output_storage[0][0] = idx

    def infer_shape(self, fgraph, node, input_shapes):
        return [input_shapes[0]]

    def connection_pattern(self, node):
        return [[False], [False], [False]]

    def pullback(self, inputs, outputs, cotangents):
        return [disconnected_type()] * 3


sparse_block_gemv = SparseBlockGemv(False)
sparse_block_gemv_inplace = SparseBlockGemv(True)
sparse_block_outer = SparseBlockOuter(False)
sparse_block_outer_inplace = SparseBlockOuter(True)


def sparse_block_dot(W, h, inputIdx, b, outputIdx):
    """Block-sparse dot product plus bias: ``h @ W[inputIdx, outputIdx] + b[outputIdx]``.

    ::

        out[b_, j] = b[outputIdx[b_, j]] + sum_i h[b_, i] @ W[inputIdx[b_, i], outputIdx[b_, j]]

    The bias of each selected output block is added once, however many input blocks feed it.

    Parameters
    ----------
    W : (iBlocks, oBlocks, iSize, oSize) tensor
        Weight matrix, as blocks.
    h : (batch, iWin, iSize) tensor, or (iWin, iSize) for a single example
        The selected input blocks.
    inputIdx : (batch, iWin) integer tensor, or (iWin,)
        Input block of ``W`` for each ``h[b, i]``, in ``[0, iBlocks)``.
    b : (oBlocks, oSize) tensor
        Bias of every output block.
    outputIdx : (batch, oWin) integer tensor, or (oWin,)
        Output blocks to compute, in ``[0, oBlocks)``.

    Returns
    -------
    (batch, oWin, oSize) tensor
        A single example (2-d ``h``) gives ``batch = 1``, as in the legacy function.

    Raises
    ------
    TypeError
        For float (or boolean) indices or arguments of the wrong rank, naming the argument.
    ValueError
        For a block index outside ``[0, iBlocks)`` / ``[0, oBlocks)`` (negative ones too),
        naming ``inputIdx`` / ``outputIdx``, the position and the value; for ``b.shape[0]``
        other than ``W.shape[1]``. When the graph is built if the indices are constants and
        the shapes static, before any block is read otherwise (Python, C and Numba; under
        JAX an out-of-range index gives NaN).

    Notes
    -----
    ``b[outputIdx]`` is a gather in front of :class:`SparseBlockGemv`, through
    :class:`CheckBlockIndices`: the indices are checked before the gather reads ``b``.
    """
    h = pt.as_tensor_variable(h)
    if h.type.ndim not in (2, 3):
        raise TypeError(
            f"h must be a 3-d (batch, iWin, iSize) or 2-d (iWin, iSize) tensor, got {h.type.ndim} dimensions"
        )
    idx_ndim = h.type.ndim - 1
    inputIdx = _as_index(inputIdx, "inputIdx", idx_ndim)
    outputIdx = _as_index(outputIdx, "outputIdx", idx_ndim)
    b = pt.as_tensor_variable(b)
    if b.type.ndim != 2:
        raise TypeError(f"b must be a 2-d (oBlocks, oSize) tensor, got {b.type.ndim} dimensions")
    W = pt.as_tensor_variable(W)
    if W.type.ndim != 4:
        raise TypeError(f"W must be a 4-d tensor ({', '.join(GEMV_LAYOUT['W'])}), got {W.type.ndim} dimensions")
    match_dims({"W": GEMV_LAYOUT["W"], "b": ("oBlocks", "oSize")}, {"W": W.type.shape, "b": b.type.shape})
    if h.type.ndim == 2:
        h, inputIdx, outputIdx = h[None], inputIdx[None], outputIdx[None]
    bias_idx = CheckBlockIndices("outputIdx", "oBlocks", "W.shape[1]", "b.shape[0]")(outputIdx, W.shape[1], b.shape[0])
    return sparse_block_gemv(b[bias_idx], W, h, inputIdx, outputIdx)
