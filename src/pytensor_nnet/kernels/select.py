"""Which algorithm computes a correlation, per problem and direction.

The entry points of ``kernels.corr`` call :func:`choose` (so ``perform`` and the Numba
dispatch pick alike). The algorithms, and the rule, tried in this order:

- ``"direct"`` (``kernels.direct``): filters with one input channel per group and more than
  one group (depthwise), every direction: im2col + GEMM would be ``groups`` matrix-vector
  products over a ``taps``-times inflated buffer. And single-channel images (one group) with
  small filter banks: ``filters * taps`` at most ``DIRECT_MAX_FILTER_TAPS[direction]`` (the
  forward pass and the filter gradient; the input gradient of a network's first layer is
  rarely wanted, and there the two were even). There the GEMM is thin (``filters x taps``
  times ``taps x positions``) and the BLAS runs far from its peak; with many filters or taps
  it is ahead again (measured per shape in ``docs/conv_algorithms.md``).
- ``"direct_rows"`` (``kernels.direct``), the forward pass of a ``"direct"`` problem whose
  filter is three columns wide (at most three rows, one depth tap) at stride 1, with as many
  output as input columns (``pad = dilation`` on both sides of the last axis): the usual 3x3
  ``half`` depthwise layer. It runs on the input's own rows, with no padded copy
  (:func:`direct_rows_applies`). Excluding ``"direct"`` excludes it too.
- ``"winograd"`` (``kernels.winograd``), every direction: a 3x3 window over
  the last two axes (kernel depth 1, no depth padding), stride 1, no dilation, paddings in
  [0, 2], at least ``WINOGRAD_MIN_CHANNELS`` input and output channels per group and
  ``WINOGRAD_MIN_POSITIONS`` output positions per plane. F(2x2, 3x3) does 2.25x fewer
  multiplies than the GEMM; below those sizes its transforms cost more than that saves. The
  forward pass and the input gradient run F(4x4, 3x3) (4x fewer) on planes whose computed
  side (the output's, or the input gradient's) is at least ``WINOGRAD_LARGE_TILE_MIN_SIDE``
  points both ways (:func:`winograd_tile`); the name ``"winograd4x4"`` excludes it (the
  filter gradient always runs F(2x2, 3x3)).
- ``"pointwise"`` (``kernels.corr``), every direction: a 1x1 filter (one tap per axis) at
  stride 1 with no padding (:func:`pointwise_applies`). The GEMMs run on the images' own
  planes, with no im2col buffer, all images in one batched BLAS call
  (``kernels.gemm_batch``). Its own algorithm rather than a branch of ``"gemm"``: the GEMM
  entry points of the Numba dispatch then compile none of its code.
- ``"gemm"`` (im2col + GEMM, ``kernels.corr``) otherwise; it handles every problem.

Before choosing, a strided problem whose dilation is a multiple of its stride on every strided
axis (or whose kernel has one tap there) becomes a stride-1 problem (:func:`plan`): its taps
read only the input points of one phase of the stride (``stride * i + dilation * t - pad``
is ``-pad`` modulo the stride), so it is the correlation of those points (a contiguous copy,
``size`` per axis) with dilation ``dilation // stride`` and padding ``ceil(pad / stride)``,
the same output, and the gradient wrt the inputs is zero off that phase. A 1x1 convolution
with stride 2 (ResNet's shortcut) becomes a ``"pointwise"`` one, a stride-2 3x3 one with dilation 2 a
Winograd one. It can be excluded by the name ``"subsample"``.

An algorithm can be excluded by name: the ``excluded`` bit mask of the ``kernels.corr`` entry
points, built by :func:`excluded_mask` from a list of names or, by default, from the
environment variable ``PYTENSOR_NNET_CONV_EXCLUDE`` (comma-separated names, e.g.
``winograd`` or ``winograd,direct``). ``perform`` reads the variable on each call; a Numba
function reads it when it is compiled (the mask is part of its cache key).
"""

from __future__ import annotations

import os

import numba
import numpy as np
from numba.extending import register_jitable

