"""Generate tests/data/conv_extra_golden.npz from the legacy reference (pytensor 2.8.11).

Run with the legacy PyTensor 2.8.11 (black-box use: inputs in, outputs out), from the
repository root:
    $PYTENSOR_NNET_LEGACY_PYTHON tests/data/make_conv_extra_fixtures.py

Cases: conv2d_transpose / 3d transposed convolution, unshared conv2d, causal_conv1d,
separable_conv2d/3d, bilinear kernels and (fractional) upsampling, conv3d2d.conv3d, the old
conv.conv2d, and the debugging methods BaseAbstractConv.conv / unshared2d / flops. Each case
stores its inputs, a random output gradient ``gy`` where there is a gradient, and the legacy
outputs (``y``, then ``d_<input>`` gradients of ``sum(y * gy)``).
"""

import itertools
import json
import os
import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.tensor.nnet import abstract_conv as ac
from pytensor.tensor.nnet import conv as oldconv
from pytensor.tensor.nnet import conv2d, conv3d2d
from pytensor.tensor.nnet.abstract_conv import conv3d_grad_wrt_inputs

warnings.simplefilter("ignore")
RNG = np.random.default_rng(2024)


def tensor(shape, dtype="float64"):
    return pt.TensorType(dtype, shape=(None,) * len(shape))()


def run(build, inputs, dtype="float64", grad=True):
    """Compile y = build(*vars); return inputs, y, gy and the gradients wrt every input."""
    values = [RNG.standard_normal(s).astype(dtype) for s in inputs]
    variables = [tensor(s, dtype) for s in inputs]
    y = build(*variables)
    out = {f"in{i}": v for i, v in enumerate(values)}
    if not grad:
        out["y"] = pytensor.function(variables, y)(*values)
        return out
    y_shape = pytensor.function(variables, y.shape)(*values)
    gy = RNG.standard_normal(y_shape).astype(dtype)
    G = y.type()
    grads = pytensor.grad(None, variables, known_grads={y: G})
    res = pytensor.function(variables + [G], [y] + grads)(*values, gy)
    out.update(gy=gy, y=res[0], **{f"d{i}": g for i, g in enumerate(res[1:])})
    return out


