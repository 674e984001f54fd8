"""Legacy ``conv3d2d.conv3d``: 3d convolution of movies in (batch, time, channel, row, col) layout.

The legacy op convolved with 2d convolutions over diagonal views of the time axis; here it is
one call to the N-d core (a layout change on each side), with the same results, gradients
and backends as :func:`pytensor_nnet.conv3d`.
"""

from __future__ import annotations

import pytensor.tensor as pt

from pytensor_nnet.conv.api import conv_nd

_TO_NCDHW = (0, 2, 1, 3, 4)  # (N, T, C, H, W) <-> (N, C, T, H, W): its own inverse


def _reorder(shape, name):
    if shape is None:
        return None
    shape = tuple(shape)
    if len(shape) != 5:
        raise ValueError(f"{name} must have 5 entries (batch, time, channel, row, col); got {shape!r}")
    return tuple(shape[i] for i in _TO_NCDHW)


def conv3d(signals, filters, signals_shape=None, filters_shape=None, border_mode="valid"):
    """Convolve spatio-temporal filters with a movie (the filters are flipped: a true convolution).

    Parameters
    ----------
    signals : 5-d tensor (batch, time, in_channels, rows, cols)
    filters : 5-d tensor (out_channels, filter_time, in_channels, filter_rows, filter_cols)
    signals_shape, filters_shape : tuple of 5, optional
        Static shape hints in the same layouts.
    border_mode : {"valid", "full", "half"}
        Applied to the time, row and column axes alike.

    Returns
    -------
    5-d tensor (batch, out_time, out_channels, out_rows, out_cols)
    """
    if border_mode not in ("valid", "full", "half"):
        raise ValueError(f"border_mode must be 'valid', 'full' or 'half'; got {border_mode!r}")
    signals, filters = pt.as_tensor_variable(signals), pt.as_tensor_variable(filters)
    for var, name in ((signals, "signals"), (filters, "filters")):
        if var.ndim != 5:
            raise ValueError(f"{name} must be a 5-d tensor (batch, time, channel, row, col); got {var.ndim}-d")
    s_channels, f_channels = signals.type.shape[2], filters.type.shape[2]
    if s_channels is not None and f_channels is not None and s_channels != f_channels:
        raise ValueError(
            f"signals channels (signals.shape[2] = {s_channels}) must equal filters channels "
            f"(filters.shape[2] = {f_channels})"
        )
    out = conv_nd(
        signals.dimshuffle(_TO_NCDHW),
        filters.dimshuffle(_TO_NCDHW),
        3,
        _reorder(signals_shape, "signals_shape"),
        _reorder(filters_shape, "filters_shape"),
        border_mode,
        filter_flip=True,
    )
    return out.dimshuffle(_TO_NCDHW)