from pytensor_nnet.kernels.winograd import LARGE_TILE, SMALL_TILE

GEMM, DIRECT, WINOGRAD, DIRECT_ROWS, POINTWISE, SUBSAMPLE, WINOGRAD_LARGE_TILES = 0, 1, 2, 3, 4, 5, 6
#: The algorithms of the kernel entry points, by code, and "whichever the plan picks".
ALGORITHMS = (GEMM, DIRECT, WINOGRAD, DIRECT_ROWS, POINTWISE)
ANY = -1
#: Algorithm names, indexed by their codes; the last two name the strided reduction of
#: :func:`strided_reduction` and Winograd's large tiles (:func:`winograd_tile`), which can be
#: excluded like an algorithm.
NAMES = ("gemm", "direct", "winograd", "direct_rows", "pointwise", "subsample", "winograd4x4")
FORWARD, GRAD_INPUTS, GRAD_WEIGHTS = 0, 1, 2
DIRECTION_NAMES = ("forward", "grad_inputs", "grad_weights")
EXCLUDE_VAR = "PYTENSOR_NNET_CONV_EXCLUDE"

#: Per direction (forward, input gradient, filter gradient): the largest ``filters * taps`` of
#: a single-channel, single-group problem that goes to the direct kernel (see the module doc).
DIRECT_MAX_FILTER_TAPS = (512, 0, 1024)
WINOGRAD_MIN_CHANNELS = 16
WINOGRAD_MIN_POSITIONS = 64
#: The smallest output plane side on which Winograd runs F(4x4, 3x3) (see :func:`winograd_tile`).
WINOGRAD_LARGE_TILE_MIN_SIDE = 16


def excluded_mask(names=None) -> int:
    """Bit mask (bit ``code``) of the algorithms named in ``names`` (an iterable of names, or a
    comma-separated string; default: the ``PYTENSOR_NNET_CONV_EXCLUDE`` variable). ``"gemm"``
    cannot be excluded: it is the fallback for every problem."""
    if names is None:
        names = os.environ.get(EXCLUDE_VAR, "")
    if isinstance(names, str):
        names = [n for n in (part.strip() for part in names.split(",")) if n]
    mask = 0
    for name in names:
        if name not in NAMES:
            raise ValueError(f"unknown convolution algorithm {name!r} in {EXCLUDE_VAR}; known: {', '.join(NAMES)}")
        if name == "gemm":
            raise ValueError("the 'gemm' algorithm cannot be excluded: it is the one that handles every problem")
        mask |= 1 << NAMES.index(name)
    return mask


@register_jitable
def _allowed(code, excluded):
    return (excluded >> code) & 1 == 0


@register_jitable
def winograd_applies(Cg, Mg, ksize, stride, pad_lo, pad_hi, dilation, out):
    """Whether the Winograd rule of the module doc holds (3-tuples of ints)."""
    if ksize[0] != 1 or ksize[1] != 3 or ksize[2] != 3 or pad_lo[0] != 0 or pad_hi[0] != 0:
        return False
    for i in range(3):
        if stride[i] != 1 or dilation[i] != 1:
            return False
    for i in range(1, 3):
        if pad_lo[i] < 0 or pad_lo[i] > 2 or pad_hi[i] < 0 or pad_hi[i] > 2:
            return False
    return Cg >= WINOGRAD_MIN_CHANNELS and Mg >= WINOGRAD_MIN_CHANNELS and out[1] * out[2] >= WINOGRAD_MIN_POSITIONS


@register_jitable
def winograd_tile(out_h, out_w, excluded):
    """The output tile side of a Winograd correlation computing planes of ``out_h`` x ``out_w``
    points: ``LARGE_TILE`` (4, F(4x4, 3x3)) when both are at least
    ``WINOGRAD_LARGE_TILE_MIN_SIDE`` and ``"winograd4x4"`` is not excluded, else ``SMALL_TILE``
    (2, F(2x2, 3x3)). On smaller planes the larger
    tiles' transforms and the points they compute past the edge cost more than their fewer
    multiplies save."""
    if not _allowed(WINOGRAD_LARGE_TILES, excluded):
        return SMALL_TILE
    if out_h >= WINOGRAD_LARGE_TILE_MIN_SIDE and out_w >= WINOGRAD_LARGE_TILE_MIN_SIDE:
        return LARGE_TILE
    return SMALL_TILE


