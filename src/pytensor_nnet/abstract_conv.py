"""Legacy import path ``abstract_conv``: every public name of the old
``theano.tensor.nnet.abstract_conv`` / ``pytensor.tensor.nnet.abstract_conv`` module."""

from pytensor_nnet.conv.api import (  # noqa: F401
    conv2d,
    conv2d_grad_wrt_inputs,
    conv2d_grad_wrt_weights,
    conv3d,
    conv3d_grad_wrt_inputs,
    conv3d_grad_wrt_weights,
)
from pytensor_nnet.conv.causal import causal_conv1d  # noqa: F401
from pytensor_nnet.conv.ops import (  # noqa: F401
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
)
from pytensor_nnet.conv.separable import separable_conv2d, separable_conv3d  # noqa: F401
from pytensor_nnet.conv.transpose import conv2d_transpose, conv3d_transpose  # noqa: F401
from pytensor_nnet.conv.upsampling import (  # noqa: F401
    bilinear_kernel_1D,
    bilinear_kernel_2D,
    bilinear_upsampling,
    frac_bilinear_upsampling,
)
from pytensor_nnet.shapes import (  # noqa: F401
    assert_conv_shape,
    assert_shape,
    border_mode_to_pad,
    check_conv_gradinputs_shape,
    get_conv_gradinputs_shape,
    get_conv_gradinputs_shape_1axis,
    get_conv_gradweights_shape,
    get_conv_gradweights_shape_1axis,
    get_conv_output_shape,
    get_conv_shape_1axis,
)
