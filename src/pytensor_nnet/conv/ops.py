"""Abstract convolution Ops: forward, gradient wrt inputs, gradient wrt weights.

One N-d implementation (``convdim`` = 1, 2 or 3 spatial dims) carries all the logic in
:class:`BaseAbstractConv`; the legacy names (``AbstractConv2d``, ``AbstractConv3d_gradInputs``,
...) only fix ``convdim``. The gradient of each Op is expressed with the other two, so
derivatives of any order work:

=====================  =======================================  ==============================
Op                     computes                                 pullback
=====================  =======================================  ==============================
``AbstractConv``       ``top = conv(img, kern)``                d_img = GI(kern, g), d_kern = GW(img, g)
``..._gradInputs``     ``img_grad = GI(kern, top, shape)``      d_kern = GW(g, top), d_top = conv(g, kern)
``..._gradWeights``    ``kern_grad = GW(img, top, shape)``      d_img = GI(g, top), d_top = conv(img, g)
=====================  =======================================  ==============================

Shapes: ``img`` (batch, in_channels, *spatial), ``kern`` (out_channels,
in_channels // num_groups, *kernel), or with ``unshared=True`` (locally connected: one filter
bank per output position) ``(out_channels, *out_spatial, in_channels // num_groups, *kernel)``,
``top`` (batch, out_channels, *out_spatial). ``shape`` is the spatial shape of the missing
operand (image for GI, kernel for GW; for unshared kernels only the ``*kernel`` part), as a
vector of ``convdim`` ints; it is needed because strides make it ambiguous. It may also be the
whole shape of that operand (what the pullbacks and the public functions pass): the gradient
Ops then check everything the forward Op checks (channels, groups, batch, unshared output
region), since a cost linear in a convolution's output never runs the forward Op.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, disconnected_type
from pytensor.graph.basic import Apply, Variable
from pytensor.tensor.type import TensorType

from pytensor_nnet import shapes
from pytensor_nnet.compat import Op
from pytensor_nnet.conv import reference
from pytensor_nnet.graph import as_int64, constant_int, float_dtype, is_int_scalar, stack_ints, static_entries
from pytensor_nnet.kernels import corr
from pytensor_nnet.kernels.conv import kernel_geometry, run_3d

#: Upper bound, in bytes, of a call's im2col column buffers (one per part of the batch run at
#: once, ``dispatch/numba/workers.py``). Read when a function is compiled (Numba) or run
#: (Python); change it with :func:`set_column_buffer_bytes`.
COLUMN_BUFFER_BYTES = corr.DEFAULT_BUFFER_BYTES


def set_column_buffer_bytes(nbytes: int) -> None:
    """Bound the im2col column buffer (default 64 MiB). Smaller: less memory, smaller GEMMs."""
    global COLUMN_BUFFER_BYTES
    if int(nbytes) < 1:
        raise ValueError(f"nbytes must be a positive number of bytes; got {nbytes}")
    COLUMN_BUFFER_BYTES = int(nbytes)


def _shape_hint(hint, length, name):
    """Legacy shape hint -> tuple of ints/None of ``length``: ints, integer constants (read as
    Python ints, whatever their dtype) and None; symbolic int scalars become None."""
    if hint is None:
        return None
    if isinstance(hint, Variable):
        raise ValueError(
            f"{name} must be a tuple or list (of ints, None or symbolic int scalars), not a symbolic vector; got {hint}"
        )
    hint = tuple(hint)
    if len(hint) != length:
        raise ValueError(f"{name} must have {length} entries; got {hint!r}")
    out = []
    for h in hint:
        if h is None:
            out.append(None)
            continue
        value = constant_int(h)
        if value is None:
            if not is_int_scalar(h):
                raise ValueError(f"{name} entries must be ints, None or symbolic int scalars; got {hint!r}")
            out.append(None)
            continue
        if value < 0:
            raise ValueError(f"{name} entries must be non-negative; got {hint!r}")
        out.append(value)
    return tuple(out)


def _sizes(shape):
    """int64 array of a shape with ``UNKNOWN`` for None (the form the shared checks take)."""
    return np.array([shapes.UNKNOWN if s is None else int(s) for s in shape], dtype=np.int64)


def _raise_if(message):
    """Raise a shape error: operands, shape vectors and shape hints that disagree."""
    if message:
        raise shapes.ShapeMismatchError(message)


def _merge_static(static, hint, hint_name, what):
    """Combine a shape (static or run-time, None = unknown) with a shape hint, raising if they
    disagree (the message of :func:`shapes.shape_hint_error`, also used at run time)."""
    if hint is None:
        return tuple(static)
    _raise_if(shapes.shape_hint_error(_sizes(hint), _sizes(static), hint_name, what))
    return tuple(s if s is not None else h for s, h in zip(static, hint))


def _float_dtype(**dtypes):
    """The computation dtype of the named inputs' dtypes (``input="float32", ...``)."""
    dtype = float_dtype(*dtypes.values())
    if dtype not in ("float32", "float64"):
        given = ", ".join(f"{name} {d}" for name, d in dtypes.items())
        raise TypeError(f"convolution supports float32 and float64 data (integers are upcast); got {given}")
    return dtype


