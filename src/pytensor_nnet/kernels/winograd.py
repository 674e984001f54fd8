"""Winograd F(2x2, 3x3) correlation: 3x3 filters, stride 1, no dilation, 2.25x fewer multiplies.

Each output tile of 2x2 points is computed from the 4x4 input tile under it. With the 1-d
transforms (``d`` four inputs, ``g`` three filter taps, ``m`` four products)

    input   B^T d = (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
    filter  G g   = (g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2)
    output  A^T m = (m0 + m1 + m2, m1 - m2 - m3)

the 2-d tile is ``A^T [(G g G^T) * (B^T d B)] A``: the product of the transformed filter and
the transformed input tile is elementwise, so for each of the 16 transform positions ``p`` the
sum over input channels is one GEMM ``Mt[p] (M, tiles) = U[p] (M, Cg) @ V[p] (Cg, tiles)``
per group, run on blocks of about ``TILE_BLOCK`` tiles (the transformed inputs and products
of a block stay in cache).

Layout and conventions are those of ``kernels.corr``: images ``(N, C, D, H, W)``, filters
``(M, C // groups, 1, 3, 3)``; the depth axis is a batch axis here (kernel depth 1, no depth
padding), ``pad_lo`` / ``pad_hi`` are the resolved paddings (non-negative). The caller checks
shapes (see ``kernels.select.winograd_applies``).

The gradient wrt the inputs of a stride-1 correlation is a stride-1 correlation of the output
gradient with the flipped, channel-transposed filters (see :func:`winograd_grad_inputs`), so
it runs through the same code; the gradient wrt the filters runs the transforms' adjoints
(see :func:`winograd_grad_weights`).
"""

from __future__ import annotations

import numba
import numpy as np

from pytensor_nnet.kernels.blas_threads import limit_threads, restore_threads

#: Tiles per block of GEMMs. With 64 channels, 1024 tiles make each of the 16 GEMMs about
#: 8 MFLOP, enough for the BLAS to use both cores (``blas_threads.SINGLE_THREAD_MAX_FLOPS``):
#: measured on the ResNet 3x3 layer, 2 cores, quiet machine, forward 23 ms vs 29 ms with 256
#: tiles (cache-resident, but one BLAS thread) and 38 ms with 2048.
TILE_BLOCK = 1024


@numba.njit(cache=True)
def filter_transform(w):
    """``U[p, m, c] = (G g G^T)[p // 4, p % 4]`` for the 3x3 filter ``g = w[m, c, 0]``.

    ``w`` (M, Cg, 1, 3, 3); returns ``U`` (16, M, Cg). Computed in float64, then rounded.
    """
    M, Cg = w.shape[0], w.shape[1]
    U = np.empty((16, M, Cg), dtype=w.dtype)
    t = np.empty((4, 3))
    for m in range(M):
        for c in range(Cg):
            g = w[m, c, 0]
            for j in range(3):
                g0, g1, g2 = float(g[0, j]), float(g[1, j]), float(g[2, j])
                t[0, j] = g0
                t[1, j] = 0.5 * (g0 + g1 + g2)
                t[2, j] = 0.5 * (g0 - g1 + g2)
                t[3, j] = g2
            for i in range(4):
                g0, g1, g2 = t[i, 0], t[i, 1], t[i, 2]
                U[4 * i, m, c] = g0
                U[4 * i + 1, m, c] = 0.5 * (g0 + g1 + g2)
                U[4 * i + 2, m, c] = 0.5 * (g0 - g1 + g2)
                U[4 * i + 3, m, c] = g2
    return U


