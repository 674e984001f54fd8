"""Sparse-convolution index builder kernels (issue 6)."""
