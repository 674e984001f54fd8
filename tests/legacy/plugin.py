"""pytest plugin of the legacy suite: nose's generator tests become one item per yielded case,
the skip and expected-failure lists of ``expectations.py`` are applied by test ID, and
``numpy.vstack``/``hstack``/``stack`` accept a generator again, as numpy < 1.24 did (the legacy
block-sparse tests pass one)."""

import functools
import inspect

import numpy as np
import pytest

from tests.legacy.expectations import SKIP, XFAIL


class YieldedCase(pytest.Item):
    """One case of a nose generator test: ``check(*args)``."""

    def __init__(self, *, check, args, line, **kwargs):
        super().__init__(**kwargs)
        self.check = check
        self.args = args
        self.line = line

    def runtest(self):
        self.check(*self.args)

    def reportinfo(self):
        return self.path, self.line, self.name


class GeneratorError(pytest.Item):
    """A generator test that failed before yielding its cases."""

    def __init__(self, *, error, line, **kwargs):
        super().__init__(**kwargs)
        self.error = error
        self.line = line

    def runtest(self):
        raise self.error

    def reportinfo(self):
        return self.path, self.line, self.name


def _accepting_generators(stack):
    @functools.wraps(stack)
    def wrapper(arrays, *args, **kwargs):
        return stack(list(arrays) if inspect.isgenerator(arrays) else arrays, *args, **kwargs)

    return wrapper


def pytest_configure(config):
    for name in ("vstack", "hstack", "stack"):
        setattr(np, name, _accepting_generators(getattr(np, name)))


def _cases(collector, func):
    cls = getattr(collector, "cls", None)
    if cls is None:
        return func()
    if hasattr(cls, "setup_class"):
        cls.setup_class()
    return func(cls())


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector, name, obj):
    if not (inspect.isgeneratorfunction(obj) and collector.funcnamefilter(name)):
        return None
    line = obj.__code__.co_firstlineno - 1
    try:
        cases = list(_cases(collector, obj))
    except Exception as error:  # the generator itself raised (e.g. a SkipTest)
        return [GeneratorError.from_parent(collector, name=name, error=error, line=line)]
    return [
        YieldedCase.from_parent(collector, name=f"{name}[{i}]", check=case[0], args=case[1:], line=line)
        for i, case in enumerate(cases)
    ]


def _lookup(table, nodeid):
    for pattern, value in table.items():
        if nodeid == pattern or (pattern.endswith("*") and nodeid.startswith(pattern[:-1])):
            return value
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        reason = _lookup(SKIP, item.nodeid)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
            continue
        xfail = _lookup(XFAIL, item.nodeid)
        if xfail is not None:
            reason, doc = xfail
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"{reason} (docs/migration.md: {doc!r})"))