def _as_float_tensor(x, dtype, ndim, name):
    x = pt.as_tensor_variable(x)
    if x.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-d tensor; got a {x.ndim}-d tensor of type {x.type}")
    if x.dtype not in ("float16", "float32", "float64") and not x.dtype.startswith(("int", "uint")):
        raise TypeError(f"{name} must have a numeric dtype; got {x.dtype}")
    return pt.cast(x, dtype) if x.dtype != dtype else x


def _as_shape_vector(shape, convdim, full_length, name):
    """``shape`` as an int64 vector of ``convdim`` (spatial sizes) or ``full_length`` entries
    (the whole shape), and its static values (None if unknown). A vector whose length is not
    known when the graph is built is taken as spatial sizes (checked when it runs)."""
    if isinstance(shape, list | tuple):
        if len(shape) not in (convdim, full_length):
            raise ValueError(
                f"{name} must have {convdim} (spatial sizes) or {full_length} entries; got {tuple(shape)!r}"
            )
        missing = [i for i, s in enumerate(shape) if s is None]
        if missing:
            raise ValueError(
                f"{name}[{missing[0]}] is required (an int or a symbolic int scalar); got {tuple(shape)!r}"
            )
        shape = stack_ints(shape)
    shape = pt.as_tensor_variable(shape)
    if shape.ndim != 1 or not shape.dtype.startswith(("int", "uint")):
        raise TypeError(f"{name} must be an int vector of length {convdim} or {full_length}; got {shape.type}")
    length = shape.type.shape[0]
    if length not in (None, convdim, full_length):
        raise ValueError(
            f"{name} must have {convdim} (spatial sizes) or {full_length} entries; got a vector of {length}"
        )
    shape = as_int64(shape)
    values = static_entries(shape, length or convdim)
    n_lead = 2 if len(values) == full_length else 0
    _raise_if(shapes.shape_vector_error(name, _sizes(values), len(values), n_lead))
    return shape, values


class ArgNames(NamedTuple):
    """How error messages name the operands of a convolution Op (the names the user typed).

    ``image``, ``filters`` and ``top`` are the expressions naming the shapes of the forward
    convolution's input, filters and output (gradient), e.g. ``"input.shape"`` or, for an
    operand given by its shape, ``"input_shape"``; ``subsample`` names the strides;
    ``image_hint`` and ``filters_hint`` name the shape hints (``imshp`` and ``kshp`` of the Op).
    """

    image: str = "input.shape"
    filters: str = "filters.shape"
    top: str = "output_grad.shape"
    subsample: str = "subsample"
    image_hint: str = "input_shape"
    filters_hint: str = "filter_shape"


#: Names of :func:`conv2d` (and of every gradient Op a pullback builds).
FORWARD_NAMES = ArgNames()
#: Names of :func:`conv2d_grad_wrt_inputs` / :func:`conv2d_grad_wrt_weights`.
GRAD_INPUTS_NAMES = ArgNames(image="input_shape")
GRAD_WEIGHTS_NAMES = ArgNames(filters="filter_shape")
#: Names of :func:`conv2d_transpose` (its input is the forward output gradient).
TRANSPOSE_NAMES = ArgNames(
    image="output_shape", top="input.shape", subsample="input_dilation", image_hint="output_shape"
)


def var_name(expr):
    """``"input"`` for ``"input.shape"``; a shape argument's name (``"input_shape"``) as is."""
    return expr[: -len(".shape")] if expr.endswith(".shape") else expr


