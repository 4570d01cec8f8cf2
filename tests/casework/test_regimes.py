"""Legal regimes with real faces and models: per-agency administration, the exigent search ratified afterwards (and
locked when nobody ratified it in time), the scope and expiry of a supervisor's authorisation, the live deployment
regime refused for retrospective searches, and statistics by regime. Every refusal is checked in the audit log."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from faceleads.casework import adjudication as adj
from faceleads.casework import admin, cases, probes, regimes, reporting, searching
from faceleads.casework.models import CaseRequest, CaseSearch
from faceleads.core.actor import Actor, Role
from faceleads.core.audit import AuditEntry, verify_chain
from faceleads.core.uow import transaction
from faceleads.db import utcnow
from faceleads.errors import PermissionDenied, ValidationError
from faceleads.gallery.enrolment import RecordInput, enrol_record
from faceleads.gallery.galleries import create_gallery
from faceleads.gallery.models import SearchCandidate, SearchRecord
from faceleads.governance import audit_log
from tests.casework.conftest import AUTHORITY, CI, EXIGENT, Env

OBTAINED = datetime(2026, 1, 5, 22, 10, tzinfo=UTC)
MISSING = "missing-person"


def _probe(env: Env, case_id: int, person: int, photo: int = 1) -> int:
    name = list(env.people)[person]
    probe_id = probes.add_photo(env.rt, env.investigator, case_id, env.people[name][photo].read_bytes(),
                                source="CCTV still", obtained_by="PC 1", obtained_at=OBTAINED,
                                legal_basis="PACE s.19 seizure", filename="still.jpg").id  # fmt: skip
    probes.pick_face(env.rt, env.analyst, probe_id, 1)
    return probe_id


def _denied(env: Env, action: str, object_ref: str) -> list[str]:
    with env.rt.session_factory() as session:
        rows = session.scalars(select(AuditEntry).where(
            AuditEntry.action == action, AuditEntry.object_ref == object_ref, AuditEntry.outcome == "denied"))
        return [str(e.details.get("reason")) for e in rows]


def _age(env: Env, case_search_id: int, hours: float) -> None:
    """Move a search's ratification deadline into the past, as if ``hours`` had passed since it was due."""
    with transaction(env.rt.session_factory) as session:
        cs = session.get(CaseSearch, case_search_id)
        assert cs is not None and cs.ratify_by is not None
        cs.ratify_by = utcnow() - timedelta(hours=hours)


def test_regimes_are_administered_per_agency_and_audited(env: Env) -> None:
    rt = env.rt
    shown = regimes.show_regimes(rt, env.analyst)
    assert shown.exigent_window_hours == 48 and shown.authorisation_hours == 168
    assert {p.code: p.regime for p in shown.purposes}[EXIGENT] == "investigative"  # the default
    with pytest.raises(PermissionDenied, match="needs one of the roles administrator"):
        regimes.set_purpose_regime(rt, env.supervisor, EXIGENT, "exigent")
    assert _denied(env, "admin_regimes", f"purpose:{EXIGENT}")
    with pytest.raises(ValidationError, match="unknown regime 'urgent'"):
        regimes.set_purpose_regime(rt, env.admin, EXIGENT, "urgent")
    with pytest.raises(ValidationError, match="from 1 to 336"):
        regimes.set_windows(rt, env.admin, exigent_window_hours=0)
    after = regimes.set_purpose_regime(rt, env.admin, EXIGENT, "exigent")
    assert {p.code: p.regime for p in after.purposes}[EXIGENT] == "exigent"
    assert regimes.set_windows(rt, env.admin, exigent_window_hours=24).exigent_window_hours == 24
    regimes.set_windows(rt, env.admin, exigent_window_hours=48)
    other = Actor("admin-b", 999, frozenset({Role.ADMINISTRATOR}), None, "NOWHERE")
    assert {p.code: p.regime for p in regimes.show_regimes(rt, other).purposes}[EXIGENT] == "investigative"
    with rt.session_factory() as session:
        changes = session.scalars(select(AuditEntry).where(AuditEntry.action == "setting_change")
                                  .order_by(AuditEntry.seq)).all()  # fmt: skip
        assert [c.details["setting"] for c in changes] == ["regime", "regime_windows", "regime_windows"]


