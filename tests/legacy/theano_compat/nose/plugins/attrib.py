from theano.tests.unittest_tools import attr  # noqa: F401
