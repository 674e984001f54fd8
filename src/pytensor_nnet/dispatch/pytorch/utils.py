"""Helpers shared by the PyTorch registrations: error messages, geometry inputs, window taps."""

from __future__ import annotations

import itertools

import numpy as np
from pytensor.graph.basic import Constant

#: Backends in which every Op of the package runs (named in the PyTorch backend's errors).
ALL_BACKENDS = "Numba (the default), C/Python, JAX"
#: Backends of the Ops whose output sizes depend on input values.
CPU_BACKENDS = "Numba (the default), C/Python"


def unsupported(op, what, backends=ALL_BACKENDS):
    """The ``NotImplementedError`` of an Op (or one of its options) PyTorch cannot run."""
    return NotImplementedError(
        f"{op}: the PyTorch backend (mode='PYTORCH') does not support {what}; backends that do: {backends}"
    )


def constant_ints(node, index):
    """The int vector input ``node.inputs[index]`` as a tuple of ints, or None if not a constant."""
    var = node.inputs[index]
    if isinstance(var, Constant):
        return tuple(int(v) for v in np.asarray(var.data).ravel())
    return None


def as_ints(value):
    """A run-time int vector (tensor, array, sequence of 0-d tensors) as a tuple of Python ints.

    Reading tensor values makes ``torch.compile`` break the graph there; the registrations use
    it only when a shape or geometry input is neither a constant nor implied by static shapes.
    """
    if hasattr(value, "tolist"):  # a tensor or an array (a copy to the host for a GPU tensor)
        value = value.tolist()
    if not isinstance(value, list | tuple):
        return (int(value),)
    return tuple(int(v) for v in value)


def flat_pad(pairs):
    """``torch.nn.functional.pad`` argument of per-axis ``(before, after)`` pairs (last axis first)."""
    return tuple(p for pair in reversed(pairs) for p in pair)


def window_taps(kernel, dilation, stride, out):
    """``(tap, index)`` for each tap of a sliding window in row-major order: ``index`` selects,
    from a padded array (any leading axes), the input element under that tap for every output
    position (strided slices over the trailing ``len(kernel)`` axes)."""
    for tap in itertools.product(*(range(k) for k in kernel)):
        yield (
            tap,
            (Ellipsis,)
            + tuple(slice(t * d, t * d + s * (o - 1) + 1, s) for t, d, s, o in zip(tap, dilation, stride, out)),
        )


def unfold_windows(x, kernel, stride, dilation):
    """Strided view ``(*lead, *out, *kernel)`` of the windows over the trailing ``len(kernel)``
    axes of ``x`` (already padded); no copy."""
    nd = len(kernel)
    first = x.ndim - nd
    for i, (k, s, d) in enumerate(zip(kernel, stride, dilation)):
        x = x.unfold(first + i, (k - 1) * d + 1, s)
    if any(d > 1 for d in dilation):
        x = x[(Ellipsis,) + tuple(slice(None, None, d) for d in dilation)]
    return x


def fold_windows(windows, padded_spatial, stride, dilation):
    """Adjoint of :func:`unfold_windows`: add the windows ``(*lead, *out, *kernel)`` back into
    a zero array ``(*lead, *padded_spatial)`` (overlapping windows accumulate)."""
    nd = len(padded_spatial)
    kernel = tuple(windows.shape[windows.ndim - nd :])
    out = tuple(windows.shape[windows.ndim - 2 * nd : windows.ndim - nd])
    lead = tuple(windows.shape[: windows.ndim - 2 * nd])
    result = windows.new_zeros(lead + tuple(padded_spatial))
    for tap, index in window_taps(kernel, dilation, stride, out):
        result[index] += windows[(Ellipsis,) + tap]
    return result


def crop(x, pairs):
    """``x`` without the per-axis ``(before, after)`` padding of its trailing axes."""
    nd = len(pairs)
    spatial = x.shape[x.ndim - nd :]
    return x[(Ellipsis,) + tuple(slice(lo, n - hi) for (lo, hi), n in zip(pairs, spatial))]
