"""Shape checks shared by the graph build, ``perform`` and the compiled functions.

Each check is two functions: ``*_problem`` finds the first inconsistency (ints only; Numba
compiles it inline into the dispatch functions) and ``*_error`` turns it into the message
(plain Python). The graph build, ``perform`` and the compiled functions (which call the
message function in object mode, only once a problem is found) all use these, so the same
bad shapes give the same message everywhere.
"""

from __future__ import annotations

import numpy as np
from numba.extending import register_jitable

from pytensor_nnet.shapes.conv import conv_output_length, dilated_kernel_size, resolve_pad

#: Marks a size that is not known (graph build).
UNKNOWN = -(2**62)
#: Entries of the index maps of :func:`pick_sizes`: a leading spatial axis of size 1 (the
#: 3-d form of a lower-rank shape), or a size the operands do not give.
FILL_ONE = -1
NOT_GIVEN = -2
#: Problem codes of :func:`conv_shape_problem`.
(
    SHAPES_OK,
    FILTER_GROUPS,
    TOP_GROUPS,
    INPUT_GROUPS,
    CHANNELS,
    BATCH,
    TOP_CHANNELS,
    TOO_LARGE,
    TOP_SPATIAL,
    REGION,
) = range(10)


@register_jitable
def pick_sizes(values, indices):
    """int64 array ``[values[j] for j in indices]``, with 1 for ``FILL_ONE`` and ``UNKNOWN``
    for ``NOT_GIVEN``: brings an N-d shape to the 3-d form the checks below take."""
    out = np.empty(len(indices), dtype=np.int64)
    for i in range(len(indices)):
        j = indices[i]
        if j == FILL_ONE:
            out[i] = 1
        elif j == NOT_GIVEN:
            out[i] = UNKNOWN
        else:
            out[i] = values[j]
    return out


@register_jitable
def conv_output_sizes(image, filters, stride, pad_before, pad_after, dilation):
    """Output spatial sizes (3-d form) of a convolution: ``UNKNOWN`` where an input size is
    not known, -1 where the (dilated) filter is larger than the padded input."""
    out = np.empty(3, dtype=np.int64)
    for i in range(3):
        size, taps = image[2 + i], filters[2 + i]
        if size < 0 or taps < 0:
            out[i] = UNKNOWN
            continue
        extent = dilated_kernel_size(taps, dilation[i])
        before, after = resolve_pad(pad_before[i], extent), resolve_pad(pad_after[i], extent)
        length = conv_output_length(size, taps, stride[i], before, after, dilation[i])
        out[i] = length if length >= 1 else -1
    return out


@register_jitable
def conv_shape_problem(
    convdim, num_groups, unshared, image, filters, region, top, stride, pad_before, pad_after, dilation
):
    """The first inconsistency of a convolution of ``image`` by ``filters`` giving ``top``, as
    ``(code, spatial axis)``; ``(SHAPES_OK, 0)`` when there is none.

    Shapes in the 3-d form of the kernels (leading spatial axes of size 1): ``image``
    ``(N, C, D, H, W)``, ``filters`` ``(M, C // num_groups, kd, kh, kw)``, ``region`` the
    ``(od, oh, ow)`` output region of unshared filters, ``top`` ``(N, M, od, oh, ow)``; any entry
    may be ``UNKNOWN`` (not checked). ``stride``, ``pad_before``, ``pad_after`` (sizes or
    ``PAD_FULL`` / ``PAD_HALF``) and ``dilation`` are the kernels' 3-tuples (see
    ``kernels.conv.kernel_geometry``); ``unshared`` is 0 or 1.
    """
    groups = num_groups
    channels, in_per_group, n_filters = image[1], filters[1], filters[0]
    if n_filters >= 0 and n_filters % groups != 0:
        return FILTER_GROUPS, 0
    if top[1] >= 0 and top[1] % groups != 0:
        return TOP_GROUPS, 0
    if channels >= 0 and channels % groups != 0:
        return INPUT_GROUPS, 0
    if channels >= 0 and in_per_group >= 0 and channels != in_per_group * groups:
        return CHANNELS, 0
    if top[0] >= 0 and image[0] >= 0 and top[0] != image[0]:
        return BATCH, 0
    if top[1] >= 0 and n_filters >= 0 and top[1] != n_filters:
        return TOP_CHANNELS, 0
    out = conv_output_sizes(image, filters, stride, pad_before, pad_after, dilation)
    for i in range(3 - convdim, 3):
        if out[i] == -1:
            return TOO_LARGE, i
    for i in range(3 - convdim, 3):
        if top[2 + i] >= 0 and out[i] >= 0 and top[2 + i] != out[i]:
            return TOP_SPATIAL, i
    if unshared:
        for i in range(3 - convdim, 3):
            if region[i] >= 0 and out[i] >= 0 and region[i] != out[i]:
                return REGION, i
    return SHAPES_OK, 0


def _size_text(size):
    return "None" if size == UNKNOWN else str(int(size))


def _tuple_text(values):
    """``values`` written like a Python tuple of ints, ``UNKNOWN`` entries as ``None``."""
    parts = [_size_text(v) for v in values]
    return "(" + parts[0] + ",)" if len(parts) == 1 else "(" + ", ".join(parts) + ")"


