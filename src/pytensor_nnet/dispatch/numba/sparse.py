"""Numba registrations for pytensor.sparse Ops (issue 7)."""
