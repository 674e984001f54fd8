"""PyTorch implementations of the sparse-convolution Ops (``pytensor_nnet.sparse.convolution``).

The patch matrix ``M`` must be a constant, as :func:`~pytensor_nnet.sparse.convolve` and
:func:`~pytensor_nnet.sparse.max_pool` build it. Its entries become index tensors when the
function is compiled, so the products with ``M`` are a gather (``images[:, cols] * values``)
and an ``index_add`` over the rows, and with ``M.T`` the same the other way round: dense
PyTorch operations that run on any device and compile with ``torch.compile`` (PyTorch's
sparse tensors do neither well).

The constant ``M`` itself reaches the generated code as a ``torch.sparse_coo_tensor``: this
module registers ``pytorch_typify`` for scipy sparse matrices when PyTensor has no conversion
of its own.

Not supported (a ``NotImplementedError`` when the function is compiled): a patch matrix that
is not a constant, and ``ConvolutionIndices`` with symbolic shapes (the size of its outputs
depends on the input values). ``applySparseFilter`` builds its weight matrix with
``pytensor.sparse.CSM``, which PyTensor's PyTorch backend does not convert.
"""

import warnings

import numpy as np
import scipy.sparse
import torch
from pytensor.graph.basic import Constant
from pytensor.link.pytorch.dispatch import pytorch_funcify, pytorch_typify

from pytensor_nnet.dispatch.pytorch.utils import CPU_BACKENDS, unsupported
from pytensor_nnet.sparse.convolution import (
    ConvolutionIndices,
    SparseConv,
    SparseConvGradImages,
    SparseConvGradKernels,
    SparseMaxPool,
    SparseMaxPoolGrad,
)


def _coo_tensor(matrix, dtype=None, **kwargs):
    coo = scipy.sparse.coo_matrix(matrix)
    indices = torch.as_tensor(np.stack([coo.row, coo.col]).astype(np.int64))
    with warnings.catch_warnings():  # torch warns that it skips its invariant checks
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_coo_tensor(indices, torch.as_tensor(coo.data), coo.shape).coalesce()


if pytorch_typify.dispatch(scipy.sparse.csr_matrix) is pytorch_typify.dispatch(object):
    pytorch_typify.register(scipy.sparse.spmatrix)(_coo_tensor)
    if hasattr(scipy.sparse, "sparray"):
        pytorch_typify.register(scipy.sparse.sparray)(_coo_tensor)


class _PatchMatrix:
    """A constant sparse ``M`` (rows, cols) as index tensors: products with ``M`` and ``M.T``."""

    def __init__(self, op, node, position):
        var = node.inputs[position]
        if not isinstance(var, Constant):
            raise unsupported(
                op,
                "a patch matrix that is not a constant (build it with convolve / max_pool, or "
                "ConvolutionIndices on constant shapes)",
            )
        coo = scipy.sparse.coo_matrix(var.data)
        self.shape = tuple(int(s) for s in coo.shape)
        self._rows = torch.as_tensor(coo.row.astype(np.int64))
        self._cols = torch.as_tensor(coo.col.astype(np.int64))
        self._values = torch.as_tensor(coo.data)

    def _on(self, like):
        device = like.device
        return self._rows.to(device), self._cols.to(device), self._values.to(device=device, dtype=like.dtype)

    def patches(self, images):
        """``(M @ images.T).T``: (batch, n_rows) from images (batch, n_cols)."""
        if images.shape[1] != self.shape[1]:
            raise ValueError(
                f"images has {images.shape[1]} columns; the patch matrix has {self.shape[1]} (its in_size)"
            )
        rows, cols, values = self._on(images)
        out = images.new_zeros((images.shape[0], self.shape[0]))
        return out.index_add(1, rows, images[:, cols] * values)

    def images(self, patches):
        """``(M.T @ patches.T).T``: (batch, n_cols) from patches (batch, n_rows)."""
        rows, cols, values = self._on(patches)
        out = patches.new_zeros((patches.shape[0], self.shape[1]))
        return out.index_add(1, cols, patches[:, rows] * values)


