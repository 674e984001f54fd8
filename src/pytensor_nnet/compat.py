"""Every difference between the supported PyTensor releases, in one place.

Supported: PyTensor 2.38.x (PyMC 5) and 3.0.7 up to the newest 3.x (PyMC 6). Nothing else in
the package tests versions; it imports what differs from here:

- ``Op`` / ``VersionAdapted``: our Ops are written against the newest API, gradients as
  ``pullback`` / ``pushforward`` and ``infer_shape(self, node, input_shapes)``. On 2.38 (whose
  gradient hooks are ``L_op`` / ``R_op``) the class gets ``L_op`` / ``R_op`` forwarding to
  them; ``infer_shape`` accepts both the old ``(fgraph, node, shapes)`` call (PyTensor < 3.1)
  and the new ``(node, shapes)`` one, so no release warns about its signature.
- ``sparse_math_op(name)``: the ``pytensor.sparse.math`` classes renamed in 3.3.5
  (``AddSD`` -> ``AddSparseDense``, ...), under either name.
- ``pushforward``: ``pytensor.gradient.pushforward`` (``Rop`` before 3.0).
- ``shared_rng`` / ``symbolic_rng``: a shared or an input random generator variable
  (``pytensor.tensor.random.variable`` is new in 3.0).
"""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytensor
from pytensor.gradient import DisconnectedType, disconnected_type
from pytensor.graph.op import Op as _PyTensorOp

__all__ = [
    "PYTENSOR_VERSION",
    "SUPPORTED_PYTENSOR",
    "Op",
    "VersionAdapted",
    "check_pytensor_version",
    "pushforward",
    "shared_rng",
    "sparse_math_op",
    "symbolic_rng",
]

SUPPORTED_PYTENSOR = "2.38.x (PyMC 5) or 3.0.7 up to the newest 3.x (PyMC 6)"


def _version_tuple(text):
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


PYTENSOR_VERSION = _version_tuple(pytensor.__version__)


def check_pytensor_version(version=PYTENSOR_VERSION, text=pytensor.__version__):
    """Raise ``ImportError`` naming the installed and the supported releases if unsupported."""
    supported = version[:2] == (2, 38) or (3, 0, 7) <= version < (4,)
    if not supported:
        raise ImportError(
            f"pytensor_nnet supports PyTensor {SUPPORTED_PYTENSOR}; PyTensor {text} is "
            f"installed. Install a supported release, e.g. pip install 'pytensor>=3.0.7,<4'."
        )


check_pytensor_version()

# PyTensor 3 renamed the gradient hooks: L_op/grad -> pullback, R_op -> pushforward.
HAS_PULLBACK = hasattr(_PyTensorOp, "pullback")


def _accepting_both_call_forms(method):
    """Wrap ``infer_shape`` so that ``(fgraph, node, shapes)`` and ``(node, shapes)`` both work.

    ``method`` may be written either way; the wrapper's signature ``(self, *args)`` is the one
    PyTensor >= 3.1 inspects, and it does not warn about it.
    """
    takes_fgraph = len(inspect.signature(method).parameters) == 4

    def infer_shape(self, *args):
        node, input_shapes = args[-2:]
        if takes_fgraph:
            return method(self, None, node, input_shapes)
        return method(self, node, input_shapes)

    infer_shape.__doc__ = method.__doc__
    infer_shape.adapted_from = method  # not __wrapped__: inspect.signature would follow it
    return infer_shape


def _l_op(self, inputs, outputs, output_grads):
    return self.pullback(inputs, outputs, output_grads)


def _r_op(self, inputs, eval_points):
    tangents = [disconnected_type() if point is None else point for point in eval_points]
    outputs = self.make_node(*inputs).outputs
    result = self.pushforward(inputs, outputs, tangents)
    return [None if isinstance(r.type, DisconnectedType) else r for r in result]


class VersionAdapted:
    """Mixin adapting an Op class written against the newest PyTensor to the installed one.

    Put it first in the bases of an Op that subclasses one of PyTensor's (``class
    Dot(VersionAdapted, pytensor.sparse.math.Dot)``); :class:`Op` already includes it.
    """

    def __init_subclass__(cls, **kwargs):
        method = cls.__dict__.get("infer_shape")
        if method is not None and not hasattr(method, "adapted_from"):
            cls.infer_shape = _accepting_both_call_forms(method)
        if not HAS_PULLBACK:
            if "pullback" in cls.__dict__:
                cls.L_op = _l_op
            if "pushforward" in cls.__dict__:
                cls.R_op = _r_op
        super().__init_subclass__(**kwargs)


class Op(VersionAdapted, _PyTensorOp):
    """``pytensor.graph.op.Op`` with the version adaptation of :class:`VersionAdapted`."""


def sparse_math_op(name):
    """A ``pytensor.sparse.math`` class by its 3.3.5+ name or its older one.

    ``sparse_math_op("AddSparseDense")`` is ``AddSparseDense`` on PyTensor >= 3.3.5 and
    ``AddSD`` before.
    """
    import pytensor.sparse.math as psm

    if hasattr(psm, name):
        return getattr(psm, name)
    return getattr(psm, _OLD_SPARSE_NAMES[name])


def _old_sparse_names():
    names = {
        "AddSparseDense": "AddSD",
        "AddSparseSparse": "AddSS",
        "AddSparseSparseData": "AddSSData",
        "StructuredAddSparseDenseVector": "StructuredAddSV",
        "MultiplySparseSparse": "SparseSparseMultiply",
        "MultiplySparseDense": "SparseDenseMultiply",
        "MultiplySparseDenseVector": "SparseDenseVectorMultiply",
    }
    for comparison in ("Equal", "NotEqual", "LessThan", "GreaterThan", "LessEqual", "GreaterEqual"):
        names[f"{comparison}SparseSparse"] = f"{comparison}SS"
        names[f"{comparison}SparseDense"] = f"{comparison}SD"
    return names


_OLD_SPARSE_NAMES = _old_sparse_names()


def shared_rng(seed=None):
    """A shared ``numpy.random.Generator`` variable seeded with ``seed``."""
    try:
        from pytensor.tensor.random.variable import shared_rng as make
    except ImportError:  # PyTensor 2.38
        return pytensor.shared(np.random.default_rng(seed))
    return make(seed=seed)


def symbolic_rng(name=None):
    """A symbolic (input) ``numpy.random.Generator`` variable."""
    try:
        from pytensor.tensor.random.variable import rng as make
    except ImportError:  # PyTensor 2.38
        from pytensor.tensor.random.type import RandomGeneratorType

        return RandomGeneratorType()(name)
    return make(name)


def pushforward(f, wrt, tangents, use_op_pushforward=False, **kwargs):
    """``pytensor.gradient.pushforward`` (Jacobian-vector product), ``Rop`` on PyTensor 2.38."""
    import pytensor.gradient as gradient

    if hasattr(gradient, "pushforward"):
        return gradient.pushforward(f, wrt, tangents, use_op_pushforward=use_op_pushforward, **kwargs)
    return gradient.Rop(f, wrt, tangents, use_op_rop_implementation=use_op_pushforward, **kwargs)
