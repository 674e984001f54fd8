"""conv3d2d.conv3d (issue 3)."""
