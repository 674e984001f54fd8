"""Shape arithmetic of convolutions: pure functions on ints (or symbolic ints).

Nothing here builds an Op (except the two legacy ``assert_*`` helpers at the bottom, which
wrap variables in ``Assert`` nodes).

Conventions, as in the legacy ``abstract_conv`` module:

- an image shape is ``(batch, channels, *spatial)``, a kernel shape
  ``(out_channels, in_channels // groups, *kernel)`` (or, unshared,
  ``(out_channels, *out_spatial, in_channels // groups, *kernel)``), an output ("top")
  shape ``(batch, out_channels, *out_spatial)``;
- ``None`` stands for a size that is not known; a result that cannot be known is ``None``;
- sizes may be symbolic PyTensor scalars, in which case the results are symbolic too.

``border_mode`` accepts every legacy form: ``"valid"``, ``"full"``, ``"half"``, a
non-negative int, or a tuple with one entry per spatial axis, each entry an int (symmetric)
or a pair of ints ``(before, after)`` (asymmetric; allowed in every dimension, an extension
over the legacy 3d ops).
"""

from __future__ import annotations

import numpy as np
from numba.extending import register_jitable

from pytensor_nnet.shapes.axes import SYMBOLIC, is_int, per_axis

BORDER_MODE_STRINGS = ("valid", "full", "half")

#: Padding codes of the compiled geometry (3-tuples of ints): "full" and "half" padding of a
#: kernel whose size is not known yet; :func:`resolve_pads` turns them into sizes.
PAD_FULL = -1
PAD_HALF = -2
PAD_CODES = {"valid": 0, "full": PAD_FULL, "half": PAD_HALF}


def _is_known(value) -> bool:
    """True for a concrete (non-symbolic) integer."""
    return is_int(value)


@register_jitable
def dilated_kernel_size(kernel_size, dilation=1):
    """Extent of a kernel of ``kernel_size`` taps spaced ``dilation`` apart: ``(k - 1) * d + 1``."""
    return (kernel_size - 1) * dilation + 1


def filter_ndim(convdim, unshared=False):
    """Rank of the filters: ``(out, in/groups, *k)``, or unshared ``(out, *out_spatial, in/groups, *k)``."""
    return convdim + 2 + (convdim if unshared else 0)


def normalize_border_mode(border_mode, convdim):
    """Check ``border_mode`` and bring it to one canonical, hashable form.

    Returns ``"valid"``, ``"full"``, ``"half"``, or a tuple of ``convdim`` pairs
    ``((before, after), ...)`` of non-negative ints. ``0`` and all-zero tuples become
    ``"valid"``.

    Raises
    ------
    ValueError
        For unknown strings, negative or non-integer padding, or a tuple of the wrong length.
    """
    if isinstance(border_mode, str):
        if border_mode not in BORDER_MODE_STRINGS:
            raise ValueError(
                f"border_mode must be 'valid', 'full', 'half', an int or a tuple of "
                f"{convdim} ints or (before, after) pairs; got {border_mode!r}"
            )
        return border_mode
    if is_int(border_mode) or (isinstance(border_mode, np.integer)):
        border_mode = (int(border_mode),) * convdim
    if not isinstance(border_mode, tuple | list):
        raise ValueError(f"border_mode must be 'valid', 'full', 'half', an int or a tuple; got {border_mode!r}")
    if len(border_mode) != convdim:
        raise ValueError(f"border_mode must have one entry per spatial dimension ({convdim}); got {border_mode!r}")
    pads = []
    for entry in border_mode:
        pair = entry if isinstance(entry, tuple | list) else (entry, entry)
        if len(pair) != 2 or not all(is_int(p) or isinstance(p, np.integer) for p in pair):
            raise ValueError(f"border_mode entries must be ints or (before, after) pairs of ints; got {border_mode!r}")
        if any(p < 0 for p in pair):
            raise ValueError(f"border_mode padding must be non-negative; got {border_mode!r}")
        pads.append((int(pair[0]), int(pair[1])))
    pads = tuple(pads)
    if all(p == (0, 0) for p in pads):
        return "valid"
    return pads