class BaseAbstractConv(Op):
    """Base class of the abstract convolution Ops (legacy name and constructor).

    Parameters
    ----------
    convdim : int
        Number of spatial dimensions (1, 2 or 3).
    imshp, kshp : tuple of (int or None), optional
        Shape hints of the image ``(batch, channels, *spatial)`` and kernel
        ``(out, in // num_groups, *kernel)``, always those of the *forward* convolution.
        Checked against the static shapes when the graph is built and against the real
        arrays when it runs.
    border_mode : str, int or tuple
        ``"valid"``, ``"full"``, ``"half"``, an int, or per-axis ints / ``(before, after)``.
    subsample : tuple of int
        Strides.
    filter_flip : bool
        True: convolution (filters flipped); False: cross-correlation.
    filter_dilation : tuple of int
        Spacing between kernel taps.
    num_groups : int
        Grouped convolution: channels and filters are split in ``num_groups`` groups.
    unshared : bool
        Locally connected (unshared) convolution: filters
        ``(out, *out_spatial, in // num_groups, *kernel)``, a different filter bank at every
        output position (groups and every other parameter are supported). ``kshp`` then has
        ``2 + 2 * convdim`` entries.
    arg_names : ArgNames, optional (keyword only)
        How error messages name the operands (default: the names of :func:`conv2d`). Not a
        property of the Op: it does not change what the Op computes.

    Bad shapes raise ``ValueError`` with the same message when the graph is built (static
    shapes) and when it runs (Python, C and Numba linkers): :func:`shapes.conv_shape_error`.
    The gradient Ops check the whole forward geometry too, when their ``shape`` input gives
    the full shape of the missing operand (as the pullbacks and the public functions do).
    """

    arg_names = FORWARD_NAMES

    __props__ = (
        "convdim",
        "border_mode",
        "subsample",
        "filter_flip",
        "imshp",
        "kshp",
        "filter_dilation",
        "num_groups",
        "unshared",
    )

    def __init__(
        self,
        convdim,
        imshp=None,
        kshp=None,
        border_mode="valid",
        subsample=None,
        filter_flip=True,
        filter_dilation=None,
        num_groups=1,
        unshared=False,
        *,
        arg_names=None,
    ):
        if arg_names is not None:
            self.arg_names = ArgNames(*arg_names)
        if convdim not in (1, 2, 3):
            raise ValueError(f"convdim must be 1, 2 or 3; got {convdim!r}")
        if not isinstance(num_groups, int | np.integer) or isinstance(num_groups, bool) or num_groups < 1:
            raise ValueError(f"num_groups must be a positive int; got {num_groups!r}")
        self.convdim = int(convdim)
        self.border_mode = shapes.normalize_border_mode(border_mode, convdim)
        self.subsample = shapes.per_axis(
            subsample, convdim, self.arg_names.subsample, default=1, wording=shapes.axes.CONV_OP
        )
        self.filter_dilation = shapes.per_axis(
            filter_dilation, convdim, "filter_dilation", default=1, wording=shapes.axes.CONV_OP
        )
        self.filter_flip = bool(filter_flip)
        self.num_groups = int(num_groups)
        self.unshared = bool(unshared)
        self.imshp = _shape_hint(imshp, convdim + 2, self.arg_names.image_hint)
        self.kshp = _shape_hint(kshp, self.kern_ndim, self.arg_names.filters_hint)
        self._check_hints_agree()

    # ------------------------------------------------------------------ helpers
    @property
    def geometry(self):
        """3-d geometry of the compiled kernels for this Op's parameters."""
        return kernel_geometry(self.border_mode, self.subsample, self.filter_dilation)

    @property
    def kern_ndim(self):
        """Number of dimensions of the filters: ``2 + convdim``, or ``2 + 2 * convdim`` unshared."""
        return shapes.filter_ndim(self.convdim, self.unshared)

    def _in_per_group(self, kern_shape):
        return kern_shape[1 + self.convdim] if self.unshared else kern_shape[1]

    def _kern_spatial(self, kern):
        """The kernel's spatial sizes (a shape tuple or a symbolic shape)."""
        return kern[len(kern) - self.convdim :] if isinstance(kern, tuple) else kern[-self.convdim :]

    def _kern_shape(self, n_filters, out_spatial, in_per_group, kernel_spatial):
        """Filter shape from its parts (``out_spatial`` only enters unshared filters)."""
        if self.unshared:
            return (n_filters, *out_spatial, in_per_group, *kernel_spatial)
        return (n_filters, in_per_group, *kernel_spatial)

    def _params(self):
        return {name: getattr(self, name) for name in self.__props__}

    def _sibling(self, base):
        """The Op of kind ``base`` with the same parameters (legacy class when there is one)."""
        cls = LEGACY_CLASSES.get((base, self.convdim), base)
        op = cls.__new__(cls)
        for name, value in self._params().items():
            setattr(op, name, value)
        return op

    def _check_hints_agree(self):
        if self.imshp is None or self.kshp is None:
            return
        names = self.arg_names
        self._check_shapes(
            self.imshp, self.kshp, names=(names.image_hint, names.filters_hint, names.top, names.subsample)
        )

    # ------------------------------------------------------------------ checks
    def check_maps(self):
        """Index maps (see :func:`shapes.pick_sizes`) from N-d image (or output) and filter
        shapes to the 3-d forms :func:`shapes.conv_shape_error` takes: (image, filters, region)."""
        cd = self.convdim
        fill = (shapes.FILL_ONE,) * (3 - cd)
        image = (0, 1) + fill + tuple(range(2, 2 + cd))
        if not self.unshared:
            return image, image, (shapes.NOT_GIVEN,) * 3
        filters = (0, 1 + cd) + fill + tuple(range(2 + cd, 2 + 2 * cd))
        return image, filters, fill + tuple(range(1, 1 + cd))

    def check_args(self, names=None):
        """The geometry and name arguments of :func:`shapes.conv_shape_error` for this Op."""
        geo = self.geometry
        return (
            geo.stride,
            geo.pad_before,
            geo.pad_after,
            geo.dilation,
            repr(self.border_mode),
            tuple(names or self.arg_names[:4]),
        )

    def _shape_error(self, image, filters, top=None, names=None):
        """The message of :func:`shapes.conv_shape_error` for N-d int64 size arrays (``UNKNOWN``
        where not known; ``top`` None when there is no output (gradient) to check), or ``""``."""
        image_map, filters_map, region_map = self.check_maps()
        pick = shapes.pick_sizes
        top = pick(image, (shapes.NOT_GIVEN,) * 5) if top is None else pick(top, image_map)
        return shapes.conv_shape_error(
            self.convdim,
            self.num_groups,
            int(self.unshared),
            pick(image, image_map),
            pick(filters, filters_map),
            pick(filters, region_map),
            top,
            *self.check_args(names),
        )

    def _check_shapes(self, img_shape, kern_shape, top_shape=None, names=None):
        """Raise when a convolution of ``img_shape`` by ``kern_shape`` (giving ``top_shape``) is
        impossible (None entries: not known); return the output shape."""
        _raise_if(
            self._shape_error(
                _sizes(img_shape), _sizes(kern_shape), None if top_shape is None else _sizes(top_shape), names
            )
        )
        return shapes.get_conv_output_shape(
            img_shape, kern_shape, self.border_mode, self.subsample, self.filter_dilation
        )

    def _check_runtime(self, img_shape=None, kern_shape=None):
        """Check actual shapes against the shape hints (same message as when the graph is built)."""
        names = self.arg_names
        if img_shape is not None:
            _merge_static(img_shape, self.imshp, names.image_hint, var_name(names.image))
        if kern_shape is not None:
            _merge_static(kern_shape, self.kshp, names.filters_hint, var_name(names.filters))

    def check_geometry(self, img_shape, kern_shape, top_shape=None):
        """Raise this Op's run-time shape errors for concrete operand shapes (the backends that
        trace shapes, JAX and PyTorch, call it so that every backend gives the same messages)."""
        self._check_runtime(tuple(img_shape), tuple(kern_shape))
        _raise_if(
            self._shape_error(_sizes(img_shape), _sizes(kern_shape), None if top_shape is None else _sizes(top_shape))
        )

    def check_operands(self, full, a_shape, b_shape, vector=None):
        """Raise the first problem ``perform`` finds in the shapes of a call's operands: the
        Op's first two inputs, and a gradient Op's ``shape`` input ``vector`` (``full``: see
        :meth:`shape_is_full`). The compiled functions call it, in object mode, to word what
        their own checks found."""
        self.check_geometry(a_shape, b_shape)

    def check_inputs(self, node, a_shape, b_shape, shape):
        """Run-time checks of a gradient Op's operand shapes and ``shape`` input (the forward
        Op's messages); the shape of the missing operand it implies (``UNKNOWN`` where not given)."""
        return self.check_operands(self.shape_is_full(node), a_shape, b_shape, shape)

    def check_result(self, shape):
        """Raise when a gradient Op's result shape disagrees with its shape hint."""

    def full_shape_length(self):
        """Entries of a gradient Op's ``shape`` input when it gives the whole operand shape."""
        raise NotImplementedError

    def shape_is_full(self, node):
        """Whether the ``shape`` input of a gradient Op's ``node`` is the whole operand shape."""
        return node.inputs[2].type.shape[0] == self.full_shape_length()

    def vector_map(self, full):
        """Index map from the ``shape`` input to the N-d shape it describes (NOT_GIVEN entries)."""
        raise NotImplementedError

    def vector_name(self):
        """The name of the ``shape`` input in messages (the public argument it comes from)."""
        raise NotImplementedError

    def _given_shape(self, full, vector):
        """Run-time check of the ``shape`` input (``full``: it is the whole shape; see
        :meth:`shape_is_full`); the N-d shape it gives (``UNKNOWN`` elsewhere)."""
        length = self.full_shape_length() if full else self.convdim
        vector = np.asarray(vector, dtype=np.int64)
        _raise_if(shapes.shape_vector_error(self.vector_name(), vector, length, 2 if full else 0))
        return shapes.pick_sizes(vector, self.vector_map(full))

    def _out_type(self, dtype, shape):
        return TensorType(dtype, shape=tuple(shape))

    def flops(self, inp, outp):
        """Floating-point operations (2 x multiply-adds) of this forward convolution.

        ``inp`` is ``(image_shape, kernel_shape)``, ``outp`` the output shape (or ``[shape]``,
        as the legacy profiling hook passed it). Any rank, groups and unshared filters.
        """
        return reference.flops(inp, outp, self.num_groups, self.unshared)

    def conv(self, img, kern, mode="valid", dilation=1, num_groups=1, unshared=False, direction="forward"):
        """Basic slow numpy convolution (legacy debugging method): see :func:`conv.reference.conv`."""
        return reference.conv(img, kern, mode, dilation, num_groups, unshared, direction)

    def unshared2d(self, inp, kern, out_shape, direction="forward"):
        """Basic slow unshared 2-d convolution of one channel: see :func:`conv.reference.unshared2d`."""
        return reference.unshared2d(inp, kern, out_shape, direction)

    def _run(self, kind, a, b, size=None):
        """Run the compiled kernel ``kind`` ("forward", "grad_inputs", "grad_weights") on N-d
        operands with this Op's geometry (see :func:`kernels.conv.run_3d`)."""
        return run_3d(
            kind,
            a,
            b,
            size,
            self.convdim,
            self.geometry,
            self.num_groups,
            self.unshared,
            self.filter_flip,
            COLUMN_BUFFER_BYTES,
        )


