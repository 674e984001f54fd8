"""Direct (no im2col, no GEMM) correlation for filters with one input channel per group.

That is depthwise convolution (``groups == channels``, any channel multiplier) and
single-channel inputs. Each output channel ``m`` reads only input channel
``c = m // (M // groups)``, so the GEMM of the im2col path would degenerate into ``groups``
tiny GEMVs over a ``taps``-times inflated buffer. Here each input plane is copied once into a
zero-padded buffer ``(Dp, Hp, Wp)`` (``Dp = D + pad_lo + pad_hi`` etc.), so no loop needs a
bounds test, and every filter tap is one multiply-add over a contiguous run of memory:

- stride 1 on every axis: output position ``(z, r, i)`` reads padded index
  ``(z + a*dd, r + b*dh, i + e*dw)``, i.e. flat index ``q + offset(tap)`` with
  ``q = (z * Hp + r) * Wp + i``. So the whole output volume is computed on the padded grid
  ``q in [0, L)``, ``L = ((od - 1) * Hp + oh - 1) * Wp + ow``, by one unit-stride axpy of
  length ``L`` per tap (the few grid points outside the output are computed and dropped; the
  forward pass does four filters per pass), and the gradients are the adjoint axpys / dot
  products on the same grid;
- otherwise one axpy of length ``ow`` (input step ``sw``) per output row and tap.

The forward pass of the commonest depthwise layer, a filter three columns wide (at most three
rows, one depth tap) whose output keeps the input's width, skips the padded copy: it runs on
the input's own rows and writes the output in place (:func:`direct_rows_forward`, the
algorithm ``"direct_rows"`` of ``kernels.select``: 0.58 ms against 1.05 ms on one thread for
16 x 128 planes of 28 x 28).

Same 5-d layout, 3-d geometry and padding conventions as ``kernels.corr`` (``pad`` is the
resolved *before* padding, ``out`` the output size); the callers in ``kernels.corr`` check
shapes before calling. The loops are serial (see ``kernels.im2col``).
"""

from __future__ import annotations

import numba
import numpy as np

from pytensor_nnet.kernels.jit import compiled_only

#: Grid points per block of the stride-1 loops: a block of the output (or gradient) plus the
#: input it reads stay in the L1 cache while all taps pass over it.
BLOCK = 1024
#: Single-channel images at stride 1 are stacked: the padded planes of a chunk of images lie
#: one after the other, and one grid spans them all (:func:`_stackable`). A chunk holds
#: at most this many grid points (one plane if it is larger), so that its planes and grids stay
#: in the L1 cache: with 8192, LeNet's 28 x 28 images ran 12% slower than one at a time.
STACK_POINTS = 1024


@compiled_only
def _padded_dims(in_size, out, ksize, stride, pad, dilation):
    """Size ``(Dp, Hp, Wp)`` of the zero-padded plane: the input plus the before padding,
    extended to cover every position a window reads (and never less than the input)."""
    dims = [0, 0, 0]
    for i in range(3):
        reach = (out[i] - 1) * stride[i] + (ksize[i] - 1) * dilation[i] + 1
        dims[i] = max(pad[i] + in_size[i], reach)
    return dims[0], dims[1], dims[2]


@compiled_only
def _tap_offsets(ksize, dilation, Hp, Wp):
    """Flat offset in the padded plane of each tap ``(a, b, e)``, in C order."""
    kd, kh, kw = ksize
    offs = np.empty(kd * kh * kw, dtype=np.int64)
    t = 0
    for a in range(kd):
        for b in range(kh):
            for e in range(kw):
                offs[t] = (a * dilation[0] * Hp + b * dilation[1]) * Wp + e * dilation[2]
                t += 1
    return offs


