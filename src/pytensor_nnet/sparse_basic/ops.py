"""``pytensor.sparse`` Ops with corrected gradients and forward-mode derivatives.

Same names and signatures as PyTensor's; each class subclasses PyTensor's Op, so the forward
computation (``perform``, the C code and the Numba implementation) is PyTensor's, and only the
derivatives change:

========================  ===================================================================
``dot``                   regular gradient for the sparse operand, returned *sparse* (PyTensor
                          returns a dense matrix, which breaks every graph through ``CSM``);
                          ``pushforward``
``structured_dot``        ``pushforward``
``multiply`` / ``mul``    sparse x dense / sparse x scalar: sparse gradient for the sparse
                          operand, scalar gradient for a scalar
``structured_add_s_v``    the gradient of the vector only sums the incoming gradient over the
                          non-zero entries of the matrix (PyTensor sums whole columns)
``sampling_dot``          the documented structured gradient for the pattern ``p``
``sub`` / ``subtract``    the documented regular gradient for a sparse subtrahend
``get_item_2d``           gradients (PyTensor has none)
``get_item_scalar``
``usmm``                  gradients (PyTensor has none)
``dense_from_sparse``,    ``pushforward``
``csr_from_dense``,
``csc_from_dense``
========================  ===================================================================

"Regular" and "structured" are the legacy terms: a regular gradient is the derivative with
respect to every entry of the matrix, a structured one only with respect to the stored entries.
"""

from __future__ import annotations

import numpy as np
import pytensor.sparse.basic as psb
import pytensor.sparse.math as psm
import pytensor.tensor as pt
import scipy.sparse
from pytensor.gradient import DisconnectedType, disconnected_type
from pytensor.graph.basic import Apply, Constant, Variable
from pytensor.sparse.type import SparseTensorType
from pytensor.tensor.type_other import NoneTypeT

from pytensor_nnet.compat import Op, VersionAdapted, sparse_math_op

__all__ = [
    "CSM",
    "CSMGrad",
    "Dot",
    "dot",
    "StructuredDot",
    "structured_dot",
    "SparseDenseMultiply",
    "mul_s_d",
    "multiply",
    "mul",
    "StructuredAddSV",
    "structured_add_s_v",
    "SamplingDot",
    "sampling_dot",
    "subtract",
    "sub",
    "GetItem2d",
    "get_item_2d",
    "GetItem2dGrad",
    "get_item_2d_grad",
    "GetItemScalar",
    "get_item_scalar",
    "Usmm",
    "usmm",
    "DenseFromSparse",
    "dense_from_sparse",
    "SparseFromDense",
    "csr_from_dense",
    "csc_from_dense",
]


def _is_sparse(x):
    return isinstance(getattr(x, "type", None), SparseTensorType)


def _is_disconnected(t):
    return isinstance(t.type, DisconnectedType)


def _as_sparse_or_tensor(x):
    if scipy.sparse.issparse(x):
        return psb.as_sparse_variable(x)
    if isinstance(x, Variable):
        return x
    return pt.as_tensor_variable(x)


def _cast_like(g, x):
    """``g`` cast to the dtype of ``x`` (sparse or dense), unchanged when already equal."""
    if g.dtype == x.dtype:
        return g
    if _is_sparse(g):
        return psb.cast(g, x.dtype)
    return pt.cast(g, x.dtype)


def _canonical_pattern_ones(x):
    """Ones at the entries of ``x`` that are non-zero once duplicates are summed.

    ``x + 0`` (sparse + sparse) sums duplicates and drops zeros in every backend; its
    ``sp_ones_like`` is the 0/1 mask of the non-zero entries, each position stored once.
    """
    return psb.sp_ones_like(psm.add_s_s(x, psb.sp_zeros_like(x)))


# ---------------------------------------------------------------------------------------------
# Dense <-> sparse conversions


class CSMGrad(VersionAdapted, psb.CSMGrad):
    """PyTensor's ``CSMGrad`` (gradient of a ``CSM`` data vector), with our Numba implementation."""


