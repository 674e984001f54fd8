"""Image neighbourhoods (patches) as matrix rows: the legacy ``theano.tensor.nnet.neighbours``.

Migrating is one import line: ``from theano.tensor.nnet.neighbours import images2neibs``
becomes ``from pytensor_nnet.neighbours import images2neibs``.

:func:`images2neibs` turns a 4-d tensor (batch, channels, rows, cols) into a matrix with one
neighbourhood per row, in the order (batch, channel, neighbourhood row, neighbourhood col),
each flattened in row-major order. :func:`neibs2images` is its inverse for non-overlapping
neighbourhoods. Modes:

==================  ==========================================================================
``valid``           windows of ``neib_shape`` every ``neib_step``; the windows must tile the
                    image exactly: ``(rows - neib_shape[0]) % neib_step[0] == 0`` (same for cols)
``ignore_borders``  as ``valid``, but the rows/cols that do not fill a last window are dropped
``half``            ``valid`` on the image zero-padded by ``neib_shape // 2`` on every side
``full``            ``valid`` on the image zero-padded by ``neib_shape - 1`` on every side
``wrap_centered``   windows (odd ``neib_shape``, at most the image size) centred on the pixels
                    ``(i * neib_step[0], j * neib_step[1])``, wrapping around the image edges
                    (a torus): ``ceil(rows / neib_step[0]) * ceil(cols / neib_step[1])`` windows
==================  ==========================================================================

A graph of PyTensor's own ops: padding (``half``/``full``, zeros; ``wrap_centered``,
concatenated edges), one strided slice per position inside the window, a stack and a
reshape. Every mode is differentiable, to any order, and runs in every backend; in Numba it
is faster than the ``Im2Col`` kernel route (one copy of the output, no transposition).
``neib_shape`` and ``neib_step`` must be known when the graph is built (ints, or constant
tensors): they fix the number of slices.

Differences from the legacy code, on purpose: gradients exist for every mode and step (the
legacy gradient covered only ``valid``/``ignore_borders`` with ``neib_step == neib_shape``);
inconsistent shapes raise ``ValueError`` (legacy: ``TypeError``), and a window larger than the
image in ``ignore_borders`` mode raises instead of returning garbage; the gradient of
:func:`neibs2images` with ``ignore_borders`` works.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable
from pytensor.tensor.basic import get_underlying_scalar_constant_value
from pytensor.tensor.exceptions import NotScalarConstantError

from pytensor_nnet.nnet import as_tensor, check_at_run_time, require_ndim

__all__ = ["images2neibs", "neibs2images"]

MODES = ("valid", "ignore_borders", "wrap_centered", "half", "full")


def _const_pair(value, name, fname):
    """``value`` (2 ints, or a constant int vector of length 2) as a tuple of 2 Python ints >= 1."""
    if isinstance(value, Variable):
        try:
            if value.ndim != 1:
                raise NotScalarConstantError
            items = tuple(int(get_underlying_scalar_constant_value(value[i])) for i in range(2))
            if value.type.shape[0] not in (2, None):
                raise ValueError(f"{fname}: {name} must have 2 entries (rows, cols); got shape {value.type.shape}")
        except NotScalarConstantError:
            raise TypeError(
                f"{fname}: {name} must be known when the graph is built (2 ints or a constant tensor); "
                f"got the symbolic {value}"
            ) from None
    else:
        items = tuple(np.asarray(value).ravel().tolist()) if np.ndim(value) else (value,)
        if len(items) != 2:
            raise ValueError(f"{fname}: {name} must have 2 entries (rows, cols); got {value!r}")
    for v in items:
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise ValueError(f"{fname}: {name} entries must be ints; got {value!r}")
        if v < 1:
            raise ValueError(f"{fname}: {name} entries must be >= 1; got {value!r}")
    return tuple(int(v) for v in items)


def _check_mode(mode, allowed, fname):
    if mode not in allowed:
        raise ValueError(f"{fname}: mode must be one of {', '.join(map(repr, allowed))}; got {mode!r}")


def _fits(x, axis, size, k, step, pad, exact, fname, mode):
    """``x`` guarded so that windows of ``k`` every ``step`` fit axis ``axis`` (padded by ``pad``
    per side); with ``exact`` they must also tile it exactly (``valid``, ``half``, ``full``)."""
    name = "rows" if axis == 2 else "cols"
    if isinstance(size, int):
        if size + 2 * pad < k:
            raise ValueError(
                f"{fname}: neib_shape {name} ({k}) larger than the {'padded ' if pad else ''}input "
                f"({size + 2 * pad} {name}) in mode {mode!r}"
            )
        if exact and (size + 2 * pad - k) % step:
            raise ValueError(
                f"{fname}: in mode {mode!r} the windows must tile the input exactly: "
                f"(ten4.shape[{axis}] + 2 * {pad} - neib_shape {k}) % neib_step {step} != 0 "
                f"(ten4.shape[{axis}] = {size}); use mode='ignore_borders' to drop the remainder"
            )
        return x
    cond = pt.ge(size + 2 * pad, k)
    if exact:
        cond = cond & pt.eq((size + 2 * pad - k) % step, 0)
    return check_at_run_time(x, cond, f"{fname}: neib_shape/neib_step do not fit ten4's {name} in mode {mode!r}")


def _wrap_pad(x, axis, p):
    """``x`` with ``p`` entries wrapped around from each end onto the other along ``axis``."""
    if p == 0:
        return x
    n = x.shape[axis]
    head = [slice(None)] * x.ndim
    tail = [slice(None)] * x.ndim
    head[axis] = slice(n - p, None)
    tail[axis] = slice(0, p)
    return pt.concatenate([x[tuple(head)], x, x[tuple(tail)]], axis=axis)


def _zero_pad(x, pads):
    """``x`` zero-padded by ``pads[0]`` rows and ``pads[1]`` cols on each side."""
    (ph, pw) = pads
    n, c, h, w = (x.shape[i] for i in range(4))
    out = pt.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    return pt.set_subtensor(out[:, :, ph : ph + h, pw : pw + w], x)


def images2neibs(ten4, neib_shape, neib_step=None, mode="valid"):
    """Neighbourhoods of images as the rows of a matrix.

    Parameters
    ----------
    ten4 : 4-d tensor (batch, channels, rows, cols)
    neib_shape : 2 ints (rows, cols) of a neighbourhood
    neib_step : 2 ints, optional
        Step between neighbourhoods; default ``neib_shape`` (non-overlapping).
    mode : ``'valid'``, ``'ignore_borders'``, ``'wrap_centered'``, ``'half'`` or ``'full'``
        (see the module docstring).

    Returns
    -------
    matrix (batch * channels * n_rows * n_cols, neib_shape[0] * neib_shape[1]), dtype of
    ``ten4``: row ``((b * channels + c) * n_rows + i) * n_cols + j`` is neighbourhood ``(i, j)``
    of image ``(b, c)``, flattened row by row.
    """
    fname = "images2neibs"
    _check_mode(mode, MODES, fname)
    x = as_tensor(ten4, "ten4", fname)
    require_ndim(x, 4, "ten4", fname, "4-d (batch, channels, rows, cols)")
    k = _const_pair(neib_shape, "neib_shape", fname)
    s = k if neib_step is None else _const_pair(neib_step, "neib_step", fname)
    if mode == "wrap_centered" and (k[0] % 2 == 0 or k[1] % 2 == 0):
        raise ValueError(f"{fname}: mode 'wrap_centered' needs odd neib_shape entries; got {k}")
    pads = {"half": (k[0] // 2, k[1] // 2), "full": (k[0] - 1, k[1] - 1)}.get(mode, (0, 0))
    exact = mode in ("valid", "half", "full")
    for axis in (2, 3):
        size = x.type.shape[axis] if x.type.shape[axis] is not None else x.shape[axis]
        x = _fits(x, axis, size, k[axis - 2], s[axis - 2], pads[axis - 2], exact, fname, mode)
    if mode == "wrap_centered":
        x = _wrap_pad(_wrap_pad(x, 2, k[0] // 2), 3, k[1] // 2)
    elif mode in ("half", "full"):
        x = _zero_pad(x, pads)
    (kh, kw), (sh, sw) = k, s
    n_rows, n_cols = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    # One strided view per position (a, b) inside the window: element (a, b) of every window.
    taps = [
        x[:, :, a : a + (n_rows - 1) * sh + 1 : sh, b : b + (n_cols - 1) * sw + 1 : sw]
        for a in range(kh)
        for b in range(kw)
    ]
    return pt.stack(taps, axis=-1).reshape((-1, kh * kw))


def neibs2images(neibs, neib_shape, original_shape, mode="valid"):
    """Images from their non-overlapping neighbourhoods: the inverse of
    ``images2neibs(ten4, neib_shape, mode=mode)`` (``neib_step == neib_shape``).

    Parameters
    ----------
    neibs : matrix (batch * channels * n_rows * n_cols, neib_shape[0] * neib_shape[1])
    neib_shape : 2 ints
    original_shape : 4 ints or an int vector (e.g. ``ten4.shape``): (batch, channels, rows, cols)
    mode : ``'valid'`` (``rows``, ``cols`` multiples of ``neib_shape``) or ``'ignore_borders'``
        (the rows/cols of the remainder are zeros)

    Returns
    -------
    4-d tensor of ``original_shape``, dtype of ``neibs``.
    """
    fname = "neibs2images"
    _check_mode(mode, ("valid", "ignore_borders"), fname)
    neibs = as_tensor(neibs, "neibs", fname)
    require_ndim(neibs, 2, "neibs", fname, "a matrix (batch * channels * n_rows * n_cols, prod(neib_shape))")
    kh, kw = _const_pair(neib_shape, "neib_shape", fname)
    shape = as_tensor(original_shape, "original_shape", fname)
    if shape.ndim != 1 or shape.type.shape[0] not in (4, None) or not shape.dtype.startswith(("int", "uint")):
        raise ValueError(
            f"{fname}: original_shape must be 4 ints (batch, channels, rows, cols); got {original_shape!r}"
        )
    n, c, h, w = (shape[i] for i in range(4))
    try:
        static = [int(get_underlying_scalar_constant_value(v)) for v in (n, c, h, w)]
    except NotScalarConstantError:
        static = None
    n_rows, n_cols = h // kh, w // kw
    if mode == "valid":
        if static is not None and (static[2] % kh or static[3] % kw):
            raise ValueError(
                f"{fname}: in mode 'valid' original_shape rows/cols {tuple(static[2:])} must be multiples of "
                f"neib_shape {(kh, kw)}; use mode='ignore_borders'"
            )
        neibs = check_at_run_time(
            neibs,
            pt.eq(h % kh, 0) & pt.eq(w % kw, 0),
            f"{fname}: in mode 'valid' the rows/cols of original_shape must be multiples of neib_shape",
        )
    if neibs.type.shape[1] is not None and neibs.type.shape[1] != kh * kw:
        raise ValueError(f"{fname}: neibs has {neibs.type.shape[1]} columns; neib_shape {(kh, kw)} needs {kh * kw}")
    neibs = check_at_run_time(
        neibs,
        pt.eq(neibs.shape[0], n * c * n_rows * n_cols) & pt.eq(neibs.shape[1], kh * kw),
        f"{fname}: neibs must have shape (batch * channels * (rows // neib_shape[0]) * "
        f"(cols // neib_shape[1]), neib_shape[0] * neib_shape[1]) for original_shape",
    )
    blocks = neibs.reshape((n, c, n_rows, n_cols, kh, kw)).dimshuffle(0, 1, 2, 4, 3, 5)
    images = blocks.reshape((n, c, n_rows * kh, n_cols * kw))
    if mode == "valid":
        return images
    out = pt.zeros((n, c, h, w), dtype=neibs.dtype)
    return pt.set_subtensor(out[:, :, : n_rows * kh, : n_cols * kw], images)
