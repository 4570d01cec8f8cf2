"""`faceleads serve`: first start creates the administrator (password from the environment or printed once), the
demo loader is idempotent, and the served app is the real one (uvicorn.run is intercepted to get the app)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from faceleads.cli.main import app as cli
from faceleads.config import Settings
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.web.demo import ensure_admin


def test_serve_bootstraps_admin_from_environment(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                                 engine: Any) -> None:  # fmt: skip
    served: dict[str, Any] = {}

    def fake_run(app: Any, **kwargs: Any) -> None:
        served["app"], served["kwargs"] = app, kwargs

    import uvicorn

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setattr("faceleads.vision.engine.FaceEngine", lambda *a, **k: engine)
    monkeypatch.setenv("FACELEADS_ADMIN_PASSWORD", "Correct-h0rse-battery")
    monkeypatch.setenv("FACELEADS_WEB_PORT", "8123")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 0, result.output
    assert "administrator admin" in result.output and "from FACELEADS_ADMIN_PASSWORD" in result.output
    assert "Correct-h0rse-battery" not in result.output, "a password from the environment is never printed"
    assert served["kwargs"]["host"] == "127.0.0.1" and served["kwargs"]["port"] == 8123
    with TestClient(served["app"], base_url="http://127.0.0.1") as client:
        signed = client.post("/api/v1/auth/sign-in", json={"username": "admin", "password": "Correct-h0rse-battery"})
        assert signed.status_code == 200
        assert signed.json()["user"]["roles"] == ["administrator", "system_operator"]
    # Second start: no new administrator, nothing printed about passwords.
    again = CliRunner().invoke(cli, ["serve"])
    assert again.exit_code == 0 and "first start" not in again.output


def test_generated_admin_password(settings: Settings, engine: Any) -> None:
    rt = GalleryRuntime(settings, face_engine=engine)
    try:
        password = ensure_admin(rt, None)
        assert password is not None and len(password) >= 20
        assert ensure_admin(rt, None) is None
    finally:
        rt.close()


def test_demo_refused_in_production_and_no_password_printed(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """serve --demo would create users with known passwords and print them: never in production mode."""
    import base64

    import uvicorn

    from faceleads.config import get_settings

    started: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: started.append(app))
    monkeypatch.setenv("FACELEADS_MODE", "production")
    monkeypatch.setenv("FACELEADS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FACELEADS_DATABASE_URL", f"sqlite:///{tmp_path / 'data' / 'faceleads.db'}")
    monkeypatch.setenv("FACELEADS_MASTER_KEY", base64.b64encode(bytes(range(32))).decode())
    monkeypatch.setenv("FACELEADS_ADMIN_PASSWORD", "Correct-h0rse-battery")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["serve", "--demo"])
        assert result.exit_code == 2, result.output
        assert "production" in result.output and "Demo users" not in result.output
        assert "analyst" not in result.output and not started
        monkeypatch.delenv("FACELEADS_ADMIN_PASSWORD")
        get_settings.cache_clear()
        # Nor is a generated administrator password printed (into the service's logs) in production.
        first = CliRunner().invoke(cli, ["serve"])
        assert first.exit_code == 2 and "FACELEADS_ADMIN_PASSWORD" in first.output and not started
        assert "password: " not in first.output
    finally:
        get_settings.cache_clear()