def pads_of(border_mode, dilated_kernel):
    """(before, after) per axis of a legacy border_mode, for dilated kernel sizes."""
    if border_mode == "valid":
        return [(0, 0)] * len(dilated_kernel)
    if border_mode == "full":
        return [(k - 1, k - 1) for k in dilated_kernel]
    if border_mode == "half":
        return [(k // 2, k // 2) for k in dilated_kernel]
    if isinstance(border_mode, int):
        return [(border_mode, border_mode)] * len(dilated_kernel)
    return [tuple(b) if isinstance(b, tuple) else (b, b) for b in border_mode]


def transposed_cases():
    modes = ["valid", "full", "half", 1, (1, 2), ((1, 0), (2, 1))]
    geometry = [((1, 1), (1, 1), 0), ((2, 1), (1, 1), 1), ((1, 2), (2, 1), 0), ((2, 3), (1, 2), 2)]
    for i, (bm, (stride, dil, extra)) in enumerate(itertools.product(modes, geometry)):
        groups, flip = 1 + i % 2, (i // 2) % 2 == 0
        x_shape, w_shape = (1, 4, 3, 3), (4, 4 // groups, 3, 2)
        pads = pads_of(bm, [(k - 1) * d + 1 for k, d in zip(w_shape[2:], dil)])
        out = [
            (n - 1) * s + (k - 1) * d + 1 - p[0] - p[1] + min(extra, s - 1)
            for n, k, s, d, p in zip(x_shape[2:], w_shape[2:], stride, dil, pads)
        ]
        if min(out) < 1:
            continue
        params = dict(border_mode=bm, input_dilation=stride, filter_dilation=dil, num_groups=groups, filter_flip=flip)
        output_shape = (1, 4, *out)
        res = run(
            lambda x, w: ac.conv2d_transpose(x, w, output_shape, **params),
            [x_shape, w_shape],
            "float32" if i % 5 == 0 else "float64",
        )
        yield dict(kind="transpose2d", output_shape=output_shape, **params), res


def transposed3d_cases():
    for bm, stride, groups in [("valid", (2, 1, 1), 1), ("half", (1, 2, 1), 2), ((1, 0, 1), (1, 1, 2), 1)]:
        x_shape, w_shape = (1, 2, 3, 2, 3), (2, 2 // groups, 2, 3, 2)
        pads = pads_of(bm, w_shape[2:])
        out = [(n - 1) * s + k - p[0] - p[1] for n, k, s, p in zip(x_shape[2:], w_shape[2:], stride, pads)]
        output_shape = (1, 2, *out)
        params = dict(border_mode=bm, subsample=stride, num_groups=groups)
        res = run(lambda x, w: conv3d_grad_wrt_inputs(x, w, output_shape, **params), [x_shape, w_shape])
        yield (
            dict(
                kind="transpose3d", output_shape=output_shape, border_mode=bm, input_dilation=stride, num_groups=groups
            ),
            res,
        )


def unshared_cases():
    modes = ["valid", "half", ((1, 0), (0, 2))]
    strides = [(1, 1), (2, 1), (1, 2)]
    for i, (bm, stride, groups) in enumerate(itertools.product(modes, strides, [1, 2])):
        dil = (1, 2) if i % 4 == 3 else (1, 1)
        flip = i % 3 != 1
        x_shape = (2, 2, 4, 5)
        kern = (2, 2)
        top = ac.get_conv_output_shape(x_shape, (2, 2 // groups, *kern), bm, stride, dil)
        w_shape = (2, top[2], top[3], 2 // groups, *kern)
        params = dict(border_mode=bm, subsample=stride, filter_dilation=dil, num_groups=groups, filter_flip=flip)
        res = run(
            lambda x, w: conv2d(x, w, unshared=True, **params),
            [x_shape, w_shape],
            "float32" if i % 5 == 0 else "float64",
        )
        yield dict(kind="unshared2d", **params), res


def causal_cases():
    for dil, sub, groups in itertools.product([1, 2, 3], [1, 2], [1, 2]):
        x_shape, w_shape = (1, 4, 8), (4, 4 // groups, 3)
        params = dict(subsample=sub, filter_dilation=dil, num_groups=groups, filter_flip=(dil + sub) % 2 == 0)
        res = run(lambda x, w: ac.causal_conv1d(x, w, w_shape, **params), [x_shape, w_shape])
        yield dict(kind="causal", filter_shape=w_shape, **params), res


def separable_cases():
    for bm, sub, dil, mult in [("valid", (1, 1), (1, 1), 1), (1, (2, 1), (1, 1), 2), ("half", (1, 1), (2, 1), 2)]:
        x_shape, d_shape, p_shape = (1, 3, 6, 5), (3 * mult, 1, 3, 2), (4, 3 * mult, 1, 1)
        params = dict(border_mode=bm, subsample=sub, filter_dilation=dil)
        res = run(lambda x, d, p: ac.separable_conv2d(x, d, p, 3, **params), [x_shape, d_shape, p_shape])
        yield dict(kind="separable2d", num_channels=3, **params), res
    for bm, sub in [("valid", (1, 1, 1)), ("full", (1, 2, 1))]:
        x_shape, d_shape, p_shape = (1, 2, 4, 3, 4), (4, 1, 2, 2, 2), (3, 4, 1, 1, 1)
        params = dict(border_mode=bm, subsample=sub)
        res = run(lambda x, d, p: ac.separable_conv3d(x, d, p, 2, **params), [x_shape, d_shape, p_shape])
        yield dict(kind="separable3d", num_channels=2, **params), res


def bilinear_cases():
    for ratio in (1, 2, 3, 4):
        for normalize in (True, False):
            yield (
                dict(kind="kernel1d", ratio=ratio, normalize=normalize),
                {"y": ac.bilinear_kernel_1D(ratio, normalize).eval()},
            )
            yield (
                dict(kind="kernel2d", ratio=ratio, normalize=normalize),
                {"y": ac.bilinear_kernel_2D(ratio, normalize).eval()},
            )
    for ratio, use_1d in [(1, True), (2, True), (2, False), (3, True), (4, False), (5, True)]:
        res = run(lambda x: ac.bilinear_upsampling(x, ratio=ratio, use_1D_kernel=use_1d), [(1, 2, 3, 4)])
        yield dict(kind="bilinear", ratio=ratio, use_1D_kernel=use_1d), res
    for frac in [(3, 2), (5, 3), ((3, 2), (5, 2)), (4, 3), (2, 3), (7, 4), (1, 2), (6, 4), ((2, 1), (1, 3))]:
        res = run(lambda x: ac.frac_bilinear_upsampling(x, frac_ratio=frac), [(1, 2, 3, 4)])
        yield dict(kind="frac_bilinear", frac_ratio=frac), res


def conv3d2d_cases():
    for bm in ("valid", "full", "half"):
        res = run(lambda s, f: conv3d2d.conv3d(s, f, border_mode=bm), [(1, 4, 2, 4, 4), (2, 2, 2, 3, 2)])
        yield dict(kind="conv3d2d", border_mode=bm), res


def old_conv2d_cases():
    for bm, sub in itertools.product(("valid", "full"), ((1, 1), (2, 1), (1, 3))):
        # the old ConvOp has no gradient with strides ("call conv2d() instead")
        res = run(
            lambda x, w: oldconv.conv2d(x, w, border_mode=bm, subsample=sub),
            [(1, 2, 5, 6), (3, 2, 3, 2)],
            grad=sub == (1, 1),
        )
        yield dict(kind="old_conv2d", border_mode=bm, subsample=sub), res


def debug_method_cases():
    op = ac.AbstractConv2d()
    for mode, dil in itertools.product(("valid", "full"), (1, (2, 1))):
        img, kern = RNG.standard_normal((2, 3, 6, 5)), RNG.standard_normal((4, 3, 2, 2))
        yield (
            dict(kind="method_conv", mode=mode, dilation=dil),
            {"in0": img, "in1": kern, "y": op.conv(img, kern, mode=mode, dilation=dil)},
        )
    img = RNG.standard_normal((2, 2, 6, 5))
    kern = RNG.standard_normal((3, 4, 4, 2, 3, 2))  # public layout (out, oh, ow, in, kh, kw)
    y = op.conv(img, kern.transpose(0, 3, 1, 2, 4, 5), mode="valid", unshared=True)  # legacy internal layout
    yield dict(kind="method_conv_unshared"), {"in0": img, "in1": kern, "y": y}
    inp, k4 = RNG.standard_normal((6, 5)), RNG.standard_normal((4, 4, 3, 2))
    top = RNG.standard_normal((4, 4))
    yield (
        dict(kind="method_unshared2d", direction="forward", out_shape=(4, 4)),
        {"in0": inp, "in1": k4, "y": op.unshared2d(inp, k4, (4, 4))},
    )
    yield (
        dict(kind="method_unshared2d", direction="backprop inputs", out_shape=(6, 5)),
        {"in0": top, "in1": k4, "y": op.unshared2d(top, k4, (6, 5), direction="backprop inputs")},
    )
    yield (
        dict(kind="method_unshared2d", direction="backprop weights", out_shape=(4, 4, 3, 2)),
        {"in0": inp, "in1": top, "y": op.unshared2d(inp, top, (4, 4, 3, 2), direction="backprop weights")},
    )
    yield (
        dict(kind="method_flops", inp=[(2, 3, 6, 5), (4, 3, 2, 2)], outp=[(2, 4, 5, 4)]),
        {"y": np.array(op.flops([(2, 3, 6, 5), (4, 3, 2, 2)], [(2, 4, 5, 4)]))},
    )


def main():
    arrays, meta = {}, []
    generators = [
        transposed_cases,
        transposed3d_cases,
        unshared_cases,
        causal_cases,
        separable_cases,
        bilinear_cases,
        conv3d2d_cases,
        old_conv2d_cases,
        debug_method_cases,
    ]
    for gen in generators:
        for case, res in gen():
            i = len(meta)
            for k, v in res.items():
                arrays[f"{i}_{k}"] = np.asarray(v)
            meta.append(case)
    arrays["meta"] = np.array(json.dumps(meta))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conv_extra_golden.npz")
    np.savez_compressed(out, **arrays)
    print("wrote", out, len(meta), "cases,", os.path.getsize(out) // 1024, "KB")


main()
