"""What the legacy suite expects of each legacy test that does not simply pass.

Keys are test IDs relative to the legacy tree (``theano/...``); a key ending in ``*`` matches
every ID that starts with the rest.

``SKIP``: tests that cannot say anything about ``pytensor_nnet``, with the reason: tests of
legacy internals with no public counterpart, and tests whose own numpy code no longer runs on
the numpy versions we support.

``XFAIL`` (strict: an unexpected pass fails the run): tests of legacy behaviour we changed on
purpose, as ``(reason, doc)``: ``doc`` is the start of the line of ``docs/migration.md`` that
states the difference (``tests/legacy/test_expectations.py`` checks that it is there).
"""

_CONV = "theano/tensor/nnet/tests/test_abstract_conv.py"
_OLD_CONV = "theano/tensor/nnet/tests/test_conv.py::TestConv2D"
_CORR = "theano/tensor/nnet/tests/test_corr.py"
_POOL = "theano/tensor/signal/tests/test_pool.py::TestDownsampleFactorMax"

_CORR_IN_GRAPH = (
    "asserts that the legacy optimizer put the C GEMM class CorrMM/Corr3dMM in the compiled graph "
    "(legacy optimizer internals: conv2d/conv3d run our own compiled kernels)"
)
_LIST_OF_SLICES = (
    "the test's own numpy reference indexes an array with a list of slices, which numpy >= 1.23 "
    "refuses (IndexError before our code is called); our pooling with strides and padding is "
    "checked against a reference in tests/test_pool.py"
)

SKIP = {
    f"{_CONV}::TestCorrConv2d::test_all[*": _CORR_IN_GRAPH,
    f"{_CONV}::TestCorrConv2d::test_gradinput_arbitrary_output_shapes[*": _CORR_IN_GRAPH,
    f"{_CONV}::TestCorrConv3d::test_all[*": _CORR_IN_GRAPH,
    f"{_CONV}::TestCorrConv3d::test_gradinput_arbitrary_output_shapes[*": _CORR_IN_GRAPH,
    f"{_CORR}::TestCorr2D::*": "tests the legacy C class CorrMM itself (no public counterpart)",
    f"{_CORR}::TestGroupCorr2d::*": _CORR_IN_GRAPH,
    f"{_CORR}::TestUnsharedCorr2d::*": _CORR_IN_GRAPH,
    f"{_CORR}::TestAsymmetricCorr::*": _CORR_IN_GRAPH,
    f"{_CORR}::TestCausalCorr::*": _CORR_IN_GRAPH,
    "theano/tensor/nnet/tests/test_conv3d2d.py::test_get_diagonal_subtensor_view": (
        "tests conv3d2d's internal view helpers (get_diagonal_subtensor_view, DiagonalSubtensor), "
        "not part of the conv3d2d.conv3d API"
    ),
    f"{_POOL}::test_old_pool_interface": "unpickles a compiled legacy Theano function (legacy internals)",
    f"{_POOL}::test_DownsampleFactorMaxStride": _LIST_OF_SLICES,
    f"{_POOL}::test_DownsampleFactorMaxPaddingStride": _LIST_OF_SLICES,
    f"{_OLD_CONV}::test_gcc_crash": (
        "the test's own numpy reference adds Python ints to the int8 sizes it read from the graph, "
        "which overflows under numpy 2's promotion rules (OverflowError before our code is called)"
    ),
}

XFAIL = {
    f"{_OLD_CONV}::test_wrong_info": (
        "expects NotScalarConstantError for a symbolic int scalar in a shape hint; ours takes it as an unknown entry",
        "- Shape hints may be ints, `None`, integer constants of any dtype",
    ),
    f"{_OLD_CONV}::test_subsample": (
        "expects NotImplementedError for subsampled convolutions that we compute (the test's own "
        "reference agrees with the results)",
        "- The old `conv.conv2d` interface computes every subsampled convolution",
    ),
    f"{_POOL}::test_AveragePoolPaddingStride_grad_grad": (
        "calls AveragePoolGrad with pad == ws on one axis (its last example), a geometry the forward Pool refuses",
        "- `pad` must be smaller than `ws` on every axis in every pooling Op",
    ),
    f"{_POOL}::test_DownsampleFactorMax": (
        "pools 4 trailing axes in its last example (Pool(ndim=4))",
        "- `Pool(ndim=k)` pools 1, 2 or 3 trailing axes",
    ),
}
