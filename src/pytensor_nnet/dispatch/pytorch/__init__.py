"""``pytorch_funcify`` registrations of every Op of the package (PyTensor's ``mode="PYTORCH"``).

Importing this module (it imports torch) registers them; ``import pytensor_nnet`` alone never
imports torch. One module per Op family, as ``dispatch/jax``: ``conv`` (the abstract
convolution Ops), ``pool``, ``im2col``, ``blocksparse``, ``sparse_conv`` (sparse-matrix
convolution and max pooling), ``sparse_random`` and ``sparse_basic`` (clear errors: no PyTorch
implementation), and ``fixes`` (PyTensor's conversions of ``==`` and ``SpecifyShape``, which
break our graphs or split them for ``torch.compile``). An Op or option the backend cannot run
raises ``NotImplementedError`` when the function is compiled, naming the Op, the option and the
backends that run it.

Device: the registered functions run where their inputs are. PyTensor's PyTorch linker turns
numpy inputs into tensors on torch's default device, so compiling and calling a function inside
``with torch.device("cuda"):`` runs it on the GPU (outputs come back as numpy arrays).
"""

from pytensor_nnet.dispatch.pytorch import (
    blocksparse,  # noqa: F401
    contiguous_sum,  # noqa: F401
    conv,  # noqa: F401
    fixes,  # noqa: F401
    im2col,  # noqa: F401
    pool,  # noqa: F401
    sparse_conv,  # noqa: F401
    sparse_random,  # noqa: F401
    tanh,  # noqa: F401
)
from pytensor_nnet.sparse_basic import pytorch as sparse_basic  # noqa: F401
