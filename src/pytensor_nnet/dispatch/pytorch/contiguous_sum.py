"""PyTorch implementation of :class:`pytensor_nnet.contiguous_sum.ContiguousSum`: ``torch.sum``."""

import torch
from pytensor.link.pytorch.dispatch import pytorch_funcify

from pytensor_nnet.contiguous_sum import ContiguousSum


@pytorch_funcify.register(ContiguousSum)
def pytorch_funcify_ContiguousSum(op, **kwargs):
    acc_dtype, dtype = getattr(torch, op.acc_dtype), getattr(torch, op.dtype)

    def contiguous_sum(x):
        if not op.axes:  # torch.sum over dim=() sums every axis
            return x.to(acc_dtype).to(dtype)
        return torch.sum(x, dim=op.axes, dtype=acc_dtype).to(dtype)

    return contiguous_sum
