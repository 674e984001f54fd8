"""``pytensor_nnet_vectorised_tanh`` (tag ``numba``): in a graph that uses any of the package's
Ops, PyTensor's elementwise ``tanh`` of real numbers becomes :class:`VectorisedTanh`, the same
function in a vectorised Numba loop (see :mod:`pytensor_nnet.tanh`). It runs in Numba mode
only, before PyTensor fuses elementwise Ops (so ``tanh`` is not fused with its neighbours:
one more pass over the array, far cheaper than the calls it saves). A graph without the
package's Ops keeps PyTensor's ``tanh``. Exclude it by name to keep PyTensor's ``tanh``
everywhere: ``get_mode("NUMBA").excluding("pytensor_nnet_vectorised_tanh")``.
"""

import pytensor.scalar as ps
from pytensor.compile import optdb
from pytensor.tensor.elemwise import Elemwise

from pytensor_nnet.rewriting.package_graphs import InPackageGraphs
from pytensor_nnet.tanh import OUTPUT_DTYPES, VectorisedTanh


def _is_real_tanh(node):
    op = node.op
    return (
        isinstance(op, Elemwise)
        and type(op.scalar_op) is ps.Tanh
        and not op.inplace_pattern
        and node.outputs[0].type.dtype in OUTPUT_DTYPES  # not complex: tanh keeps complex inputs complex
    )


class VectorisedTanhInPackageGraphs(InPackageGraphs):
    """Puts :class:`VectorisedTanh` in place of PyTensor's ``tanh`` in graphs that use the
    package's Ops."""

    name = "pytensor_nnet_vectorised_tanh"

    def replacement(self, node):
        if _is_real_tanh(node):
            return VectorisedTanh(node.outputs[0].type.dtype)(node.inputs[0])
        return None


# Before PyTensor's elementwise fusion (position 49).
optdb.register(VectorisedTanhInPackageGraphs.name, VectorisedTanhInPackageGraphs(), "numba", position=48.8)
