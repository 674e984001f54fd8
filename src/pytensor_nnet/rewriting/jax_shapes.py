"""Concrete shapes for JAX: shape arguments computed from array shapes become Python ints.

``jax.jit`` traces a function with abstract array *values* but concrete array *shapes*. Ops
whose output shape is an input (``Reshape``, ``Alloc``, ``Split``, ``ARange``, the convolution
gradients) need that input as Python ints while tracing. PyTensor's JAX backend gets them when the input
is a constant, ``x.shape`` or a tuple of ``x.shape[i]`` (``JAXShapeTuple``); but gradient
graphs compute shapes with arithmetic (``x.shape[2] * 2 + 1``, fused into ``Composite``
scalars by the rewrites), and JAX traces every ``jnp`` operation, so these become traced
values and ``jax.jit`` fails ("Shapes must be 1D sequences of concrete values of integer
type").

The JAX-only rewrite ``pytensor_nnet_jax_static_shapes`` (tag ``jax``) replaces such inputs by
the outputs of :class:`StaticShape`, an Op that evaluates the small integer graph in Python
(numpy) from the concrete leaves while JAX traces:

* ``Shape`` / ``Shape_i`` of any array (concrete while tracing);
* scalar integer inputs of the function: PyTensor's JAX linker passes inputs used only by
  ``JAXShapeTuple`` nodes as static arguments (one compilation per value); the rewrite
  ``pytensor_nnet_jax_static_scalar_inputs`` routes their other uses through a
  :class:`StaticShape` so that this holds.

The same rewrite turns checks on shapes (``CheckAndRaise``/``Assert`` whose conditions are
computed from shapes), which PyTensor's JAX backend skips with a warning, into checks that
raise while JAX traces, as the other backends raise when they run.

A shape that depends on the *values* of an array is left alone (JAX cannot trace it; the Op
that needs it raises). Users can exclude the rewrite by name.

:func:`concrete_scalars` and :func:`concrete_shape_vector` are the building blocks for the
rewrites of Ops with shape inputs.
"""

from __future__ import annotations

import numpy as np
from pytensor.compile import optdb
from pytensor.graph.basic import Apply, Constant
from pytensor.graph.op import Op
from pytensor.graph.rewriting.basic import GraphRewriter, dfs_rewriter, node_rewriter
from pytensor.raise_op import CheckAndRaise
from pytensor.scalar import ScalarType
from pytensor.tensor.basic import Alloc, AllocEmpty, ARange, MakeVector, Split, get_scalar_constant_value
from pytensor.tensor.exceptions import NotScalarConstantError
from pytensor.tensor.shape import Reshape, Shape, Shape_i
from pytensor.tensor.type import TensorType

__all__ = [
    "StaticARange",
    "StaticScalarInputs",
    "StaticCheckAndRaise",
    "StaticShape",
    "StaticSplit",
    "concrete_scalars",
    "concrete_shape_vector",
    "shape_blocker",
    "split_axis",
]


def _jax_shape_tuple():
    """PyTensor's ``JAXShapeTuple`` (its module imports jax: only call this from JAX rewrites)."""
    from pytensor.link.jax.dispatch.shape import JAXShapeTuple

    import pytensor_nnet.dispatch.jax.shape  # noqa: F401  (registers StaticShape's JAX function)

    return JAXShapeTuple


def describe(var):
    """A short name for ``var`` in error messages."""
    return f"`{var.name}`" if var.name else f"`{var}` ({var.type})"


class StaticShape(Op):
    """Integers computed by a small graph from concrete shape entries, outside of JAX tracing.

    ``StaticShape(inner_inputs, inner_outputs, leaves)(*carriers)``: each carrier is a
    ``Shape``/``Shape_i`` output or a ``JAXShapeTuple`` (concrete while JAX traces), fed to the
    matching ``inner_inputs`` placeholder; the outputs are ``inner_outputs`` evaluated with the
    Python linker, as Python ints in JAX. ``leaves`` are the original variables, for messages.
    """

    def __init__(self, inner_inputs, inner_outputs, leaves):
        self.inner_inputs = tuple(inner_inputs)
        self.inner_outputs = tuple(inner_outputs)
        self.leaves = tuple(leaves)
        self._fn = None

    def __str__(self):
        return f"StaticShape{{{len(self.inner_outputs)}}}"

    def __getstate__(self):
        return {**self.__dict__, "_fn": None}

    def make_node(self, *carriers):
        if len(carriers) != len(self.inner_inputs):
            raise TypeError(f"{self} takes {len(self.inner_inputs)} inputs; got {len(carriers)}")
        return Apply(self, list(carriers), [o.type() for o in self.inner_outputs])

    def evaluate(self, *values):
        """The outputs as numpy scalars, from the carriers' values (ints or int tuples)."""
        if self._fn is None:
            import pytensor
            from pytensor.compile.mode import Mode

            self._fn = pytensor.function(
                list(self.inner_inputs),
                list(self.inner_outputs),
                mode=Mode(linker="py", optimizer=None),
                on_unused_input="ignore",
            )
        args = [np.asarray(v, dtype=p.type.dtype) for v, p in zip(values, self.inner_inputs)]
        return self._fn(*args)

    def perform(self, node, inputs, output_storage):
        for storage, value, out in zip(output_storage, self.evaluate(*inputs), node.outputs):
            storage[0] = np.asarray(value, dtype=out.type.dtype)


