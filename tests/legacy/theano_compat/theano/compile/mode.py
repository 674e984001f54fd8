"""Compile modes: the legacy suite runs every graph in one mode, the Python linker with the
rewrites of a real compilation (``fast_run``): every Op's ``perform`` and the compiled kernels it
calls, without compiling C code per graph. The legacy mode names map onto it."""

import pytensor
from pytensor.compile.mode import Mode as _PtMode

LEGACY_MODE = _PtMode(linker="py", optimizer="fast_run")
#: Legacy mode names onto modes of the suite's linker.
_NAMED = {
    None: LEGACY_MODE,
    "FAST_RUN": LEGACY_MODE,
    "Mode": LEGACY_MODE,
    "FAST_COMPILE": _PtMode(linker="py", optimizer="fast_compile"),
    "DebugMode": LEGACY_MODE,
    "DEBUG_MODE": LEGACY_MODE,
}

pytensor.config.mode = LEGACY_MODE


def get_mode(mode):
    if isinstance(mode, _PtMode):
        return mode
    return _NAMED.get(mode, mode)


def get_default_mode():
    return LEGACY_MODE


def Mode(linker=None, optimizer="fast_run"):
    """``theano.Mode``: the suite's linker; ``optimizer=None`` is no rewrites."""
    return _PtMode(
        linker="py" if linker in (None, "vm", "cvm", "c|py", "c") else linker,
        optimizer=optimizer if optimizer is not None else "None",
    )


def function(inputs, outputs=None, mode=None, *args, **kwargs):
    return pytensor.function(inputs, outputs, *args, mode=get_mode(mode), **kwargs)
