"""``theano.tensor.nnet.corr3d``: as ``corr``, in 3d."""

from theano.tensor.nnet._reference_corr import reference_class

Corr3dMM = reference_class("forward", "Corr3dMM")
Corr3dMM_gradWeights = reference_class("grad_weights", "Corr3dMM_gradWeights")
Corr3dMM_gradInputs = reference_class("grad_inputs", "Corr3dMM_gradInputs")
