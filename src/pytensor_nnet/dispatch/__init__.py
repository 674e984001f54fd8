"""Backend registrations for our Ops, one folder per backend (as PyTensor's link/<backend>/dispatch).

Numba (PyTensor's default backend) registers at import. JAX and PyTorch register lazily:
importing ``pytensor_nnet`` imports neither. Our registrations for a backend load right
after PyTensor's own dispatch module for it (``pytensor.link.jax.dispatch``,
``pytensor.link.pytorch.dispatch``), which PyTensor imports when a graph is first compiled
in that mode; if it is already loaded, they load at once.
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys

from pytensor_nnet.dispatch import numba  # noqa: F401

# PyTensor's dispatch module for a backend -> ours
LAZY_BACKENDS = {
    "pytensor.link.jax.dispatch": "pytensor_nnet.dispatch.jax",
    "pytensor.link.pytorch.dispatch": "pytensor_nnet.dispatch.pytorch",
}


def _register_ours(pytensor_module):
    ours = LAZY_BACKENDS[pytensor_module]
    if importlib.util.find_spec(ours) is not None:
        importlib.import_module(ours)


class _ThenRegisterOurs(importlib.abc.Loader):
    """Runs PyTensor's loader, then imports our registrations for that backend."""

    def __init__(self, loader, name):
        self._loader = loader
        self._name = name

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _register_ours(self._name)

    def __getattr__(self, attr):
        return getattr(self._loader, attr)


class _BackendImportHook(importlib.abc.MetaPathFinder):
    """Finds PyTensor's backend dispatch modules with the usual finders and wraps their loader."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in LAZY_BACKENDS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _ThenRegisterOurs(spec.loader, fullname)
                return spec
        return None


def install_backend_hooks():
    """Register our JAX/PyTorch dispatch now for loaded backends, on their import otherwise."""
    if not any(isinstance(finder, _BackendImportHook) for finder in sys.meta_path):
        sys.meta_path.insert(0, _BackendImportHook())
    for pytensor_module in LAZY_BACKENDS:
        if pytensor_module in sys.modules:
            _register_ours(pytensor_module)


install_backend_hooks()
