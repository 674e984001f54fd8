"""Every Python block of the README and of ``docs/`` runs verbatim.

The blocks of one page run in order in one namespace (a page reads as one session), in a
temporary directory, with matplotlib on its file-only backend.
"""

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(page):
    return BLOCK.findall(page.read_text())


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.name)
def test_python_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": f"docs_{page.stem}"}
    for number, block in enumerate(python_blocks(page), 1):
        try:
            exec(compile(block, f"{page.name}, block {number}", "exec"), namespace)
        except ImportError as missing:  # an optional extra (torch, pymc, ...) not installed
            pytest.skip(f"{page.name} block {number} needs {missing.name}")
    assert os.getcwd() == str(tmp_path)