@numba.njit(cache=True, inline="always")
def _copy_rows(src, s0, s_row, dst, d0, d_row, rows, n):
    """``dst[d0 + r * d_row + i] = src[s0 + r * s_row + i]`` for ``r < rows``, ``i < n``, on
    flat arrays, with unsigned index arithmetic: for rows of tens of elements, taking a view
    per row (Numba's slicing) costs more than the copy itself (measured: half of a depthwise
    forward pass went to row views)."""
    n = np.uint64(n)
    for r in range(np.uint64(rows)):
        sb = np.uint64(s0) + r * np.uint64(s_row)
        db = np.uint64(d0) + r * np.uint64(d_row)
        for i in range(n):
            dst[db + i] = src[sb + i]


@compiled_only
def _copy_in(src, pad, dst, d0, Hp, Wp):
    """Write plane ``src`` (D, H, W) into the interior of the padded plane (Dp, Hp, Wp) that
    starts at ``dst[d0]`` (``dst`` flat)."""
    D, H, W = src.shape
    pd, ph, pw = pad
    flat_src = src.reshape(src.size)
    for z in range(D):
        _copy_rows(flat_src, z * H * W, W, dst, d0 + ((pd + z) * Hp + ph) * Wp + pw, Wp, H, W)


@compiled_only
def _copy_out(src, pad, Hp, Wp, dst):
    """Read the interior of the padded plane ``src`` (flat, Dp x Hp x Wp) into ``dst`` (D, H, W)
    (``_copy_in``'s adjoint)."""
    D, H, W = dst.shape
    pd, ph, pw = pad
    flat_dst = dst.reshape(dst.size)
    for z in range(D):
        _copy_rows(src, ((pd + z) * Hp + ph) * Wp + pw, Wp, flat_dst, z * H * W, W, H, W)


@compiled_only
def _grid_to_out(grid, g0, Hp, Wp, out_plane):
    """Output points of the stride-1 grid (flat, see the module doc) that starts at
    ``grid[g0]`` into ``out_plane`` (od, oh, ow)."""
    od, oh, ow = out_plane.shape
    flat_out = out_plane.reshape(out_plane.size)
    for z in range(od):
        _copy_rows(grid, g0 + z * Hp * Wp, Wp, flat_out, z * oh * ow, ow, oh, ow)


@compiled_only
def _out_to_grid(out_plane, Hp, Wp, grid, g0):
    """Inverse of :func:`_grid_to_out`; the grid points outside the output are left as they are."""
    od, oh, ow = out_plane.shape
    flat_out = out_plane.reshape(out_plane.size)
    for z in range(od):
        _copy_rows(flat_out, z * oh * ow, ow, grid, g0 + z * Hp * Wp, Wp, oh, ow)


@compiled_only
def _unit_stride(stride):
    return stride[0] == 1 and stride[1] == 1 and stride[2] == 1


# The gathers let LLVM fuse each multiply and add into one instruction (``contract``): a
# tenth to a fifth faster, and the sums round once per tap instead of twice.
@compiled_only(fastmath={"contract"})
def _grid_gather(src, offs, weights, dst, L, accumulate):
    """``dst[q] = sum_t weights[t] * src[q + offs[t]]`` for ``q < L`` (``+=`` if ``accumulate``).

    Taps go four at a time, so each block of ``dst`` is loaded and stored once per four taps
    (the products of a chunk are summed in registers). Indices are unsigned (all >= 0): no
    negative-index wraparound, so LLVM vectorises.
    """
    T = offs.shape[0]
    for block in range(0, L, BLOCK):
        q0 = np.uint64(block)
        q1 = q0 + np.uint64(min(BLOCK, L - block))
        t = 0
        while t < T:
            if T - t >= 4:
                w0, w1, w2, w3 = weights[t], weights[t + 1], weights[t + 2], weights[t + 3]
                o0, o1 = np.uint64(offs[t]), np.uint64(offs[t + 1])
                o2, o3 = np.uint64(offs[t + 2]), np.uint64(offs[t + 3])
                if t == 0 and not accumulate:
                    for q in range(q0, q1):
                        dst[q] = w0 * src[q + o0] + w1 * src[q + o1] + w2 * src[q + o2] + w3 * src[q + o3]
                else:
                    for q in range(q0, q1):
                        dst[q] += w0 * src[q + o0] + w1 * src[q + o1] + w2 * src[q + o2] + w3 * src[q + o3]
                t += 4
            else:
                w0, o0 = weights[t], np.uint64(offs[t])
                if t == 0 and not accumulate:
                    for q in range(q0, q1):
                        dst[q] = w0 * src[q + o0]
                else:
                    for q in range(q0, q1):
                        dst[q] += w0 * src[q + o0]
                t += 1


