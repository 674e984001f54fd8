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
        xg = xp[:, g * Cg:(g + 1) * Cg]
        for pos in itertools.product(*[range(o) for o in out_sp]):
            window = tuple(
                slice(pos[i] * subsample[i], pos[i] * subsample[i] + dks[i], dilation[i]) for i in range(nd)
            )
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
            window = tuple(
                slice(pos[i] * subsample[i], pos[i] * subsample[i] + dks[i], dilation[i]) for i in range(nd)
            )
            idx = (slice(None), slice(g * Cg, (g + 1) * Cg)) + window
            coeff = gy[(slice(None), m) + pos].reshape((-1,) + (1,) * (nd + 1))
            dxp[idx] += coeff * wf[m]
            dwf[m] += np.sum(coeff * xp[idx], axis=0)
    inner = tuple(slice(lo, xp.shape[2 + i] - hi) for i, (lo, hi) in enumerate(pads))
    dx = dxp[(slice(None), slice(None)) + inner]
    dw = dwf[(slice(None), slice(None)) + (slice(None, None, -1),) * nd] if flip else dwf
    return dx, dw
