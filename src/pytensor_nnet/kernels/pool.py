"""Pooling kernels (issue 4)."""