def test_exigent_search_at_once_then_ratified_or_locked(env: Env) -> None:
    rt = env.rt
    regimes.set_purpose_regime(rt, env.admin, EXIGENT, "exigent")
    case_id = env.fresh_case("MET/2026/EX1")
    request = cases.open_request(rt, env.investigator, case_id, EXIGENT, "Kidnapping in progress, child at risk")
    assert request.status == "ready" and request.regime == "exigent"  # no prior authorisation: search at once
    probe_id = _probe(env, case_id, 0)
    before = utcnow()
    found = searching.run_search(rt, env.analyst, request.id, [probe_id], top=3)
    with rt.session_factory() as session:
        cs = session.get(CaseSearch, found.id)
        assert cs is not None and cs.regime == "exigent" and cs.ratification == "pending"
        assert before + timedelta(hours=47.9) < cs.ratify_by.replace(tzinfo=UTC) <= utcnow() + timedelta(hours=48)
    # Pending: the analyst works at once; supervisors and auditors see it waiting.
    assert len(adj.candidate_list(rt, env.analyst, found.id)) == 3
    (pending,) = regimes.list_ratifications(rt, env.supervisor, state="pending")
    assert pending.case_search_id == found.id and pending.state == "pending" and not pending.locked
    # Nobody ratifies their own emergency: not the analyst (no role), nor a supervisor who ran or declared it.
    with pytest.raises(PermissionDenied, match="needs one of the roles supervisor"):
        regimes.ratify_search(rt, env.analyst, found.id, "looks fine")

    # The window passes: flagged, and every read of its candidates is refused and audited.
    _age(env, found.id, 1)
    auditor = Actor("aud", env.admin.agency_id, frozenset({Role.AUDITOR}), None, "MET")
    (lapsed,) = regimes.list_ratifications(rt, auditor, state="lapsed")
    assert lapsed.case_search_id == found.id and lapsed.locked
    candidate = found.result["candidates"][0]
    with rt.session_factory() as session:
        cand_id = session.scalars(select(SearchCandidate.id).where(
            SearchCandidate.search_id == found.search_id, SearchCandidate.rank == 1)).one()
    locked = [
        lambda: adj.candidate_list(rt, env.analyst, found.id),
        lambda: searching.show_case_search(rt, env.analyst, found.id),
        lambda: searching.show_search(rt, env.analyst, found.search_id),
        lambda: adj.candidate_photo(rt, env.analyst, cand_id),
        lambda: adj.adjudicate(rt, env.analyst, found.id, 1, "excluded", "not him"),
        lambda: adj.submit_adjudication(rt, env.analyst, found.id),
        lambda: reporting.export_report(rt, env.analyst, found.id),
    ]
    for attempt in locked:
        with pytest.raises(PermissionDenied, match="locked: the exigent search was not ratified"):
            attempt()
    assert _denied(env, "view_candidates", f"case_search:{found.id}")
    assert _denied(env, "view_gallery_image", f"image:{candidate['image_id']}")
    assert _denied(env, "adjudicate", f"case_search:{found.id}")

    # A late ratification unlocks it, and stays recorded as late.
    done = regimes.ratify_search(rt, env.supervisor, found.id, "Threat to life confirmed by the duty inspector")
    assert done.state == "ratified_late" and done.decided_by == "sue.supervisor" and not done.locked
    assert len(adj.candidate_list(rt, env.analyst, found.id)) == 3
    with pytest.raises(ValidationError, match="already ratified"):
        regimes.ratify_search(rt, env.supervisor, found.id, "again")
    assert regimes.list_ratifications(rt, env.supervisor, state="open") == []

    # A second search, refused ratification: locked for good.
    second = searching.run_search(rt, env.analyst, request.id, [probe_id], top=2)
    refused = regimes.ratify_search(rt, env.supervisor, second.id, "No threat to life: should have been routine",
                                    grant=False)  # fmt: skip
    assert refused.state == "refused" and refused.locked
    with pytest.raises(PermissionDenied, match="refused to ratify"):
        adj.candidate_list(rt, env.analyst, second.id)

    # Stats break down by regime; the ratifications are counted.
    rows = audit_log.statistics(rt.session_factory, env.supervisor)
    exigent = audit_log.regime_totals(rows)["exigent"]
    assert exigent["searches"] == 2 and exigent["ratified"] == 1 and exigent["ratification_refused"] == 1
    with rt.session_factory() as session:
        assert verify_chain(session).ok


