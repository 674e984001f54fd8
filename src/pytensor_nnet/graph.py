"""Graph-side helpers of the Ops: int-vector inputs, constants read out of the graph, dtypes.

The Ops take their geometry (window sizes, strides, shapes) as int64 vector inputs built from
ints or symbolic int scalars; the entries known when the graph is built fix static shapes and
are checked at once.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.basic import Constant
from pytensor.scalar import upcast

from pytensor_nnet.shapes.axes import is_int


def constant_int(value):
    """``value`` as a Python int when it is known now (int, 0-d int array or a constant of
    one), else ``None``."""
    if isinstance(value, Constant):
        value = value.data
    if is_int(value):
        return int(value)
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iu":
        return int(value)
    return None


def constant_ints(var):
    """The entries of ``var`` as a tuple of Python ints when it is a constant, else ``None``."""
    if isinstance(var, Constant):
        return tuple(int(v) for v in np.asarray(var.data).ravel())
    return None


def scalar_constant(var):
    """The int scalar ``var`` as a Python int if the graph fixes its value (a constant, or an
    expression of constants and static shapes), else ``None``."""
    from pytensor.tensor.basic import get_scalar_constant_value
    from pytensor.tensor.exceptions import NotScalarConstantError

    try:
        return int(get_scalar_constant_value(var))
    except (NotScalarConstantError, ValueError, TypeError, IndexError):
        return None


def static_entries(var, n):
    """The ``n`` entries of the int vector ``var`` known when the graph is built (None elsewhere)."""
    constant = constant_ints(var)
    if constant is not None:
        return constant
    return tuple(scalar_constant(var[i]) for i in range(n))


def stack_ints(values):
    """A sequence of ints or symbolic int scalars as an int64 vector (a constant if all are ints)."""
    if all(is_int(v) for v in values):
        return pt.as_tensor_variable(np.asarray(values, dtype="int64"))
    return pt.stack([pt.cast(v, "int64") for v in values])


def as_int64(var):
    """The int tensor ``var`` cast to int64 (unchanged if it is one)."""
    return var if var.dtype == "int64" else pt.cast(var, "int64")


def is_int_scalar(value):
    """True for a symbolic integer scalar (a 0-d int tensor variable)."""
    type_ = getattr(value, "type", None)
    return getattr(type_, "ndim", None) == 0 and str(getattr(type_, "dtype", "")).startswith(("int", "uint"))


def int_vector(value, ndim, name, axes="one per pooled axis"):
    """``value`` (an int, a sequence of ints or symbolic int scalars, or an int vector) as an
    int64 vector of ``ndim`` entries, and its static entries (``None`` where unknown).

    ``axes`` says in the length message what the entries stand for.

    Raises
    ------
    ValueError
        For a sequence or vector of the wrong length.
    TypeError
        For a value that is not an int vector, or a sequence with a non-integer entry (a float
        is never truncated).
    """
    if is_int(value):
        value = (int(value),) * ndim
    if isinstance(value, list | tuple):
        if len(value) != ndim:
            raise ValueError(f"{name} must have {ndim} entries ({axes}); got {value!r}")
        if not all(is_int(v) or is_int_scalar(v) for v in value):
            raise TypeError(f"{name} entries must be ints or symbolic int scalars (never truncated); got {value!r}")
        value = stack_ints(value)
    var = pt.as_tensor_variable(value)
    if var.ndim != 1 or not var.dtype.startswith(("int", "uint")):
        raise TypeError(f"{name} must be an int or a vector of {ndim} ints; got {var.type}")
    if var.type.shape[0] not in (None, ndim):
        raise ValueError(f"{name} must have {ndim} entries ({axes}); got {var.type.shape[0]}")
    var = as_int64(var)
    return var, static_entries(var, ndim)


def float_dtype(*dtypes):
    """PyTensor's upcast of ``dtypes``; integers (alone) upcast with ``floatX``, as ``true_div``
    does."""
    dtype = upcast(*dtypes)
    if not dtype.startswith("float"):
        dtype = upcast(dtype, pytensor.config.floatX)
    return dtype
