"""Outcomes of released leads: what the investigation made of each lead, signed off by an investigator.

Every released lead should end with an outcome — ``corroborated`` (independent evidence supports it),
``eliminated`` (the person was eliminated from the inquiry), ``no_further_action`` or ``charged`` — recorded with
notes by an investigator of the case's agency, who signs it off (their name and the time are recorded, the entry is
audited). An inquiry moves on, so a later entry supersedes an earlier one; every entry is kept. The transparency
report counts the latest outcome of each lead (docs/transparency.md). Nothing here shows biometric content.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceleads.casework.common import as_utc, authorise, clean_text, get_lead
from faceleads.casework.models import Case, Lead, LeadOutcome, LeadOutcomeKind, LeadStatus, Offence
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action
from faceleads.core.uow import transaction
from faceleads.errors import ValidationError
from faceleads.gallery.runtime import GalleryRuntime

OUTCOMES: tuple[str, ...] = tuple(k.value for k in LeadOutcomeKind)
MIN_NOTES_CHARS = 10


@dataclass(frozen=True)
class OutcomeEntry:
    """One signed-off outcome."""

    outcome: str
    notes: str
    signed_off_by: str
    signed_off_at: datetime

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["signed_off_at"] = self.signed_off_at.isoformat()
        return data


@dataclass(frozen=True)
class ReleasedLead:
    """A released lead and its outcome (the latest entry; None while awaiting one)."""

    lead_id: int
    case_id: int
    occurrence_number: str
    offence: str
    released_by: str | None
    released_at: datetime | None
    outcome: OutcomeEntry | None
    history: list[OutcomeEntry] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "lead_id": self.lead_id,
            "case_id": self.case_id,
            "occurrence_number": self.occurrence_number,
            "offence": self.offence,
            "released_by": self.released_by,
            "released_at": self.released_at.isoformat() if self.released_at else None,
            "outcome": self.outcome.to_json() if self.outcome else None,
            "history": [h.to_json() for h in self.history],
        }


def _entries(session: Session, lead_id: int) -> list[OutcomeEntry]:
    rows = session.scalars(select(LeadOutcome).where(LeadOutcome.lead_id == lead_id).order_by(LeadOutcome.id))
    return [OutcomeEntry(r.outcome, r.notes, r.signed_off_by, as_utc(r.signed_off_at)) for r in rows]


def _released(session: Session, lead: Lead, case: Case) -> ReleasedLead:
    history = _entries(session, lead.id)
    offence = session.get(Offence, case.offence_id)
    return ReleasedLead(lead.id, case.id, case.occurrence_number, offence.code if offence else "?", lead.released_by,
                        as_utc(lead.released_at) if lead.released_at else None, history[-1] if history else None,
                        history)  # fmt: skip


def record_outcome(rt: GalleryRuntime, actor: Actor, lead_id: int, outcome: str, notes: str) -> ReleasedLead:
    """Sign off the outcome of a released lead (investigators of the case's agency); audited (``lead_outcome``).

    Refused for a lead that was not released (an unreleased lead is not the investigator's to act on), an unknown
    outcome, or notes shorter than 10 characters.
    """
    ref = f"lead:{lead_id}"
    authorise(rt.session_factory, actor, Action.RECORD_OUTCOME, ref, None)
    with rt.session_factory() as session:
        lead, case = get_lead(session, lead_id)
        agency_id, occurrence = case.agency_id, case.occurrence_number
    authorise(rt.session_factory, actor, Action.RECORD_OUTCOME, ref, agency_id, occurrence)
    if outcome not in OUTCOMES:
        raise ValidationError(f"bad outcome {outcome!r}: expected one of {', '.join(OUTCOMES)}")
    text = clean_text(notes, "outcome notes", 4000)
    if len(text) < MIN_NOTES_CHARS:
        raise ValidationError(f"outcome notes need at least {MIN_NOTES_CHARS} characters (what corroborated, "
                              "eliminated or followed the lead)")  # fmt: skip
    with transaction(rt.session_factory) as session:
        lead, case = get_lead(session, lead_id)
        if lead.status != LeadStatus.RELEASED.value:
            reason = f"lead {lead_id} is {lead.status}: only a released lead has an outcome to record"
            audit.record_now(rt.session_factory, actor, "lead_outcome", ref, audit.Outcome.DENIED,
                             case=occurrence, details={"reason": reason})  # fmt: skip
            raise ValidationError(reason)
        session.add(LeadOutcome(lead_id=lead.id, outcome=outcome, notes=text, signed_off_by=actor.username,
                                signed_off_by_user_id=actor.user_id))  # fmt: skip
        session.flush()
        offence = session.get(Offence, case.offence_id)
        audit.record(session, actor, "lead_outcome", ref, audit.Outcome.OK, case=occurrence,
                     details={"outcome": outcome, "offence": offence.code if offence else None})  # fmt: skip
        return _released(session, lead, case)


def released_leads(rt: GalleryRuntime, actor: Actor, *, awaiting_only: bool = False) -> list[ReleasedLead]:
    """The agency's released leads with their outcomes, newest release first (investigators, analysts,
    supervisors: ``view_case``)."""
    authorise(rt.session_factory, actor, Action.VIEW_CASE, "leads/released", actor.agency_id)
    with rt.session_factory() as session:
        rows = session.execute(
            select(Lead, Case)
            .join(Case, Case.id == Lead.case_id)
            .where(Case.agency_id == actor.agency_id, Lead.status == LeadStatus.RELEASED.value)
            .order_by(Lead.released_at.desc(), Lead.id.desc())
        )
        out = [_released(session, lead, case) for lead, case in rows]
    return [r for r in out if r.outcome is None] if awaiting_only else out


def lead_outcome(rt: GalleryRuntime, actor: Actor, lead_id: int) -> ReleasedLead:
    """One released lead with its outcome history (``view_case``, own agency)."""
    ref = f"lead:{lead_id}"
    authorise(rt.session_factory, actor, Action.VIEW_CASE, ref, None)
    with rt.session_factory() as session:
        lead, case = get_lead(session, lead_id)
        authorise(rt.session_factory, actor, Action.VIEW_CASE, ref, case.agency_id, case.occurrence_number)
        if lead.status != LeadStatus.RELEASED.value:
            raise ValidationError(f"lead {lead_id} is {lead.status}: it was not released")
        return _released(session, lead, case)


__all__ = ["OUTCOMES", "OutcomeEntry", "ReleasedLead", "lead_outcome", "record_outcome", "released_leads"]
