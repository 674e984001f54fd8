from pytensor_nnet.blocksparse import (  # noqa: F401
    SparseBlockGemv,
    SparseBlockOuter,
    sparse_block_dot,
    sparse_block_gemv,
    sparse_block_outer,
)
