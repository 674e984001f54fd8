"""Pooling: ``pool_2d`` / ``pool_3d`` and the Ops of the legacy ``pytensor.tensor.signal.pool``.

Migrating is one import line: ``from pytensor.tensor.signal.pool import pool_2d`` becomes
``from pytensor_nnet.pool import pool_2d``. Same names, signatures, defaults and semantics:

- modes ``"max"``, ``"sum"``, ``"average_inc_pad"`` (divide by the window size, padding
  included), ``"average_exc_pad"`` (divide by the number of input elements in the window);
- the last ``ndim`` axes are pooled, any number of leading axes is allowed;
- ``ignore_border=False`` keeps the last, partial windows (output size
  ``ceil((n - ws) / stride) + 1``, at least 1); the legacy default ``ignore_border=None``
  warns (``DeprecationWarning``) and means False;
- ``pad`` (symmetric, ``< ws``, only with ``ignore_border=True``) never wins a max;
- the gradient of max pooling hands each window's output gradient to exactly one element,
  the window's *first* maximum in row-major order (``max_grad_ties="first"``, the default,
  as PyTorch and JAX; padding never wins); ``max_grad_ties="all"`` restores the legacy
  rule, where every element equal to the window's maximum receives the window's full
  gradient (see ``kernels.pool`` for the exact rules). The rule is a prop of ``Pool``,
  ``MaxPoolGrad`` and ``DownsampleFactorMaxGradGrad``.

One N-d implementation: every Op has an ``ndim`` prop (1, 2 or 3 pooled axes). ``ws``,
``stride`` and ``pad`` are inputs (int vectors), as in the legacy Ops; when they are
constants the output's static shape is known and bad values raise ``ValueError`` when the
graph is built, otherwise when it runs.

A window larger than the padded input with ``ignore_border=True`` gives an empty output, as
in the legacy code. Differences from the legacy code (improvements): zero or negative strides,
negative padding or ``pad >= ws`` raise ``ValueError`` (the legacy code crashed, returned
garbage or raised ``NotImplementedError`` with a wrong message); ``average_exc_pad`` with
padding has a gradient; ``ws``/``stride``/``pad`` may be single ints; tied maxima share
nothing: the first one takes the window's gradient (the legacy rule gave it to each of them,
which is not a gradient).

========================================  ==========================================================
Op                                        pullback
========================================  ==========================================================
``Pool(mode)``: ``y = pool(x)``           ``MaxPoolGrad`` (max) or ``AveragePoolGrad``
``MaxPoolGrad``: ``gx(x, y, gz)``         gz: ``DownsampleFactorMaxGradGrad``; x, y: zeros
``AveragePoolGrad``: ``gx(x, gz)``        gz: ``Pool(mode)``; x: zeros
``DownsampleFactorMaxGradGrad(x, y, g)``  g: ``MaxPoolGrad``; x, y: zeros
========================================  ==========================================================
"""

from __future__ import annotations

import warnings

import numpy as np
import pytensor.tensor as pt
from pytensor import config
from pytensor.gradient import DisconnectedType, disconnected_type
from pytensor.graph.basic import Apply
from pytensor.tensor.type import TensorType

from pytensor_nnet.compat import Op
from pytensor_nnet.graph import int_vector, static_entries
from pytensor_nnet.kernels import pool as kernels
from pytensor_nnet.kernels.im2col import as_3d_geometry
from pytensor_nnet.shapes import conv_output_length, is_int
from pytensor_nnet.shapes.pool import check_pool_args, pool_output_size

__all__ = [
    "MAX_GRAD_TIES",
    "AveragePoolGrad",
    "DownsampleFactorMaxGradGrad",
    "MaxPoolGrad",
    "Pool",
    "PoolGrad",
    "WindowCount",
    "check_pool_args",
    "max_pool_2d_same_size",
    "pool_2d",
    "pool_3d",
]

