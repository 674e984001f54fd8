"""Registration of the Numba implementations of ``pytensor.sparse`` Ops.

:func:`register_sparse` registers an implementation at once for our subclasses of PyTensor's
sparse Ops (:mod:`pytensor_nnet.sparse_basic.ops`) and records it for PyTensor's own class,
which gets it only from :func:`pytensor_nnet.sparse_basic.patch.patch_pytensor_sparse`.

Cache keys follow PyTensor (``default_hash_key_from_props`` with a ``cache_version``) and also
include the node's input/output types and a hash of the implementation modules and of the
kernels, so a changed implementation never reuses a stale on-disk cache entry, and never one
of PyTensor's.
"""

from __future__ import annotations

import functools
import importlib

import pytensor.link.numba.dispatch  # noqa: F401  (PyTensor's registrations first: ours override)
from pytensor.link.numba.dispatch.basic import (
    default_hash_key_from_props,
    generate_fallback_impl,
    register_funcify_and_cache_key,
)

import pytensor_nnet.sparse  # noqa: F401  (our subclasses exist before anything registers)
from pytensor_nnet.dispatch.numba.fingerprint import source_fingerprint
from pytensor_nnet.sparse_basic import kernels

# the modules whose source is hashed into the cache keys (with the kernels)
IMPLEMENTATION_MODULES = ("registry", "helpers", "products", "elementwise", "structure")


@functools.cache
def _source_hash():
    modules = [importlib.import_module(f"{__package__}.{name}") for name in IMPLEMENTATION_MODULES]
    return source_fingerprint(*modules, kernels)


def _cache_key(op, node, version):
    """PyTensor-style key plus the node types and the source hash (see the module docstring)."""
    return default_hash_key_from_props(
        op,
        cache_version=version,
        package="pytensor_nnet.sparse",
        source=_source_hash(),
        types=tuple(str(v.type) for v in (*node.inputs, *node.outputs)),
    )


# PyTensor's own Op classes with an implementation, registered for them only by
# patch_pytensor_sparse(); our subclasses of them (pytensor_nnet.sparse) get it at import.
PYTENSOR_IMPLEMENTATIONS: list[tuple[type, object]] = []


def _own_subclasses(op_class):
    """``op_class`` itself if it is ours, else its subclasses defined in this package."""
    found = [op_class] if op_class.__module__.startswith("pytensor_nnet.") else []
    for sub in op_class.__subclasses__():
        found.extend(c for c in _own_subclasses(sub) if c not in found)
    return found


def register_sparse(op_class, version=1):
    """Register ``funcify(op, node) -> numba function`` with a cache key for ``op_class``.

    ``funcify`` may return ``None`` for a node it does not handle; the node then runs in
    object mode, exactly as without this package. The registration applies at once to our
    own classes (``op_class`` if it is ours, our subclasses of it otherwise); for a class of
    PyTensor's it waits for :func:`pytensor_nnet.sparse_basic.patch.patch_pytensor_sparse`.
    """

    def decorator(funcify):
        def funcify_and_key(op, node, **kwargs):
            fn = funcify(op, node, **kwargs)
            if fn is None:
                return generate_fallback_impl(op, node, **kwargs), None
            if isinstance(fn, tuple):  # delegated to an implementation with its own key
                fn, key = fn
                return fn, None if key is None else _cache_key(op, node, (version, key))
            return fn, _cache_key(op, node, version)

        for own_class in _own_subclasses(op_class):
            register_funcify_and_cache_key(own_class)(funcify_and_key)
        if not op_class.__module__.startswith("pytensor_nnet."):
            PYTENSOR_IMPLEMENTATIONS.append((op_class, funcify_and_key))
        return funcify

    return decorator
