"""JAX registrations for the sparse-convolution Ops (issue 6)."""
