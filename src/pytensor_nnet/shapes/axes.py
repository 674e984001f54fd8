"""Per-axis arguments: an int, or one entry per spatial axis, brought to a tuple.

:func:`per_axis` is the one normaliser of every per-axis argument (strides, dilations,
kernel and window sizes, ...). Its error messages are the caller's: an :class:`AxisWording`
holds them (``str.format`` templates over ``name``, ``ndim``, ``minimum`` and ``value``).
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np


def is_int(value) -> bool:
    """True for a concrete integer (Python or numpy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class AxisWording(NamedTuple):
    """The messages of :func:`per_axis`; ``None`` skips the corresponding check.

    ``not_sequence``: ``value`` is neither an int nor a sequence (``None``: any scalar is
    repeated on every axis); ``length``: the sequence has the wrong length; ``not_int``: an entry
    is not an int (``None``: entries are kept as given, e.g. symbolic sizes); ``too_small``: an
    entry is below ``minimum``. ``type_error`` raises ``TypeError`` (not ``ValueError``) for the
    first two kinds of entry problems (``not_sequence``, ``not_int``); ``show_given`` formats
    ``value`` as the caller gave it rather than as a tuple.
    """

    not_sequence: str | None = "{name} must be an int or a sequence of {ndim} ints; got {value!r}"
    length: str | None = "{name} must have {ndim} entries (one per spatial axis); got {value!r}"
    not_int: str | None = "{name} entries must be ints; got {value!r}"
    too_small: str | None = "{name} entries must be >= {minimum}; got {value!r}"
    type_error: bool = False
    show_given: bool = False


#: Spatial-axis arguments of the numpy toolkit (``im2col``, ``col2im``, ...).
SPATIAL = AxisWording()
#: Strides and dilations of the convolution Ops.
CONV_OP = AxisWording(
    not_sequence=None,
    length="{name} must have {ndim} entries (one per spatial dimension); got {value!r}",
    not_int="{name} entries must be positive ints; got {value!r}",
    too_small="{name} entries must be positive ints; got {value!r}",
)


def _one_message(template):
    """A wording that says ``template`` for every problem of a sequence (scalars are repeated)."""
    return AxisWording(not_sequence=None, length=template, not_int=template, too_small=template)


#: Strides and dilations of the transposed convolutions.
TRANSPOSE = _one_message("{name} must be {ndim} positive ints; got {value!r}")
#: Dilations of the numpy reference convolution.
REFERENCE = _one_message("{name} must be a positive int or {ndim} positive ints; got {value!r}")
#: Sizes of the sparse convolution and pooling (any number of entries).
SPARSE = AxisWording(
    not_sequence="{name} must be a tuple of ints; got {value!r}",
    length=None,
    not_int="{name} must be a tuple of ints; got {value!r}",
    too_small="{name} entries must be positive; got {value!r}",
    type_error=True,
    show_given=True,
)
#: Sizes of the shape arithmetic, which may be symbolic (no entry checks).
SYMBOLIC = AxisWording(
    not_sequence=None, length="{name} must have {ndim} entries; got {value!r}", not_int=None, too_small=None
)


def per_axis(value, ndim, name, *, default=None, minimum=1, wording=SPATIAL):
    """``value`` as a tuple of ``ndim`` per-axis entries.

    Parameters
    ----------
    value : int, sequence of ``ndim`` entries, or None
        An int stands for the same value on every axis; ``None`` for ``default``.
    ndim : int or None
        Number of axes; ``None`` accepts any length (a bare int is then one axis).
    name : str
        The argument's name in error messages.
    default : int, optional
        The value of ``None`` (``None``: ``None`` is not accepted).
    minimum : int
        Smallest accepted entry (checked unless ``wording.too_small`` is ``None``).
    wording : AxisWording
        The error messages.

    Returns
    -------
    tuple
        ``ndim`` Python ints (or, with ``wording.not_int`` ``None``, the entries as given).

    Raises
    ------
    ValueError, TypeError
        With the message of ``wording`` for the first problem found.
    """
    given = value
    if value is None and default is not None:
        value = default
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if is_int(value):
        value = (value,) * (1 if ndim is None else ndim)
    try:
        value = tuple(value)
    except TypeError:
        if wording.not_sequence is not None:
            error = TypeError if wording.type_error else ValueError
            raise error(_text(wording.not_sequence, name, ndim, minimum, given)) from None
        value = (value,) * (1 if ndim is None else ndim)

    def fail(template, error=ValueError):
        shown = given if wording.show_given else value
        raise error(_text(template, name, ndim, minimum, shown))

    if ndim is not None and wording.length is not None and len(value) != ndim:
        fail(wording.length)
    if wording.not_int is None:
        return value
    for v in value:
        if not is_int(v):
            fail(wording.not_int, TypeError if wording.type_error else ValueError)
        if wording.too_small is not None and v < minimum:
            fail(wording.too_small)
    return tuple(int(v) for v in value)


def _text(template, name, ndim, minimum, value):
    return template.format(name=name, ndim=ndim, minimum=minimum, value=value)