class StaticSplit(Split):
    """``Split`` whose split sizes (its last input) are a ``JAXShapeTuple``: ints when JAX traces."""


def split_axis(op, node):
    """The constant axis of a ``Split`` node (a parameter of the Op, or its second input), or None."""
    if "axis" in op.__props__:
        return op.axis
    try:
        return int(get_scalar_constant_value(node.inputs[1]))
    except NotScalarConstantError:
        return None


class StaticARange(ARange):
    """``ARange`` whose bounds and step are concrete numbers when JAX traces."""


class StaticCheckAndRaise(CheckAndRaise):
    """``CheckAndRaise`` whose conditions are concrete when JAX traces: checked then, not skipped."""


def _is_small(var):
    """Scalars and vectors: the shape graphs worth evaluating outside JAX."""
    return isinstance(var.type, ScalarType) or (isinstance(var.type, TensorType) and var.type.ndim <= 1)


def _is_int_scalar_input(var):
    return (
        var.owner is None
        and isinstance(var.type, TensorType)
        and var.type.ndim == 0
        and var.type.dtype[:3] in ("int", "uin")
    )


def _is_concrete(var):
    """Whether ``var`` is a constant or has concrete values when JAX traces the function."""
    if isinstance(var, Constant):
        return True
    owner = var.owner
    if owner is None:
        return False
    if isinstance(owner.op, Shape | Shape_i | StaticShape):
        return True
    if type(owner.op).__name__ == "JAXShapeTuple":
        return all(_is_concrete(i) or _is_int_scalar_input(i) for i in owner.inputs)
    return False


def _leaves(targets):
    """Concrete leaves of the small graph computing ``targets``, or ``(None, blocker)``.

    The walk goes up from ``targets`` through scalars and vectors only; it stops at concrete
    variables and at scalar integer inputs of the function. Anything else (an array's values,
    a non-integer input) blocks: ``blocker`` is that variable.
    """
    leaves, seen, stack = [], set(), list(targets)
    while stack:
        var = stack.pop()
        if var in seen or isinstance(var, Constant):
            continue
        seen.add(var)
        if _is_concrete(var) or _is_int_scalar_input(var):
            leaves.append(var)
        elif var.owner is None or not _is_small(var):
            return None, var
        else:
            stack.extend(var.owner.inputs)
    return leaves, None


def shape_blocker(var):
    """The variable that keeps ``var`` from being computed from array shapes, or None."""
    return _leaves([var])[1]


def _rebuild(targets, memo):
    """Clone the graph of ``targets`` above ``memo``'s keys (replaced by its values)."""

    def rebuilt(var):
        if var in memo:
            return memo[var]
        if isinstance(var, Constant):
            return var
        node = var.owner
        inputs = [rebuilt(i) for i in node.inputs]
        if type(node.op).__name__ == "JAXShapeTuple":  # no usable perform: evaluate as a vector
            outputs = [MakeVector(var.type.dtype)(*inputs)]
        else:
            outputs = node.clone_with_new_inputs(inputs, strict=False).outputs
        memo.update(zip(node.outputs, outputs))
        return memo[var]

    return [rebuilt(t) for t in targets]


def concrete_scalars(scalars):
    """``scalars`` with each entry that is not concrete in JAX computed by one :class:`StaticShape`.

    Returns the new list (same types), ``scalars`` itself when every entry is already
    concrete, or None when an entry depends on array values.
    """
    scalars = list(scalars)
    targets = [s for s in scalars if not _is_concrete(s)]
    if not targets:
        return scalars
    leaves, blocker = _leaves(targets)
    if blocker is not None:
        return None
    JAXShapeTuple = _jax_shape_tuple()
    carriers, placeholders, memo = [], [], {}
    for leaf in leaves:
        # A scalar input goes through a JAXShapeTuple so that the linker makes it static.
        carrier = JAXShapeTuple()(leaf) if _is_int_scalar_input(leaf) else leaf
        placeholder = carrier.type()
        memo[leaf] = placeholder[0] if carrier is not leaf else placeholder
        carriers.append(carrier)
        placeholders.append(placeholder)
    inner = _rebuild(targets, memo)
    inner = [o if o.type == t.type else t.type.filter_variable(o) for o, t in zip(inner, targets)]
    outputs = dict(zip(targets, StaticShape(placeholders, inner, leaves)(*carriers, return_list=True)))
    return [outputs.get(s, s) for s in scalars]


