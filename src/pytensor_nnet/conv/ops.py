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
vector of ``convdim`` ints; it is needed because strides make it ambiguous.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, disconnected_type
from pytensor.graph.basic import Apply, Constant
from pytensor_nnet.compat import Op
from pytensor.scalar import upcast
from pytensor.tensor.type import TensorType

from pytensor_nnet import shapes
from pytensor_nnet.conv import reference
from pytensor_nnet.kernels import corr, unshared as unshared_kernels
from pytensor_nnet.kernels.conv import flip_spatial, kernel_geometry
from pytensor_nnet.kernels.im2col import as_3d_array, as_3d_geometry

#: Upper bound, in bytes, of the im2col column buffer of one batch chunk. Read when a
#: function is compiled (Numba) or run (Python); change it with :func:`set_column_buffer_bytes`.
COLUMN_BUFFER_BYTES = corr.DEFAULT_BUFFER_BYTES


def set_column_buffer_bytes(nbytes: int) -> None:
    """Bound the im2col column buffer (default 64 MiB). Smaller: less memory, smaller GEMMs."""
    global COLUMN_BUFFER_BYTES
    if int(nbytes) < 1:
        raise ValueError(f"nbytes must be a positive number of bytes; got {nbytes}")
    COLUMN_BUFFER_BYTES = int(nbytes)


def _tuple_param(value, convdim, name):
    if value is None:
        return (1,) * convdim
    if isinstance(value, int | np.integer):
        value = (value,) * convdim
    value = tuple(value)
    if len(value) != convdim:
        raise ValueError(f"{name} must have {convdim} entries (one per spatial dimension); got {value!r}")
    for v in value:
        if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} entries must be positive ints; got {value!r}")
    return tuple(int(v) for v in value)


def _shape_hint(hint, length, name):
    """Legacy shape hint -> tuple of ints/None of ``length`` (symbolic entries become None)."""
    if hint is None:
        return None
    hint = tuple(hint)
    if len(hint) != length:
        raise ValueError(f"{name} must have {length} entries; got {hint!r}")
    out = []
    for h in hint:
        if isinstance(h, Constant):
            h = h.data
        if h is None or not isinstance(h, int | np.integer):
            if h is not None and not hasattr(h, "type"):
                raise ValueError(f"{name} entries must be ints, None or symbolic scalars; got {hint!r}")
            out.append(None)
            continue
        if h < 0:
            raise ValueError(f"{name} entries must be non-negative; got {hint!r}")
        out.append(int(h))
    return tuple(out)


def _merge_static(static, hint, name, arg):
    """Combine a variable's static shape with a shape hint, raising if they disagree."""
    if hint is None:
        return tuple(static)
    merged = []
    for s, h in zip(static, hint):
        if s is not None and h is not None and s != h:
            raise ValueError(f"{name}={hint} does not match the static shape {tuple(static)} of {arg}")
        merged.append(s if s is not None else h)
    return tuple(merged)


def _float_dtype(*dtypes):
    import pytensor

    dtype = upcast(*dtypes)
    if not dtype.startswith("float"):
        dtype = upcast(dtype, pytensor.config.floatX)
    if dtype not in ("float32", "float64"):
        raise TypeError(f"convolution supports float32 and float64 data; inputs have dtypes {dtypes}")
    return dtype


def _as_float_tensor(x, dtype, ndim, name):
    x = pt.as_tensor_variable(x)
    if x.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-d tensor; got a {x.ndim}-d tensor of type {x.type}")
    if x.dtype not in ("float16", "float32", "float64") and not x.dtype.startswith(("int", "uint")):
        raise TypeError(f"{name} must have a numeric dtype; got {x.dtype}")
    return pt.cast(x, dtype) if x.dtype != dtype else x


