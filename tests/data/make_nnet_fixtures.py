"""Generate tests/data/nnet_golden.npz from the legacy reference (pytensor 2.8.11).

Run with the legacy PyTensor 2.8.11 (black-box use: inputs in, outputs out), from the
repository root:
    $PYTENSOR_NNET_LEGACY_PYTHON tests/data/make_nnet_fixtures.py

Covers the legacy ``nnet`` activations, softmax family and losses, ``batchnorm`` and
``neighbours``. Every case stores its inputs (``<case>/in/<name>``), the legacy outputs
(``<case>/out/<name>``) and, where the legacy code has them, the gradients of
``sum(out * cotangent(out.shape))`` wrt the float inputs (``<case>/grad/<out>/<input>``).
``meta`` (JSON) holds each case's function and arguments. Inputs keep away from the kinks of
the piecewise functions (0 for relu/elu, +-2.5 for hard_sigmoid, +-3.4 and +-6 for
ultra_fast_sigmoid), where subgradients legitimately differ.
"""

import json
import os
import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt

warnings.simplefilter("ignore")
import pytensor.tensor.nnet as nnet  # noqa: E402
from pytensor.tensor.nnet import basic, batchnorm, neighbours  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nnet_golden.npz")
RNG = np.random.default_rng(20240607)
ARRAYS = {}
META = {}


def cotangent(shape):
    """Deterministic output gradient of the given shape (same function in the tests)."""
    n = int(np.prod(shape))
    return (np.cos(np.arange(n) * 1.7) + np.arange(n) * 1e-3).reshape(shape)


def away_from_kinks(shape, kinks=(0.0, 2.5, -2.5, 3.4, -3.4, 6.0, -6.0), scale=3.0):
    x = RNG.standard_normal(shape) * scale
    for k in kinks:
        near = np.abs(x - k) < 0.05
        x[near] += 0.2
    return x


def record(case, inputs, outputs, grad_of=(), wrt=None, **meta):
    """Compile ``outputs`` (dict name -> expr) of ``inputs`` (dict name -> (var, value)),
    store values, and the gradients of each output in ``grad_of`` wrt the float inputs."""
    names = list(inputs)
    variables = [inputs[n][0] for n in names]
    values = [inputs[n][1] for n in names]
    out_names = list(outputs)
    f = pytensor.function(variables, [outputs[n] for n in out_names], on_unused_input="ignore")
    results = f(*values)
    for n, v in zip(names, values):
        ARRAYS[f"{case}/in/{n}"] = np.asarray(v)
    for n, r in zip(out_names, results):
        ARRAYS[f"{case}/out/{n}"] = np.asarray(r)
    wrt = [n for n in names if str(inputs[n][0].dtype).startswith("float")] if wrt is None else list(wrt)
    grads_done = []
    for o in grad_of:
        out = outputs[o]
        cot = cotangent(np.shape(results[out_names.index(o)]))
        G = out.type()
        try:
            gs = pytensor.grad(None, [inputs[n][0] for n in wrt], known_grads={out: G})
            gvals = pytensor.function(variables + [G], gs, on_unused_input="ignore")(*values, cot.astype(out.dtype))
        except Exception as err:  # a legacy gradient that does not exist
            meta.setdefault("grad_errors", {})[o] = f"{type(err).__name__}: {str(err)[:200]}"
            continue
        for n, g in zip(wrt, gvals):
            ARRAYS[f"{case}/grad/{o}/{n}"] = np.asarray(g)
        grads_done.append(o)
    META[case] = dict(meta, inputs=names, outputs=out_names, grads=grads_done, wrt=wrt)


def dvar(value, name):
    value = np.asarray(value)
    return pt.TensorType(str(value.dtype), shape=(None,) * value.ndim)(name), value


