from theano.tensor.signal import pool  # noqa: F401
