"""A minimal ``parameterized.expand``: one test function per parameter tuple, added to the
namespace (class body or module) the decorated function is defined in, as the real package does."""

import functools
import inspect
import re


class param:
    def __init__(self, *args, **kwargs):
        self.args = args
        self.kwargs = kwargs


def _safe(text):
    return re.sub(r"\W+", "_", text).strip("_")


def _default_name(func, num, p):
    return f"{func.__name__}_{num}_{_safe('_'.join(str(a) for a in p.args))}"


class parameterized:
    @staticmethod
    def to_safe_name(text):
        return _safe(text)

    @staticmethod
    def expand(inputs, name_func=None, testcase_func_name=None, **kwargs):
        name_func = name_func or testcase_func_name or _default_name

        def decorator(func):
            namespace = inspect.currentframe().f_back.f_locals
            for num, args in enumerate(inputs):
                p = args if isinstance(args, param) else param(*(args if isinstance(args, tuple) else (args,)))

                def case(*outer, _p=p):
                    return func(*outer, *_p.args, **_p.kwargs)

                functools.update_wrapper(case, func)
                del case.__wrapped__  # pytest must not see the parameters of the original
                case.__name__ = name_func(func, num, p)
                namespace[case.__name__] = case
            return None

        return decorator
