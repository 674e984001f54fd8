"""conv2d_transpose / conv3d_transpose (issue 3)."""
