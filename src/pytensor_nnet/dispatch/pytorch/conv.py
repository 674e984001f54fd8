"""PyTorch implementations of the abstract convolution Ops.

The forward Op is ``torch.nn.functional.conv{1,2,3}d``; the two gradient Ops call
``torch.ops.aten.convolution_backward``, the kernel autograd runs for the same convolution
(as ``torch.nn.grad.conv2d_input`` / ``conv2d_weight`` do), with one output requested.
Symmetric padding is the convolution's own ``padding``; asymmetric padding pads the input
with ``F.pad`` first (and crops the input gradient). ``filter_flip=True`` flips the filters'
spatial axes. Unshared (locally connected) filters multiply a strided view of the input's
windows (``Tensor.unfold``) with a per-position ``einsum``; their input gradient adds the
window gradients back tap by tap.

The gradient Ops take the missing operand's spatial ``shape`` as an input. It is read from
the graph when it is a constant or the output's static shape gives it, else deduced from the
operands' shapes where that is unique (stride 1, and not "half" padding for the filter
gradient), else read from the tensor at run time (``torch.compile`` breaks the graph there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pytensor.link.pytorch.dispatch import pytorch_funcify

from pytensor_nnet import shapes
from pytensor_nnet.conv import ops
from pytensor_nnet.dispatch.pytorch.utils import as_ints, constant_ints, crop, flat_pad, fold_windows, unfold_windows

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_OUT_LETTERS, _KERNEL_LETTERS = "opq", "uvw"


def _pads(op, kernel_spatial):
    """Per-axis ``(before, after)`` padding of ``op`` for filters of spatial size ``kernel_spatial``."""
    return shapes.conv_padding(op.border_mode, kernel_spatial, op.filter_dilation)


def _symmetric(pads):
    return all(lo == hi for lo, hi in pads)


def _flip(op, kern):
    return kern.flip(tuple(range(kern.ndim - op.convdim, kern.ndim))) if op.filter_flip else kern


class _Unshared:
    """Locally connected convolution of ``op``: filters ``(M, *out, Cg, *k)``, already flipped."""

    def __init__(self, op):
        nd = op.convdim
        self.op = op
        o, k = _OUT_LETTERS[:nd], _KERNEL_LETTERS[:nd]
        self.forward_eq = f"ngc{o}{k},gm{o}c{k}->ngm{o}"
        self.weights_eq = f"ngm{o},ngc{o}{k}->gm{o}c{k}"
        self.inputs_eq = f"ngm{o},gm{o}c{k}->ngc{o}{k}"

    def _windows(self, img, kernel, pads):
        """``(N, G, Cg, *out, *kernel)`` windows of the padded input."""
        op = self.op
        x = F.pad(img, flat_pad(pads)) if any(lo or hi for lo, hi in pads) else img
        return unfold_windows(x, kernel, op.subsample, op.filter_dilation).unflatten(1, (op.num_groups, -1))

    def _grouped(self, kern):
        return kern.unflatten(0, (self.op.num_groups, -1))

    def forward(self, img, kern):
        nd = self.op.convdim
        kernel = tuple(kern.shape[-nd:])
        windows = self._windows(img, kernel, _pads(self.op, kernel))
        return torch.einsum(self.forward_eq, windows, self._grouped(kern)).flatten(1, 2)

    def grad_weights(self, img, topgrad, kernel):
        windows = self._windows(img, kernel, _pads(self.op, kernel))
        grad = torch.einsum(self.weights_eq, topgrad.unflatten(1, (self.op.num_groups, -1)), windows)
        return grad.flatten(0, 1)

    def grad_inputs(self, kern, topgrad, spatial):
        op, nd = self.op, self.op.convdim
        kernel = tuple(kern.shape[-nd:])
        pads = _pads(op, kernel)
        windows = torch.einsum(self.inputs_eq, topgrad.unflatten(1, (op.num_groups, -1)), self._grouped(kern))
        padded = [s + lo + hi for s, (lo, hi) in zip(spatial, pads)]
        grad = fold_windows(windows.flatten(1, 2), padded, op.subsample, op.filter_dilation)
        return crop(grad, pads)


def _static_spatial(op, node, spatial_of_output):
    """The gradient Op's spatial ``shape`` input, if the graph fixes it (constant or static type)."""
    shape = constant_ints(node, 2)
    if shape is not None:
        return shape[-op.convdim :]  # the spatial shape, or the operand's whole shape
    static = spatial_of_output(node.outputs[0].type.shape)
    if None not in static:
        return tuple(int(s) for s in static)
    return None


def shape_only(like, shape):
    """A tensor of ``shape`` (and ``like``'s dtype and device) whose values are never read: the
    operand that ``convolution_backward`` takes only for its shape. A zero-stride view of
    ``like``, so that no buffer is allocated or filled (an empty ``like`` has no element to view)."""
    if like.numel() == 0:
        return like.new_zeros(()).expand(shape)
    return like.as_strided(shape, (0,) * len(shape))


