"""nose.tools: the unittest assertions under their nose names."""

import unittest

_case = unittest.TestCase()
_case.maxDiff = None

assert_raises = _case.assertRaises
assert_equal = assert_equals = _case.assertEqual
assert_true = _case.assertTrue
assert_false = _case.assertFalse