@compiled_only(fastmath={"contract"})
def _grid_gather_four(src, offs, taps, m0, grids, L):
    """:func:`_grid_gather` (``=``) for the four filters ``taps[m0:m0 + 4]`` at once, into
    the rows of ``grids`` (4, >= L): each input point loaded serves four filters, and each
    grid point is loaded and stored once per four taps (measured 1.5x faster than
    :func:`_grid_gather_pair` for LeNet's 20 5x5 filters)."""
    T = offs.shape[0]
    g0, g1, g2, g3 = grids[0], grids[1], grids[2], grids[3]
    w0, w1, w2, w3 = taps[m0], taps[m0 + 1], taps[m0 + 2], taps[m0 + 3]
    for block in range(0, L, BLOCK):
        q0 = np.uint64(block)
        q1 = q0 + np.uint64(min(BLOCK, L - block))
        t = 0
        while t < T:
            if T - t >= 4:
                o0, o1 = np.uint64(offs[t]), np.uint64(offs[t + 1])
                o2, o3 = np.uint64(offs[t + 2]), np.uint64(offs[t + 3])
                a0, a1, a2, a3 = w0[t], w0[t + 1], w0[t + 2], w0[t + 3]
                b0, b1, b2, b3 = w1[t], w1[t + 1], w1[t + 2], w1[t + 3]
                c0, c1, c2, c3 = w2[t], w2[t + 1], w2[t + 2], w2[t + 3]
                d0, d1, d2, d3 = w3[t], w3[t + 1], w3[t + 2], w3[t + 3]
                if t == 0:
                    for q in range(q0, q1):
                        s0, s1, s2, s3 = src[q + o0], src[q + o1], src[q + o2], src[q + o3]
                        g0[q] = a0 * s0 + a1 * s1 + a2 * s2 + a3 * s3
                        g1[q] = b0 * s0 + b1 * s1 + b2 * s2 + b3 * s3
                        g2[q] = c0 * s0 + c1 * s1 + c2 * s2 + c3 * s3
                        g3[q] = d0 * s0 + d1 * s1 + d2 * s2 + d3 * s3
                else:
                    for q in range(q0, q1):
                        s0, s1, s2, s3 = src[q + o0], src[q + o1], src[q + o2], src[q + o3]
                        g0[q] += a0 * s0 + a1 * s1 + a2 * s2 + a3 * s3
                        g1[q] += b0 * s0 + b1 * s1 + b2 * s2 + b3 * s3
                        g2[q] += c0 * s0 + c1 * s1 + c2 * s2 + c3 * s3
                        g3[q] += d0 * s0 + d1 * s1 + d2 * s2 + d3 * s3
                t += 4
            else:
                o0, a0, b0, c0, d0 = np.uint64(offs[t]), w0[t], w1[t], w2[t], w3[t]
                if t == 0:
                    for q in range(q0, q1):
                        s0 = src[q + o0]
                        g0[q], g1[q], g2[q], g3[q] = a0 * s0, b0 * s0, c0 * s0, d0 * s0
                else:
                    for q in range(q0, q1):
                        s0 = src[q + o0]
                        g0[q] += a0 * s0
                        g1[q] += b0 * s0
                        g2[q] += c0 * s0
                        g3[q] += d0 * s0
                t += 1


