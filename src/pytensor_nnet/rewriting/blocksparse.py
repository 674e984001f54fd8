"""Inplace rewrite for the block-sparse Ops (issue 5)."""
