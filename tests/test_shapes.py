"""Shape helpers: legacy values (observed on the legacy reference) and the deliberate fixes."""

import numpy as np
import pytensor.tensor as pt
import pytest
from pytensor.graph.basic import Variable

from pytensor_nnet import abstract_conv as ac
from pytensor_nnet.shapes import normalize_border_mode


def test_border_mode_to_pad():
    assert ac.border_mode_to_pad("valid", 2, (3, 4)) == ((0, 0), (0, 0))
    assert ac.border_mode_to_pad("full", 2, (3, 4)) == ((2, 2), (3, 3))
    assert ac.border_mode_to_pad("half", 2, (3, 4)) == ((1, 1), (2, 2))
    assert ac.border_mode_to_pad((1, (2, 3)), 2, (3, 4)) == ((1, 1), (2, 3))
    # an int is documented as valid; the legacy function raised on it
    assert ac.border_mode_to_pad(2, 3, (3, 3, 3)) == ((2, 2),) * 3
    # asymmetric padding in 3d (legacy: NotImplementedError)
    assert ac.border_mode_to_pad(((1, 2), 0, (0, 3)), 3, (3, 3, 3)) == ((1, 2), (0, 0), (0, 3))


@pytest.mark.parametrize("bad", ["same", -1, (1,), (1.5, 1), ((1, 2, 3), 1), ((1, -2), 0), None])
def test_border_mode_errors_name_the_argument(bad):
    with pytest.raises(ValueError, match="border_mode"):
        ac.border_mode_to_pad(bad, 2, (3, 3))


def test_normalize_border_mode_canonical_forms():
    assert normalize_border_mode(0, 2) == "valid"
    assert normalize_border_mode((0, (0, 0)), 2) == "valid"
    assert normalize_border_mode(1, 2) == ((1, 1), (1, 1))
    assert normalize_border_mode(((1, 0), 2), 2) == ((1, 0), (2, 2))


@pytest.mark.parametrize(
    "mode, strided_dilated, plain",
    [("valid", 3, 7), ("full", 7, 13), ("half", 5, 11), (2, 5, 11), ((1, 2), 5, 10)],
)
def test_get_conv_shape_1axis_legacy_values(mode, strided_dilated, plain):
    assert ac.get_conv_shape_1axis(10, 3, mode, 2, 2) == strided_dilated
    assert ac.get_conv_shape_1axis(10, 4, mode, 1, 1) == plain
    assert ac.get_conv_shape_1axis(None, 4, mode, 1, 1) is None


def test_gradweights_shape_1axis():
    assert ac.get_conv_gradweights_shape_1axis(10, 8, "valid", 1, 1) == 3
    # legacy returned floats (3.0, 3.5) for dilated kernels: ints here, None if no kernel fits
    assert ac.get_conv_gradweights_shape_1axis(10, 6, "valid", 1, 2) == 3
    assert ac.get_conv_gradweights_shape_1axis(10, 5, "valid", 1, 2) is None
    assert ac.get_conv_gradweights_shape_1axis(10, 14, "full", 1, 2) == 3
    assert ac.get_conv_gradweights_shape_1axis(10, 10, "half", 1, 1) is None
    assert ac.get_conv_gradweights_shape_1axis(10, 4, "valid", 2, 1) is None
    assert ac.get_conv_gradweights_shape_1axis(None, 4, "valid", 1, 1) is None


def test_gradinputs_shape_1axis_legacy_values():
    cases = [
        (8, "valid", 1, 10),
        (8, "full", 1, 6),
        (8, "half", 1, 8),
        (8, 2, 2, 8),
        (8, (1, 2), 1, 7),
        (8, "half", 2, 8),
    ]
    for top, mode, dil, expected in cases:
        assert ac.get_conv_gradinputs_shape_1axis(3, top, mode, 1, dil) == expected
    assert ac.get_conv_gradinputs_shape_1axis(3, 8, "valid", 2, 1) is None


