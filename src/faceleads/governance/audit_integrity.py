"""Is the audit log whole? The chain walk (:func:`faceleads.core.audit.verify_chain`) plus what a chain cannot
see by itself. The audited use cases every interface calls are :func:`faceleads.governance.audit_log.verify` and
:func:`faceleads.governance.audit_log.anchor`; the server's periodic anchor (:func:`periodic_anchor`) runs as the
system.

A hash chain proves that the entries it holds were not changed, reordered or removed *between* entries it holds.
It cannot prove on its own that it is complete: someone who can write the database may delete the whole log (and
the head row), or cut it and recompute every hash. So :func:`verify` also checks

* **older data**: an empty log beside users, subjects, searches or cases, or a log whose first entry is younger
  than users or searches (rows that are audited in the transaction that creates them), is a wiped or cut log;
* **anchors** kept outside the database: signed anchors (sequence number, hash, time) written periodically to an
  append-only file under the keys folder (``FACELEADS_AUDIT_ANCHOR_FILE``; point it at a write-once location if
  you have one), and anchors an oversight body kept and hands back (``--anchor`` / ``--anchor-file``). Every anchor
  must still be in the chain with the same hash: a truncated or rewritten log fails. The highest anchored sequence
  number is a high-water mark the database's writer cannot lower.

Anchors are JSON documents signed with Ed25519 by a key derived from the master key (HKDF), so an oversight body
can check them with the public key alone, and the system recognises its own anchors.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from faceleads.config import Settings
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.db import utcnow
from faceleads.errors import ValidationError
from faceleads.storage.crypto import fsync_dir, load_master_key

log = logging.getLogger("faceleads.audit")

ANCHOR_FORMAT = "faceleads-audit-anchor/v1"
#: How much older than the first entry an audited row may be (clock steps, the first bootstrap).
OLDER_DATA_TOLERANCE = timedelta(minutes=5)
_SIGNED_FIELDS = ("format", "seq", "hash", "entries", "at", "first_entry_at")


# --- anchors ---------------------------------------------------------------------------------------------------


def anchor_file(settings: Settings) -> Path:
    """Where periodic anchors are appended (default ``<data_dir>/keys/audit-anchors.jsonl``)."""
    return settings.audit_anchor_file or (settings.data_dir / "keys" / "audit-anchors.jsonl")


def _signing_key(settings: Settings) -> Ed25519PrivateKey:
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"faceleads/audit-anchor/v1").derive(
        load_master_key(settings)
    )
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key(settings: Settings) -> str:
    """This system's anchor-signing public key (base64 of the raw 32 bytes): publish it to the oversight body."""
    raw = _signing_key(settings).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def _canonical(document: dict[str, Any]) -> bytes:
    body = {k: document.get(k) for k in _SIGNED_FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def make_anchor(settings: Settings, seq: int, digest: str, first_entry_at: str | None) -> dict[str, Any]:
    """A signed anchor of the chain head (seq, hash) at this moment."""
    document: dict[str, Any] = {
        "format": ANCHOR_FORMAT,
        "seq": seq,
        "hash": digest,
        "entries": seq,
        "at": audit.iso_utc(utcnow()),
        "first_entry_at": first_entry_at,
    }
    body = _canonical(document)
    document["sha256"] = hashlib.sha256(body).hexdigest()
    document["public_key"] = public_key(settings)
    document["signature"] = base64.b64encode(_signing_key(settings).sign(body)).decode("ascii")
    return document


def check_anchor(settings: Settings, document: dict[str, Any]) -> str | None:
    """Why an anchor document cannot be trusted (None: it is this system's, unaltered)."""
    if document.get("format") != ANCHOR_FORMAT:
        return "not a faceleads audit anchor"
    if not isinstance(document.get("seq"), int) or not isinstance(document.get("hash"), str):
        return "anchor without a sequence number and hash"
    body = _canonical(document)
    if document.get("sha256") != hashlib.sha256(body).hexdigest():
        return "anchor altered (its SHA-256 does not match)"
    if document.get("public_key") != public_key(settings):
        return "anchor signed by another system's key"
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(str(document["public_key"])))
        key.verify(base64.b64decode(str(document.get("signature", ""))), body)
    except (InvalidSignature, ValueError):
        return "anchor signature invalid"
    return None


