"""Slow numpy reference of the legacy debugging API ``BaseAbstractConv.conv`` / ``unshared2d`` /
``flops`` (the legacy ``perform`` path, kept for debugging; tested against the kernels).

Written on ``numpy.lib.stride_tricks.sliding_window_view`` and ``einsum``, with nothing shared
with the compiled kernels. Semantics are the legacy ones, observed on the legacy reference:

- :func:`conv` is a true convolution (the filters are flipped), ``mode`` is ``"valid"`` or
  ``"full"``; for shared filters ``direction`` does not change the computation (the legacy
  callers passed suitably transposed arrays);
- unshared filters use the public layout ``(out, *out_spatial, in // groups, *kernel)`` (the
  legacy method took an internal ``(out, in, *out_spatial, *kernel)`` layout); their
  ``"backprop inputs"`` scatters with flipped filters (``mode="full"``) and their
  ``"backprop weights"`` returns unflipped filter gradients, as :func:`unshared2d`.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from pytensor_nnet.shapes import per_axis
from pytensor_nnet.shapes.axes import REFERENCE

DIRECTIONS = ("forward", "backprop inputs", "backprop weights")


def _flip(arr, nd):
    return arr[(Ellipsis,) + (slice(None, None, -1),) * nd]


def _windows(x, kernel, dilation):
    """View of x (N, C, *S) as (N, C, *O, *kernel): the dilated window at each valid position."""
    nd = len(kernel)
    extents = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))
    if any(e > s for e, s in zip(extents, x.shape[2:])):
        raise ValueError(f"the (dilated) kernel {extents} is larger than the input {x.shape[2:]}")
    view = sliding_window_view(x, extents, axis=tuple(range(2, 2 + nd)))
    return view[(Ellipsis,) + tuple(slice(None, None, d) for d in dilation)]


def _pad_full(x, kernel, dilation):
    nd = len(kernel)
    pads = [((k - 1) * d,) * 2 for k, d in zip(kernel, dilation)]
    return np.pad(x, [(0, 0)] * (x.ndim - nd) + pads)


def _letters(nd):
    return "xyz"[:nd], "ijk"[:nd]  # output and kernel axes (n, c, m name batch and channels)


def _forward(img, kern, dilation, num_groups, unshared):
    """True convolution of img (N, C, *S) with kern (M, C // g, *K) or unshared (M, *O, C // g, *K)."""
    nd = img.ndim - 2
    o, k = _letters(nd)
    win = _windows(img, kern.shape[2 + nd if unshared else 2 :], dilation)
    M, Cg = kern.shape[0], kern.shape[1 + nd if unshared else 1]
    if img.shape[1] != Cg * num_groups or M % num_groups:
        raise ValueError(
            f"input channels ({img.shape[1]}) must be the filters' channels ({Cg}) * num_groups "
            f"({num_groups}), and num_groups must divide the number of filters ({M})"
        )
    if unshared and tuple(kern.shape[1 : 1 + nd]) != win.shape[2 : 2 + nd]:
        raise ValueError(
            f"the unshared filters' output region {kern.shape[1 : 1 + nd]} must match the output "
            f"{win.shape[2 : 2 + nd]}"
        )
    Mg = M // num_groups
    kern = _flip(kern, nd)
    spec = f"nc{o}{k},m{o}c{k}->nm{o}" if unshared else f"nc{o}{k},mc{k}->nm{o}"
    parts = [np.einsum(spec, win[:, g * Cg : (g + 1) * Cg], kern[g * Mg : (g + 1) * Mg]) for g in range(num_groups)]
    return np.concatenate(parts, axis=1)


def _unshared_backprop_inputs(top, kern, dilation, num_groups):
    """Scatter ``top`` (N, M, *O) through the flipped per-position filters: (N, C, *(O + dk - 1))."""
    nd = top.ndim - 2
    o, _ = _letters(nd)
    out_sp, kernel = top.shape[2:], kern.shape[2 + nd :]
    M, Cg = kern.shape[0], kern.shape[1 + nd]
    Mg = M // num_groups
    kern = _flip(kern, nd)
    size = tuple(s + (k - 1) * d for s, k, d in zip(out_sp, kernel, dilation))
    dx = np.zeros((top.shape[0], Cg * num_groups) + size, dtype=np.result_type(top, kern))
    for tap in np.ndindex(*kernel):
        window = tuple(slice(t * d, t * d + s) for t, d, s in zip(tap, dilation, out_sp))
        for g in range(num_groups):
            filters = kern[(slice(g * Mg, (g + 1) * Mg), Ellipsis) + tap]  # (Mg, *O, Cg) at this tap
            contrib = np.einsum(f"nm{o},m{o}c->nc{o}", top[:, g * Mg : (g + 1) * Mg], filters)
            dx[(slice(None), slice(g * Cg, (g + 1) * Cg)) + window] += contrib
    return dx


def _unshared_backprop_weights(img, top, dilation, num_groups):
    """Unflipped per-position filter gradients (M, *O, C // groups, *K) from img and top."""
    nd = img.ndim - 2
    o, k = _letters(nd)
    kernel = tuple((s - t) // d + 1 for s, t, d in zip(img.shape[2:], top.shape[2:], dilation))
    win = _windows(img, kernel, dilation)
    M, C = top.shape[1], img.shape[1]
    Mg, Cg = M // num_groups, C // num_groups
    parts = [
        np.einsum(f"nm{o},nc{o}{k}->m{o}c{k}", top[:, g * Mg : (g + 1) * Mg], win[:, g * Cg : (g + 1) * Cg])
        for g in range(num_groups)
    ]
    return np.concatenate(parts, axis=0)


def conv(img, kern, mode="valid", dilation=1, num_groups=1, unshared=False, direction="forward"):
    """Basic slow N-d convolution (legacy ``BaseAbstractConv.conv``), for debugging.

    Parameters
    ----------
    img : ndarray (N, C, *S)
        Images (the output gradient for unshared ``"backprop inputs"``).
    kern : ndarray
        Filters (M, C // num_groups, *K), or unshared (M, *O, C // num_groups, *K) (the output
        gradient (N, M, *O) for unshared ``"backprop weights"``).
    mode : {"valid", "full"}
    dilation : int or tuple of int
    num_groups : int
    unshared : bool
    direction : {"forward", "backprop inputs", "backprop weights"}

    Returns
    -------
    ndarray
        (N, M, *O) forward; (N, C, *S) unshared backprop inputs; (M, *O, C // num_groups, *K)
        unshared backprop weights.
    """
    if mode not in ("valid", "full"):
        raise ValueError(f'invalid mode {mode!r}, which must be either "valid" or "full"')
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}; got {direction!r}")
    if not isinstance(num_groups, int | np.integer) or num_groups < 1:
        raise ValueError(f"num_groups must be a positive int; got {num_groups!r}")
    img, kern = np.asarray(img), np.asarray(kern)
    nd = img.ndim - 2
    dilation = per_axis(dilation, nd, "dilation", wording=REFERENCE)
    if unshared and direction == "backprop inputs":
        if mode != "full":
            raise ValueError("unshared 'backprop inputs' scatters into the full input: use mode='full'")
        return _unshared_backprop_inputs(img, kern, dilation, num_groups)
    if unshared and direction == "backprop weights":
        if mode != "valid":
            raise ValueError("unshared 'backprop weights' needs mode='valid'")
        return _unshared_backprop_weights(img, kern, dilation, num_groups)
    if mode == "full":
        img = _pad_full(img, kern.shape[kern.ndim - nd :], dilation)
    return _forward(img, kern, dilation, num_groups, unshared)


def unshared2d(inp, kern, out_shape, direction="forward"):
    """Basic slow unshared 2-d convolution of one channel (legacy ``BaseAbstractConv.unshared2d``).

    - ``"forward"``: ``inp`` (H, W), ``kern`` (oh, ow, kh, kw) -> (oh, ow), each output pixel
      the convolution (flipped filter) of its window with its own filter;
    - ``"backprop inputs"``: ``inp`` the output gradient (oh, ow), ``kern`` as above ->
      ``out_shape`` (H, W);
    - ``"backprop weights"``: ``inp`` the image (H, W), ``kern`` the output gradient (oh, ow)
      -> ``out_shape`` (oh, ow, kh, kw).
    """
    inp, kern = np.asarray(inp), np.asarray(kern)
    out_shape = tuple(int(s) for s in out_shape)
    if direction == "forward":
        res = conv(inp[None, None], kern[None, :, :, None], unshared=True)[0, 0]
    elif direction == "backprop inputs":
        res = conv(inp[None, None], kern[None, :, :, None], "full", unshared=True, direction=direction)[0, 0]
    elif direction == "backprop weights":
        res = conv(inp[None, None], kern[None, None], unshared=True, direction=direction)[0, :, :, 0]
    else:
        raise ValueError(f"direction must be one of {DIRECTIONS}; got {direction!r}")
    if res.shape != out_shape:
        raise ValueError(f"out_shape {out_shape} does not match the computed shape {res.shape}")
    return res


def flops(inp, outp, num_groups=1, unshared=False):
    """Floating-point operations (2 x multiply-adds) of a forward convolution.

    ``inp`` is ``(image_shape, kernel_shape)``, ``outp`` the output shape or a one-element
    sequence holding it (the legacy profiling hook passed ``[output_shape]``).
    """
    img_shape, kern_shape = (tuple(int(s) for s in shp) for shp in inp)
    if len(outp) == 1 and np.ndim(outp[0]) == 1:
        outp = outp[0]
    out_shape = tuple(int(s) for s in outp)
    nd = len(img_shape) - 2
    in_per_group = kern_shape[1 + nd] if unshared else kern_shape[1]
    if img_shape[1] != in_per_group * num_groups:
        raise ValueError(
            f"input channels ({img_shape[1]}) must equal the filters' input channels ({in_per_group}) "
            f"* num_groups ({num_groups})"
        )
    taps = int(np.prod(kern_shape[len(kern_shape) - nd :]))
    return 2 * int(np.prod(out_shape)) * in_per_group * taps
