"""``python -m pytensor_nnet demo``: a LeNet written as a Theano user would, trained on handwritten digits.

Modules: ``data`` (scikit-learn's 8x8 digits framed like MNIST), ``lenet`` (the network and
its SGD loop), ``bayes`` (the Bayesian twin in PyMC), ``report`` (the PNGs), ``cli`` (options,
progress bar, summary). Needs the ``demo`` extra (rich, matplotlib, scikit-learn); ``--bayes``
needs the ``pymc`` extra.
"""
