from pytensor_nnet.sparse import ConvolutionIndices, convolution_indices, convolve, max_pool  # noqa: F401