@compiled_only(fastmath={"contract"})
def _grid_gather_pair(src, offs, weights_a, weights_b, dst_a, dst_b, L):
    """:func:`_grid_gather` (``=``) for two filters at once: each input point loaded serves
    both (measured 10-15% faster than two passes for LeNet's 20 5x5 filters)."""
    T = offs.shape[0]
    for block in range(0, L, BLOCK):
        q0 = np.uint64(block)
        q1 = q0 + np.uint64(min(BLOCK, L - block))
        t = 0
        while t < T:
            if T - t >= 4:
                a0, a1, a2, a3 = weights_a[t], weights_a[t + 1], weights_a[t + 2], weights_a[t + 3]
                b0, b1, b2, b3 = weights_b[t], weights_b[t + 1], weights_b[t + 2], weights_b[t + 3]
                o0, o1 = np.uint64(offs[t]), np.uint64(offs[t + 1])
                o2, o3 = np.uint64(offs[t + 2]), np.uint64(offs[t + 3])
                if t == 0:
                    for q in range(q0, q1):
                        s0, s1, s2, s3 = src[q + o0], src[q + o1], src[q + o2], src[q + o3]
                        dst_a[q] = a0 * s0 + a1 * s1 + a2 * s2 + a3 * s3
                        dst_b[q] = b0 * s0 + b1 * s1 + b2 * s2 + b3 * s3
                else:
                    for q in range(q0, q1):
                        s0, s1, s2, s3 = src[q + o0], src[q + o1], src[q + o2], src[q + o3]
                        dst_a[q] += a0 * s0 + a1 * s1 + a2 * s2 + a3 * s3
                        dst_b[q] += b0 * s0 + b1 * s1 + b2 * s2 + b3 * s3
                t += 4
            else:
                a0, b0, o0 = weights_a[t], weights_b[t], np.uint64(offs[t])
                if t == 0:
                    for q in range(q0, q1):
                        s0 = src[q + o0]
                        dst_a[q] = a0 * s0
                        dst_b[q] = b0 * s0
                else:
                    for q in range(q0, q1):
                        s0 = src[q + o0]
                        dst_a[q] += a0 * s0
                        dst_b[q] += b0 * s0
                t += 1


@compiled_only(fastmath={"contract"})
def _rows_axpy(src, offs, weights, dst, stride, Hp, Wp, adjoint):
    """Strided form of :func:`_grid_gather` (``+=``), or its adjoint: ``dst`` (od, oh, ow) row
    by row, ``src`` the flat padded plane; output ``(z, r, i)`` reads
    ``src[(z * sd * Hp + r * sh) * Wp + i * sw + offs[t]]``."""
    od, oh, ow = dst.shape
    sd, sh, sw = stride
    step = np.uint64(sw)
    for z in range(od):
        for r in range(oh):
            row = dst[z, r]
            base = (z * sd * Hp + r * sh) * Wp
            for t in range(offs.shape[0]):
                wv = weights[t]
                s0 = np.uint64(base + offs[t])
                if adjoint:
                    for i in range(np.uint64(ow)):
                        src[s0 + step * i] += wv * row[i]
                else:
                    for i in range(np.uint64(ow)):
                        row[i] += wv * src[s0 + step * i]


@compiled_only
def _tap_range(o, k, d, p, size):
    """The taps ``[lo, hi)`` of ``range(k)`` whose input ``o + tap * d - p`` lies in
    ``[0, size)`` (output position ``o``, dilation ``d``, before padding ``p``)."""
    lo = 0
    while lo < k and o + lo * d - p < 0:
        lo += 1
    hi = k
    while hi > lo and o + (hi - 1) * d - p >= size:
        hi -= 1
    return lo, hi


