"""Numba registrations for the sparse-convolution and random sparse Ops (issue 6)."""
