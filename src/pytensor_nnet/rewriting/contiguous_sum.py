"""``pytensor_nnet_contiguous_sum`` (tag ``numba``): in a graph that uses any of the package's
Ops, PyTensor's ``Sum`` of a float32 or float64 tensor of two or more dimensions becomes
:class:`ContiguousSum`, the same sum from a kernel that compiles once per dtype pair (see
:mod:`pytensor_nnet.contiguous_sum`). It runs in Numba mode only, after PyTensor's fusions (in
PyTensor 3.3 also of elementwise Ops with the reductions after them), so a sum that PyTensor
fused into an elementwise loop stays there. A graph without the package's Ops keeps
PyTensor's sums. Exclude it by name to keep them everywhere:
``get_mode("NUMBA").excluding("pytensor_nnet_contiguous_sum")``.
"""

import pytensor.scalar as ps
from pytensor.compile import optdb
from pytensor.tensor.elemwise import CAReduce

from pytensor_nnet.contiguous_sum import DTYPES, ContiguousSum
from pytensor_nnet.rewriting.package_graphs import InPackageGraphs


def contiguous_sum_for(node):
    """A :class:`ContiguousSum` output computing ``node``'s output (a PyTensor ``Sum`` over
    some axes of a tensor of two or more dimensions), or None for any other node."""
    op = node.op
    if not (isinstance(op, CAReduce) and type(op.scalar_op) is ps.Add):
        return None
    (x,), (out,) = node.inputs, node.outputs
    acc_dtype = getattr(op, "acc_dtype", None) or out.type.dtype
    if x.type.ndim < 2 or not {x.type.dtype, acc_dtype, out.type.dtype} <= set(DTYPES):
        return None
    new = ContiguousSum(x.type.ndim, op.axis, acc_dtype, out.type.dtype)(x)
    return new if out.type.is_super(new.type) else None  # the same type, or a more precise static shape


class ContiguousSumInPackageGraphs(InPackageGraphs):
    """Puts :class:`ContiguousSum` in place of PyTensor's sums of tensors of two or more
    dimensions in graphs that use the package's Ops."""

    name = "pytensor_nnet_contiguous_sum"

    def replacement(self, node):
        return contiguous_sum_for(node)


# After PyTensor's fusions: of elementwise Ops (position 49) and, in PyTensor 3.3, of elementwise Ops with
# the reductions after them (`fuse_indexed_into_elemwise`, position 100).
optdb.register(ContiguousSumInPackageGraphs.name, ContiguousSumInPackageGraphs(), "numba", position=100.5)
