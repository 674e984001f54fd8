"""Numba implementations of ``pytensor.sparse`` Ops.

PyTensor 3 runs about half of its sparse Ops in Numba's object mode (a Python callback with a
warning). Importing this package registers a ``numba_funcify`` implementation for each of them
on our subclasses (:mod:`pytensor_nnet.sparse_basic.ops`), with the same results as the Op's
``perform``, including faster kernels for the sparse x dense products (``Dot``,
``StructuredDot`` and the structured gradient ``StructuredDotGradCSR/CSC``);
:func:`pytensor_nnet.sparse.patch_pytensor_sparse` gives them to PyTensor's own classes. The
complete list is in ``docs/sparse.md``.

Every implementation validates the compressed structure of its sparse inputs and the shapes of
its dense inputs (``ValueError`` naming the Op and the argument) before entering the kernels of
:mod:`pytensor_nnet.sparse_basic.kernels`, which therefore never index out of bounds.

``registry`` (registration and cache keys), ``helpers`` (validation and matrix builders usable
in Numba code), and one module per group of Ops: ``products``, ``elementwise``, ``structure``.
"""

from pytensor_nnet.sparse_basic.numba import (
    elementwise,  # noqa: F401
    products,  # noqa: F401
    structure,  # noqa: F401
)