def test_full_shapes_legacy_values():
    assert ac.get_conv_gradinputs_shape((5, 2, 3, 3), (7, 5, 8, 8), "valid", (1, 2)) == (7, 2, 10, None)
    assert ac.get_conv_gradinputs_shape((6, 2, 3, 3), (7, 6, 8, 8), "valid", (1, 1), None, 3) == (7, 6, 10, 10)
    assert ac.get_conv_output_shape((7, 6, 10, 10), (5, 3, 3, 3), "half", (2, 2)) == (7, 5, 5, 5)
    assert ac.get_conv_output_shape((7, 6, 10, 10), (5, 3, 3, 3), ((1, 2), (0, 1)), (1, 1), (2, 1)) == (7, 5, 9, 9)
    assert ac.get_conv_output_shape((None, 6, 10, None), (5, None, 3, 3), "valid", (1, 1)) == (None, 5, 8, None)
    assert ac.get_conv_output_shape((7, 6, 10, 10), (5, 8, 8, 6, 3, 3), "valid", (1, 1)) == (7, 5, 8, 8)


def test_gradweights_shape_with_groups_is_the_filter_shape():
    # the legacy function returned (1, 6, 3, 3) here (channel entries mixed up)
    assert ac.get_conv_gradweights_shape((7, 6, 10, 10), (7, 5, 8, 8), "valid", (1, 1), None, 3) == (5, 2, 3, 3)
    assert ac.get_conv_gradweights_shape((7, 6, 10, 10), (7, 5, 8, 8), "valid", (1, 1), None, 3, True) == (
        5,
        8,
        8,
        2,
        3,
        3,
    )


def test_check_conv_gradinputs_shape():
    args = ("valid", (1, 1))
    assert ac.check_conv_gradinputs_shape((7, 6, 10, 10), (5, 6, 3, 3), (7, 5, 8, 8), *args)
    assert not ac.check_conv_gradinputs_shape((7, 6, 10, 10), (5, 6, 3, 3), (7, 5, 9, 8), *args)
    assert not ac.check_conv_gradinputs_shape((7, 6, 10, 10), (5, 6, 3, 3), (8, 5, 8, 8), *args)
    assert not ac.check_conv_gradinputs_shape((7, 6, 10, 10), (5, 6, 3, 3), (7, 4, 8, 8), *args)
    assert ac.check_conv_gradinputs_shape((7, 6, 10, None), (5, 6, 3, 3), (7, 5, 8, 8), *args)
    assert ac.check_conv_gradinputs_shape((7, 6, 11, 10), (5, 6, 3, 3), (7, 5, 5, 8), "valid", (2, 1))


def test_symbolic_shapes():
    s = pt.iscalar("s")
    out = ac.get_conv_shape_1axis(s, 3, "valid", 1, 1)
    assert isinstance(out, Variable) and out.eval({s: 10}) == 8
    assert ac.get_conv_gradinputs_shape_1axis(3, s, "valid", 1, 1).eval({s: 8}) == 10
    shape = ac.get_conv_output_shape((None, 3, s, 4), (2, 3, 3, 3), "valid", (1, 1))
    assert shape[:2] == (None, 2) and shape[2].eval({s: 9}) == 7 and shape[3] == 2


def test_assert_conv_shape():
    with pytest.raises(ValueError, match=r"dim\[2\]"):
        ac.assert_conv_shape((1, 2, 0))
    assert ac.assert_conv_shape((1, 0, 3)) == (1, 0, 3)
    s = pt.iscalar("s")
    checked = ac.assert_conv_shape((1, 2, s))
    assert checked[2].eval({s: 3}) == 3
    with pytest.raises(AssertionError, match="invalid shape"):
        checked[2].eval({s: 0})


def test_assert_shape():
    x = pt.matrix("x")
    assert ac.assert_shape(x, (None, None)) is x
    y = ac.assert_shape(x, (2, None), "bad rows")
    assert y.eval({x: [[1.0], [2.0]]}).shape == (2, 1)
    with pytest.raises(AssertionError, match="bad rows"):
        y.eval({x: [[1.0]]})


