"""The lawful gallery: the administered list of legal authorities, enrolment refused (and audited) under anything
else through every enrolment path, records not on the list kept out of search until reviewed, withdrawal seen by
other processes, and the compliance report. Real photos, real models, real database."""

from __future__ import annotations

import threading
import time
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from faceleads.cli.context import cli_actor
from faceleads.config import Settings
from faceleads.core.actor import Role
from faceleads.core.audit import AuditEntry, verify_chain
from faceleads.core.uow import transaction
from faceleads.db import Agency
from faceleads.errors import NotFound, PermissionDenied, ValidationError
from faceleads.gallery import authorities
from faceleads.gallery.bulk import enrol_manifest
from faceleads.gallery.enrolment import RecordInput, enrol_record
from faceleads.gallery.models import Encounter, Image, LegalAuthority, Subject
from faceleads.gallery.nist import enrol_nist
from faceleads.gallery.runtime import GalleryRuntime
from tests import dbs
from tests.conftest import LFW_DIR, lfw_identities
from tests.gallery.conftest import record, write_manifest
from tests.gallery.test_nist import make_transaction
from tests.lawful import quick

PEOPLE = lfw_identities()
SCRAPED = "scraped from public social media profiles"


def _denials(rt: GalleryRuntime, action: str = "enrol") -> list[AuditEntry]:
    with rt.session_factory() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action,
                                                             AuditEntry.outcome == "denied")
                                    .order_by(AuditEntry.seq)))  # fmt: skip


def _count(rt: GalleryRuntime, model: type) -> int:
    with rt.session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _files(rt: GalleryRuntime) -> int:
    return sum(1 for p in rt.store.root.rglob("*") if p.is_file())


def _fresh_agency(rt: GalleryRuntime, code: str = "LAW") -> tuple:  # type: ignore[type-arg]
    """An agency with an empty list: its administrator and its records officer (dev actors)."""
    admin = cli_actor(rt, code, roles=[Role.ADMINISTRATOR])
    officer = cli_actor(rt, code, roles=[Role.RECORDS_OFFICER])
    return admin, officer


def test_the_list_is_administered_and_audited(rt: GalleryRuntime) -> None:
    admin, officer = _fresh_agency(rt)
    entry = authorities.add_authority(rt, admin, "PACE-64A", "PACE 1984 s.64A", "custody photographs")
    assert entry.active and entry.bookings == 0
    with pytest.raises(ValidationError, match="already on the list"):
        authorities.add_authority(rt, admin, "pace-64a", "Another text")
    with pytest.raises(ValidationError, match="already on the list as 'PACE-64A'"):
        authorities.add_authority(rt, admin, "OTHER", "pace 1984  S.64A")
    with pytest.raises(ValidationError, match="bad authority code"):
        authorities.add_authority(rt, admin, "<script>", "Some Act")
    # A records officer reads the list but may not change it; the refusal is audited.
    assert [a.code for a in authorities.list_authorities(rt, officer)] == ["PACE-64A"]
    with pytest.raises(PermissionDenied, match="admin records policy"):
        authorities.add_authority(rt, officer, "MINE", "My own authority")
    assert any(e.object_ref == "legal_authorities" for e in _denials(rt, "admin_records_policy"))
    with pytest.raises(ValidationError, match="at least 10 characters"):
        authorities.withdraw_authority(rt, admin, "PACE-64A", "because")
    withdrawn = authorities.withdraw_authority(rt, admin, "PACE-64A", "Section repealed by the 2026 Act")
    assert not withdrawn.active and withdrawn.withdrawal_reason == "Section repealed by the 2026 Act"
    with pytest.raises(ValidationError, match="codes are not reused"):
        authorities.add_authority(rt, admin, "PACE-64A", "PACE 1984 s.64A (amended)")
    with rt.session_factory() as session:
        actions = [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))]
        assert verify_chain(session).ok
    assert "authority_add" in actions and "authority_withdraw" in actions