@register_jitable
def resolve_pad(pad, dilated_kernel):
    """A padding size, or the code ``PAD_FULL`` / ``PAD_HALF`` resolved against the dilated
    kernel extent (``dilated_kernel - 1`` / ``dilated_kernel // 2``; may be symbolic)."""
    if pad == PAD_FULL:
        return dilated_kernel - 1
    if pad == PAD_HALF:
        return dilated_kernel // 2
    return pad


@register_jitable
def resolve_pads(pad_before, pad_after, ksize, dilation):
    """Padding sizes ``(before, after)`` (two 3-tuples) from the compiled geometry's padding
    3-tuples (sizes or codes), for kernel sizes ``ksize`` and ``dilation`` (3-tuples)."""
    lo = [0, 0, 0]
    hi = [0, 0, 0]
    for i in range(3):
        extent = dilated_kernel_size(ksize[i], dilation[i])
        lo[i] = resolve_pad(pad_before[i], extent)
        hi[i] = resolve_pad(pad_after[i], extent)
    return (lo[0], lo[1], lo[2]), (hi[0], hi[1], hi[2])


@register_jitable
def conv_output_length(size, kernel, stride, before, after, dilation=1):
    """Output size on one axis: ``(size + before + after - dilated_kernel) // stride + 1``.

    Smaller than 1 exactly when the dilated kernel is larger than the padded input. Works on
    ints (also compiled) and symbolic sizes.
    """
    return (size + before + after - dilated_kernel_size(kernel, dilation)) // stride + 1


@register_jitable
def conv_output_size_3d(in_size, ksize, stride, pad_before, pad_after, dilation):
    """Output spatial size ``(od, oh, ow)`` of a correlation (3-tuples of sizes); 0 on an axis
    where the (dilated) kernel is larger than the padded input."""
    out = [0, 0, 0]
    for i in range(3):
        out[i] = max(0, conv_output_length(in_size[i], ksize[i], stride[i], pad_before[i], pad_after[i], dilation[i]))
    return (out[0], out[1], out[2])


def border_mode_to_pad(mode, convdim, kshp):
    """Padding ``((before, after),) * convdim`` implied by ``mode`` for (dilated) kernel sizes ``kshp``.

    Parameters
    ----------
    mode : str, int or tuple
        Any legacy ``border_mode``.
    convdim : int
        Number of spatial dimensions.
    kshp : sequence of ``convdim`` ints
        Kernel extent on each spatial axis (pass the dilated extent for dilated kernels).
    """
    mode = normalize_border_mode(mode, convdim)
    if isinstance(mode, str):
        return tuple(_pad_1axis(mode, k) for k in kshp)
    return mode


def conv_padding(border_mode, kernel_shape, filter_dilation):
    """Padding ``((before, after), ...)`` (Python ints) of a convolution with ``border_mode`` for
    kernels of spatial sizes ``kernel_shape`` (ints) dilated by ``filter_dilation``."""
    dilated = [dilated_kernel_size(int(k), d) for k, d in zip(kernel_shape, filter_dilation)]
    pads = border_mode_to_pad(border_mode, len(dilated), dilated)
    return tuple((int(before), int(after)) for before, after in pads)


def _pad_1axis(border_mode, dilated_kernel):
    """(before, after) padding on one axis for a single-axis border mode."""
    if isinstance(border_mode, str):
        if border_mode in PAD_CODES:
            pad = resolve_pad(PAD_CODES[border_mode], dilated_kernel)
            return pad, pad
        raise ValueError(f"border_mode must be 'valid', 'full' or 'half'; got {border_mode!r}")
    if isinstance(border_mode, tuple | list):
        if len(border_mode) != 2:
            raise ValueError(f"an asymmetric border_mode entry must be a pair; got {border_mode!r}")
        return border_mode[0], border_mode[1]
    return border_mode, border_mode


