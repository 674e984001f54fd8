"""Pooling geometry on ints: the argument checks and output sizes of the legacy ``signal.pool``.

Per pooled axis of size ``n``, with window ``ws``, ``stride`` and ``pad`` (the same on both
sides):

- output size (:func:`pool_output_size`): ``max(0, (n + 2 * pad - ws) // stride + 1)`` when
  ``ignore_border`` (a window larger than the padded input gives an empty output, as in the
  legacy API); otherwise (no padding allowed) ``(n - 1) // stride + 1`` if
  ``stride >= ws``, else ``max(0, (n - 1 - ws + stride) // stride) + 1`` - the last window
  may stick out of the input, and it is cut at the input's end;
- as explicit padding (:func:`pool_pad_pairs`): ``pad`` before, and after it ``pad`` plus
  the part of the last window that sticks out of the input (``ignore_border=False``).

The Ops, the numpy pooling layers, the backends' functions and the compiled kernels all ask
these functions.
"""

from __future__ import annotations

from numba.extending import register_jitable

__all__ = ["check_pool_args", "pool_output_size", "pool_pad_pairs"]


def check_pool_args(in_spatial, ws, stride, pad, ignore_border):
    """Check a pooling geometry; ``ValueError`` naming the argument and the values.

    ``in_spatial``, ``ws``, ``stride``, ``pad`` are per-axis tuples; entries may be ``None``
    (unknown when the graph is built), which skips the checks that need them.
    """
    for name, values, minimum in (("ws", ws, 1), ("stride", stride, 1), ("pad", pad, 0)):
        if any(v is not None and v < minimum for v in values):
            raise ValueError(f"{name} entries must be >= {minimum}; got {name}={tuple(values)}")
    for w, p in zip(ws, pad):
        if w is not None and p is not None and p >= w:
            raise ValueError(f"pad must be smaller than ws on every axis; got pad={tuple(pad)}, ws={tuple(ws)}")
    if not ignore_border and any(p is not None and p > 0 for p in pad):
        raise ValueError(f"pad={tuple(pad)} requires ignore_border=True (as in the legacy API)")


@register_jitable
def pool_output_size(n, ws, stride, pad, ignore_border):
    """Legacy output size of one pooled axis of size ``n`` (see the module docstring).

    Works on ints, also compiled (the pooling kernels call it).
    """
    if ignore_border:
        return max(0, (n + 2 * pad - ws) // stride + 1)
    if stride >= ws:
        return (n - 1) // stride + 1
    return max(0, (n - 1 - ws + stride) // stride) + 1


@register_jitable
def window_divisor(o, n, ws, stride, pad, include_pad):
    """Legacy divisor of output index ``o`` on one axis of size ``n``: the window's size in the
    padded input (``include_pad``, ``average_inc_pad``) or its number of input elements
    (``average_exc_pad``). Plain Python (for the graph-side and traced backends) and Numba."""
    start = o * stride - pad
    end = min(start + ws, n + pad)
    if include_pad:
        return end - start
    return min(end, n) - max(start, 0)


def pool_pad_pairs(in_spatial, ws, stride, pad, ignore_border):
    """Per axis, the ``(before, after)`` padding that makes every window of the pooling whole.

    ``before`` is ``pad``; ``after`` is ``pad`` plus what the last window, cut at the input's
    end with ``ignore_border=False``, sticks out. Returns a tuple of ``len(in_spatial)`` pairs.
    """
    pairs = []
    for n, k, s, p in zip(in_spatial, ws, stride, pad):
        out = pool_output_size(n, k, s, p, ignore_border)
        pairs.append((p, p + max(0, (out - 1) * s + k - (n + 2 * p))))
    return tuple(pairs)
