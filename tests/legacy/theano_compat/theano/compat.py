next = next  # noqa: PLW0127
