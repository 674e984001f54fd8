"""Slow, obvious references for pooling and im2col, written from the definitions.

Loops over output positions and explicit window slices; nothing shared with the package
(no kernels, no output-size formulas: output sizes are found by enumerating windows).
"""

from __future__ import annotations

import itertools

import numpy as np


def window_starts(n, ws, stride, pad, ignore_border):
    """Starts (in input coordinates, may be negative) of the pooling windows of one axis.

    ignore_border=True: every window lying fully inside the padded input. False (no padding):
    windows start at 0, stride, 2 * stride, ... inside the input, and a new one starts only
    while the previous one did not reach the input's end.
    """
    starts = []
    o = 0
    while True:
        start = o * stride - pad
        if ignore_border:
            if start + ws > n + pad:
                break
        elif start >= n or (o > 0 and starts[-1] + ws >= n):
            break
        starts.append(start)
        o += 1
    return starts


def pool_output_spatial(x_shape, ws, stride, pad, ignore_border):
    """Number of windows per pooled axis (0 where no window fits), by enumerating them."""
    nd = len(ws)
    stride = ws if stride is None else stride
    return tuple(len(window_starts(n, w, s, p, ignore_border)) for n, w, s, p in zip(x_shape[-nd:], ws, stride, pad))


def pool_windows(x_shape, ws, stride, pad, ignore_border):
    """Yield (output index, per-axis (start, lo, hi)) over all windows of the last len(ws) axes."""
    nd = len(ws)
    spatial = x_shape[-nd:]
    stride = ws if stride is None else stride
    starts = [window_starts(n, w, s, p, ignore_border) for n, w, s, p in zip(spatial, ws, stride, pad)]
    for pos in itertools.product(*[range(len(s)) for s in starts]):
        axes = []
        for i, o in enumerate(pos):
            start = starts[i][o]
            axes.append((start, max(start, 0), min(start + ws[i], spatial[i])))
        yield pos, axes, [len(s) for s in starts]


def pool_ref(x, ws, ignore_border=True, stride=None, pad=None, mode="max"):
    """Legacy pooling of the last len(ws) axes of x."""
    nd = len(ws)
    pad = pad or (0,) * nd
    out = np.zeros(x.shape[:-nd] + pool_output_spatial(x.shape, ws, stride, pad, ignore_border), dtype=np.float64)
    for pos, axes, _ in pool_windows(x.shape, ws, stride, pad, ignore_border):
        window = x[(Ellipsis,) + tuple(slice(lo, hi) for _, lo, hi in axes)]
        flat = window.reshape(window.shape[:-nd] + (-1,))
        if mode == "max":
            value = flat.max(axis=-1)
        elif mode == "sum":
            value = flat.sum(axis=-1)
        elif mode == "average_exc_pad":
            value = flat.sum(axis=-1) / flat.shape[-1]
        else:  # average_inc_pad: the window's size in the padded input (cut at its end)
            n_spatial = x.shape[-nd:]
            size = np.prod([min(start + w, n + p) - start for (start, _, _), w, n, p in zip(axes, ws, n_spatial, pad)])
            value = flat.sum(axis=-1) / size
        out[(Ellipsis,) + pos] = value
    return out


def _first_max_mask(window, nd):
    """Boolean mask of the first maximum (np.argmax over the row-major flattened window: the
    lowest flat index; the first NaN if any) of each window of the last ``nd`` axes."""
    flat = window.reshape(window.shape[:-nd] + (-1,))
    first = np.argmax(flat, axis=-1)[..., None]
    mask = np.zeros(flat.shape, dtype=bool)
    np.put_along_axis(mask, first, True, axis=-1)
    return mask.reshape(window.shape)


def pool_grad_ref(x, gy, ws, ignore_border=True, stride=None, pad=None, mode="max", ties="first"):
    """Gradient of sum(pool_ref(x) * gy) wrt x. Max: ties="first" gives each window's gy to the
    window's first maximum (row-major within the window, input elements only); ties="all"
    (legacy) to every element equal to the maximum."""
    nd = len(ws)
    pad = pad or (0,) * nd
    gx = np.zeros(x.shape, dtype=np.float64)
    y = pool_ref(x, ws, ignore_border, stride, pad, mode)
    for pos, axes, _ in pool_windows(x.shape, ws, stride, pad, ignore_border):
        idx = (Ellipsis,) + tuple(slice(lo, hi) for _, lo, hi in axes)
        g = gy[(Ellipsis,) + pos].reshape(gy.shape[:-nd] + (1,) * nd)
        if mode == "max":
            m = y[(Ellipsis,) + pos].reshape(g.shape)
            winners = _first_max_mask(x[idx], nd) if ties == "first" else x[idx] == m
            gx[idx] += np.where(winners, g, 0.0)
        else:
            size = np.prod([hi - lo for _, lo, hi in axes])
            if mode == "average_inc_pad":
                size = np.prod(
                    [min(start + w, n + p) - start for (start, _, _), w, n, p in zip(axes, ws, x.shape[-nd:], pad)]
                )
            elif mode == "sum":
                size = 1
            gx[idx] += g / size
    return gx


def max_pool_grad_grad_ref(x, ggx, ws, ignore_border=True, stride=None, pad=None, ties="first"):
    """Per window: ggx at the window's first maximum (ties="first"), or the sum of ggx over the
    elements equal to the window's maximum (ties="all", legacy)."""
    nd = len(ws)
    pad = pad or (0,) * nd
    y = pool_ref(x, ws, ignore_border, stride, pad, "max")
    ggz = np.zeros(y.shape)
    for pos, axes, _ in pool_windows(x.shape, ws, stride, pad, ignore_border):
        idx = (Ellipsis,) + tuple(slice(lo, hi) for _, lo, hi in axes)
        m = y[(Ellipsis,) + pos].reshape(y.shape[:-nd] + (1,) * nd)
        winners = _first_max_mask(x[idx], nd) if ties == "first" else x[idx] == m
        ggz[(Ellipsis,) + pos] = np.where(winners, ggx[idx], 0.0).sum(axis=tuple(range(-nd, 0)))
    return ggz


def im2col_ref(x, kernel_shape, stride, pads, dilation):
    """cols[(c, *k), (*o, n)] = padded x[n, c, o * stride + k * dilation] (pads: (before, after) pairs)."""
    nd = len(kernel_shape)
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in pads])
    N, C = x.shape[:2]
    out = [(xp.shape[2 + i] - (kernel_shape[i] - 1) * dilation[i] - 1) // stride[i] + 1 for i in range(nd)]
    taps = list(itertools.product(*[range(k) for k in kernel_shape]))
    positions = list(itertools.product(*[range(o) for o in out]))
    cols = np.zeros((C * len(taps), len(positions) * N), dtype=x.dtype)
    for c in range(C):
        for t, tap in enumerate(taps):
            for p, pos in enumerate(positions):
                for n in range(N):
                    src = tuple(pos[i] * stride[i] + tap[i] * dilation[i] for i in range(nd))
                    cols[c * len(taps) + t, p * N + n] = xp[(n, c) + src]
    return cols
