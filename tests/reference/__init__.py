"""Slow, obvious numpy references the kernels and Ops are checked against, one module per op
family: ``conv`` (convolutions, transposed, unshared, upsampling, causal), ``pool`` (pooling
and im2col), ``blocksparse``, ``sparse_conv`` (sparse-matrix convolution and pooling) and
``neighbours``. Written from the definitions, with loops; nothing shared with the package."""
