"""Unshared (locally connected) convolution kernels (issue 3)."""