MODES = tuple(kernels.MODES)
AVERAGE_MODES = ("sum", "average_inc_pad", "average_exc_pad")
#: Tie rules of the max-pooling gradient: ``"first"`` (default) and ``"all"`` (legacy).
MAX_GRAD_TIES = tuple(kernels.TIE_RULES)


# ----------------------------------------------------------------------------- arguments
def _check_mode(mode, allowed=MODES):
    if mode not in allowed:
        raise ValueError(f"mode must be one of {', '.join(repr(m) for m in allowed)}; got {mode!r}")
    return mode


def _check_max_grad_ties(max_grad_ties):
    if max_grad_ties not in MAX_GRAD_TIES:
        raise ValueError(
            f"max_grad_ties must be 'first' (each window's gradient goes to its first maximum) or 'all' "
            f"(legacy: to every element equal to the maximum); got {max_grad_ties!r}"
        )
    return max_grad_ties


def _check_ndim(ndim):
    if ndim not in (1, 2, 3):
        raise ValueError(f"ndim (the number of pooled axes) must be 1, 2 or 3; got {ndim!r}")
    return int(ndim)


def _geometry_inputs(ndim, ws, stride, pad):
    ws, ws_static = int_vector(ws, ndim, "ws")
    stride, stride_static = (ws, ws_static) if stride is None else int_vector(stride, ndim, "stride")
    pad, pad_static = int_vector((0,) * ndim if pad is None else pad, ndim, "pad")
    return (ws, stride, pad), (ws_static, stride_static, pad_static)


def _as_pool_input(x, ndim, name="x", dtype=None):
    x = pt.as_tensor_variable(x)
    if x.ndim < ndim:
        raise ValueError(f"{name} must have at least {ndim} dimensions to pool {ndim} axes; got {x.ndim}")
    if dtype is not None and x.dtype != dtype:
        x = pt.cast(x, dtype)
    if x.dtype not in ("float32", "float64") and not x.dtype.startswith(("int", "uint")):
        raise TypeError(f"{name} must have a float32, float64 or integer dtype; got {x.dtype}")
    return x


