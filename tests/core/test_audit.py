"""The hash-chained audit log: appends, append-only triggers, tamper detection by direct SQL, export, statistics."""

from __future__ import annotations

import csv
import io
import itertools
import json
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from faceleads.core import audit
from faceleads.core.actor import Actor, Role
from faceleads.core.audit import AuditEntry, compute_hash, record, record_now, verify_chain
from faceleads.core.uow import transaction
from faceleads.governance import audit_log
from tests.security.identity_helpers import T0, make_factory

ALICE = Actor(username="alice", agency_id=1, roles=frozenset({Role.ANALYST}), user_id=11, agency_code="METRO")
BOB = Actor(username="bob", agency_id=2, roles=frozenset({Role.REVIEWER}), user_id=22, agency_code="COUNTY")


def _fill(factory: sessionmaker[Session], n: int = 8) -> None:
    with transaction(factory) as session:
        for i in range(n):
            record(
                session,
                ALICE if i % 2 == 0 else BOB,
                "search" if i % 3 else "login",
                f"case:OCC-{i}",
                case=f"OCC-{i}",
                purpose="criminal-investigation",
                details={"offence": "robbery", "candidates": 20, "score": 0.5 + i / 100, "flag": i % 2 == 0},
                at=T0 + timedelta(minutes=i),
            )


@pytest.fixture()
def db(tmp_path: Path) -> tuple[sessionmaker[Session], Path]:
    factory = make_factory(tmp_path)
    _fill(factory)
    return factory, tmp_path / "faceleads.db"


