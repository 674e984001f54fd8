from theano.sparse.sandbox import sp, sp2  # noqa: F401
