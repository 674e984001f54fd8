"""A minimal ``six`` for the legacy test files (Python 3 only)."""

integer_types = (int,)
string_types = (str,)


def reraise(tp, value, tb=None):
    if value.__traceback__ is not tb:
        raise value.with_traceback(tb)
    raise value
