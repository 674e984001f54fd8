"""Graph rewrites, registered in PyTensor's databases under names users can exclude."""

from pytensor_nnet.rewriting import conv  # noqa: F401
from pytensor_nnet.rewriting import im2col  # noqa: F401
from pytensor_nnet.rewriting import blocksparse  # noqa: F401
