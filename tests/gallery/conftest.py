"""Gallery test helpers: runtimes in temporary data directories sharing one face engine, manifests."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from faceleads.config import Settings
from faceleads.gallery.enrolment import RecordInput
from faceleads.gallery.runtime import GalleryRuntime
from tests.lawful import list_authorities

# The agencies gallery tests act for; each holds its photos under the test authorities (tests/lawful.py).
TEST_AGENCIES = ("MET", "NYPD", "DEV", "AGA", "AGB")

MANIFEST_HEADER = ["agency", "subject", "booking", "date", "authority", "photo", "sex"]


def write_manifest(path: Path, rows: list[list[str]], header: list[str] | None = None) -> Path:
    """Write a manifest CSV. Absolute photo paths are written relative to the manifest's folder, as manifests must
    name them (enrol with ``photo_root`` = a folder holding them, e.g. LFW_DIR for the faces kept in the repository)."""
    header = header or MANIFEST_HEADER
    column = header.index("photo") if "photo" in header else None
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            if column is not None and column < len(row) and os.path.isabs(row[column]):
                row = [*row[:column], os.path.relpath(row[column], path.parent), *row[column + 1 :]]
            writer.writerow(row)
    return path


def record(subject: str, booking: str, day: date = date(2021, 5, 4), **kw: object) -> RecordInput:
    """A booking record with a fixed authority."""
    return RecordInput(subject, booking, day, "Police and Criminal Evidence Act 1984 s.64A", **kw)  # type: ignore[arg-type]


@pytest.fixture
def rt(settings: Settings, engine) -> Iterator[GalleryRuntime]:  # type: ignore[no-untyped-def]
    """A gallery runtime in a fresh data directory, reusing the session's face engine."""
    runtime = GalleryRuntime(settings, face_engine=engine)
    for code in TEST_AGENCIES:
        list_authorities(runtime, code)
    yield runtime
    runtime.close()
