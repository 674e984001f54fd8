import builtins  # noqa: F401
import pickle as cPickle  # noqa: F401

xrange = range
