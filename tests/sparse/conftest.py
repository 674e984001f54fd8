"""The tests of this folder check PyTensor's own sparse Ops with our implementations, so the
opt-in patch is applied for the whole test session (what ``import pytensor_nnet`` alone
does is checked in a fresh interpreter by ``tests/test_import.py``)."""

from pytensor_nnet.sparse import patch_pytensor_sparse

patch_pytensor_sparse()
