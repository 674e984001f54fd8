"""Convolution and max pooling by sparse-matrix products (the legacy ``sparse.sandbox.sp``).

An image batch ``images`` of shape ``(batch, C * prod(imgshp_spatial))`` (raster order,
channel first) times the transpose of a sparse *patch matrix* ``M`` built by
:class:`ConvolutionIndices` gives the stack of image patches; a convolution is then a
product of that stack with the kernels, and max pooling a max over each patch.

Conventions kept from the legacy API:

* it is a *correlation* (kernels are not flipped);
* ``step=(dx, dy)``: ``dx`` is the column step, ``dy`` the row step (the reverse of the
  ``(rows, cols)`` order of ``kshp``/``imgshp``); in N-d the step lists the axes last first;
* multi-channel kernels are ``(nkern, C * prod(kshp))``, channel first;
* outputs keep each feature map contiguous: ``(batch, nkern * outsize)`` or, with
  ``flatten=False``, ``(batch, nkern, outsize)``.

Every shape is N-d (1 to 3 spatial axes, fixed by ``len(kshp)``); ``imgshp`` has either the
same length (one channel) or one more entry (channels first).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytensor.sparse as ps
import pytensor.tensor as pt
import scipy.sparse
from pytensor.gradient import disconnected_type, grad_not_implemented
from pytensor.graph.basic import Apply, Variable
from pytensor.raise_op import CheckAndRaise
from pytensor.tensor import get_vector_length
from pytensor.tensor.type import TensorType

from pytensor_nnet import shapes
from pytensor_nnet.compat import Op
from pytensor_nnet.kernels import sparse_conv as kernels
from pytensor_nnet.sparse_basic.ops import CSM, structured_dot

__all__ = [
    "ConvolutionIndices",
    "convolution_indices",
    "convolve",
    "max_pool",
    "applySparseFilter",
    "SparseConv",
    "SparseConvGradImages",
    "SparseConvGradKernels",
    "SparseMaxPool",
    "SparseMaxPoolGrad",
]

_MODES = ("valid", "full")


# ---------------------------------------------------------------------------------------
# Argument checking and geometry
# ---------------------------------------------------------------------------------------


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}")
    return int(value)


def _check_mode(mode):
    if mode not in _MODES:
        raise ValueError(f"mode must be 'valid' or 'full'; got {mode!r}")
    return mode


@dataclass(frozen=True)
class _Geometry:
    """Shapes of one sparse-matrix convolution (spatial tuples in axis order)."""

    channels: int
    in_sp: tuple[int, ...]
    k_sp: tuple[int, ...]
    strides: tuple[int, ...]
    pads: tuple[int, ...]
    out_sp: tuple[int, ...]

    @property
    def in_size(self):
        return self.channels * math.prod(self.in_sp)

    @property
    def ksize(self):
        return self.channels * math.prod(self.k_sp)

    @property
    def outsize(self):
        return math.prod(self.out_sp)

    def sources(self):
        return kernels.patch_sources(
            self.channels,
            kernels.as_int_array(self.in_sp),
            kernels.as_int_array(self.k_sp),
            kernels.as_int_array(self.strides),
            kernels.as_int_array(self.pads),
            kernels.as_int_array(self.out_sp),
        )

    def csc_indices(self):
        """CSC ``(indices, indptr)`` and shape of the weight-sharing patch matrix."""
        indices, indptr = kernels.csc_from_sources(self.sources(), self.in_size)
        return indices, indptr, (self.outsize * self.ksize, self.in_size)

    def local_csc_indices(self, nkern):
        """CSC ``(indices, indptr, kmap)`` and shape of the local-connections matrix."""
        indices, indptr, kmap = kernels.local_csc_from_sources(self.sources(), nkern, self.ksize, self.in_size)
        return indices, indptr, kmap, (nkern * self.outsize, self.in_size)

    def patch_matrix(self, dtype):
        """The 0/1 patch matrix ``M`` (CSR, ``(outsize * ksize, in_size)``) as a constant."""
        indices, indptr = kernels.csr_from_sources(self.sources())
        data = np.ones(indices.shape[0], dtype=dtype)
        shape = (self.outsize * self.ksize, self.in_size)
        return ps.as_sparse_variable(scipy.sparse.csr_matrix((data, indices, indptr), shape))


def _resolve_geometry(inshp, kshp, step, mode, names):
    """Check the legacy shape arguments and compute the geometry.

    ``step`` is in the legacy order (``(dx, dy)``: last axis first) and may be an int.
    ``names`` gives the user-facing names of ``(inshp, kshp, step)`` for the messages.
    """
    in_name, k_name, step_name = names
    kshp = shapes.per_axis(kshp, None, k_name, wording=shapes.axes.SPARSE)
    inshp = shapes.per_axis(inshp, None, in_name, wording=shapes.axes.SPARSE)
    nd = len(kshp)
    if not 1 <= nd <= 3:
        raise ValueError(f"{k_name} must have 1, 2 or 3 entries; got {kshp}")
    if len(inshp) == nd:
        channels, in_sp = 1, inshp
    elif len(inshp) == nd + 1:
        channels, in_sp = inshp[0], inshp[1:]
    else:
        raise ValueError(
            f"{in_name}={inshp} must have {nd} entries (one channel) or {nd + 1} "
            f"(channels first) to match {k_name}={kshp}"
        )
    step = shapes.per_axis(step, None, step_name, wording=shapes.axes.SPARSE)
    if len(step) == 1 and nd > 1:
        step = step * nd
    if len(step) != nd:
        raise ValueError(f"{step_name}={step} must have {nd} entries to match {k_name}={kshp}")
    strides = step[::-1]
    _check_mode(mode)
    pads, out_sp, code = kernels.geometry(
        kernels.as_int_array(in_sp),
        kernels.as_int_array(kshp),
        kernels.as_int_array(strides),
        mode == "full",
    )
    if code == kernels.GEOMETRY_KERNEL_TOO_LARGE:
        raise ValueError(
            f"{k_name}={kshp} is larger than the image {in_name}={inshp} in mode 'valid'; "
            "use a smaller kernel or mode='full'"
        )
    if code != kernels.GEOMETRY_OK:  # pragma: no cover - excluded by the checks above
        raise ValueError(f"invalid geometry {in_name}={inshp}, {k_name}={kshp}, {step_name}={step}")
    return _Geometry(channels, in_sp, kshp, strides, tuple(int(p) for p in pads), tuple(int(o) for o in out_sp))


def _float_dtype(*variables):
    """The upcast dtype of ``variables``, or floatX when they are all integers."""
    dtype = variables[0].dtype
    for v in variables[1:]:
        dtype = np.promote_types(dtype, v.dtype).name
    if not dtype.startswith("float"):
        from pytensor import config

        dtype = np.promote_types(dtype, config.floatX).name
    return dtype


def _check_dims(var, name, expected, runtime=True):
    """Check ``var.shape[axis] == size`` for each ``axis: (size, meaning)`` of ``expected``.

    Static sizes are checked now; the others by one run-time check in the graph (unless
    ``runtime=False``: an Op downstream checks them). Both raise ``ValueError`` naming ``name``.
    """
    pending = []
    for axis, (size, meaning) in expected.items():
        message = f"{name}.shape[{axis}] must be {size} ({meaning})"
        static = var.type.shape[axis]
        if static is None:
            pending.append((axis, size, message))
        elif static != size:
            raise ValueError(f"{message}; got {static}")
    if not pending or not runtime:
        return var
    message = "; ".join(m for _, _, m in pending)
    return CheckAndRaise(ValueError, message)(var, *(pt.eq(var.shape[axis], size) for axis, size, _ in pending))


def _check_matrix(var, name, meaning, ndim=2):
    """``var`` as a tensor of ``ndim`` dimensions (``meaning`` describes them)."""
    var = pt.as_tensor_variable(var)
    if var.ndim != ndim:
        raise TypeError(f"{name} must be a {ndim}-d tensor {meaning}; got ndim={var.ndim}")
    return var


def _static_length(vector, name):
    try:
        return get_vector_length(vector)
    except ValueError:
        raise ValueError(
            f"{name} must have a length known when the graph is built "
            f"(a tuple, or pt.specify_shape({name}, n)); got {vector.type}"
        ) from None


# ---------------------------------------------------------------------------------------
# ConvolutionIndices
# ---------------------------------------------------------------------------------------


class ConvolutionIndices(Op):
    """Indices of the sparse matrix ``M`` that turns images into a stack of patches.

    With weight sharing (``ws=True``), ``M`` has shape ``(outsize * ksize, C * prod(in_sp))``
    and holds a 1 at ``(o * ksize + t, pixel)`` when tap ``t`` (``(c, *kernel offsets)`` in C
    order) of output position ``o`` reads ``pixel``; the product ``images @ M.T`` is the
    patch stack ``(batch, outsize * ksize)``. In ``mode="full"`` taps that fall in the zero
    padding have no entry.

    Without weight sharing (``ws=False``, sparse local connections), ``M`` has shape
    ``(nkern * outsize, C * prod(in_sp))``: row ``n * outsize + o`` holds the ``ksize``
    weights of unit ``o`` of feature map ``n``, numbered ``(n * outsize + o) * ksize + t``;
    ``kmap[k]`` is the weight stored at CSC entry ``k``. ``images @ M.T`` is then the
    ``(batch, nkern * outsize)`` layer output (see :func:`applySparseFilter`).

    Numeric use (legacy): ``ConvolutionIndices.evaluate(...)``. Symbolic use (new): an
    instance ``ConvolutionIndices(mode, ws)`` applied to integer vectors
    ``(inshp, kshp, strides, nkern)`` returns ``(indices, indptr, spmat_shape, outshp)``
    (plus ``kmap`` when ``ws=False``); build ``M`` with
    ``pytensor.sparse.CSM("csc")(data, indices, indptr, spmat_shape)``.
    """

    __props__ = ("mode", "ws")

    def __init__(self, mode="valid", ws=True):
        self.mode = _check_mode(mode)
        self.ws = bool(ws)

    @staticmethod
    def evaluate(inshp, kshp, strides=(1, 1), nkern=1, mode="valid", ws=True):
        """Build the CSC indices of ``M`` (see the class docstring).

        Parameters
        ----------
        inshp : tuple of int
            Image shape: spatial ``(h, w)`` or ``(C, h, w)`` (N-d: as many spatial entries
            as ``kshp``).
        kshp : tuple of int
            Kernel shape ``(kh, kw)`` (N-d: 1 to 3 entries).
        strides : tuple of int or int
            ``(dx, dy)``: column step, then row step (N-d: last axis first).
        nkern : int
            Number of feature maps; used only when ``ws=False``.
        mode : {"valid", "full"}
        ws : bool
            Weight sharing (convolution) or sparse local connections.

        Returns
        -------
        indices : int32 array (nnz,)
        indptr : int32 array (n_cols + 1,)
        spmat_shape : tuple (n_rows, n_cols)
        format : str
            Always ``"csc"``.
        outshp : int64 array
            Spatial output shape, axis order.
        kmap : int64 array (nnz,)
            Only when ``ws=False``.
        """
        geo = _resolve_geometry(inshp, kshp, strides, mode, ("inshp", "kshp", "strides"))
        outshp = np.asarray(geo.out_sp, dtype=np.int64)
        if ws:
            indices, indptr, shape = geo.csc_indices()
            return indices, indptr, shape, "csc", outshp
        indices, indptr, kmap, shape = geo.local_csc_indices(_positive_int(nkern, "nkern"))
        return indices, indptr, shape, "csc", outshp, kmap

    def make_node(self, inshp, kshp, strides=(1, 1), nkern=1):
        inshp, kshp, strides = (
            pt.as_tensor_variable(v, dtype="int64") if not isinstance(v, Variable) else v
            for v in (inshp, kshp, strides)
        )
        nkern = pt.as_tensor_variable(nkern)
        for name, var in (("inshp", inshp), ("kshp", kshp), ("strides", strides)):
            if var.ndim != 1 or not var.dtype.startswith(("int", "uint")):
                raise TypeError(f"{name} must be an integer vector; got {var.type}")
        if nkern.ndim != 0 or not nkern.dtype.startswith(("int", "uint")):
            raise TypeError(f"nkern must be an integer scalar; got {nkern.type}")
        nd, n_in, n_strides = (
            _static_length(v, name) for v, name in ((kshp, "kshp"), (inshp, "inshp"), (strides, "strides"))
        )
        if n_in not in (nd, nd + 1):
            raise ValueError(f"inshp must have {nd} or {nd + 1} entries to match kshp; got {n_in}")
        if n_strides != nd:
            raise ValueError(f"strides must have {nd} entries to match kshp; got {n_strides}")
        outputs = [
            pt.vector(dtype="int32"),
            pt.vector(dtype="int32"),
            pt.tensor(dtype="int32", shape=(2,)),
            pt.tensor(dtype="int64", shape=(nd,)),
        ]
        if not self.ws:
            outputs.append(pt.vector(dtype="int64"))
        return Apply(self, [inshp, kshp, strides, nkern], outputs)

    def perform(self, node, inputs, output_storage):
        inshp, kshp, strides, nkern = (np.asarray(v).tolist() for v in inputs)
        result = self.evaluate(inshp, kshp, strides, nkern, self.mode, self.ws)
        indices, indptr, shape, _format, outshp, *kmap = result
        values = [indices, indptr, np.asarray(shape, dtype="int32"), outshp, *kmap]
        for storage, value in zip(output_storage, values, strict=True):
            storage[0] = value

    def connection_pattern(self, node):
        return [[False] * len(node.outputs) for _ in node.inputs]

    def pullback(self, inputs, outputs, cotangents):
        return [disconnected_type() for _ in inputs]


convolution_indices = ConvolutionIndices()


# ---------------------------------------------------------------------------------------
# The convolution Ops (forward and the two gradients)
# ---------------------------------------------------------------------------------------


def _as_patch_matrix(patch_matrix):
    M = ps.as_sparse_variable(patch_matrix)
    if M.format not in ("csr", "csc"):  # pragma: no cover - pytensor has only these
        raise TypeError(f"patch_matrix must be CSR or CSC; got {M.format}")
    return M


def _csr_parts(M):
    """Validated CSR parts of a scipy sparse patch matrix (run time, Python backends)."""
    M = M.tocsr() if M.format != "csr" else M
    kernels.check_compressed(M.indptr, M.indices, M.shape[0], M.shape[1])
    return M.data, M.indices, M.indptr, M.shape


def _check_rows(n_rows, ksize, name):
    if ksize < 1 or n_rows % ksize:
        raise ValueError(f"the patch matrix has {n_rows} rows, not a multiple of {name} = {ksize}")


def _check_columns(n_cols, in_size, name):
    if n_cols != in_size:
        raise ValueError(f"{name} has {in_size} columns but the patch matrix has {n_cols} (it must be prod(imgshp))")


def _common_float(op_name, *tensors):
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) != 1 or not next(iter(dtypes)).startswith("float"):
        raise TypeError(f"{op_name} needs inputs of one float dtype; got {sorted(dtypes)}")
    return dtypes.pop()


class SparseConv(Op):
    """``out[b] = kerns @ (M @ images[b]).reshape(outsize, ksize).T``.

    Inputs: ``kerns`` (nkern, ksize), ``images`` (batch, in_size), ``M`` a sparse patch
    matrix (outsize * ksize, in_size), CSR or CSC. Output: (batch, nkern, outsize).
    The gradient wrt ``M`` is not implemented (it is a constant pattern in
    :func:`convolve`).
    """

    __props__ = ()

    def make_node(self, kerns, images, patch_matrix):
        kerns = _check_matrix(kerns, "kerns", "(nkern, ksize)")
        images = _check_matrix(images, "images", "(batch, in_size)")
        M = _as_patch_matrix(patch_matrix)
        dtype = _common_float("SparseConv", kerns, images)
        n_rows, n_cols = M.type.shape
        ksize = kerns.type.shape[1]
        if n_cols is not None and images.type.shape[1] is not None:
            _check_columns(n_cols, images.type.shape[1], "images")
        outsize = None
        if n_rows is not None and ksize is not None:
            _check_rows(n_rows, ksize, "kerns.shape[1]")
            outsize = n_rows // ksize
        out = TensorType(dtype, shape=(images.type.shape[0], kerns.type.shape[0], outsize))
        return Apply(self, [kerns, images, M], [out()])

    def perform(self, node, inputs, output_storage):
        kerns, images, M = inputs
        data, indices, indptr, (n_rows, n_cols) = _csr_parts(M)
        _check_rows(n_rows, kerns.shape[1], "kerns.shape[1]")
        _check_columns(n_cols, images.shape[1], "images")
        output_storage[0][0] = kernels.sparse_conv_forward(
            np.ascontiguousarray(kerns), np.ascontiguousarray(images), data, indices, indptr
        )

    def infer_shape(self, fgraph, node, shapes):
        kshape, xshape, mshape = shapes
        return [(xshape[0], kshape[0], mshape[0] // kshape[1])]

    def pullback(self, inputs, outputs, cotangents):
        kerns, images, M = inputs
        (gout,) = cotangents
        return [
            SparseConvGradKernels()(images, gout, M),
            SparseConvGradImages()(kerns, gout, M),
            grad_not_implemented(self, 2, M, "the patch matrix is a constant pattern"),
        ]

    def pushforward(self, inputs, outputs, tangents):
        kerns, images, M = inputs
        dk, dx, _ = tangents
        return [self(dk, images, M) + self(kerns, dx, M)]


class SparseConvGradImages(Op):
    """Gradient of :class:`SparseConv` wrt the images.

    Inputs: ``kerns`` (nkern, ksize), ``gout`` (batch, nkern, outsize), ``M``.
    Output: (batch, in_size) = ``M.T @ (gout[b].T @ kerns).ravel()`` per image.
    """

    __props__ = ()

    def make_node(self, kerns, gout, patch_matrix):
        kerns = _check_matrix(kerns, "kerns", "(nkern, ksize)")
        gout = _check_matrix(gout, "gout", "(batch, nkern, outsize)", ndim=3)
        M = _as_patch_matrix(patch_matrix)
        dtype = _common_float("SparseConvGradImages", kerns, gout)
        out = TensorType(dtype, shape=(gout.type.shape[0], M.type.shape[1]))
        return Apply(self, [kerns, gout, M], [out()])

    def perform(self, node, inputs, output_storage):
        kerns, gout, M = inputs
        data, indices, indptr, (n_rows, n_cols) = _csr_parts(M)
        _check_rows(n_rows, kerns.shape[1], "kerns.shape[1]")
        if gout.shape[1:] != (kerns.shape[0], n_rows // kerns.shape[1]):
            raise ValueError(
                f"gout has shape {gout.shape}; expected (batch, {kerns.shape[0]}, {n_rows // kerns.shape[1]})"
            )
        output_storage[0][0] = kernels.sparse_conv_grad_images(
            np.ascontiguousarray(kerns), np.ascontiguousarray(gout), data, indices, indptr, n_cols
        )

    def infer_shape(self, fgraph, node, shapes):
        return [(shapes[1][0], shapes[2][1])]

    def pullback(self, inputs, outputs, cotangents):
        kerns, gout, M = inputs
        (h,) = cotangents
        return [
            SparseConvGradKernels()(h, gout, M),
            SparseConv()(kerns, h, M),
            grad_not_implemented(self, 2, M, "the patch matrix is a constant pattern"),
        ]

    def pushforward(self, inputs, outputs, tangents):
        kerns, gout, M = inputs
        dk, dg, _ = tangents
        return [self(dk, gout, M) + self(kerns, dg, M)]


class SparseConvGradKernels(Op):
    """Gradient of :class:`SparseConv` wrt the kernels.

    Inputs: ``images`` (batch, in_size), ``gout`` (batch, nkern, outsize), ``M``.
    Output: (nkern, ksize) with ``ksize = M.shape[0] // outsize``.
    """

    __props__ = ()

    def make_node(self, images, gout, patch_matrix):
        images = _check_matrix(images, "images", "(batch, in_size)")
        gout = _check_matrix(gout, "gout", "(batch, nkern, outsize)", ndim=3)
        M = _as_patch_matrix(patch_matrix)
        dtype = _common_float("SparseConvGradKernels", images, gout)
        n_rows, outsize = M.type.shape[0], gout.type.shape[2]
        ksize = n_rows // outsize if n_rows is not None and outsize else None
        out = TensorType(dtype, shape=(gout.type.shape[1], ksize))
        return Apply(self, [images, gout, M], [out()])

    def perform(self, node, inputs, output_storage):
        images, gout, M = inputs
        data, indices, indptr, (n_rows, n_cols) = _csr_parts(M)
        _check_columns(n_cols, images.shape[1], "images")
        outsize = gout.shape[2]
        if gout.shape[0] != images.shape[0] or outsize == 0 or n_rows % outsize:
            raise ValueError(
                f"gout has shape {gout.shape}, which does not fit images {images.shape} "
                f"and a patch matrix of {n_rows} rows"
            )
        output_storage[0][0] = kernels.sparse_conv_grad_kerns(
            np.ascontiguousarray(images),
            np.ascontiguousarray(gout),
            data,
            indices,
            indptr,
            n_rows // outsize,
        )

    def infer_shape(self, fgraph, node, shapes):
        return [(shapes[1][1], shapes[2][0] // shapes[1][2])]

    def pullback(self, inputs, outputs, cotangents):
        images, gout, M = inputs
        (h,) = cotangents
        return [
            SparseConvGradImages()(h, gout, M),
            SparseConv()(h, images, M),
            grad_not_implemented(self, 2, M, "the patch matrix is a constant pattern"),
        ]

    def pushforward(self, inputs, outputs, tangents):
        images, gout, M = inputs
        dx, dg, _ = tangents
        return [self(dx, gout, M) + self(images, dg, M)]


# ---------------------------------------------------------------------------------------
# Max pooling Ops
# ---------------------------------------------------------------------------------------


class SparseMaxPool(Op):
    """Max over each window of ``ksize`` consecutive rows of the patch stack.

    Inputs: ``images`` (n, in_size) and ``M`` (outsize * ksize, in_size).
    Output: (n, outsize). The gradient routes to the first maximum of each window.
    """

    __props__ = ("ksize",)

    def __init__(self, ksize):
        self.ksize = _positive_int(ksize, "ksize")

    def make_node(self, images, patch_matrix):
        images = _check_matrix(images, "images", "(n, in_size)")
        _common_float("SparseMaxPool", images)
        M = _as_patch_matrix(patch_matrix)
        n_rows, n_cols = M.type.shape
        if n_cols is not None and images.type.shape[1] is not None:
            _check_columns(n_cols, images.type.shape[1], "images")
        outsize = None
        if n_rows is not None:
            _check_rows(n_rows, self.ksize, "ksize")
            outsize = n_rows // self.ksize
        out = TensorType(images.dtype, shape=(images.type.shape[0], outsize))
        return Apply(self, [images, M], [out()])

    def perform(self, node, inputs, output_storage):
        images, M = inputs
        data, indices, indptr, (n_rows, n_cols) = _csr_parts(M)
        _check_rows(n_rows, self.ksize, "ksize")
        _check_columns(n_cols, images.shape[1], "images")
        output_storage[0][0] = kernels.sparse_max_pool_forward(images, data, indices, indptr, self.ksize)

    def infer_shape(self, fgraph, node, shapes):
        return [(shapes[0][0], shapes[1][0] // self.ksize)]

    def pullback(self, inputs, outputs, cotangents):
        images, M = inputs
        return [
            SparseMaxPoolGrad(self.ksize)(images, cotangents[0], M),
            grad_not_implemented(self, 1, M, "the patch matrix is a constant pattern"),
        ]


class SparseMaxPoolGrad(Op):
    """Gradient of :class:`SparseMaxPool` wrt the images: ``(n, in_size)``."""

    __props__ = ("ksize",)

    def __init__(self, ksize):
        self.ksize = _positive_int(ksize, "ksize")

    def make_node(self, images, gout, patch_matrix):
        images = _check_matrix(images, "images", "(n, in_size)")
        gout = _check_matrix(gout, "gout", "(n, outsize)")
        _common_float("SparseMaxPoolGrad", images, gout)
        M = _as_patch_matrix(patch_matrix)
        return Apply(self, [images, gout, M], [images.type()])

    def perform(self, node, inputs, output_storage):
        images, gout, M = inputs
        data, indices, indptr, (n_rows, n_cols) = _csr_parts(M)
        _check_rows(n_rows, self.ksize, "ksize")
        _check_columns(n_cols, images.shape[1], "images")
        if gout.shape != (images.shape[0], n_rows // self.ksize):
            raise ValueError(f"gout has shape {gout.shape}; expected {(images.shape[0], n_rows // self.ksize)}")
        output_storage[0][0] = kernels.sparse_max_pool_grad(images, gout, data, indices, indptr, self.ksize)

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0]]

    def pullback(self, inputs, outputs, cotangents):
        images, gout, M = inputs
        return [
            pt.zeros_like(images),
            grad_not_implemented(self, 1, gout, "second derivatives of max pooling"),
            grad_not_implemented(self, 2, M, "the patch matrix is a constant pattern"),
        ]


# ---------------------------------------------------------------------------------------
# Public functions (legacy signatures)
# ---------------------------------------------------------------------------------------


def convolve(kerns, kshp, nkern, images, imgshp, step=(1, 1), bias=None, mode="valid", flatten=True):
    """Convolution (correlation, no kernel flip) by a sparse patch-matrix product.

    Parameters
    ----------
    kerns : tensor (nkern, C * prod(kshp))
        One kernel per row, channel first then raster order.
    kshp : tuple of int
        Kernel shape ``(kh, kw)`` (N-d: 1 to 3 entries), static.
    nkern : int
        Number of kernels (rows of ``kerns``).
    images : tensor (batch, prod(imgshp))
        Images in raster order, channel first.
    imgshp : tuple of int
        ``(h, w)`` or ``(C, h, w)``, static.
    step : tuple of int or int
        ``(dx, dy)``: column step, then row step.
    bias : tensor (nkern,), optional
        Added to each feature map.
    mode : {"valid", "full"}
        ``"full"`` zero-pads by ``k - 1`` on every side.
    flatten : bool
        Output ``(batch, nkern * outsize)`` when True, ``(batch, nkern, outsize)`` when False.

    Returns
    -------
    output : tensor
        Each feature map contiguous, in raster order.
    outshp : int64 array
        ``(nkern, *spatial output shape)``.
    """
    geo = _resolve_geometry(imgshp, kshp, step, mode, ("imgshp", "kshp", "step"))
    nkern = _positive_int(nkern, "nkern")
    kerns = _check_matrix(kerns, "kerns", f"(nkern, C * prod(kshp)) = ({nkern}, {geo.ksize})")
    images = _check_matrix(images, "images", f"(batch, prod(imgshp)) = (batch, {geo.in_size})")
    kerns = _check_dims(kerns, "kerns", {0: (nkern, "nkern"), 1: (geo.ksize, "C * prod(kshp)")})
    images = _check_dims(images, "images", {1: (geo.in_size, "prod(imgshp)")}, runtime=False)
    dtype = _float_dtype(kerns, images)
    kerns = pt.specify_shape(pt.cast(kerns, dtype), (nkern, geo.ksize))
    images = pt.cast(images, dtype)
    out = SparseConv()(kerns, images, geo.patch_matrix(dtype))
    if bias is not None:
        bias = pt.as_tensor_variable(bias)
        if bias.ndim != 1:
            raise TypeError(f"bias must be a vector of length nkern={nkern}; got ndim={bias.ndim}")
        bias = _check_dims(bias, "bias", {0: (nkern, "nkern")})
        out = out + bias.dimshuffle("x", 0, "x")
    if flatten:
        out = out.reshape((out.shape[0], nkern * geo.outsize))
    return out, np.asarray((nkern, *geo.out_sp), dtype=np.int64)


def max_pool(images, imgshp, maxpoolshp):
    """Max pooling over non-overlapping windows, by a sparse patch-matrix product.

    Parameters
    ----------
    images : tensor (batch, prod(imgshp))
        Images in raster order, channel first.
    imgshp : tuple of int
        ``(h, w)`` or ``(C, h, w)``, static.
    maxpoolshp : tuple of int
        Window ``(ph, pw)`` (N-d: as many entries as spatial axes); the step equals the
        window, borders that do not fill a window are ignored.

    Returns
    -------
    output : tensor (batch, C * outsize)
        Channel-major, each pooled map in raster order.
    outshp : int64 array
        Spatial output shape ``(h // ph, w // pw)`` (no channel entry, as in the legacy API).

    Notes
    -----
    The legacy function swapped the step axes for non-square windows (a (3, 2) window on a
    6x6 image gave 2x2 overlapping windows); here the windows never overlap, so that case
    gives 2x3. Square windows give the legacy result. Ties route the gradient to the first
    maximum in raster order.
    """
    maxpoolshp = shapes.per_axis(maxpoolshp, None, "maxpoolshp", wording=shapes.axes.SPARSE)
    geo = _resolve_geometry(imgshp, maxpoolshp, maxpoolshp[::-1], "valid", ("imgshp", "maxpoolshp", "maxpoolshp"))
    images = _check_matrix(images, "images", f"(batch, prod(imgshp)) = (batch, {geo.in_size})")
    images = _check_dims(images, "images", {1: (geo.in_size, "prod(imgshp)")})
    dtype = _float_dtype(images)
    images = pt.cast(images, dtype)
    single = _Geometry(1, geo.in_sp, geo.k_sp, geo.strides, geo.pads, geo.out_sp)
    planes = images.reshape((images.shape[0] * geo.channels, single.in_size))
    pooled = SparseMaxPool(single.ksize)(planes, single.patch_matrix(dtype))
    out = pooled.reshape((images.shape[0], geo.channels * geo.outsize))
    return out, np.asarray(geo.out_sp, dtype=np.int64)


def applySparseFilter(kerns, kshp, nkern, images, imgshp, step=(1, 1), bias=None, mode="valid"):  # noqa: N802
    """Sparse local connections: a convolution without weight sharing.

    Every output unit has its own ``C * prod(kshp)`` weights. The weights fill a sparse
    matrix ``W`` (``pytensor.sparse`` CSC, built from ``ConvolutionIndices(ws=False)``) and
    the output is the structured dot ``images @ W.T``.

    Parameters
    ----------
    kerns : tensor with nkern * outsize * C * prod(kshp) elements
        Weights in ``(nkern, outsize, C * prod(kshp))`` order (any shape; flattened in C
        order).
    kshp, nkern, images, imgshp, step, bias, mode :
        As in :func:`convolve`.

    Returns
    -------
    output : tensor (batch, nkern * outsize)
        Each feature map contiguous.
    outshp : int64 array
        ``(nkern, *spatial output shape)``.
    """
    geo = _resolve_geometry(imgshp, kshp, step, mode, ("imgshp", "kshp", "step"))
    nkern = _positive_int(nkern, "nkern")
    n_weights = nkern * geo.outsize * geo.ksize
    kerns = pt.as_tensor_variable(kerns).flatten()
    kerns = _check_dims(kerns, "kerns.flatten()", {0: (n_weights, "nkern * outsize * C * prod(kshp)")})
    images = _check_matrix(images, "images", f"(batch, prod(imgshp)) = (batch, {geo.in_size})")
    images = _check_dims(images, "images", {1: (geo.in_size, "prod(imgshp)")}, runtime=False)
    dtype = _float_dtype(kerns, images)
    indices, indptr, kmap, shape = geo.local_csc_indices(nkern)
    weights = pt.cast(kerns, dtype)[kmap]
    W = CSM("csc")(weights, indices, indptr, np.asarray(shape, dtype="int32"))
    out = structured_dot(W, pt.cast(images, dtype).T).T
    if bias is not None:
        bias = pt.as_tensor_variable(bias)
        if bias.ndim != 1:
            raise TypeError(f"bias must be a vector of length nkern={nkern}; got ndim={bias.ndim}")
        bias = _check_dims(bias, "bias", {0: (nkern, "nkern")})
        out = out + pt.repeat(bias, geo.outsize)[None, :]
    return out, np.asarray((nkern, *geo.out_sp), dtype=np.int64)
