"""Which algorithm computes a correlation, per problem and direction.

The entry points of ``kernels.corr`` call :func:`choose` (so ``perform`` and the Numba
dispatch pick alike). The algorithms, and the rule, tried in this order:

- ``"direct"`` (``kernels.direct``), every direction: filters with one input channel per
  group and more than one group (depthwise). im2col + GEMM would be ``groups`` matrix-vector
  products over a ``taps``-times inflated buffer.
- ``"winograd"`` (``kernels.winograd``, F(2x2, 3x3)), every direction: a 3x3 window over
  the last two axes (kernel depth 1, no depth padding), stride 1, no dilation, paddings in
  [0, 2], at least ``WINOGRAD_MIN_CHANNELS`` input and output channels per group and
  ``WINOGRAD_MIN_POSITIONS`` output positions per plane. It does 2.25x fewer
  multiplies than the GEMM; below those sizes its transforms cost more than that saves.
- ``"gemm"`` (im2col + GEMM, ``kernels.corr``) otherwise; it handles every problem.

An algorithm can be excluded by name: the ``excluded`` bit mask of the ``kernels.corr`` entry
points, built by :func:`excluded_mask` from a list of names or, by default, from the
environment variable ``PYTENSOR_NNET_CONV_EXCLUDE`` (comma-separated names, e.g.
``winograd`` or ``winograd,direct``). ``perform`` reads the variable on each call; a Numba
function reads it when it is compiled (the mask is part of its cache key).
"""

from __future__ import annotations

import os

import numba

GEMM, DIRECT, WINOGRAD = 0, 1, 2
#: Algorithm names, indexed by their codes.
NAMES = ("gemm", "direct", "winograd")
FORWARD, GRAD_INPUTS, GRAD_WEIGHTS = 0, 1, 2
EXCLUDE_VAR = "PYTENSOR_NNET_CONV_EXCLUDE"

WINOGRAD_MIN_CHANNELS = 16
WINOGRAD_MIN_POSITIONS = 64


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


@numba.njit(cache=True)
def _allowed(code, excluded):
    return (excluded >> code) & 1 == 0


@numba.njit(cache=True)
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


@numba.njit(cache=True)
def choose(direction, Cg, Mg, groups, ksize, stride, pad_lo, pad_hi, dilation, out, excluded):
    """Code of the algorithm for a correlation with ``Cg`` input and ``Mg`` output channels per
    group, in ``direction`` (``FORWARD``, ``GRAD_INPUTS`` or ``GRAD_WEIGHTS``); ``out`` is the
    output size, ``excluded`` a mask of :func:`excluded_mask`."""
    if Cg == 1 and groups > 1 and _allowed(DIRECT, excluded):
        return DIRECT
    if _allowed(WINOGRAD, excluded) and winograd_applies(Cg, Mg, ksize, stride, pad_lo, pad_hi, dilation, out):
        return WINOGRAD
    return GEMM


def algorithm_name(direction, Cg, Mg, groups, ksize, stride, pad_lo, pad_hi, dilation, out, excluded=None):
    """Name of the algorithm :func:`choose` picks (``excluded``: names, default the variable)."""
    mask = excluded_mask(excluded)
    return NAMES[choose(direction, Cg, Mg, groups, ksize, stride, pad_lo, pad_hi, dilation, out, mask)]
