"""Small boundary entries for the tests of ``dispatch/numba/boundary.py`` and its compile
helper (a module of their own: the helper process imports it to compile them)."""

import numba


def add_body(a, b, c, out, meta):
    """``out[:n] = a[:n] + b[:n]`` with ``n = meta[0]``."""
    n = numba.carray(meta, (1,))[0]
    for i in range(n):
        out[i] = a[i] + b[i]
    return 0


def broken_body(a, b, c, out, meta):
    return a.no_such_attribute  # does not compile