@register_jitable
def direct_rows_applies(ksize, stride, pad_lo, pad_hi, dilation, out):
    """Whether a direct forward pass can run on the input's own rows (``"direct_rows"``, see
    the module doc): the output then has the input's width, and a column tap shifts by less
    than a row."""
    if ksize[0] != 1 or ksize[1] > 3 or ksize[2] != 3:
        return False
    if stride[0] != 1 or stride[1] != 1 or stride[2] != 1:
        return False
    return pad_lo[2] == dilation[2] and pad_hi[2] == dilation[2] and dilation[2] < out[2]


@register_jitable
def pointwise_applies(ksize, stride, pad_lo, pad_hi):
    """Whether a correlation is a GEMM of the filters with each image's own planes
    (``"pointwise"``): one tap, stride 1 and no padding on every axis."""
    for i in range(3):
        if ksize[i] != 1 or stride[i] != 1 or pad_lo[i] != 0 or pad_hi[i] != 0:
            return False
    return True


@register_jitable
def choose(direction, Cg, Mg, groups, ksize, stride, pad_lo, pad_hi, dilation, out, excluded):
    """Code of the algorithm for a correlation with ``Cg`` input and ``Mg`` output channels per
    group, in ``direction`` (``FORWARD``, ``GRAD_INPUTS`` or ``GRAD_WEIGHTS``); ``out`` is the
    output size, ``excluded`` a mask of :func:`excluded_mask`."""
    if Cg == 1 and _allowed(DIRECT, excluded):
        if groups > 1 or Mg * ksize[0] * ksize[1] * ksize[2] <= DIRECT_MAX_FILTER_TAPS[direction]:
            rows = direction == FORWARD and _allowed(DIRECT_ROWS, excluded)
            if rows and direct_rows_applies(ksize, stride, pad_lo, pad_hi, dilation, out):
                return DIRECT_ROWS
            return DIRECT
    if _allowed(WINOGRAD, excluded) and winograd_applies(Cg, Mg, ksize, stride, pad_lo, pad_hi, dilation, out):
        return WINOGRAD
    if _allowed(POINTWISE, excluded) and pointwise_applies(ksize, stride, pad_lo, pad_hi):
        return POINTWISE
    return GEMM


@register_jitable
def _axis_reduction(in_size, ksize, stride, pad_lo, dilation, out):
    """:func:`strided_reduction` on one axis: ``(fits, phase, size, pad_lo, pad_hi, dilation)``
    of the stride-1 problem (``fits`` False: it does not apply). An unstrided axis stays as it
    is, with the high padding that gives ``out``."""
    if stride == 1:
        return True, 0, in_size, pad_lo, out + dilation * (ksize - 1) - in_size - pad_lo, dilation
    if ksize != 1 and dilation % stride != 0:
        return False, 0, in_size, pad_lo, 0, dilation
    dil = dilation // stride if ksize != 1 else 1
    phase = (-pad_lo) % stride
    lo = (pad_lo + phase) // stride
    size = (in_size - phase + stride - 1) // stride
    hi = out + dil * (ksize - 1) - size - lo
    if hi < 0:  # the last points are never read
        size += hi
        hi = 0
    return size >= 1 and lo >= 0, phase, size, lo, hi, dil


