"""JAX registrations for the block-sparse Ops (issue 5)."""
