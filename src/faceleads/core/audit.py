"""Append-only, hash-chained audit log.

Every entry holds its sequence number, time (UTC), user, agency, action, object, case, purpose, outcome and a few
scalar details, plus the hash of the previous entry; its own hash is SHA-256 over a canonical serialisation of all
of these (:func:`canonical_bytes`). Changing, deleting, inserting or reordering an entry breaks the chain, and
:func:`verify_chain` names the first bad entry. A one-row chain head (last sequence number and hash) is updated with
every append: it serialises appenders (so the chain never forks) and reveals truncation of the tail. An external
anchor (``faceleads audit anchor`` recorded by an auditor outside the system) catches a wholesale rewrite by someone
who can write the database and recompute every hash.

The database refuses UPDATE and DELETE on entries (triggers on SQLite and PostgreSQL); tampering by direct SQL must
drop the triggers first, and the verification still detects it.

No biometric data: ``details`` holds scalars only, short ones, under keys that do not name biometric content.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DDL, DateTime, Integer, String, Text, event, func, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from faceleads.core.actor import Actor
from faceleads.core.uow import transaction
from faceleads.db import Base, utcnow

log = logging.getLogger("faceleads.audit")

GENESIS_HASH = "0" * 64
MAX_DETAIL_CHARS = 500
MAX_DETAILS = 40

DetailValue = str | int | float | bool | None


class Outcome:
    """Conventional outcome words (any short string is accepted)."""

    OK = "ok"
    DENIED = "denied"
    FAILED = "failed"
    ERROR = "error"


class AuditAction:
    """Action names other domains use, so that statistics and filters agree on them.

    Statistics (:func:`compute_stats`) read ``SEARCH`` (details ``offence``), ``CONCLUSION`` (details ``offence``,
    ``conclusion`` = excluded / possible_lead / inconclusive) and ``VERIFICATION`` (details ``offence``, ``result`` =
    agree / disagree).
    """

    LOGIN = "login"
    LOGOUT = "logout"
    SESSION_EXPIRED = "session_expired"
    SEARCH = "search"
    VIEW_GALLERY_IMAGE = "view_gallery_image"
    CONCLUSION = "conclusion"
    VERIFICATION = "verification"
    RELEASE = "release"
    EXPORT = "export"
    ENROL = "enrol"
    DESTRUCTION = "destruction"
    SETTING_CHANGE = "setting_change"
    PERMISSION_CHANGE = "permission_change"
    AUDIT_EXPORT = "audit_export"
    AUDIT_VERIFY = "audit_verify"
    # Written by the system when an append finds the chain head inconsistent with the stored entries (see
    # _check_head): the chain continues from the last stored entry and the break stays on record for verify.
    CHAIN_BREAK = "audit_chain_break"


class AuditEntry(Base):
    """One audit record. Rows are never updated or deleted (database triggers refuse it)."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    username: Mapped[str | None] = mapped_column(String(150), nullable=True)
    agency_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    agency_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_ref: Mapped[str] = mapped_column(String(300))
    case_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
    purpose: Mapped[str | None] = mapped_column(String(100), nullable=True)
    outcome: Mapped[str] = mapped_column(String(32))
    details_json: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)

    @property
    def details(self) -> dict[str, DetailValue]:
        """The details as a dictionary."""
        loaded: dict[str, DetailValue] = json.loads(self.details_json)
        return loaded

    def as_dict(self) -> dict[str, Any]:
        """A plain dictionary (for JSON/CSV export)."""
        return {
            "seq": self.seq,
            "at": iso_utc(self.at),
            "user_id": self.user_id,
            "username": self.username,
            "agency_id": self.agency_id,
            "agency_code": self.agency_code,
            "action": self.action,
            "object": self.object_ref,
            "case": self.case_ref,
            "purpose": self.purpose,
            "outcome": self.outcome,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "entry_hash": self.entry_hash,
        }


