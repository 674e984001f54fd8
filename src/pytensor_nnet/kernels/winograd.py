"""Winograd correlation of 3x3 windows, stride 1, no dilation: F(2x2, 3x3) and F(4x4, 3x3).

Each output tile of ``t x t`` points (``t`` = 2 or 4, the "tile") is computed from the
``(t + 2) x (t + 2)`` input tile under it. For F(2x2, 3x3), with the 1-d transforms (``d``
four inputs, ``g`` three filter taps, ``m`` four products)

    input   B^T d = (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
    filter  G g   = (g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2)
    output  A^T m = (m0 + m1 + m2, m1 - m2 - m3)

and for F(4x4, 3x3) (interpolation points 0, 1, -1, 2, -2 and infinity; six inputs, six
products)

    input   B^T d = (4 d0 - 5 d2 + d4, d3 + d4 - 4 (d1 + d2), 4 (d1 - d2) + d4 - d3,
                     2 (d3 - d1) + d4 - d2, 2 (d1 - d3) + d4 - d2, 4 d1 - 5 d3 + d5)
    filter  G g   = (g0 / 4, -(g0 + g1 + g2) / 6, -(g0 - g1 + g2) / 6,
                     g0 / 24 + g1 / 12 + g2 / 6, g0 / 24 - g1 / 12 + g2 / 6, g2)
    output  A^T m = (m0 + m1 + m2 + m3 + m4, m1 - m2 + 2 (m3 - m4),
                     m1 + m2 + 4 (m3 + m4), m1 - m2 + 8 (m3 - m4) + m5)

the 2-d tile is ``A^T [(G g G^T) * (B^T d B)] A``: the product of the transformed filter and
the transformed input tile is elementwise, so for each of the ``(t + 2)^2`` transform
positions ``p`` the sum over input channels is one GEMM
``Mt[p] (M, tiles) = U[p] (M, Cg) @ V[p] (Cg, tiles)`` per group, run on blocks of about
``TILE_BLOCK`` tiles (the transformed inputs and products of a block stay in cache).
F(2x2, 3x3) does 2.25x fewer multiplies than the direct sum, F(4x4, 3x3) 4x fewer, with
cheaper transforms per output point (each multiply and add of its transforms fused into one
instruction: Numba's ``contract``); its rounding error is larger (about 10x in float32,
still near 1e-5 of the output's scale for 64 channels) and its tiles waste more of a small
plane, so ``kernels.select.winograd_tile`` picks it for large enough planes.

Layout and conventions are those of ``kernels.corr``: images ``(N, C, D, H, W)``, filters
``(M, C // groups, 1, 3, 3)``; the depth axis is a batch axis here (kernel depth 1, no depth
padding), ``pad_lo`` / ``pad_hi`` are the resolved paddings (non-negative). The caller checks
shapes (see ``kernels.select.winograd_applies``).

The gradient wrt the inputs of a stride-1 correlation is a stride-1 correlation of the output
gradient with the flipped, channel-transposed filters (see :func:`winograd_grad_inputs`), so
it runs through the same code; the gradient wrt the filters runs the adjoints of the
F(2x2, 3x3) transforms (see :func:`winograd_grad_weights`).
"""

from __future__ import annotations

import numba
import numpy as np

from pytensor_nnet.kernels import workspace
from pytensor_nnet.kernels.blas_threads import limit_threads, restore_threads
from pytensor_nnet.kernels.jit import compiled_only

#: Tiles per block of GEMMs. With 64 channels, 1024 tiles make each of the 16 GEMMs about
#: 8 MFLOP, enough for the BLAS to use both cores (``blas_threads.SINGLE_THREAD_MAX_FLOPS``):
#: measured on the ResNet 3x3 layer, 2 cores, quiet machine, forward 23 ms vs 29 ms with 256
#: tiles (cache-resident, but one BLAS thread) and 38 ms with 2048.
TILE_BLOCK = 1024


