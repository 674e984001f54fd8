"""``theano.tensor.nnet.corr``: the legacy C GEMM classes have no counterpart (``conv2d`` picks
the compiled kernels itself); their names build the numpy reference Op the tests compare with."""

from theano.tensor.nnet._reference_corr import reference_class

CorrMM = reference_class("forward", "CorrMM")
CorrMM_gradWeights = reference_class("grad_weights", "CorrMM_gradWeights")
CorrMM_gradInputs = reference_class("grad_inputs", "CorrMM_gradInputs")
