"""The skip and expected-failure lists of the legacy suite are consistent (offline: the legacy
test files themselves run through ``run_legacy.py``)."""

from pathlib import Path

from tests.legacy import run_legacy
from tests.legacy.expectations import SKIP, XFAIL

MIGRATION = (Path(__file__).resolve().parents[2] / "docs" / "migration.md").read_text()


def test_every_expected_failure_cites_a_line_of_the_migration_guide():
    lines = MIGRATION.splitlines()
    for test_id, (reason, doc) in XFAIL.items():
        assert reason, test_id
        assert any(line.startswith(doc) for line in lines), (test_id, doc)


def test_every_entry_names_a_listed_legacy_file_and_a_reason():
    files = set(run_legacy.FILES.values())
    for test_id, reason in [*SKIP.items(), *((k, v[0]) for k, v in XFAIL.items())]:
        assert test_id.split("::")[0] in files, test_id
        assert len(reason) > 20, test_id
    assert not set(SKIP) & set(XFAIL)