def write_anchor(settings: Settings, document: dict[str, Any]) -> Path:
    """Append an anchor to the anchor file (created 0600, opened append-only, fsynced)."""
    path = anchor_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, (json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)
    return path


def read_anchor_documents(path: Path) -> list[dict[str, Any]]:
    """The anchors in a file: one JSON document, or JSON lines (as written by :func:`write_anchor`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read anchor file {path}: {exc}") from None
    text = text.strip()
    if not text:
        return []
    with contextlib.suppress(json.JSONDecodeError):
        whole = json.loads(text)
        if isinstance(whole, dict):
            return [whole]
        if isinstance(whole, list):
            return [d for d in whole if isinstance(d, dict)]
    documents = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            item = {"format": "unreadable", "line": number}
        documents.append(item if isinstance(item, dict) else {"format": "unreadable", "line": number})
    return documents


# --- verification ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`verify`: the chain walk's result, what was checked, and notes (never secrets)."""

    result: audit.VerifyResult
    anchors_checked: int = 0
    notes: list[str] = field(default_factory=list)
    #: Why the verification could not be recorded in the audit log (None: it was, or not attempted yet).
    recording_problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.result.ok

    def to_json(self) -> dict[str, Any]:
        r = self.result
        return {
            "ok": r.ok,
            "entries": r.entries,
            "head_seq": r.head_seq,
            "head_hash": r.head_hash,
            "highest_seq": r.highest_seq,
            "first_bad_seq": r.first_bad_seq,
            "reason": r.reason,
            "anchors_checked": self.anchors_checked,
            "notes": list(self.notes) + ([self.recording_problem] if self.recording_problem else []),
            "recorded": self.recording_problem is None,
        }


def _older_data(session: Session, entries: int, first_at: datetime | None) -> str | None:
    """Tampering shown by records older than the log: a wiped log, or a log cut and restarted."""
    from faceleads.casework.models import Case
    from faceleads.gallery.models import SearchRecord, Subject
    from faceleads.security.models import User

    if entries == 0:
        counts = {
            name: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for name, model in (("users", User), ("subjects", Subject), ("searches", SearchRecord), ("cases", Case))
        }
        present = {k: v for k, v in counts.items() if v}
        if present:
            held = ", ".join(f"{v} {k}" for k, v in present.items())
            return f"the audit log is empty but the database holds {held}: the log was wiped"
        return None
    if first_at is None:
        return None
    first_at = audit_time(first_at)
    for name, column in (("user", User.created_at), ("search", SearchRecord.created_at)):
        oldest = session.scalar(select(func.min(column)))
        if oldest is not None and audit_time(oldest) < first_at - OLDER_DATA_TOLERANCE:
            return (
                f"the log starts at {audit.iso_utc(first_at)} but a {name} dates from "
                f"{audit.iso_utc(audit_time(oldest))}: earlier entries were removed (the log was cut and restarted)"
            )
    return None


def audit_time(moment: datetime) -> datetime:
    """SQLite hands back naive UTC datetimes: make them aware."""
    from datetime import UTC

    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _anchor_pairs(
    settings: Settings, given: Iterable[tuple[int, str]], documents: Iterable[dict[str, Any]]
) -> tuple[list[tuple[int, str, str]], list[str]]:
    """(seq, hash, where it came from) of every trustworthy anchor, and notes on the ones refused."""
    pairs = [(seq, digest, "given on the command line") for seq, digest in given]
    notes = []
    for document in documents:
        problem = check_anchor(settings, document)
        if problem is not None:
            notes.append(f"ignored an anchor: {problem}")
            continue
        pairs.append((int(document["seq"]), str(document["hash"]), f"anchor of {document.get('at')}"))
    return pairs, notes


