"""Legal regimes and exigent ratification through the three entry points: an administrator puts a purpose in the
exigent regime (page, API, CLI), an analyst searches at once, a supervisor sees it pending and ratifies it (page,
API, CLI)."""

from __future__ import annotations

import json
from datetime import date

import pytest
from typer.testing import CliRunner

from faceleads.casework import cases
from faceleads.gallery.enrolment import RecordInput, enrol_record
from faceleads.gallery.galleries import create_gallery
from faceleads.security.auth import actor_for_user
from faceleads.security.models import User
from tests.security.identity_helpers import PASSWORD
from tests.web.conftest import AUTHORITY, LEGAL_BASIS, OPEN_CASE, PEOPLE, WebEnv
from tests.web.test_security import browser_sign_in, csrf_of, page_client

EXIGENT = "exigent-threat-to-life"


def _actor(web: WebEnv, username: str):  # type: ignore[no-untyped-def]
    with web.rt.session_factory() as session:
        return actor_for_user(session, session.query(User).filter(User.username == username).one())


def _exigent_search(web: WebEnv) -> int:
    """An exigent request declared by the investigator, searched at once by the analyst (quick search, API)."""
    case_id = cases.find_case(web.rt, _actor(web, "investigator"), OPEN_CASE).id
    declared = web.client.post(f"/api/v1/cases/{case_id}/requests", headers=web.headers("investigator"),
                               json={"purpose": EXIGENT, "justification": "Child abducted an hour ago"})  # fmt: skip
    assert declared.status_code == 201 and declared.json()["status"] == "ready", declared.text
    assert declared.json()["regime"] == "exigent"
    with PEOPLE["Abdullah_Gul"][1].open("rb") as fh:
        found = web.client.post("/api/v1/searches", headers=web.headers("analyst"),
                                files={"probe": ("p.jpg", fh, "image/jpeg")},
                                data={"case": OPEN_CASE, "reason": "exigent", "legal_basis": LEGAL_BASIS,
                                      "purpose": EXIGENT, "request_id": str(declared.json()["id"]), "top": "2"})
    assert found.status_code == 201, found.text
    return int(found.json()["case_search_id"])


@pytest.fixture(scope="module")
def urgent(web: WebEnv) -> WebEnv:
    create_gallery(web.rt, _actor(web, "admin"), "urgent", AUTHORITY, [EXIGENT])
    enrol_record(web.rt, _actor(web, "records"), RecordInput("GUL-U", "U-1", date(2021, 2, 1), AUTHORITY,
                                                            gallery="urgent"), [PEOPLE["Abdullah_Gul"][0]])
    return web