def test_who_may_ratify_and_how_long_an_exigent_request_lasts(env: Env) -> None:
    rt = env.rt
    regimes.set_purpose_regime(rt, env.admin, EXIGENT, "exigent")
    case_id = env.fresh_case("MET/2026/EX2")
    # A supervisor declares the emergency (opens the request); they may not ratify the search made on it.
    request = cases.open_request(rt, env.supervisor, case_id, EXIGENT, "Hostage situation, suspect unknown")
    probe_id = _probe(env, case_id, 1)
    found = searching.run_search(rt, env.analyst, request.id, [probe_id], top=2)
    with pytest.raises(PermissionDenied, match="declared the emergency"):
        regimes.ratify_search(rt, env.supervisor, found.id, "self-ratified")
    assert _denied(env, "exigent_ratification", f"case_search:{found.id}")
    # A supervisor who also ran the search (as an analyst) may not ratify it either.
    both = Actor(env.analyst.username, env.analyst.agency_id, frozenset({Role.SUPERVISOR}), env.analyst.user_id, "MET")
    with pytest.raises(PermissionDenied, match="analyst who ran an exigent search"):
        regimes.ratify_search(rt, both, found.id, "my own search")
    # Not a search of another regime.
    routine = cases.open_request(rt, env.investigator, case_id, CI, "Identify the suspect")
    plain = searching.run_search(rt, env.analyst, routine.id, [probe_id], top=2)
    with pytest.raises(ValidationError, match="not an exigent search"):
        regimes.ratify_search(rt, env.supervisor, plain.id, "nothing to ratify")
    # The exigent request itself lapses after the window: a new emergency must be declared.
    with transaction(rt.session_factory) as session:
        req = session.get(CaseRequest, request.id)
        assert req is not None
        req.requested_at = utcnow() - timedelta(hours=49)
    with pytest.raises(PermissionDenied, match="lapsed after the 48 h window"):
        searching.run_search(rt, env.analyst, request.id, [probe_id])
    # Moving the purpose to another regime invalidates requests opened under the old one.
    fresh = cases.open_request(rt, env.investigator, case_id, EXIGENT, "Second emergency")
    regimes.set_purpose_regime(rt, env.admin, EXIGENT, "investigative")
    with pytest.raises(PermissionDenied, match="moved from the exigent to the investigative regime"):
        searching.run_search(rt, env.analyst, fresh.id, [probe_id])
    regimes.set_purpose_regime(rt, env.admin, EXIGENT, "exigent")