def verify(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    anchors: Iterable[tuple[int, str]] = (),
    anchor_documents: Iterable[dict[str, Any]] = (),
) -> Verdict:
    """The whole verification: chain walk, head against the highest stored entry, anchors (the anchor file's, and
    those handed in), older data. Never raises for a damaged log: the damage is the verdict."""
    documents = [*read_anchor_documents(anchor_file(settings)), *anchor_documents]
    pairs, notes = _anchor_pairs(settings, anchors, documents)
    where = {seq: source for seq, _, source in pairs}
    try:
        with session_factory() as session:
            result = audit.verify_chain(session, anchors=[(s, h) for s, h, _ in pairs])
            if result.ok:
                first = session.get(audit.AuditEntry, 1) if result.entries else None
                problem = _older_data(session, result.entries, first.at if first else None)
                if problem is not None:
                    result = replace(result, ok=False, first_bad_seq=1, reason=problem)
    except sa_exc.SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", None) or exc)[:200]
        reason = f"the audit tables cannot be read ({type(exc).__name__}: {cause})"
        result = audit.VerifyResult(False, 0, 0, audit.GENESIS_HASH, first_bad_seq=1, reason=reason)
    if not result.ok and result.first_bad_seq in where and "anchor" in (result.reason or ""):
        result = replace(result, reason=f"{result.reason} ({where[result.first_bad_seq]})")
    return Verdict(result, anchors_checked=len(pairs), notes=notes)


def record_verification(session_factory: sessionmaker[Session], actor: Actor, verdict: Verdict) -> str | None:
    """Audit a verification (after its verdict was shown); returns why it could not be recorded, or None.

    A broken head is re-anchored by the append itself (``audit._check_head``), so this does not collide with a
    forged entry; anything else that stops the write is reported to the caller rather than hiding the verdict.
    """
    r = verdict.result
    try:
        audit.record_now(
            session_factory,
            actor,
            audit.AuditAction.AUDIT_VERIFY,
            "audit_log",
            audit.Outcome.OK if r.ok else audit.Outcome.FAILED,
            details={"entries": r.entries, "first_bad_seq": r.first_bad_seq, "highest_seq": r.highest_seq,
                     "anchors_checked": verdict.anchors_checked},
        )  # fmt: skip
    except (sa_exc.SQLAlchemyError, ValueError) as exc:
        log.critical("could not record an audit verification: %s", exc)
        return f"the verification could not be recorded in the audit log ({type(exc).__name__})"
    if not r.ok:
        log.critical("AUDIT CHAIN BROKEN at entry %s: %s", r.first_bad_seq, r.reason)
    return None


def anchor_now(session_factory: sessionmaker[Session], settings: Settings) -> tuple[Verdict, dict[str, Any] | None]:
    """Verify, and if the log is whole write a signed anchor of its head to the anchor file; returns both
    (no anchor for a broken log: anchoring it would bless the damage)."""
    verdict = verify(session_factory, settings)
    if not verdict.ok:
        return verdict, None
    with session_factory() as session:
        first = session.get(audit.AuditEntry, 1)
        first_at = audit.iso_utc(first.at) if first is not None else None
    r = verdict.result
    document = make_anchor(settings, r.head_seq, r.head_hash, first_at)
    write_anchor(settings, document)
    return verdict, document


def periodic_anchor(session_factory: sessionmaker[Session], settings: Settings) -> dict[str, Any] | None:
    """The server's periodic anchor: only the entries since the last anchor in the file are walked; a new anchor
    is appended when the head moved. A broken chain is logged as an operator alert (and not anchored)."""
    documents = [d for d in read_anchor_documents(anchor_file(settings)) if check_anchor(settings, d) is None]
    last = max(documents, key=lambda d: int(d["seq"]), default=None)
    since = (int(last["seq"]), str(last["hash"])) if last else None
    try:
        with session_factory() as session:
            result = audit.verify_chain(session, since=since)
            first = session.get(audit.AuditEntry, 1)
            first_at = audit.iso_utc(first.at) if first is not None else None
    except sa_exc.SQLAlchemyError as exc:
        log.critical("AUDIT CHAIN cannot be read for the periodic anchor: %s", exc)
        return None
    if not result.ok:
        log.critical("AUDIT CHAIN BROKEN at entry %s: %s (periodic check; not anchored)", result.first_bad_seq,
                     result.reason)  # fmt: skip
        return None
    if result.head_seq == 0 or (last is not None and result.head_seq == int(last["seq"])):
        return None  # nothing (new) to anchor
    document = make_anchor(settings, result.head_seq, result.head_hash, first_at)
    write_anchor(settings, document)
    return document


__all__ = [
    "ANCHOR_FORMAT",
    "Verdict",
    "anchor_file",
    "anchor_now",
    "check_anchor",
    "make_anchor",
    "periodic_anchor",
    "public_key",
    "read_anchor_documents",
    "record_verification",
    "verify",
    "write_anchor",
]
