"""Placeholders for legacy internals with no public counterpart: importable (so a test module
that names one still collects), and any use raises (the tests that use one are in the skip
list)."""


def legacy_internal(name):
    def __new__(cls, *args, **kwargs):
        raise NotImplementedError(f"{name} is a legacy internal with no public counterpart")

    return type(name.rsplit(".", 1)[-1], (), {"__new__": __new__, "_legacy_internal": name})


def is_legacy_internal(obj):
    return getattr(obj, "_legacy_internal", None) is not None