class AuditChainHead(Base):
    """The single row holding the last sequence number and hash; appenders lock it to serialise the chain."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(64))


# Append-only in the database itself. Alembic autogenerate does not see triggers: the migration that creates
# audit_log must also run these statements (see docs/audit.md).
SQLITE_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
)
POSTGRES_TRIGGERS = (
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit log is append-only'; END $$",
    "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
)
for _statement in SQLITE_TRIGGERS:
    event.listen(AuditEntry.__table__, "after_create", DDL(_statement).execute_if(dialect="sqlite"))
for _statement in POSTGRES_TRIGGERS:
    event.listen(AuditEntry.__table__, "after_create", DDL(_statement).execute_if(dialect="postgresql"))


# --- canonical form -------------------------------------------------------------------------------------------

# Keys that would carry biometric content. Identifiers such as ``image_id`` or ``photo_sha256`` are fine.
_BIOMETRIC_KEY = re.compile(
    r"(embedding|template|vector|pixel|landmark|biometric|feature_map|"
    r"(image|photo|crop|thumbnail|face|probe)(_?(bytes|data|b64|base64|array|png|jpe?g))?$)",
    re.IGNORECASE,
)
_ALLOWED_ID_SUFFIX = re.compile(r"(_id|_ids|_sha256|_hash|_ref|_count|_number|_no)$", re.IGNORECASE)


def iso_utc(moment: datetime) -> str:
    """The one textual form of a time in the chain: UTC, microseconds, 'Z'."""
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; they were stored as UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_details(details: dict[str, Any] | None) -> dict[str, DetailValue]:
    """Validate audit details: scalar values only, short, no key naming biometric content.

    Raises ValueError naming the offending key (a programming error in the caller, not a user error).
    """
    if details is None:
        return {}
    if not isinstance(details, dict):
        raise ValueError(f"audit details must be a dict, got {type(details).__name__}")
    if len(details) > MAX_DETAILS:
        raise ValueError(f"audit details hold {len(details)} keys; at most {MAX_DETAILS} are allowed")
    clean: dict[str, DetailValue] = {}
    for key, value in details.items():
        if not isinstance(key, str) or not key or len(key) > 64:
            raise ValueError(f"audit detail key {key!r} must be a non-empty string of at most 64 characters")
        if _BIOMETRIC_KEY.search(key) and not _ALLOWED_ID_SUFFIX.search(key):
            raise ValueError(f"audit detail key {key!r} names biometric content, which never goes into the log")
        if isinstance(value, bytes | bytearray | memoryview):
            raise ValueError(f"audit detail {key!r} is binary data; only short scalars are allowed")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ValueError(f"audit detail {key!r} is a {type(value).__name__}; only scalars are allowed")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"audit detail {key!r} is not a finite number")
        if isinstance(value, str) and len(value) > MAX_DETAIL_CHARS:
            raise ValueError(
                f"audit detail {key!r} is {len(value)} characters long; at most {MAX_DETAIL_CHARS} are allowed"
            )
        clean[key] = value
    return clean


def _canonical_details(details: dict[str, DetailValue]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_bytes(
    *,
    seq: int,
    at: datetime,
    user_id: int | None,
    username: str | None,
    agency_id: int | None,
    agency_code: str | None,
    action: str,
    object_ref: str,
    case_ref: str | None,
    purpose: str | None,
    outcome: str,
    details_json: str,
    prev_hash: str,
) -> bytes:
    """The exact bytes an entry's hash covers: a sorted, compact JSON object of every field but the hash itself."""
    document = {
        "seq": seq,
        "at": iso_utc(at),
        "user_id": user_id,
        "username": username,
        "agency_id": agency_id,
        "agency_code": agency_code,
        "action": action,
        "object": object_ref,
        "case": case_ref,
        "purpose": purpose,
        "outcome": outcome,
        "details": json.loads(details_json),
        "prev_hash": prev_hash,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def compute_hash(entry: AuditEntry) -> str:
    """Recompute an entry's hash from its stored fields."""
    return hashlib.sha256(
        canonical_bytes(
            seq=entry.seq,
            at=entry.at,
            user_id=entry.user_id,
            username=entry.username,
            agency_id=entry.agency_id,
            agency_code=entry.agency_code,
            action=entry.action,
            object_ref=entry.object_ref,
            case_ref=entry.case_ref,
            purpose=entry.purpose,
            outcome=entry.outcome,
            details_json=entry.details_json,
            prev_hash=entry.prev_hash,
        )
    ).hexdigest()


# --- appending -------------------------------------------------------------------------------------------------


def _lock_head(session: Session) -> AuditChainHead:
    """Take the chain head for this transaction, creating it on first use.

    The head is *written* before it is read: on SQLite that takes the database write lock (so a concurrent appender
    waits on the busy timeout instead of reading a stale head), on PostgreSQL it takes the row lock until commit.
    """
    bumped = session.execute(update(AuditChainHead).where(AuditChainHead.id == 1).values(seq=AuditChainHead.seq + 1))
    if bumped.rowcount == 0:  # type: ignore[attr-defined]
        try:
            with session.begin_nested():
                session.add(AuditChainHead(id=1, seq=1, head_hash=GENESIS_HASH))
        except sa_exc.IntegrityError:  # another transaction created it first; lock it the usual way
            session.execute(update(AuditChainHead).where(AuditChainHead.id == 1).values(seq=AuditChainHead.seq + 1))
    head = session.execute(
        select(AuditChainHead).where(AuditChainHead.id == 1).execution_options(populate_existing=True)
    ).scalar_one()
    _check_head(session, head, created=bumped.rowcount == 0)  # type: ignore[attr-defined]
    return head


def _check_head(session: Session, head: AuditChainHead, *, created: bool) -> None:
    """The (already bumped) head must continue the last stored entry. If it does not — the head row was deleted,
    entries were appended beyond it or the tail deleted, the last entry changed — the chain is re-anchored: a
    ``audit_chain_break`` entry, chained onto the last stored entry, records what was found, the head moves past
    it, and an operator alert is logged. Appending never collides with a forged sequence number and never stops
    the service; ``verify`` reports the break for good (docs/audit.md, "When the chain head is broken")."""
    last = session.execute(
        select(AuditEntry.seq, AuditEntry.entry_hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    last_seq, last_hash = (int(last[0]), str(last[1])) if last else (0, GENESIS_HASH)
    recorded_seq = head.seq - 1
    if (recorded_seq, head.head_hash) == (last_seq, last_hash):
        return
    if created:
        reason = f"the chain-head row was missing while the log holds entries up to {last_seq}"
    elif last_seq > recorded_seq:
        reason = f"entries {recorded_seq + 1}..{last_seq} were written beyond the recorded head {recorded_seq}"
    elif last_seq < recorded_seq:
        reason = f"the log ends at entry {last_seq}, before the recorded head {recorded_seq} (tail deleted)"
    else:
        reason = f"entry {last_seq} no longer has the hash the chain head recorded (modified)"
    log.critical("AUDIT CHAIN BROKEN: %s. Re-anchored at entry %d; run 'faceleads audit verify' and contact the "
                 "auditors (docs/audit.md).", reason, last_seq + 1)  # fmt: skip
    details: dict[str, DetailValue] = {"reason": reason, "last_seq": last_seq, "last_hash": last_hash}
    if not created:
        details.update({"recorded_head_seq": recorded_seq, "recorded_head_hash": head.head_hash})
    entry = _entry(last_seq + 1, last_hash, None, AuditAction.CHAIN_BREAK, "audit_log", "re-anchored",
                   details=details, moment=utcnow())  # fmt: skip
    session.add(entry)
    session.flush()
    head.seq, head.head_hash = last_seq + 2, entry.entry_hash


def _entry(
    seq: int,
    prev_hash: str,
    actor: Actor | None,
    action: str,
    object_ref: str,
    outcome: str,
    *,
    case: str | None = None,
    purpose: str | None = None,
    details: dict[str, DetailValue] | None = None,
    moment: datetime,
) -> AuditEntry:
    """A new, hashed entry (not yet added to the session)."""
    entry = AuditEntry(
        seq=seq,
        at=moment,
        user_id=actor.user_id if actor else None,
        username=actor.username if actor else "system",
        agency_id=actor.agency_id if actor else None,
        agency_code=(actor.agency_code or None) if actor else None,
        action=action,
        object_ref=object_ref,
        case_ref=case,
        purpose=purpose,
        outcome=outcome,
        details_json=_canonical_details(check_details(details)),
        prev_hash=prev_hash,
    )
    entry.entry_hash = compute_hash(entry)
    return entry


def record(
    session: Session,
    actor: Actor | None,
    action: str,
    object_ref: str,
    outcome: str = "ok",
    *,
    case: str | None = None,
    purpose: str | None = None,
    details: dict[str, DetailValue] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Append one entry within the caller's transaction (it commits, or rolls back, with the audited action).

    ``actor`` None means the system itself. Raises ValueError for details that are not short scalars or that name
    biometric content, and for an empty action or object.
    """
    if not action or len(action) > 64:
        raise ValueError("audit action must be a non-empty string of at most 64 characters")
    if not object_ref or len(object_ref) > 300:
        raise ValueError("audit object must be a non-empty string of at most 300 characters")
    for name, text in (("case", case), ("purpose", purpose)):
        if text is not None and len(text) > 100:
            raise ValueError(f"audit {name} is longer than 100 characters")
    if not outcome or len(outcome) > 32:
        raise ValueError("audit outcome must be a non-empty string of at most 32 characters")
    check_details(details)  # refuse bad details before taking the chain's lock
    moment = at or utcnow()
    head = _lock_head(session)
    entry = _entry(head.seq, head.head_hash, actor, action, object_ref, outcome, case=case, purpose=purpose,
                   details=details, moment=moment)  # fmt: skip
    session.add(entry)
    head.head_hash = entry.entry_hash
    session.flush()
    return entry


def record_now(
    session_factory: sessionmaker[Session],
    actor: Actor | None,
    action: str,
    object_ref: str,
    outcome: str = "ok",
    *,
    case: str | None = None,
    purpose: str | None = None,
    details: dict[str, DetailValue] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Append one entry in its own transaction, committed at once.

    For refusals and failed logins: the entry is kept even though the caller's transaction rolls back.
    """
    with transaction(session_factory) as session:
        return record(session, actor, action, object_ref, outcome, case=case, purpose=purpose, details=details, at=at)


# --- verification ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of a chain walk: ok, or the first bad sequence number and why.

    ``head_seq``/``head_hash``: the last entry that verified. ``highest_seq``: the highest sequence number stored
    (read directly, so a forged entry beyond the head shows even when the walk stops earlier).
    """

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    reason: str | None = None
    highest_seq: int = 0


def verify_chain(
    session: Session,
    *,
    anchors: Iterable[tuple[int, str]] = (),
    progress: Callable[[int], None] | None = None,
    batch: int = 5000,
    since: tuple[int, str] | None = None,
) -> VerifyResult:
    """Walk the whole chain in sequence order and report the first entry that breaks it.

    Checks, per entry: no gap in sequence numbers (a deleted entry), its ``prev_hash`` equals the previous entry's
    hash (an inserted or reordered entry), its hash matches its contents (a modified entry), and that it is not a
    re-anchoring after a broken head (``audit_chain_break``); then that the last entry is the one the chain head
    records (a truncated tail or appended forgery), and that every external ``anchor`` (sequence number, hash)
    recorded earlier is still in the chain. ``since`` = (seq, hash) of an entry verified before: only the entries
    after it are walked (incremental checks), after checking that entry still has that hash.
    """
    anchor_map = dict(anchors)
    expected_seq = 1
    prev_hash = GENESIS_HASH
    count = 0
    last_seq = 0
    highest = session.scalar(select(func.max(AuditEntry.seq))) or 0

    def fail(seq: int, reason: str) -> VerifyResult:
        return VerifyResult(False, count, last_seq, prev_hash, first_bad_seq=seq, reason=reason, highest_seq=highest)

    if since is not None and since[0] > 0:
        known = session.get(AuditEntry, since[0])
        if known is None or known.entry_hash != since[1]:
            return fail(since[0], f"entry {since[0]} is gone or no longer has the hash verified before")
        expected_seq, prev_hash, last_seq, count = since[0] + 1, since[1], since[0], since[0]
    for entry in _iter_entries(session, batch, after=expected_seq - 1):
        if entry.seq != expected_seq:
            if entry.seq > expected_seq:
                missing = f"{expected_seq}" if entry.seq == expected_seq + 1 else f"{expected_seq}..{entry.seq - 1}"
                return fail(expected_seq, f"entry {missing} missing (deleted): next stored entry is {entry.seq}")
            return fail(entry.seq, f"unexpected sequence number {entry.seq} (expected {expected_seq})")
        if entry.prev_hash != prev_hash:
            return fail(
                entry.seq,
                f"chain broken: its previous-entry hash does not match entry {entry.seq - 1} "
                "(an entry was inserted, removed or reordered before it)",
            )
        if compute_hash(entry) != entry.entry_hash:
            return fail(entry.seq, "contents modified: the stored hash does not match the entry's fields")
        if entry.seq in anchor_map and anchor_map[entry.seq] != entry.entry_hash:
            return fail(entry.seq, "does not match the external anchor recorded for this sequence number")
        if entry.action == AuditAction.CHAIN_BREAK:
            details = entry.details
            recorded = details.get("recorded_head_seq")
            first_bad = int(recorded) + 1 if isinstance(recorded, int) and recorded + 1 < entry.seq else entry.seq
            return fail(
                first_bad,
                f"the chain head was found broken and the chain re-anchored by entry {entry.seq} at "
                f"{iso_utc(entry.at)}: {details.get('reason')}",
            )
        prev_hash = entry.entry_hash
        last_seq = entry.seq
        count += 1
        expected_seq += 1
        if progress is not None:
            progress(count)

    head = session.get(AuditChainHead, 1)
    head_seq, head_hash = (head.seq, head.head_hash) if head else (0, GENESIS_HASH)
    if head is None and last_seq > 0:
        return fail(last_seq, f"the chain-head row is missing while the log holds entries up to {last_seq}")
    if head_seq > last_seq:
        return fail(last_seq + 1, f"entries {last_seq + 1}..{head_seq} missing (the tail of the log was deleted)")
    if head_seq < last_seq:
        return fail(head_seq + 1, f"entry {head_seq + 1} is not in the recorded chain head (inserted after the head)")
    if head_hash != prev_hash:
        return fail(last_seq, "the last entry's hash differs from the recorded chain head")
    missing_anchors = sorted(seq for seq in anchor_map if seq > last_seq)
    if missing_anchors:
        return fail(missing_anchors[0], "an external anchor refers to an entry that is no longer in the chain")
    return VerifyResult(True, count, last_seq, prev_hash, highest_seq=highest)


def _iter_entries(session: Session, batch: int, after: int | None = None) -> Iterator[AuditEntry]:
    """Entries in sequence order (after ``after``), fetched in batches so that a long log does not fill memory."""
    while True:
        query = select(AuditEntry).order_by(AuditEntry.seq).limit(batch)
        if after is not None:
            query = query.where(AuditEntry.seq > after)
        rows = list(session.execute(query).scalars())
        if not rows:
            return
        yield from rows
        after = rows[-1].seq
        session.expunge_all()


def head(session: Session) -> tuple[int, str]:
    """The chain head (last sequence number and its hash): what an auditor anchors externally."""
    row = session.get(AuditChainHead, 1)
    return (row.seq, row.head_hash) if row else (0, GENESIS_HASH)
