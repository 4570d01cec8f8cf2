"""Shared fixtures: paths to the real face data, settings in a temporary data directory, one face engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from faceleads.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
FACES_DIR = (REPO_ROOT / ".." / "shared" / "faces").resolve()
LFW_DIR = FACES_DIR / "lfw-dev"
WEB_DIR = FACES_DIR / "web-photos"


def pytest_configure(config: pytest.Config) -> None:
    if not LFW_DIR.is_dir():
        raise pytest.UsageError(
            f"test data not found at {FACES_DIR} (the shared faces folder must sit beside the repo)"
        )


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    return LFW_DIR


@pytest.fixture(scope="session")
def web_dir() -> Path:
    return WEB_DIR


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Dev-mode settings whose data directory is a fresh temporary folder."""
    monkeypatch.setenv("FACELEADS_DATA_DIR", str(tmp_path / "data"))
    from faceleads.config import get_settings

    get_settings.cache_clear()
    yield Settings(data_dir=tmp_path / "data")
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def engine():  # type: ignore[no-untyped-def]
    """One real face engine (real ONNX models) for the whole test session."""
    from faceleads.vision.engine import FaceEngine

    return FaceEngine(Settings())


@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """A command-line runner on a fresh dev-mode data directory, nobody signed in."""
    from faceleads.config import get_settings

    monkeypatch.setenv("FACELEADS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FACELEADS_MODE", "dev")
    monkeypatch.delenv("FACELEADS_SESSION", raising=False)
    monkeypatch.delenv("FACELEADS_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()