@numba.njit(cache=True)
def _input_transform(P, ty0, ty1, tw, V, rows):
    """``V[p, c, (ty - ty0) * tw + tx] = (B^T d B)[p // 4, p % 4]`` for the 4x4 tile
    ``d = P[c, 2ty:2ty + 4, 2tx:2tx + 4]`` of the padded planes ``P`` (C, Hp, Wp), ty in
    [ty0, ty1). ``rows`` (4, Wp) is scratch: the vertical transform of one tile row."""
    C, Hp, Wp = P.shape
    one, two, three = np.uint64(1), np.uint64(2), np.uint64(3)
    for c in range(C):
        for ty in range(ty0, ty1):
            r0, r1, r2, r3 = P[c, 2 * ty], P[c, 2 * ty + 1], P[c, 2 * ty + 2], P[c, 2 * ty + 3]
            a0, a1, a2, a3 = rows[0], rows[1], rows[2], rows[3]
            for j in range(np.uint64(Wp)):
                a0[j] = r0[j] - r2[j]
                a1[j] = r1[j] + r2[j]
                a2[j] = r2[j] - r1[j]
                a3[j] = r1[j] - r3[j]
            t0 = np.uint64((ty - ty0) * tw)
            for i in range(4):
                a = rows[i]
                v0, v1, v2, v3 = V[4 * i, c], V[4 * i + 1, c], V[4 * i + 2, c], V[4 * i + 3, c]
                for tx in range(np.uint64(tw)):
                    j = two * tx
                    e0, o0, e1, o1 = a[j], a[j + one], a[j + two], a[j + three]
                    v0[t0 + tx] = e0 - e1
                    v1[t0 + tx] = o0 + e1
                    v2[t0 + tx] = e1 - o0
                    v3[t0 + tx] = o0 - o1