@compiled_only(fastmath={"contract"})
def _three_columns(xf, rows, count, wf, w0, left, mid, right, s0, m0, n):
    """``left[s0 + j]``, ``mid[m0 + j]``, ``right[s0 + j]`` ``= sum_k wf[w0 + 3 * k + 0/1/2] *
    xf[rows[k] + j]`` for ``j < n``, ``k < count`` (at most three row taps): the filter's three
    column taps, each summed over the row taps, read at the output's own column. One pass
    reads each input point once."""
    s0, m0, n = np.uint64(s0), np.uint64(m0), np.uint64(n)
    if count == 0:
        for j in range(n):
            left[s0 + j] = mid[m0 + j] = right[s0 + j] = 0
        return
    a0, b0, c0, o0 = wf[w0], wf[w0 + 1], wf[w0 + 2], np.uint64(rows[0])
    if count == 1:
        for j in range(n):
            x0 = xf[o0 + j]
            left[s0 + j], mid[m0 + j], right[s0 + j] = a0 * x0, b0 * x0, c0 * x0
        return
    a1, b1, c1, o1 = wf[w0 + 3], wf[w0 + 4], wf[w0 + 5], np.uint64(rows[1])
    if count == 2:
        for j in range(n):
            x0, x1 = xf[o0 + j], xf[o1 + j]
            left[s0 + j] = a0 * x0 + a1 * x1
            mid[m0 + j] = b0 * x0 + b1 * x1
            right[s0 + j] = c0 * x0 + c1 * x1
        return
    a2, b2, c2, o2 = wf[w0 + 6], wf[w0 + 7], wf[w0 + 8], np.uint64(rows[2])
    for j in range(n):
        x0, x1, x2 = xf[o0 + j], xf[o1 + j], xf[o2 + j]
        left[s0 + j] = a0 * x0 + a1 * x1 + a2 * x2
        mid[m0 + j] = b0 * x0 + b1 * x1 + b2 * x2
        right[s0 + j] = c0 * x0 + c1 * x1 + c2 * x2


@compiled_only
def _add_shifted(y, y0, left, right, rows, W, d):
    """``y[y0 + q] += left[q] + right[q + 2 * d]`` for the ``rows * W`` points ``q`` of a
    depth slice: with ``left`` and ``right`` holding row ``r`` from ``d + r * W``, the sums
    shifted by ``-d`` and ``+d``. First zeroes what a shifted read leaves its row for: the last
    ``d`` columns of each row of ``left`` and the first ``d`` of ``right``."""
    W, d, y0 = np.uint64(W), np.uint64(d), np.uint64(y0)
    for r in range(np.uint64(rows)):
        lo, ro = (r + np.uint64(1)) * W, d + r * W
        for i in range(d):
            left[lo + i] = 0
            right[ro + i] = 0
    far = d + d
    for q in range(np.uint64(rows) * W):
        y[y0 + q] += left[q] + right[far + q]


