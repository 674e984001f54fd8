"""PyTorch implementation of :class:`pytensor_nnet.tanh.VectorisedTanh`: ``torch.tanh``."""

import torch
from pytensor.link.pytorch.dispatch import pytorch_funcify

from pytensor_nnet.tanh import VectorisedTanh


@pytorch_funcify.register(VectorisedTanh)
def pytorch_funcify_VectorisedTanh(op, **kwargs):
    dtype = getattr(torch, op.dtype)

    def vectorised_tanh(x):
        return torch.tanh(x.to(dtype))

    return vectorised_tanh
