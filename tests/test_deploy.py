"""The production compose file (deploy/compose.yaml) cannot be started here (no container engine on the
development and CI machines): its YAML syntax, its topology and its security properties are checked instead."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from faceleads.config import Settings

pytestmark = pytest.mark.no_database  # never touches the database: run once, on SQLite

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_topology(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"proxy", "app", "worker", "postgres", "postgres-replica", "milvus", "etcd", "minio"} <= set(services)
    # Only the TLS reverse proxy is reachable from outside; the back-end networks are internal.
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published == {"proxy"} and services["proxy"]["ports"] == ["443:443"]
    assert compose["networks"]["backend"] == {"internal": True} and compose["networks"]["milvus"] == {"internal": True}
    for name in ("app", "worker"):
        env = services[name]["environment"]
        assert env["FACELEADS_INDEX_BACKEND"] == "milvus" and env["FACELEADS_MILVUS_URI"].startswith("https://")
        assert env["FACELEADS_MODE"] == "production" and "postgres:5432" in env["FACELEADS_DATABASE_URL"]
    assert services["app"]["command"] == ["faceleads", "serve"]


def test_no_secret_in_the_file(compose: dict[str, Any]) -> None:
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    for match in re.finditer(r"^\s*[A-Z_]*(PASSWORD|TOKEN|SECRET)[A-Z_]*:\s*(\S+)", text, re.MULTILINE):
        assert "${" in match.group(2), f"{match.group(0)!r} must come from the environment file"
    assert "env.example" in text and (DEPLOY / "env.example").exists()


def test_referenced_files_exist_and_scripts_parse(compose: dict[str, Any]) -> None:
    for svc in compose["services"].values():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists() or source.startswith("./tls/"), source  # certs are site-made
    for script in (DEPLOY / "postgres").glob("*.sh"):
        subprocess.run(["bash", "-n", str(script)], check=True)
    assert yaml.safe_load((DEPLOY / "milvus" / "milvus.yaml").read_text())["common"]["security"] == {
        "authorizationEnabled": True,
        "tlsMode": 1,
    }


def test_app_environment_passes_the_production_checks(compose: dict[str, Any], tmp_path: Path) -> None:
    """The app's settings, with the environment file's values filled in, are accepted in production mode."""
    env = compose["services"]["app"]["environment"]
    filled = {k.removeprefix("FACELEADS_").lower(): re.sub(r"\$\{[A-Z_]+:\?\}", "x", str(v)) for k, v in env.items()}
    key = tmp_path / "master.key"
    key.write_text("k" * 44)
    settings = Settings(**{**filled, "data_dir": tmp_path, "master_key_file": key})  # type: ignore[arg-type]
    settings.check_safe()
    assert settings.index_backend == "milvus" and settings.milvus_token == "faceleads:x"