#: Output tile sizes: F(2x2, 3x3) (16 transform positions) and F(4x4, 3x3) (36).
SMALL_TILE, LARGE_TILE = 2, 4


@compiled_only
def _filter_matrix(tile):
    """``G`` ((tile + 2) x 3, float64) of F(tile x tile, 3x3) (see the module doc)."""
    if tile == LARGE_TILE:
        g = np.array(
            (
                1 / 4, 0.0, 0.0,
                -1 / 6, -1 / 6, -1 / 6,
                -1 / 6, 1 / 6, -1 / 6,
                1 / 24, 1 / 12, 1 / 6,
                1 / 24, -1 / 12, 1 / 6,
                0.0, 0.0, 1.0,
            )
        )  # fmt: skip
        return g.reshape((6, 3))
    return np.array((1.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.5, -0.5, 0.5, 0.0, 0.0, 1.0)).reshape((4, 3))


@compiled_only
def filter_transform(w, tile, claim):
    """``U[p, m, c] = (G g G^T)[p // a, p % a]`` (``a = tile + 2``) for the 3x3 filter
    ``g = w[m, c, 0]``.

    ``w`` (M, Cg, 1, 3, 3); returns ``U`` (a * a, M, Cg), in the workspace ``claim`` (as its
    scratch). Computed in float64, then rounded;
    the loops run over all the filters at once (``(m, c)`` pairs innermost, as ``U`` is laid
    out), so they vectorise.
    """
    M, Cg = w.shape[0], w.shape[1]
    n = M * Cg
    G = _filter_matrix(tile)
    a = G.shape[0]
    taps = workspace.take(claim, 9 * n, np.float64).reshape((9, n))  # row 3 j + k: g[j, k] of every filter
    for m in range(M):
        for c in range(Cg):
            for j in range(3):
                for k in range(3):
                    taps[3 * j + k, m * Cg + c] = w[m, c, 0, j, k]
    half = workspace.take(claim, 3 * a * n, np.float64).reshape((3 * a, n))  # row 3 i + k: (G g)[i, k]
    for i in range(a):
        for k in range(3):
            g0, g1, g2, dst = G[i, 0], G[i, 1], G[i, 2], half[3 * i + k]
            t0, t1, t2 = taps[k], taps[3 + k], taps[6 + k]
            for q in range(n):
                dst[q] = g0 * t0[q] + g1 * t1[q] + g2 * t2[q]
    U = workspace.take(claim, a * a * n, w.dtype).reshape((a * a, M, Cg))
    flat = U.reshape((a * a, n))
    for i in range(a):
        h0, h1, h2 = half[3 * i], half[3 * i + 1], half[3 * i + 2]
        for k in range(a):
            g0, g1, g2, row = G[k, 0], G[k, 1], G[k, 2], flat[a * i + k]
            for q in range(n):
                row[q] = h0[q] * g0 + h1[q] * g1 + h2[q] * g2
    return U


@compiled_only
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


@compiled_only
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


@compiled_only
def _constants(dtype_of, values):
    """``values`` (a tuple of floats) as an array of the dtype of ``dtype_of``: scalars of that
    dtype for the transforms (a float64 literal would promote float32 arithmetic)."""
    return np.array(values).astype(dtype_of.dtype)


