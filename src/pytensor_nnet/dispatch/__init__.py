"""Backend registrations for our Ops, one folder per backend (as PyTensor's link/<backend>/dispatch)."""

from pytensor_nnet.dispatch import numba  # noqa: F401

try:  # JAX is an optional extra
    import jax  # noqa: F401
except ImportError:  # pragma: no cover - exercised only without the extra
    pass
else:
    from pytensor_nnet.dispatch import jax as _jax  # noqa: F401
