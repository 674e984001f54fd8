"""Generate tests/data/blocksparse_golden.npz from the legacy reference (pytensor 2.8.11).

Run with the legacy PyTensor 2.8.11 (black-box use: inputs in, outputs out), from the
repository root:
    $PYTENSOR_NNET_LEGACY_PYTHON tests/data/blocksparse_make_fixtures.py
Each case ``<name>/...`` stores the inputs, the legacy output and, for the differentiable
cases, a random output gradient ``g`` and the legacy gradients of ``sum(out * g)``.
"""

import os
import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt

warnings.simplefilter("ignore", DeprecationWarning)
from pytensor.tensor.nnet.blocksparse import sparse_block_dot, sparse_block_gemv, sparse_block_outer  # noqa: E402

rng = np.random.default_rng(20240505)

# name: (batch, iBlocks, oBlocks, iSize, oSize, iWin, oWin, dtype)
GEMV_CASES = {
    "gemv": (4, 5, 6, 3, 4, 2, 3, "float64"),
    "gemv_batch1_single_block": (1, 1, 1, 3, 2, 1, 1, "float64"),
    "gemv_float32": (3, 4, 3, 5, 2, 3, 2, "float32"),
}


def indices(batch, n_blocks, win):
    """Random block indices with repeats inside and across examples."""
    idx = rng.integers(0, n_blocks, (batch, win)).astype("int32")
    if win > 1:
        idx[0, 1] = idx[0, 0]
    return idx


def gemv_case(batch, i_blocks, o_blocks, i_size, o_size, i_win, o_win, dtype):
    d = {
        "o": rng.standard_normal((batch, o_win, o_size)).astype(dtype),
        "W": rng.standard_normal((i_blocks, o_blocks, i_size, o_size)).astype(dtype),
        "h": rng.standard_normal((batch, i_win, i_size)).astype(dtype),
        "inputIdx": indices(batch, i_blocks, i_win),
        "outputIdx": indices(batch, o_blocks, o_win),
        "g": rng.standard_normal((batch, o_win, o_size)).astype(dtype),
    }
    o, W, h = pt.tensor3(dtype=dtype), pt.tensor4(dtype=dtype), pt.tensor3(dtype=dtype)
    ii, oi, g = pt.imatrix(), pt.imatrix(), pt.tensor3(dtype=dtype)
    out = sparse_block_gemv(o, W, h, ii, oi)
    grads = pytensor.grad((out * g).sum(), [o, W, h])
    f = pytensor.function([o, W, h, ii, oi, g], [out, *grads])
    d["out"], d["grad_o"], d["grad_W"], d["grad_h"] = f(d["o"], d["W"], d["h"], d["inputIdx"], d["outputIdx"], d["g"])
    return d


def outer_case():
    batch, x_blocks, y_blocks, x_size, y_size, x_win, y_win = 5, 3, 4, 2, 3, 2, 3
    d = {
        "o": rng.standard_normal((x_blocks, y_blocks, x_size, y_size)),
        "x": rng.standard_normal((batch, x_win, x_size)),
        "y": rng.standard_normal((batch, y_win, y_size)),
        # Few blocks, many examples: several (b, i, j) hit the same block.
        "xIdx": indices(batch, x_blocks, x_win),
        "yIdx": indices(batch, y_blocks, y_win),
        "alpha": np.float64(0.7),
    }
    o, x, y = pt.tensor4(), pt.tensor3(), pt.tensor3()
    xi, yi, alpha = pt.imatrix(), pt.imatrix(), pt.dscalar()
    f = pytensor.function([o, x, y, xi, yi, alpha], sparse_block_outer(o, x, y, xi, yi, alpha))
    d["out"] = f(d["o"], d["x"], d["y"], d["xIdx"], d["yIdx"], d["alpha"])
    f1 = pytensor.function([o, x, y, xi, yi], sparse_block_outer(o, x, y, xi, yi))
    d["out_alpha_default"] = f1(d["o"], d["x"], d["y"], d["xIdx"], d["yIdx"])
    return d


def dot_case(unbatched):
    batch, i_blocks, o_blocks, i_size, o_size, i_win, o_win = 3, 4, 5, 3, 2, 2, 3
    d = {
        "W": rng.standard_normal((i_blocks, o_blocks, i_size, o_size)),
        "b": rng.standard_normal((o_blocks, o_size)),
        "h": rng.standard_normal((batch, i_win, i_size)),
        "inputIdx": indices(batch, i_blocks, i_win),
        "outputIdx": indices(batch, o_blocks, o_win),
    }
    W, b = pt.tensor4(), pt.matrix()
    if unbatched:
        d["h"], d["inputIdx"], d["outputIdx"] = d["h"][0], d["inputIdx"][0], d["outputIdx"][0]
        h, ii, oi = pt.matrix(), pt.ivector(), pt.ivector()
    else:
        h, ii, oi = pt.tensor3(), pt.imatrix(), pt.imatrix()
    out = sparse_block_dot(W, h, ii, b, oi)
    d["g"] = rng.standard_normal((1 if unbatched else batch, o_win, o_size))
    g = pt.tensor3()
    grads = pytensor.grad((out * g).sum(), [W, h, b])
    f = pytensor.function([W, h, ii, b, oi, g], [out, *grads])
    d["out"], d["grad_W"], d["grad_h"], d["grad_b"] = f(d["W"], d["h"], d["inputIdx"], d["b"], d["outputIdx"], d["g"])
    return d


def main():
    cases = {name: gemv_case(*shape) for name, shape in GEMV_CASES.items()}
    cases["outer"] = outer_case()
    cases["dot"] = dot_case(unbatched=False)
    cases["dot_unbatched"] = dot_case(unbatched=True)
    flat = {f"{case}/{key}": np.asarray(value) for case, arrays in cases.items() for key, value in arrays.items()}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "blocksparse_golden.npz")
    np.savez_compressed(path, **flat)
    print(f"wrote {path}: {len(cases)} cases, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
