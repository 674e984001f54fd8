"""Block-sparse kernels (issue 5)."""
