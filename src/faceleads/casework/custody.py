"""The chain of custody of a case's evidence, from the hash-chained audit log.

Every handling of the evidence is in the audit log already — intake (with its SHA-256), each view of a probe image,
each edit-list version, the face chosen, quality overrides, the searches that used it, the reports exported, the
retention purge — with who, when and the entry's sequence number in the tamper-evident chain. This module reads
those entries back for one case as a timeline, for the case page and the lead report.

It shows handling, never findings: conclusions, verification results and the details of candidate lists are
left out (a verifier reading the case page must learn nothing of a search sealed for them), and only a fixed set
of non-biometric detail keys is kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceleads.casework import blind
from faceleads.casework.common import as_utc, authorise, get_case
from faceleads.core.actor import Actor
from faceleads.core.audit import AuditEntry
from faceleads.core.policy import Action
from faceleads.gallery.runtime import GalleryRuntime

# action -> wording (the object follows)
CUSTODY_ACTIONS: dict[str, str] = {
    "case_open": "Case opened",
    "request_open": "Recognition requested",
    "request_authorise": "Purpose authorisation recorded",
    "evidence_add": "Evidence received, hashed and stored encrypted",
    "probe_edit": "Edit list changed (original untouched)",
    "probe_face": "Face chosen for searching",
    "quality_override": "Quality override recorded",
    "view_probe_image": "Probe image viewed",
    "case_search": "Evidence searched against the gallery",
    "export": "Lead report exported",
    "report_download": "Lead report downloaded",
    "retention_purge": "Evidence destroyed under the retention rules",
    "case_close": "Case closed",
}
# Detail keys that describe handling (never a conclusion, a score or a candidate).
SAFE_DETAILS = ("kind", "evidence_sha256", "version", "operations", "edited", "view", "source", "face_number",
                "probe_count", "fused", "status", "priority", "report_sha256", "format", "granted")


@dataclass(frozen=True)
class CustodyEvent:
    """One handling of the case's evidence."""

    seq: int  # the audit entry's place in the hash chain
    at: datetime
    username: str
    action: str
    what: str
    object_ref: str
    outcome: str
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


def _events(session: Session, actor: Actor, agency_id: int, occurrence: str, case_id: int,
            limit: int) -> tuple[list[CustodyEvent], int]:
    sealed = {f"case_search:{i}" for i in blind.sealed_search_ids(session, actor, agency_id, case_id)}
    rows = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.agency_id == agency_id, AuditEntry.case_ref == occurrence,
               AuditEntry.action.in_(list(CUSTODY_ACTIONS)))
        .order_by(AuditEntry.seq)
    ).all()
    out = []
    for entry in rows:
        if entry.object_ref in sealed:
            continue
        details = entry.details
        safe = {k: details[k] for k in SAFE_DETAILS if k in details}
        out.append(CustodyEvent(entry.seq, as_utc(entry.at), entry.username or "system", entry.action,
                                CUSTODY_ACTIONS[entry.action], entry.object_ref, entry.outcome, safe))
    total = len(out)
    return (out if total <= limit else out[:limit // 2] + out[-(limit - limit // 2):]), total


def case_timeline(rt: GalleryRuntime, actor: Actor, case_id: int, *, limit: int = 500) -> tuple[list[CustodyEvent],
                                                                                              int]:
    """The custody timeline of a case (oldest first) and the number of events in total; beyond ``limit`` events
    the first and last halves are returned."""
    with rt.session_factory() as session:
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"case:{case_id}", None)
        case = get_case(session, case_id)
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"case:{case_id}", case.agency_id,
                  case.occurrence_number)
        return _events(session, actor, case.agency_id, case.occurrence_number, case.id, max(2, limit))


def evidence_timeline(session: Session, actor: Actor, agency_id: int, occurrence: str, case_id: int,
                      refs: set[str], limit: int = 60) -> tuple[list[CustodyEvent], int]:
    """The custody events of some evidence and probes of a case (``refs`` like ``evidence:3``, ``probe:7``) plus
    the case-level events, for a report; internal (the caller authorised the read)."""
    events, _ = _events(session, actor, agency_id, occurrence, case_id, 100_000)
    kept = [e for e in events if e.object_ref in refs or e.action in ("case_open", "request_open",
                                                                      "request_authorise", "case_search", "export")]
    total = len(kept)
    return (kept if total <= limit else kept[:limit // 2] + kept[-(limit - limit // 2):]), total


__all__ = ["CUSTODY_ACTIONS", "CustodyEvent", "case_timeline", "evidence_timeline"]
