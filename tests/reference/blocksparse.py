"""Slow references for the block-sparse Ops: the loops of their definitions, in numpy."""

import numpy as np


def gemv_ref(o, W, h, input_idx, output_idx):
    """The legacy docstring's loop: ``o[b, j] += dot(h[b, i], W[iIdx[b, i], oIdx[b, j]])``."""
    o = np.array(o, dtype=np.result_type(o, W, h))
    for b in range(h.shape[0]):
        for j in range(o.shape[1]):
            for i in range(h.shape[1]):
                o[b, j, :] += np.dot(h[b, i], W[input_idx[b, i], output_idx[b, j]])
    return o


def outer_ref(o, x, y, x_idx, y_idx, alpha=1.0):
    """``o[xIdx[b, i], yIdx[b, j]] += alpha * outer(x[b, i], y[b, j])`` for every b, i, j."""
    o = np.array(o, dtype=np.result_type(o, x, y))
    for b in range(x.shape[0]):
        for i in range(x.shape[1]):
            for j in range(y.shape[1]):
                o[x_idx[b, i], y_idx[b, j]] += alpha * np.outer(x[b, i], y[b, j])
    return o


def gemv_grads_ref(W, h, ii, oi, g):
    """Gradients of ``sum(gemv(o, W, h) * g)`` wrt ``W`` and ``h``, from the definition."""
    g_W = np.zeros_like(W)
    g_h = np.zeros_like(h)
    for b in range(h.shape[0]):
        for i in range(h.shape[1]):
            for j in range(g.shape[1]):
                g_W[ii[b, i], oi[b, j]] += np.outer(h[b, i], g[b, j])
                g_h[b, i] += W[ii[b, i], oi[b, j]] @ g[b, j]
    return g_W, g_h


def outer_grads_ref(x, y, xi, yi, alpha, g):
    """Gradients of ``sum(outer(o, x, y, alpha) * g)`` wrt ``x``, ``y`` and ``alpha``."""
    g_x, g_y, g_alpha = np.zeros_like(x), np.zeros_like(y), 0.0
    for b in range(x.shape[0]):
        for i in range(x.shape[1]):
            for j in range(y.shape[1]):
                block = g[xi[b, i], yi[b, j]]
                g_x[b, i] += alpha * block @ y[b, j]
                g_y[b, j] += alpha * x[b, i] @ block
                g_alpha += x[b, i] @ block @ y[b, j]
    return g_x, g_y, g_alpha


def sparse_block_dot_ref(W, h, b, i_idx, o_idx):
    """``sparse_block_dot``: the bias rows ``b[o_idx]`` plus the GEMV loop."""
    out = b[o_idx].copy()
    for n in range(h.shape[0]):
        for j in range(o_idx.shape[1]):
            for i in range(i_idx.shape[1]):
                out[n, j] += h[n, i] @ W[i_idx[n, i], o_idx[n, j]]
    return out
