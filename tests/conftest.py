"""Shared fixtures: paths to the real face data, settings in a temporary data directory, one face engine, and the
test database (SQLite files by default; PostgreSQL when ``FACELEADS_TEST_DATABASE_URL`` is set, see tests/dbs.py).

Faces come from two places:

- ``tests/data/lfw-mini``: a small subset of LFW's development set kept in the repository (its README says which
  photos and why), so that a fresh clone runs every test that needs real faces;
- the full development set (``../shared/faces`` beside the repository, or the folder named by
  ``FACELEADS_TEST_FACES``), used only by the tests that measure over all of it. When it is absent those tests
  are reported as skipped with the reason; a ``FACELEADS_TEST_FACES`` that names a wrong folder is an error.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from faceleads.config import Settings
from tests import dbs

REPO_ROOT = Path(__file__).resolve().parents[1]
LFW_DIR = REPO_ROOT / "tests" / "data" / "lfw-mini"
FACES_ENV = "FACELEADS_TEST_FACES"


def _full_faces_dir() -> Path | None:
    """The full face data folder (holding ``lfw-dev/`` and ``web-photos/``), or None when it is not here."""
    named = os.environ.get(FACES_ENV)
    folder = Path(named).expanduser().resolve() if named else (REPO_ROOT.parent / "shared" / "faces").resolve()
    if (folder / "lfw-dev" / "labels.csv").is_file():
        return folder
    if named:
        raise pytest.UsageError(f"{FACES_ENV}={named} does not hold the face data (no lfw-dev/labels.csv in it)")
    return None


FULL_FACES_DIR = _full_faces_dir()
FULL_SET_MISSING = (
    f"needs the full LFW development set: put the shared faces folder at {REPO_ROOT.parent / 'shared' / 'faces'} "
    f"or name it in {FACES_ENV}"
)


def lfw_identities(root: Path = LFW_DIR) -> dict[str, list[Path]]:
    """Identities of an LFW-layout folder (``labels.csv``) -> their photos, in file order."""
    people: dict[str, list[Path]] = defaultdict(list)
    with (root / "labels.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            people[row["identity"]].append(root / row["path"])
    return dict(people)


def lfw_gender(root: Path = LFW_DIR) -> dict[str, str]:
    """Identity -> gender label (M, F, blank or "conflict") of an LFW-layout folder."""
    with (root / "labels.csv").open(newline="") as fh:
        return {row["identity"]: row["gender"] for row in csv.DictReader(fh)}


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    """The in-repository LFW subset (same layout as ``lfw-dev``: images/, labels.csv, plus pairs.txt)."""
    return LFW_DIR


@pytest.fixture(scope="session")
def full_lfw_dir() -> Path:
    """The full LFW development set; the test is skipped when it is not available."""
    if FULL_FACES_DIR is None:
        pytest.skip(FULL_SET_MISSING)
    return FULL_FACES_DIR / "lfw-dev"


@pytest.fixture(scope="session")
def web_dir() -> Path:
    """The web photographs of the full face data; the test is skipped when they are not available."""
    if FULL_FACES_DIR is None or not (FULL_FACES_DIR / "web-photos").is_dir():
        pytest.skip(FULL_SET_MISSING)
    return FULL_FACES_DIR / "web-photos"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "no_database: never touches the database (run once, on SQLite; skipped in the PostgreSQL pass)"
    )
    config.addinivalue_line(
        "markers", "measurement: an accuracy measurement over the full face data (run once, in the SQLite pass)"
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    database = f"PostgreSQL ({dbs.TEST_DATABASE_ENV})" if dbs.ON_POSTGRES else "SQLite files (embedded default)"
    faces = str(FULL_FACES_DIR) if FULL_FACES_DIR else "absent (tests needing it are skipped)"
    return [f"faceleads test database: {database}", f"faceleads full face data: {faces}"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not dbs.ON_POSTGRES:
        return
    no_database = pytest.mark.skip(reason="does not use the database: covered by the SQLite run")
    measurement = pytest.mark.skip(reason="accuracy measurement, not a database test: covered by the SQLite run")
    for item in items:
        if item.get_closest_marker("no_database"):
            item.add_marker(no_database)
        elif item.get_closest_marker("measurement"):
            item.add_marker(measurement)


# Each scope drops the test databases created while it was active (PostgreSQL runs only; a no-op on SQLite).
@pytest.fixture(scope="session", autouse=True)
def _session_databases() -> Iterator[None]:
    yield
    dbs.dispose()


@pytest.fixture(scope="module", autouse=True)
def _module_databases() -> Iterator[None]:
    position = dbs.mark()
    yield
    dbs.drop_since(position)


@pytest.fixture(autouse=True)
def _test_databases() -> Iterator[None]:
    position = dbs.mark()
    yield
    dbs.drop_since(position)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Dev-mode settings whose data directory is a fresh temporary folder (and, on PostgreSQL, a fresh database);
    the environment points the process-wide settings (CLI commands) at the same place."""
    data_dir = tmp_path / "data"
    for name, value in dbs.database_env(data_dir).items():
        monkeypatch.setenv(name, value)
    from faceleads.config import get_settings

    get_settings.cache_clear()
    yield dbs.settings_for(data_dir)
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def engine():  # type: ignore[no-untyped-def]
    """One real face engine (real ONNX models) for the whole test session."""
    from faceleads.vision.engine import FaceEngine

    return FaceEngine(Settings())


@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """A command-line runner on a fresh dev-mode data directory (and, on PostgreSQL, a fresh database), nobody
    signed in."""
    from faceleads.config import get_settings

    monkeypatch.delenv("FACELEADS_DATABASE_URL", raising=False)
    for name, value in dbs.database_env(tmp_path / "data").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FACELEADS_MODE", "dev")
    monkeypatch.delenv("FACELEADS_SESSION", raising=False)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()
