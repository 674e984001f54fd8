"""Shared test configuration. The compile modes live in ``tests/backends.py`` (one list, picked
by name, importable from any test module); the slow numpy references every module checks
against live in the ``tests/reference`` package."""

from tests.backends import REQUIRES, is_installed


def pytest_report_header(config):
    missing = [f"{name} ({package})" for name, package in REQUIRES.items() if not is_installed(name)]
    return "optional backends not installed (their tests are skipped): " + (", ".join(missing) or "none")
