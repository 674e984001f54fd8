"""causal_conv1d (issue 3)."""
