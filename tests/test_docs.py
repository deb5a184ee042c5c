"""The documentation a user can open: docs/model.md exists, and every citation of it points at a real section."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITED = ("README.md", "CHANGELOG.md", "multispin_cli", "tests", "benchmarks")


def _texts():
    for name in CITED:
        path = ROOT / name
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for f in files:
            yield f, f.read_text(encoding="utf-8")


def _sections() -> set[str]:
    text = (ROOT / "docs" / "model.md").read_text(encoding="utf-8")
    return {m.group(1) for m in re.finditer(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", text, flags=re.M)}


def test_no_citation_of_an_internal_reference():
    internal = "MODEL" + ".md"  # spelled apart so this file does not cite it either
    offenders = [str(f.relative_to(ROOT)) for f, text in _texts() if internal in text]
    assert offenders == []


def test_every_model_citation_names_an_existing_section():
    sections = _sections()
    assert {"1", "2.1", "2.5", "3", "4", "5", "6"} <= sections
    cited = set()
    for f, text in _texts():
        for m in re.finditer(r"docs/model\.md(?:\]\(docs/model\.md\))?\s+(\d+(?:\.\d+)?)", text):
            cited.add((str(f.relative_to(ROOT)), m.group(1)))
    assert cited, "nothing cites docs/model.md"
    missing = sorted((f, s) for f, s in cited if s not in sections)
    assert missing == []