# ----------------------------------------------------------------------------- activations
x = away_from_kinks((3, 7), scale=3.5)
x[0, :4] = [-7.3, 7.1, 5.2, -4.4]  # beyond the first breakpoints
X, xv = dvar(x, "x")
acts = {
    "sigmoid": basic.sigmoid(X),
    "softplus": basic.softplus(X),
    "hard_sigmoid": nnet.hard_sigmoid(X),
    "softsign": nnet.softsign(X),
    "relu": nnet.relu(X),
    "relu_alpha": nnet.relu(X, 0.1),
    "elu": nnet.elu(X),
    "elu_alpha": nnet.elu(X, 0.5),
    "selu": nnet.selu(X),
}
record("activations", {"x": (X, xv)}, acts, grad_of=list(acts))
record("ultra_fast_sigmoid", {"x": (X, xv)}, {"y": nnet.ultra_fast_sigmoid(X)})
A, av = dvar(RNG.uniform(-0.5, 0.5, size=7), "alpha")
record("relu_tensor_alpha", {"x": (X, xv), "alpha": (A, av)}, {"y": nnet.relu(X, A)}, grad_of=["y"])

# ----------------------------------------------------------------------------- softmax family
for nd, shape in [(1, (6,)), (2, (4, 6)), (3, (2, 3, 5))]:
    C, cv = dvar(RNG.standard_normal(shape) * 2, "c")
    record(
        f"softmax_{nd}d",
        {"c": (C, cv)},
        {"softmax": nnet.softmax(C), "logsoftmax": nnet.logsoftmax(C), "softmax_legacy": nnet.softmax_legacy(C)},
        grad_of=["softmax", "logsoftmax"],
    )
xb, bb = RNG.standard_normal((4, 6)), RNG.standard_normal(6)
X2, x2v = dvar(xb, "x")
B, bv = dvar(bb, "b")
record("softmax_with_bias", {"x": (X2, x2v), "b": (B, bv)}, {"y": nnet.softmax_with_bias(X2, B)}, grad_of=["y"])
DY, dyv = dvar(RNG.standard_normal((4, 6)), "dy")
SM, smv = dvar(np.exp(xb) / np.exp(xb).sum(1, keepdims=True), "sm")
record("softmax_grad_legacy", {"dy": (DY, dyv), "sm": (SM, smv)}, {"y": nnet.softmax_grad_legacy(DY, SM)})

# ----------------------------------------------------------------------------- softmax + crossentropy
Y, yv = dvar(np.array([0, 5, 2, 2]), "y_idx")
record(
    "xent_softmax_1hot",
    {"x": (X2, x2v), "y_idx": (Y, yv)},
    dict(zip(["nll", "sm"], nnet.crossentropy_softmax_1hot(X2, Y))),
    grad_of=["nll", "sm"],
)
record(
    "xent_softmax_1hot_with_bias",
    {"x": (X2, x2v), "b": (B, bv), "y_idx": (Y, yv)},
    dict(zip(["nll", "sm"], nnet.crossentropy_softmax_1hot_with_bias(X2, B, Y))),
    grad_of=["nll", "sm"],
)
record(
    "xent_softmax_argmax_1hot_with_bias",
    {"x": (X2, x2v), "b": (B, bv), "y_idx": (Y, yv)},
    dict(zip(["nll", "sm", "argmax"], nnet.crossentropy_softmax_argmax_1hot_with_bias(X2, B, Y))),
    grad_of=["nll", "sm"],
)
record(
    "xent_softmax_max_and_argmax_1hot",
    {"x": (X2, x2v), "y_idx": (Y, yv)},
    dict(zip(["nll", "sm", "max", "argmax"], nnet.crossentropy_softmax_max_and_argmax_1hot(X2, Y))),
    grad_of=["nll", "sm", "max"],
)
record(
    "xent_softmax_max_and_argmax_1hot_with_bias",
    {"x": (X2, x2v), "b": (B, bv), "y_idx": (Y, yv)},
    dict(zip(["nll", "sm", "max", "argmax"], nnet.crossentropy_softmax_max_and_argmax_1hot_with_bias(X2, B, Y))),
    grad_of=["nll", "sm", "max"],
)
DYV, dyvv = dvar(RNG.standard_normal(4), "dy")
record(
    "xent_softmax_1hot_with_bias_dx",
    {"dy": (DYV, dyvv), "sm": (SM, smv), "y_idx": (Y, yv)},
    {"dx": nnet.crossentropy_softmax_1hot_with_bias_dx(DYV, SM, Y)},
)
P, pv = dvar(RNG.uniform(0.05, 1.0, size=(4, 6)), "coding_dist")
record(
    "xent_categorical_1hot",
    {"coding_dist": (P, pv), "true_one_of_n": (Y, yv)},
    {"y": nnet.crossentropy_categorical_1hot(P, Y)},
    grad_of=["y"],
)
record(
    "xent_categorical_1hot_grad",
    {"g_y": (DYV, dyvv), "coding_dist": (P, pv), "true_one_of_n": (Y, yv)},
    {"y": nnet.crossentropy_categorical_1hot_grad(DYV, P, Y)},
)
record(
    "cce_int",
    {"coding_dist": (SM, smv), "true_dist": (Y, yv)},
    {"y": nnet.categorical_crossentropy(SM, Y)},
    grad_of=["y"],
)
T1, t1v = dvar(np.eye(6)[yv], "true_dist")
record(
    "cce_onehot",
    {"coding_dist": (SM, smv), "true_dist": (T1, t1v)},
    {"y": nnet.categorical_crossentropy(SM, T1)},
    grad_of=["y"],
)
soft = RNG.uniform(size=(4, 6))
TS, tsv = dvar(soft / soft.sum(1, keepdims=True), "true_dist")
record(
    "cce_soft",
    {"coding_dist": (SM, smv), "true_dist": (TS, tsv)},
    {"y": nnet.categorical_crossentropy(SM, TS)},
    grad_of=["y"],
)
SV, svv = dvar(smv[1], "coding_dist")
TV, tvv = dvar(tsv[1], "true_dist")
record(
    "cce_vector",
    {"coding_dist": (SV, svv), "true_dist": (TV, tvv)},
    {"y": nnet.categorical_crossentropy(SV, TV)},
    grad_of=["y"],
)
record(
    "cce_of_softmax_int",
    {"x": (X2, x2v), "true_dist": (Y, yv)},
    {"y": nnet.categorical_crossentropy(nnet.softmax(X2), Y)},
    grad_of=["y"],
)

