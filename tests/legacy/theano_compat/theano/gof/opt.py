"""``theano.gof.opt.check_stack_trace``: whether the nodes of a compiled graph carry the stack
trace of the user code that created them (PyTensor's ``tag.trace``, which its rewrites copy).

``ops_to_check`` is ``"last"``, ``"all"``, an Op instance, an Op class, a tuple or list of them,
or a predicate on Ops. Placeholders of legacy internals with no counterpart
(``theano._internal``) never occur in our graphs: they are left out of the check, and a check
of nothing but placeholders passes (the rest of such a test still runs)."""

from theano._internal import is_legacy_internal


def _selected(fgraph, ops_to_check):
    nodes = fgraph.toposort()
    if ops_to_check == "last":
        return [out.owner for out in fgraph.outputs if out.owner is not None]
    if ops_to_check == "all":
        return nodes
    if callable(ops_to_check) and not isinstance(ops_to_check, type):
        return [n for n in nodes if ops_to_check(n.op)]
    targets = ops_to_check if isinstance(ops_to_check, list | tuple) else (ops_to_check,)
    classes = tuple(t for t in targets if isinstance(t, type) and not is_legacy_internal(t))
    instances = [t for t in targets if not isinstance(t, type)]
    if not classes and not instances:
        return None
    return [n for n in nodes if (classes and isinstance(n.op, classes)) or n.op in instances]


def check_stack_trace(f_or_fgraph, ops_to_check="last", bug_print="raise"):
    fgraph = getattr(getattr(f_or_fgraph, "maker", None), "fgraph", f_or_fgraph)
    nodes = _selected(fgraph, ops_to_check)
    if nodes is None:
        return True
    if not nodes:
        if bug_print == "raise":
            raise Exception("Provided op instances/classes are not in the graph or the graph is empty")
        return True
    return all(getattr(out.tag, "trace", None) for node in nodes for out in node.outputs)
