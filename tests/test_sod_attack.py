"""Regression test of issue #11, finding 2: one administrator alone reaches face images.

The attack: an administrator creates a user with the analyst role, records a certification for it, signs in as it
(they chose its password) and views face images — or resets an existing analyst's password and signs in with the new
one. Tried through the command line, the REST API and the web pages; it must fail at every step until a second
person (a supervisor, and for the certification a training officer) approves, and every refusal is audited.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from faceleads.core.audit import AuditEntry
from tests.security.identity_helpers import PASSWORD
from tests.web.conftest import WebEnv, build_env
from tests.web.test_security import browser_sign_in, csrf_of, page_client

NEW_PASSWORD = "admin-knows-th1s-one"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, engine: Any) -> Iterator[WebEnv]:
    yield from build_env(tmp_path_factory.mktemp("sod"), engine)


def _denied(env: WebEnv, username: str, action: str, object_ref: str) -> int:
    with env.rt.session_factory() as session:
        return session.query(AuditEntry).filter(AuditEntry.username == username, AuditEntry.action == action,
                                                AuditEntry.object_ref == object_ref,
                                                AuditEntry.outcome == "denied").count()  # fmt: skip


def _roles_of(env: WebEnv, username: str) -> list[str]:
    listed = env.client.get("/api/v1/admin/users", headers=env.headers("admin")).json()
    return next(u["effective_roles"] for u in listed if u["username"] == username)


Run = Callable[..., str]


@pytest.fixture()
def cli(env: WebEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    """Run ``faceleads`` commands against the test app's data directory: run(*args, input=..., code=...)."""
    from faceleads.cli import context
    from faceleads.cli.main import app
    from faceleads.config import get_settings

    monkeypatch.setenv("FACELEADS_DATA_DIR", str(env.settings.data_dir))
    if env.settings.database_url:  # the PostgreSQL pass: the CLI works on the same database
        monkeypatch.setenv("FACELEADS_DATABASE_URL", env.settings.database_url)
    monkeypatch.delenv("FACELEADS_SESSION", raising=False)
    get_settings.cache_clear()
    monkeypatch.setattr(context, "_runtime", env.rt)
    runner = CliRunner()

    def run(*args: str, input: str | None = None, code: int = 0) -> str:
        result = runner.invoke(app, list(args), input=input)
        assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}"
        return " ".join(result.output.split())

    yield run
    get_settings.cache_clear()


def _login(run: Run, user: str, password: str = PASSWORD, code: int = 0) -> str:
    return run("login", "--username", user, input=f"{password}\n\n", code=code)


