"""Geometry of the Ops: pure argument and shape arithmetic on ints (or symbolic ints).

Every other layer asks these functions; nothing here builds an Op.

- :mod:`~pytensor_nnet.shapes.axes`: per-axis arguments (:func:`per_axis`);
- :mod:`~pytensor_nnet.shapes.conv`: ``border_mode`` and the convolution shape arithmetic;
- :mod:`~pytensor_nnet.shapes.checks`: the shape checks shared by the graph build,
  ``perform`` and the compiled functions, and their messages;
- :mod:`~pytensor_nnet.shapes.pool`: the pooling argument checks, output sizes and padding.
"""

from pytensor_nnet.shapes.axes import AxisWording, is_int, per_axis  # noqa: F401
from pytensor_nnet.shapes.checks import (  # noqa: F401
    BATCH,
    CHANNELS,
    FILL_ONE,
    FILTER_GROUPS,
    INPUT_GROUPS,
    NOT_GIVEN,
    REGION,
    SHAPES_OK,
    TOO_LARGE,
    TOP_CHANNELS,
    TOP_GROUPS,
    TOP_SPATIAL,
    UNKNOWN,
    ShapeMismatchError,
    conv_output_sizes,
    conv_shape_error,
    conv_shape_problem,
    pick_sizes,
    shape_hint_error,
    shape_hint_mismatch,
    shape_vector_error,
    shape_vector_problem,
)
from pytensor_nnet.shapes.conv import (  # noqa: F401
    BORDER_MODE_STRINGS,
    PAD_CODES,
    PAD_FULL,
    PAD_HALF,
    assert_conv_shape,
    assert_shape,
    border_mode_to_pad,
    check_conv_gradinputs_shape,
    conv_output_length,
    conv_output_size_3d,
    conv_padding,
    dilated_kernel_size,
    filter_ndim,
    get_conv_gradinputs_shape,
    get_conv_gradinputs_shape_1axis,
    get_conv_gradweights_shape,
    get_conv_gradweights_shape_1axis,
    get_conv_output_shape,
    get_conv_shape_1axis,
    normalize_border_mode,
    resolve_pad,
    resolve_pads,
)
from pytensor_nnet.shapes.pool import (  # noqa: F401
    check_pool_args,
    pool_output_size,
    pool_pad_pairs,
    window_divisor,
)
