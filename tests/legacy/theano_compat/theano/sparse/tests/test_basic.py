"""The helpers other legacy sparse test files import from this module."""

import numpy as np
import scipy.sparse


def as_sparse_format(data, format):
    return getattr(scipy.sparse, format + "_matrix")(data)


def random_lil(shape, dtype, nnz):
    rval = scipy.sparse.lil_matrix(shape, dtype=dtype)
    huge = 2**30
    for _ in range(nnz):
        idx = np.random.randint(1, huge + 1, size=2) % shape
        value = np.random.rand()
        if dtype in ("int32", "int64", "int8"):
            value = int(value * 100)
        rval.__setitem__(tuple(idx), value)
    return rval


def sparse_random_inputs(*args, **kwargs):
    raise NotImplementedError("sparse_random_inputs: not used by the selected legacy files")
