"""Sparse rewrites, Usmm fusion in Numba mode (issue 7)."""