@numba.njit(cache=True)
def _output_transform(Mt, m, ty0, ty1, tw, out_plane, sums):
    """Write the 2x2 output tiles ``A^T Mt[:, m, tile] A`` of tile rows [ty0, ty1) into
    ``out_plane`` (oh, ow), dropping the points past its edge. ``sums`` (8, >= tiles) is
    scratch: the vertical transform of the whole block (long loops that vectorise; a loop
    over more than a few arrays at once does not, LLVM cannot prove they do not overlap)."""
    oh, ow = out_plane.shape
    T = np.uint64((ty1 - ty0) * tw)
    one, two = np.uint64(1), np.uint64(2)
    for b in range(4):
        p0, p1, p2, p3 = Mt[b, m], Mt[4 + b, m], Mt[8 + b, m], Mt[12 + b, m]
        top, bottom = sums[b], sums[4 + b]
        for t in range(T):
            top[t] = p0[t] + p1[t] + p2[t]
        for t in range(T):
            bottom[t] = p1[t] - p2[t] - p3[t]
    n_even, n_odd = np.uint64(tw), np.uint64(ow // 2)
    for ty in range(ty0, ty1):
        t0 = (ty - ty0) * tw
        for r in range(2):
            y = 2 * ty + r
            if y >= oh:
                continue
            s0, s1, s2, s3 = sums[4 * r, t0:], sums[4 * r + 1, t0:], sums[4 * r + 2, t0:], sums[4 * r + 3, t0:]
            dst = out_plane[y]
            for tx in range(n_even):
                dst[two * tx] = s0[tx] + s1[tx] + s2[tx]
            for tx in range(n_odd):
                dst[two * tx + one] = s1[tx] - s2[tx] - s3[tx]


@numba.njit(cache=True)
def _copy_planes(x, n, z, P, ph, pw, h_in, w_in):
    """``P[c, ph + r, pw + i] = x[n, c, z, r, i]`` for the first ``h_in`` rows and ``w_in``
    columns of every channel (the padding around them stays as it is)."""
    for c in range(x.shape[1]):
        for r in range(h_in):
            src, dst = x[n, c, z, r], P[c, ph + r]
            for i in range(np.uint64(w_in)):
                dst[np.uint64(pw) + i] = src[i]


@numba.njit(cache=True)
def winograd_correlate(x, U, pad_lo, pad_hi, groups):
    """Correlate ``x`` (N, C, D, H, W) with the transformed filters ``U`` (16, M, C // groups)
    (see :func:`filter_transform`); stride 1, 3x3 window. Returns ``y`` (N, M, D, oh, ow)."""
    N, C, D, H, W = x.shape
    oh = H + pad_lo[1] + pad_hi[1] - 2
    ow = W + pad_lo[2] + pad_hi[2] - 2
    y = np.empty((N, U.shape[1], D, oh, ow), dtype=x.dtype)
    winograd_correlate_into(x, U, y, pad_lo, pad_hi, groups)
    return y


@numba.njit(cache=True)
def winograd_correlate_into(x, U, y, pad_lo, pad_hi, groups):
    """:func:`winograd_correlate` writing into a given ``y`` (N, M, D, oh, ow) (any content)."""
    N, C, D, H, W = x.shape
    M, Cg = U.shape[1], U.shape[2]
    Mg = M // groups
    ph, pw = pad_lo[1], pad_lo[2]
    oh = H + ph + pad_hi[1] - 2
    ow = W + pw + pad_hi[2] - 2
    if y.shape[0] != N or y.shape[1] != M or y.shape[2] != D or y.shape[3] != oh or y.shape[4] != ow:
        raise ValueError("winograd: the output array's shape does not match the correlation")
    th, tw = (oh + 1) // 2, (ow + 1) // 2
    Hp, Wp = 2 * th + 2, 2 * tw + 2
    # Input rows/columns the tiles read; the rest of the padded planes stays zero.
    h_in, w_in = min(H, Hp - ph), min(W, Wp - pw)
    P = np.zeros((C, Hp, Wp), dtype=x.dtype)
    rows = np.empty((4, Wp), dtype=x.dtype)
    block_rows = max(1, min(th, TILE_BLOCK // tw))
    sums = np.empty((8, block_rows * tw), dtype=x.dtype)
    v_store = np.empty(16 * C * block_rows * tw, dtype=x.dtype)
    m_store = np.empty(16 * M * block_rows * tw, dtype=x.dtype)
    threads = limit_threads(2 * Mg * Cg * block_rows * tw)
    for n in range(N):
        for z in range(D):
            _copy_planes(x, n, z, P, ph, pw, h_in, w_in)
            for ty0 in range(0, th, block_rows):
                ty1 = min(th, ty0 + block_rows)
                T = (ty1 - ty0) * tw
                V = v_store[: 16 * C * T].reshape((16, C, T))
                Mt = m_store[: 16 * M * T].reshape((16, M, T))
                _input_transform(P, ty0, ty1, tw, V, rows)
                for p in range(16):
                    for g in range(groups):
                        np.dot(U[p, g * Mg : (g + 1) * Mg], V[p, g * Cg : (g + 1) * Cg], Mt[p, g * Mg : (g + 1) * Mg])
                for m in range(M):
                    _output_transform(Mt, m, ty0, ty1, tw, y[n, m, z], sums)
    restore_threads(threads)


@numba.njit(cache=True)
def winograd_forward(x, w, pad_lo, pad_hi, groups):
    """Correlation of ``x`` (N, C, D, H, W) with ``w`` (M, C // groups, 1, 3, 3), stride 1."""
    return winograd_correlate(x, filter_transform(w), pad_lo, pad_hi, groups)


@numba.njit(cache=True)
def winograd_forward_into(x, w, y, pad_lo, pad_hi, groups):
    """:func:`winograd_forward` writing into a given ``y`` (any content)."""
    winograd_correlate_into(x, filter_transform(w), y, pad_lo, pad_hi, groups)


@numba.njit(cache=True)
def winograd_grad_inputs(w, top, pad_lo, pad_hi, groups):
    """Gradient wrt the images of :func:`winograd_forward`: ``dx`` (N, C, D, H, W) from ``top``
    (see :func:`_flipped_transposed`)."""
    U, lo, hi = _flipped_transposed(w, pad_lo, pad_hi, groups)
    return winograd_correlate(top, U, lo, hi, groups)


@numba.njit(cache=True)
def _flipped_transposed(w, pad_lo, pad_hi, groups):
    """The transformed filters and paddings of the input gradient as a correlation of ``top``.

    ``dx[c, i] = sum_{m, t} top[m, i + pad_lo - t] * w[m, c, t]`` (per spatial axis) is the
    correlation of ``top`` with ``w`` flipped and transposed to (C, M // groups, 1, 3, 3),
    padded by ``2 - pad_lo`` before and ``2 - pad_hi`` after (pads of at most 2).
    """
    M, Cg = w.shape[0], w.shape[1]
    Mg = M // groups
    wt = np.empty((Cg * groups, Mg, 1, 3, 3), dtype=w.dtype)
    for g in range(groups):
        for k in range(Mg):
            for c in range(Cg):
                for a in range(3):
                    for b in range(3):
                        wt[g * Cg + c, k, 0, a, b] = w[g * Mg + k, c, 0, 2 - a, 2 - b]
    lo = (0, 2 - pad_lo[1], 2 - pad_lo[2])
    hi = (0, 2 - pad_hi[1], 2 - pad_hi[2])
    return filter_transform(wt), lo, hi


@numba.njit(cache=True)
def winograd_grad_inputs_into(w, top, dx, pad_lo, pad_hi, groups):
    """:func:`winograd_grad_inputs` writing into a given ``dx`` (N, C, D, H, W) (any content)."""
    U, lo, hi = _flipped_transposed(w, pad_lo, pad_hi, groups)
    winograd_correlate_into(top, U, dx, lo, hi, groups)


#: Tiles per block of the filter gradient: its GEMMs reduce over the tiles, and every block adds
#: its ``(16, M, Cg)`` product into the total, so blocks are larger than ``TILE_BLOCK``.
GRAD_WEIGHTS_TILE_BLOCK = 1024


@numba.njit(cache=True)
def _top_transform(Q, m, ty0, ty1, tw, Gt, rows):
    """``Gt[p, m, (ty - ty0) * tw + tx] = (A g A^T)[p // 4, p % 4]`` for the 2x2 tile
    ``g = Q[m, 2ty:2ty + 2, 2tx:2tx + 2]`` of the zero-extended output gradient ``Q``
    (M, 2 th, 2 tw); ``A g`` is ``(g0, g0 + g1, g0 - g1, -g1)`` along each axis (the adjoint of
    the output transform). ``rows`` (4, 2 tw) is scratch."""
    one, two = np.uint64(1), np.uint64(2)
    for ty in range(ty0, ty1):
        r0, r1 = Q[m, 2 * ty], Q[m, 2 * ty + 1]
        a0, a1, a2, a3 = rows[0], rows[1], rows[2], rows[3]
        for j in range(np.uint64(2 * tw)):
            a0[j] = r0[j]
            a1[j] = r0[j] + r1[j]
            a2[j] = r0[j] - r1[j]
            a3[j] = -r1[j]
        t0 = np.uint64((ty - ty0) * tw)
        for i in range(4):
            a = rows[i]
            v0, v1, v2, v3 = Gt[4 * i, m], Gt[4 * i + 1, m], Gt[4 * i + 2, m], Gt[4 * i + 3, m]
            for tx in range(np.uint64(tw)):
                e, o = a[two * tx], a[two * tx + one]
                v0[t0 + tx] = e
                v1[t0 + tx] = e + o
                v2[t0 + tx] = e - o
                v3[t0 + tx] = -o


@numba.njit(cache=True)
def _filter_transform_adjoint(dU, dw):
    """``dw[m, c, 0] = G^T dU[:, m, c] G`` (``dU`` (16, M, Cg) as 4x4 tiles; ``dw``
    (M, Cg, 1, 3, 3)), the adjoint of :func:`filter_transform`. Computed in float64."""
    M, Cg = dw.shape[0], dw.shape[1]
    t = np.empty((3, 4))
    for m in range(M):
        for c in range(Cg):
            for j in range(4):
                u0, u1, u2, u3 = (
                    float(dU[j, m, c]),
                    float(dU[4 + j, m, c]),
                    float(dU[8 + j, m, c]),
                    float(dU[12 + j, m, c]),
                )
                t[0, j] = u0 + 0.5 * (u1 + u2)
                t[1, j] = 0.5 * (u1 - u2)
                t[2, j] = 0.5 * (u1 + u2) + u3
            for a in range(3):
                u0, u1, u2, u3 = t[a, 0], t[a, 1], t[a, 2], t[a, 3]
                dw[m, c, 0, a, 0] = u0 + 0.5 * (u1 + u2)
                dw[m, c, 0, a, 1] = 0.5 * (u1 - u2)
                dw[m, c, 0, a, 2] = 0.5 * (u1 + u2) + u3


@numba.njit(cache=True)
def winograd_grad_weights(x, top, pad_lo, pad_hi, groups):
    """Gradient wrt the filters of :func:`winograd_forward`: ``dw`` (M, C // groups, 1, 3, 3)
    from images ``x`` (N, C, D, H, W) and ``top`` (N, M, D, oh, ow).

    The forward pass is ``y_tile = A^T [U * V] A`` with ``U = G g G^T``, so
    ``dU[p] = sum_tiles (A dy_tile A^T)[p] V[p]^T``, one GEMM per position and group reducing
    over the tiles, and ``dw = G^T dU G``.
    """
    N, C, D, H, W = x.shape
    M = top.shape[1]
    oh, ow = top.shape[3], top.shape[4]
    Cg, Mg = C // groups, M // groups
    ph, pw = pad_lo[1], pad_lo[2]
    th, tw = (oh + 1) // 2, (ow + 1) // 2
    Hp, Wp = 2 * th + 2, 2 * tw + 2
    h_in, w_in = min(H, Hp - ph), min(W, Wp - pw)
    P = np.zeros((C, Hp, Wp), dtype=x.dtype)
    Q = np.zeros((M, 2 * th, 2 * tw), dtype=x.dtype)
    rows = np.empty((4, max(Wp, 2 * tw)), dtype=x.dtype)
    block_rows = max(1, min(th, GRAD_WEIGHTS_TILE_BLOCK // tw))
    v_store = np.empty(16 * C * block_rows * tw, dtype=x.dtype)
    g_store = np.empty(16 * M * block_rows * tw, dtype=x.dtype)
    dU = np.zeros((16, M, Cg), dtype=x.dtype)
    prod = np.empty((Mg, Cg), dtype=x.dtype)
    threads = limit_threads(2 * Mg * Cg * block_rows * tw)
    for n in range(N):
        for z in range(D):
            _copy_planes(x, n, z, P, ph, pw, h_in, w_in)
            for m in range(M):
                for r in range(oh):
                    src, dst = top[n, m, z, r], Q[m, r]
                    for i in range(np.uint64(ow)):
                        dst[i] = src[i]
            for ty0 in range(0, th, block_rows):
                ty1 = min(th, ty0 + block_rows)
                T = (ty1 - ty0) * tw
                V = v_store[: 16 * C * T].reshape((16, C, T))
                Gt = g_store[: 16 * M * T].reshape((16, M, T))
                _input_transform(P, ty0, ty1, tw, V, rows[:, :Wp])
                for m in range(M):
                    _top_transform(Q, m, ty0, ty1, tw, Gt, rows[:, : 2 * tw])
                for p in range(16):
                    for g in range(groups):
                        np.dot(Gt[p, g * Mg : (g + 1) * Mg], V[p, g * Cg : (g + 1) * Cg].T, prod)
                        acc = dU[p, g * Mg : (g + 1) * Mg]
                        for i in range(Mg):
                            for j in range(Cg):
                                acc[i, j] += prod[i, j]
    restore_threads(threads)
    dw = np.empty((M, Cg, 1, 3, 3), dtype=x.dtype)
    _filter_transform_adjoint(dU, dw)
    return dw