def _as_shape_vector(shape, convdim, name):
    """``shape`` as a length-``convdim`` int64 vector, and its static values (None if unknown)."""
    if isinstance(shape, list | tuple):
        if len(shape) != convdim:
            raise ValueError(f"{name} must have {convdim} entries; got {shape!r}")
        if all(isinstance(s, int | np.integer) for s in shape):
            shape = np.asarray(shape, dtype="int64")
        else:
            shape = pt.stack([pt.cast(s, "int64") for s in shape])
    shape = pt.as_tensor_variable(shape)
    if shape.ndim != 1 or not shape.dtype.startswith(("int", "uint")):
        raise TypeError(f"{name} must be an int vector of length {convdim}; got {shape.type}")
    if shape.type.shape[0] not in (None, convdim):
        raise ValueError(f"{name} must have {convdim} entries; got a vector of {shape.type.shape[0]}")
    if shape.dtype != "int64":
        shape = pt.cast(shape, "int64")
    values = tuple(_static_entry(shape, i) for i in range(convdim))
    for v in values:
        if v is not None and v < 1:
            raise ValueError(f"{name} entries must be positive; got {values}")
    return shape, values


def _static_entry(vector, i):
    from pytensor.tensor.basic import get_scalar_constant_value
    from pytensor.tensor.exceptions import NotScalarConstantError

    try:
        return int(get_scalar_constant_value(vector[i]))
    except (NotScalarConstantError, ValueError, TypeError, IndexError):
        return None


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
    """

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
    ):
        if convdim not in (1, 2, 3):
            raise ValueError(f"convdim must be 1, 2 or 3; got {convdim!r}")
        if not isinstance(num_groups, int | np.integer) or isinstance(num_groups, bool) or num_groups < 1:
            raise ValueError(f"num_groups must be a positive int; got {num_groups!r}")
        self.convdim = int(convdim)
        self.border_mode = shapes.normalize_border_mode(border_mode, convdim)
        self.subsample = _tuple_param(subsample, convdim, "subsample")
        self.filter_dilation = _tuple_param(filter_dilation, convdim, "filter_dilation")
        self.filter_flip = bool(filter_flip)
        self.num_groups = int(num_groups)
        self.unshared = bool(unshared)
        self.imshp = _shape_hint(imshp, convdim + 2, "imshp")
        self.kshp = _shape_hint(kshp, self.kern_ndim, "kshp")
        self._check_hints_agree()

    # ------------------------------------------------------------------ helpers
    @property
    def geometry(self):
        """3-d geometry of the compiled kernels for this Op's parameters."""
        return kernel_geometry(self.border_mode, self.subsample, self.filter_dilation)

    @property
    def kern_ndim(self):
        """Number of dimensions of the filters: ``2 + convdim``, or ``2 + 2 * convdim`` unshared."""
        return 2 + self.convdim * (2 if self.unshared else 1)

    def _in_per_group(self, kern_shape):
        return kern_shape[1 + self.convdim] if self.unshared else kern_shape[1]

    def _kern_spatial(self, kern):
        """The kernel's spatial sizes (a shape tuple or a symbolic shape)."""
        return kern[len(kern) - self.convdim:] if isinstance(kern, tuple) else kern[-self.convdim:]

    def _kern_shape(self, n_filters, out_spatial, in_per_group, kernel_spatial):
        """Filter shape from its parts (``out_spatial`` only enters unshared filters)."""
        if self.unshared:
            return (n_filters, *out_spatial, in_per_group, *kernel_spatial)
        return (n_filters, in_per_group, *kernel_spatial)

    def _params(self):
        return {name: getattr(self, name) for name in self.__props__}

    def _sibling(self, base):
        """The Op of kind ``base`` with the same parameters (legacy class when there is one)."""
        cls = _LEGACY_CLASSES.get((base, self.convdim), base)
        op = cls.__new__(cls)
        for name, value in self._params().items():
            setattr(op, name, value)
        return op

    def _check_hints_agree(self):
        if self.imshp is None or self.kshp is None:
            return
        self._check_shapes(self.imshp, self.kshp, "imshp", "kshp")

    def _check_shapes(self, img_shape, kern_shape, img_name, kern_name):
        """Static checks of a forward convolution of ``img_shape`` by ``kern_shape``."""
        channels, in_per_group, n_filters = img_shape[1], self._in_per_group(kern_shape), kern_shape[0]
        if channels is not None and in_per_group is not None and channels != in_per_group * self.num_groups:
            raise ValueError(
                f"input channels ({img_name}[1] = {channels}) must equal filters' input channels "
                f"({kern_name}[1] = {in_per_group}) * num_groups ({self.num_groups})"
            )
        if n_filters is not None and n_filters % self.num_groups:
            raise ValueError(
                f"num_groups ({self.num_groups}) must divide the number of filters ({kern_name}[0] = {n_filters})"
            )
        if channels is not None and channels % self.num_groups:
            raise ValueError(f"num_groups ({self.num_groups}) must divide the input channels ({channels})")
        out = shapes.get_conv_output_shape(
            img_shape, kern_shape, self.border_mode, self.subsample, self.filter_dilation
        )
        for i, size in enumerate(out[2:]):
            if size is not None and size < 1:
                raise ValueError(
                    f"the (dilated) filter ({kern_name} spatial {self._kern_spatial(tuple(kern_shape))}, dilation "
                    f"{self.filter_dilation}) is larger than the padded input ({img_name} spatial "
                    f"{tuple(img_shape[2:])}, border_mode {self.border_mode!r}) on spatial axis {i}"
                )
        if self.unshared:
            region = tuple(kern_shape[1:1 + self.convdim])
            if any(r is not None and o is not None and r != o for r, o in zip(region, out[2:])):
                raise ValueError(
                    f"the unshared filters' output region ({kern_name}[1:{1 + self.convdim}] = {region}) "
                    f"must match the output's spatial shape {tuple(out[2:])} (input {img_name} spatial "
                    f"{tuple(img_shape[2:])}, border_mode {self.border_mode!r}, subsample {self.subsample})"
                )
        return out

    def _check_runtime(self, img_shape=None, kern_shape=None):
        for hint, actual, name in ((self.imshp, img_shape, "imshp"), (self.kshp, kern_shape, "kshp")):
            if hint is None or actual is None:
                continue
            for h, a in zip(hint, actual):
                if h is not None and h != a:
                    raise ValueError(f"{name}={hint} does not match the actual shape {tuple(actual)}")

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

    def _run(self, kind, *args):
        """Run the compiled kernel ``kind`` ("forward", "grad_inputs", "grad_weights"; shared or
        unshared after this Op) with this Op's geometry on 3-d views; returns a 5-d (or, for
        unshared filters, 8-d) array."""
        family = unshared_kernels if self.unshared else corr
        fn = getattr(family, ("unshared_" if self.unshared else "corr_") + kind)
        geo = self.geometry
        return fn(*args, geo.stride, geo.pad_before, geo.pad_after, geo.dilation, self.num_groups, COLUMN_BUFFER_BYTES)

    def _kern_to_3d(self, kern):
        if self.unshared:
            return unshared_kernels.as_3d_unshared(kern, self.convdim)
        return as_3d_array(kern, 2)

    def _kern_from_3d(self, kern):
        if self.unshared:
            return unshared_kernels.from_3d_unshared(kern, self.convdim)
        return self._from_3d(kern)

    def _from_3d(self, arr):
        return arr.reshape(arr.shape[:2] + arr.shape[5 - self.convdim:])


