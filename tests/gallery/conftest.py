"""Gallery test helpers: runtimes in temporary data directories sharing one face engine, manifests."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from faceleads.config import Settings
from faceleads.gallery.enrolment import RecordInput
from faceleads.gallery.runtime import GalleryRuntime

MANIFEST_HEADER = ["agency", "subject", "booking", "date", "authority", "photo", "sex"]


def write_manifest(path: Path, rows: list[list[str]], header: list[str] | None = None) -> Path:
    """Write a manifest CSV."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header or MANIFEST_HEADER)
        writer.writerows(rows)
    return path


def record(subject: str, booking: str, day: date = date(2021, 5, 4), **kw: object) -> RecordInput:
    """A booking record with a fixed authority."""
    return RecordInput(subject, booking, day, "Police and Criminal Evidence Act 1984 s.64A", **kw)  # type: ignore[arg-type]


@pytest.fixture
def rt(settings: Settings, engine) -> Iterator[GalleryRuntime]:  # type: ignore[no-untyped-def]
    """A gallery runtime in a fresh data directory, reusing the session's face engine."""
    runtime = GalleryRuntime(settings, face_engine=engine)
    yield runtime
    runtime.close()