@compiled_only
def direct_rows_forward(x, w, y, pad, dilation, groups):
    """:func:`direct_forward` for a filter three columns wide (at most three rows, one depth
    tap) at stride 1 whose output has the input's width (``pad[2] = dilation[2] < W``: see
    ``select.direct_rows_applies``), on the input's own rows: no padded copy, no bounds test
    per point. Shapes as in :func:`direct_forward`.

    In a depth slice, with ``q = r * W + i`` the flat index of output ``(r, i)`` and
    ``d = dw``: ``y[q] = mid[q] + left[q - d] + right[q + d]``, where ``left/mid/right[q]``
    sum the column tap 0/1/2 over the row taps whose input row is in bounds, all read at
    column ``i`` itself (:func:`_three_columns`, one flat pass per run of rows with the same
    valid row taps). A shifted read that leaves its row lands on the last ``d`` columns of
    ``left``'s previous row or the first ``d`` of ``right``'s next row, which no output reads
    otherwise: those are zeroed, and ``d`` zeros pad both ends, so every point gets exactly the
    zero-padded sum.
    """
    N, C, D, H, W = x.shape
    M, kh = w.shape[0], w.shape[3]
    od, oh = y.shape[2], y.shape[3]
    pd, ph = pad[0], pad[1]
    dh, d = dilation[1], dilation[2]
    Mg = M // groups
    P = oh * W
    left = np.zeros(P + 2 * d, dtype=x.dtype)
    right = np.zeros(P + 2 * d, dtype=x.dtype)
    runs = np.zeros(4 * oh, dtype=np.int64)  # runs of rows: first, end, first and end row tap
    n_runs = 0
    for r in range(oh):
        lo, hi = _tap_range(r, kh, dh, ph, H)
        at = 4 * n_runs
        if n_runs > 0 and runs[at - 2] == lo and runs[at - 1] == hi:  # the last run goes on
            runs[at - 3] = r + 1
            continue
        runs[at], runs[at + 1], runs[at + 2], runs[at + 3] = r, r + 1, lo, hi
        n_runs += 1
    rows = np.empty(kh, dtype=np.int64)
    xf, yf, wf = x.reshape(x.size), y.reshape(y.size), w.reshape(w.size)
    for n in range(N):
        for m in range(M):
            c = m // Mg
            for z in range(od):
                y0 = ((n * M + m) * od + z) * P
                zi = z - pd
                if zi < 0 or zi >= D:
                    for j in range(y0, y0 + P):
                        yf[j] = 0
                    continue
                x0 = ((n * C + c) * D + zi) * H * W
                for k in range(n_runs):
                    r0, r1, b_lo, b_hi = runs[4 * k], runs[4 * k + 1], runs[4 * k + 2], runs[4 * k + 3]
                    for b in range(b_lo, b_hi):
                        rows[b - b_lo] = x0 + (r0 + b * dh - ph) * W
                    start, length = r0 * W, (r1 - r0) * W
                    w0 = (m * kh + b_lo) * 3
                    _three_columns(xf, rows, b_hi - b_lo, wf, w0, left, yf, right, d + start, y0 + start, length)
                _add_shifted(yf, y0, left, right, oh, W, d)


@compiled_only
def _stackable(N, C, stride):
    """How many images may share one grid: all ``N`` where the images have one channel and the
    stride is 1, else 1.

    The stride-1 grid of a plane reads every point of the plane after it no further than the
    plane's own taps reach, so ``k`` padded planes laid one after the other are one grid of
    ``(k - 1) * plane + L`` points: one pass of the taps over a chunk of small images instead
    of one per image (100 images of 8 x 8, four 3 x 3 filters: forward 38.6 -> 32 us, filter
    gradient 46.6 -> 35.5 us on one core). :func:`_buffers` sizes the chunk."""
    return N if C == 1 and _unit_stride(stride) else 1


