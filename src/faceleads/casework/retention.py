"""Retention of case data and probes, by offence category (``Settings.retention_days``).

A case's retention period runs from its opening (``Case.retention_until``). When it has passed,
:func:`run_retention` purges the case's biometric data: evidence originals, extracted video frames and probe
templates are deleted, and the case's data key is destroyed, so any copy of the encrypted blobs (backups included)
is unreadable for good (crypto-shredding). Free-text notes are redacted. The case row stays as a tombstone
(occurrence number, offence, dates, status ``purged``) so that statistics and the audit trail still make sense.
Each run is recorded (:class:`RetentionRun`) and each purged case audited.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from faceleads.casework.common import as_utc, authorise
from faceleads.casework.models import (
    Adjudication,
    Case,
    CaseSearch,
    CaseStatus,
    Evidence,
    Lead,
    LeadOutcome,
    LeadReport,
    Probe,
    RetentionRun,
)
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, allowed
from faceleads.core.uow import transaction
from faceleads.db import utcnow
from faceleads.gallery.runtime import GalleryRuntime

REDACTED = "[purged under retention rules]"


@dataclass
class RetentionReport:
    """What a retention run did (or, for a dry run, would do)."""

    run_id: int | None
    at: datetime
    dry_run: bool
    cases: list[str] = field(default_factory=list)  # occurrence numbers
    evidence_purged: int = 0
    probes_purged: int = 0
    blobs_deleted: int = 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


def due_cases(rt: GalleryRuntime, actor: Actor, now: datetime | None = None) -> list[int]:
    """Ids of cases whose retention period has passed, that ``actor`` may apply retention to."""
    moment = as_utc(now or utcnow())
    with rt.session_factory() as session:
        rows = session.scalars(
            select(Case).where(Case.status != CaseStatus.PURGED.value).order_by(Case.id)
        ).all()
        return [
            c.id for c in rows
            if as_utc(c.retention_until) <= moment and allowed(actor, Action.APPLY_RETENTION, c.agency_id)
        ]


def run_retention(
    rt: GalleryRuntime, actor: Actor, *, now: datetime | None = None, dry_run: bool = False
) -> RetentionReport:
    """Purge every expired case the actor may apply retention to (own agency; see the policy)."""
    authorise(rt.session_factory, actor, Action.APPLY_RETENTION, "retention", None)
    moment = as_utc(now or utcnow())
    report = RetentionReport(None, moment, dry_run)
    for case_id in due_cases(rt, actor, moment):
        with transaction(rt.session_factory) as session:
            case = session.get(Case, case_id)
            if case is None or case.status == CaseStatus.PURGED.value:
                continue
            evidence = list(session.scalars(select(Evidence).where(Evidence.case_id == case.id)))
            probes = list(session.scalars(select(Probe).where(Probe.case_id == case.id)))
            reports = list(session.scalars(select(LeadReport).where(LeadReport.case_id == case.id)))
            report.cases.append(case.occurrence_number)
            addresses = [e.store_address for e in evidence if e.store_address] + [
                p.frame_address for p in probes if p.frame_address
            ] + [r.store_address for r in reports if r.store_address]
            report.evidence_purged += sum(1 for e in evidence if e.purged_at is None)
            report.probes_purged += len(probes)
            if dry_run:
                report.blobs_deleted += len(addresses)
                continue
            # Destroy the key first: from this moment every copy of the case's blobs is unreadable, even if
            # deleting the files below is interrupted.
            rt.keystore.destroy(case.key_id)
            for address in addresses:
                if rt.store.delete(address):
                    report.blobs_deleted += 1
            for e in evidence:
                e.store_address = None
                e.purged_at = moment
            for r in reports:
                r.store_address = None  # the hash stays: a copy held elsewhere can still be checked
            for p in probes:
                p.frame_address = None
                p.template = None
                p.face_landmarks = None
                p.quality = None
            searches = list(session.scalars(select(CaseSearch).where(CaseSearch.case_id == case.id)))
            for cs in searches:
                for mark in session.scalars(select(Adjudication).where(Adjudication.case_search_id == cs.id)):
                    mark.notes = REDACTED
                    mark.checklist = {}
            for lead in session.scalars(select(Lead).where(Lead.case_id == case.id)):
                if lead.verification_notes:
                    lead.verification_notes = REDACTED
                if lead.supervisor_reason:
                    lead.supervisor_reason = REDACTED
                # The outcome itself stays (the transparency report counts it); its free-text notes go.
                for entry in session.scalars(select(LeadOutcome).where(LeadOutcome.lead_id == lead.id)):
                    entry.notes = REDACTED
            case.justification = REDACTED
            case.status = CaseStatus.PURGED.value
            case.purged_at = moment
            audit.record(session, actor, "retention_purge", f"case:{case.id}", audit.Outcome.OK,
                         case=case.occurrence_number,
                         details={"offence": case.offence.code, "category": case.offence.category,
                                  "evidence_count": len(evidence), "probe_count": len(probes),
                                  "blob_count": len(addresses)})
    if not dry_run:
        with transaction(rt.session_factory) as session:
            run = RetentionRun(run_by=actor.username, at=moment, cases_purged=len(report.cases),
                               evidence_purged=report.evidence_purged, probes_purged=report.probes_purged,
                               blobs_deleted=report.blobs_deleted, details={"cases": report.cases[:1000]})
            session.add(run)
            session.flush()
            audit.record(session, actor, "retention_run", f"retention_run:{run.id}", audit.Outcome.OK,
                         details={"case_count": len(report.cases), "blob_count": report.blobs_deleted})
            report.run_id = run.id
    return report
