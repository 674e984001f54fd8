"""What the legacy suite expects of each legacy test that does not simply pass."""

SKIP = {}
XFAIL = {}
