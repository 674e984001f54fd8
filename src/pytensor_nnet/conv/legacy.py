"""Deprecated legacy conv.conv2d (issue 3)."""
