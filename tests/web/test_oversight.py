"""Agencies and oversight: the owning agency sees every access by a partner agency to its records (API, page, CLI);
oversight reads the audit log, statistics and ratifications of every agency and never an image, a record or a
template; an auditor reads only their own agency's log; statistics break down by legal regime."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from typer.testing import CliRunner

from faceleads.core.audit import AuditEntry
from faceleads.gallery.enrolment import DEFAULT_GALLERY
from faceleads.gallery.galleries import share_gallery
from faceleads.gallery.visibility import DEFAULT_PURPOSE
from faceleads.security.auth import actor_for_user
from faceleads.security.models import User
from tests.security.identity_helpers import PASSWORD
from tests.web.conftest import LEGAL_BASIS, OPEN_CASE_B, PEOPLE, WebEnv
from tests.web.test_security import browser_sign_in, page_client


@pytest.fixture(scope="module")
def shared(web: WebEnv) -> WebEnv:
    """AGA shares its bookings gallery with AGB; AGB's analyst reads an AGA record, photo and landmarks and searches."""
    with web.rt.session_factory() as session:
        admin = actor_for_user(session, session.query(User).filter(User.username == "admin").one())
    share_gallery(web.rt, admin, DEFAULT_GALLERY, "AGB", [DEFAULT_PURPOSE], date.today() - timedelta(days=1))
    b = web.headers("analyst-b")
    sid, img = web.subject_ids["AJ_Cook"], web.image_ids["AJ_Cook"]
    assert web.client.get(f"/api/v1/gallery/subjects/{sid}", headers=b).status_code == 200
    assert web.client.get(f"/api/v1/gallery/images/{img}", headers=b).status_code == 200
    assert web.client.get(f"/api/v1/gallery/images/{img}/landmarks", headers=b).status_code == 200
    with PEOPLE["Abdullah_Gul"][1].open("rb") as fh:
        searched = web.client.post("/api/v1/searches", headers=b, files={"probe": ("p.jpg", fh, "image/jpeg")},
                                   data={"case": OPEN_CASE_B, "reason": "partner search", "legal_basis": LEGAL_BASIS,
                                         "top": "3"})  # fmt: skip
    assert searched.status_code == 201, searched.text
    assert {c["agency"] for c in searched.json()["candidates"]} == {"AGA"}
    # AGA's own analyst reading its own record is not a partner access.
    assert web.client.get(f"/api/v1/gallery/images/{img}", headers=web.headers("analyst")).status_code == 200
    return web


def test_the_owner_sees_every_partner_access(shared: WebEnv) -> None:
    web = shared
    page = web.client.get("/api/v1/partner-accesses", headers=web.headers("auditor")).json()
    actions = [a["action"] for a in page["accesses"]]
    assert actions.count("search_candidate") == 3
    assert {"view_gallery_record", "view_gallery_image", "view_landmarks"} <= set(actions)
    assert page["by_partner"] == {"AGB": page["total"]} and page["total"] == 6
    assert all(a["partner_user"] == "analyst-b" and a["owner_agency"] == "AGA" for a in page["accesses"])
    viewed = next(a for a in page["accesses"] if a["action"] == "view_gallery_image")
    assert viewed["image_id"] == web.image_ids["AJ_Cook"] and viewed["subject_number"] == "AJ_Cook"
    candidates = [a for a in page["accesses"] if a["action"] == "search_candidate"]
    assert {a["case"] for a in candidates} == {OPEN_CASE_B} and candidates[0]["object_ref"].startswith("search:")
    # The administrator of the owning agency sees the same; the partner's analyst, nothing (and it is audited).
    assert web.client.get("/api/v1/partner-accesses", headers=web.headers("admin")).json()["total"] == 6
    refused = web.client.get("/api/v1/partner-accesses", headers=web.headers("analyst-b"))
    assert refused.status_code == 403
    # The page.
    client = page_client(web)
    browser_sign_in(client, "auditor")
    html = client.get("/partner-access")
    assert html.status_code == 200 and "AGB · analyst-b" in html.text and "search candidate" in html.text
    with web.rt.session_factory() as session:
        reads = session.query(AuditEntry).filter(AuditEntry.action == "view_partner_accesses").count()
        refusal = session.query(AuditEntry).filter(AuditEntry.action == "view_partner_access",
                                                   AuditEntry.outcome == "denied").count()  # fmt: skip
    assert reads >= 3 and refusal == 1


