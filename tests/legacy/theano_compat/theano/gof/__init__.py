from theano.gof import opt, vm  # noqa: F401
