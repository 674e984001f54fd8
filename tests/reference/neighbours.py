"""Slow reference for images2neibs: index lists per window, then fancy indexing."""

import numpy as np


def neibs_reference(x, shape, step, mode):
    """Slow loop reference of images2neibs."""
    (kh, kw), (sh, sw) = shape, step
    n, c, h, w = x.shape
    if mode == "wrap_centered":
        rows = [[(i - kh // 2 + a) % h for a in range(kh)] for i in range(0, h, sh)]
        cols = [[(j - kw // 2 + b) % w for b in range(kw)] for j in range(0, w, sw)]
        xp = x
    else:
        ph, pw = {"half": (kh // 2, kw // 2), "full": (kh - 1, kw - 1)}.get(mode, (0, 0))
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        rows = [list(range(i, i + kh)) for i in range(0, xp.shape[2] - kh + 1, sh)]
        cols = [list(range(j, j + kw)) for j in range(0, xp.shape[3] - kw + 1, sw)]
        if mode != "ignore_borders":
            assert (rows[-1][-1] + 1, cols[-1][-1] + 1) == xp.shape[2:]
    out = [xp[b, ch][np.ix_(r, q)].ravel() for b in range(n) for ch in range(c) for r in rows for q in cols]
    return np.array(out)