@register_jitable
def strided_reduction(in_size, ksize, stride, pad_lo, dilation, out, enabled=True):
    """The stride-1 problem of a strided one (see the module doc), per axis of the 3-tuples:
    ``(applies, phase, size, stride, pad_lo, pad_hi, dilation)``: the input points
    ``phase + stride * j`` for ``j < size`` correlated with stride 1 and the returned padding
    and dilation give the same ``out``. When it does not apply (no stride, or a dilation that
    is not a multiple of it, or not ``enabled``), the problem comes back as it is (``pad_hi``
    then unused).

    Per axis and without lists: Numba's list code took 1-2 s of the plan's compile."""
    axes = (
        _axis_reduction(in_size[0], ksize[0], stride[0], pad_lo[0], dilation[0], out[0]),
        _axis_reduction(in_size[1], ksize[1], stride[1], pad_lo[1], dilation[1], out[1]),
        _axis_reduction(in_size[2], ksize[2], stride[2], pad_lo[2], dilation[2], out[2]),
    )
    strided = stride[0] != 1 or stride[1] != 1 or stride[2] != 1
    fits = axes[0][0] and axes[1][0] and axes[2][0]
    hi = (np.int64(axes[0][4]), np.int64(axes[1][4]), np.int64(axes[2][4]))
    if not (strided and fits and enabled):
        return (
            False,
            (np.int64(axes[0][1]), np.int64(axes[1][1]), np.int64(axes[2][1])),
            (np.int64(in_size[0]), np.int64(in_size[1]), np.int64(in_size[2])),
            (np.int64(stride[0]), np.int64(stride[1]), np.int64(stride[2])),
            (np.int64(pad_lo[0]), np.int64(pad_lo[1]), np.int64(pad_lo[2])),
            hi,
            (np.int64(dilation[0]), np.int64(dilation[1]), np.int64(dilation[2])),
        )
    one = np.int64(1)
    return (
        True,
        (np.int64(axes[0][1]), np.int64(axes[1][1]), np.int64(axes[2][1])),
        (np.int64(axes[0][2]), np.int64(axes[1][2]), np.int64(axes[2][2])),
        (one, one, one),
        (np.int64(axes[0][3]), np.int64(axes[1][3]), np.int64(axes[2][3])),
        hi,
        (np.int64(axes[0][5]), np.int64(axes[1][5]), np.int64(axes[2][5])),
    )


@register_jitable
def plan_rule(direction, in_size, Cg, Mg, groups, ksize, stride, pad_lo, pad_hi, dilation, out, excluded):
    """:func:`strided_reduction` (when it applies), then :func:`choose` on the result:
    ``(algorithm, reduced, phase, size, stride, pad_lo, pad_hi, dilation)``; without the
    reduction the geometry is returned as given.

    A Python function (the rules of this module are ``register_jitable``): a graph's build
    runs it on ints to predict the plan without compiling anything. Compiled code calls
    :data:`plan`, the same function compiled once and cached on disk."""
    enabled = _allowed(SUBSAMPLE, excluded)
    reduced, phase, size, st, lo, hi, dil = strided_reduction(in_size, ksize, stride, pad_lo, dilation, out, enabled)
    if not reduced:
        lo = (np.int64(pad_lo[0]), np.int64(pad_lo[1]), np.int64(pad_lo[2]))
        hi = (np.int64(pad_hi[0]), np.int64(pad_hi[1]), np.int64(pad_hi[2]))
    algorithm = choose(direction, Cg, Mg, groups, ksize, st, lo, hi, dil, out, excluded)
    return algorithm, reduced, phase, size, st, lo, hi, dil


#: :func:`plan_rule` compiled (on-disk cache), for the kernels.
plan = numba.njit(cache=True)(plan_rule)


def algorithm_name(
    direction, Cg, Mg, groups, ksize, stride, pad_lo, pad_hi, dilation, out, excluded=None, in_size=None
):
    """Name of the algorithm :func:`choose` picks (``excluded``: names, default the variable).
    With the input's size ``in_size``, for the problem after :func:`strided_reduction`
    (``"subsampled "`` before the name when it applies)."""
    mask = excluded_mask(excluded)
    if in_size is None:
        return NAMES[choose(direction, Cg, Mg, groups, ksize, stride, pad_lo, pad_hi, dilation, out, mask)]
    algorithm, reduced = plan_rule(
        direction, in_size, Cg, Mg, groups, ksize, stride, pad_lo, pad_hi, dilation, out, mask
    )[:2]
    return ("subsampled " if reduced else "") + NAMES[algorithm]
