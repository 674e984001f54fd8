"""The vectorisable ``tanh`` kernel against the 80-bit ``long double`` tanh."""

import math
import platform
import re

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytensor_nnet.kernels.tanh import SATURATION, SMALL, tanh_float64

pytestmark = pytest.mark.skipif(np.finfo(np.longdouble).nmant < 63, reason="the reference needs an 80-bit long double")

MAX_ULP = 1.5

# inlined by Numba, as the Op's loop does (LLVM alone may leave it a call, which is not vectorised)
_scalar = numba.njit(error_model="numpy", inline="always")(tanh_float64)


@numba.njit(error_model="numpy")
def _each(x, out):
    for i in range(x.size):
        out[i] = _scalar(x[i])


def kernel_tanh(x):
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    _each(x.ravel(), out.ravel())
    return out


def ulp_error(x):
    """Error of the kernel at ``x`` in units of the last place of the exact result."""
    exact = np.tanh(np.asarray(x, dtype=np.float64).astype(np.longdouble))
    spacing = np.spacing(np.abs(exact.astype(np.float64)))
    return (np.abs(kernel_tanh(x).astype(np.longdouble) - exact) / spacing).astype(np.float64)


def test_within_one_and_a_half_ulp_across_the_range():
    rng = np.random.default_rng(0)
    n = 200_000
    x = np.concatenate(
        [
            rng.uniform(-25, 25, n),
            np.geomspace(1e-300, 25, n) * rng.choice([-1.0, 1.0], n),
            SMALL + rng.uniform(-1e-3, 1e-3, 1000),  # where the two formulas meet
            np.linspace(-0.5, 0.5, 10_001),
        ]
    )
    assert ulp_error(x).max() <= MAX_ULP


@settings(max_examples=500, deadline=None)
@given(st.floats(allow_nan=False))
def test_within_one_and_a_half_ulp_for_any_float(x):
    assert ulp_error(np.array([x]))[0] <= MAX_ULP


def test_signs_infinities_nan_and_saturation():
    special = np.array([0.0, -0.0, np.inf, -np.inf, 19.1, -19.1, SATURATION, 1e300, -1e300, 5e-324])
    out = kernel_tanh(special)
    assert list(np.signbit(out[:2])) == [False, True]
    np.testing.assert_array_equal(out[2:8], [1.0, -1.0, 1.0, -1.0, 1.0, 1.0])
    np.testing.assert_array_equal(out[8:], [-1.0, 5e-324])
    assert math.isnan(kernel_tanh(np.array([np.nan]))[0])


def test_odd_and_non_decreasing():
    x = np.sort(np.random.default_rng(1).uniform(-21, 21, 1_000_000))
    out = kernel_tanh(x)
    np.testing.assert_array_equal(kernel_tanh(-x), -out)
    assert np.all(np.diff(out) >= 0)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="checks x86 instructions")
def test_a_loop_over_it_compiles_to_packed_instructions():
    kernel_tanh(np.zeros(4))
    assembly = _each.overloads[_each.signatures[0]].library.get_asm_str()
    assert re.search(r"\bv?divpd\b", assembly), "the loop's divisions are not vectorised"
