"""Rewrites that change PyTensor's own Ops only in graphs that use the package's Ops, so that
importing the package leaves every other graph as PyTensor builds it."""

from pytensor.graph.features import ReplaceValidate
from pytensor.graph.rewriting.basic import GraphRewriter


def uses_package_ops(fgraph):
    """Whether a node of ``fgraph`` runs an Op defined in this package."""
    return any(type(node.op).__module__.startswith("pytensor_nnet.") for node in fgraph.apply_nodes)


class InPackageGraphs(GraphRewriter):
    """Replaces, in a graph that uses the package's Ops, the output of each node for which
    :meth:`replacement` gives a variable (nodes visited in topological order); the reason
    recorded is the rewrite's ``name``."""

    name = None

    def replacement(self, node):
        """The variable to put in place of ``node``'s single output, or None to keep it."""
        raise NotImplementedError

    def add_requirements(self, fgraph):
        fgraph.attach_feature(ReplaceValidate())

    def apply(self, fgraph):
        if not uses_package_ops(fgraph):
            return
        for node in fgraph.toposort():
            new = self.replacement(node)
            if new is not None:
                fgraph.replace_validate(node.outputs[0], new, reason=self.name)
