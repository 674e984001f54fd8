"""Numba registrations for the random sparse Ops (``Poisson``, ``Binomial``, ``Multinomial``).

Each implementation validates its inputs in nopython mode, copies the generator (then advances
the copy: not in place) and calls the cached samplers of ``pytensor_nnet.kernels.sparse_random``.
The cache keys follow the code (see ``fingerprint``): this module and the kernels it calls.
"""

from __future__ import annotations

import sys

import numpy as np
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import (
    default_hash_key_from_props,
    register_funcify_and_cache_key,
)
from pytensor.link.numba.dispatch.compile_ops import numba_deepcopy
from pytensor.link.numba.dispatch.sparse.variable import (
    csc_matrix_from_components,
    csr_matrix_from_components,
)

from pytensor_nnet.dispatch.numba.fingerprint import source_fingerprint
from pytensor_nnet.kernels import sparse_conv, sparse_random
from pytensor_nnet.kernels.sparse_conv import check_compressed
from pytensor_nnet.sparse.random import Binomial, Multinomial, Poisson, multinomial_tolerance
from pytensor_nnet.sparse_basic import kernels as compressed_kernels

CACHE_VERSION = 1
KERNEL_FINGERPRINT = source_fingerprint(sys.modules[__name__], sparse_random, sparse_conv, compressed_kernels)


def _cache_key(op, **fields):
    return default_hash_key_from_props(op, cache_version=CACHE_VERSION, kernels=KERNEL_FINGERPRINT, **fields)


def _builder(fmt):
    """The nopython constructor of a ``fmt`` matrix from its parts and a shape tuple."""
    return csr_matrix_from_components if fmt == "csr" else csc_matrix_from_components


@register_funcify_and_cache_key(Poisson)
def numba_funcify_Poisson(op, node, **kwargs):
    fmt = node.inputs[1].type.format
    build = _builder(fmt)
    sample = sparse_random.poisson_sample

    @numba_basic.numba_njit
    def sparse_poisson(rng, x):
        n_rows, n_cols = x.shape
        if fmt == "csr":
            check_compressed(x.indptr, x.indices, n_rows, n_cols)
        else:
            check_compressed(x.indptr, x.indices, n_cols, n_rows)
        rng = numba_deepcopy(rng)
        data, indices, indptr = sample(rng, x.data, x.indices, x.indptr)
        return rng, build(data, indices, indptr, x.shape)

    return sparse_poisson, _cache_key(op, fmt=fmt)


@register_funcify_and_cache_key(Binomial)
def numba_funcify_Binomial(op, node, **kwargs):
    dtype = np.dtype(op.dtype)
    to_csc = op.format == "csc"
    sample = sparse_random.binomial_sample

    @numba_basic.numba_njit
    def sparse_binomial(rng, n, p, shape):
        if shape.shape[0] != 2:
            raise ValueError("Binomial: shape must have 2 entries")
        rows = shape[0]
        cols = shape[1]
        rng = numba_deepcopy(rng)
        data, indices, indptr = sample(rng, n.item(), p.item(), rows, cols, dtype)
        out = csr_matrix_from_components(data, indices, indptr, (np.int32(rows), np.int32(cols)))
        if to_csc:
            return rng, out.tocsc()
        return rng, out

    return sparse_binomial, _cache_key(op)


@register_funcify_and_cache_key(Multinomial)
def numba_funcify_Multinomial(op, node, **kwargs):
    n_var, p_var = node.inputs[1:]
    fmt = p_var.type.format
    is_csr = fmt == "csr"
    build = _builder(fmt)
    tol = multinomial_tolerance(p_var.type.dtype)
    scalar_n = n_var.type.ndim == 0
    group_by_row = sparse_random.group_by_row
    sample = sparse_random.multinomial_sample

    @numba_basic.numba_njit
    def sparse_multinomial(rng, n, p):
        n_rows, n_cols = p.shape
        if is_csr:
            check_compressed(p.indptr, p.indices, n_rows, n_cols)
        else:
            check_compressed(p.indptr, p.indices, n_cols, n_rows)
        counts = np.empty(n_rows, np.int64)
        if scalar_n:
            counts[:] = np.int64(n.item())
            n_flat = np.full(1, n.item())
        else:
            if n.shape[0] != n_rows:
                raise ValueError("multinomial: n must have one entry per row of p")
            n_flat = n.ravel()
            for i in range(n_rows):
                counts[i] = np.int64(n_flat[i])
        for v in n_flat:
            if not (v == np.floor(v) and abs(v) < np.inf):
                raise ValueError("multinomial: n must hold whole numbers of trials")
        row_order, row_ptr = group_by_row(is_csr, p.indices, p.indptr, n_rows)
        rng = numba_deepcopy(rng)
        draws = sample(rng, counts, p.data, row_order, row_ptr, tol)
        return rng, build(draws, p.indices.copy(), p.indptr.copy(), p.shape)

    return sparse_multinomial, _cache_key(op, fmt=fmt, scalar_n=scalar_n, tol=tol)
