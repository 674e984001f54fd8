"""Backend registrations for our Ops, one folder per backend (as PyTensor's link/<backend>/dispatch)."""

import importlib
import importlib.util

from pytensor_nnet.dispatch import numba  # noqa: F401

# JAX is an optional extra: register its dispatch only when it is installed.
if importlib.util.find_spec("jax") is not None:
    importlib.import_module("pytensor_nnet.dispatch.jax")
