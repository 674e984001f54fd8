"""Write the golden fixtures of the sparse-matrix convolution from the legacy implementation.

Run with the legacy reference (pytensor 2.8.11), from the repository root:

    $PYTENSOR_NNET_LEGACY_PYTHON tests/data/sparse_conv_make_fixtures.py

It writes ``tests/data/sparse_conv_{indices,convolve,maxpool}.npz``: the legacy
``ConvolutionIndices.evaluate`` indices, and ``convolve``/``max_pool`` outputs and gradients
on fixed random inputs. Each case is stored under a prefix ``"<case>/"``; ``cases`` holds the
case arguments as a JSON string.
"""

import json
import os

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.sparse.sandbox import sp

HERE = os.path.dirname(os.path.abspath(__file__))

# (inshp, kshp, strides, mode)
INDEX_CASES = [
    ((4, 4), (2, 2), (1, 1), "valid"),
    ((4, 4), (2, 2), (1, 1), "full"),
    ((4, 5), (2, 3), (1, 2), "valid"),
    ((4, 5), (2, 3), (2, 1), "valid"),
    ((2, 4, 4), (2, 2), (1, 1), "valid"),
    ((5, 5), (3, 3), (2, 2), "full"),
    ((3, 5, 4), (3, 2), (2, 1), "full"),
]

# (kshp, nkern, imgshp, step, mode, bias, flatten)
CONVOLVE_CASES = [
    ((2, 3), 2, (4, 5), (1, 1), "valid", False, True),
    ((2, 3), 2, (4, 5), (1, 1), "valid", True, False),
    ((2, 3), 3, (4, 5), (1, 1), "full", True, True),
    ((2, 3), 2, (5, 6), (2, 1), "valid", False, True),
    ((3, 2), 2, (5, 6), (1, 3), "full", False, True),
    ((2, 2), 3, (2, 4, 5), (1, 1), "valid", True, True),
    ((3, 3), 2, (3, 5, 5), (2, 2), "full", False, True),
]

# (imgshp, maxpoolshp): square windows only (the legacy non-square windows are skewed)
MAXPOOL_CASES = [
    ((4, 6), (2, 2)),
    ((5, 5), (2, 2)),
    ((7, 7), (3, 3)),
    ((2, 4, 4), (2, 2)),
    ((3, 6, 5), (2, 2)),
]

BATCH = 2


def indices_fixture(out):
    for i, (inshp, kshp, strides, mode) in enumerate(INDEX_CASES):
        indices, indptr, shape, fmt, outshp = sp.convolution_indices.evaluate(inshp, kshp, strides, mode=mode)
        assert fmt == "csc"
        out[f"{i}/indices"] = indices
        out[f"{i}/indptr"] = indptr
        out[f"{i}/shape"] = np.asarray(shape)
        out[f"{i}/outshp"] = np.asarray(outshp)
    out["cases"] = json.dumps(INDEX_CASES)


def convolve_fixture(out, rng):
    for i, (kshp, nkern, imgshp, step, mode, with_bias, flatten) in enumerate(CONVOLVE_CASES):
        channels = imgshp[0] if len(imgshp) == 3 else 1
        kerns = rng.standard_normal((nkern, channels * int(np.prod(kshp))))
        images = rng.standard_normal((BATCH, int(np.prod(imgshp))))
        bias = rng.standard_normal(nkern)
        K, X, B = pt.dmatrix(), pt.dmatrix(), pt.dvector()
        y, outshp = sp.convolve(
            K,
            kshp,
            nkern,
            X,
            imgshp,
            step=step,
            bias=B if with_bias else None,
            mode=mode,
            flatten=flatten,
        )
        weights = pt.constant(rng.standard_normal(BATCH * int(nkern * np.prod(outshp[1:]))))
        cost = (y.flatten() * weights).sum()
        f = pytensor.function([K, X, B], [y, *pytensor.grad(cost, [K, X])], on_unused_input="ignore")
        value, dkerns, dimages = f(kerns, images, bias)
        for name, arr in dict(
            kerns=kerns,
            images=images,
            bias=bias,
            weights=weights.data,
            out=value,
            dkerns=dkerns,
            dimages=dimages,
            outshp=np.asarray(outshp),
        ).items():
            out[f"{i}/{name}"] = arr
    out["cases"] = json.dumps(CONVOLVE_CASES)


def maxpool_fixture(out, rng):
    for i, (imgshp, poolshp) in enumerate(MAXPOOL_CASES):
        images = rng.standard_normal((BATCH, int(np.prod(imgshp))))
        X = pt.dmatrix()
        y, outshp = sp.max_pool(X, imgshp, poolshp)
        channels = imgshp[0] if len(imgshp) == 3 else 1
        weights = pt.constant(rng.standard_normal(BATCH * int(channels * np.prod(outshp))))
        f = pytensor.function([X], [y, pytensor.grad((y.flatten() * weights).sum(), X)])
        value, dimages = f(images)
        for name, arr in dict(
            images=images,
            weights=weights.data,
            out=value,
            dimages=dimages,
            outshp=np.asarray(outshp),
        ).items():
            out[f"{i}/{name}"] = arr
    out["cases"] = json.dumps(MAXPOOL_CASES)


def main():
    rng = np.random.default_rng(20240611)
    for name, build in (
        ("indices", indices_fixture),
        ("convolve", lambda o: convolve_fixture(o, rng)),
        ("maxpool", lambda o: maxpool_fixture(o, rng)),
    ):
        out = {}
        build(out)
        path = os.path.join(HERE, f"sparse_conv_{name}.npz")
        np.savez_compressed(path, **out)
        print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
