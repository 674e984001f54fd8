"""Convolution Ops (``ops``) and the legacy user functions (``api``)."""
