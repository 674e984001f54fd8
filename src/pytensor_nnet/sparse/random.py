"""Random sparse ops (issue 6)."""
__all__: list[str] = []
