"""PyTorch implementations of the pooling Ops and of ``WindowCount``.

Every pooling Op pads the input explicitly (``pad`` on both sides, plus the extra end padding
that keeps the last, partial windows of ``ignore_border=False``), so the windows are the
legacy ones exactly:

* ``Pool``: ``max`` of floating-point data is ``F.max_pool{1,2,3}d`` of the input padded with
  ``-inf`` (padding never wins); integer data and the sums walk the window taps (``prod(ws)``
  strided slices); the averages divide the sums by the legacy divisors.
* ``MaxPoolGrad`` / ``DownsampleFactorMaxGradGrad`` follow the Op's tie rule
  (:func:`max_grad_ties`): ``"first"`` gives each window's gradient to its first maximum in
  row-major window order (a running argmax over the taps: a later tap wins only if strictly
  larger, or the first NaN; padding never wins), ``"all"`` (legacy) to every element equal to
  the window's maximum. GradGrad is the exact adjoint (a gather at the same element, or a sum
  over the tied ones).
* ``AveragePoolGrad`` spreads ``gz / divisor`` over each window.

``ws``, ``stride`` and ``pad`` are read from the graph when
they are constants, else from the tensors at run time (``torch.compile`` breaks the graph
there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pytensor.link.pytorch.dispatch import pytorch_funcify

from pytensor_nnet import pool
from pytensor_nnet.dispatch.pytorch.utils import (
    as_ints,
    constant_ints,
    crop,
    flat_pad,
    unsupported,
    window_taps,
)
from pytensor_nnet.kernels import pool as kernels
from pytensor_nnet.shapes.pool import check_pool_args, pool_output_size, pool_pad_pairs, window_divisor

_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
#: Tie rule of the legacy Ops, which have no ``max_grad_ties`` prop.
LEGACY_TIES = "all"


def max_grad_ties(op):
    """The tie rule of a max-pooling gradient Op: ``"first"`` or ``"all"``."""
    rule = getattr(op, "max_grad_ties", LEGACY_TIES)
    if rule not in ("first", "all"):
        raise unsupported(op, f"max_grad_ties={rule!r}")
    return rule


class _Geometry:
    """Pooling geometry for one input shape: padded extents, output size, taps, divisors."""

    def __init__(self, op, x_shape, ws, stride, pad):
        nd = op.ndim
        for name, values in (("ws", ws), ("stride", stride), ("pad", pad)):
            if len(values) != nd:
                raise ValueError(f"{name} must have {nd} entries; got {values}")
        self.lead = tuple(int(s) for s in x_shape[: len(x_shape) - nd])
        self.spatial = tuple(int(s) for s in x_shape[len(x_shape) - nd :])
        check_pool_args(self.spatial, ws, stride, pad, op.ignore_border)
        self.ws, self.stride, self.pad, self.mode = ws, stride, pad, op.mode
        self.out = tuple(
            pool_output_size(n, k, s, p, op.ignore_border) for n, k, s, p in zip(self.spatial, ws, stride, pad)
        )
        self.pairs = pool_pad_pairs(self.spatial, ws, stride, pad, op.ignore_border)
        self.padded_spatial = tuple(n + lo + hi for n, (lo, hi) in zip(self.spatial, self.pairs))

    def padded(self, a, value):
        if not any(lo or hi for lo, hi in self.pairs):
            return a
        return F.pad(a, flat_pad(self.pairs), value=value)

    def taps(self):
        """``(tap number, index)`` of the window taps in row-major order (see ``window_taps``)."""
        for t, (_, index) in enumerate(window_taps(self.ws, (1,) * len(self.ws), self.stride, self.out)):
            yield t, index

    def valid(self, device):
        """Bool mask of the input elements in the padded layout (None without padding)."""
        if not any(lo or hi for lo, hi in self.pairs):
            return None
        return F.pad(torch.ones(self.spatial, dtype=torch.bool, device=device), flat_pad(self.pairs), value=False)

    def divisors(self, dtype, device):
        """Legacy divisors of the outputs (broadcastable to the output), None for ``sum``."""
        if self.mode == "sum":
            return None
        include = self.mode == "average_inc_pad"
        total = None
        for axis, (n, k, s, p, o) in enumerate(zip(self.spatial, self.ws, self.stride, self.pad, self.out)):
            shape = [1] * len(self.out)
            shape[axis] = o
            per_axis = [window_divisor(i, n, k, s, p, include) for i in range(o)]
            per_axis = torch.tensor(per_axis, dtype=dtype, device=device).reshape(shape)
            total = per_axis if total is None else total * per_axis
        return total


def _geometry_reader(node, first):
    """``read(inputs) -> (ws, stride, pad)``: the constants of the graph, or run-time values."""
    static = [constant_ints(node, first + i) for i in range(3)]

    def read(geometry_inputs):
        return tuple(s if s is not None else as_ints(v) for s, v in zip(static, geometry_inputs))

    return read


def _window_sum(geo, x):
    xp = geo.padded(x, 0)
    total = None
    for _, index in geo.taps():
        total = xp[index] if total is None else total + xp[index]
    return total


def _average(geo, x, dtype):
    """Sum or legacy average pooling of ``x`` (the output in ``dtype``)."""
    total = _window_sum(geo, x)
    divisors = geo.divisors(total.dtype if total.is_floating_point() else torch.float64, total.device)
    if divisors is None:
        return total
    return (total / divisors).to(dtype)


def _max_pool(geo, x, lowest):
    xp = geo.padded(x, lowest)
    if x.is_floating_point():
        flat = xp.reshape((-1, 1) + tuple(xp.shape[xp.ndim - len(geo.ws) :]))
        y = _MAX_POOL[len(geo.ws)](flat, geo.ws, geo.stride)
        y = y[(Ellipsis,) + tuple(slice(0, o) for o in geo.out)]
        return y.reshape(geo.lead + geo.out)
    result = None
    for _, index in geo.taps():
        result = xp[index] if result is None else torch.maximum(result, xp[index])
    return result


@pytorch_funcify.register(pool.Pool)
def pytorch_funcify_Pool(op, node, **kwargs):
    read = _geometry_reader(node, 1)
    lowest = kernels.lowest_value(node.inputs[0].type.dtype).item()
    out_dtype = getattr(torch, node.outputs[0].type.dtype)

    def pool_op(x, *geometry_inputs):
        geo = _Geometry(op, x.shape, *read(geometry_inputs))
        if 0 in geo.out:  # a window larger than the padded input: an empty output
            return torch.zeros(geo.lead + geo.out, dtype=out_dtype, device=x.device)
        if op.mode == "max":
            return _max_pool(geo, x, lowest)
        return _average(geo, x, out_dtype)

    return pool_op


def _first_max_tap(geo, xp):
    """Per output element, the tap number of its window's first maximum (row-major window
    order; a later tap wins only if strictly larger or the first NaN; padding never wins)."""
    valid = geo.valid(xp.device)
    best = winner = None
    for t, index in geo.taps():
        v = xp[index]
        inside = None if valid is None else valid[index]
        if winner is None:
            best = v
            winner = torch.zeros(v.shape, dtype=torch.int64, device=v.device)
            if inside is not None:
                winner = torch.where(inside, winner, -1)
            continue
        take = (v > best) | (torch.isnan(v) & ~torch.isnan(best)) if v.is_floating_point() else v > best
        take = take | (winner < 0)
        if inside is not None:
            take = take & inside
        best = torch.where(take, v, best)
        winner = torch.where(take, t, winner)
    return winner


def _max_pool_grad(geo, xp, maxout, gz, ties):
    gxp = torch.zeros(xp.shape, dtype=gz.dtype, device=gz.device)
    winner = _first_max_tap(geo, xp) if ties == "first" else None
    for t, index in geo.taps():
        hit = winner == t if ties == "first" else xp[index] == maxout
        gxp[index] += torch.where(hit, gz, 0)
    return crop(gxp, geo.pairs)


def _max_pool_grad_grad(geo, xp, maxout, gg, ties):
    gp = geo.padded(gg, 0)
    winner = _first_max_tap(geo, xp) if ties == "first" else None
    ggz = None
    for t, index in geo.taps():
        hit = winner == t if ties == "first" else xp[index] == maxout
        term = torch.where(hit, gp[index], 0)
        ggz = term if ggz is None else ggz + term
    return ggz


def _max_pair(op, node, per_tap):
    """``(x, maxout, g, ws, stride, pad)`` of the max-pooling gradient pair."""
    read = _geometry_reader(node, 3)
    lowest = kernels.lowest_value(node.inputs[0].type.dtype).item()
    ties = max_grad_ties(op)
    like_x = isinstance(op, pool.MaxPoolGrad)

    def max_pair(x, maxout, g, *geometry_inputs):
        geo = _Geometry(op, x.shape, *read(geometry_inputs))
        if 0 in geo.out:  # no window: the gradient is zero (shaped like x or like maxout)
            return torch.zeros_like(x if like_x else maxout, dtype=g.dtype)
        return per_tap(geo, geo.padded(x, lowest), maxout, g, ties)

    return max_pair


@pytorch_funcify.register(pool.MaxPoolGrad)
def pytorch_funcify_MaxPoolGrad(op, node, **kwargs):
    return _max_pair(op, node, _max_pool_grad)


@pytorch_funcify.register(pool.DownsampleFactorMaxGradGrad)
def pytorch_funcify_DownsampleFactorMaxGradGrad(op, node, **kwargs):
    return _max_pair(op, node, _max_pool_grad_grad)


@pytorch_funcify.register(pool.AveragePoolGrad)
def pytorch_funcify_AveragePoolGrad(op, node, **kwargs):
    read = _geometry_reader(node, 2)

    def average_pool_grad(x, gz, *geometry_inputs):
        geo = _Geometry(op, x.shape, *read(geometry_inputs[:3]))
        divisors = geo.divisors(gz.dtype if gz.is_floating_point() else torch.float64, gz.device)
        g = gz if divisors is None else (gz / divisors).to(gz.dtype)
        gxp = torch.zeros(geo.lead + geo.padded_spatial, dtype=gz.dtype, device=gz.device)
        for _, index in geo.taps():
            gxp[index] += g
        return crop(gxp, geo.pairs)

    return average_pool_grad


if hasattr(pool, "WindowCount"):

    @pytorch_funcify.register(pool.WindowCount)
    def pytorch_funcify_WindowCount(op, node, **kwargs):
        def window_count(*sizes):
            count = op.evaluate(list(sizes), maximum=lambda a, b: torch.clamp(torch.as_tensor(b), min=a))
            return torch.as_tensor(count, dtype=torch.int64)

        return window_count
