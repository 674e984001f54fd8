"""Neural-network and sparse-convolution ops for PyTensor 3.

Migrating from the legacy API is one import line: replace ``pytensor.tensor.nnet`` /
``theano.tensor.nnet`` with ``pytensor_nnet``.

Layers (see ``DESIGN`` in the README): ``shapes`` (pure int maths) -> ``kernels``
(numpy/Numba, no PyTensor) -> Ops (``conv``, ``blocksparse``, ``pool``, ``sparse``) ->
public functions -> ``dispatch`` (Numba, JAX registrations) -> ``rewriting``.
"""

# First: Numba's cache stamps of this package's functions (before any is decorated).
from pytensor_nnet import numba_cache as _numba_cache  # noqa: F401

# isort: split
# isort: off  (the public names grouped by family, in the order of the docs)
from pytensor_nnet import (
    bn,
    compat,  # noqa: F401  (first: an unsupported PyTensor gets a clear ImportError)
    neighbours,
    nnet,
    shapes,
)
from pytensor_nnet import bn as batchnorm  # legacy module names: nnet.batchnorm, nnet.basic, nnet.sigm

# isort: on
# Backend registrations (Numba always, JAX when installed) and graph rewrites.
from pytensor_nnet import dispatch as _dispatch  # noqa: E402,F401
from pytensor_nnet import nnet as basic
from pytensor_nnet import nnet as sigm
from pytensor_nnet import rewriting as _rewriting  # noqa: E402,F401
from pytensor_nnet.abstract_conv import (
    bilinear_kernel_1D,
    bilinear_kernel_2D,
    bilinear_upsampling,
    causal_conv1d,
    conv2d_transpose,
    conv3d_transpose,
    frac_bilinear_upsampling,
    separable_conv2d,
    separable_conv3d,
)
from pytensor_nnet.bn import batch_normalization
from pytensor_nnet.conv.api import (
    conv2d,
    conv2d_grad_wrt_inputs,
    conv2d_grad_wrt_weights,
    conv3d,
    conv3d_grad_wrt_inputs,
    conv3d_grad_wrt_weights,
)
from pytensor_nnet.conv.ops import (
    AbstractConv,
    AbstractConv2d,
    AbstractConv2d_gradInputs,
    AbstractConv2d_gradWeights,
    AbstractConv3d,
    AbstractConv3d_gradInputs,
    AbstractConv3d_gradWeights,
    AbstractConv_gradInputs,
    AbstractConv_gradWeights,
    BaseAbstractConv,
    set_column_buffer_bytes,
)
from pytensor_nnet.malloc import tune_malloc
from pytensor_nnet.modes import pytorch_mode
from pytensor_nnet.neighbours import images2neibs, neibs2images
from pytensor_nnet.nnet import (
    binary_crossentropy,
    categorical_crossentropy,
    confusion_matrix,
    crossentropy_categorical_1hot,
    crossentropy_categorical_1hot_grad,
    crossentropy_softmax_1hot,
    crossentropy_softmax_1hot_with_bias,
    crossentropy_softmax_1hot_with_bias_dx,
    crossentropy_softmax_argmax_1hot_with_bias,
    crossentropy_softmax_max_and_argmax_1hot,
    crossentropy_softmax_max_and_argmax_1hot_with_bias,
    elu,
    h_softmax,
    hard_sigmoid,
    logsoftmax,
    prepend_0_to_each_row,
    prepend_1_to_each_row,
    prepend_scalar_to_each_row,
    relu,
    selu,
    sigmoid,
    sigmoid_binary_crossentropy,
    softmax,
    softmax_grad_legacy,
    softmax_graph,
    softmax_legacy,
    softmax_with_bias,
    softplus,
    softsign,
    ultra_fast_sigmoid,
)
from pytensor_nnet.pool import max_pool_2d_same_size, pool_2d, pool_3d

__version__ = "0.1.0"

__all__ = [
    "pytorch_mode",
    "max_pool_2d_same_size",
    "pool_2d",
    "pool_3d",
    "bilinear_kernel_1D",
    "bilinear_kernel_2D",
    "bilinear_upsampling",
    "causal_conv1d",
    "conv2d_transpose",
    "conv3d_transpose",
    "frac_bilinear_upsampling",
    "separable_conv2d",
    "separable_conv3d",
    "AbstractConv",
    "AbstractConv2d",
    "AbstractConv2d_gradInputs",
    "AbstractConv2d_gradWeights",
    "AbstractConv3d",
    "AbstractConv3d_gradInputs",
    "AbstractConv3d_gradWeights",
    "AbstractConv_gradInputs",
    "AbstractConv_gradWeights",
    "BaseAbstractConv",
    "conv2d",
    "conv2d_grad_wrt_inputs",
    "conv2d_grad_wrt_weights",
    "conv3d",
    "conv3d_grad_wrt_inputs",
    "conv3d_grad_wrt_weights",
    "set_column_buffer_bytes",
    "tune_malloc",
    "shapes",
    "basic",
    "batchnorm",
    "bn",
    "neighbours",
    "nnet",
    "sigm",
    "batch_normalization",
    "images2neibs",
    "neibs2images",
    "binary_crossentropy",
    "categorical_crossentropy",
    "confusion_matrix",
    "crossentropy_categorical_1hot",
    "crossentropy_categorical_1hot_grad",
    "crossentropy_softmax_1hot",
    "crossentropy_softmax_1hot_with_bias",
    "crossentropy_softmax_1hot_with_bias_dx",
    "crossentropy_softmax_argmax_1hot_with_bias",
    "crossentropy_softmax_max_and_argmax_1hot",
    "crossentropy_softmax_max_and_argmax_1hot_with_bias",
    "elu",
    "h_softmax",
    "hard_sigmoid",
    "logsoftmax",
    "prepend_0_to_each_row",
    "prepend_1_to_each_row",
    "prepend_scalar_to_each_row",
    "relu",
    "selu",
    "sigmoid",
    "sigmoid_binary_crossentropy",
    "softmax",
    "softmax_grad_legacy",
    "softmax_graph",
    "softmax_legacy",
    "softmax_with_bias",
    "softplus",
    "softsign",
    "ultra_fast_sigmoid",
]
