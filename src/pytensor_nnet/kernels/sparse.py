"""Sparse matrix kernels (issue 7)."""
