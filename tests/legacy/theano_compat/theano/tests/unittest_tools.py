"""``theano.tests.unittest_tools``: the helpers the legacy test files call."""

import logging
import re
import unittest

import numpy as np
import pytensor
from pytensor.gradient import verify_grad as _verify_grad
from pytensor.tensor.math import _allclose

from theano.compile.mode import get_default_mode, get_mode

_logger = logging.getLogger("theano.tests.unittest_tools")
#: The legacy suite's fixed random state (``PYTENSOR_NNET_LEGACY_RNG`` would be a way to vary it).
_DEFAULT = 42


def fetch_seed(pseed=None):
    return _DEFAULT if pseed is None else int(pseed)


def seed_rng(pseed=None):
    value = fetch_seed(pseed)
    np.random.seed(value)
    return value


def verify_grad(op, pt, n_tests=2, rng=None, *args, **kwargs):
    if rng is None:
        seed_rng()
        rng = np.random
    if "mode" in kwargs:
        kwargs["mode"] = get_mode(kwargs["mode"])
    return _verify_grad(op, pt, n_tests, rng, *args, **kwargs)


verify_grad.E_grad = pytensor.gradient.GradientError


def assert_allclose(expected, value, rtol=None, atol=None):
    """PyTensor's dtype-aware ``_allclose`` (numpy broadcasting, the legacy tolerances), with
    numpy's report of the differences when it fails."""
    if not _allclose(expected, value, rtol, atol):
        np.testing.assert_allclose(value, expected, rtol=rtol or 1e-5, atol=atol or 1e-8)
        raise AssertionError(f"not close: expected {expected!r}, got {value!r}")


def attr(*args, **kwargs):
    """nose's attribute decorator: a no-op here."""

    def mark(func):
        return func

    return mark


def custom_name_func(testcase_func, param_num, param):
    args = re.sub(r"\W+", "_", "_".join(str(x) for x in param.args)).strip("_")
    return f"{testcase_func.__name__}_{param_num}_{args}"


class InferShapeTester(unittest.TestCase):
    """Checks that the shape of an Op's outputs is computed without running the Op."""

    def setUp(self):
        seed_rng()
        mode = getattr(self, "mode", None)
        self.mode = get_mode(mode) if mode is not None else get_default_mode()
        self.mode = self.mode.including("canonicalize")

    def _compile_and_check(self, inputs, outputs, numeric_inputs, cls, excluding=None, warn=True, check_topo=True):
        mode = self.mode
        if excluding:
            mode = mode.excluding(*excluding)
        outputs_function = pytensor.function(inputs, outputs, mode=mode)
        shapes_function = pytensor.function(inputs, [o.shape for o in outputs], mode=mode)
        if check_topo:
            topo_shape = shapes_function.maker.fgraph.toposort()
            assert not any(isinstance(t.op, cls) for t in topo_shape)
        topo_out = outputs_function.maker.fgraph.toposort()
        assert any(isinstance(t.op, cls) for t in topo_out)
        numeric_outputs = outputs_function(*numeric_inputs)
        numeric_shapes = shapes_function(*numeric_inputs)
        for out, shape in zip(numeric_outputs, numeric_shapes):
            assert np.all(out.shape == shape), (out.shape, shape)
