"""Sparse-matrix ops on ``pytensor.sparse`` types: fixed/fast basic ops (``basic``) and the
legacy sparse sandbox (sparse-matrix convolution, sparse max pooling, random sparse ops)."""
