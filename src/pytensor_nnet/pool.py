"""Pooling Ops and pool_2d / pool_3d (issue 4); legacy path of signal.pool."""