def get_conv_shape_1axis(image_shape, kernel_shape, border_mode, subsample, dilation=1):
    """Output size on one axis: ``(image + pad_before + pad_after - dilated_kernel) // subsample + 1``.

    ``border_mode`` is ``"valid"``, ``"full"``, ``"half"``, an int or a ``(before, after)``
    pair. Returns ``None`` if any argument is ``None``; works on symbolic sizes.
    """
    if None in (image_shape, kernel_shape, border_mode, subsample, dilation):
        return None
    before, after = _pad_1axis(border_mode, dilated_kernel_size(kernel_shape, dilation))
    return conv_output_length(image_shape, kernel_shape, subsample, before, after, dilation)


def _border_mode_per_axis(border_mode, convdim):
    if isinstance(border_mode, str) or not isinstance(border_mode, tuple | list):
        return (border_mode,) * convdim
    if len(border_mode) != convdim:
        raise ValueError(f"border_mode must have {convdim} entries; got {border_mode!r}")
    return tuple(border_mode)


def _per_axis_args(subsample, filter_dilation, border_mode, convdim):
    """Per-axis ``subsample``, ``filter_dilation`` and border mode (entries may be symbolic)."""
    return (
        per_axis(subsample, convdim, "subsample", default=1, wording=SYMBOLIC),
        per_axis(filter_dilation, convdim, "filter_dilation", default=1, wording=SYMBOLIC),
        _border_mode_per_axis(border_mode, convdim),
    )


def get_conv_output_shape(image_shape, kernel_shape, border_mode, subsample, filter_dilation=None):
    """Shape ``(batch, out_channels, *out_spatial)`` of a convolution output.

    ``kernel_shape`` may be a normal ``(out, in/groups, *k)`` or an unshared
    ``(out, *out_spatial, in/groups, *k)`` kernel shape; the output shape does not depend on
    ``num_groups`` or ``unshared``. ``None`` entries propagate.
    """
    convdim = len(image_shape) - 2
    subsample, dilation, modes = _per_axis_args(subsample, filter_dilation, border_mode, convdim)
    kshp = tuple(kernel_shape[-convdim:])
    out = tuple(
        get_conv_shape_1axis(image_shape[2 + i], kshp[i], modes[i], subsample[i], dilation[i]) for i in range(convdim)
    )
    return (image_shape[0], kernel_shape[0]) + out


def get_conv_gradweights_shape_1axis(image_shape, top_shape, border_mode, subsample, dilation):
    """Kernel size on one axis from the image and output sizes.

    Only computable when ``subsample == 1`` and ``border_mode != "half"``; otherwise (or if an
    argument is ``None``) returns ``None``. Unlike the legacy function, which returned a float
    for dilated kernels, the result is an int, or ``None`` when no kernel fits exactly.
    """
    if None in (image_shape, top_shape, border_mode, subsample, dilation):
        return None
    if subsample != 1 or border_mode == "half":
        return None
    if border_mode == "full":
        dil_kernel = top_shape - image_shape + 1
    elif border_mode == "valid":
        dil_kernel = image_shape - top_shape + 1
    else:
        before, after = _pad_1axis(border_mode, 0)
        dil_kernel = image_shape + before + after - top_shape + 1
    if dilation == 1:
        return dil_kernel
    if _is_known(dil_kernel) and _is_known(dilation):
        if (dil_kernel - 1) % dilation:
            return None
    return (dil_kernel - 1) // dilation + 1


def get_conv_gradweights_shape(
    image_shape, top_shape, border_mode, subsample, filter_dilation=None, num_groups=1, unshared=False
):
    """Kernel shape ``(out, in/groups, *k)`` (or unshared ``(out, *out_spatial, in/groups, *k)``).

    Spatial entries are ``None`` where :func:`get_conv_gradweights_shape_1axis` cannot know
    them. (The legacy function mixed up the channel entries when ``num_groups > 1``; here the
    result is the shape of the filters the forward convolution takes.)
    """
    convdim = len(image_shape) - 2
    subsample, dilation, modes = _per_axis_args(subsample, filter_dilation, border_mode, convdim)
    kshp = tuple(
        get_conv_gradweights_shape_1axis(image_shape[2 + i], top_shape[2 + i], modes[i], subsample[i], dilation[i])
        for i in range(convdim)
    )
    in_channels = image_shape[1]
    in_per_group = None if in_channels is None else in_channels // num_groups
    out_channels = top_shape[1]
    if unshared:
        return (out_channels,) + tuple(top_shape[2:]) + (in_per_group,) + kshp
    return (out_channels, in_per_group) + kshp