class CSM(VersionAdapted, psb.CSM):
    """PyTensor's ``CSM`` (sparse matrix from ``data, indices, indptr, shape``) whose data
    gradient is our :class:`CSMGrad`, so that it runs compiled in Numba mode."""

    def pullback(self, inputs, outputs, cotangents):
        data, indices, indptr, shape = inputs
        (g_matrix,) = cotangents
        g_data = CSMGrad()(data, indices, indptr, shape, *psb.csm_properties(g_matrix))
        return [g_data, disconnected_type(), disconnected_type(), disconnected_type()]


class DenseFromSparse(VersionAdapted, psb.DenseFromSparse):
    """``x.toarray()``; PyTensor's Op plus a ``pushforward`` (the tangent, made dense)."""

    def pushforward(self, inputs, outputs, tangents):
        (t,) = tangents
        if _is_disconnected(t):
            return [disconnected_type()]
        return [DenseFromSparse(structured=self.sparse_grad)(t)]


dense_from_sparse = DenseFromSparse()


class SparseFromDense(VersionAdapted, psb.SparseFromDense):
    """Dense to CSR/CSC; PyTensor's Op plus a ``pushforward`` (the tangent, made sparse)."""

    def pushforward(self, inputs, outputs, tangents):
        (t,) = tangents
        if _is_disconnected(t):
            return [disconnected_type()]
        return [SparseFromDense(self.format)(t)]


csr_from_dense = SparseFromDense("csr")
csc_from_dense = SparseFromDense("csc")


def _as_sparse_grad(dense_grad, x):
    """A regular gradient computed densely, returned with the sparse type of ``x``."""
    return _cast_like(SparseFromDense(x.type.format)(dense_grad), x)


# ---------------------------------------------------------------------------------------------
# Products


def _check_static_inner(x, y):
    """``ValueError`` when the static inner dimensions of ``x @ y`` are known and differ."""
    inner_x = x.type.shape[-1]
    inner_y = y.type.shape[0]
    if inner_x is not None and inner_y is not None and inner_x != inner_y:
        raise ValueError(f"inner dimensions do not match: x has shape {x.type.shape}, y has shape {y.type.shape}")


def _bilinear_pushforward(product, inputs, tangents):
    """``product(tx, y) + product(x, ty)``, leaving out disconnected tangents."""
    (x, y), (tx, ty) = inputs, tangents
    terms = []
    if not _is_disconnected(tx):
        terms.append(product(tx, y))
    if not _is_disconnected(ty):
        terms.append(product(x, ty))
    if not terms:
        return [disconnected_type()]
    return [terms[0] if len(terms) == 1 else terms[0] + terms[1]]


def _dense_product(a, b):
    """``a @ b`` for dense operands, ``outer(a, b)`` when both are vectors."""
    if a.ndim == 1 and b.ndim == 1:
        return pt.outer(a, b)
    return pt.dot(a, b)


class Dot(VersionAdapted, psm.Dot):
    """Sparse dot product (dense result) with regular gradients of the same kind as the inputs.

    Notes
    -----
    The gradient of a sparse operand is its regular gradient (the derivative with respect to
    every entry, e.g. ``gz @ y.T`` for ``x``), returned as a sparse matrix of the operand's
    format, so that it can flow back through ``CSM`` and ``csr_from_dense``. Flowing into
    ``CSM``, the rewrite ``pytensor_nnet_csm_grad_sampled_dot`` evaluates only the entries
    of the pattern instead of the dense product. Dense operands get dense gradients.
    """

    def make_node(self, x, y):
        node = super().make_node(x, y)
        _check_static_inner(*node.inputs)
        return node

    def pullback(self, inputs, outputs, gout):
        x, y = inputs
        (gz,) = gout
        # dx = gz @ y.T and dy = x.T @ gz (outer products when the dense operand is a vector)
        gx = dot(gz, y.T) if _is_sparse(y) else _dense_product(gz, y.T)
        gy = dot(x.T, gz) if _is_sparse(x) else _dense_product(x.T, gz)
        gx = _as_sparse_grad(gx, x) if _is_sparse(x) else _cast_like(gx, x)
        gy = _as_sparse_grad(gy, y) if _is_sparse(y) else _cast_like(gy, y)
        return [gx, gy]

    def pushforward(self, inputs, outputs, tangents):
        return _bilinear_pushforward(dot, inputs, tangents)


_dot = Dot()


