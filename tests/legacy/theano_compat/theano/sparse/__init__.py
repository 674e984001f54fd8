"""``theano.sparse``: ``pytensor.sparse``."""

import pytensor.sparse as _sparse
from pytensor.sparse import *  # noqa: F401,F403

enable_sparse = True
sparse_formats = ["csc", "csr"]
float_dtypes = ["float32", "float64"]


def __getattr__(name):
    return getattr(_sparse, name)
