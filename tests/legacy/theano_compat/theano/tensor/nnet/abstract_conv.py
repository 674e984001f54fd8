from pytensor_nnet.abstract_conv import *  # noqa: F401,F403
from pytensor_nnet.abstract_conv import (  # noqa: F401
    AbstractConv2d,
    AbstractConv2d_gradInputs,
    AbstractConv2d_gradWeights,
    AbstractConv3d,
    AbstractConv3d_gradInputs,
    AbstractConv3d_gradWeights,
    assert_conv_shape,
    assert_shape,
    bilinear_kernel_1D,
    bilinear_kernel_2D,
    bilinear_upsampling,
    causal_conv1d,
    check_conv_gradinputs_shape,
    conv2d,
    conv2d_grad_wrt_inputs,
    conv2d_grad_wrt_weights,
    conv3d,
    conv3d_grad_wrt_inputs,
    conv3d_grad_wrt_weights,
    get_conv_gradinputs_shape,
    get_conv_gradweights_shape,
    get_conv_output_shape,
    separable_conv2d,
    separable_conv3d,
)

#: The numpy reference (``BaseAbstractConv.conv``) needs no optional package.
imported_scipy_signal = True