def dot(x, y):
    """Dot product ``x @ y`` of two matrices (or a matrix and a vector), one of them sparse.

    Parameters
    ----------
    x, y
        CSR/CSC sparse or dense matrix variables (or scipy / numpy values); at least one
        sparse. A dense operand may be a vector.

    Returns
    -------
    TensorVariable
        Dense ``x @ y``.

    Notes
    -----
    The gradient is regular. For a sparse operand it is sparse (same format), for a dense
    one dense. In Numba mode the product runs the ``pytensor_nnet`` kernel.
    """
    x = _as_sparse_or_tensor(x)
    y = _as_sparse_or_tensor(y)
    if not _is_sparse(x) and not _is_sparse(y):
        raise TypeError("dot: at least one of x and y must be sparse")
    return _dot(x, y)


class StructuredDot(VersionAdapted, psm.StructuredDot):
    """``structured_dot``: PyTensor's Op plus a ``pushforward``."""

    def make_node(self, a, b):
        node = super().make_node(a, b)
        _check_static_inner(*node.inputs)
        return node

    def pushforward(self, inputs, outputs, tangents):
        return _bilinear_pushforward(_structured_dot, inputs, tangents)


_structured_dot = StructuredDot()


def structured_dot(x, y):
    """Dot product whose gradient for the sparse operand is structured.

    Parameters
    ----------
    x, y
        Matrix variables, at least one sparse (CSR/CSC).

    Returns
    -------
    Variable
        ``x @ y``: dense, or sparse when both operands are sparse.

    Notes
    -----
    Only the stored entries of the sparse operand get a gradient (``StructuredDotGrad``).
    """
    x = _as_sparse_or_tensor(x)
    y = _as_sparse_or_tensor(y)
    if not _is_sparse(x) and not _is_sparse(y):
        raise TypeError("structured_dot requires at least one sparse argument")
    if _is_sparse(x):
        return _structured_dot(x, y)
    return _structured_dot(y.T, x.T).T


class SparseDenseMultiply(VersionAdapted, sparse_math_op("MultiplySparseDense")):
    """Element-wise sparse x dense matrix (or scalar) product with a sparse gradient for x."""

    def pullback(self, inputs, outputs, gout):
        x, y = inputs
        (gz,) = gout
        gx = _cast_like(mul_s_d(gz, y), x)
        xgz = psm.mul_s_s(x, gz)
        if y.type.ndim == 0:
            gy = psm.sp_sum(xgz)
        else:
            gy = dense_from_sparse(xgz)
        return [gx, _cast_like(gy, y)]


mul_s_d = SparseDenseMultiply()


def multiply(x, y):
    """Element-wise product of two matrices (or a matrix and a scalar/row), one sparse.

    Sparse x sparse and sparse x vector use PyTensor's Ops; sparse x dense matrix and sparse x
    scalar use :class:`SparseDenseMultiply`, whose gradient for the sparse operand is sparse
    (PyTensor's raises ``TypeError`` in any graph through ``CSM``).
    """
    x = _as_sparse_or_tensor(x)
    y = _as_sparse_or_tensor(y)
    if not _is_sparse(x) and not _is_sparse(y):
        raise TypeError("multiply: at least one of x and y must be sparse")
    if _is_sparse(x) and _is_sparse(y):
        return psm.multiply(x, y)
    if _is_sparse(y):
        x, y = y, x
    if y.dtype == "float64" and x.dtype == "float32":
        x = x.astype("float64")
    if y.type.ndim == 1:
        return psm.mul_s_v(x, y)
    return mul_s_d(x, y)


mul = multiply


class StructuredAddSV(VersionAdapted, sparse_math_op("StructuredAddSparseDenseVector")):
    """``x + v`` on the non-zero entries of ``x`` (``v`` broadcast along the rows).

    Notes
    -----
    The gradient of ``v`` sums the incoming gradient over the entries where ``x`` is non-zero
    only; PyTensor's sums whole columns, which is wrong whenever the incoming gradient has
    entries outside the pattern of ``x`` (e.g. through a regular ``sp_sum``).
    """

    def pullback(self, inputs, outputs, gout):
        x, y = inputs
        (gz,) = gout
        masked = psm.mul_s_s(_canonical_pattern_ones(x), gz)
        gy = psm.sp_sum(masked, axis=0, sparse_grad=True)
        return [_cast_like(gz, x), _cast_like(gy, y)]


