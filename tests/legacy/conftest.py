"""The legacy suite runs through ``tests/legacy/run_legacy.py`` (it downloads the legacy test
files); the default collection skips this folder's compat packages."""

collect_ignore = ["theano_compat"]
