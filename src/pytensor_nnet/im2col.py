"""The PyTensor Ops :class:`Im2Col` / :class:`Col2Im`, and the im2col toolkit's public names.

``Im2Col(kernel_shape, stride=1, pad=0, dilation=1)(x)`` turns images ``x`` (N, C, *S) into
columns (C * prod(kernel_shape), prod(O) * N), ``Col2Im`` adds them back; each is the other's
gradient. The column layout is the one of :mod:`pytensor_nnet.numpy_layers.im2col`.

This module also re-exports the numpy toolkit (:func:`im2col`, :func:`col2im`,
:func:`im2col_output_shape`, :class:`ColumnGeometry`) and the CS231n-style layers built on it
(:mod:`pytensor_nnet.numpy_layers.conv`, :mod:`pytensor_nnet.numpy_layers.pool`), so
``from pytensor_nnet.im2col import conv_forward_im2col`` keeps working.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, disconnected_type
from pytensor.graph.basic import Apply
from pytensor.tensor.type import TensorType

from pytensor_nnet import numpy_layers
from pytensor_nnet.compat import Op
from pytensor_nnet.graph import int_vector
from pytensor_nnet.numpy_layers import *  # noqa: F403  (the toolkit and the layers, re-exported)
from pytensor_nnet.numpy_layers.im2col import ColumnGeometry, col2im, im2col
from pytensor_nnet.pool import WindowCount
from pytensor_nnet.shapes import conv_output_length

__all__ = ["Col2Im", "Im2Col", *numpy_layers.__all__]


class _ColumnOp(Op):
    """Props and geometry shared by :class:`Im2Col` and :class:`Col2Im`."""

    __props__ = ("kernel_shape", "stride", "pad", "dilation")

    def __init__(self, kernel_shape, stride=1, pad=0, dilation=1):
        self.kernel_shape, self.stride, self.pad, self.dilation = ColumnGeometry.make(
            kernel_shape, stride, pad, dilation
        )

    @property
    def geometry(self):
        return ColumnGeometry(self.kernel_shape, self.stride, self.pad, self.dilation)

    @property
    def nd(self):
        return len(self.kernel_shape)

    def _rows(self, channels):
        return None if channels is None else channels * int(np.prod(self.kernel_shape))

    def _out_spatial(self, spatial):
        """Output size per axis; ints when ``spatial`` is static, else symbolic (None for None)."""
        out = []
        for s, k, st, (lo, hi), d in zip(spatial, self.kernel_shape, self.stride, self.pad, self.dilation):
            out.append(None if s is None else conv_output_length(s, k, st, lo, hi, d))
        return out

    def _n_cols(self, batch, spatial):
        out = self._out_spatial(spatial)
        if batch is None or None in out:
            return None
        return int(np.prod(out)) * batch


class Im2Col(_ColumnOp):
    """``cols = im2col(x)`` as a PyTensor Op (layout: see :mod:`pytensor_nnet.numpy_layers.im2col`).

    ``Im2Col(kernel_shape, stride=1, pad=0, dilation=1)(x)``: ``x`` (N, C, *S) ->
    (C * prod(kernel_shape), prod(O) * N). Its gradient is :class:`Col2Im` and vice versa.
    """

    def make_node(self, x):
        x = pt.as_tensor_variable(x)
        if x.ndim != self.nd + 2:
            raise ValueError(
                f"x must be a {self.nd + 2}-d tensor (N, C, *spatial) for a {self.nd}-d kernel; got {x.ndim}-d"
            )
        if not x.dtype.startswith(("float", "int", "uint")):
            raise TypeError(f"x must have a numeric dtype; got {x.dtype}")
        N, C, *spatial = x.type.shape
        if None not in spatial:
            self.geometry.check_input(spatial)
        shape = (self._rows(C), self._n_cols(N, spatial))
        return Apply(self, [x], [TensorType(x.dtype, shape=shape)()])

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = im2col(inputs[0], *self.geometry)

    def infer_shape(self, fgraph, node, input_shapes):
        N, C, *spatial = input_shapes[0]
        axes = tuple(
            (k, st, lo, hi, d, False)
            for k, st, (lo, hi), d in zip(self.kernel_shape, self.stride, self.pad, self.dilation)
        )
        # WindowCount rather than scalar arithmetic: shapes stay plain ints inside jax.jit
        rows = WindowCount((), factor=int(np.prod(self.kernel_shape)))(C)
        return [(rows, WindowCount(axes)(*spatial, N))]

    def pullback(self, inputs, outputs, cotangents):
        (x,) = inputs
        (g,) = cotangents
        if not x.dtype.startswith("float"):
            return [pt.zeros_like(x, dtype=g.dtype)]
        return [Col2Im(*self.geometry)(g, x.shape)]

    def pushforward(self, inputs, outputs, tangents):
        if isinstance(tangents[0].type, DisconnectedType):
            return [disconnected_type()]
        return [self(tangents[0])]


class Col2Im(_ColumnOp):
    """``x = col2im(cols, x_shape)`` as a PyTensor Op: the adjoint (and gradient) of :class:`Im2Col`.

    ``Col2Im(kernel_shape, stride=1, pad=0, dilation=1)(cols, x_shape)``: ``cols``
    (C * prod(kernel_shape), prod(O) * N), ``x_shape`` the ``nd + 2`` ints (N, C, *S) -> (N, C, *S).
    """

    def make_node(self, cols, x_shape):
        cols = pt.as_tensor_variable(cols)
        if cols.ndim != 2:
            raise ValueError(f"cols must be a matrix (C * prod(kernel_shape), prod(O) * N); got a {cols.ndim}-d tensor")
        if not cols.dtype.startswith(("float", "int", "uint")):
            raise TypeError(f"cols must have a numeric dtype; got {cols.dtype}")
        x_shape, static = int_vector(x_shape, self.nd + 2, "x_shape")
        if any(s is not None and s < 0 for s in static):
            raise ValueError(f"x_shape entries must be >= 0; got {static}")
        N, C, *spatial = static
        if None not in spatial:
            self.geometry.check_input(spatial, "x_shape")
        expected = (self._rows(C), self._n_cols(N, spatial))
        for s, e in zip(cols.type.shape, expected):
            if s is not None and e is not None and s != e:
                raise ValueError(
                    f"cols has static shape {cols.type.shape}, which does not fit x_shape {static} with "
                    f"kernel_shape {self.kernel_shape}, stride {self.stride}, pad {self.pad}, dilation "
                    f"{self.dilation}: expected {expected}"
                )
        return Apply(self, [cols, x_shape], [TensorType(cols.dtype, shape=static)()])

    def perform(self, node, inputs, output_storage):
        cols, x_shape = inputs
        x = col2im(cols, tuple(int(s) for s in x_shape), *self.geometry)
        output_storage[0][0] = x.astype(node.outputs[0].dtype, copy=False)

    def infer_shape(self, fgraph, node, input_shapes):
        x_shape = node.inputs[1]
        return [tuple(x_shape[i] for i in range(self.nd + 2))]

    def connection_pattern(self, node):
        return [[True], [False]]

    def pullback(self, inputs, outputs, cotangents):
        (g,) = cotangents
        return [Im2Col(*self.geometry)(g), disconnected_type()]

    def pushforward(self, inputs, outputs, tangents):
        if isinstance(tangents[0].type, DisconnectedType):
            return [disconnected_type()]
        return [self(tangents[0], inputs[1])]