def _vector_entries(vector):
    """Scalar entries of an integer vector of static length, or None."""
    owner = vector.owner
    if owner is not None and (isinstance(owner.op, MakeVector) or type(owner.op).__name__ == "JAXShapeTuple"):
        if all(i.type.dtype == vector.type.dtype and i.type.ndim == 0 for i in owner.inputs):
            return list(owner.inputs)
    length = vector.type.shape[0] if isinstance(vector.type, TensorType) and vector.type.ndim == 1 else None
    if length is None:
        return None
    return [vector[i] for i in range(length)]


def concrete_shape_vector(vector):
    """A ``JAXShapeTuple`` computing the integer ``vector``, concrete while JAX traces.

    None when ``vector`` is already concrete (a constant, ``x.shape``, a ``JAXShapeTuple`` of
    concrete entries), has no static length, or depends on array values.
    """
    if _is_concrete(vector):
        return None
    entries = _vector_entries(vector)
    if entries is None:
        return None
    entries = concrete_scalars(entries)
    if entries is None:
        return None
    return _jax_shape_tuple()()(*entries)


@node_rewriter([Reshape, Alloc, AllocEmpty, Split, ARange, CheckAndRaise])
def jax_static_shapes(fgraph, node):
    """Concrete shape inputs for PyTensor's ``Reshape``, ``Alloc``, ``AllocEmpty``, ``Split`` and
    ``ARange``; shape checks (``CheckAndRaise`` on shapes), which PyTensor's JAX backend skips,
    run when JAX traces the function."""
    op = node.op
    if isinstance(op, StaticCheckAndRaise | StaticARange):
        return None
    if isinstance(op, ARange):
        if all(isinstance(a, Constant) or isinstance(getattr(a.owner, "op", None), Shape_i) for a in node.inputs):
            return None  # PyTensor's JAX ARange takes these
        args = concrete_scalars(node.inputs)
        if args is None:
            return None
        return Apply(StaticARange(op.dtype), args, [node.outputs[0].type()]).outputs
    if isinstance(op, CheckAndRaise):
        conds = concrete_scalars(node.inputs[1:])
        if conds is None:
            return None
        new = Apply(StaticCheckAndRaise(op.exc_type, op.msg), [node.inputs[0], *conds], [node.outputs[0].type()])
        return new.outputs
    if isinstance(op, Reshape):
        shape = concrete_shape_vector(node.inputs[1])
        return None if shape is None else node.clone_with_new_inputs([node.inputs[0], shape]).outputs
    if isinstance(op, StaticSplit):
        return None
    if isinstance(op, Split):
        if split_axis(op, node) is None or isinstance(node.inputs[-1], Constant):
            return None
        splits = concrete_shape_vector(node.inputs[-1])
        if splits is None:
            return None
        new_op = StaticSplit(**op._props_dict())
        return Apply(new_op, [*node.inputs[:-1], splits], [o.type() for o in node.outputs]).outputs
    first = 1 if isinstance(op, Alloc) else 0
    sizes = concrete_scalars(node.inputs[first:])
    if sizes is None or sizes == list(node.inputs[first:]):
        return None
    return node.clone_with_new_inputs(list(node.inputs[:first]) + sizes).outputs


class StaticScalarInputs(GraphRewriter):
    """Scalar integer inputs used as shapes become static arguments, even when used as values too.

    PyTensor's JAX linker makes an input static only when ``JAXShapeTuple`` nodes are its only
    users. Its other users here read the same number through a :class:`StaticShape` (a
    Python int while JAX traces), so the input is static and each new value compiles again,
    as the shape it sets requires anyway.
    """

    def apply(self, fgraph):
        JAXShapeTuple = _jax_shape_tuple()
        for inp in list(fgraph.inputs):
            if not _is_int_scalar_input(inp) or inp in fgraph.outputs:
                continue
            clients = list(fgraph.clients[inp])
            others = [(node, i) for node, i in clients if not isinstance(getattr(node, "op", None), JAXShapeTuple)]
            if not others or len(others) == len(clients):
                continue
            carrier = JAXShapeTuple()(inp)
            placeholder = carrier.type()
            static = StaticShape([placeholder], [placeholder[0]], [inp])(carrier)
            for node, i in others:
                fgraph.change_node_input(node, i, static, reason="pytensor_nnet_jax_static_scalar_inputs")


optdb.register(
    "pytensor_nnet_jax_static_scalar_inputs",
    StaticScalarInputs(),
    "jax",
    position=120,
)

optdb.register(
    "pytensor_nnet_jax_static_shapes",
    dfs_rewriter(jax_static_shapes),
    "jax",
    position=100,
)
