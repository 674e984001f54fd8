"""Fast and correct pytensor.sparse ops (issue 7)."""
__all__: list[str] = []