OUTP, outpv = dvar(RNG.uniform(0.02, 0.98, size=(3, 5)), "output")
TGT, tgtv = dvar((RNG.uniform(size=(3, 5)) > 0.5).astype(float), "target")
TGS, tgsv = dvar(RNG.uniform(size=(3, 5)), "target")
record(
    "binary_crossentropy",
    {"output": (OUTP, outpv), "target": (TGT, tgtv)},
    {"y": nnet.binary_crossentropy(OUTP, TGT)},
    grad_of=["y"],
)
record(
    "binary_crossentropy_soft",
    {"output": (OUTP, outpv), "target": (TGS, tgsv)},
    {"y": nnet.binary_crossentropy(OUTP, TGS)},
    grad_of=["y"],
)
TGB, tgbv = dvar(tgsv[0], "target")
record(
    "binary_crossentropy_broadcast",
    {"output": (OUTP, outpv), "target": (TGB, tgbv)},
    {"y": nnet.binary_crossentropy(OUTP, TGB)},
    grad_of=["y"],
)
LOG, logv = dvar(np.concatenate([RNG.standard_normal((3, 4)) * 4, [[-800.0], [800.0], [30.0]]], axis=1), "output")
TG5, tg5v = dvar(np.concatenate([tgsv[:, :4], [[1.0], [0.0], [0.5]]], axis=1), "target")
record(
    "sigmoid_binary_crossentropy",
    {"output": (LOG, logv), "target": (TG5, tg5v)},
    {"y": nnet.sigmoid_binary_crossentropy(LOG, TG5)},
    grad_of=["y"],
)