structured_add_s_v = StructuredAddSV()


class SamplingDot(VersionAdapted, psm.SamplingDot):
    """``p * (x @ y.T)`` on the pattern of ``p``, with the documented grad for ``p``.

    Notes
    -----
    The gradients of ``x`` and ``y`` are regular; the gradient of ``p`` is structured:
    ``gz * (x @ y.T)`` at the stored entries of ``p`` (PyTensor: not implemented).
    """

    def pullback(self, inputs, outputs, gout):
        x, y, p = inputs
        (z,) = outputs
        (gz,) = gout
        pgz = psm.mul_s_s(p, gz)
        gx = dot(pgz, y)
        gy = dot(pgz.T, x)
        # z has the pattern of p with duplicates merged: one mask entry per position
        on_pattern = psm.mul_s_s(psb.sp_ones_like(z), gz)
        gp = _sampling_dot(x, y, _cast_like(on_pattern, p))
        return [_cast_like(gx, x), _cast_like(gy, y), _cast_like(gp, p)]


_sampling_dot = SamplingDot()


def sampling_dot(x, y, p):
    """Sampled product ``p * (x @ y.T)`` on the pattern of the sparse ``p``.

    Parameters
    ----------
    x : (m, k) dense matrix
    y : (n, k) dense matrix
    p : (m, n) CSR/CSC sparse matrix

    Returns
    -------
    SparseVariable
        Same format and pattern as ``p``.
    """
    return _sampling_dot(x, y, p)


def subtract(x, y):
    """``x - y`` for two matrices, at least one sparse.

    Notes
    -----
    The gradient is regular, except for a sparse operand combined with a dense one, where it
    is structured (as documented): a sparse ``y`` is negated by a sparse x scalar product
    whose gradient is regular, where PyTensor's negation (``CSM`` of ``-data``) makes it
    structured.
    """
    x = _as_sparse_or_tensor(x)
    y = _as_sparse_or_tensor(y)
    if not _is_sparse(x) and not _is_sparse(y):
        raise TypeError("subtract: at least one of x and y must be sparse")
    if _is_sparse(y):
        neg_y = mul_s_d(y, pt.constant(-1, dtype=y.dtype))
    else:
        neg_y = -y
    return psm.add(x, neg_y)


sub = subtract


# ---------------------------------------------------------------------------------------------
# Indexing


def _slice_inputs_to_index(inputs):
    """Rebuild the ``(slice, slice)`` index of a ``GetItem2d`` from its 6 scalar inputs."""

    def value(v):
        if isinstance(v, Constant) and (v.data is None or isinstance(v.type, NoneTypeT)):
            return None
        return v

    start1, stop1, step1, start2, stop2, step2 = (value(v) for v in inputs)
    return (slice(start1, stop1, step1), slice(start2, stop2, step2))


class GetItem2d(VersionAdapted, psb.GetItem2d):
    """``x[a:b:s, c:d:t]``, a sparse matrix; PyTensor's Op with a (regular) gradient."""

    def connection_pattern(self, node):
        return [[True]] + [[False]] * (len(node.inputs) - 1)

    def pullback(self, inputs, outputs, gout):
        x, *index = inputs
        (gz,) = gout
        gx = get_item_2d_grad(x, gz, *index)
        return [_cast_like(gx, x)] + [disconnected_type() for _ in index]


get_item_2d = GetItem2d()


def _slice_positions(size, start, stop, step):
    return np.arange(*slice(start, stop, step).indices(size))


