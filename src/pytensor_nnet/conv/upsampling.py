"""Bilinear upsampling (issue 3)."""