class AbstractConv(BaseAbstractConv):
    """Forward convolution ``top = conv(img, kern)``.

    ``make_node(img, kern)``: ``img`` (batch, in_channels, *spatial), ``kern``
    (out_channels, in_channels // num_groups, *kernel), or unshared (out_channels,
    *out_spatial, in_channels // num_groups, *kernel) -> (batch, out_channels, *out_spatial).
    """

    def make_node(self, img, kern):
        nd = self.convdim + 2
        img, kern = pt.as_tensor_variable(img), pt.as_tensor_variable(kern)
        dtype = _float_dtype(img.dtype, kern.dtype)
        img = _as_float_tensor(img, dtype, nd, "input")
        kern = _as_float_tensor(kern, dtype, self.kern_ndim, "filters")
        img_shape = _merge_static(img.type.shape, self.imshp, "imshp", "the input")
        kern_shape = _merge_static(kern.type.shape, self.kshp, "kshp", "the filters")
        out = self._check_shapes(img_shape, kern_shape, "input.shape", "filters.shape")
        return Apply(self, [img, kern], [self._out_type(dtype, out)()])

    def perform(self, node, inputs, output_storage):
        img, kern = inputs
        self._check_runtime(img.shape, kern.shape)
        if self.filter_flip:
            kern = flip_spatial(kern, self.convdim)
        top = self._run("forward", as_3d_array(img, 2), self._kern_to_3d(kern))
        output_storage[0][0] = self._from_3d(top).astype(node.outputs[0].dtype, copy=False)

    def infer_shape(self, fgraph, node, input_shapes):
        img_shape, kern_shape = input_shapes
        return [shapes.get_conv_output_shape(img_shape, kern_shape, self.border_mode, self.subsample, self.filter_dilation)]

    def pullback(self, inputs, outputs, cotangents):
        img, kern = inputs
        (top_grad,) = cotangents
        d_img = self._sibling(AbstractConv_gradInputs)(kern, top_grad, img.shape[2:])
        d_kern = self._sibling(AbstractConv_gradWeights)(img, top_grad, self._kern_spatial(kern.shape))
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
    ``shape`` the image's spatial shape -> (batch, in, *shape).
    ``shape`` may be omitted when ``imshp`` gives it or the stride is 1.
    """

    def make_node(self, kern, topgrad, shape=None):
        nd = self.convdim + 2
        kern, topgrad = pt.as_tensor_variable(kern), pt.as_tensor_variable(topgrad)
        dtype = _float_dtype(kern.dtype, topgrad.dtype)
        kern = _as_float_tensor(kern, dtype, self.kern_ndim, "filters")
        topgrad = _as_float_tensor(topgrad, dtype, nd, "output_grad")
        kern_shape = _merge_static(kern.type.shape, self.kshp, "kshp", "the filters")
        if shape is None:
            shape = self._default_shape(kern_shape, topgrad.type.shape)
        shape, spatial = _as_shape_vector(shape, self.convdim, "input_shape (spatial)")
        n_filters = kern_shape[0]
        if n_filters is not None and topgrad.type.shape[1] is not None and n_filters != topgrad.type.shape[1]:
            raise ValueError(
                f"output_grad channels ({topgrad.type.shape[1]}) must equal the number of filters ({n_filters})"
            )
        in_per_group = self._in_per_group(kern_shape)
        img_shape = (topgrad.type.shape[0], None if in_per_group is None else in_per_group * self.num_groups) + spatial
        img_shape = _merge_static(img_shape, self.imshp, "imshp", "the input gradient")
        out = self._check_shapes(img_shape, kern_shape, "input_shape", "filters.shape")
        if not shapes.check_conv_gradinputs_shape(img_shape, kern_shape, topgrad.type.shape, self.border_mode, self.subsample, self.filter_dilation):
            raise ValueError(
                f"output_grad shape {topgrad.type.shape} cannot come from a convolution of an input of "
                f"shape {img_shape} (spatial from input_shape) with filters {kern_shape}: expected {out}"
            )
        return Apply(self, [kern, topgrad, shape], [self._out_type(dtype, img_shape)()])

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

    def perform(self, node, inputs, output_storage):
        kern, topgrad, shape = inputs
        self._check_runtime(kern_shape=kern.shape)
        if self.filter_flip:
            kern = flip_spatial(kern, self.convdim)
        in_size = as_3d_geometry(shape, 1)
        img = self._run("grad_inputs", self._kern_to_3d(kern), as_3d_array(topgrad, 2), in_size)
        img = self._from_3d(img)
        self._check_runtime(img_shape=img.shape)
        output_storage[0][0] = img.astype(node.outputs[0].dtype, copy=False)

    def infer_shape(self, fgraph, node, input_shapes):
        kern_shape, top_shape, _ = input_shapes
        shape = node.inputs[2]
        in_channels = self._in_per_group(kern_shape) * self.num_groups
        return [(top_shape[0], in_channels) + tuple(shape[i] for i in range(self.convdim))]

    def connection_pattern(self, node):
        return [[True], [True], [False]]

    def pullback(self, inputs, outputs, cotangents):
        kern, topgrad, _ = inputs
        (img_grad,) = cotangents
        d_kern = self._sibling(AbstractConv_gradWeights)(img_grad, topgrad, self._kern_spatial(kern.shape))
        d_top = self._sibling(AbstractConv)(img_grad, kern)
        return [_like(d_kern, kern), _like(d_top, topgrad), disconnected_type()]


class AbstractConv_gradWeights(BaseAbstractConv):
    """Gradient of :class:`AbstractConv` wrt its filters.

    ``make_node(img, topgrad, shape)``: ``img`` (batch, in, *spatial), ``topgrad``
    (batch, out, *out_spatial), ``shape`` the kernel's spatial shape ->
    (out, in // num_groups, *shape), or unshared (out, *out_spatial, in // num_groups, *shape).
    ``shape`` may be omitted when ``kshp`` gives it or it
    can be deduced (stride 1, border_mode not "half").
    """

    def make_node(self, img, topgrad, shape=None):
        nd = self.convdim + 2
        img, topgrad = pt.as_tensor_variable(img), pt.as_tensor_variable(topgrad)
        dtype = _float_dtype(img.dtype, topgrad.dtype)
        img = _as_float_tensor(img, dtype, nd, "input")
        topgrad = _as_float_tensor(topgrad, dtype, nd, "output_grad")
        img_shape = _merge_static(img.type.shape, self.imshp, "imshp", "the input")
        if shape is None:
            shape = self._default_shape(img_shape, topgrad.type.shape)
        shape, spatial = _as_shape_vector(shape, self.convdim, "filter_shape (spatial)")
        channels = img_shape[1]
        if channels is not None and channels % self.num_groups:
            raise ValueError(f"num_groups ({self.num_groups}) must divide the input channels (input.shape[1] = {channels})")
        if img_shape[0] is not None and topgrad.type.shape[0] is not None and img_shape[0] != topgrad.type.shape[0]:
            raise ValueError(
                f"output_grad batch size ({topgrad.type.shape[0]}) must equal the input batch size ({img_shape[0]})"
            )
        kern_shape = self._kern_shape(
            topgrad.type.shape[1], topgrad.type.shape[2:], None if channels is None else channels // self.num_groups,
            spatial,
        )
        kern_shape = _merge_static(kern_shape, self.kshp, "kshp", "the filter gradient")
        out = self._check_shapes(img_shape, kern_shape, "input.shape", "filter_shape")
        if not shapes.check_conv_gradinputs_shape(img_shape, kern_shape, topgrad.type.shape, self.border_mode, self.subsample, self.filter_dilation):
            raise ValueError(
                f"output_grad shape {topgrad.type.shape} cannot come from a convolution of the input "
                f"{img_shape} with filters of shape {kern_shape}: expected {out}"
            )
        return Apply(self, [img, topgrad, shape], [self._out_type(dtype, kern_shape)()])

    def _default_shape(self, img_shape, top_shape):
        if self.kshp is not None and None not in self._kern_spatial(self.kshp):
            return list(self._kern_spatial(self.kshp))
        guess = self._kern_spatial(shapes.get_conv_gradweights_shape(
            img_shape, top_shape, self.border_mode, self.subsample, self.filter_dilation, self.num_groups
        ))
        if None in guess:
            raise ValueError(
                "shape (the filters' spatial shape) is required: it cannot be deduced when "
                "subsample > 1, border_mode is 'half' or shapes are not static"
            )
        return list(guess)

    def perform(self, node, inputs, output_storage):
        img, topgrad, shape = inputs
        self._check_runtime(img_shape=img.shape)
        ksize = as_3d_geometry(shape, 1)
        kern = self._kern_from_3d(self._run("grad_weights", as_3d_array(img, 2), as_3d_array(topgrad, 2), ksize))
        if self.filter_flip:
            kern = flip_spatial(kern, self.convdim)
        self._check_runtime(kern_shape=kern.shape)
        output_storage[0][0] = np.ascontiguousarray(kern, dtype=node.outputs[0].dtype)

    def infer_shape(self, fgraph, node, input_shapes):
        img_shape, top_shape, _ = input_shapes
        shape = node.inputs[2]
        kernel = tuple(shape[i] for i in range(self.convdim))
        return [self._kern_shape(top_shape[1], tuple(top_shape[2:]), img_shape[1] // self.num_groups, kernel)]

    def connection_pattern(self, node):
        return [[True], [True], [False]]

    def pullback(self, inputs, outputs, cotangents):
        img, topgrad, _ = inputs
        (kern_grad,) = cotangents
        d_img = self._sibling(AbstractConv_gradInputs)(kern_grad, topgrad, img.shape[2:])
        d_top = self._sibling(AbstractConv)(img, kern_grad)
        return [_like(d_img, img), _like(d_top, topgrad), disconnected_type()]


def _like(grad, var):
    """``grad`` with the dtype and static shape of ``var`` (gradients must match their input type)."""
    if grad.dtype != var.dtype:
        grad = pt.cast(grad, var.dtype)
    if grad.type.shape != var.type.shape and any(s is not None for s in var.type.shape):
        grad = pt.specify_shape(grad, var.type.shape)
    return grad


def _legacy_class(base, convdim, doc):
    """Legacy fixed-rank Op class, e.g. ``AbstractConv2d``: ``base`` with ``convdim`` bound."""

    def __init__(self, imshp=None, kshp=None, border_mode="valid", subsample=None, filter_flip=True,
                 filter_dilation=None, num_groups=1, unshared=False):
        base.__init__(self, convdim, imshp, kshp, border_mode, subsample, filter_flip, filter_dilation,
                      num_groups, unshared)

    name = base.__name__.replace("AbstractConv", f"AbstractConv{convdim}d")
    return type(name, (base,), {"__init__": __init__, "__doc__": doc, "__module__": __name__})


AbstractConv2d = _legacy_class(AbstractConv, 2, "Forward 2d convolution (legacy name): ``AbstractConv`` with convdim=2.")
AbstractConv3d = _legacy_class(AbstractConv, 3, "Forward 3d convolution (legacy name): ``AbstractConv`` with convdim=3.")
AbstractConv2d_gradInputs = _legacy_class(AbstractConv_gradInputs, 2, "Gradient wrt inputs of a 2d convolution (legacy name).")
AbstractConv3d_gradInputs = _legacy_class(AbstractConv_gradInputs, 3, "Gradient wrt inputs of a 3d convolution (legacy name).")
AbstractConv2d_gradWeights = _legacy_class(AbstractConv_gradWeights, 2, "Gradient wrt weights of a 2d convolution (legacy name).")
AbstractConv3d_gradWeights = _legacy_class(AbstractConv_gradWeights, 3, "Gradient wrt weights of a 3d convolution (legacy name).")

_LEGACY_CLASSES = {
    (AbstractConv, 2): AbstractConv2d,
    (AbstractConv, 3): AbstractConv3d,
    (AbstractConv_gradInputs, 2): AbstractConv2d_gradInputs,
    (AbstractConv_gradInputs, 3): AbstractConv3d_gradInputs,
    (AbstractConv_gradWeights, 2): AbstractConv2d_gradWeights,
    (AbstractConv_gradWeights, 3): AbstractConv3d_gradWeights,
}
