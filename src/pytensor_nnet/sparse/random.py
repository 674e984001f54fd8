"""Random sparse matrices (the legacy ``sparse.sandbox.sp2``), seeded like PyTensor's RVs.

Each Op takes a random generator (``pytensor.tensor.random`` ``RandomGeneratorType``) as
its first input and returns ``(next_rng, draws)``, the convention of PyTensor 3's random
variables, so draws are reproducible from a seed (the legacy ops drew from numpy's global
state and were not).

The legacy call forms keep working: ``poisson(x)``, ``Binomial(format, dtype)(n, p,
shape)`` (and the ``csr_fbinomial``-style instances), ``multinomial(n, p)``. Called like
that, an Op creates its own shared generator, seeded by ``seed=`` (fresh entropy when
omitted), whose state advances each time the compiled function runs. Pass ``rng=`` to use
your own generator; ``return_next_rng=True`` returns ``(next_rng, draws)`` to thread it on.

The draws are numpy's (Numba ports numpy's samplers), so the Numba and Python backends give
identical matrices for the same seed.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytensor.sparse as ps
import pytensor.tensor as pt
import scipy.sparse
from pytensor.gradient import grad_undefined
from pytensor.graph.basic import Apply, Constant
from pytensor.sparse.type import SparseTensorType
from pytensor.tensor import get_vector_length
from pytensor.tensor.random.op import RNGConsumerOp
from pytensor.tensor.random.type import RandomType
from pytensor.tensor.random.utils import custom_rng_deepcopy

from pytensor_nnet.compat import Op, shared_rng
from pytensor_nnet.kernels import sparse_random as kernels
from pytensor_nnet.kernels.sparse_conv import check_compressed

__all__ = [
    "Poisson",
    "poisson",
    "Binomial",
    "csr_fbinomial",
    "csc_fbinomial",
    "csr_dbinomial",
    "csc_dbinomial",
    "Multinomial",
    "multinomial",
]

_FORMATS = ("csr", "csc")


def _integer(var):
    return var.dtype.startswith(("int", "uint"))


def _checked(x):
    """``x`` (a scipy CSR/CSC matrix) after validating its compressed indices."""
    n_major, n_minor = x.shape if x.format == "csr" else x.shape[::-1]
    check_compressed(x.indptr, x.indices, n_major, n_minor)
    return x


def multinomial_tolerance(dtype):
    """Allowed ``|sum(row) - 1|`` for probabilities of ``dtype``: ``sqrt(eps)``."""
    return float(np.sqrt(np.finfo(dtype).eps))


class SparseRandomOp(Op, RNGConsumerOp):
    """Base class: inputs ``(rng, *params)``, outputs ``(next_rng, draws)``.

    An ``RNGConsumerOp`` (``update`` maps the generator to the next one), so PyTensor's own
    random-graph tools apply: e.g. a function that only uses the draws' shape (given by
    ``infer_shape``) neither draws nor advances the generator, as for PyTensor's random
    variables.

    Subclasses implement ``make_params`` (checked parameter variables), ``output_type``,
    ``draw(rng, *params)`` (numeric, advances ``rng``) and ``draws_shape(node, param_shapes)``
    (the draws' shape from the parameters, so that asking for it does not draw).
    """

    def __call__(self, *params, rng=None, seed=None, return_next_rng=False):
        owned = rng is None
        if owned:
            rng = shared_rng(seed=seed)
        elif seed is not None:
            raise ValueError("give either rng or seed, not both")
        node = self.make_node(rng, *params)
        next_rng, draws = node.outputs
        if owned:
            # The legacy ops drew fresh values at every call: advance the owned generator
            # with a default update (deprecated in PyTensor 3, still honoured by
            # pytensor.function; pass rng= and updates to avoid relying on it).
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                rng.default_update = next_rng
        return (next_rng, draws) if return_next_rng else draws

    def make_node(self, rng, *params):
        if not isinstance(getattr(rng, "type", None), RandomType):
            raise TypeError(f"rng must be a random generator variable (pytensor.tensor.random.shared_rng); got {rng!r}")
        params = self.make_params(*params)
        return Apply(self, [rng, *params], [rng.type(), self.output_type(*params)()])

    def perform(self, node, inputs, output_storage):
        rng = custom_rng_deepcopy(inputs[0])
        output_storage[1][0] = self.draw(rng, *inputs[1:])
        output_storage[0][0] = rng

    def update(self, node):
        return {node.inputs[0]: node.outputs[0]}

    def infer_shape(self, fgraph, node, input_shapes):
        return [None, self.draws_shape(node, input_shapes[1:])]

    def pullback(self, inputs, outputs, cotangents):
        return [grad_undefined(self, i, inp, "sampling is not differentiable") for i, inp in enumerate(inputs)]


class Poisson(SparseRandomOp):
    """Poisson draws with the stored values of a sparse matrix as means; zeros dropped.

    ``poisson(x)``: ``x`` is a ``pytensor.sparse`` matrix (CSR or CSC) of non-negative
    finite means. The result has ``x``'s format, shape and dtype; its pattern is the
    stored entries of ``x`` whose draw is not 0.
    """

    __props__ = ()

    def make_params(self, x):
        x = ps.as_sparse_variable(x)
        return [x]

    def output_type(self, x):
        return x.type

    def draws_shape(self, node, param_shapes):
        return param_shapes[0]

    def draw(self, rng, x):
        _checked(x)
        data, indices, indptr = kernels.poisson_sample(rng, np.ascontiguousarray(x.data), x.indices, x.indptr)
        cls = scipy.sparse.csr_matrix if x.format == "csr" else scipy.sparse.csc_matrix
        return cls((data, indices, indptr), shape=x.shape)


poisson = Poisson()


class Binomial(SparseRandomOp):
    """A sparse matrix of binomial(n, p) counts, zeros dropped.

    ``Binomial(format, dtype)(n, p, shape)``: ``n`` an integer scalar (>= 0), ``p`` a
    scalar in [0, 1], ``shape`` two non-negative ints. The counts are drawn in C order
    (so CSR and CSC results hold the same matrix for the same seed).
    """

    __props__ = ("format", "dtype")

    def __init__(self, format, dtype):
        if format not in _FORMATS:
            raise ValueError(f"format must be 'csr' or 'csc'; got {format!r}")
        self.format = format
        self.dtype = np.dtype(dtype).name

    def make_params(self, n, p, shape):
        n = pt.as_tensor_variable(n)
        if n.ndim != 0 or not _integer(n):
            raise TypeError(f"n must be an integer scalar; got {n.type}")
        p = pt.as_tensor_variable(p)
        if p.ndim != 0:
            raise TypeError(f"p must be a scalar; got {p.type}")
        shape = pt.as_tensor_variable(shape)
        if shape.ndim != 1 or not _integer(shape):
            raise TypeError(f"shape must be a vector of 2 ints; got {shape.type}")
        try:
            length = get_vector_length(shape)
        except ValueError:
            length = None
        if length is not None and length != 2:
            raise ValueError(f"shape must have 2 entries (a sparse matrix); got {length}")
        for name, var, bad in (("n", n, lambda v: v < 0), ("p", p, lambda v: not 0 <= v <= 1)):
            if isinstance(var, Constant) and bad(var.data):
                raise ValueError(f"{name}={var.data} is out of range (n >= 0, 0 <= p <= 1)")
        return [n, pt.cast(p, "float64"), pt.cast(shape, "int64")]

    def output_type(self, n, p, shape):
        static = (None, None)
        if isinstance(shape, Constant):
            static = tuple(int(v) for v in shape.data)
        return SparseTensorType(self.format, self.dtype, shape=static)

    def draws_shape(self, node, param_shapes):
        shape = node.inputs[3]
        return (shape[0], shape[1])

    def draw(self, rng, n, p, shape):
        if shape.shape != (2,) or (shape < 0).any():
            raise ValueError(f"shape must be two non-negative ints; got {shape}")
        rows, cols = (int(v) for v in shape)
        data, indices, indptr = kernels.binomial_sample(rng, int(n), float(p), rows, cols, np.dtype(self.dtype))
        out = scipy.sparse.csr_matrix((data, indices, indptr), shape=(rows, cols))
        return out if self.format == "csr" else out.tocsc()


csr_fbinomial = Binomial("csr", "float32")
csc_fbinomial = Binomial("csc", "float32")
csr_dbinomial = Binomial("csr", "float64")
csc_dbinomial = Binomial("csc", "float64")


class Multinomial(SparseRandomOp):
    """Multinomial counts over the stored entries of each row of a sparse ``p``.

    ``multinomial(n, p)``: ``p`` a CSR or CSC matrix whose rows are probability vectors
    (entries in [0, 1], each row summing to 1 within ``sqrt(eps)`` of its dtype); ``n`` the
    number of trials, a scalar for every row or a vector with one entry per row (whole
    numbers >= 0). The result has ``p``'s format, dtype and exact pattern (zero counts stay
    stored); its rows sum to ``n``.
    """

    __props__ = ()

    def make_params(self, n, p):
        p = ps.as_sparse_variable(p)
        if not p.dtype.startswith("float"):
            raise TypeError(f"p must hold float probabilities; got dtype {p.dtype}")
        n = pt.as_tensor_variable(n)
        if n.ndim > 1:
            raise TypeError(f"n must be a scalar or a vector (one per row of p); got ndim={n.ndim}")
        if isinstance(n, Constant) and (np.asarray(n.data) < 0).any():
            raise ValueError(f"n must be >= 0; got {n.data}")
        return [n, p]

    def output_type(self, n, p):
        return p.type

    def draws_shape(self, node, param_shapes):
        return param_shapes[1]

    def draw(self, rng, n, p):
        _checked(p)
        n_rows = p.shape[0]
        n = np.asarray(n)
        if n.ndim == 1 and n.shape[0] != n_rows:
            raise ValueError(f"n has {n.shape[0]} entries but p has {n_rows} rows")
        if not np.all(np.isfinite(n)) or np.any(n != np.round(n)):
            raise ValueError(f"n must hold whole numbers of trials; got {n}")
        if np.any(n < 0):
            raise ValueError(f"n must be >= 0; got {n}")
        counts = kernels.multinomial_sample(
            rng,
            np.broadcast_to(n.astype(np.int64), (n_rows,)).copy(),
            np.ascontiguousarray(p.data),
            *kernels.group_by_row(p.format == "csr", p.indices, p.indptr, n_rows),
            multinomial_tolerance(p.dtype),
        )
        cls = scipy.sparse.csr_matrix if p.format == "csr" else scipy.sparse.csc_matrix
        return cls((counts, p.indices.copy(), p.indptr.copy()), shape=p.shape)


multinomial = Multinomial()
