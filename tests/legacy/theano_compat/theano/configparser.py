"""``theano.config``: PyTensor's config, plus the legacy flags the tests read."""

import contextlib
import functools

import pytensor


class _Namespace:
    def __init__(self, **values):
        self.__dict__.update(values)


class _Config:
    """Reads through to ``pytensor.config``; ``mode`` is the legacy mode name of the suite's
    one compile mode, ``cxx`` says that compiled kernels are available (ours are Numba)."""

    def __init__(self):
        object.__setattr__(
            self,
            "_legacy",
            {
                "mode": "FAST_RUN",
                "cxx": "numba",
                "blas": _Namespace(ldflags="numba"),
                "conv": _Namespace(assert_shape=False),
            },
        )

    def __getattr__(self, name):
        legacy = object.__getattribute__(self, "_legacy")
        if name in legacy:
            return legacy[name]
        return getattr(pytensor.config, name)

    def __setattr__(self, name, value):
        if name in self._legacy:
            self._legacy[name] = value
        else:
            setattr(pytensor.config, name, value)

    def _get_path(self, path):
        obj = self
        for part in path.split("."):
            obj = getattr(obj, part)
        return obj

    def _set_path(self, path, value):
        *head, last = path.split(".")
        obj = self
        for part in head:
            obj = getattr(obj, part)
        setattr(obj, last, value)


config = _Config()


class change_flags(contextlib.ContextDecorator):
    """``change_flags([(name, value), ...])`` or ``change_flags(name=value)``: a decorator or
    context manager. The shape-assertion flag has no effect: shape hints are always checked."""

    def __init__(self, args=(), **kwargs):
        self.changes = list(dict(args).items()) + list(kwargs.items())

    def __enter__(self):
        self.saved = [(path, config._get_path(path)) for path, _ in self.changes]
        for path, value in self.changes:
            config._set_path(path, value)

    def __exit__(self, *exc):
        for path, value in reversed(self.saved):
            config._set_path(path, value)
        return False


__all__ = ["change_flags", "config", "functools"]