def test_regimes_and_ratification_on_the_pages(urgent: WebEnv) -> None:
    web = urgent
    admin = page_client(web)
    browser_sign_in(admin, "admin")
    page = admin.get("/regimes")
    assert page.status_code == 200 and EXIGENT in page.text and "48 h" in page.text
    token = csrf_of(page.text)
    done = admin.post("/regimes/purposes", data={"csrf": token, "purpose": EXIGENT, "regime": "exigent"},
                      follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and "is now exigent" in admin.get(done.headers["location"]).text
    windows = admin.post("/regimes/windows", data={"csrf": token, "exigent_window_hours": "24",
                                                   "authorisation_hours": "72"}, follow_redirects=False)
    assert windows.status_code == 303 and "24 h" in admin.get("/regimes").text
    case_search = _exigent_search(web)
    supervisor = page_client(web)
    browser_sign_in(supervisor, "supervisor")
    listing = supervisor.get("/ratifications")
    assert listing.status_code == 200 and "Child abducted an hour ago" in listing.text and "pending" in listing.text
    ratified = supervisor.post(f"/ratifications/{case_search}", data={
        "csrf": csrf_of(listing.text), "reason": "Credible threat, DI on call agreed", "decision": "ratify"},
        follow_redirects=False)  # fmt: skip
    assert ratified.status_code == 303 and "ratified" in supervisor.get(ratified.headers["location"]).text
    auditor = page_client(web)
    browser_sign_in(auditor, "auditor")
    decided = auditor.get("/ratifications?state=decided")
    assert decided.status_code == 200 and "Credible threat" in decided.text


def test_regimes_and_ratification_through_the_api(urgent: WebEnv) -> None:
    web = urgent
    admin = web.headers("admin")
    set_to = web.client.put(f"/api/v1/regimes/purposes/{EXIGENT}", headers=admin, json={"regime": "exigent"})
    assert set_to.status_code == 200
    assert {p["code"]: p["regime"] for p in set_to.json()["purposes"]}[EXIGENT] == "exigent"
    bad = web.client.put(f"/api/v1/regimes/purposes/{EXIGENT}", headers=admin, json={"regime": "martial"})
    assert bad.status_code == 422 and "unknown regime" in bad.json()["detail"]
    window = web.client.put("/api/v1/regimes/windows", headers=admin, json={"exigent_window_hours": 48})
    assert window.json()["exigent_window_hours"] == 48
    case_search = _exigent_search(web)
    pending = web.client.get("/api/v1/ratifications", headers=web.headers("supervisor")).json()
    assert [r["case_search_id"] for r in pending if r["state"] == "pending"] == [case_search]
    by_analyst = web.client.post(f"/api/v1/case-searches/{case_search}/ratification", headers=web.headers("analyst"),
                                 json={"reason": "mine"})  # fmt: skip
    assert by_analyst.status_code == 403
    refused = web.client.post(f"/api/v1/case-searches/{case_search}/ratification",
                              headers=web.headers("supervisor"), json={"reason": "Routine case", "grant": False})
    assert refused.status_code == 200 and refused.json()["state"] == "refused" and refused.json()["locked"]
    locked = web.client.get(f"/api/v1/case-searches/{case_search}/candidates", headers=web.headers("analyst"))
    assert locked.status_code == 403 and "refused to ratify" in locked.json()["detail"]


def test_regimes_and_ratification_from_the_command_line(urgent: WebEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    from faceleads.cli import context
    from faceleads.cli.main import app
    from faceleads.config import get_settings

    monkeypatch.setenv("FACELEADS_DATA_DIR", str(urgent.settings.data_dir))
    if urgent.settings.database_url:  # the PostgreSQL pass: the CLI works on the same database
        monkeypatch.setenv("FACELEADS_DATABASE_URL", urgent.settings.database_url)
    get_settings.cache_clear()
    monkeypatch.setattr(context, "_runtime", urgent.rt)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.output

    def login(user: str) -> None:
        assert runner.invoke(app, ["login", "--username", user], input=f"{PASSWORD}\n\n").exit_code == 0

    try:
        login("admin")
        shown = json.loads(run("regime", "set", EXIGENT, "exigent", "--json"))
        assert {p["code"]: p["regime"] for p in shown["purposes"]}[EXIGENT] == "exigent"
        assert json.loads(run("regime", "window", "--exigent-hours", "36", "--json"))["exigent_window_hours"] == 36
        assert "exigent" in run("regime", "show")
        case_search = _exigent_search(urgent)
        login("supervisor")
        pending = json.loads(run("ratification", "list", "--json"))
        assert case_search in [r["case_search_id"] for r in pending]
        run("ratification", "ratify", str(case_search), "--reason", "Threat confirmed by the control room")
        decided = json.loads(run("ratification", "list", "--state", "decided", "--json"))
        assert next(r for r in decided if r["case_search_id"] == case_search)["state"] == "ratified"
        login("analyst")
        assert "needs one of the roles supervisor" in " ".join(run("ratification", "ratify", str(case_search),
                                                                   "--reason", "x", code=2).split())
    finally:
        get_settings.cache_clear()


def test_a_lapsed_exigent_search_is_flagged_on_the_auditors_dashboard(urgent: WebEnv) -> None:
    from datetime import timedelta

    from faceleads.casework.models import CaseSearch
    from faceleads.core.audit import AuditEntry
    from faceleads.core.uow import transaction
    from faceleads.db import utcnow

    def home_reads() -> int:
        with web.rt.session_factory() as session:
            return session.query(AuditEntry).filter(AuditEntry.action == "view_ratifications",
                                                    AuditEntry.username == "auditor").count()

    web = urgent
    web.client.put(f"/api/v1/regimes/purposes/{EXIGENT}", headers=web.headers("admin"), json={"regime": "exigent"})
    # Nothing awaits ratification (earlier tests' searches were decided): the home page shows no list and writes no
    # view_ratifications entry on each visit; once one is shown, the read is audited with what was shown.
    auditor = page_client(web)
    browser_sign_in(auditor, "auditor")
    assert web.client.get("/api/v1/ratifications", headers=web.headers("supervisor")).json() == []
    before = home_reads()
    quiet = auditor.get("/")
    assert quiet.status_code == 200 and "Exigent searches awaiting ratification" not in quiet.text
    assert home_reads() == before
    case_search = _exigent_search(web)
    with transaction(web.rt.session_factory) as session:  # its 48 h window passed without a ratification
        row = session.get(CaseSearch, case_search)
        assert row is not None
        row.ratify_by = utcnow() - timedelta(minutes=5)
    shown_before = home_reads()
    home = auditor.get("/")
    assert home.status_code == 200 and "Exigent searches awaiting ratification" in home.text
    assert f"Exigent search {case_search}" in home.text and "candidates locked" in home.text
    assert home_reads() == shown_before + 1, "a ratification list shown on the home page is an audited read"
