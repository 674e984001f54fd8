"""Block-sparse ops (issue 5): SparseBlockGemv, SparseBlockOuter, sparse_block_dot."""
__all__: list[str] = []