def test_cli(env: WebEnv, cli: Run, tmp_path: Path) -> None:
    image = str(env.image_ids["AJ_Cook"])
    photo = tmp_path / "face.jpg"
    _login(cli, "admin")
    created = cli("admin", "user-create", "mole-cli", "--role", "analyst", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert "waiting for a second person's approval" in created
    assert "training_officer" in cli("admin", "certify", "mole-cli", "--expires", "2099-01-01", code=2)
    assert "needs one of the roles supervisor" in cli("admin", "approve", "1", code=2)
    reset = cli("admin", "password-reset", "analyst", input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert "waiting for a second person's approval" in reset
    # Signed in as the new account: no role reaches a face image.
    _login(cli, "mole-cli")
    assert "may not view gallery image" in cli("gallery", "photo", image, "--out", str(photo), code=2)
    assert not photo.exists()
    # The reset password does not open the analyst's account; the analyst's own still does.
    assert "sign-in refused" in _login(cli, "analyst", NEW_PASSWORD, code=2)
    assert _denied(env, "mole-cli", "view_gallery_image", f"image:{image}") == 1
    assert _roles_of(env, "mole-cli") == []

    # The second people: a training officer records the certification, a supervisor approves.
    _login(cli, "training")
    assert "waiting" in cli("admin", "certify", "mole-cli", "--expires", "2099-01-01", "--reference", "C-1")
    _login(cli, "supervisor")
    pending = json.loads(cli("admin", "approvals", "--json"))
    for request in pending:
        if request["target"] == "mole-cli":
            cli("admin", "approve", str(request["id"]), "--note", "new analyst, start date confirmed")
        else:  # the analyst never asked for a new password
            cli("admin", "reject", str(request["id"]), "--note", "not requested by the user")
    _login(cli, "mole-cli")
    cli("gallery", "photo", image, "--out", str(photo))
    assert photo.read_bytes()[:2] == b"\xff\xd8"  # only now, after two other people acted


def test_api(env: WebEnv) -> None:
    image = env.image_ids["Aaron_Peirsol"]
    admin = env.headers("admin")
    created = env.client.post("/api/v1/admin/users", headers=admin,
                              json={"username": "mole-api", "password": PASSWORD, "roles": ["analyst"]})  # fmt: skip
    assert created.status_code == 201 and created.json()["pending"]
    refused = env.client.post("/api/v1/admin/users/mole-api/certifications", headers=admin,
                              json={"expires_on": "2099-01-01"})  # fmt: skip
    assert refused.status_code == 403 and "training_officer" in refused.json()["detail"]
    approval = created.json()["approvals"][0]["id"]
    assert env.client.post(f"/api/v1/approvals/{approval}/approve", headers=admin, json={}).status_code == 403
    mole = env.sign_in("mole-api")
    seen = env.client.get(f"/api/v1/gallery/images/{image}", headers={"Authorization": f"Bearer {mole}"})
    assert seen.status_code == 403 and "may not view gallery image" in seen.json()["detail"]
    reset = env.client.post("/api/v1/admin/users/analyst/password", headers=admin, json={"password": NEW_PASSWORD})
    assert reset.status_code == 202
    hijack = env.client.post("/api/v1/auth/sign-in", json={"username": "analyst", "password": NEW_PASSWORD})
    assert hijack.status_code == 401
    assert _denied(env, "mole-api", "view_gallery_image", f"image:{image}") == 1

    certified = env.client.post("/api/v1/admin/users/mole-api/certifications", headers=env.headers("training"),
                                json={"expires_on": "2099-01-01"})  # fmt: skip
    assert certified.status_code == 202
    supervisor = env.headers("supervisor")
    for request in env.client.get("/api/v1/approvals", headers=supervisor).json():
        if request["target"] == "mole-api":
            assert env.client.post(f"/api/v1/approvals/{request['id']}/approve", headers=supervisor,
                                   json={"note": "ok"}).status_code == 200  # fmt: skip
        else:
            env.client.post(f"/api/v1/approvals/{request['id']}/reject", headers=supervisor,
                            json={"note": "not requested"})  # fmt: skip
    seen = env.client.get(f"/api/v1/gallery/images/{image}", headers={"Authorization": f"Bearer {mole}"})
    assert seen.status_code == 200 and seen.headers["content-type"].startswith("image/")


def test_web(env: WebEnv) -> None:
    image = env.image_ids["Adam_Sandler"]
    admin = page_client(env)
    browser_sign_in(admin, "admin")
    token = csrf_of(admin.get("/admin").text)
    created = admin.post("/admin/users", data={"csrf": token, "username": "mole-web", "password": PASSWORD,
                                               "roles": ["analyst"]}, follow_redirects=False)  # fmt: skip
    assert created.status_code == 303
    assert "waiting for a second person" in admin.get(created.headers["location"]).text
    certify = admin.post("/admin/users/mole-web/certify", data={"csrf": token, "expires_on": "2099-01-01"})
    assert certify.status_code == 403 and "training_officer" in certify.text
    page = admin.get("/approvals")
    assert page.status_code == 200 and "grant the role analyst to mole-web" in page.text
    approval = next(a for a in env.client.get("/api/v1/approvals", headers=env.headers("supervisor")).json()
                    if a["target"] == "mole-web")["id"]  # fmt: skip
    own = admin.post(f"/approvals/{approval}", data={"csrf": token, "decision": "approve"})
    assert own.status_code == 403
    mole = page_client(env)
    browser_sign_in(mole, "mole-web")
    assert mole.get(f"/gallery/images/{image}").status_code == 403
    assert _denied(env, "mole-web", "view_gallery_image", f"image:{image}") == 1

    trainer = page_client(env)
    browser_sign_in(trainer, "training")
    recorded = trainer.post("/approvals/certifications", data={
        "csrf": csrf_of(trainer.get("/approvals").text), "username": "mole-web", "expires_on": "2099-01-01"},
        follow_redirects=False)  # fmt: skip
    assert recorded.status_code == 303
    supervisor = page_client(env)
    browser_sign_in(supervisor, "supervisor")
    listing = supervisor.get("/approvals")
    for request in env.client.get("/api/v1/approvals", headers=env.headers("supervisor")).json():
        if request["target"] == "mole-web":
            done = supervisor.post(f"/approvals/{request['id']}", data={
                "csrf": csrf_of(listing.text), "decision": "approve", "note": "confirmed"}, follow_redirects=False)
            assert done.status_code == 303
    assert _roles_of(env, "mole-web") == ["analyst"]
    seen = mole.get(f"/gallery/images/{image}")
    assert seen.status_code == 200 and seen.headers["content-type"].startswith("image/")


def test_every_step_was_audited(env: WebEnv) -> None:
    """The whole story is in the log: requests, refusals, approvals, and who applied each change."""
    with env.rt.session_factory() as session:
        rows = session.query(AuditEntry).filter(AuditEntry.action.in_(
            ("approval_request", "approval_approve", "approval_reject", "permission_change"))).all()  # fmt: skip
    approved = [e for e in rows if e.action == "approval_approve" and e.outcome == "ok"]
    assert {e.username for e in approved} == {"supervisor"} and len(approved) == 6  # 3 moles x (role + cert)
    applied = [e for e in rows if e.action == "permission_change" and e.outcome == "ok"]
    assert all(e.details.get("approval_id") for e in applied)
    assert len([e for e in rows if e.action == "approval_reject"]) == 2  # the analyst's password, twice
    with env.rt.session_factory() as session:
        refused = session.query(AuditEntry).filter(AuditEntry.username == "admin", AuditEntry.outcome == "denied").all()
    # The administrator's certifications and self-approvals were refused through each of the three channels.
    assert sorted(e.action for e in refused) == ["admin_certifications"] * 3 + ["approve_access"] * 3


def test_nothing_leaked_to_a_page_client_without_session(env: WebEnv) -> None:
    anonymous = TestClient(env.client.app, base_url="http://127.0.0.1")
    assert anonymous.get(f"/gallery/images/{env.image_ids['AJ_Cook']}", follow_redirects=False).status_code == 303
