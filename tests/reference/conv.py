"""Slow, obvious numpy references the kernels and Ops are checked against.

Written from the definitions, with explicit padding and a loop over output positions; no
im2col, no GEMM, nothing shared with the package's kernels.
"""

from __future__ import annotations

import itertools

import numpy as np


def pads_for(border_mode, kernel_spatial, dilation):
    """Per-axis (before, after) padding of a legacy border_mode, from the definitions."""
    nd = len(kernel_spatial)
    dks = [(k - 1) * d + 1 for k, d in zip(kernel_spatial, dilation)]
    if border_mode == "valid":
        return [(0, 0)] * nd
    if border_mode == "full":
        return [(dk - 1, dk - 1) for dk in dks]
    if border_mode == "half":
        return [(dk // 2, dk // 2) for dk in dks]
    if isinstance(border_mode, int):
        return [(border_mode, border_mode)] * nd
    return [tuple(b) if isinstance(b, tuple | list) else (b, b) for b in border_mode]


def conv_ref(x, w, border_mode="valid", subsample=None, filter_flip=True, filter_dilation=None, num_groups=1):
    """Forward convolution: x (N, C, *S), w (M, C // groups, *K) -> (N, M, *O)."""
    nd = x.ndim - 2
    subsample = tuple(subsample or (1,) * nd)
    dilation = tuple(filter_dilation or (1,) * nd)
    if filter_flip:
        w = w[(slice(None), slice(None)) + (slice(None, None, -1),) * nd]
    pads = pads_for(border_mode, w.shape[2:], dilation)
    xp = np.pad(x, [(0, 0), (0, 0)] + list(pads))
    N, C = x.shape[:2]
    M, Cg = w.shape[:2]
    Mg = M // num_groups
    dks = [(k - 1) * d + 1 for k, d in zip(w.shape[2:], dilation)]
    out_sp = [(xp.shape[2 + i] - dks[i]) // subsample[i] + 1 for i in range(nd)]
    y = np.zeros((N, M, *out_sp), dtype=np.result_type(x, w))
    for m in range(M):
        g = m // Mg
        xg = xp[:, g * Cg : (g + 1) * Cg]
        for pos in itertools.product(*[range(o) for o in out_sp]):
            window = tuple(slice(pos[i] * subsample[i], pos[i] * subsample[i] + dks[i], dilation[i]) for i in range(nd))
            patch = xg[(slice(None), slice(None)) + window]
            y[(slice(None), m) + pos] = np.sum(patch * w[m], axis=tuple(range(1, nd + 2)))
    return y


def conv_grads_ref(x, w, gy, **params):
    """(dx, dw) of sum(conv_ref(x, w) * gy), by the adjoint of the same loop."""
    nd = x.ndim - 2
    subsample = tuple(params.get("subsample") or (1,) * nd)
    dilation = tuple(params.get("filter_dilation") or (1,) * nd)
    flip = params.get("filter_flip", True)
    groups = params.get("num_groups", 1)
    wf = w[(slice(None), slice(None)) + (slice(None, None, -1),) * nd] if flip else w
    pads = pads_for(params.get("border_mode", "valid"), w.shape[2:], dilation)
    xp = np.pad(x, [(0, 0), (0, 0)] + list(pads))
    dxp = np.zeros_like(xp, dtype=np.result_type(x, w, gy))
    dwf = np.zeros_like(wf, dtype=dxp.dtype)
    M, Cg = w.shape[:2]
    Mg = M // groups
    dks = [(k - 1) * d + 1 for k, d in zip(w.shape[2:], dilation)]
    for m in range(M):
        g = m // Mg
        for pos in itertools.product(*[range(o) for o in gy.shape[2:]]):
            window = tuple(slice(pos[i] * subsample[i], pos[i] * subsample[i] + dks[i], dilation[i]) for i in range(nd))
            idx = (slice(None), slice(g * Cg, (g + 1) * Cg)) + window
            coeff = gy[(slice(None), m) + pos].reshape((-1,) + (1,) * (nd + 1))
            dxp[idx] += coeff * wf[m]
            dwf[m] += np.sum(coeff * xp[idx], axis=0)
    inner = tuple(slice(lo, xp.shape[2 + i] - hi) for i, (lo, hi) in enumerate(pads))
    dx = dxp[(slice(None), slice(None)) + inner]
    dw = dwf[(slice(None), slice(None)) + (slice(None, None, -1),) * nd] if flip else dwf
    return dx, dw


# ----------------------------------------------------------------------------- unshared, transposed, upsampling, causal
def _unshared_windows(x, w, border_mode, subsample, filter_dilation, filter_flip):
    """Padded x, per-axis strides/dilations, flipped kernels and output positions of an
    unshared convolution with w (M, *out, Cg, *K)."""
    nd = x.ndim - 2
    subsample = tuple(subsample or (1,) * nd)
    dilation = tuple(filter_dilation or (1,) * nd)
    kernel = w.shape[2 + nd :]
    if filter_flip:
        w = w[(Ellipsis,) + (slice(None, None, -1),) * nd]
    pads = pads_for(border_mode, kernel, dilation)
    xp = np.pad(x, [(0, 0), (0, 0)] + list(pads))
    dks = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    out_sp = tuple(w.shape[1 : 1 + nd])
    return nd, xp, pads, subsample, dilation, dks, w, out_sp


def unshared_conv_ref(x, w, border_mode="valid", subsample=None, filter_flip=True, filter_dilation=None, num_groups=1):
    """Locally connected convolution: x (N, C, *S), w (M, *O, C // groups, *K) -> (N, M, *O).

    A different filter bank at every output position, from the definition."""
    nd, xp, _, subsample, dilation, dks, w, out_sp = _unshared_windows(
        x, w, border_mode, subsample, filter_dilation, filter_flip
    )
    N = x.shape[0]
    M, Cg = w.shape[0], w.shape[1 + nd]
    Mg = M // num_groups
    y = np.zeros((N, M, *out_sp), dtype=np.result_type(x, w))
    for m in range(M):
        g = m // Mg
        for pos in itertools.product(*[range(o) for o in out_sp]):
            window = tuple(slice(pos[i] * subsample[i], pos[i] * subsample[i] + dks[i], dilation[i]) for i in range(nd))
            patch = xp[(slice(None), slice(g * Cg, (g + 1) * Cg)) + window]
            y[(slice(None), m) + pos] = np.sum(patch * w[(m,) + pos], axis=tuple(range(1, nd + 2)))
    return y


def unshared_grads_ref(
    x, w, gy, border_mode="valid", subsample=None, filter_flip=True, filter_dilation=None, num_groups=1
):
    """(dx, dw) of sum(unshared_conv_ref(x, w) * gy), by the adjoint of the same loop."""
    nd, xp, pads, subsample, dilation, dks, wf, out_sp = _unshared_windows(
        x, w, border_mode, subsample, filter_dilation, filter_flip
    )
    M, Cg = w.shape[0], w.shape[1 + nd]
    Mg = M // num_groups
    dxp = np.zeros_like(xp, dtype=np.result_type(x, w, gy))
    dwf = np.zeros_like(wf, dtype=dxp.dtype)
    for m in range(M):
        g = m // Mg
        for pos in itertools.product(*[range(o) for o in out_sp]):
            window = tuple(slice(pos[i] * subsample[i], pos[i] * subsample[i] + dks[i], dilation[i]) for i in range(nd))
            idx = (slice(None), slice(g * Cg, (g + 1) * Cg)) + window
            coeff = gy[(slice(None), m) + pos].reshape((-1,) + (1,) * (nd + 1))
            dxp[idx] += coeff * wf[(m,) + pos]
            dwf[(m,) + pos] += np.sum(coeff * xp[idx], axis=0)
    inner = tuple(slice(lo, xp.shape[2 + i] - hi) for i, (lo, hi) in enumerate(pads))
    dx = dxp[(slice(None), slice(None)) + inner]
    dw = dwf[(Ellipsis,) + (slice(None, None, -1),) * nd] if filter_flip else dwf
    return dx, dw


def transpose_conv_ref(
    x, w, output_spatial, border_mode="valid", input_dilation=None, filter_flip=True, filter_dilation=None, num_groups=1
):
    """Transposed convolution from its definition: scatter every input pixel times its filter.

    x (N, M, *I), w (M, C // groups, *K) -> (N, C, *output_spatial): the adjoint of the forward
    convolution of an (N, C, *output_spatial) image with stride ``input_dilation``."""
    nd = x.ndim - 2
    stride = tuple(input_dilation or (1,) * nd)
    dilation = tuple(filter_dilation or (1,) * nd)
    if filter_flip:
        w = w[(slice(None), slice(None)) + (slice(None, None, -1),) * nd]
    pads = pads_for(border_mode, w.shape[2:], dilation)
    M, Cg = w.shape[:2]
    Mg = M // num_groups
    full = [o + lo + hi for o, (lo, hi) in zip(output_spatial, pads)]
    out = np.zeros((x.shape[0], Cg * num_groups, *full), dtype=np.result_type(x, w))
    dks = [(k - 1) * d + 1 for k, d in zip(w.shape[2:], dilation)]
    for m in range(M):
        g = m // Mg
        for pos in itertools.product(*[range(s) for s in x.shape[2:]]):
            window = tuple(slice(pos[i] * stride[i], pos[i] * stride[i] + dks[i], dilation[i]) for i in range(nd))
            coeff = x[(slice(None), m) + pos].reshape((-1,) + (1,) * (nd + 1))
            out[(slice(None), slice(g * Cg, (g + 1) * Cg)) + window] += coeff * w[m]
    inner = tuple(slice(lo, lo + o) for o, (lo, _) in zip(output_spatial, pads))
    return out[(slice(None), slice(None)) + inner]


def bilinear_upsampling_ref(x, ratio=None, frac_ratio=None):
    """Legacy bilinear upsampling by interpolation (no convolution): output pixel ``i`` of an
    integer ratio ``r`` samples the edge-clamped input at ``(i - (r - 1) // 2) / r``; a
    fractional ratio ``num / den`` (reduced) keeps every ``den``-th pixel of the ratio ``num``
    result, starting at the first."""
    from math import gcd

    if frac_ratio is None:
        pairs = [(ratio, 1), (ratio, 1)]
    elif isinstance(frac_ratio[0], tuple | list):
        pairs = [tuple(f) for f in frac_ratio]
    else:
        pairs = [tuple(frac_ratio)] * 2
    out = np.asarray(x, dtype=float)
    for axis, (num, den) in zip((2, 3), pairs):
        k = gcd(num, den)
        num, den = num // k, den // k
        n = out.shape[axis]
        src = (np.arange(n * num) - (num - 1) // 2) / num
        src = src[::den]
        lo = np.floor(src).astype(int)
        frac = src - lo
        a = np.take(out, np.clip(lo, 0, n - 1), axis=axis)
        b = np.take(out, np.clip(lo + 1, 0, n - 1), axis=axis)
        shape = [1] * out.ndim
        shape[axis] = -1
        frac = frac.reshape(shape)
        out = a * (1 - frac) + b * frac
    return out


def causal_conv1d_ref(x, w, subsample=1, filter_flip=True, filter_dilation=1, num_groups=1):
    """Causal 1-d convolution: output t sees inputs up to t only (left zero padding)."""
    pad = (w.shape[-1] - 1) * filter_dilation
    xp = np.pad(x, [(0, 0), (0, 0), (pad, 0)])
    return conv_ref(xp, w, "valid", (subsample,), filter_flip, (filter_dilation,), num_groups)