class AbstractConv(BaseAbstractConv):
    """Forward convolution ``top = conv(img, kern)``.

    ``make_node(img, kern)``: ``img`` (batch, in_channels, *spatial), ``kern``
    (out_channels, in_channels // num_groups, *kernel), or unshared (out_channels,
    *out_spatial, in_channels // num_groups, *kernel) -> (batch, out_channels, *out_spatial).
    """

    def make_node(self, img, kern):
        nd = self.convdim + 2
        img, kern = pt.as_tensor_variable(img), pt.as_tensor_variable(kern)
        names = self.arg_names
        dtype = _float_dtype(**{var_name(names.image): img.dtype, var_name(names.filters): kern.dtype})
        img = _as_float_tensor(img, dtype, nd, var_name(names.image))
        kern = _as_float_tensor(kern, dtype, self.kern_ndim, var_name(names.filters))
        img_shape = _merge_static(img.type.shape, self.imshp, names.image_hint, var_name(names.image))
        kern_shape = _merge_static(kern.type.shape, self.kshp, names.filters_hint, var_name(names.filters))
        out = self._check_shapes(img_shape, kern_shape)
        return Apply(self, [img, kern], [self._out_type(dtype, out)()])

    def perform(self, node, inputs, output_storage):
        img, kern = inputs
        self.check_geometry(img.shape, kern.shape)
        top = self._run("forward", img, kern)
        output_storage[0][0] = top.astype(node.outputs[0].dtype, copy=False)

    def infer_shape(self, fgraph, node, input_shapes):
        img_shape, kern_shape = input_shapes
        out = shapes.get_conv_output_shape(
            img_shape, kern_shape, self.border_mode, self.subsample, self.filter_dilation
        )
        # a filter larger than the padded input gives sizes < 1: 0 lets an allocation of that
        # shape (the output gradient of a linear cost) succeed, so that the gradient Ops that
        # read it raise the message that names the shapes
        return [out[:2] + tuple(pt.maximum(size, 0) for size in out[2:])]

    def pullback(self, inputs, outputs, cotangents):
        img, kern = inputs
        (top_grad,) = cotangents
        d_img = self._sibling(AbstractConv_gradInputs)(kern, top_grad, img.shape)
        d_kern = self._sibling(AbstractConv_gradWeights)(img, top_grad, kern.shape)
        return [_like(d_img, img), _like(d_kern, kern)]

    def pushforward(self, inputs, outputs, tangents):
        img, kern = inputs
        d_img, d_kern = tangents
        terms = []
        if not isinstance(d_img.type, DisconnectedType):
            terms.append(self(d_img, kern))
        if not isinstance(d_kern.type, DisconnectedType):
            terms.append(self(img, d_kern))
        if not terms:
            return [disconnected_type()]
        return [_like(terms[0] + terms[1] if len(terms) == 2 else terms[0], outputs[0])]


