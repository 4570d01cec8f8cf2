"""Disposition events schedule destruction under the agency's policy; the eligibility checklist is administered per
agency (computed criteria checked against the records); a denial needs a written reason. Real enrolments."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from faceleads.cli import context
from faceleads.cli.context import cli_actor
from faceleads.config import Settings
from faceleads.core.actor import Actor, Role
from faceleads.core.audit import AuditEntry
from faceleads.errors import NotFound, PermissionDenied, ValidationError
from faceleads.gallery.bulk import enrol_manifest
from faceleads.gallery.enrolment import RecordInput, enrol_record
from faceleads.gallery.models import Disposition
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.governance import criteria, destruction, dispositions
from faceleads.governance.criteria import Criterion, Facts, assess
from tests.conftest import LFW_DIR, lfw_identities
from tests.gallery.conftest import write_manifest
from tests.lawful import PACE, list_authorities

PEOPLE = lfw_identities()
NAMES = sorted(n for n, p in PEOPLE.items() if len(p) >= 2)[:6]
TODAY = date(2026, 6, 1)


@pytest.fixture
def rt(settings: Settings, engine) -> Iterator[GalleryRuntime]:  # type: ignore[no-untyped-def]
    runtime = GalleryRuntime(settings, face_engine=engine)
    for code in ("MET", "NYPD"):
        list_authorities(runtime, code)
    yield runtime
    runtime.close()


def _officer(rt: GalleryRuntime, code: str = "MET") -> Actor:
    return cli_actor(rt, code, roles=[Role.RECORDS_OFFICER])


def _admin(rt: GalleryRuntime, code: str = "MET") -> Actor:
    return cli_actor(rt, code, roles=[Role.ADMINISTRATOR])


def _enrol(rt: GalleryRuntime, officer: Actor, name: str, booking: str, day: date = date(2020, 1, 2),
           birth_year: int | None = None) -> int:  # fmt: skip
    rec = RecordInput(name, booking, day, PACE[0], birth_year=birth_year)
    return enrol_record(rt, officer, rec, [PEOPLE[name][0]]).subject_id


def test_a_disposition_opens_the_destruction_request_when_due(rt: GalleryRuntime) -> None:
    officer = _officer(rt)
    subject = _enrol(rt, officer, NAMES[0], "B-1")
    done = dispositions.record_disposition(rt, officer, "B-1", "acquitted", date(2025, 3, 1), "Crown Court T2025/77",
                                           today=TODAY)  # fmt: skip
    assert done.new and done.schedule.state == "request_open" and done.schedule.request_id is not None
    req = destruction.get_request(rt, officer, done.schedule.request_id)
    assert req.subject_id == subject and req.origin == "disposition" and req.status == "requested"
    assert "acquitted on 2025-03-01 (ref Crown Court T2025/77) for booking B-1" in req.grounds
    assert req.requester == "agency disposition policy"
    # The same event again is the same event; a different date for the same kind is a conflict.
    again = dispositions.record_disposition(rt, officer, "B-1", "acquitted", date(2025, 3, 1), "Crown Court T2025/77",
                                            today=TODAY)  # fmt: skip
    assert not again.new and again.schedule.request_id == req.id
    with pytest.raises(ValidationError, match="already has a disposition 'acquitted' of 2025-03-01"):
        dispositions.record_disposition(rt, officer, "B-1", "acquitted", date(2025, 3, 2), "T2025/77", today=TODAY)
    with pytest.raises(ValidationError, match="in the future"):
        dispositions.record_disposition(rt, officer, "B-1", "pardoned", date.today() + timedelta(days=3), "X")
    with pytest.raises(ValidationError, match="bad disposition"):
        dispositions.record_disposition(rt, officer, "B-1", "convicted", date(2025, 3, 1), "X")
    # The schedule report names it; the request then follows the usual checklist and decision.
    (row,) = dispositions.schedule_report(rt, officer, today=TODAY)
    assert (row.state, row.request_id, row.events[0]["kind"]) == ("request_open", req.id, "acquitted")


def test_another_agency_booking_is_answered_like_a_missing_one(rt: GalleryRuntime) -> None:
    _enrol(rt, _officer(rt), NAMES[0], "B-1")
    other = _officer(rt, "NYPD")
    with pytest.raises(NotFound, match="no booking 'B-1' in NYPD"):
        dispositions.record_disposition(rt, other, "B-1", "acquitted", date(2025, 3, 1), "ref")
    with rt.session_factory() as session:
        denial = session.scalars(select(AuditEntry).where(AuditEntry.action == "disposition",
                                                          AuditEntry.outcome == "denied")).one()  # fmt: skip
    assert denial.agency_code == "NYPD" and denial.object_ref == "booking:B-1"
    analyst = cli_actor(rt, "MET", roles=[Role.ANALYST])
    with pytest.raises(PermissionDenied, match="review records"):
        dispositions.record_disposition(rt, analyst, "B-1", "acquitted", date(2025, 3, 1), "ref")


def test_policy_waiting_periods_retention_and_other_bookings(rt: GalleryRuntime) -> None:
    officer, admin = _officer(rt), _admin(rt)
    dispositions.set_rule(rt, admin, "dismissed", "destroy", 90)
    dispositions.set_rule(rt, admin, "pardoned", "retain")
    with pytest.raises(PermissionDenied):
        dispositions.set_rule(rt, officer, "withdrawn", "retain")
    waiting = _enrol(rt, officer, NAMES[0], "W-1")
    kept = _enrol(rt, officer, NAMES[1], "K-1")
    two = _enrol(rt, officer, NAMES[2], "T-1")
    _enrol(rt, officer, NAMES[2], "T-2", date(2021, 5, 5))  # the same person booked again
    day = date(2026, 5, 1)
    s = dispositions.record_disposition(rt, officer, "W-1", "dismissed", day, "MC 55", today=TODAY).schedule
    assert (s.state, s.due_on) == ("scheduled", day + timedelta(days=90))
    s = dispositions.record_disposition(rt, officer, "K-1", "pardoned", day, "Pardon 9", today=TODAY).schedule
    assert s.state == "retained" and "policy keeps records of pardoned bookings" in s.reason
    s = dispositions.record_disposition(rt, officer, "T-1", "withdrawn", day, "CPS 1", today=TODAY).schedule
    assert s.state == "retained" and "booking T-2: has no disposition calling for destruction" in s.reason
    # Nothing due yet; after the waiting period the run opens the request, and says what it did.
    assert dispositions.run(rt, officer, today=TODAY).opened == 0
    assert dispositions.run(rt, officer, today=day + timedelta(days=90), dry_run=True).opened == 0
    later = dispositions.run(rt, officer, today=day + timedelta(days=90))
    assert later.opened == 1
    by_subject = {x.subject_id: x for x in later.schedules}
    assert by_subject[waiting].state == "request_open" and by_subject[kept].state == "retained"
    assert by_subject[two].state == "retained"
    # The second booking disposed of too: the subject falls due.
    s = dispositions.record_disposition(rt, officer, "T-2", "acquitted", day, "CC 3", today=TODAY).schedule
    assert s.state == "request_open"
    with rt.session_factory() as session:
        runs = session.scalars(select(AuditEntry).where(AuditEntry.action == "disposition_run")
                               .order_by(AuditEntry.seq)).all()  # fmt: skip
    assert [r.details["opened_count"] for r in runs] == [0, 0, 1]


def test_a_denied_policy_request_is_not_reopened_and_destruction_removes_the_events(rt: GalleryRuntime) -> None:
    officer = _officer(rt)
    supervisor = cli_actor(rt, "MET", roles=[Role.SUPERVISOR])
    _enrol(rt, officer, NAMES[0], "D-1")
    req_id = dispositions.record_disposition(rt, officer, "D-1", "withdrawn", date(2025, 1, 1), "CPS 7",
                                             today=TODAY).schedule.request_id  # fmt: skip
    assert req_id is not None
    with pytest.raises(ValidationError, match="a denial needs a written reason"):
        destruction.decide(rt, supervisor, req_id, approve=False, reason="  ")
    destruction.decide(rt, supervisor, req_id, approve=False, reason="Charge re-laid on 2025-02-01 (CPS 8)")
    assert dispositions.run(rt, officer, today=TODAY).opened == 0
    (row,) = dispositions.schedule_report(rt, officer, today=TODAY)
    assert row.state == "denied" and "re-laid" in row.reason
    # The re-laid charge (a new booking) ends in an acquittal: an event later than the denial re-opens the question.
    _enrol(rt, officer, NAMES[0], "D-2", date(2025, 2, 1))
    s = dispositions.record_disposition(rt, officer, "D-2", "acquitted", date(2025, 9, 9), "CC 12", today=TODAY)
    new_req = s.schedule.request_id
    assert s.schedule.state == "request_open" and new_req is not None and new_req != req_id
    dispositions.record_disposition(rt, officer, "D-1", "dismissed", date(2025, 9, 9), "CC 12b", today=TODAY)
    # Approved and executed: the events go with the records.
    view = destruction.get_request(rt, officer, new_req)
    for item in view.codes:
        destruction.record_checklist(rt, officer, new_req, item, True, "checked against the court record")
    destruction.decide(rt, supervisor, new_req, approve=True, reason="Acquitted and dismissed: no basis to keep")
    cert = destruction.execute(rt, officer, new_req)
    assert cert["destroyed"]["dispositions_deleted"] == 3
    with rt.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Disposition)) == 0
    assert dispositions.schedule_report(rt, officer, today=TODAY) == []


def test_manifest_disposition_columns(rt: GalleryRuntime, tmp_path: Path) -> None:
    officer = _officer(rt)
    header = ["agency", "subject", "booking", "date", "authority", "photo", "disposition", "disposition_date",
              "disposition_ref"]  # fmt: skip
    rows = [
        ["MET", NAMES[0], "M-1", "2020-01-01", PACE[0], str(PEOPLE[NAMES[0]][0]), "acquitted", "2024-01-01", "CC 1"],
        ["MET", NAMES[0], "M-1", "2020-01-01", PACE[0], str(PEOPLE[NAMES[0]][1]), "acquitted", "2024-01-01", "CC 1"],
        ["MET", NAMES[1], "M-2", "2020-01-01", PACE[0], str(PEOPLE[NAMES[1]][0]), "", "", ""],
        ["MET", NAMES[2], "M-3", "2020-01-01", PACE[0], str(PEOPLE[NAMES[2]][0]), "convicted", "2024-01-01", "x"],
        ["MET", NAMES[3], "M-4", "2020-01-01", PACE[0], str(PEOPLE[NAMES[3]][0]), "withdrawn", "", "CPS"],
    ]
    report = enrol_manifest(rt, officer, write_manifest(tmp_path / "m.csv", rows, header), workers=0,
                            photo_root=LFW_DIR)  # fmt: skip
    assert (report.enrolled, report.errors, report.dispositions) == (3, 2, 1)
    reasons = {r["row"]: r["reason"] for r in report.error_rows}
    assert reasons[4].startswith("bad disposition 'convicted'") and "missing disposition_date" in reasons[5]
    # Scheduled by the manifest, opened by the next run.
    (row,) = dispositions.schedule_report(rt, officer, today=TODAY)
    assert (row.state, row.subject_number) == ("due", NAMES[0])
    assert dispositions.run(rt, officer, today=TODAY).opened == 1
    # A re-run of the same manifest changes nothing.
    again = enrol_manifest(rt, officer, write_manifest(tmp_path / "m.csv", rows, header), workers=0,
                           photo_root=LFW_DIR)  # fmt: skip
    assert again.dispositions == 1
    with rt.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Disposition)) == 1


# --------------------------------------------------------------------------------------------- criteria


def test_assess_computed_criteria() -> None:
    age = Criterion("under_18", "under 18 at every booking", "max_age_at_booking", 18)
    wait = Criterion("wait", "three years since discharge", "waiting_period", 1095)
    facts = Facts(date(2026, 1, 1), 2004, (date(2020, 5, 1),), date(2022, 1, 1))
    assert assess(age, facts).verdict is True  # 15 or 16 in 2020
    assert assess(age, Facts(date(2026, 1, 1), 2000, (date(2020, 5, 1),), None)).verdict is False  # 19 or 20
    assert assess(age, Facts(date(2026, 1, 1), 2002, (date(2020, 5, 1),), None)).verdict is None  # 17 or 18
    assert assess(age, Facts(date(2026, 1, 1), None, (date(2020, 5, 1),), None)).verdict is None
    assert assess(wait, facts).verdict is True
    late = assess(wait, Facts(date(2024, 6, 1), 2004, (), date(2022, 1, 1)))
    assert late.verdict is False and "not before 2024-12-31" in late.explanation  # 2024 is a leap year
    assert assess(wait, Facts(date(2024, 6, 1), 2004, (), None)).verdict is None
    assert assess(Criterion("x", "manual item", "manual"), facts).verdict is None


def test_agency_checklist_snapshot_and_computed_refusals(rt: GalleryRuntime) -> None:
    officer, admin = _officer(rt), _admin(rt)
    supervisor = cli_actor(rt, "MET", roles=[Role.SUPERVISOR])
    young = _enrol(rt, officer, NAMES[0], "Y-1", date(2020, 5, 1), birth_year=2004)
    adult = _enrol(rt, officer, NAMES[1], "A-1", date(2020, 5, 1), birth_year=1990)
    early = destruction.request_destruction(rt, officer, young, requester="the subject", grounds="acquitted 2025")
    assert early.codes == list(destruction.CHECKLIST_ITEMS)
    with pytest.raises(ValidationError, match="parameter in years"):
        criteria.add_criterion(rt, admin, "under_18", "Under 18 at every booking", check="max_age_at_booking")
    with pytest.raises(PermissionDenied):
        criteria.add_criterion(rt, officer, "mine", "A criterion of my own")
    criteria.add_criterion(rt, admin, "under_18", "Under 18 at every booking", check="max_age_at_booking",
                           parameter=18)  # fmt: skip
    criteria.add_criterion(rt, admin, "three_years", "Three years since the discharge", check="waiting_period",
                           parameter=1095)  # fmt: skip
    criteria.withdraw_criterion(rt, admin, "retention_rules_allow", "Covered by the waiting period now")
    listed = {c.code: c for c in criteria.list_criteria(rt, officer)}
    assert not listed["retention_rules_allow"].active and listed["under_18"].parameter == 18
    # New requests carry the new checklist; the open one keeps its own.
    req = destruction.request_destruction(rt, officer, adult, requester="the subject", grounds="acquitted 2025")
    assert req.codes == ["requester_identity_verified", "no_pending_proceedings", "legal_authority_reviewed",
                         "under_18", "three_years"]  # fmt: skip
    assert destruction.get_request(rt, officer, early.id).codes == list(destruction.CHECKLIST_ITEMS)
    found = {c["code"]: c["assessment"] for c in req.criteria}
    assert found["under_18"]["verdict"] is False and found["three_years"]["verdict"] is None
    # The records say the subject was an adult: recording it as satisfied is refused, and the refusal audited.
    with pytest.raises(ValidationError, match="cannot be recorded as satisfied: the records say at least 29"):
        destruction.record_checklist(rt, officer, req.id, "under_18", True, "looked fine")
    with rt.session_factory() as session:  # the latest refusal: the one just made
        refused = session.scalars(select(AuditEntry).where(AuditEntry.action == "destruction",
                                                           AuditEntry.outcome == "denied")
                                  .order_by(AuditEntry.seq.desc())).first()  # fmt: skip
    assert refused is not None and refused.details["item"] == "under_18"
    # Undetermined (no disposition recorded yet): a person may record it, saying how it was checked.
    with pytest.raises(ValidationError, match="say how it was checked"):
        destruction.record_checklist(rt, officer, req.id, "three_years", True)
    destruction.record_checklist(rt, officer, req.id, "three_years", True, "discharge 2021 per court letter 44")
    destruction.record_checklist(rt, officer, req.id, "under_18", False, "adult at booking")
    with pytest.raises(ValidationError, match="not satisfied: requester_identity_verified"):
        destruction.decide(rt, supervisor, req.id, approve=True, reason="all checked, approve")
    with pytest.raises(ValidationError, match="a denial needs a written reason"):
        destruction.decide(rt, supervisor, req.id, approve=False, reason="no")
    denied = destruction.decide(rt, supervisor, req.id, approve=False, reason="Adult at booking: policy keeps")
    assert denied.status == "denied" and denied.decision_reason == "Adult at booking: policy keeps"
    with pytest.raises(ValidationError, match="unknown checklist item 'retention_rules_allow'"):
        destruction.record_checklist(rt, officer, req.id, "retention_rules_allow", True, "x")


def test_cli_records_dispositions_and_administers_the_lists(rt: GalleryRuntime, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from faceleads.cli.main import app

    monkeypatch.setattr(context, "_runtime", rt)
    _enrol(rt, _officer(rt), NAMES[0], "C-1")
    runner = CliRunner()

    def ok(*args: str) -> str:
        result = runner.invoke(app, [*args, "--agency", "MET"])
        assert result.exit_code == 0, result.output
        return result.output

    assert "destroy after 30 day(s)" in ok("disposition", "policy", "acquitted", "--destroy-after", "30")
    out = ok("disposition", "record", "--booking", "C-1", "--kind", "Acquitted", "--date", "2020-02-02",
             "--reference", "CC 99", "--json")  # fmt: skip
    assert '"state": "request_open"' in out
    assert '"opened": 0' in ok("disposition", "run", "--json")
    ok("authority", "add", "CRA-99", "--title", "Custody Records Act 1999 s.9")
    assert "CRA-99" in ok("authority", "list")
    ok("destruction", "criteria", "add", "court_letter", "--text", "The court's letter is on file")
    assert "court_letter" in ok("destruction", "criteria", "list")
    bad = runner.invoke(app, ["disposition", "record", "--booking", "C-1", "--kind", "acquitted", "--date",
                              "02/02/2020", "--reference", "x", "--agency", "MET"])  # fmt: skip
    assert bad.exit_code == 2 and "--date must be a date YYYY-MM-DD" in " ".join(bad.output.split())
