"""Direct (no im2col, no GEMM) correlation for filters with one input channel per group.

That is depthwise convolution (``groups == channels``, any channel multiplier) and
single-channel inputs. Each output channel ``m`` reads only input channel
``m // (M // groups)``, so the GEMM of the im2col path degenerates into ``groups`` tiny GEMVs
over a ``taps``-times inflated buffer; here each tap is one pass of a multiply-add over a
contiguous output row instead (vectorised along the last axis).

Same 5-d layout, 3-d geometry and padding conventions as ``kernels.corr`` (``pad`` is the
resolved *before* padding, ``out`` the output size); the callers in ``kernels.corr`` check
shapes before calling.
"""

from __future__ import annotations

import numba
import numpy as np

from pytensor_nnet.kernels.im2col import _valid_range


@numba.njit(cache=True)
def _row_span(ox_size, sw, x_off, W):
    return _valid_range(ox_size, sw, x_off, W)


@numba.njit(cache=True)
def direct_forward(x, w, y, stride, pad, dilation, groups):
    """``y[n, m] = sum_taps w[m, 0, tap] * x[n, m // (M // groups), window(tap)]`` (``y`` must be zeroed)."""
    N, C, D, H, W = x.shape
    M, _, kd, kh, kw = w.shape
    _, _, od, oh, ow = y.shape
    sd, sh, sw = stride
    pd, ph, pw = pad
    dd, dh, dw = dilation
    Mg = M // groups
    for n in range(N):
        for m in range(M):
            c = m // Mg
            for a in range(kd):
                for b in range(kh):
                    for e in range(kw):
                        wv = w[m, 0, a, b, e]
                        x_off = e * dw - pw
                        lo, hi = _row_span(ow, sw, x_off, W)
                        for z in range(od):
                            iz = z * sd - pd + a * dd
                            if iz < 0 or iz >= D:
                                continue
                            for r in range(oh):
                                iy = r * sh - ph + b * dh
                                if iy < 0 or iy >= H:
                                    continue
                                src = x[n, c, iz, iy]
                                dst = y[n, m, z, r]
                                if sw == 1:
                                    for q in range(lo, hi):
                                        dst[q] += wv * src[q + x_off]
                                else:
                                    for q in range(lo, hi):
                                        dst[q] += wv * src[q * sw + x_off]


@numba.njit(cache=True)
def direct_grad_inputs(w, top, dx, stride, pad, dilation, groups):
    """Adjoint of :func:`direct_forward` wrt ``x``: accumulate into ``dx`` (zero it first)."""
    N, C, D, H, W = dx.shape
    M, _, kd, kh, kw = w.shape
    _, _, od, oh, ow = top.shape
    sd, sh, sw = stride
    pd, ph, pw = pad
    dd, dh, dw = dilation
    Mg = M // groups
    for n in range(N):
        for m in range(M):
            c = m // Mg
            for a in range(kd):
                for b in range(kh):
                    for e in range(kw):
                        wv = w[m, 0, a, b, e]
                        x_off = e * dw - pw
                        lo, hi = _row_span(ow, sw, x_off, W)
                        for z in range(od):
                            iz = z * sd - pd + a * dd
                            if iz < 0 or iz >= D:
                                continue
                            for r in range(oh):
                                iy = r * sh - ph + b * dh
                                if iy < 0 or iy >= H:
                                    continue
                                src = top[n, m, z, r]
                                dst = dx[n, c, iz, iy]
                                if sw == 1:
                                    for q in range(lo, hi):
                                        dst[q + x_off] += wv * src[q]
                                else:
                                    for q in range(lo, hi):
                                        dst[q * sw + x_off] += wv * src[q]


@numba.njit(cache=True)
def direct_grad_weights(x, top, dw_out, stride, pad, dilation, groups):
    """Gradient of :func:`direct_forward` wrt ``w``: ``dw_out`` (M, 1, kd, kh, kw) is overwritten."""
    N, C, D, H, W = x.shape
    M, _, kd, kh, kw = dw_out.shape
    _, _, od, oh, ow = top.shape
    sd, sh, sw = stride
    pd, ph, pw = pad
    dd, dh, dw = dilation
    Mg = M // groups
    for m in range(M):
        c = m // Mg
        for a in range(kd):
            for b in range(kh):
                for e in range(kw):
                    x_off = e * dw - pw
                    lo, hi = _row_span(ow, sw, x_off, W)
                    acc = 0.0
                    for n in range(N):
                        for z in range(od):
                            iz = z * sd - pd + a * dd
                            if iz < 0 or iz >= D:
                                continue
                            for r in range(oh):
                                iy = r * sh - ph + b * dh
                                if iy < 0 or iy >= H:
                                    continue
                                src = x[n, c, iz, iy]
                                g = top[n, m, z, r]
                                if sw == 1:
                                    for q in range(lo, hi):
                                        acc += g[q] * src[q + x_off]
                                else:
                                    for q in range(lo, hi):
                                        acc += g[q] * src[q * sw + x_off]
                    dw_out[m, 0, a, b, e] = acc
