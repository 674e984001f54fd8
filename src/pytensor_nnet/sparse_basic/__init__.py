"""Additions to PyTensor's own sparse Ops (``pytensor.sparse``), apart from our NN Ops.

``ops``
    Subclasses of PyTensor's sparse Ops with corrected gradients and pushforwards (public as
    :mod:`pytensor_nnet.sparse`).
``kernels``
    Framework-free CSR/CSC kernels (numpy + Numba, no PyTensor import; this ``__init__``
    imports nothing, so kernels elsewhere can use them).
``numba``
    Numba implementations of PyTensor's sparse Ops, registered for our subclasses at import.
``rewriting``
    Two sparse rewrites (Usmm fusion, sampled ``CSMGrad``).
``pytorch``
    Clear ``NotImplementedError`` for our subclasses in PyTorch mode (loaded with the PyTorch
    backend only).
``patch``
    :func:`~pytensor_nnet.sparse.patch_pytensor_sparse`: the opt-in that gives PyTensor's own
    classes the Numba implementations and registers the rewrites.
"""