def _out_size(n, ws, stride, pad, ignore_border):
    """Legacy output size of one axis; ints give an int, anything symbolic gives a variable
    (a :class:`WindowCount` of ``n`` when the window geometry is known)."""
    if all(is_int(v) for v in (n, ws, stride, pad)):
        return pool_output_size(int(n), int(ws), int(stride), int(pad), bool(ignore_border))
    if all(is_int(v) for v in (ws, stride, pad)):
        return WindowCount(((int(ws), int(stride), int(pad), int(pad), 1, not ignore_border),))(n)
    if ignore_border:  # never negative, so shape graphs do not pre-empt the Op's own error
        return pt.maximum((n + 2 * pad - ws) // stride + 1, 0)
    partial = pt.maximum(0, (n - 1 - ws + stride) // stride) + 1
    if isinstance(stride, int | np.integer) and isinstance(ws, int | np.integer):
        return (n - 1) // stride + 1 if stride >= ws else partial
    return pt.switch(pt.ge(stride, ws), (n - 1) // stride + 1, partial)


def _legacy_alias(value, alias, alias_name, name, default=None):
    if alias is None:
        return value
    if value is not None and value != default:
        raise ValueError(f"give either {name} or its deprecated alias {alias_name}, not both")
    warnings.warn(f"the {alias_name!r} parameter is deprecated; use {name!r} instead", DeprecationWarning, stacklevel=4)
    return alias


# ----------------------------------------------------------------------------- shape graphs
class WindowCount(Op):
    """Number of positions of a sliding window, a 0-d int64 for shape graphs.

    ``WindowCount(axes, factor=1)(*sizes, *factors)``: one input size per entry of ``axes``,
    then any number of int factors -> ``factor * prod(factors) * prod(count_i(sizes[i]))``.
    Each axis is ``(ws, stride, pad_before, pad_after, dilation, partial)``: ``partial=False``
    counts the whole windows of the padded axis, ``max(0, (n + pad_before + pad_after -
    span) // stride + 1)`` with ``span = (ws - 1) * dilation + 1``; ``partial=True`` is the
    legacy ``ignore_border=False`` count of pooling (no padding, no dilation).

    The pooling and im2col Ops compute the output shapes of ``infer_shape`` with it rather
    than with scalar arithmetic: with concrete sizes (JAX traces an array's shape as plain
    ints) it returns plain ints, so shapes derived from an input of unknown static shape stay
    concrete inside ``jax.jit`` (an ``Alloc`` of such a shape would fail otherwise).
    """

    __props__ = ("axes", "factor")

    def __init__(self, axes, factor=1):
        self.axes = tuple(tuple(int(v) for v in axis[:5]) + (bool(axis[5]),) for axis in axes)
        self.factor = int(factor)

    def make_node(self, *inputs):
        if len(inputs) < max(len(self.axes), 1):
            raise ValueError(
                f"WindowCount needs {len(self.axes)} sizes (one per axis) and at least one input; "
                f"got {len(inputs)} inputs"
            )
        inputs = [pt.cast(pt.as_tensor_variable(v), "int64") for v in inputs]
        for v in inputs:
            if v.ndim != 0:
                raise TypeError(f"WindowCount inputs must be int scalars; got {v.type}")
        return Apply(self, inputs, [TensorType("int64", shape=())()])

    def evaluate(self, values, maximum=max):
        """The count from ``values`` (ints, or JAX scalars with ``maximum=jnp.maximum``)."""
        total = self.factor
        for (ws, stride, lo, hi, dilation, partial), n in zip(self.axes, values):
            if partial:
                count = (n - 1) // stride + 1 if stride >= ws else maximum(0, (n - 1 - ws + stride) // stride) + 1
            else:
                count = maximum(conv_output_length(n, ws, stride, lo, hi, dilation), 0)
            total = total * count
        for v in values[len(self.axes) :]:
            total = total * v
        return total

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = np.asarray(self.evaluate([int(v) for v in inputs]), dtype="int64")

    def infer_shape(self, fgraph, node, input_shapes):
        return [()]

    def connection_pattern(self, node):
        return [[False] for _ in node.inputs]

    def pullback(self, inputs, outputs, cotangents):
        return [disconnected_type() for _ in inputs]


# ----------------------------------------------------------------------------- Ops
class _PoolBase(Op):
    """Common props, argument handling and run-time geometry of the pooling Ops."""

    __props__ = ("ignore_border", "mode", "ndim")
    #: Number of leading (non-geometry) inputs of make_node.
    n_data_inputs = 1

    def __init__(self, ignore_border=False, mode="max", ndim=2):
        self.ignore_border = bool(ignore_border)
        self.mode = _check_mode(mode)
        self.ndim = _check_ndim(ndim)

    @staticmethod
    def out_shape(
        imgshape, ws=None, ignore_border=False, stride=None, pad=None, ndim=2, ds=None, st=None, padding=None
    ):
        """Output shape of pooling an input of shape ``imgshape`` (legacy static method).

        Entries may be ints or symbolic scalars; the leading axes are unchanged.
        """
        ws = _legacy_alias(ws, ds, "ds", "ws")
        stride = _legacy_alias(stride, st, "st", "stride")
        pad = _legacy_alias(pad, padding, "padding", "pad")
        ndim = _check_ndim(ndim)
        if ws is None:
            raise ValueError("ws (the window shape) is required")
        ws = (ws,) * ndim if isinstance(ws, int | np.integer) else tuple(ws)
        stride = ws if stride is None else ((stride,) * ndim if isinstance(stride, int | np.integer) else tuple(stride))
        pad = (0,) * ndim if pad is None else ((pad,) * ndim if isinstance(pad, int | np.integer) else tuple(pad))
        imgshape = tuple(imgshape)
        if len(imgshape) < ndim:
            raise ValueError(f"imgshape must have at least {ndim} entries; got {imgshape}")
        spatial = imgshape[-ndim:]
        static = [v if isinstance(v, int | np.integer) else None for v in (*spatial, *ws, *stride, *pad)]
        check_pool_args(
            static[:ndim], static[ndim : 2 * ndim], static[2 * ndim : 3 * ndim], static[3 * ndim :], ignore_border
        )
        out = [_out_size(n, w, s, p, ignore_border) for n, w, s, p in zip(spatial, ws, stride, pad)]
        return list(imgshape[:-ndim]) + out

    # -- graph building
    def _prepare(self, x, ws, stride, pad):
        """Geometry inputs, static checks, and the static output shape of pooling ``x``."""
        geometry, (ws_s, stride_s, pad_s) = _geometry_inputs(self.ndim, ws, stride, pad)
        spatial = x.type.shape[-self.ndim :]
        check_pool_args(spatial, ws_s, stride_s, pad_s, self.ignore_border)
        out = []
        for n, w, s, p in zip(spatial, ws_s, stride_s, pad_s):
            out.append(None if None in (n, w, s, p) else _out_size(n, w, s, p, self.ignore_border))
        return geometry, x.type.shape[: -self.ndim] + tuple(out)

    def _check_static_shape(self, var, expected, name):
        for s, e in zip(var.type.shape, expected):
            if s is not None and e is not None and s != e:
                raise ValueError(f"{name} has static shape {var.type.shape}, but pooling gives {expected}")

    # -- running
    def _kernel_geometry(self, x_shape, ws, stride, pad):
        """Check the run-time geometry (rich messages) and return the 3-d kernel arguments."""
        ws, stride, pad = (tuple(int(v) for v in a) for a in (ws, stride, pad))
        for name, v in (("ws", ws), ("stride", stride), ("pad", pad)):
            if len(v) != self.ndim:
                raise ValueError(f"{name} must have {self.ndim} entries; got {v}")
        check_pool_args(x_shape[-self.ndim :], ws, stride, pad, self.ignore_border)
        return as_3d_geometry(ws, 1), as_3d_geometry(stride, 1), as_3d_geometry(pad, 0)

    def _to_4d(self, a):
        """View ``a`` (*lead, *spatial) as (prod(lead), D, H, W)."""
        nd = self.ndim
        spatial = a.shape[a.ndim - nd :]
        lead = int(np.prod(a.shape[: a.ndim - nd], dtype=np.int64))
        a = np.ascontiguousarray(a)
        if not a.flags.writeable:  # read-only arrays are another Numba type: avoid a recompile
            a = a.copy()
        return a.reshape((lead,) + as_3d_geometry(spatial, 1))

    def _from_4d(self, a4, lead_shape):
        return a4.reshape(tuple(lead_shape) + a4.shape[4 - self.ndim :])

    def _geometry_entries(self, node, first):
        """``ws``, ``stride``, ``pad`` of ``node`` (inputs ``first`` to ``first + 2``) per axis:
        ints where known when the graph is built, scalar variables elsewhere."""
        return [
            [v if v is not None else var[i] for i, v in enumerate(static_entries(var, self.ndim))]
            for var in node.inputs[first : first + 3]
        ]

    def _geometry_disconnected(self):
        return [disconnected_type() for _ in range(3)]

    def connection_pattern(self, node):
        return [[True]] * self.n_data_inputs + [[False]] * 3


class Pool(_PoolBase):
    """Pooling of the last ``ndim`` axes of ``x`` (legacy ``signal.pool.Pool``).

    Parameters
    ----------
    ignore_border : bool
        False keeps the last, partial windows of each axis (no padding then).
    mode : {"max", "sum", "average_inc_pad", "average_exc_pad"}
    ndim : int
        Number of pooled (trailing) axes: 1, 2 or 3.

    max_grad_ties : {"first", "all"}
        Tie rule of the gradient of max pooling (see :class:`MaxPoolGrad`); a prop, so graphs
        built with different rules are different graphs. Ignored by the other modes.

    ``make_node(x, ws, stride=None, pad=None)``: ``x`` (*lead, *spatial); ``ws``, ``stride``
    (default ``ws``) and ``pad`` (default 0) are ``ndim`` ints -> (*lead, *out_spatial).
    """

    __props__ = ("ignore_border", "mode", "ndim", "max_grad_ties")

    def __init__(self, ignore_border=False, mode="max", ndim=2, openmp=None, max_grad_ties="first"):
        super().__init__(ignore_border, mode, ndim)
        self.max_grad_ties = _check_max_grad_ties(max_grad_ties)

    def make_node(self, x, ws, stride=None, pad=None):
        x = _as_pool_input(x, self.ndim)
        geometry, out_shape = self._prepare(x, ws, stride, pad)
        return Apply(self, [x, *geometry], [TensorType(x.dtype, shape=out_shape)()])

    def perform(self, node, inputs, output_storage):
        x, ws, stride, pad = inputs
        geo = self._kernel_geometry(x.shape, ws, stride, pad)
        y = kernels.pool_forward(
            self._to_4d(x), *geo, self.ignore_border, kernels.MODES[self.mode], kernels.lowest_value(x.dtype)
        )
        output_storage[0][0] = self._from_4d(y, x.shape[: x.ndim - self.ndim])

    def infer_shape(self, fgraph, node, input_shapes):
        x_shape = input_shapes[0]
        ws, stride, pad = self._geometry_entries(node, 1)
        nd = self.ndim
        spatial = [_out_size(x_shape[-nd + i], ws[i], stride[i], pad[i], self.ignore_border) for i in range(nd)]
        return [tuple(x_shape[:-nd]) + tuple(spatial)]

    def pullback(self, inputs, outputs, cotangents):
        x, ws, stride, pad = inputs
        (gz,) = cotangents
        if x.dtype.startswith(("int", "uint")):
            return [pt.zeros_like(x, dtype=config.floatX), *self._geometry_disconnected()]
        if self.mode == "max":
            gx = MaxPoolGrad(self.ignore_border, ndim=self.ndim, max_grad_ties=self.max_grad_ties)(
                x, outputs[0], gz, ws, stride, pad
            )
        else:
            gx = AveragePoolGrad(self.ignore_border, mode=self.mode, ndim=self.ndim)(x, gz, ws, stride, pad)
        return [gx, *self._geometry_disconnected()]

    def pushforward(self, inputs, outputs, tangents):
        x, ws, stride, pad = inputs
        tx = tangents[0]
        if isinstance(tx.type, DisconnectedType):
            return [disconnected_type()]
        if self.mode == "max":
            op = DownsampleFactorMaxGradGrad(self.ignore_border, ndim=self.ndim, max_grad_ties=self.max_grad_ties)
            return [op(x, outputs[0], tx, ws, stride, pad)]
        return [Pool(self.ignore_border, mode=self.mode, ndim=self.ndim)(tx, ws, stride, pad)]


class _LinearPoolOp(_PoolBase):
    """Ops linear in their last data input (a gradient) and locally constant in the others."""

    def pushforward(self, inputs, outputs, tangents):
        data = tangents[: self.n_data_inputs]
        if all(isinstance(t.type, DisconnectedType) for t in data):
            return [disconnected_type()]
        if isinstance(data[-1].type, DisconnectedType):
            return [outputs[0].zeros_like()]
        inputs = list(inputs)
        inputs[self.n_data_inputs - 1] = data[-1]
        return [self(*inputs)]

    def _max_inputs(self, x, maxout, gz):
        """``x``, ``maxout`` (x's dtype) and ``gz`` (x's dtype for float x) of the max-pooling pair."""
        x = _as_pool_input(x, self.ndim)
        maxout = _as_pool_input(maxout, self.ndim, "maxout", x.dtype)
        gz = _as_pool_input(gz, self.ndim, "gz")
        gz = _as_pool_input(gz, self.ndim, "gz", x.dtype if x.dtype.startswith("float") else gz.dtype)
        for var, name in ((maxout, "maxout"), (gz, "gz")):
            if var.ndim != x.ndim:
                raise ValueError(f"{name} must have as many dimensions as x ({x.ndim}); got {var.ndim}")
        return x, maxout, gz

    def _adjoint_pullback(self, inputs, cotangents, adjoint):
        """Pullback of the max-pooling pair: ``adjoint`` applied to the cotangent, zero for x, maxout."""
        x, maxout, _, ws, stride, pad = inputs
        op = adjoint(self.ignore_border, ndim=self.ndim, max_grad_ties=self.max_grad_ties)
        g = op(x, maxout, cotangents[0], ws, stride, pad)
        return [x.zeros_like(), maxout.zeros_like(), g, *self._geometry_disconnected()]


class PoolGrad(_LinearPoolOp):
    """Base class of the pooling gradient Ops (legacy name)."""

    def __init__(self, ignore_border, mode="max", ndim=2, openmp=None):
        super().__init__(ignore_border, mode, ndim)

    def _grad_dtype(self, x, g):
        return x.dtype if x.dtype.startswith("float") else pt.as_tensor_variable(g).dtype


class MaxPoolGrad(PoolGrad):
    """Gradient of max pooling wrt its input (legacy ``signal.pool.MaxPoolGrad``).

    ``make_node(x, maxout, gz, ws, stride=None, pad=None)``: ``maxout = Pool(x)`` and its
    gradient ``gz`` -> ``gx`` shaped like ``x``.

    ``max_grad_ties="first"`` (default): each window's gradient goes to exactly one element,
    the window's first maximum in row-major order (lowest flat index within the window;
    padding never wins; a NaN counts as the maximum), as PyTorch and JAX do; overlapping
    windows accumulate. ``"all"``: the legacy rule, every element equal to the window's
    maximum receives the window's full gradient (several times the gradient when there are
    ties). ``maxout`` is only checked for its shape under ``"first"``.
    """

    __props__ = ("ignore_border", "mode", "ndim", "max_grad_ties")
    n_data_inputs = 3

    def __init__(self, ignore_border, ndim=2, openmp=None, max_grad_ties="first"):
        super().__init__(ignore_border, "max", ndim)
        self.max_grad_ties = _check_max_grad_ties(max_grad_ties)

    def make_node(self, x, maxout, gz, ws, stride=None, pad=None):
        x, maxout, gz = self._max_inputs(x, maxout, gz)
        geometry, out_shape = self._prepare(x, ws, stride, pad)
        self._check_static_shape(maxout, out_shape, "maxout")
        self._check_static_shape(gz, out_shape, "gz")
        return Apply(self, [x, maxout, gz, *geometry], [TensorType(gz.dtype, shape=x.type.shape)()])

    def perform(self, node, inputs, output_storage):
        x, maxout, gz, ws, stride, pad = inputs
        geo = self._kernel_geometry(x.shape, ws, stride, pad)
        gx = kernels.max_pool_grad(
            self._to_4d(x),
            self._to_4d(maxout),
            self._to_4d(gz),
            *geo,
            self.ignore_border,
            kernels.TIE_RULES[self.max_grad_ties],
        )
        output_storage[0][0] = gx.reshape(x.shape)

    def infer_shape(self, fgraph, node, input_shapes):
        return [input_shapes[0]]

    def pullback(self, inputs, outputs, cotangents):
        return self._adjoint_pullback(inputs, cotangents, DownsampleFactorMaxGradGrad)


class AveragePoolGrad(PoolGrad):
    """Gradient of sum / average pooling wrt its input (legacy ``signal.pool.AveragePoolGrad``).

    ``make_node(x, gz, ws, stride=None, pad=None, dummy=None)``: only ``x``'s shape is used;
    ``gz`` is the output gradient -> ``gx`` shaped like ``x``. ``dummy`` is ignored (legacy).
    """

    n_data_inputs = 2

    def __init__(self, ignore_border, mode="average_inc_pad", ndim=2):
        super().__init__(ignore_border, _check_mode(mode, AVERAGE_MODES), ndim)

    def make_node(self, x, gz, ws, stride=None, pad=None, dummy=None):
        x = _as_pool_input(x, self.ndim)
        gz = _as_pool_input(gz, self.ndim, "gz")
        gz = _as_pool_input(gz, self.ndim, "gz", self._grad_dtype(x, gz))
        geometry, out_shape = self._prepare(x, ws, stride, pad)
        if gz.ndim != x.ndim:
            raise ValueError(f"gz must have as many dimensions as x ({x.ndim}); got {gz.ndim}")
        self._check_static_shape(gz, out_shape, "gz")
        return Apply(self, [x, gz, *geometry], [TensorType(gz.dtype, shape=x.type.shape)()])

    def perform(self, node, inputs, output_storage):
        x, gz, ws, stride, pad = inputs
        ws3, stride3, pad3 = self._kernel_geometry(x.shape, ws, stride, pad)
        in_size = as_3d_geometry(x.shape[x.ndim - self.ndim :], 1)
        gx = kernels.average_pool_grad(
            self._to_4d(gz), in_size, ws3, stride3, pad3, self.ignore_border, kernels.MODES[self.mode]
        )
        output_storage[0][0] = gx.reshape(x.shape)

    def infer_shape(self, fgraph, node, input_shapes):
        return [input_shapes[0]]

    def pullback(self, inputs, outputs, cotangents):
        x, gz, ws, stride, pad = inputs
        (ggx,) = cotangents
        ggz = Pool(self.ignore_border, mode=self.mode, ndim=self.ndim)(ggx, ws, stride, pad)
        return [x.zeros_like(), ggz, *self._geometry_disconnected()]


class DownsampleFactorMaxGradGrad(_LinearPoolOp):
    """Second derivative of max pooling (legacy name): the adjoint of :class:`MaxPoolGrad` in
    its gradient argument.

    ``make_node(x, maxout, gz, ws, stride=None, pad=None)``: ``gz`` shaped like ``x`` ->
    shaped like ``maxout``; each window takes ``gz`` at its first maximum
    (``max_grad_ties="first"``, default) or sums it over the elements equal to its maximum
    (``"all"``, legacy). It is also the forward-mode derivative (pushforward) of max pooling.
    """

    __props__ = ("ignore_border", "mode", "ndim", "max_grad_ties")
    n_data_inputs = 3

    def __init__(self, ignore_border, mode="max", ndim=2, openmp=None, max_grad_ties="first"):
        super().__init__(ignore_border, _check_mode(mode, ("max",)), ndim)
        self.max_grad_ties = _check_max_grad_ties(max_grad_ties)

    def make_node(self, x, maxout, gz, ws, stride=None, pad=None):
        x, maxout, gz = self._max_inputs(x, maxout, gz)
        geometry, out_shape = self._prepare(x, ws, stride, pad)
        self._check_static_shape(maxout, out_shape, "maxout")
        self._check_static_shape(gz, x.type.shape, "gz (shaped like x)")
        return Apply(self, [x, maxout, gz, *geometry], [TensorType(gz.dtype, shape=out_shape)()])

    def perform(self, node, inputs, output_storage):
        x, maxout, gz, ws, stride, pad = inputs
        geo = self._kernel_geometry(x.shape, ws, stride, pad)
        if gz.shape != x.shape:
            raise ValueError(f"gz must have the shape of x {x.shape}; got {gz.shape}")
        ggz = kernels.max_pool_grad_grad(
            self._to_4d(x),
            self._to_4d(maxout),
            self._to_4d(gz),
            *geo,
            self.ignore_border,
            kernels.TIE_RULES[self.max_grad_ties],
        )
        output_storage[0][0] = self._from_4d(ggz, x.shape[: x.ndim - self.ndim])

    def infer_shape(self, fgraph, node, input_shapes):
        return [input_shapes[1]]

    def pullback(self, inputs, outputs, cotangents):
        return self._adjoint_pullback(inputs, cotangents, MaxPoolGrad)


# ----------------------------------------------------------------------------- public functions
def _pool_nd(ndim, fname, input, ws, ignore_border, stride, pad, mode, ds, st, padding, max_grad_ties):
    ws = _legacy_alias(ws, ds, "ds", "ws")
    stride = _legacy_alias(stride, st, "st", "stride")
    pad = _legacy_alias(pad, padding, "padding", "pad", default=(0,) * ndim)
    if ws is None:
        raise ValueError(f"{fname}: ws (the window shape) is required")
    input = pt.as_tensor_variable(input)
    if input.ndim < ndim:
        raise ValueError(
            f"{fname} pools the last {ndim} axes: input must have at least {ndim} dimensions; got {input.ndim}"
        )
    if ignore_border is None:
        warnings.warn(
            f"{fname}(): ignore_border was not given; it means False (partial windows at the end are kept), "
            "as in the legacy API. Pass ignore_border=True (what PyTorch does) or False explicitly.",
            DeprecationWarning,
            stacklevel=3,
        )
        ignore_border = False
    _check_mode(mode)
    return Pool(ignore_border, mode=mode, ndim=ndim, max_grad_ties=max_grad_ties)(input, ws, stride, pad)


def pool_2d(
    input,
    ws=None,
    ignore_border=None,
    stride=None,
    pad=(0, 0),
    mode="max",
    ds=None,
    st=None,
    padding=None,
    max_grad_ties="first",
):
    """Pool the last two axes of ``input`` (legacy ``signal.pool.pool_2d``).

    Parameters
    ----------
    input : tensor, shape (*lead, H, W)
        Any number (>= 0) of leading axes.
    ws : int or pair of int
        Window shape (required; ``ds`` is its deprecated alias).
    ignore_border : bool
        True: only whole windows (``(H + 2 * pad - ws) // stride + 1`` outputs). False: keep
        the last, partial windows. ``None`` (default) warns and means False, as before.
    stride : int or pair of int, optional
        Default ``ws`` (deprecated alias ``st``).
    pad : int or pair of int
        Symmetric padding, smaller than ``ws``, only with ``ignore_border=True``; padding never
        wins a max (deprecated alias ``padding``).
    mode : {"max", "sum", "average_inc_pad", "average_exc_pad"}
    max_grad_ties : {"first", "all"}
        Which elements receive a window's gradient in max pooling: ``"first"`` (default) the
        window's first maximum in row-major order, as PyTorch and JAX - a true gradient;
        ``"all"`` every element equal to the maximum, each the window's full gradient (the
        legacy rule, to reproduce old numbers). The forward values are the same.

    Returns
    -------
    tensor, shape (*lead, out_H, out_W), the dtype of ``input``
    """
    return _pool_nd(2, "pool_2d", input, ws, ignore_border, stride, pad, mode, ds, st, padding, max_grad_ties)


def pool_3d(
    input,
    ws=None,
    ignore_border=None,
    stride=None,
    pad=(0, 0, 0),
    mode="max",
    ds=None,
    st=None,
    padding=None,
    max_grad_ties="first",
):
    """Pool the last three axes of ``input`` (legacy ``signal.pool.pool_3d``); see :func:`pool_2d`.

    ``input`` has shape (*lead, D, H, W); ``ws``, ``stride`` and ``pad`` have three entries.
    """
    return _pool_nd(3, "pool_3d", input, ws, ignore_border, stride, pad, mode, ds, st, padding, max_grad_ties)


def max_pool_2d_same_size(input, patch_size):
    """Keep the maximum of each non-overlapping ``patch_size`` patch of the last two axes and set
    everything else to zero (legacy). Ties keep every tied element (the legacy mask, whatever
    the gradient's tie rule); a trailing partial patch becomes zero. Output shape = input shape.
    """
    input = _as_pool_input(input, 2, "input")
    output = Pool(True, ndim=2)(input, patch_size)
    return MaxPoolGrad(True, ndim=2, max_grad_ties="all")(input, output, output, patch_size)
