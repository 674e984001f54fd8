"""Generate tests/data/conv_golden.npz from the legacy reference (pytensor 2.8.11).

Run with the legacy PyTensor 2.8.11 (black-box use: inputs in, outputs out), from the
repository root:
    $PYTENSOR_NNET_LEGACY_PYTHON tests/data/make_conv_fixtures.py
Each case stores x, w, a random output gradient gy, and the legacy y, dx, dw.
"""

import itertools
import json
import os

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.tensor.nnet import conv2d, conv3d

CASES_2D = itertools.product(
    ["valid", "full", "half", 1, (1, 2), ((1, 0), (2, 1))],
    [(1, 1), (2, 1)],
    [(1, 1), (1, 2)],
    [1, 2],
    [True, False],
)
CASES_3D = itertools.product(
    ["valid", "full", "half", (1, 0, 2)],
    [(1, 1, 1), (2, 1, 2)],
    [(1, 1, 1), (2, 1, 1)],
    [1, 2],
    [True, False],
)


def run(nd, border_mode, subsample, dilation, groups, flip, dtype, rng):
    if nd == 2:
        xs, ws = (2, 4, 7, 6), (4, 4 // groups, 3, 2)
        X, W = pt.tensor4(dtype=dtype), pt.tensor4(dtype=dtype)
        fn = conv2d
    else:
        xs, ws = (2, 2, 5, 4, 5), (4, 2 // groups, 2, 3, 2)
        X, W = pt.tensor5(dtype=dtype), pt.tensor5(dtype=dtype)
        fn = conv3d
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    y = fn(
        X,
        W,
        border_mode=border_mode,
        subsample=subsample,
        filter_flip=flip,
        filter_dilation=dilation,
        num_groups=groups,
    )
    G = y.type()
    f = pytensor.function([X, W, G], [y] + pytensor.grad(None, [X, W], known_grads={y: G}))
    out_shape = pytensor.function([X, W], y.shape)(x, w)
    gy = rng.standard_normal(out_shape).astype(dtype)
    yv, dx, dw = f(x, w, gy)
    return dict(x=x, w=w, gy=gy, y=yv, dx=dx, dw=dw)


def main():
    rng = np.random.default_rng(1234)
    arrays, meta = {}, []
    cases = [(2,) + c for c in CASES_2D] + [(3,) + c for c in CASES_3D]
    for i, (nd, bm, s, d, g, flip) in enumerate(cases):
        dtype = "float32" if (i % 5 == 0) else "float64"
        res = run(nd, bm, s, d, g, flip, dtype, rng)
        for k, v in res.items():
            arrays[f"{i}_{k}"] = v
        meta.append(
            dict(nd=nd, border_mode=bm, subsample=s, filter_dilation=d, num_groups=g, filter_flip=flip, dtype=dtype)
        )
    arrays["meta"] = np.array(json.dumps(meta))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conv_golden.npz")
    np.savez_compressed(out, **arrays)
    print("wrote", out, len(meta), "cases")


main()