@pytest.mark.skipif(not dbs.ON_POSTGRES, reason="concurrent writers need PostgreSQL (SQLite has one writer at a time)")
def test_two_administrators_adding_the_same_authority_at_once_get_one_entry(rt: GalleryRuntime) -> None:
    """The duplicate checks compare normalised text, which no constraint holds: concurrent adds must take turns."""
    admin, _ = _fresh_agency(rt)
    racer: dict[str, object] = {}

    def add_upper() -> None:
        try:
            racer["added"] = authorities.add_authority(rt, admin, "PACE", "Police and Criminal Evidence Act 1984")
        except Exception as exc:  # handed to the test thread
            racer["error"] = exc

    with transaction(rt.session_factory) as session:  # another administrator's add of "pace", not yet committed
        session.scalars(select(Agency.id).where(Agency.id == admin.agency_id).with_for_update()).one()
        session.add(LegalAuthority(agency_id=admin.agency_id, code="pace", title="PACE 1984", active=True,
                                   added_by="other-admin"))  # fmt: skip
        session.flush()
        thread = threading.Thread(target=add_upper)
        thread.start()
        deadline = time.monotonic() + 30
        while thread.is_alive() and time.monotonic() < deadline:
            waiting = session.connection().exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            ).scalar()
            if waiting:
                break
            time.sleep(0.05)
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert "added" not in racer, "the second add went through beside the first: two entries for one authority"
    assert isinstance(racer.get("error"), ValidationError) and "already on the list" in str(racer["error"])
    with rt.session_factory() as session:
        codes = session.scalars(select(LegalAuthority.code).where(LegalAuthority.agency_id == admin.agency_id)).all()
    assert list(codes) == ["pace"]


def test_enrolment_under_an_unlisted_authority_is_refused_everywhere(rt: GalleryRuntime, tmp_path: Path) -> None:
    admin, officer = _fresh_agency(rt)
    before_subjects, before_blobs = _count(rt, Subject), _files(rt)
    # An empty list refuses everything, with the refusal in the audit log and nothing written.
    with pytest.raises(PermissionDenied, match=f"'{SCRAPED}' is not on LAW's list of legal authorities"):
        enrol_record(rt, officer, RecordInput("S1", "B1", date(2024, 3, 1), SCRAPED), [PEOPLE["AJ_Cook"][0]])
    denied = _denials(rt)[-1]
    assert denied.object_ref == "booking:B1" and denied.details["authority"] == SCRAPED
    assert (_count(rt, Subject), _files(rt)) == (before_subjects, before_blobs)

    authorities.add_authority(rt, admin, "PACE-64A", "PACE 1984 s.64A")
    # By code or by title, case and spacing aside; the booking records the entry and its title.
    enrol_record(rt, officer, RecordInput("S1", "B1", date(2024, 3, 1), "pace-64a"), [PEOPLE["AJ_Cook"][0]])
    enrol_record(rt, officer, RecordInput("S2", "B2", date(2024, 3, 1), " PACE 1984   s.64a "),
                 [PEOPLE["Aaron_Peirsol"][0]])  # fmt: skip
    with rt.session_factory() as session:
        entry = session.scalars(select(LegalAuthority).where(LegalAuthority.code == "PACE-64A",
                                                             LegalAuthority.agency_id == officer.agency_id)).one()
        booked = session.scalars(select(Encounter).where(Encounter.booking_number.in_(["B1", "B2"]))).all()
    assert {(e.authority_id, e.legal_authority) for e in booked} == {(entry.id, "PACE 1984 s.64A")}

    # A manifest: the rows under an unlisted authority are refused (one audited refusal for all of them), the
    # others enrolled.
    rows = [["LAW", "S3", "B3", "2020-06-01", "PACE-64A", str(PEOPLE["Adam_Sandler"][0]), ""],
            ["LAW", "S4", "B4", "2020-06-01", SCRAPED, str(PEOPLE["Abdullah_Gul"][0]), ""],
            ["LAW", "S5", "B5", "2020-06-01", SCRAPED, str(PEOPLE["Ai_Sugiyama"][0]), ""]]  # fmt: skip
    report = enrol_manifest(rt, officer, write_manifest(tmp_path / "m.csv", rows), workers=0, photo_root=LFW_DIR)
    assert (report.enrolled, report.errors) == (1, 2)
    assert {r["row"] for r in report.error_rows} == {2, 3}
    assert all("not on LAW's list of legal authorities" in r["reason"] for r in report.error_rows)
    batch_denial = _denials(rt)[-1]
    assert batch_denial.object_ref.startswith("enrolment_batch:") and batch_denial.details["row_count"] == 2

    # ANSI/NIST: the import's authority is checked before anything is read; the whole import is refused.
    nist = make_transaction(tmp_path / "t.an2", sid="SID-1", oca="BK-1", doa="20190101",
                            photos=[PEOPLE["Aaron_Peirsol"][1]])  # fmt: skip
    images = _count(rt, Image)
    with pytest.raises(PermissionDenied, match="not on LAW's list"):
        enrol_nist(rt, officer, [nist], authority=SCRAPED, workers=0)
    assert _count(rt, Image) == images and _denials(rt)[-1].object_ref == "nist_import:t.an2"
    assert enrol_nist(rt, officer, [nist], authority="PACE 1984 s.64A", workers=0).enrolled == 1