def _runtime_check(op, node):
    """``check(operand_shape, top_shape, shape)``: the gradient Op's run-time shape checks (the
    forward Op's messages), or a no-op when static shapes let ``make_node`` check everything.

    The check reads shapes as Python ints, so ``torch.compile`` runs it outside the graph."""
    static = all(None not in var.type.shape for var in node.inputs[:2])
    if static and constant_ints(node, 2) is not None:
        return lambda *shapes_: None

    @torch.compiler.disable
    def check(operand_shape, top_shape, shape):
        op.check_inputs(node, tuple(operand_shape), tuple(top_shape), as_ints(shape))

    return check


def _missing_spatial(op, node, spatial_of_output, deduce):
    """``spatial(operand, topgrad, shape)`` of a gradient Op: its run-time checks, then the
    missing operand's spatial shape as ints, from the graph (constant or static type), else
    the operands' shapes where they fix it (``deduce``: ``shapes.get_conv_grad*_shape``), else
    the run-time ``shape`` input (the spatial shape or the operand's whole shape)."""
    static = _static_spatial(op, node, spatial_of_output)
    check = _runtime_check(op, node)

    def spatial(operand, topgrad, shape):
        check(operand.shape, topgrad.shape, shape)
        if static is not None:
            return static
        deduced = deduce(
            tuple(operand.shape),
            tuple(topgrad.shape),
            op.border_mode,
            op.subsample,
            op.filter_dilation,
            op.num_groups,
        )[2:]
        if None not in deduced:
            return tuple(int(s) for s in deduced)
        return as_ints(shape)[-op.convdim :]

    return spatial


@pytorch_funcify.register(ops.AbstractConv)
def pytorch_funcify_AbstractConv(op, node, **kwargs):
    nd, conv_nd = op.convdim, _CONV[op.convdim]
    unshared = _Unshared(op) if op.unshared else None

    def abstract_conv(img, kern):
        kern = _flip(op, kern)
        if unshared is not None:
            return unshared.forward(img, kern)
        pads = _pads(op, kern.shape[-nd:])
        if _symmetric(pads):
            padding = [lo for lo, _ in pads]
        else:
            img, padding = F.pad(img, flat_pad(pads)), 0
        return conv_nd(img, kern, None, op.subsample, padding, op.filter_dilation, op.num_groups)

    return abstract_conv


@pytorch_funcify.register(ops.AbstractConv_gradInputs)
def pytorch_funcify_AbstractConv_gradInputs(op, node, **kwargs):
    nd = op.convdim
    missing_spatial = _missing_spatial(op, node, lambda shape: shape[2:], shapes.get_conv_gradinputs_shape)
    unshared = _Unshared(op) if op.unshared else None

    def abstract_conv_grad_inputs(kern, topgrad, shape):
        spatial = missing_spatial(kern, topgrad, shape)
        kern = _flip(op, kern)
        if unshared is not None:
            return unshared.grad_inputs(kern, topgrad, spatial)
        pads = _pads(op, kern.shape[-nd:])
        symmetric = _symmetric(pads)
        padded = spatial if symmetric else tuple(s + lo + hi for s, (lo, hi) in zip(spatial, pads))
        in_shape = (topgrad.shape[0], kern.shape[1] * op.num_groups, *padded)
        grad = torch.ops.aten.convolution_backward(
            topgrad,
            shape_only(topgrad, in_shape),
            kern,
            None,
            op.subsample,
            [lo for lo, _ in pads] if symmetric else [0] * nd,
            op.filter_dilation,
            False,
            [0] * nd,
            op.num_groups,
            [True, False, False],
        )[0]
        return grad if symmetric else crop(grad, pads)

    return abstract_conv_grad_inputs


@pytorch_funcify.register(ops.AbstractConv_gradWeights)
def pytorch_funcify_AbstractConv_gradWeights(op, node, **kwargs):
    nd = op.convdim
    missing_spatial = _missing_spatial(op, node, lambda shape: shape[-nd:], shapes.get_conv_gradweights_shape)
    unshared = _Unshared(op) if op.unshared else None

    def abstract_conv_grad_weights(img, topgrad, shape):
        kernel = missing_spatial(img, topgrad, shape)
        if unshared is not None:
            return _flip(op, unshared.grad_weights(img, topgrad, kernel))
        pads = _pads(op, kernel)
        if _symmetric(pads):
            padding = [lo for lo, _ in pads]
        else:
            img, padding = F.pad(img, flat_pad(pads)), [0] * nd
        kern_shape = (topgrad.shape[1], img.shape[1] // op.num_groups, *kernel)
        grad = torch.ops.aten.convolution_backward(
            topgrad,
            img,
            shape_only(img, kern_shape),
            None,
            op.subsample,
            padding,
            op.filter_dilation,
            False,
            [0] * nd,
            op.num_groups,
            [False, True, False],
        )[1]
        return _flip(op, grad)

    return abstract_conv_grad_weights
