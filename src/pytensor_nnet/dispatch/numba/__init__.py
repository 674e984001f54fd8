"""``numba_funcify`` registrations: every Op of the package runs in Numba mode without
object-mode fallback. Each module registers the Ops of the package module of the same name."""