@compiled_only(fastmath={"contract"})
def _row_transform_large(P, c, ty0, ty1, tw, G, k2, k4, k5):
    """The horizontal half of F(4x4, 3x3)'s input transform, ``B^T`` on every row's 6-point
    windows: ``G[q, r % 4, (r // 4) * tw + tx] = (B^T d)[q]`` for ``d = P[c, y, 4tx:4tx + 6]``
    and the rows ``y = 4 ty0 + r`` the tile rows [ty0, ty1) read. Laid out by the row's place
    in its tile (``r % 4``), so that the vertical half runs over all the block's tiles in one
    loop. The windows' loads are four points apart (scalar code)."""
    one, two, three, four, five = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4), np.uint64(5)
    for r in range(4 * (ty1 - ty0) + 2):
        y, phase, t0 = 4 * ty0 + r, r % 4, np.uint64((r // 4) * tw)
        for tx in range(np.uint64(tw)):
            j, t = four * tx, t0 + tx
            d0, d1, d2 = P[c, y, j], P[c, y, j + one], P[c, y, j + two]
            d3, d4, d5 = P[c, y, j + three], P[c, y, j + four], P[c, y, j + five]
            G[0, phase, t] = k4 * d0 - k5 * d2 + d4
            G[1, phase, t] = d3 + d4 - k4 * (d1 + d2)
            G[2, phase, t] = k4 * (d1 - d2) + d4 - d3
            G[3, phase, t] = k2 * (d3 - d1) + d4 - d2
            G[4, phase, t] = k2 * (d1 - d3) + d4 - d2
            G[5, phase, t] = k4 * d1 - k5 * d3 + d5


@compiled_only(fastmath={"contract"})
def _input_transform_large(P, ty0, ty1, tw, V, G):
    """``V[p, c, (ty - ty0) * tw + tx] = (B^T d B)[p // 6, p % 6]`` of F(4x4, 3x3) for the 6x6
    tile ``d = P[c, 4ty:4ty + 6, 4tx:4tx + 6]`` of the padded planes ``P`` (C, Hp, Wp), ty in
    [ty0, ty1). ``G`` (6, 4, (ty1 - ty0 + 1) * tw) is scratch: the rows' horizontal transform
    (:func:`_row_transform_large`). The vertical half then runs one loop over the block's tiles
    per output row of ``V`` (long loops over two or three arrays vectorise; over the tiles of
    one tile row, or with six outputs at once, they do not)."""
    C = P.shape[0]
    k = _constants(P, (2.0, 4.0, 5.0))
    k2, k4, k5 = k[0], k[1], k[2]
    T, w = np.uint64((ty1 - ty0) * tw), np.uint64(tw)
    for c in range(C):
        _row_transform_large(P, c, ty0, ty1, tw, G, k2, k4, k5)
        for q in range(6):
            # The tile's rows 0-3 are g0-g3 at its own index, rows 4 and 5 those of the next
            # tile row: g0, g1 one tile row (tw) further.
            g0, g1, g2, g3 = G[q, 0], G[q, 1], G[q, 2], G[q, 3]
            v = V[q, c]
            for t in range(T):
                v[t] = k4 * g0[t] - k5 * g2[t] + g0[t + w]
            v = V[6 + q, c]
            for t in range(T):
                v[t] = g3[t] + g0[t + w] - k4 * (g1[t] + g2[t])
            v = V[12 + q, c]
            for t in range(T):
                v[t] = k4 * (g1[t] - g2[t]) + g0[t + w] - g3[t]
            v = V[18 + q, c]
            for t in range(T):
                v[t] = k2 * (g3[t] - g1[t]) + g0[t + w] - g2[t]
            v = V[24 + q, c]
            for t in range(T):
                v[t] = k2 * (g1[t] - g3[t]) + g0[t + w] - g2[t]
            v = V[30 + q, c]
            for t in range(T):
                v[t] = k4 * g1[t] - k5 * g3[t] + g1[t + w]


@compiled_only(fastmath={"contract"})
def _output_points_large(m0, m1, m2, m3, m4, m5, k2, k4, k8):
    """``A^T m`` of F(4x4, 3x3): the four points of six products (``k2``, ``k4``, ``k8``: 2, 4
    and 8 in their dtype). The vertical and the horizontal half of the output transform."""
    even, odd, even_far, odd_far = m1 + m2, m1 - m2, m3 + m4, m3 - m4
    return m0 + even + even_far, odd + k2 * odd_far, even + k4 * even_far, odd + k8 * odd_far + m5


@compiled_only(fastmath={"contract"})
def _row_points_large(sums, q, t, k2, k4, k8):
    """:func:`_output_points_large` of ``sums[q:q + 6, t]``: one output row of tile ``t``."""
    return _output_points_large(
        sums[q, t], sums[q + 1, t], sums[q + 2, t], sums[q + 3, t], sums[q + 4, t], sums[q + 5, t], k2, k4, k8
    )


@compiled_only(fastmath={"contract"})
def _output_transform_large(Mt, m, ty0, ty1, tw, out_plane, sums):
    """Write the 4x4 output tiles ``A^T Mt[:, m, tile] A`` of F(4x4, 3x3) of tile rows
    [ty0, ty1) into ``out_plane`` (oh, ow), dropping the points past its edge. ``sums``
    (24, >= tiles) is scratch: the vertical transform of the block (long loops that
    vectorise). The horizontal transform writes each output row's tiles straight into the
    plane (5-10% faster than through scratch rows and a loop of copies)."""
    oh, ow = out_plane.shape
    T = np.uint64((ty1 - ty0) * tw)
    k = _constants(Mt, (2.0, 4.0, 8.0))
    k2, k4, k8 = k[0], k[1], k[2]
    for b in range(6):
        for t in range(T):
            m0, m1, m2 = Mt[b, m, t], Mt[6 + b, m, t], Mt[12 + b, m, t]
            m3, m4, m5 = Mt[18 + b, m, t], Mt[24 + b, m, t], Mt[30 + b, m, t]
            sums[b, t], sums[6 + b, t], sums[12 + b, t], sums[18 + b, t] = _output_points_large(
                m0, m1, m2, m3, m4, m5, k2, k4, k8
            )
    full = np.uint64(ow // 4)
    one, two, three, four = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4)
    for ty in range(ty0, ty1):
        t0 = np.uint64((ty - ty0) * tw)
        for r in range(4):
            y = 4 * ty + r
            if y >= oh:
                continue
            q = 6 * r
            for tx in range(full):
                x = four * tx
                points = _row_points_large(sums, q, t0 + tx, k2, k4, k8)
                out_plane[y, x], out_plane[y, x + one], out_plane[y, x + two], out_plane[y, x + three] = points
            if ow > 4 * full:  # the last, partial tile
                points = _row_points_large(sums, q, t0 + full, k2, k4, k8)
                for e in range(ow - 4 * full):
                    out_plane[y, 4 * full + e] = points[e]


@compiled_only
def _copy_planes(x, n, z, P, ph, pw, h_in, w_in):
    """``P[c, ph + r, pw + i] = x[n, c, z, r, i]`` for the first ``h_in`` rows and ``w_in``
    columns of every channel (the padding around them stays as it is)."""
    for c in range(x.shape[1]):
        for r in range(h_in):
            src, dst = x[n, c, z, r], P[c, ph + r]
            for i in range(np.uint64(w_in)):
                dst[np.uint64(pw) + i] = src[i]


@compiled_only
def winograd_correlate(x, U, pad_lo, pad_hi, groups):
    """Correlate ``x`` (N, C, D, H, W) with the transformed filters ``U`` (16 or 36, M,
    C // groups) of :func:`filter_transform` (the count of transform positions gives the
    tile); stride 1, 3x3 window. Returns ``y`` (N, M, D, oh, ow)."""
    N, C, D, H, W = x.shape
    oh = H + pad_lo[1] + pad_hi[1] - 2
    ow = W + pad_lo[2] + pad_hi[2] - 2
    y = np.empty((N, U.shape[1], D, oh, ow), dtype=x.dtype)
    winograd_correlate_into(x, U, y, pad_lo, pad_hi, groups)
    return y


@compiled_only
def winograd_correlate_into(x, U, y, pad_lo, pad_hi, groups):
    """:func:`winograd_correlate` writing into a given ``y`` (N, M, D, oh, ow) (any content)."""
    N, C, D, H, W = x.shape
    positions, M, Cg = U.shape
    Mg = M // groups
    ph, pw = pad_lo[1], pad_lo[2]
    oh = H + ph + pad_hi[1] - 2
    ow = W + pw + pad_hi[2] - 2
    if y.shape[0] != N or y.shape[1] != M or y.shape[2] != D or y.shape[3] != oh or y.shape[4] != ow:
        raise ValueError("winograd: the output array's shape does not match the correlation")
    if positions != 16 and positions != 36:
        raise ValueError("winograd: the transformed filters must have 16 or 36 positions")
    large = positions == 36
    tile = LARGE_TILE if large else SMALL_TILE
    th, tw = (oh + tile - 1) // tile, (ow + tile - 1) // tile
    Hp, Wp = tile * th + 2, tile * tw + 2
    # Input rows/columns the tiles read; the rest of the padded planes stays zero.
    h_in, w_in = min(H, Hp - ph), min(W, Wp - pw)
    scratch = workspace.begin()
    P = workspace.take_zeros(scratch, C * Hp * Wp, x.dtype).reshape((C, Hp, Wp))
    block_rows = max(1, min(th, TILE_BLOCK // tw))
    # Scratch of the input transform: F(2x2, 3x3)'s rows, F(4x4, 3x3)'s row sums.
    row_width = 0 if large else Wp
    rows = workspace.take(scratch, (tile + 2) * row_width, x.dtype).reshape((tile + 2, row_width))
    sums_width = (block_rows + 1) * tw if large else 0
    row_sums = workspace.take(scratch, 24 * sums_width, x.dtype).reshape((6, 4, sums_width))
    sum_rows = 24 if large else 8
    sums = workspace.take(scratch, sum_rows * block_rows * tw, x.dtype).reshape((sum_rows, block_rows * tw))
    v_store = workspace.take(scratch, positions * C * block_rows * tw, x.dtype)
    m_store = workspace.take(scratch, positions * M * block_rows * tw, x.dtype)
    threads = limit_threads(2 * Mg * Cg * block_rows * tw)
    for n in range(N):
        for z in range(D):
            _copy_planes(x, n, z, P, ph, pw, h_in, w_in)
            for ty0 in range(0, th, block_rows):
                ty1 = min(th, ty0 + block_rows)
                T = (ty1 - ty0) * tw
                V = v_store[: positions * C * T].reshape((positions, C, T))
                Mt = m_store[: positions * M * T].reshape((positions, M, T))
                if large:
                    _input_transform_large(P, ty0, ty1, tw, V, row_sums)
                else:
                    _input_transform(P, ty0, ty1, tw, V, rows)
                for p in range(positions):
                    for g in range(groups):
                        np.dot(U[p, g * Mg : (g + 1) * Mg], V[p, g * Cg : (g + 1) * Cg], Mt[p, g * Mg : (g + 1) * Mg])
                for m in range(M):
                    if large:
                        _output_transform_large(Mt, m, ty0, ty1, tw, y[n, m, z], sums)
                    else:
                        _output_transform(Mt, m, ty0, ty1, tw, y[n, m, z], sums)
    restore_threads(threads)
    workspace.end(scratch)


@numba.njit(cache=True)
def winograd_forward(x, w, pad_lo, pad_hi, groups, tile=SMALL_TILE):
    """Correlation of ``x`` (N, C, D, H, W) with ``w`` (M, C // groups, 1, 3, 3), stride 1,
    on output tiles of ``tile`` x ``tile`` points (``SMALL_TILE`` or ``LARGE_TILE``)."""
    claim = workspace.begin()
    y = winograd_correlate(x, filter_transform(w, tile, claim), pad_lo, pad_hi, groups)
    workspace.end(claim)
    return y


@compiled_only
def winograd_forward_into(x, w, y, pad_lo, pad_hi, groups, tile=SMALL_TILE):
    """:func:`winograd_forward` writing into a given ``y`` (any content)."""
    claim = workspace.begin()
    winograd_correlate_into(x, filter_transform(w, tile, claim), y, pad_lo, pad_hi, groups)
    workspace.end(claim)


@numba.njit(cache=True)
def winograd_grad_inputs(w, top, pad_lo, pad_hi, groups, tile=SMALL_TILE):
    """Gradient wrt the images of :func:`winograd_forward`: ``dx`` (N, C, D, H, W) from ``top``
    (see :func:`_flipped_transposed`), on tiles of ``dx`` of ``tile`` x ``tile`` points."""
    claim = workspace.begin()
    U, lo, hi = _flipped_transposed(w, pad_lo, pad_hi, groups, tile, claim)
    dx = winograd_correlate(top, U, lo, hi, groups)
    workspace.end(claim)
    return dx


@compiled_only
def _flipped_transposed(w, pad_lo, pad_hi, groups, tile, claim):
    """The transformed filters and paddings of the input gradient as a correlation of ``top``.

    ``dx[c, i] = sum_{m, t} top[m, i + pad_lo - t] * w[m, c, t]`` (per spatial axis) is the
    correlation of ``top`` with ``w`` flipped and transposed to (C, M // groups, 1, 3, 3),
    padded by ``2 - pad_lo`` before and ``2 - pad_hi`` after (pads of at most 2).
    """
    M, Cg = w.shape[0], w.shape[1]
    Mg = M // groups
    wt = workspace.take(claim, Cg * groups * Mg * 9, w.dtype).reshape((Cg * groups, Mg, 1, 3, 3))
    for g in range(groups):
        for k in range(Mg):
            for c in range(Cg):
                for a in range(3):
                    for b in range(3):
                        wt[g * Cg + c, k, 0, a, b] = w[g * Mg + k, c, 0, 2 - a, 2 - b]
    zero = np.int64(0)  # a literal 0 would type the tuples apart from the forward pass's
    lo = (zero, 2 - pad_lo[1], 2 - pad_lo[2])
    hi = (zero, 2 - pad_hi[1], 2 - pad_hi[2])
    return filter_transform(wt, tile, claim), lo, hi


@compiled_only
def winograd_grad_inputs_into(w, top, dx, pad_lo, pad_hi, groups, tile=SMALL_TILE):
    """:func:`winograd_grad_inputs` writing into a given ``dx`` (N, C, D, H, W) (any content)."""
    claim = workspace.begin()
    U, lo, hi = _flipped_transposed(w, pad_lo, pad_hi, groups, tile, claim)
    winograd_correlate_into(top, U, dx, lo, hi, groups)
    workspace.end(claim)


#: Tiles per block of the filter gradient: its GEMMs reduce over the tiles, and every block adds
#: its ``(16, M, Cg)`` product into the total, so blocks are larger than ``TILE_BLOCK``.
GRAD_WEIGHTS_TILE_BLOCK = 1024


@compiled_only
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


@compiled_only
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
    scratch = workspace.begin()
    P = workspace.take_zeros(scratch, C * Hp * Wp, x.dtype).reshape((C, Hp, Wp))
    Q = workspace.take_zeros(scratch, M * 2 * th * 2 * tw, x.dtype).reshape((M, 2 * th, 2 * tw))
    # Scratch of the two transforms: C-contiguous, as in the forward pass (one compiled signature).
    rows = workspace.take(scratch, 4 * Wp, x.dtype).reshape((4, Wp))
    top_rows = workspace.take(scratch, 4 * 2 * tw, x.dtype).reshape((4, 2 * tw))
    block_rows = max(1, min(th, GRAD_WEIGHTS_TILE_BLOCK // tw))
    v_store = workspace.take(scratch, 16 * C * block_rows * tw, x.dtype)
    g_store = workspace.take(scratch, 16 * M * block_rows * tw, x.dtype)
    dU = workspace.take_zeros(scratch, 16 * M * Cg, x.dtype).reshape((16, M, Cg))
    prod = workspace.take(scratch, Mg * Cg, x.dtype).reshape((Mg, Cg))
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
                _input_transform(P, ty0, ty1, tw, V, rows)
                for m in range(M):
                    _top_transform(Q, m, ty0, ty1, tw, Gt, top_rows)
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
    workspace.end(scratch)
    return dw