def test_live_deployment_purposes_never_serve_a_retrospective_search(env: Env) -> None:
    rt = env.rt
    # The live watch-list purpose (faceleads.live) is in the live deployment regime by definition, for every agency.
    admin.add_purpose(rt, env.admin, "live-watchlist", "Live watch-list deployment")
    assert regimes.purpose_regime(rt, env.admin.agency_id, "live-watchlist") == "live_deployment"
    with pytest.raises(ValidationError, match="always live deployment"):
        regimes.set_purpose_regime(rt, env.admin, "live-watchlist", "investigative")
    regimes.set_purpose_regime(rt, env.admin, "live-watchlist", "live_deployment")
    assert regimes.purpose_regime(rt, env.admin.agency_id, "live-watchlist") == "live_deployment"
    # Any other purpose may be put in it by an agency; the regime comes with the new purpose when asked.
    added = admin.add_purpose(rt, env.admin, "live-crowd", "Live crowd deployment", regime="live_deployment")
    assert added.regime == "live_deployment"
    assert {p.code: p.regime for p in admin.list_purposes(rt, env.admin.agency_id)}["live-crowd"] == "live_deployment"
    case_id = env.fresh_case("MET/2026/LIVE")
    with pytest.raises(PermissionDenied, match="live deployment regime"):
        cases.open_request(rt, env.investigator, case_id, "live-watchlist", "Find the suspect on camera")
    assert _denied(env, "request_open", f"case:{case_id}")


def test_authorisation_scope_and_expiry(env: Env) -> None:
    rt = env.rt
    admin.add_purpose(rt, env.admin, MISSING, "Missing person", requires_authorisation=True)
    names = list(env.people)
    gallery_a = create_gallery(rt, env.admin, "mp-a", AUTHORITY, [MISSING])
    gallery_b = create_gallery(rt, env.admin, "mp-b", AUTHORITY, [MISSING])
    for n, (gallery, person) in enumerate((("mp-a", names[2]), ("mp-b", names[3])), start=1):
        rec = RecordInput(f"M{n:04d}", f"MB{n:04d}", date(2021, 1, n), AUTHORITY, gallery=gallery)
        enrol_record(rt, env.records, rec, [env.people[person][0]])
    case_id = env.fresh_case("MET/2026/MP1")
    request = cases.open_request(rt, env.investigator, case_id, MISSING, "Vulnerable adult missing since Friday")
    assert request.status == "awaiting_authorisation"
    probe_id = _probe(env, case_id, 3)
    with pytest.raises(ValidationError, match="cannot widen"):
        cases.authorise_request(rt, env.supervisor, request.id, "scope", galleries=[gallery_a, 99_999])
    with pytest.raises(ValidationError, match="at most 90 days"):
        cases.authorise_request(rt, env.supervisor, request.id, "too long",
                                expires_at=utcnow() + timedelta(days=91))  # fmt: skip
    granted = cases.authorise_request(rt, env.supervisor, request.id, "Only the local custody gallery",
                                      galleries=[gallery_a], expires_at=utcnow() + timedelta(hours=2))  # fmt: skip
    assert granted.authorised_galleries == [gallery_a] and granted.authorised_until is not None
    assert "valid until" in (granted.authorisation or "")
    found = searching.run_search(rt, env.analyst, request.id, [probe_id], top=2)
    with rt.session_factory() as session:
        record = session.get(SearchRecord, found.search_id)
        assert record is not None and record.gallery_ids == [gallery_a]  # mp-b was never searched
    assert gallery_b not in found.result["gallery_ids"]
    # Expired: checked when the search runs, no job needed.
    from faceleads.casework.models import Authorisation

    with transaction(rt.session_factory) as session:
        auth = session.scalars(select(Authorisation).where(Authorisation.request_id == request.id)).one()
        auth.expires_at = utcnow() - timedelta(minutes=1)
    with pytest.raises(PermissionDenied, match=r"authorisation of request \d+ expired"):
        searching.run_search(rt, env.analyst, request.id, [probe_id])
    with rt.session_factory() as session:
        refusal = session.scalars(select(AuditEntry).where(AuditEntry.action == "search",
                                                           AuditEntry.outcome == "denied",
                                                           AuditEntry.object_ref == f"request:{request.id}")).one()
        assert "expired" in str(refusal.details["reason"])