class AbstractConv_gradInputs(BaseAbstractConv):
    """Gradient of :class:`AbstractConv` wrt its input (a transposed convolution).

    ``make_node(kern, topgrad, shape)``: ``kern`` (out, in // groups, *kernel) (or unshared
    (out, *out_spatial, in // groups, *kernel)), ``topgrad`` (batch, out, *out_spatial),
    ``shape`` the image's spatial shape -> (batch, in, *shape), or its whole shape
    ``(batch, in, *spatial)``, which lets the Op check ``batch`` and ``in`` against the other
    operands (the forward convolution's checks). ``shape`` may be omitted when ``imshp``
    gives it or the stride is 1.
    """

    def make_node(self, kern, topgrad, shape=None):
        nd = self.convdim + 2
        names = self.arg_names
        kern, topgrad = pt.as_tensor_variable(kern), pt.as_tensor_variable(topgrad)
        dtype = _float_dtype(**{var_name(names.filters): kern.dtype, var_name(names.top): topgrad.dtype})
        kern = _as_float_tensor(kern, dtype, self.kern_ndim, var_name(names.filters))
        topgrad = _as_float_tensor(topgrad, dtype, nd, var_name(names.top))
        kern_shape = _merge_static(kern.type.shape, self.kshp, names.filters_hint, var_name(names.filters))
        if shape is None:
            shape = self._default_shape(kern_shape, topgrad.type.shape)
        shape, given = _as_shape_vector(shape, self.convdim, nd, self.vector_name())
        if len(given) != nd:
            given = (None, None) + given
        given = _merge_static(given, self.imshp, names.image_hint, self.vector_name())
        self._check_shapes(given, kern_shape, topgrad.type.shape)
        in_per_group = self._in_per_group(kern_shape)
        implied = (topgrad.type.shape[0], None if in_per_group is None else in_per_group * self.num_groups)
        img_shape = tuple(g if g is not None else i for g, i in zip(given[:2], implied)) + given[2:]
        return Apply(self, [kern, topgrad, shape], [self._out_type(dtype, img_shape)()])

    def full_shape_length(self):
        return self.convdim + 2

    def vector_map(self, full):
        if full:
            return tuple(range(self.convdim + 2))
        return (shapes.NOT_GIVEN,) * 2 + tuple(range(self.convdim))

    def vector_name(self):
        image = self.arg_names.image
        return "shape" if image.endswith(".shape") else image

    def _default_shape(self, kern_shape, top_shape):
        if self.imshp is not None and None not in self.imshp[2:]:
            return list(self.imshp[2:])
        guess = shapes.get_conv_gradinputs_shape(
            kern_shape, top_shape, self.border_mode, self.subsample, self.filter_dilation, self.num_groups
        )[2:]
        if None in guess:
            raise ValueError(
                "shape (the input's spatial shape) is required: it cannot be deduced from the "
                "output gradient when subsample > 1 or shapes are not static"
            )
        return list(guess)

    def check_operands(self, full, kern_shape, top_shape, vector=None):
        given = self._given_shape(full, vector)
        self._check_runtime(kern_shape=tuple(kern_shape))
        _raise_if(self._shape_error(given, _sizes(kern_shape), _sizes(top_shape)))
        return given

    def check_result(self, shape):
        self._check_runtime(img_shape=tuple(shape))

    def perform(self, node, inputs, output_storage):
        kern, topgrad, shape = inputs
        given = self.check_inputs(node, kern.shape, topgrad.shape, shape)
        img = self._run("grad_inputs", kern, topgrad, given[2:])
        self.check_result(img.shape)
        output_storage[0][0] = img.astype(node.outputs[0].dtype, copy=False)

    def infer_shape(self, fgraph, node, input_shapes):
        kern_shape, top_shape, _ = input_shapes
        shape = node.inputs[2]
        if self.shape_is_full(node):
            return [tuple(shape[i] for i in range(self.convdim + 2))]
        in_channels = self._in_per_group(kern_shape) * self.num_groups
        return [(top_shape[0], in_channels) + tuple(shape[i] for i in range(self.convdim))]

    def connection_pattern(self, node):
        return [[True], [True], [False]]

    def pullback(self, inputs, outputs, cotangents):
        kern, topgrad, _ = inputs
        (img_grad,) = cotangents
        d_kern = self._sibling(AbstractConv_gradWeights)(img_grad, topgrad, kern.shape)
        d_top = self._sibling(AbstractConv)(img_grad, kern)
        return [_like(d_kern, kern), _like(d_top, topgrad), disconnected_type()]