def _check_rows(n_rows, ksize, name):
    if ksize < 1 or n_rows % ksize:
        raise ValueError(f"the patch matrix has {n_rows} rows, not a multiple of {name} = {ksize}")


@pytorch_funcify.register(SparseConv)
def pytorch_funcify_SparseConv(op, node, **kwargs):
    M = _PatchMatrix(op, node, 2)

    def sparse_conv(kerns, images, _M):
        _check_rows(M.shape[0], kerns.shape[1], "kerns.shape[1]")
        patches = M.patches(images).unflatten(1, (-1, kerns.shape[1]))  # (batch, outsize, ksize)
        return torch.einsum("nt,bot->bno", kerns, patches)

    return sparse_conv


@pytorch_funcify.register(SparseConvGradImages)
def pytorch_funcify_SparseConvGradImages(op, node, **kwargs):
    M = _PatchMatrix(op, node, 2)

    def sparse_conv_grad_images(kerns, gout, _M):
        _check_rows(M.shape[0], kerns.shape[1], "kerns.shape[1]")
        expected = (kerns.shape[0], M.shape[0] // kerns.shape[1])
        if tuple(gout.shape[1:]) != expected:
            raise ValueError(f"gout has shape {tuple(gout.shape)}; expected (batch, {expected[0]}, {expected[1]})")
        return M.images(torch.einsum("bno,nt->bot", gout, kerns).flatten(1))

    return sparse_conv_grad_images


@pytorch_funcify.register(SparseConvGradKernels)
def pytorch_funcify_SparseConvGradKernels(op, node, **kwargs):
    M = _PatchMatrix(op, node, 2)

    def sparse_conv_grad_kerns(images, gout, _M):
        outsize = gout.shape[2]
        if gout.shape[0] != images.shape[0] or outsize == 0 or M.shape[0] % outsize:
            raise ValueError(
                f"gout has shape {tuple(gout.shape)}, which does not fit images {tuple(images.shape)} "
                f"and a patch matrix of {M.shape[0]} rows"
            )
        patches = M.patches(images).unflatten(1, (outsize, -1))
        return torch.einsum("bno,bot->nt", gout, patches)

    return sparse_conv_grad_kerns


@pytorch_funcify.register(SparseMaxPool)
def pytorch_funcify_SparseMaxPool(op, node, **kwargs):
    M = _PatchMatrix(op, node, 1)
    _check_rows(M.shape[0], op.ksize, "ksize")

    def sparse_max_pool(images, _M):
        return M.patches(images).unflatten(1, (-1, op.ksize)).amax(dim=2)

    return sparse_max_pool


@pytorch_funcify.register(SparseMaxPoolGrad)
def pytorch_funcify_SparseMaxPoolGrad(op, node, **kwargs):
    M = _PatchMatrix(op, node, 2)
    _check_rows(M.shape[0], op.ksize, "ksize")

    def sparse_max_pool_grad(images, gout, _M):
        patches = M.patches(images).unflatten(1, (-1, op.ksize))  # (n, outsize, ksize)
        if tuple(gout.shape) != tuple(patches.shape[:2]):
            raise ValueError(f"gout has shape {tuple(gout.shape)}; expected {tuple(patches.shape[:2])}")
        first = patches.argmax(dim=2, keepdim=True)  # the first maximum of each window
        dpatches = torch.zeros_like(patches).scatter(2, first, gout[:, :, None])
        return M.images(dpatches.flatten(1))

    return sparse_max_pool_grad


@pytorch_funcify.register(ConvolutionIndices)
def pytorch_funcify_ConvolutionIndices(op, node, **kwargs):
    raise unsupported(
        op,
        "symbolic shapes (the number of stored entries of its outputs depends on the input values; "
        "with constant shapes it is folded before the backend sees it)",
        CPU_BACKENDS,
    )
