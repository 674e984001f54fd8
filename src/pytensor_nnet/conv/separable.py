"""separable_conv2d / separable_conv3d (issue 3)."""