def test_per_axis_forms():
    from pytensor_nnet.shapes import per_axis

    assert per_axis(2, 3, "stride") == (2, 2, 2)
    assert per_axis([1, 2], 2, "stride") == (1, 2)
    assert per_axis(None, 2, "stride", default=1) == (1, 1)
    assert per_axis(0, 2, "pad", minimum=0) == (0, 0)
    assert per_axis((3, 4, 5), None, "kshp") == (3, 4, 5)
    assert all(type(v) is int for v in per_axis(np.int64(2), 2, "stride"))


@pytest.mark.parametrize(
    "args, error, message",
    [
        (((2, 2, 2), 2, "stride"), ValueError, r"stride must have 2 entries \(one per spatial axis\); got \(2, 2, 2\)"),
        ((1.5, 2, "stride"), ValueError, r"stride must be an int or a sequence of 2 ints; got 1.5"),
        (((1, 1.5), 2, "stride"), ValueError, r"stride entries must be ints; got \(1, 1.5\)"),
        (((1, 0), 2, "stride"), ValueError, r"stride entries must be >= 1; got \(1, 0\)"),
    ],
)
def test_per_axis_errors(args, error, message):
    from pytensor_nnet.shapes import per_axis

    with pytest.raises(error, match=message):
        per_axis(*args)


@pytest.mark.parametrize(
    "wording, value, error, message",
    [
        ("CONV_OP", (1, 2, 3), ValueError, r"s must have 2 entries \(one per spatial dimension\); got \(1, 2, 3\)"),
        ("CONV_OP", (1, 0), ValueError, r"s entries must be positive ints; got \(1, 0\)"),
        ("TRANSPOSE", (1, 0), ValueError, r"s must be 2 positive ints; got \(1, 0\)"),
        ("REFERENCE", (1,), ValueError, r"s must be a positive int or 2 positive ints; got \(1,\)"),
        ("SPARSE", [1, 0], ValueError, r"s entries must be positive; got \[1, 0\]"),
        ("SPARSE", 1.5, TypeError, r"s must be a tuple of ints; got 1.5"),
        ("SPARSE", [1, 1.5], TypeError, r"s must be a tuple of ints; got \[1, 1.5\]"),
        ("SYMBOLIC", (1, 2, 3), ValueError, r"s must have 2 entries; got \(1, 2, 3\)"),
    ],
)
def test_per_axis_wordings(wording, value, error, message):
    from pytensor_nnet.shapes import axes, per_axis

    with pytest.raises(error, match=message):
        per_axis(value, None if wording == "SPARSE" else 2, "s", wording=getattr(axes, wording))


def test_per_axis_symbolic_entries_are_kept():
    from pytensor_nnet.shapes import axes, per_axis

    n = pt.iscalar("n")
    assert per_axis((n, 2), 2, "subsample", wording=axes.SYMBOLIC) == (n, 2)


def test_padding_resolution():
    from pytensor_nnet import shapes

    # (before, after) pairs for concrete kernels: "full" and "half" use the dilated extent
    assert shapes.conv_padding("full", (3, 2), (1, 2)) == ((2, 2), (2, 2))
    assert shapes.conv_padding("half", (3, 4), (2, 1)) == ((2, 2), (2, 2))
    assert shapes.conv_padding(((1, 0), 2), (3, 3), (1, 1)) == ((1, 0), (2, 2))
    # the compiled geometry's codes resolve to the same sizes
    codes = (0, shapes.PAD_FULL, shapes.PAD_HALF)
    assert shapes.resolve_pads(codes, (1, shapes.PAD_HALF, 0), (2, 3, 4), (1, 2, 1)) == ((0, 4, 2), (1, 2, 0))


def test_conv_output_length_is_below_one_when_the_kernel_does_not_fit():
    from pytensor_nnet import shapes

    assert shapes.conv_output_length(7, 3, 2, 1, 0, 1) == 3
    assert shapes.conv_output_length(2, 3, 2, 0, 0, 1) < 1
    assert shapes.conv_output_size_3d((1, 7, 2), (1, 3, 3), (1, 2, 2), (0, 1, 0), (0, 0, 0), (1, 1, 1)) == (1, 3, 0)
