"""Numba registrations for the pooling and Im2Col/Col2Im Ops (issue 4)."""