def _make_legacy(rt: GalleryRuntime, booking: str, text: str) -> None:
    """What the migration leaves for a record enrolled before the list existed: its free text, no list entry."""
    with rt.session_factory() as session:
        session.execute(update(Encounter).where(Encounter.booking_number == booking)
                        .values(authority_id=None, legal_authority=text))  # fmt: skip
        session.commit()


def test_a_scraped_record_never_comes_up_until_reviewed(rt: GalleryRuntime) -> None:
    """The issue's case: a record 'scraped from public social media profiles' is in the gallery (enrolled before
    the list existed). It is kept, reported, and never a candidate; re-attributed after review, it is searched."""
    officer = cli_actor(rt, "MET", roles=[Role.RECORDS_OFFICER])
    analyst = cli_actor(rt, "MET", roles=[Role.ANALYST])
    target = "Abdullah_Gul"
    for i, name in enumerate([target, "Aaron_Peirsol", "AJ_Cook", "Adam_Sandler"]):
        enrol_record(rt, officer, record(name, f"MET-L{i}"), [PEOPLE[name][0]])
    subject_of = {n: s for n, s in _subjects(rt).items()}
    _make_legacy(rt, "MET-L0", SCRAPED)
    # Another process (this runtime's index was not built yet) builds its index without the record ...
    found = quick(rt, analyst, PEOPLE[target][1], top=3).search
    assert subject_of[target] not in {c.subject_id for c in found.candidates}
    # ... and a long-running process whose index already holds it drops it at the next search.
    other = GalleryRuntime(rt.settings, face_engine=rt.face_engine)
    other.template_index()
    _make_legacy(rt, "MET-L1", SCRAPED)
    again = quick(other, analyst, PEOPLE["Aaron_Peirsol"][1], top=3).search
    assert subject_of["Aaron_Peirsol"] not in {c.subject_id for c in again.candidates}
    other.verify_index()

    report = authorities.compliance(rt, officer, details=True)
    group = next(g for g in report.unlisted if g.authority == SCRAPED)
    assert (group.state, group.bookings, group.subjects, group.photos_not_searched) == ("never listed", 2, 2, 2)
    assert {r["booking_number"] for r in group.records} == {"MET-L0", "MET-L1"}
    auditor = cli_actor(rt, "MET", roles=[Role.AUDITOR])
    summary = authorities.compliance(rt, auditor)  # counts only for the auditor
    assert summary.unlisted_bookings == 2 and all(not g.records for g in summary.unlisted)
    with pytest.raises(PermissionDenied):
        authorities.compliance(rt, auditor, details=True)
    # Re-enrolling the booking under a listed authority does not slip it back in: it awaits review.
    with pytest.raises(ValidationError, match="awaits review"):
        enrol_record(rt, officer, record(target, "MET-L0"), [PEOPLE[target][0]])

    # Review: one booking re-attributed after checking the paper record; searched again, in both processes.
    with pytest.raises(NotFound, match="awaiting review"):
        authorities.reattribute(rt, officer, "PACE-64A", "custody record checked", booking="MET-L2")
    assert authorities.reattribute(rt, officer, "PACE-64A", "custody record 2019/77 checked: PACE s.64A",
                                   booking="MET-L0") == 1  # fmt: skip
    found = quick(other, analyst, PEOPLE[target][1], top=3).search
    assert found.candidates[0].subject_id == subject_of[target]
    other.verify_index()
    assert authorities.compliance(rt, officer).unlisted_bookings == 1
    with rt.session_factory() as session:
        review = session.scalars(select(AuditEntry).where(AuditEntry.action == "authority_review")).one()
    assert review.details["from_authority"] == SCRAPED and review.details["booking_count"] == 1
    other.close()


def _subjects(rt: GalleryRuntime) -> dict[str, int]:
    with rt.session_factory() as session:
        return {number: int(sid) for number, sid in session.execute(select(Subject.subject_number, Subject.id))}