def get_conv_gradinputs_shape_1axis(kernel_shape, top_shape, border_mode, subsample, dilation):
    """Image size on one axis from the kernel and output sizes.

    Only computable when ``subsample == 1`` (otherwise several image sizes give the same
    output); returns ``None`` then, or when an argument is ``None``.
    """
    if None in (kernel_shape, top_shape, border_mode, subsample, dilation):
        return None
    if subsample != 1:
        return None
    dil_kernel = dilated_kernel_size(kernel_shape, dilation)
    before, after = _pad_1axis(border_mode, dil_kernel)
    return top_shape + dil_kernel - 1 - before - after


def get_conv_gradinputs_shape(kernel_shape, top_shape, border_mode, subsample, filter_dilation=None, num_groups=1):
    """Image shape ``(batch, in_channels, *spatial)`` from the kernel and output shapes.

    Spatial entries are ``None`` where the stride makes them ambiguous.
    """
    convdim = len(top_shape) - 2
    subsample, dilation, modes = _per_axis_args(subsample, filter_dilation, border_mode, convdim)
    kshp = tuple(kernel_shape[-convdim:])
    spatial = tuple(
        get_conv_gradinputs_shape_1axis(kshp[i], top_shape[2 + i], modes[i], subsample[i], dilation[i])
        for i in range(convdim)
    )
    in_per_group = kernel_shape[-convdim - 1]
    in_channels = None if in_per_group is None else in_per_group * num_groups
    return (top_shape[0], in_channels) + spatial


def check_conv_gradinputs_shape(image_shape, kernel_shape, output_shape, border_mode, subsample, filter_dilation=None):
    """False if a convolution of ``image_shape`` by ``kernel_shape`` cannot give ``output_shape``.

    True when the shapes agree, and also when a size needed for the check is unknown or
    symbolic.
    """
    computed = get_conv_output_shape(image_shape, kernel_shape, border_mode, subsample, filter_dilation)
    for given, expected in zip(output_shape, computed):
        if _is_known(given) and _is_known(expected) and given != expected:
            return False
    return True


def assert_conv_shape(shape):
    """Check a conv input/kernel/output ``shape``: leading two dims >= 0, spatial dims > 0.

    Constant entries are checked now (``ValueError``); symbolic ones are wrapped in an
    ``Assert`` checked at run time. Returns the (possibly wrapped) shape as a tuple.
    """
    import pytensor.tensor as pt
    from pytensor.raise_op import Assert

    out = []
    for i, size in enumerate(shape):
        minimum = 0 if i < 2 else 1
        if size is None or _is_known(size):
            if size is not None and size < minimum:
                raise ValueError(f"The convolution would produce an invalid shape (dim[{i}]: {size} < {minimum}).")
            out.append(size)
            continue
        msg = f"The convolution would produce an invalid shape (dim[{i}] < {minimum})."
        out.append(Assert(msg)(size, pt.ge(size, minimum)))
    return tuple(out)


def assert_shape(x, expected_shape, msg="Unexpected shape."):
    """Wrap ``x`` in an ``Assert`` that its shape equals ``expected_shape`` (``None`` = unchecked).

    Returns ``x`` itself when nothing is to be checked.
    """
    import pytensor.tensor as pt
    from pytensor.raise_op import Assert

    if expected_shape is None or all(s is None for s in expected_shape):
        return x
    shape = x.shape
    conds = [pt.eq(shape[i], s) for i, s in enumerate(expected_shape) if s is not None]
    return Assert(msg)(x, *conds)
