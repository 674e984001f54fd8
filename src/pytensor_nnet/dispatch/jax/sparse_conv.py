"""JAX registrations for the sparse-convolution and sparse max-pooling Ops.

The convolution, its gradients and max pooling need the patch matrix ``M`` as a constant
(as :func:`~pytensor_nnet.sparse.convolve` and :func:`~pytensor_nnet.sparse.max_pool` build
it): PyTensor hands sparse constants to JAX as ``jax.experimental.sparse.BCOO`` matrices,
and the patch stack is then one sparse-dense product (JAX's natural primitive for it).

CPU-only (no JAX implementation, a clear ``NotImplementedError``):

* ``ConvolutionIndices`` with symbolic shapes: its outputs' sizes depend on the input *values*
  (number of stored entries), which a traced JAX function cannot have (the random sparse Ops
  of ``sparse_random`` share this error). ``ConvolutionIndices`` on constant shapes is folded
  before JAX sees it.
* ``applySparseFilter``: it builds its weight matrix with ``pytensor.sparse.CSM``, which
  PyTensor's JAX backend does not support.
"""

import jax.numpy as jnp
from pytensor.graph.basic import Constant
from pytensor.link.jax.dispatch import jax_funcify

from pytensor_nnet.sparse.convolution import (
    ConvolutionIndices,
    SparseConv,
    SparseConvGradImages,
    SparseConvGradKernels,
    SparseMaxPool,
    SparseMaxPoolGrad,
)


def _require_constant_patch_matrix(op, node, position):
    if not isinstance(node.inputs[position], Constant):
        raise NotImplementedError(
            f"{op} runs in JAX only with a constant patch matrix (as convolve/max_pool build "
            "it); compile this graph with the Numba or C backend"
        )


def _patches(M, images, ksize):
    """Patch stack ``(outsize, ksize, batch)`` of ``images`` (batch, in_size)."""
    return (M @ images.T).reshape(M.shape[0] // ksize, ksize, images.shape[0])


def _first_max_mask(patches):
    """One-hot ``(outsize, ksize, n)`` mask of the first maximum of each window."""
    first = jnp.argmax(patches, axis=1)
    return jnp.arange(patches.shape[1])[None, :, None] == first[:, None, :]


@jax_funcify.register(SparseConv)
def jax_funcify_SparseConv(op, node, **kwargs):
    _require_constant_patch_matrix(op, node, 2)

    def sparse_conv(kerns, images, M):
        return jnp.einsum("nt,otb->bno", kerns, _patches(M, images, kerns.shape[1]))

    return sparse_conv


@jax_funcify.register(SparseConvGradImages)
def jax_funcify_SparseConvGradImages(op, node, **kwargs):
    _require_constant_patch_matrix(op, node, 2)

    def sparse_conv_grad_images(kerns, gout, M):
        dpatches = jnp.einsum("bno,nt->otb", gout, kerns).reshape(M.shape[0], gout.shape[0])
        return (M.T @ dpatches).T

    return sparse_conv_grad_images


@jax_funcify.register(SparseConvGradKernels)
def jax_funcify_SparseConvGradKernels(op, node, **kwargs):
    _require_constant_patch_matrix(op, node, 2)

    def sparse_conv_grad_kerns(images, gout, M):
        ksize = M.shape[0] // gout.shape[2]
        return jnp.einsum("bno,otb->nt", gout, _patches(M, images, ksize))

    return sparse_conv_grad_kerns


@jax_funcify.register(SparseMaxPool)
def jax_funcify_SparseMaxPool(op, node, **kwargs):
    _require_constant_patch_matrix(op, node, 1)
    ksize = op.ksize

    def sparse_max_pool(images, M):
        return _patches(M, images, ksize).max(axis=1).T

    return sparse_max_pool


@jax_funcify.register(SparseMaxPoolGrad)
def jax_funcify_SparseMaxPoolGrad(op, node, **kwargs):
    _require_constant_patch_matrix(op, node, 2)
    ksize = op.ksize

    def sparse_max_pool_grad(images, gout, M):
        mask = _first_max_mask(_patches(M, images, ksize))
        dpatches = jnp.where(mask, gout.T[:, None, :], 0).astype(gout.dtype)
        return (M.T @ dpatches.reshape(M.shape[0], images.shape[0])).T

    return sparse_max_pool_grad


@jax_funcify.register(ConvolutionIndices)
def jax_funcify_value_dependent_sizes(op, node, **kwargs):
    raise NotImplementedError(
        f"{op} has outputs whose size depends on input values, which JAX cannot trace; "
        "compile this graph with the Numba or C backend"
    )