def test_withdrawing_an_authority_takes_its_records_out_of_search(rt: GalleryRuntime) -> None:
    admin = cli_actor(rt, "MET", roles=[Role.ADMINISTRATOR])
    officer = cli_actor(rt, "MET", roles=[Role.RECORDS_OFFICER])
    analyst = cli_actor(rt, "MET", roles=[Role.ANALYST])
    authorities.add_authority(rt, admin, "OLD-ACT", "Old Custody Act s.9")
    names = ["Abdullah_Gul", "AJ_Cook", "Aaron_Peirsol"]
    for i, name in enumerate(names):
        authority = "OLD-ACT" if name == "Abdullah_Gul" else "PACE-64A"
        enrol_record(rt, officer, RecordInput(name, f"W{i}", date(2021, 1, 1), authority), [PEOPLE[name][0]])
    ids = _subjects(rt)
    serving = GalleryRuntime(rt.settings, face_engine=rt.face_engine)  # a long-running server process
    assert quick(serving, analyst, PEOPLE["Abdullah_Gul"][1], top=2).search.candidates[0].subject_id == ids[
        "Abdullah_Gul"]  # fmt: skip
    view = authorities.withdraw_authority(rt, admin, "OLD-ACT", "Repealed; records to be reviewed")
    assert view.bookings == 1
    result = quick(serving, analyst, PEOPLE["Abdullah_Gul"][1], top=2).search
    assert ids["Abdullah_Gul"] not in {c.subject_id for c in result.candidates}
    serving.verify_index()
    group = next(g for g in authorities.compliance(rt, officer).unlisted if g.authority == "Old Custody Act s.9")
    assert group.state == "withdrawn OLD-ACT" and group.bookings == 1
    with pytest.raises(PermissionDenied, match="not on MET's list"):
        enrol_record(rt, officer, RecordInput("New", "W9", date(2021, 1, 1), "OLD-ACT"), [PEOPLE["Adam_Sandler"][0]])
    serving.close()


def test_settings_refuse_publishing_single_counts_in_production(tmp_path: Path) -> None:
    from faceleads.errors import ConfigurationError

    key = tmp_path / "k"
    key.write_bytes(b"x" * 44)
    unsafe = Settings(mode="production", data_dir=tmp_path, database_url="sqlite:///x.db", master_key_file=key,
                      transparency_min_count=1)  # fmt: skip
    with pytest.raises(ConfigurationError, match="TRANSPARENCY_MIN_COUNT"):
        unsafe.check_safe()


def test_upgrading_leaves_earlier_records_awaiting_review(tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    """A database from before the list: its bookings keep their text, get no list entry, and are reported."""
    from sqlalchemy import text

    from faceleads import migrations
    from faceleads.db import make_engine

    settings = Settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir(parents=True)
    old = make_engine(settings.effective_database_url)
    migrations.upgrade(old, "live_1")
    with old.begin() as c:
        c.execute(text("INSERT INTO agencies (id, code, name, created_at) VALUES (1, 'OLD', 'Old', '2020-01-01')"))
        c.execute(text("INSERT INTO galleries (id, agency_id, name, legal_authority, purposes, created_at) "
                       "VALUES (1, 1, 'bookings', :t, '[]', '2020-01-01')"), {"t": SCRAPED})
        c.execute(text("INSERT INTO subjects (id, agency_id, gallery_id, subject_number, key_id, status, created_at) "
                       "VALUES (1, 1, 1, 'S1', 'subject:old', 'active', '2020-01-01')"))
        c.execute(text("INSERT INTO encounters (id, agency_id, subject_id, booking_number, booking_date, charge, "
                       "legal_authority, created_at) VALUES (1, 1, 1, 'B1', '2020-01-01', '', :t, '2020-01-01')"),
                  {"t": SCRAPED})  # fmt: skip
    old.dispose()
    rt = GalleryRuntime(settings, face_engine=engine)  # upgrades to the head
    with rt.session_factory() as session:
        booking = session.get(Encounter, 1)
        assert booking is not None and booking.authority_id is None and booking.legal_authority == SCRAPED
    report = authorities.compliance(rt, cli_actor(rt, "OLD", roles=[Role.RECORDS_OFFICER]), details=True)
    assert report.unlisted_bookings == 1 and report.unlisted[0].authority == SCRAPED
    rt.close()