class GetItem2dGrad(Op):
    """Gradient of :class:`GetItem2d`: ``gz`` placed at the sliced positions of a zero ``x``.

    Inputs are ``x`` (for its shape and format), ``gz`` (the gradient of the slice, same
    format) and the six slice bounds of the forward Op. The result is canonical (sorted,
    duplicates summed, stored zeros kept).
    """

    __props__ = ()

    def make_node(self, x, gz, *index):
        x = psb.as_sparse_variable(x)
        gz = psb.as_sparse_variable(gz)
        if gz.type.format != x.type.format:
            raise TypeError(f"GetItem2dGrad: gz has format {gz.type.format}, x has {x.type.format}")
        if len(index) != 6:
            raise TypeError("GetItem2dGrad: expected the six slice bounds of GetItem2d")
        out = SparseTensorType(format=x.type.format, dtype=gz.type.dtype, shape=x.type.shape)
        return Apply(self, [x, gz, *index], [out()])

    def perform(self, node, inputs, outputs):
        x, gz, start1, stop1, step1, start2, stop2, step2 = inputs
        rows = _slice_positions(x.shape[0], start1, stop1, step1)
        cols = _slice_positions(x.shape[1], start2, stop2, step2)
        if gz.shape != (len(rows), len(cols)):
            raise ValueError(f"GetItem2dGrad: gz has shape {gz.shape}, the slice has {(len(rows), len(cols))}")
        coo = gz.tocoo()
        full = scipy.sparse.coo_matrix((coo.data, (rows[coo.row], cols[coo.col])), shape=x.shape)
        outputs[0][0] = full.asformat(x.format).astype(node.outputs[0].type.dtype)

    def connection_pattern(self, node):
        return [[False], [True]] + [[False]] * 6

    def pullback(self, inputs, outputs, gout):
        _x, _gz, *index = inputs
        (ggx,) = gout
        return [disconnected_type(), get_item_2d(ggx, _slice_inputs_to_index(index))] + [
            disconnected_type() for _ in index
        ]

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0]]


get_item_2d_grad = GetItem2dGrad()


class GetItemScalar(VersionAdapted, psb.GetItemScalar):
    """``x[i, j]``, a scalar; PyTensor's Op with a (regular) gradient.

    The gradient is a sparse matrix of ``x``'s shape and format with the single entry
    ``gz`` at ``(i, j)``, built with ``CSM``.
    """

    def connection_pattern(self, node):
        return [[True], [False], [False]]

    def pullback(self, inputs, outputs, gout):
        x, i, j = inputs
        (gz,) = gout
        shape = psb.csm_shape(x)
        n_rows, n_cols = shape[0], shape[1]
        i = pt.switch(pt.lt(i, 0), i + n_rows, i)
        j = pt.switch(pt.lt(j, 0), j + n_cols, j)
        if x.type.format == "csr":
            major, minor, n_major = i, j, n_rows
        else:
            major, minor, n_major = j, i, n_cols
        indptr = pt.cast(pt.gt(pt.arange(n_major + 1), major), "int32")
        indices = pt.cast(pt.reshape(minor, (1,)), "int32")
        data = pt.reshape(pt.cast(gz, x.dtype), (1,))
        gx = psb.CSM(x.type.format)(data, indices, indptr, shape)
        return [gx, disconnected_type(), disconnected_type()]


get_item_scalar = GetItemScalar()


# ---------------------------------------------------------------------------------------------
# Usmm


def _sum_to_broadcastable(g, var):
    """Sum ``g`` over the axes where ``var`` is broadcastable (keeping them)."""
    axes = [i for i, b in enumerate(var.type.broadcastable) if b]
    if axes:
        g = pt.sum(g, axis=axes, keepdims=True)
    return g


class Usmm(VersionAdapted, psm.Usmm):
    """``alpha * x @ y + z`` (dense result, at least one of x, y sparse), with gradients.

    ``alpha`` (any shape of ones) is stored with shape ``(1, 1)``: PyTensor's C-mode rewrite
    of ``Usmm`` asserts that shape and fails on a 0-d ``alpha``.
    """

    def make_node(self, alpha, x, y, z):
        alpha = pt.as_tensor_variable(alpha)
        if alpha.type.ndim != 2:
            alpha = pt.reshape(alpha, (1, 1))
        return super().make_node(alpha, x, y, z)

    def pullback(self, inputs, outputs, gout):
        alpha, x, y, z = inputs
        (gz,) = gout
        alpha_scalar = pt.reshape(alpha, ())
        product = dot(x, y)
        g_alpha = pt.reshape(pt.sum(gz * product), alpha.shape)
        g_x, g_y = _dot.pullback([x, y], [product], [gz * alpha_scalar])
        g_z = _sum_to_broadcastable(gz, z)
        return [
            _cast_like(g_alpha, alpha),
            _cast_like(g_x, x),
            _cast_like(g_y, y),
            _cast_like(g_z, z),
        ]


usmm = Usmm()
