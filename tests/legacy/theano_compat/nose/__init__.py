"""A minimal ``nose`` for the legacy test files: the names they import."""