class AbstractConv_gradWeights(BaseAbstractConv):
    """Gradient of :class:`AbstractConv` wrt its filters.

    ``make_node(img, topgrad, shape)``: ``img`` (batch, in, *spatial), ``topgrad``
    (batch, out, *out_spatial), ``shape`` the kernel's spatial shape ->
    (out, in // num_groups, *shape), or unshared (out, *out_spatial, in // num_groups, *shape);
    or ``shape`` the whole filter shape, which lets the Op check it against the other operands
    (the forward convolution's checks). ``shape`` may be omitted when ``kshp`` gives it or it
    can be deduced (stride 1, border_mode not "half").
    """

    def make_node(self, img, topgrad, shape=None):
        nd, cd = self.convdim + 2, self.convdim
        names = self.arg_names
        img, topgrad = pt.as_tensor_variable(img), pt.as_tensor_variable(topgrad)
        dtype = _float_dtype(**{var_name(names.image): img.dtype, var_name(names.top): topgrad.dtype})
        img = _as_float_tensor(img, dtype, nd, var_name(names.image))
        topgrad = _as_float_tensor(topgrad, dtype, nd, var_name(names.top))
        img_shape = _merge_static(img.type.shape, self.imshp, names.image_hint, var_name(names.image))
        if shape is None:
            shape = self._default_shape(img_shape, topgrad.type.shape)
        shape, given = _as_shape_vector(shape, cd, self.kern_ndim, self.vector_name())
        if len(given) != self.kern_ndim:
            given = self._kern_shape(None, (None,) * cd, None, given)
        given = _merge_static(given, self.kshp, names.filters_hint, self.vector_name())
        self._check_shapes(img_shape, given, topgrad.type.shape)
        channels = img_shape[1]
        implied = self._kern_shape(
            topgrad.type.shape[1],
            topgrad.type.shape[2:],
            None if channels is None else channels // self.num_groups,
            (None,) * cd,
        )
        kern_shape = tuple(g if g is not None else i for g, i in zip(given, implied))
        return Apply(self, [img, topgrad, shape], [self._out_type(dtype, kern_shape)()])

    def full_shape_length(self):
        return self.kern_ndim

    def vector_map(self, full):
        if full:
            return tuple(range(self.kern_ndim))
        cd, not_given = self.convdim, shapes.NOT_GIVEN
        return self._kern_shape(not_given, (not_given,) * cd, not_given, tuple(range(cd)))

    def vector_name(self):
        filters = self.arg_names.filters
        return "shape" if filters.endswith(".shape") else filters

    def _default_shape(self, img_shape, top_shape):
        if self.kshp is not None and None not in self._kern_spatial(self.kshp):
            return list(self._kern_spatial(self.kshp))
        guess = self._kern_spatial(
            shapes.get_conv_gradweights_shape(
                img_shape, top_shape, self.border_mode, self.subsample, self.filter_dilation, self.num_groups
            )
        )
        if None in guess:
            raise ValueError(
                "shape (the filters' spatial shape) is required: it cannot be deduced when "
                "subsample > 1, border_mode is 'half' or shapes are not static"
            )
        return list(guess)

    def check_operands(self, full, img_shape, top_shape, vector=None):
        given = self._given_shape(full, vector)
        self._check_runtime(img_shape=tuple(img_shape))
        _raise_if(self._shape_error(_sizes(img_shape), given, _sizes(top_shape)))
        return given

    def check_result(self, shape):
        self._check_runtime(kern_shape=tuple(shape))

    def perform(self, node, inputs, output_storage):
        img, topgrad, shape = inputs
        given = self.check_inputs(node, img.shape, topgrad.shape, shape)
        kern = self._run("grad_weights", img, topgrad, given[len(given) - self.convdim :])
        self.check_result(kern.shape)
        output_storage[0][0] = np.ascontiguousarray(kern, dtype=node.outputs[0].dtype)

    def infer_shape(self, fgraph, node, input_shapes):
        img_shape, top_shape, _ = input_shapes
        shape = node.inputs[2]
        if self.shape_is_full(node):
            return [tuple(shape[i] for i in range(self.kern_ndim))]
        kernel = tuple(shape[i] for i in range(self.convdim))
        return [self._kern_shape(top_shape[1], tuple(top_shape[2:]), img_shape[1] // self.num_groups, kernel)]

    def connection_pattern(self, node):
        return [[True], [True], [False]]

    def pullback(self, inputs, outputs, cotangents):
        img, topgrad, _ = inputs
        (kern_grad,) = cotangents
        d_img = self._sibling(AbstractConv_gradInputs)(kern_grad, topgrad, img.shape)
        d_top = self._sibling(AbstractConv)(img, kern_grad)
        return [_like(d_img, img), _like(d_top, topgrad), disconnected_type()]


def _like(grad, var):
    """``grad`` with the type of ``var``: its dtype and its static shape, no more and no less
    specific (a gradient has the type of the variable it is taken with respect to, so that it
    can, e.g., update a shared variable). Static entries the shape hints give but ``var``'s
    type does not are dropped by a reshape to ``var``'s own shape (a view)."""
    if grad.dtype != var.dtype:
        grad = pt.cast(grad, var.dtype)
    if any(g is not None and v is None for g, v in zip(grad.type.shape, var.type.shape)):
        grad = pt.reshape(grad, var.shape, ndim=var.ndim)
    if grad.type.shape != var.type.shape and any(s is not None for s in var.type.shape):
        grad = pt.specify_shape(grad, var.type.shape)
    return grad


def _legacy_class(base, convdim, doc):
    """Legacy fixed-rank Op class, e.g. ``AbstractConv2d``: ``base`` with ``convdim`` bound."""

    def __init__(
        self,
        imshp=None,
        kshp=None,
        border_mode="valid",
        subsample=None,
        filter_flip=True,
        filter_dilation=None,
        num_groups=1,
        unshared=False,
        *,
        arg_names=None,
    ):
        base.__init__(
            self,
            convdim,
            imshp,
            kshp,
            border_mode,
            subsample,
            filter_flip,
            filter_dilation,
            num_groups,
            unshared,
            arg_names=arg_names,
        )

    name = base.__name__.replace("AbstractConv", f"AbstractConv{convdim}d")
    return type(name, (base,), {"__init__": __init__, "__doc__": doc, "__module__": __name__})


AbstractConv2d = _legacy_class(
    AbstractConv, 2, "Forward 2d convolution (legacy name): ``AbstractConv`` with convdim=2."
)
AbstractConv3d = _legacy_class(
    AbstractConv, 3, "Forward 3d convolution (legacy name): ``AbstractConv`` with convdim=3."
)
AbstractConv2d_gradInputs = _legacy_class(
    AbstractConv_gradInputs, 2, "Gradient wrt inputs of a 2d convolution (legacy name)."
)
AbstractConv3d_gradInputs = _legacy_class(
    AbstractConv_gradInputs, 3, "Gradient wrt inputs of a 3d convolution (legacy name)."
)
AbstractConv2d_gradWeights = _legacy_class(
    AbstractConv_gradWeights, 2, "Gradient wrt weights of a 2d convolution (legacy name)."
)
AbstractConv3d_gradWeights = _legacy_class(
    AbstractConv_gradWeights, 3, "Gradient wrt weights of a 3d convolution (legacy name)."
)

LEGACY_CLASSES = {
    (AbstractConv, 2): AbstractConv2d,
    (AbstractConv, 3): AbstractConv3d,
    (AbstractConv_gradInputs, 2): AbstractConv2d_gradInputs,
    (AbstractConv_gradInputs, 3): AbstractConv3d_gradInputs,
    (AbstractConv_gradWeights, 2): AbstractConv2d_gradWeights,
    (AbstractConv_gradWeights, 3): AbstractConv3d_gradWeights,
}
