"""One table of refusals, tried through the command line, the REST API and the web pages alike.

Each rule refuses what it must whichever entry point is used, because the refusal happens inside the domain service
that every entry point calls; and each refusal is in the audit log, with the user, the object and the outcome.
Another agency's records are answered like missing ones (404 / "no ..."), a missing role or rule with 403.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete
from typer.testing import CliRunner

from faceleads.casework import admin as lists
from faceleads.casework import cases, regimes
from faceleads.casework.models import CaseSearch
from faceleads.casework.quick import quick_search
from faceleads.core.actor import Actor, Role
from faceleads.core.audit import AuditEntry
from faceleads.core.uow import transaction
from faceleads.db import utcnow
from faceleads.gallery.enrolment import RecordInput, enrol_record
from faceleads.gallery.galleries import create_gallery
from faceleads.security import users
from faceleads.security.auth import actor_for_user
from faceleads.security.models import User
from faceleads.security.throttle import RateLimitBucket
from tests.security.identity_helpers import PASSWORD, add_user
from tests.web.conftest import AUTHORITY, LEGAL_BASIS, OPEN_CASE, PEOPLE, WebEnv, build_env
from tests.web.test_security import browser_sign_in, csrf_of

PROBE: Path = PEOPLE["Abdullah_Gul"][1]
EXIGENT, LIVE = "exigent-threat-to-life", "live-watchlist"
IDS: dict[str, int] = {}  # approval, case-search and destruction request ids made by the fixture
SCRAPED = "scraped from public social media profiles"
PERIOD = {"from": "2026-01-01", "to": "2026-06-30"}


def _actor(web: WebEnv, username: str) -> Actor:
    with web.rt.session_factory() as session:
        return actor_for_user(session, session.query(User).filter(User.username == username).one())


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, engine: Any) -> Iterator[WebEnv]:
    """The web test environment (AGA with one user per role and a small gallery, AGB with an analyst), plus an
    AGA analyst whose certification has expired, an open destruction request of AGA, a pending approval, an exigent
    purpose with two exigent searches (one past its ratification window) and a purpose of the live deployment regime."""
    from faceleads.governance import destruction

    for web in build_env(tmp_path_factory.mktemp("refusals"), engine):
        rt = web.rt
        with rt.session_factory() as session:
            aga = session.query(User).filter(User.username == "analyst").one().agency_id
        add_user(rt.session_factory, aga, "analyst-expired", {Role.ANALYST},
                 certified_until=utcnow() - timedelta(days=1))  # fmt: skip
        web.tokens["analyst-expired"] = web.sign_in("analyst-expired")
        IDS["destruction"] = destruction.request_destruction(
            rt, _actor(web, "records"), web.subject_ids["Adam_Sandler"], requester="the subject",
            grounds="Acquitted at trial on 2026-01-12").id  # fmt: skip
        # Separation of duties: a supervisor-administrator creates an account; the administrator requests a
        # biometric role for it; its creator may not approve it.
        add_user(rt.session_factory, aga, "sup-admin", {Role.SUPERVISOR, Role.ADMINISTRATOR})
        web.tokens["sup-admin"] = web.sign_in("sup-admin")
        users.create_user(rt.session_factory, _actor(web, "sup-admin"), "AGA", "planted", PASSWORD)
        IDS["approval"] = users.grant_role(rt.session_factory, _actor(web, "admin"), "planted",
                                           "analyst").approvals[0].id  # fmt: skip
        # Legal regimes: exigent searches on a gallery that allows the exigent purpose; a live deployment purpose.
        admin, supervisor, analyst = _actor(web, "admin"), _actor(web, "supervisor"), _actor(web, "analyst")
        create_gallery(rt, admin, "urgent", AUTHORITY, [EXIGENT])
        for n, person in enumerate(("Abdullah_Gul", "Ai_Sugiyama"), start=1):
            enrol_record(rt, _actor(web, "records"), RecordInput(f"{person}-U", f"U-{n}", date(2021, 2, n), AUTHORITY,
                                                                 gallery="urgent"), [PEOPLE[person][0]])  # fmt: skip
        regimes.set_purpose_regime(rt, admin, EXIGENT, "exigent")
        lists.add_purpose(rt, admin, LIVE, "Live watch-list deployment")
        regimes.set_purpose_regime(rt, admin, LIVE, "live_deployment")
        case_id = cases.find_case(rt, supervisor, OPEN_CASE).id
        declared = cases.open_request(rt, supervisor, case_id, EXIGENT, "Armed hostage taker, identity unknown")
        for name in ("pending", "lapsed"):
            IDS[name] = quick_search(rt, analyst, OPEN_CASE, PROBE, reason="exigent", legal_basis=LEGAL_BASIS,
                                     purpose=EXIGENT, request_id=declared.id, top=2).case_search_id  # fmt: skip
        with transaction(rt.session_factory) as session:
            lapsed = session.get(CaseSearch, IDS["lapsed"])
            assert lapsed is not None
            lapsed.ratify_by = utcnow() - timedelta(hours=1)
        yield web


def _enrol_form() -> dict[str, str]:
    return {"subject_number": "S-SCRAPED", "booking_number": "B-SCRAPED", "booking_date": "2024-03-01",
            "legal_authority": SCRAPED}  # fmt: skip


def _photos() -> dict[str, tuple[str, bytes, str]]:
    return {"photos": ("p.jpg", PROBE.read_bytes(), "image/jpeg")}


@dataclass(frozen=True)
class Refusal:
    """A request every entry point must refuse: who asks, for what, and what the refusal must say."""

    name: str
    user: str
    cli: Callable[[WebEnv, Path], list[str]]
    api: Callable[[WebEnv], tuple[str, str, dict[str, Any]]]
    page: Callable[[WebEnv], tuple[str, str, dict[str, Any]]]
    status: int  # HTTP status through the API and the pages
    says: Callable[[WebEnv], str]  # in the CLI message and the API/page detail
    audited: Callable[[WebEnv], tuple[str, str]]  # (action, object) of the denied audit entry
    cli_input: str | None = None  # what the command line is typed (a prompted password)


def _search_form(case: str) -> dict[str, str]:
    return {"case": case, "reason": "who is this?", "legal_basis": LEGAL_BASIS, "purpose": "criminal-investigation"}


def _files() -> dict[str, tuple[str, bytes, str]]:
    return {"probe": ("probe.jpg", PROBE.read_bytes(), "image/jpeg")}


def _search_cli(case: str) -> Callable[[WebEnv, Path], list[str]]:
    return lambda env, tmp: ["search", str(PROBE), "--case", case, "--reason", "who is this?", "--legal-basis",
                             LEGAL_BASIS]  # fmt: skip


REFUSALS = [
    Refusal(
        "search without an open case",
        "analyst",
        _search_cli("FAKE-999"),
        lambda env: ("POST", "/api/v1/searches", {"data": _search_form("FAKE-999"), "files": _files()}),
        lambda env: ("POST", "/search", {"data": _search_form("FAKE-999"), "files": _files()}),
        403,
        lambda env: "'FAKE-999' is not a case of AGA",
        lambda env: ("search", "case:FAKE-999"),
    ),
    Refusal(
        "search by an analyst whose certification expired",
        "analyst-expired",
        _search_cli(OPEN_CASE),
        lambda env: ("POST", "/api/v1/searches", {"data": _search_form(OPEN_CASE), "files": _files()}),
        lambda env: ("POST", "/search", {"data": _search_form(OPEN_CASE), "files": _files()}),
        403,
        lambda env: "may not search: it needs one of the roles analyst",
        lambda env: ("search", f"case:{OPEN_CASE}"),
    ),
    Refusal(
        "another agency's subject record",
        "analyst-b",
        lambda env, tmp: ["gallery", "subject", str(env.subject_ids["AJ_Cook"])],
        lambda env: ("GET", f"/api/v1/gallery/subjects/{env.subject_ids['AJ_Cook']}", {}),
        lambda env: ("GET", f"/gallery/subjects/{env.subject_ids['AJ_Cook']}", {}),
        404,
        lambda env: f"no subject {env.subject_ids['AJ_Cook']}",
        lambda env: ("view_gallery_record", f"subject:{env.subject_ids['AJ_Cook']}"),
    ),
    Refusal(
        "another agency's photo",
        "analyst-b",
        lambda env, tmp: ["gallery", "photo", str(env.image_ids["AJ_Cook"]), "--out", str(tmp / "photo.jpg")],
        lambda env: ("GET", f"/api/v1/gallery/images/{env.image_ids['AJ_Cook']}", {}),
        lambda env: ("GET", f"/gallery/images/{env.image_ids['AJ_Cook']}", {}),
        404,
        lambda env: f"no image {env.image_ids['AJ_Cook']}",
        lambda env: ("view_gallery_image", f"image:{env.image_ids['AJ_Cook']}"),
    ),
    Refusal(
        "an auditor viewing a face image",
        "auditor",
        lambda env, tmp: ["gallery", "photo", str(env.image_ids["Ai_Sugiyama"]), "--out", str(tmp / "photo.jpg")],
        lambda env: ("GET", f"/api/v1/gallery/images/{env.image_ids['Ai_Sugiyama']}", {}),
        lambda env: ("GET", f"/gallery/images/{env.image_ids['Ai_Sugiyama']}", {}),
        403,
        lambda env: "may not view gallery image",
        lambda env: ("view_gallery_image", f"image:{env.image_ids['Ai_Sugiyama']}"),
    ),
    # --- the lawful gallery (docs/gallery.md "Lawful gallery") and transparency (docs/transparency.md)
    Refusal(
        "enrolment under a legal authority that is not on the agency's list",
        "records",
        lambda env, tmp: ["enroll", "record", str(PROBE), "--subject", "S-SCRAPED", "--booking", "B-SCRAPED",
                          "--date", "2024-03-01", "--authority", SCRAPED],
        lambda env: ("POST", "/api/v1/gallery/records", {"data": _enrol_form(), "files": _photos()}),
        lambda env: ("POST", "/enrol/record", {"data": _enrol_form(), "files": _photos()}),
        403,
        lambda env: f"'{SCRAPED}' is not on AGA's list of legal authorities",
        lambda env: ("enrol", "booking:B-SCRAPED"),
    ),
    Refusal(
        "the list of legal authorities changed by a records officer",
        "records",
        lambda env, tmp: ["authority", "add", "MINE", "--title", "An authority of my own"],
        lambda env: ("POST", "/api/v1/authorities", {"json": {"code": "MINE", "title": "An authority of my own"}}),
        lambda env: ("POST", "/lawful/authorities", {"data": {"code": "MINE", "title": "An authority of my own"}}),
        403,
        lambda env: "may not admin records policy",
        lambda env: ("admin_records_policy", "legal_authorities"),
    ),
    Refusal(
        "a disposition recorded on another agency's booking",
        "records-b",
        lambda env, tmp: ["disposition", "record", "--booking", "AGA-000", "--kind", "acquitted", "--date",
                          "2025-01-02", "--reference", "CC 1"],
        lambda env: ("POST", "/api/v1/dispositions", {"json": {"booking_number": "AGA-000", "kind": "acquitted",
                                                               "occurred_on": "2025-01-02", "reference": "CC 1"}}),
        lambda env: ("POST", "/lawful/dispositions", {"data": {"booking_number": "AGA-000", "kind": "acquitted",
                                                              "occurred_on": "2025-01-02", "reference": "CC 1"}}),
        404,
        lambda env: "no booking 'AGA-000' in AGB",
        lambda env: ("disposition", "booking:AGA-000"),
    ),
    Refusal(
        "a destruction request denied without a written reason",
        "supervisor",
        lambda env, tmp: ["destruction", "decide", str(IDS["destruction"]), "--deny", "--reason", " "],
        lambda env: ("POST", f"/api/v1/destruction/requests/{IDS['destruction']}/decision",
                     {"json": {"approve": False, "reason": " "}}),
        lambda env: ("POST", f"/destruction/{IDS['destruction']}/decision", {"data": {"decision": "deny",
                                                                                      "reason": " "}}),
        422,
        lambda env: "a denial needs a written reason",
        lambda env: ("destruction", f"destruction_request:{IDS['destruction']}"),
    ),
    Refusal(
        "a lead outcome signed off by someone who is not an investigator",
        "analyst",
        lambda env, tmp: ["lead", "outcome", "1", "--outcome", "charged", "--notes", "charged with robbery"],
        lambda env: ("POST", "/api/v1/leads/1/outcome", {"json": {"outcome": "charged",
                                                                  "notes": "charged with robbery"}}),
        lambda env: ("POST", "/outcomes/1", {"data": {"outcome": "charged", "notes": "charged with robbery"}}),
        403,
        lambda env: "may not record outcome",
        lambda env: ("record_outcome", "lead:1"),
    ),
    Refusal(
        "the transparency report produced by an analyst",
        "analyst",
        lambda env, tmp: ["report", "transparency", "--from", PERIOD["from"], "--to", PERIOD["to"]],
        lambda env: ("GET", "/api/v1/reports/transparency", {"params": PERIOD}),
        lambda env: ("GET", "/transparency", {"params": PERIOD}),
        403,
        lambda env: "may not transparency report",
        lambda env: ("transparency_report", "transparency_report:AGA"),
    ),
    Refusal(
        "the transparency report of another agency",
        "auditor",
        lambda env, tmp: ["report", "transparency", "--agency", "AGB", "--from", PERIOD["from"], "--to",
                          PERIOD["to"]],
        lambda env: ("GET", "/api/v1/reports/transparency", {"params": {**PERIOD, "agency": "AGB"}}),
        lambda env: ("GET", "/transparency", {"params": {**PERIOD, "agency": "AGB"}}),
        403,
        lambda env: "(own agency only)",
        lambda env: ("transparency_report", "transparency_report:AGB"),
    ),
    Refusal(
        "oversight viewing a face image",
        "oversight",
        lambda env, tmp: ["gallery", "photo", str(env.image_ids["Ai_Sugiyama"]), "--out", str(tmp / "photo.jpg")],
        lambda env: ("GET", f"/api/v1/gallery/images/{env.image_ids['Ai_Sugiyama']}", {}),
        lambda env: ("GET", f"/gallery/images/{env.image_ids['Ai_Sugiyama']}", {}),
        403,
        lambda env: "may not view gallery image",
        lambda env: ("view_gallery_image", f"image:{env.image_ids['Ai_Sugiyama']}"),
    ),
    Refusal(
        "an administrator recording a certification",
        "admin",
        lambda env, tmp: ["admin", "certify", "analyst2", "--expires", "2099-01-01"],
        lambda env: ("POST", "/api/v1/admin/users/analyst2/certifications", {"json": {"expires_on": "2099-01-01"}}),
        lambda env: ("POST", "/admin/users/analyst2/certify", {"data": {"expires_on": "2099-01-01"}}),
        403,
        lambda env: "needs one of the roles training_officer",
        lambda env: ("admin_certifications", "user:analyst2"),
    ),
    Refusal(
        "an administrator approving access",
        "admin",
        lambda env, tmp: ["admin", "approve", str(IDS["approval"])],
        lambda env: ("POST", f"/api/v1/approvals/{IDS['approval']}/approve", {"json": {}}),
        lambda env: ("POST", f"/approvals/{IDS['approval']}", {"data": {"decision": "approve"}}),
        403,
        lambda env: "needs one of the roles supervisor",
        lambda env: ("approve_access", f"approval:{IDS['approval']}"),
    ),
    Refusal(
        "approving access for a user one created",
        "sup-admin",
        lambda env, tmp: ["admin", "approve", str(IDS["approval"])],
        lambda env: ("POST", f"/api/v1/approvals/{IDS['approval']}/approve", {"json": {}}),
        lambda env: ("POST", f"/approvals/{IDS['approval']}", {"data": {"decision": "approve"}}),
        403,
        lambda env: "you created planted's account",
        lambda env: ("approval_approve", f"approval:{IDS['approval']}"),
    ),
    Refusal(
        "an administrator creating an agency",
        "admin",
        lambda env, tmp: ["admin", "agency-create", "AGX", "X police", "--admin", "agx-chief"],
        lambda env: ("POST", "/api/v1/admin/agencies", {"json": {"code": "AGX", "name": "X police",
                                                                  "admin_username": "agx-chief",
                                                                  "admin_password": PASSWORD}}),
        lambda env: ("POST", "/operator/agencies", {"data": {"code": "AGX", "name": "X police",
                                                             "admin_username": "agx-chief",
                                                             "admin_password": PASSWORD}}),
        403,
        lambda env: "needs one of the roles system_operator",
        lambda env: ("admin_agencies", "agency:AGX"),
        cli_input=f"{PASSWORD}\n{PASSWORD}\n",
    ),
    Refusal(
        "ratifying an exigent search one declared",
        "supervisor",
        lambda env, tmp: ["ratification", "ratify", str(IDS["pending"]), "--reason", "justified"],
        lambda env: ("POST", f"/api/v1/case-searches/{IDS['pending']}/ratification", {"json": {"reason": "ok"}}),
        lambda env: ("POST", f"/ratifications/{IDS['pending']}", {"data": {"reason": "ok", "decision": "ratify"}}),
        403,
        lambda env: "declared the emergency",
        lambda env: ("exigent_ratification", f"case_search:{IDS['pending']}"),
    ),
    Refusal(
        "reading the candidates of an exigent search nobody ratified in time",
        "analyst",
        lambda env, tmp: ["adjudicate", "list", str(IDS["lapsed"])],
        lambda env: ("GET", f"/api/v1/case-searches/{IDS['lapsed']}/candidates", {}),
        lambda env: ("GET", f"/case-searches/{IDS['lapsed']}", {}),
        403,
        lambda env: "locked: the exigent search was not ratified",
        lambda env: ("view_candidates", f"case_search:{IDS['lapsed']}"),
    ),
    Refusal(
        "a live deployment purpose for a retrospective search",
        "analyst",
        lambda env, tmp: [*_search_cli(OPEN_CASE)(env, tmp), "--purpose", LIVE],
        lambda env: ("POST", "/api/v1/searches", {"data": {**_search_form(OPEN_CASE), "purpose": LIVE},
                                                  "files": _files()}),
        lambda env: ("POST", "/search", {"data": {**_search_form(OPEN_CASE), "purpose": LIVE}, "files": _files()}),
        403,
        lambda env: "belongs to the live deployment regime",
        lambda env: ("request_open", f"case:{_case_id(env)}"),
    ),
]


def _case_id(env: WebEnv) -> int:
    return cases.find_case(env.rt, _actor(env, "supervisor"), OPEN_CASE).id


def _cli(env: WebEnv, user: str, args: list[str], monkeypatch: pytest.MonkeyPatch,
         typed: str | None = None) -> tuple[int, str]:
    """Sign in with 'faceleads login' (the session file under the data directory) and run the command as that user."""
    from faceleads.cli import context
    from faceleads.cli.main import app
    from faceleads.config import get_settings

    monkeypatch.setenv("FACELEADS_DATA_DIR", str(env.settings.data_dir))
    if env.settings.database_url:  # the PostgreSQL pass: the CLI signs in against the same database
        monkeypatch.setenv("FACELEADS_DATABASE_URL", env.settings.database_url)
    get_settings.cache_clear()
    monkeypatch.setattr(context, "_runtime", env.rt)
    runner = CliRunner()
    login = runner.invoke(app, ["login", "--username", user], input=f"{PASSWORD}\n\n")
    assert login.exit_code == 0, login.output
    result = runner.invoke(app, args, input=typed)
    get_settings.cache_clear()
    return result.exit_code, " ".join(result.output.split())


def _denials(env: WebEnv, user: str, after: int) -> list[tuple[str, str]]:
    with env.rt.session_factory() as session:
        rows = session.query(AuditEntry).filter(AuditEntry.seq > after, AuditEntry.username == user,
                                                AuditEntry.outcome == "denied").all()  # fmt: skip
    return [(e.action, e.object_ref) for e in rows]


def _head(env: WebEnv) -> int:
    with env.rt.session_factory() as session:
        return int(session.query(AuditEntry.seq).order_by(AuditEntry.seq.desc()).limit(1).scalar() or 0)


@pytest.mark.parametrize("channel", ["cli", "api", "web"])
@pytest.mark.parametrize("refusal", REFUSALS, ids=[r.name for r in REFUSALS])
def test_refused_alike_everywhere_and_audited(
    env: WebEnv, refusal: Refusal, channel: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _head(env)
    if channel == "cli":
        code, output = _cli(env, refusal.user, refusal.cli(env, tmp_path), monkeypatch, refusal.cli_input)
        assert code == 2, output
        assert refusal.says(env) in output, output
        assert not (tmp_path / "photo.jpg").exists(), "nothing was written"
    elif channel == "api":
        method, path, kwargs = refusal.api(env)
        response = env.client.request(method, path, headers=env.headers(refusal.user), **kwargs)
        assert response.status_code == refusal.status, response.text
        assert refusal.says(env) in response.json()["detail"]
    else:
        client = TestClient(env.client.app, base_url="http://127.0.0.1")
        # Every case signs in again from the same address: start each with fresh sign-in buckets (they are in the
        # database and shared by the module's cases; the throttle itself is tested in tests/web/test_api.py).
        with env.rt.session_factory.begin() as session:
            session.execute(delete(RateLimitBucket))
        browser_sign_in(client, refusal.user)
        method, path, kwargs = refusal.page(env)
        if method == "POST":
            kwargs = {**kwargs, "data": {**kwargs["data"], "csrf": csrf_of(client.get("/").text)}}
        response = client.request(method, path, **kwargs)
        assert response.status_code == refusal.status, response.text
        assert "text/html" in response.headers["content-type"]
        # Pages start the service's sentence with a capital letter.
        page = response.text.lower()
        assert refusal.says(env).replace("'", "&#39;").lower() in page or refusal.says(env).lower() in page
    assert refusal.audited(env) in _denials(env, refusal.user, before), "the refusal is in the audit log"
