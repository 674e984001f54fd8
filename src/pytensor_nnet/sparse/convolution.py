"""Sparse-matrix convolution and max pooling (issue 6)."""
__all__: list[str] = []