def conv_shape_error(
    convdim,
    num_groups,
    unshared,
    image,
    filters,
    region,
    top,
    stride,
    pad_before,
    pad_after,
    dilation,
    border_mode,
    names,
):
    """The message for the problem :func:`conv_shape_problem` finds (same arguments), or ``""``.

    ``border_mode`` is the text shown for it; ``names`` the expressions naming the three shapes
    and the strides, e.g. ``("input.shape", "filters.shape", "output_grad.shape", "subsample")``.
    """
    code, axis = conv_shape_problem(
        convdim, num_groups, unshared, image, filters, region, top, stride, pad_before, pad_after, dilation
    )
    if code == SHAPES_OK:
        return ""
    image_name, filters_name, top_name, subsample_name = names
    groups, first = num_groups, 3 - convdim
    image_spatial, filters_spatial = _tuple_text(image[2 + first :]), _tuple_text(filters[2 + first :])
    if code == FILTER_GROUPS:
        return f"num_groups ({groups}) must divide the number of filters ({filters_name}[0] = {filters[0]})"
    if code == TOP_GROUPS:
        return f"num_groups ({groups}) must divide the number of filters ({top_name}[1] = {top[1]})"
    if code == INPUT_GROUPS:
        return f"num_groups ({groups}) must divide the input channels ({image_name}[1] = {image[1]})"
    if code == CHANNELS:
        return (
            f"input channels ({image_name}[1] = {image[1]}) must equal filters' input channels "
            f"({filters_name}[{1 + convdim if unshared else 1}] = {filters[1]}) * num_groups ({groups})"
        )
    if code == BATCH:
        return f"batch sizes differ: {top_name}[0] = {top[0]} must equal {image_name}[0] = {image[0]}"
    if code == TOP_CHANNELS:
        return (
            f"channels differ: {top_name}[1] = {top[1]} must equal the number of filters "
            f"{filters_name}[0] = {filters[0]}"
        )
    if code == TOO_LARGE:
        return (
            f"the (dilated) filter ({filters_name} spatial {filters_spatial}, filter_dilation "
            f"{_tuple_text(dilation[first:])}) is larger than the padded input ({image_name} spatial "
            f"{image_spatial}, border_mode {border_mode}) on spatial axis {axis - first}"
        )
    out = _tuple_text(conv_output_sizes(image, filters, stride, pad_before, pad_after, dilation)[first:])
    geometry = (
        f"{image_name} spatial {image_spatial}, border_mode {border_mode}, {subsample_name} "
        f"{_tuple_text(stride[first:])}, filter_dilation {_tuple_text(dilation[first:])}"
    )
    if code == TOP_SPATIAL:
        return (
            f"{top_name} spatial {_tuple_text(top[2 + first :])} does not match the convolution's output spatial "
            f"shape {out} ({geometry}, {filters_name} spatial {filters_spatial})"
        )
    return (
        f"the unshared filters' output region ({filters_name}[1:{1 + convdim}] = {_tuple_text(region[first:])}) "
        f"must match the output's spatial shape {out} ({geometry})"
    )


class ShapeMismatchError(ValueError, AssertionError):
    """Shapes that disagree: an array and the shape hint given for it (``input_shape``,
    ``filter_shape``, ...), or the operands of a convolution with each other. A ``ValueError``
    like every other argument error of the package, and an ``AssertionError``, which the
    legacy API raised for some of them: code written for either catches it."""


@register_jitable
def shape_hint_mismatch(hint, actual):
    """Whether the shape hint ``hint`` and ``actual`` differ where both are known."""
    for i in range(len(hint)):
        if hint[i] >= 0 and actual[i] >= 0 and hint[i] != actual[i]:
            return True
    return False


def shape_hint_error(hint, actual, hint_name, what):
    """The message when the shape hint ``hint`` (``UNKNOWN``: unchecked) disagrees with
    ``actual``, or ``""``. ``hint_name`` is the argument of the hint (``"input_shape"``),
    ``what`` the array it describes (``"input"``)."""
    if not shape_hint_mismatch(hint, actual):
        return ""
    return f"{hint_name}={_tuple_text(hint)} does not match the shape {_tuple_text(actual)} of {what}"


@register_jitable
def shape_vector_problem(values, length, n_lead):
    """0 when the shape vector ``values`` has ``length`` entries, the first ``n_lead`` (batch,
    channels) >= 0 and the others (spatial sizes) >= 1 (``UNKNOWN`` skipped); 1 for a wrong
    length, 2 for a wrong entry."""
    if len(values) != length:
        return 1
    for i in range(len(values)):
        if values[i] != UNKNOWN and values[i] < (0 if i < n_lead else 1):
            return 2
    return 0


def shape_vector_error(name, values, length, n_lead):
    """The message for the problem of :func:`shape_vector_problem`, or ``""``."""
    problem = shape_vector_problem(values, length, n_lead)
    if problem == 1:
        return f"{name} must have {length} entries; got {len(values)}"
    if problem == 2:
        return f"{name} entries must be positive (batch and channels non-negative); got {_tuple_text(values)}"
    return ""