def _raw(path: Path) -> sqlite3.Connection:
    """A direct connection, as an attacker with file access has; the append-only triggers dropped first."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("DROP TRIGGER audit_log_no_delete")
    return conn


def _verify(factory: sessionmaker[Session], **kwargs: object) -> audit.VerifyResult:
    with factory() as session:
        return verify_chain(session, **kwargs)  # type: ignore[arg-type]


def _hash_of(path: Path, seq: int) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("SELECT entry_hash FROM audit_log WHERE seq = ?", (seq,)).fetchone()[0])


def test_chain_is_intact_and_linked(db: tuple[sessionmaker[Session], Path]) -> None:
    factory, _ = db
    result = _verify(factory)
    assert result.ok and result.entries == 8 and result.head_seq == 8
    with factory() as session:
        entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
    assert [e.seq for e in entries] == list(range(1, 9))
    assert entries[0].prev_hash == audit.GENESIS_HASH
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.entry_hash
    assert entries[1].username == "bob" and entries[1].agency_code == "COUNTY" and entries[1].case_ref == "OCC-1"
    assert entries[0].details == {"offence": "robbery", "candidates": 20, "score": 0.5, "flag": True}
    assert result.head_hash == entries[-1].entry_hash


def test_database_refuses_update_and_delete(db: tuple[sessionmaker[Session], Path]) -> None:
    _, path = db
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit_log SET outcome = 'denied' WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit_log WHERE seq = 2")
    conn.close()


@pytest.mark.parametrize(
    ("sql", "bad_seq", "why"),
    [
        ("UPDATE audit_log SET outcome = 'denied' WHERE seq = 4", 4, "contents modified"),
        ('UPDATE audit_log SET details_json = \'{"offence":"fraud"}\' WHERE seq = 5', 5, "contents modified"),
        ("UPDATE audit_log SET username = 'mallory' WHERE seq = 2", 2, "contents modified"),
        ("UPDATE audit_log SET at = '2026-03-14 08:00:00.000000' WHERE seq = 1", 1, "contents modified"),
        ("UPDATE audit_log SET case_ref = NULL WHERE seq = 7", 7, "contents modified"),
    ],
    ids=["outcome", "details", "user", "time", "case"],
)
def test_modified_entry_detected(db: tuple[sessionmaker[Session], Path], sql: str, bad_seq: int, why: str) -> None:
    factory, path = db
    _raw(path).execute(sql)
    result = _verify(factory)
    assert not result.ok
    assert result.first_bad_seq == bad_seq
    assert result.reason is not None and why in result.reason


def test_deleted_entry_detected(db: tuple[sessionmaker[Session], Path]) -> None:
    factory, path = db
    _raw(path).execute("DELETE FROM audit_log WHERE seq = 3")
    result = _verify(factory)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert result.reason is not None and "missing" in result.reason


def test_deleted_tail_detected(db: tuple[sessionmaker[Session], Path]) -> None:
    factory, path = db
    _raw(path).execute("DELETE FROM audit_log WHERE seq >= 7")
    result = _verify(factory)
    assert (result.ok, result.first_bad_seq) == (False, 7)
    assert result.reason is not None and "tail" in result.reason


def _forged_values(path: Path, seq: int, prev_hash: str, *, valid_hash: bool) -> tuple[object, ...]:
    forged = AuditEntry(
        seq=seq, at=T0 + timedelta(minutes=30), user_id=11, username="alice", agency_id=1, agency_code="METRO",
        action="search", object_ref="case:FORGED", case_ref="FORGED", purpose=None, outcome="ok",
        details_json="{}", prev_hash=prev_hash,
    )  # fmt: skip
    forged.entry_hash = compute_hash(forged) if valid_hash else "f" * 64
    return (
        forged.seq, "2026-03-14 09:30:00.000000", forged.user_id, forged.username, forged.agency_id,
        forged.agency_code, forged.action, forged.object_ref, forged.case_ref, forged.purpose, forged.outcome,
        forged.details_json, forged.prev_hash, forged.entry_hash,
    )  # fmt: skip


INSERT = (
    "INSERT INTO audit_log (seq, at, user_id, username, agency_id, agency_code, action, object_ref, case_ref, "
    "purpose, outcome, details_json, prev_hash, entry_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def test_appended_forgery_detected_even_with_a_valid_hash(db: tuple[sessionmaker[Session], Path]) -> None:
    factory, path = db
    _raw(path).execute(INSERT, _forged_values(path, 9, _hash_of(path, 8), valid_hash=True))
    result = _verify(factory)
    assert (result.ok, result.first_bad_seq) == (False, 9)
    assert result.reason is not None and "chain head" in result.reason


@pytest.mark.parametrize(("valid_hash", "bad_seq"), [(False, 4), (True, 5)], ids=["bogus-hash", "valid-hash"])
def test_inserted_entry_in_the_middle_detected(
    db: tuple[sessionmaker[Session], Path], valid_hash: bool, bad_seq: int
) -> None:
    """Entries 4..8 are renumbered 5..9 to make room for a forged entry 4 chained onto entry 3.

    With a bogus hash the forged entry itself is the first bad one; with a correctly computed hash it is
    internally consistent, and the chain breaks at the next entry, whose previous-hash no longer matches.
    """
    factory, path = db
    conn = _raw(path)
    for seq in range(8, 3, -1):
        conn.execute("UPDATE audit_log SET seq = seq + 1 WHERE seq = ?", (seq,))
    conn.execute(INSERT, _forged_values(path, 4, _hash_of(path, 3), valid_hash=valid_hash))
    result = _verify(factory)
    assert (result.ok, result.first_bad_seq) == (False, bad_seq)


def test_reordered_entries_detected(db: tuple[sessionmaker[Session], Path]) -> None:
    factory, path = db
    conn = _raw(path)
    conn.execute("UPDATE audit_log SET seq = -1 WHERE seq = 3")
    conn.execute("UPDATE audit_log SET seq = 3 WHERE seq = 6")
    conn.execute("UPDATE audit_log SET seq = 6 WHERE seq = -1")
    result = _verify(factory)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert result.reason is not None and "chain broken" in result.reason


def test_wholesale_rewrite_caught_by_an_external_anchor(db: tuple[sessionmaker[Session], Path]) -> None:
    """Someone who rewrites entry 2 and recomputes every later hash (and the head) passes the internal checks;
    an anchor recorded earlier outside the system catches it."""
    factory, path = db
    anchor = (5, _hash_of(path, 5))
    conn = _raw(path)
    conn.execute("UPDATE audit_log SET outcome = 'denied' WHERE seq = 2")
    with factory() as session:
        prev = session.get(AuditEntry, 1)
        assert prev is not None
        prev_hash = prev.entry_hash
        rewritten = []
        for entry in session.scalars(select(AuditEntry).where(AuditEntry.seq >= 2).order_by(AuditEntry.seq)):
            entry.prev_hash = prev_hash
            prev_hash = compute_hash(entry)
            rewritten.append((entry.prev_hash, prev_hash, entry.seq))
        session.rollback()
    for prev_value, new_hash, seq in rewritten:
        conn.execute("UPDATE audit_log SET prev_hash = ?, entry_hash = ? WHERE seq = ?", (prev_value, new_hash, seq))
    conn.execute("UPDATE audit_chain_head SET head_hash = ? WHERE id = 1", (prev_hash,))
    assert _verify(factory).ok  # the documented limit of an unkeyed chain
    result = _verify(factory, anchors=[anchor])
    assert (result.ok, result.first_bad_seq) == (False, 5)
    assert _verify(factory, anchors=[(1, _hash_of(path, 1))]).ok


def test_record_now_survives_the_callers_rollback(tmp_path: Path) -> None:
    factory = make_factory(tmp_path)
    with pytest.raises(RuntimeError), transaction(factory) as session:
        record(session, ALICE, "enrol", "subject:1")
        raise RuntimeError("the enrolment failed")
    record_now(factory, ALICE, "enrol", "subject:1", "denied", details={"reason": "not allowed"})
    with factory() as session:
        entries = list(session.scalars(select(AuditEntry)))
        assert [(e.seq, e.outcome) for e in entries] == [(1, "denied")]
        assert verify_chain(session).ok


def test_concurrent_appends_never_fork_the_chain(tmp_path: Path) -> None:
    factory = make_factory(tmp_path)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(15):
                record_now(factory, ALICE, "search", f"case:{n}-{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with factory() as session:
        result = verify_chain(session)
        seqs = list(session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)))
    assert result.ok and result.entries == 60
    assert seqs == list(range(1, 61))


@pytest.mark.parametrize(
    ("details", "message"),
    [
        ({"embedding": "0.1,0.2"}, "biometric"),
        ({"face_template": "abc"}, "biometric"),
        ({"image": "x"}, "biometric"),
        ({"probe_bytes": "x"}, "biometric"),
        ({"landmarks": "1,2,3"}, "biometric"),
        ({"note": b"\x89PNG"}, "binary"),
        ({"scores": [0.1, 0.2]}, "only scalars"),
        ({"note": "x" * 501}, "501 characters"),
        ({"score": float("nan")}, "finite"),
    ],
)
def test_details_refuse_biometric_or_bulky_content(tmp_path: Path, details: dict[str, object], message: str) -> None:
    factory = make_factory(tmp_path)
    with pytest.raises(ValueError, match=message), transaction(factory) as session:
        record(session, ALICE, "search", "case:1", details=details)  # type: ignore[arg-type]
    with factory() as session:
        assert session.scalar(select(AuditEntry.seq)) is None


def test_identifiers_are_fine_in_details(tmp_path: Path) -> None:
    factory = make_factory(tmp_path)
    with transaction(factory) as session:
        entry = record(session, ALICE, "view_gallery_image", "image:9",
                       details={"image_id": 9, "photo_sha256": "ab" * 32, "note": "x" * 500})  # fmt: skip
    assert entry.details["image_id"] == 9


def test_export_csv_and_json_with_filters(db: tuple[sessionmaker[Session], Path]) -> None:
    factory, _ = db
    with factory() as session:
        rows = list(audit_log.query_entries(session, audit_log.AuditFilter(username="alice", action="search")))
        text = "".join(audit_log.export_entries(rows, "csv"))
        parsed = list(csv.DictReader(io.StringIO(text)))
        assert [int(r["seq"]) for r in parsed] == [3, 5]  # alice = even index, search = index not divisible by 3
        assert parsed[0]["username"] == "alice" and json.loads(parsed[0]["details"])["offence"] == "robbery"
        window = audit_log.AuditFilter(
            since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=5), agency_code="COUNTY"
        )
        data = json.loads("".join(audit_log.export_entries(audit_log.query_entries(session, window), "json")))
        assert [d["seq"] for d in data] == [4]
        assert data[0]["at"] == "2026-03-14T09:03:00.000000Z" and data[0]["details"]["candidates"] == 20


def test_stats_by_agency_offence_and_month(tmp_path: Path) -> None:
    factory = make_factory(tmp_path)
    march, april = datetime(2026, 3, 5, tzinfo=UTC), datetime(2026, 4, 2, tzinfo=UTC)
    with transaction(factory) as session:
        for _ in range(3):
            record(session, ALICE, "search", "case:1", details={"offence": "robbery"}, at=march)
        record(session, ALICE, "search", "case:2", "denied", details={"offence": "robbery"}, at=march)
        record(session, ALICE, "search", "case:3", details={"offence": "fraud"}, at=april)
        record(session, BOB, "search", "case:4", details={"offence": "robbery"}, at=march)
        for conclusion in ("possible_lead", "excluded", "excluded", "inconclusive", "possible_lead"):
            record(session, ALICE, "conclusion", "candidate:1",
                   details={"offence": "robbery", "conclusion": conclusion}, at=march)  # fmt: skip
        record(session, BOB, "verification", "lead:1", details={"offence": "robbery", "result": "agree"}, at=march)
        record(session, BOB, "verification", "lead:2", details={"offence": "robbery", "result": "disagree"}, at=march)
    with factory() as session:
        rows = {(r["agency"], r["offence"], r["month"]): r for r in audit_log.compute_stats(session).rows()}
    metro = rows[("METRO", "robbery", "2026-03")]
    assert (metro["searches"], metro["leads"], metro["excluded"], metro["inconclusive"]) == (3, 2, 2, 1)
    assert rows[("METRO", "fraud", "2026-04")]["searches"] == 1
    county = rows[("COUNTY", "robbery", "2026-03")]
    assert (county["searches"], county["verified_leads"], county["leads"]) == (1, 1, 0)


def test_audit_export_neutralises_user_typed_values(tmp_path: Path) -> None:
    factory = make_factory(tmp_path)
    actor = Actor("=cmd|' /C calc'!A0", 1, frozenset({Role.ANALYST}), 5, "METRO")
    with transaction(factory) as session:
        audit.record(session, actor, "search", "case:x", case="=HYPERLINK(\"http://evil\")", purpose="@purpose",
                     details={"offence": "+robbery"})  # fmt: skip
    with factory() as session:
        text = "".join(audit_log.export_entries(audit_log.query_entries(session, audit_log.AuditFilter()), "csv"))
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["username"] == "'=cmd|' /C calc'!A0"
    assert row["case"] == "'=HYPERLINK(\"http://evil\")"
    assert row["purpose"] == "'@purpose"
    for cell in row.values():
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
