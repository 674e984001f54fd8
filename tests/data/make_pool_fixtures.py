"""Generate tests/data/pool_golden.npz from the legacy reference (pytensor 2.8.11).

Run with the legacy PyTensor 2.8.11 (black-box use: inputs in, outputs out), from the
repository root:
    $PYTENSOR_NNET_LEGACY_PYTHON tests/data/make_pool_fixtures.py

One small integer-valued input per rank (so max pooling has many ties) is shared by all
cases; the output gradient of a case is ``cotangent(shape)`` below (deterministic, no RNG),
and the second-order gradient of max pooling uses ``cotangent(x.shape) + 0.5``. Each case
stores the legacy pool output ``y``, its input gradient ``dx`` (absent where the legacy code
raises: ``average_exc_pad`` with padding), and for max pooling the legacy
``DownsampleFactorMaxGradGrad`` output ``ggz``.

The max-pooling gradients follow the legacy tie rule (every element equal to its window's
maximum gets the window's full gradient): the tests compare them with
``max_grad_ties="all"``; the default rule (first maximum) is checked against PyTorch instead
(tests/test_pool_ties.py).
"""

import itertools
import json
import os
import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt

warnings.simplefilter("ignore", DeprecationWarning)
from pytensor.tensor.signal.pool import DownsampleFactorMaxGradGrad, Pool, pool_2d, pool_3d  # noqa: E402

MODES = ["max", "sum", "average_inc_pad", "average_exc_pad"]
CASES_2D = list(
    itertools.product(
        [(2, 2), (3, 2)],
        [None, (1, 1), (2, 3)],
        [(True, (0, 0)), (True, (1, 1)), (True, (0, 1)), (False, (0, 0))],
        MODES,
    )
)
CASES_3D = list(
    itertools.product(
        [(2, 2, 2), (3, 1, 2)],
        [None, (1, 2, 1)],
        [(True, (0, 0, 0)), (True, (1, 0, 1)), (False, (0, 0, 0))],
        MODES,
    )
)


def cotangent(shape):
    """Deterministic, tie-free output gradient of the given shape."""
    n = int(np.prod(shape))
    return (np.cos(np.arange(n) * 1.7) + np.arange(n) * 1e-3).reshape(shape)


def run(x, nd, ws, stride, ignore_border, pad, mode):
    X = pt.TensorType("float64", shape=(None,) * x.ndim)()
    fn = pool_2d if nd == 2 else pool_3d
    y = fn(X, ws=ws, ignore_border=ignore_border, stride=stride, pad=pad, mode=mode)
    yv = pytensor.function([X], y)(x)
    out = {"y": yv}
    G = y.type()
    try:
        dx = pytensor.grad(None, X, known_grads={y: G})
        out["dx"] = pytensor.function([X, G], dx)(x, cotangent(yv.shape))
    except Exception as err:  # the legacy gradient of average_exc_pad with padding raises
        out["dx_error"] = type(err).__name__
    if mode == "max":
        GG = X.type()
        st = ws if stride is None else stride
        ggz = DownsampleFactorMaxGradGrad(ignore_border, ndim=nd)(X, y, GG, ws, st, pad)
        out["ggz"] = pytensor.function([X, GG], ggz)(x, cotangent(x.shape) + 0.5)
    return out


def main():
    rng = np.random.default_rng(20240607)
    inputs = {
        2: rng.integers(0, 4, size=(2, 1, 5, 7)).astype("float64"),
        3: rng.integers(0, 4, size=(1, 2, 4, 5, 5)).astype("float64"),
    }
    arrays = {"x2": inputs[2], "x3": inputs[3]}
    meta = []
    cases = [(2,) + c for c in CASES_2D] + [(3,) + c for c in CASES_3D]
    for i, (nd, ws, stride, (ignore_border, pad), mode) in enumerate(cases):
        if any(p >= w for p, w in zip(pad, ws)):
            continue
        res = run(inputs[nd], nd, ws, stride, ignore_border, pad, mode)
        for k, v in res.items():
            if isinstance(v, np.ndarray):
                arrays[f"{i}_{k}"] = v
        meta.append(
            dict(
                id=i,
                nd=nd,
                ws=ws,
                stride=stride,
                ignore_border=ignore_border,
                pad=pad,
                mode=mode,
                dx_error=res.get("dx_error"),
            )
        )
    # integer input: the legacy average truncates towards zero and keeps the dtype
    xi = np.array([[-7, 2, 5, 0], [3, -1, 4, 6], [1, 1, -8, 2]], dtype="int64")
    Xi = pt.lmatrix()
    for mode in MODES:
        arrays[f"int_{mode}"] = pytensor.function(
            [Xi], pool_2d(Xi, (2, 3), ignore_border=False, stride=(1, 1), mode=mode)
        )(xi)
    arrays["int_x"] = xi
    # legacy output shapes with ignore_border=False: (n, ws, stride) -> out
    table = [
        (n, w, s, int(Pool.out_shape((n, 1), (w, 1), False, (s, 1))[0]))
        for n in range(1, 9)
        for w in range(1, 5)
        for s in range(1, 6)
    ]
    arrays["out_shape_table"] = np.array(table, dtype="int64")
    arrays["meta"] = np.array(json.dumps(meta))
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pool_golden.npz")
    np.savez_compressed(path, **arrays)
    print(f"wrote {len(meta)} cases to {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
