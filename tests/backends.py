"""The compile modes the tests run in, defined once and picked by name.

- ``NUMBA``: PyTensor's Numba backend (the package's default);
- ``FAST_COMPILE``: PyTensor's FAST_COMPILE mode (few rewrites; C thunks for elementwise Ops);
- ``C``: PyTensor's C backend (``Mode(linker="cvm")``);
- ``PY``: the Python linker with the FAST_COMPILE rewrites: every Op's ``perform``, no C
  compilation (the cheap mode for checks that need no particular backend);
- ``PY_FAST_RUN``: the Python linker with the rewrites of a real compilation (``fast_run``);
- ``JAX``: PyTensor's JAX backend, skipped when ``jax`` is not installed;
- ``PYTORCH``: PyTensor's PyTorch backend, skipped when ``torch`` is not installed.

A test module parametrizes over a subset, by name; the test ID of each case is the name::

    @pytest.mark.parametrize("mode", backend_params("NUMBA", "PY", "JAX"))
    def test_something(mode): ...

    @pytest.mark.parametrize("backend", backend_params(*EVERY_BACKEND, pairs=True))
    def test_other(backend):
        name, mode = backend

``installed_backends(...)`` gives the same ``(name, mode)`` pairs without the missing
optional backends, for tests that loop over backends inside one test.
"""

import importlib.util

import pytest
from pytensor.compile.mode import Mode

#: The Python linker with the FAST_COMPILE rewrites: runs every Op's ``perform`` and compiles no
#: C code (FAST_COMPILE itself builds C thunks for the elementwise parts, ~20 s on a cold cache).
PY_MODE = Mode(linker="py", optimizer="fast_compile")
#: The Python linker with the rewrites of a real compilation (which, e.g., drop the forward Op
#: from the gradient graph of a linear cost), without compiling C code.
PY_FAST_RUN = Mode(linker="py", optimizer="fast_run")
#: PyTensor's C backend.
C_MODE = Mode(linker="cvm")

MODES = {
    "NUMBA": "NUMBA",
    "FAST_COMPILE": "FAST_COMPILE",
    "C": C_MODE,
    "PY": PY_MODE,
    "PY_FAST_RUN": PY_FAST_RUN,
    "JAX": "JAX",
    "PYTORCH": "PYTORCH",
}
#: The optional package each backend needs.
REQUIRES = {"JAX": "jax", "PYTORCH": "torch"}

#: Every Op in every backend: Numba (default), Python, C and, when installed, JAX.
EVERY_BACKEND = ("NUMBA", "FAST_COMPILE", "C", "JAX")


def is_installed(name):
    """Whether the optional package that backend ``name`` needs is installed."""
    package = REQUIRES.get(name)
    return package is None or importlib.util.find_spec(package) is not None


def get_mode(name):
    """The mode of backend ``name`` (a mode name or a ``Mode``); skips the calling test when the
    backend's optional package is not installed."""
    if not is_installed(name):
        pytest.skip(f"{REQUIRES[name]} is not installed")
    return MODES[name]


def backend_params(*names, pairs=False, slow=()):
    """One ``pytest.param`` per backend, with the name as test ID and a skip mark where the
    optional package is missing. The value is the mode, or ``(name, mode)`` with ``pairs``. The
    backends named in ``slow`` get the ``slow`` mark (deselect with ``-m "not slow"``)."""
    params = []
    for name in names:
        marks = [] if is_installed(name) else [pytest.mark.skip(reason=f"{REQUIRES[name]} is not installed")]
        if name in slow:
            marks.append(pytest.mark.slow)
        value = (name, MODES[name]) if pairs else MODES[name]
        params.append(pytest.param(value, id=name, marks=marks))
    return params


def installed_backends(*names):
    """``(name, mode)`` for the backends of ``names`` whose optional package is installed."""
    return [(name, MODES[name]) for name in names if is_installed(name)]
