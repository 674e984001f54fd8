"""The backends every Op of the issue-3 tests runs in: Numba (default), Python, C and JAX."""

from pytensor.compile.mode import Mode

C_MODE = Mode(linker="cvm")


def backend_modes():
    """NUMBA, FAST_COMPILE (Python), C (cvm linker) and, when installed, JAX."""
    modes = ["NUMBA", "FAST_COMPILE", C_MODE]
    try:
        import jax  # noqa: F401

        modes.append("JAX")
    except ImportError:
        pass
    return modes


def mode_id(mode):
    return mode if isinstance(mode, str) else "C"
