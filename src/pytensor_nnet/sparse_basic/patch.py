"""Opt-in: the Numba implementations and the rewrites of :mod:`pytensor_nnet.sparse_basic`
for PyTensor's own sparse Ops.

``import pytensor_nnet`` gives these implementations to our subclasses only;
:func:`patch_pytensor_sparse` registers them for PyTensor's own classes too (where PyTensor
has none, and for the products, casts and conversions of ``_REPLACE_UPSTREAM``) and registers
the rewrites of :mod:`pytensor_nnet.sparse_basic.rewriting`. The complete list of what
changes is in ``docs/sparse.md``.
"""

from __future__ import annotations

import functools

import pytensor.sparse.basic as psb
import pytensor.sparse.math as psm
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import (
    numba_funcify,
    numba_funcify_and_cache_key,
    register_funcify_and_cache_key,
)

from pytensor_nnet.sparse_basic.numba.registry import PYTENSOR_IMPLEMENTATIONS
from pytensor_nnet.sparse_basic.rewriting import register_sparse_rewrites

# Replaced even where PyTensor has its own Numba implementation; docs/sparse.md says why and
# names the test that shows it (speed of the products, duplicates in DenseFromSparse, casts
# that PyTensor's version sends to object mode).
_REPLACE_UPSTREAM = (
    psm.Dot,
    psm.StructuredDot,
    psm.StructuredDotGradCSR,
    psm.StructuredDotGradCSC,
    psb.Cast,
    psb.DenseFromSparse,
)


def _has_upstream_implementation(op_class):
    return any(
        dispatcher.dispatch(op_class) is not dispatcher.dispatch(Op)
        for dispatcher in (numba_funcify, numba_funcify_and_cache_key)
    )


@functools.cache
def pytensor_classes_to_patch():
    """PyTensor's sparse Op classes that :func:`patch_pytensor_sparse` gives our implementation
    (decided once, before patching, from PyTensor's own registrations)."""
    return tuple(
        op_class
        for op_class, _ in PYTENSOR_IMPLEMENTATIONS
        if op_class in _REPLACE_UPSTREAM or not _has_upstream_implementation(op_class)
    )


_PATCHED = []


def patch_pytensor_sparse():
    """Give PyTensor's own sparse Ops our Numba implementations and register two rewrites.

    Opt-in (``import pytensor_nnet`` alone changes nothing in PyTensor): afterwards
    every graph of ``pytensor.sparse`` Ops in Numba mode uses the implementations of
    :mod:`pytensor_nnet.sparse_basic.numba` where PyTensor has none (instead of object mode) and for the products, casts
    and conversions listed in ``_REPLACE_UPSTREAM``; the rewrites
    ``pytensor_nnet_usmm_fusion`` and ``pytensor_nnet_csm_grad_sampled_dot`` are
    registered. Calling it again does nothing.
    """
    if _PATCHED:
        return
    chosen = pytensor_classes_to_patch()
    for op_class, funcify_and_key in PYTENSOR_IMPLEMENTATIONS:
        if op_class in chosen:
            register_funcify_and_cache_key(op_class)(funcify_and_key)
    register_sparse_rewrites()
    _PATCHED.append(True)