@compiled_only
def _buffers(in_size, out, ksize, stride, pad, dilation, images, dtype):
    """The padded planes of a chunk of at most ``images`` images (:func:`_stackable`; about
    :data:`STACK_POINTS` points, at least one plane), zeroed, one after the other, flat; the tap
    offsets, the stride-1 grid length of one plane, Hp, Wp, the plane's size and the chunk's
    number of images."""
    Dp, Hp, Wp = _padded_dims(in_size, out, ksize, stride, pad, dilation)
    P = Dp * Hp * Wp
    chunk = max(1, min(images, STACK_POINTS // P))
    flat = np.zeros(chunk * P, dtype=dtype)
    od, oh, ow = out
    L = ((od - 1) * Hp + oh - 1) * Wp + ow
    return flat, _tap_offsets(ksize, dilation, Hp, Wp), L, Hp, Wp, P, chunk


@compiled_only
def direct_forward(x, w, y, stride, pad, dilation, groups):
    """``y[n, m] = sum_taps w[m, 0, tap] * x[n, m // (M // groups), window(tap)]``.

    ``x`` (N, C, D, H, W), ``w`` (M, 1, kd, kh, kw), ``y`` (N, M, od, oh, ow) is overwritten.
    """
    N, C, D, H, W = x.shape
    M = w.shape[0]
    ksize = (w.shape[2], w.shape[3], w.shape[4])
    out = (y.shape[2], y.shape[3], y.shape[4])
    Mg = M // groups
    images = _stackable(N, C, stride)
    flat, offs, L, Hp, Wp, P, chunk = _buffers((D, H, W), out, ksize, stride, pad, dilation, images, x.dtype)
    taps = w.reshape((M, offs.shape[0]))
    unit = _unit_stride(stride)
    grids = np.empty((4, chunk * P if unit else 0), dtype=x.dtype)
    for n0 in range(0, N, chunk):
        k = min(chunk, N - n0)
        Lk = (k - 1) * P + L
        for c in range(C):
            for j in range(k):
                _copy_in(x[n0 + j, c], pad, flat, j * P, Hp, Wp)
            m_first, m_end = c * Mg, (c + 1) * Mg
            if not unit:  # one image per chunk
                for m in range(m_first, m_end):
                    y[n0, m] = 0
                    _rows_axpy(flat, offs, taps[m], y[n0, m], stride, Hp, Wp, False)
                continue
            m = m_first
            while m < m_end:  # four filters per pass over the input, then two, then one
                count = min(4, m_end - m)
                if count == 4:
                    _grid_gather_four(flat, offs, taps, m, grids, Lk)
                elif count >= 2:
                    count = 2
                    _grid_gather_pair(flat, offs, taps[m], taps[m + 1], grids[0], grids[1], Lk)
                else:
                    _grid_gather(flat, offs, taps[m], grids[0], Lk, False)
                for i in range(count):
                    for j in range(k):
                        _grid_to_out(grids[i], j * P, Hp, Wp, y[n0 + j, m + i])
                m += count


@compiled_only
def direct_grad_inputs(w, top, dx, stride, pad, dilation, groups):
    """Adjoint of :func:`direct_forward` wrt ``x``: ``dx`` (N, C, D, H, W) is overwritten.

    With stride 1 it is a gather too: the padded ``dx`` at flat index ``p`` is
    ``sum_t w[t] * grid[p - offs[t]]``, ``grid`` the output gradient on the stride-1 grid
    (zero elsewhere); ``ext`` holds that grid shifted by the largest offset, so the reads are
    ``ext[p + (offs[-1] - offs[t])]``, all in bounds.
    """
    N, C, D, H, W = dx.shape
    M = w.shape[0]
    ksize = (w.shape[2], w.shape[3], w.shape[4])
    out = (top.shape[2], top.shape[3], top.shape[4])
    Mg = M // groups
    flat, offs, L, Hp, Wp, _, _ = _buffers((D, H, W), out, ksize, stride, pad, dilation, 1, dx.dtype)
    taps = w.reshape((M, offs.shape[0]))
    unit = _unit_stride(stride)
    shift = offs[offs.shape[0] - 1]
    flipped = shift - offs
    size = flat.shape[0]
    ext = np.zeros(size + shift if unit else 0, dtype=dx.dtype)
    for n in range(N):
        for c in range(C):
            if not unit:
                flat[:] = 0
            for m in range(c * Mg, (c + 1) * Mg):
                if unit:
                    _out_to_grid(top[n, m], Hp, Wp, ext, shift)
                    _grid_gather(ext, flipped, taps[m], flat, size, m > c * Mg)
                else:
                    _rows_axpy(flat, offs, taps[m], top[n, m], stride, Hp, Wp, True)
            _copy_out(flat, pad, Hp, Wp, dx[n, c])


# ``reassoc`` lets LLVM reorder the sum of each filter tap's products, so it vectorises the
# reduction; the result differs from a sequential sum by rounding only (``contract``: see
# :func:`_grid_gather`).
@compiled_only(fastmath={"reassoc", "contract"})
def _grid_dots(src, offs, grid, L, acc, zero):
    """``acc[t] += sum_{q < L} grid[q] * src[q + offs[t]]``, four taps per pass over ``grid``
    (``zero``: a zero of the arrays' dtype, so that the sums stay in that precision)."""
    T = offs.shape[0]
    for q0 in range(0, L, BLOCK):
        n = np.uint64(min(BLOCK, L - q0))
        g = grid[q0:]
        t = 0
        while t < T:
            if T - t >= 4:
                s0 = src[q0 + offs[t] :]
                s1 = src[q0 + offs[t + 1] :]
                s2 = src[q0 + offs[t + 2] :]
                s3 = src[q0 + offs[t + 3] :]
                a0 = a1 = a2 = a3 = zero
                for i in range(n):
                    gi = g[i]
                    a0 += gi * s0[i]
                    a1 += gi * s1[i]
                    a2 += gi * s2[i]
                    a3 += gi * s3[i]
                acc[t] += a0
                acc[t + 1] += a1
                acc[t + 2] += a2
                acc[t + 3] += a3
                t += 4
            else:
                s0 = src[q0 + offs[t] :]
                a0 = zero
                for i in range(n):
                    a0 += g[i] * s0[i]
                acc[t] += a0
                t += 1


@compiled_only(fastmath={"reassoc", "contract"})
def _rows_dots(src, offs, top_plane, stride, Hp, Wp, acc, zero):
    """Strided form of :func:`_grid_dots` (see :func:`_rows_axpy`)."""
    od, oh, ow = top_plane.shape
    sd, sh, sw = stride
    step = np.uint64(sw)
    for z in range(od):
        for r in range(oh):
            row = top_plane[z, r]
            base = (z * sd * Hp + r * sh) * Wp
            for t in range(offs.shape[0]):
                s0 = np.uint64(base + offs[t])
                total = zero
                for i in range(np.uint64(ow)):
                    total += row[i] * src[s0 + step * i]
                acc[t] += total


@compiled_only
def direct_grad_weights(x, top, dw_out, stride, pad, dilation, groups):
    """Gradient of :func:`direct_forward` wrt ``w``: ``dw_out`` (M, 1, kd, kh, kw) is overwritten."""
    N, C, D, H, W = x.shape
    M = dw_out.shape[0]
    ksize = (dw_out.shape[2], dw_out.shape[3], dw_out.shape[4])
    out = (top.shape[2], top.shape[3], top.shape[4])
    Mg = M // groups
    images = _stackable(N, C, stride)
    flat, offs, L, Hp, Wp, P, chunk = _buffers((D, H, W), out, ksize, stride, pad, dilation, images, x.dtype)
    acc = np.zeros((M, offs.shape[0]), dtype=x.dtype)
    zero = np.zeros(1, dtype=x.dtype)[0]
    unit = _unit_stride(stride)
    grid = np.zeros(chunk * P if unit else 0, dtype=x.dtype)  # zero off the output points
    for n0 in range(0, N, chunk):
        k = min(chunk, N - n0)
        for c in range(C):
            for j in range(k):
                _copy_in(x[n0 + j, c], pad, flat, j * P, Hp, Wp)
            for m in range(c * Mg, (c + 1) * Mg):
                if unit:
                    for j in range(k):
                        _out_to_grid(top[n0 + j, m], Hp, Wp, grid, j * P)
                    _grid_dots(flat, offs, grid, (k - 1) * P + L, acc[m], zero)
                else:  # one image per chunk
                    _rows_dots(flat, offs, top[n0, m], stride, Hp, Wp, acc[m], zero)
    kd, kh, kw = ksize
    for m in range(M):  # by element: an array assignment compiles its shape-error message (3 s)
        tap = 0
        for d in range(kd):
            for h in range(kh):
                for w in range(kw):
                    dw_out[m, 0, d, h, w] = acc[m, tap]
                    tap += 1
