"""Legacy import path conv3d2d (issue 3)."""