def test_partner_access_from_the_command_line(shared: WebEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    from faceleads.cli import context
    from faceleads.cli.main import app
    from faceleads.config import get_settings

    monkeypatch.setenv("FACELEADS_DATA_DIR", str(shared.settings.data_dir))
    if shared.settings.database_url:  # the PostgreSQL pass: the CLI works on the same database
        monkeypatch.setenv("FACELEADS_DATABASE_URL", shared.settings.database_url)
    get_settings.cache_clear()
    monkeypatch.setattr(context, "_runtime", shared.rt)
    runner = CliRunner()
    try:
        assert runner.invoke(app, ["login", "--username", "auditor"], input=f"{PASSWORD}\n\n").exit_code == 0
        result = runner.invoke(app, ["audit", "partner-access", "--partner", "AGB", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["total"] == 6
    finally:
        get_settings.cache_clear()


def test_oversight_reads_every_agency_and_no_image(shared: WebEnv) -> None:
    web = shared
    o = web.headers("oversight")
    everything = web.client.get("/api/v1/audit/entries", headers=o, params={"limit": 500}).json()
    assert {"AGA", "AGB"} <= {e["agency_code"] for e in everything["entries"]}
    only_b = web.client.get("/api/v1/audit/entries", headers=o, params={"agency": "AGB", "limit": 500}).json()
    assert only_b["total"] > 0 and {e["agency_code"] for e in only_b["entries"]} == {"AGB"}
    exported = web.client.get("/api/v1/audit/export", headers=o, params={"agency": "AGB", "format": "json"})
    assert exported.status_code == 200 and all(e["agency_code"] == "AGB" for e in exported.json())
    partners = web.client.get("/api/v1/partner-accesses", headers=o, params={"agency": "AGA"}).json()
    assert partners["total"] == 6
    assert web.client.get("/api/v1/ratifications", headers=o, params={"state": "all"}).status_code == 200
    stats = web.client.get("/api/v1/audit/stats", headers=o).json()
    assert {(r["agency"], r["regime"]) for r in stats} >= {("AGB", "investigative")}
    # Never an image, a record, landmarks, a candidate list or a search.
    sid, img = web.subject_ids["AJ_Cook"], web.image_ids["AJ_Cook"]
    for path in (f"/api/v1/gallery/images/{img}", f"/api/v1/gallery/subjects/{sid}",
                 f"/api/v1/gallery/images/{img}/landmarks", "/api/v1/gallery/subjects", "/api/v1/case-searches/1",
                 "/api/v1/case-searches/1/candidates"):  # fmt: skip
        assert web.client.get(path, headers=o).status_code == 403, path
    # An agency's own auditor reads its own log only: another agency's is refused, and the refusal audited.
    refused = web.client.get("/api/v1/audit/entries", headers=web.headers("auditor"), params={"agency": "AGB"})
    assert refused.status_code == 403 and "own agency only" in refused.json()["detail"]
    with web.rt.session_factory() as session:
        assert session.query(AuditEntry).filter(AuditEntry.username == "auditor", AuditEntry.action == "audit_read",
                                                AuditEntry.object_ref == "audit_log/agency:AGB",
                                                AuditEntry.outcome == "denied").count() == 1  # fmt: skip


def test_statistics_page_breaks_down_by_regime(shared: WebEnv) -> None:
    client = page_client(shared)
    browser_sign_in(client, "supervisor")
    page = client.get("/statistics")
    assert page.status_code == 200 and "By legal regime" in page.text and "investigative" in page.text


def test_the_system_operator_creates_agencies_on_the_web(shared: WebEnv) -> None:
    from tests.web.test_security import csrf_of

    client = page_client(shared)
    browser_sign_in(client, "operator")
    page = client.get("/operator")
    assert page.status_code == 200 and "AGB" in page.text
    created = client.post("/operator/agencies", data={
        "csrf": csrf_of(page.text), "code": "AGW", "name": "Web Police", "admin_username": "agw-chief",
        "admin_password": PASSWORD}, follow_redirects=False)  # fmt: skip
    assert created.status_code == 303 and "AGW" in client.get(created.headers["location"]).text
    granted = client.post("/operator/roles", data={
        "csrf": csrf_of(page.text), "username": "agw-chief", "role": "oversight", "change": "grant"},
        follow_redirects=False)  # fmt: skip
    assert granted.status_code == 303
    chief = shared.sign_in("agw-chief")
    me = shared.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {chief}"}).json()
    assert me["agency_code"] == "AGW" and me["roles"] == ["administrator", "oversight"]
    with shared.rt.session_factory() as session:
        entry = session.query(AuditEntry).filter(AuditEntry.action == "agency_create").one()
        assert entry.username == "operator" and entry.details["first_admin"] == "agw-chief"