# ----------------------------------------------------------------------------- h_softmax
bs, nf, ncls, nopc, nout = 5, 4, 3, 4, 10
hs = {
    "x": dvar(RNG.standard_normal((bs, nf)), "x"),
    "W1": dvar(RNG.standard_normal((nf, ncls)), "W1"),
    "b1": dvar(RNG.standard_normal(ncls), "b1"),
    "W2": dvar(RNG.standard_normal((ncls, nf, nopc)), "W2"),
    "b2": dvar(RNG.standard_normal((ncls, nopc)), "b2"),
}
hv = [hs[k][0] for k in ("x", "W1", "b1", "W2", "b2")]
record(
    "h_softmax_full",
    hs,
    {"y": nnet.h_softmax(hv[0], bs, nout, ncls, nopc, *hv[1:])},
    grad_of=["y"],
    batch_size=bs,
    n_outputs=nout,
    n_classes=ncls,
    n_outputs_per_class=nopc,
)
hs_t = dict(hs, target=dvar(np.array([0, 9, 5, 3, 7]), "target"))
record(
    "h_softmax_target",
    hs_t,
    {"y": nnet.h_softmax(hv[0], bs, nout, ncls, nopc, *hv[1:], hs_t["target"][0])},
    grad_of=["y"],
    batch_size=bs,
    n_outputs=nout,
    n_classes=ncls,
    n_outputs_per_class=nopc,
)

# ----------------------------------------------------------------------------- small utilities
ACT, actv = dvar(np.array([0, 2, 2, 5, 1, 5]), "actual")
PRE, prev = dvar(np.array([2, 2, 1, 5, 3, 5]), "pred")
record(
    "confusion_matrix",
    {"actual": (ACT, actv), "pred": (PRE, prev)},
    dict(zip(["conf_mat", "order"], nnet.confusion_matrix(ACT, PRE))),
)
ACF, acfv = dvar(np.array([0.0, 2.5, 2.5, -1.0]), "actual")
PRF, prfv = dvar(np.array([2.5, 1.0, 0.0, -1.0]), "pred")
record(
    "confusion_matrix_float",
    {"actual": (ACF, acfv), "pred": (PRF, prfv)},
    dict(zip(["conf_mat", "order"], nnet.confusion_matrix(ACF, PRF))),
)
MAT, matv = dvar(RNG.standard_normal((3, 4)), "mat")
VAL, valv = dvar(np.array(7.5), "val")
# One function each: the legacy graph merger fuses prepend_0 and prepend_1 of the same matrix.
record("prepend_0", {"mat": (MAT, matv)}, {"y": nnet.prepend_0_to_each_row(MAT)})
record("prepend_1", {"mat": (MAT, matv)}, {"y": nnet.prepend_1_to_each_row(MAT)})
record("prepend_scalar", {"val": (VAL, valv), "mat": (MAT, matv)}, {"y": nnet.prepend_scalar_to_each_row(VAL, MAT)})

# ----------------------------------------------------------------------------- batchnorm
xin = RNG.standard_normal((4, 3, 2, 5)) * 2 + 1
XB, xbv = dvar(xin, "inputs")


def param_shape(axes, compact):
    if compact:
        return tuple(s for i, s in enumerate(xin.shape) if i not in axes)
    return tuple(1 if i in axes else s for i, s in enumerate(xin.shape))


BN_AXES = {"per-activation": (0,), "spatial": (0, 2, 3), "(0, 2)": (0, 2), "(1,)": (1,)}
for label, axes in BN_AXES.items():
    for compact in (False, True):
        if compact and label == "per-activation":
            continue  # compact per-activation params are (3, 2, 5): covered by "(0, 2)" etc.
        shp = param_shape(axes, compact)
        ins = {"inputs": (XB, xbv)}
        for name, lo in [("gamma", 0.5), ("beta", -1.0), ("running_mean", -0.5), ("running_var", 0.5)]:
            ins[name] = dvar(RNG.uniform(lo, lo + 1.0, size=shp), name)
        ax = axes if label.startswith("(") else label
        outs = batchnorm.batch_normalization_train(
            XB,
            ins["gamma"][0],
            ins["beta"][0],
            axes=ax,
            epsilon=2e-4,
            running_average_factor=0.3,
            running_mean=ins["running_mean"][0],
            running_var=ins["running_var"][0],
        )
        names = ["out", "mean", "invstd", "new_running_mean", "new_running_var"]
        case = f"bn_train_{label}_{'compact' if compact else 'full'}"
        record(
            case,
            ins,
            dict(zip(names, outs)),
            grad_of=["out", "mean", "invstd"],
            wrt=["inputs", "gamma", "beta"],
            axes=list(axes),
            epsilon=2e-4,
            running_average_factor=0.3,
        )
        tins = {"inputs": (XB, xbv)}
        for name, lo in [("gamma", 0.5), ("beta", -1.0), ("mean", -0.5), ("var", 0.5)]:
            tins[name] = dvar(RNG.uniform(lo, lo + 1.0, size=shp), name)
        y = batchnorm.batch_normalization_test(
            XB, *(tins[n][0] for n in ("gamma", "beta", "mean", "var")), axes=ax, epsilon=2e-4
        )
        record(
            f"bn_test_{label}_{'compact' if compact else 'full'}",
            tins,
            {"out": y},
            grad_of=["out"],
            axes=list(axes),
            epsilon=2e-4,
        )
