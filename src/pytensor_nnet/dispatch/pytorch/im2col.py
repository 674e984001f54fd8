"""PyTorch implementations of :class:`Im2Col` / :class:`Col2Im`.

``Im2Col`` is a strided view of the windows (``Tensor.unfold``) permuted to the toolkit's
column layout; ``Col2Im`` adds the columns back tap by tap. ``Col2Im``'s ``x_shape`` is read
from the graph when it is a constant (or the output's static shape), else from the tensor at
run time (``torch.compile`` breaks the graph there).
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from pytensor.link.pytorch.dispatch import pytorch_funcify

from pytensor_nnet.dispatch.pytorch.utils import as_ints, constant_ints, crop, flat_pad, fold_windows, unfold_windows
from pytensor_nnet.im2col import Col2Im, Im2Col


def _columns(op, x):
    """``im2col`` of ``x`` (N, C, *S): ``(C * prod(K), prod(O) * N)``, image index fastest."""
    geo = op.geometry
    geo.check_input(tuple(x.shape[2:]))
    xp = F.pad(x, flat_pad(geo.pad)) if any(lo or hi for lo, hi in geo.pad) else x
    windows = unfold_windows(xp, geo.kernel_shape, geo.stride, geo.dilation)  # (N, C, *O, *K)
    nd = geo.nd
    order = (1,) + tuple(range(2 + nd, 2 + 2 * nd)) + tuple(range(2, 2 + nd)) + (0,)
    return windows.permute(order).reshape(x.shape[1] * math.prod(geo.kernel_shape), -1)


@pytorch_funcify.register(Im2Col)
def pytorch_funcify_Im2Col(op, node, **kwargs):
    def im2col(x):
        return _columns(op, x)

    return im2col


@pytorch_funcify.register(Col2Im)
def pytorch_funcify_Col2Im(op, node, **kwargs):
    static = constant_ints(node, 1)
    if static is None and None not in node.outputs[0].type.shape:
        static = tuple(int(s) for s in node.outputs[0].type.shape)
    geo = op.geometry
    nd = geo.nd

    def col2im(cols, x_shape):
        N, C, *spatial = static if static is not None else as_ints(x_shape)
        geo.check_input(spatial, "x_shape")
        out = geo.out_shape(spatial)
        expected = (C * math.prod(geo.kernel_shape), math.prod(out) * N)
        if tuple(cols.shape) != expected:
            raise ValueError(
                f"cols has shape {tuple(cols.shape)}, which does not fit x_shape {(N, C, *spatial)} with "
                f"kernel_shape {geo.kernel_shape}, stride {geo.stride}, pad {geo.pad}, dilation "
                f"{geo.dilation}: expected {expected}"
            )
        windows = cols.reshape((C, *geo.kernel_shape, *out, N))
        order = (2 * nd + 1, 0) + tuple(range(1 + nd, 1 + 2 * nd)) + tuple(range(1, 1 + nd))
        padded = [s + lo + hi for s, (lo, hi) in zip(spatial, geo.pad)]
        x = fold_windows(windows.permute(order), padded, geo.stride, geo.dilation)
        return crop(x, geo.pad)

    return col2im