xmat = RNG.standard_normal((5, 3))
XM, xmv = dvar(xmat, "inputs")
bnp = {
    n: dvar(RNG.uniform(lo, lo + 1, size=3), n)
    for n, lo in [("gamma", 0.5), ("beta", -1), ("mean", -0.5), ("std", 0.5)]
}
for mode in ("low_mem", "high_mem"):
    record(
        f"bn_{mode}",
        dict({"inputs": (XM, xmv)}, **bnp),
        {"out": batchnorm.batch_normalization(XM, *(bnp[n][0] for n in ("gamma", "beta", "mean", "std")), mode=mode)},
        grad_of=["out"],
        mode=mode,
    )

# ----------------------------------------------------------------------------- neighbours
ten4 = RNG.standard_normal((2, 3, 5, 6))
T4, t4v = dvar(ten4, "ten4")
NEIB_CASES = [
    ("valid", (1, 3), None),
    ("valid", (5, 2), None),
    ("valid", (3, 3), (1, 1)),
    ("valid", (2, 2), (1, 2)),
    ("ignore_borders", (2, 2), None),
    ("ignore_borders", (3, 4), None),
    ("ignore_borders", (3, 3), (2, 2)),
    ("ignore_borders", (2, 3), (1, 2)),
    ("half", (3, 3), (1, 1)),
    ("half", (2, 2), (1, 2)),
    ("half", (3, 5), (2, 1)),
    ("full", (2, 2), (1, 2)),
    ("full", (3, 3), (1, 1)),
    ("wrap_centered", (3, 3), None),
    ("wrap_centered", (3, 3), (1, 1)),
    ("wrap_centered", (3, 5), (2, 2)),
    ("wrap_centered", (5, 1), (2, 3)),
    ("wrap_centered", (1, 1), None),
]
for i, (mode, shape, step) in enumerate(NEIB_CASES):
    record(
        f"images2neibs_{i}",
        {"ten4": (T4, t4v)},
        {"y": neighbours.images2neibs(T4, shape, step, mode=mode)},
        grad_of=["y"],
        mode=mode,
        neib_shape=list(shape),
        neib_step=None if step is None else list(step),
    )
for i, (mode, shape, oshape) in enumerate(
    [
        ("valid", (2, 3), (2, 3, 4, 6)),
        ("valid", (1, 2), (1, 2, 3, 4)),
        ("ignore_borders", (2, 3), (2, 3, 5, 7)),
        ("ignore_borders", (3, 2), (1, 2, 4, 5)),
    ]
):
    n_rows = oshape[0] * oshape[1] * (oshape[2] // shape[0]) * (oshape[3] // shape[1])
    NB, nbv = dvar(RNG.standard_normal((n_rows, shape[0] * shape[1])), "neibs")
    record(
        f"neibs2images_{i}",
        {"neibs": (NB, nbv)},
        {"y": neighbours.neibs2images(NB, shape, oshape, mode=mode)},
        grad_of=["y"],
        mode=mode,
        neib_shape=list(shape),
        original_shape=list(oshape),
    )

ARRAYS["meta"] = np.array(json.dumps(META, sort_keys=True))
np.savez_compressed(OUT, **ARRAYS)
print(f"wrote {OUT}: {len(META)} cases, {len(ARRAYS)} arrays, {os.path.getsize(OUT)} bytes")
