"""Disposition events of bookings — withdrawn, dismissed, acquitted, pardoned — with their date and reference.

An event is a fact about a booking. It is recorded here, in the caller's transaction, by the governance service
(``faceleads disposition record``, the API) or by a bulk manifest row (columns ``disposition``,
``disposition_date``, ``disposition_ref``); what the agency then does about it (schedule the subject's destruction
after a waiting period, or keep the record) is its disposition policy, applied by
:mod:`faceleads.governance.dispositions`. Recording is idempotent: the same event twice is one event; a different
date or reference for the same kind of event of a booking is refused as a conflict.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.db import utcnow
from faceleads.errors import ValidationError
from faceleads.gallery.models import Disposition, DispositionKind, Encounter

KINDS: tuple[str, ...] = tuple(k.value for k in DispositionKind)
SOURCES = ("cli", "api", "web", "manifest")


class DispositionConflict(ValidationError):
    """The booking already has an event of that kind with another date or reference."""


@dataclass(frozen=True)
class DispositionInput:
    """A disposition event as given: kind, date, reference (validated on construction)."""

    kind: str
    occurred_on: date
    reference: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValidationError(f"bad disposition {self.kind!r}: expected one of {', '.join(KINDS)}")
        if self.occurred_on > utcnow().date():
            raise ValidationError(f"disposition date {self.occurred_on.isoformat()} is in the future")
        if not isinstance(self.reference, str) or not self.reference.strip():
            raise ValidationError("a disposition needs its reference (court or prosecution reference)")
        if len(self.reference.strip()) > 200:
            raise ValidationError("a disposition reference is limited to 200 characters")


def parse_kind(text: str | None) -> str:
    """A disposition kind, case-insensitive (``no further action`` style spaces allowed)."""
    value = (text or "").strip().lower().replace(" ", "_")
    if value not in KINDS:
        raise ValidationError(f"bad disposition {text!r}: expected one of {', '.join(KINDS)}")
    return value


def record_in(
    session: Session, actor: Actor, encounter: Encounter, event: DispositionInput, source: str
) -> tuple[Disposition, bool]:
    """Record ``event`` for ``encounter`` in the caller's transaction; returns (the event, whether it is new).

    The caller has authorised the actor for the encounter's agency. A new event is audited (``disposition``).
    """
    if source not in SOURCES:
        raise ValidationError(f"unknown disposition source {source!r}")
    existing = session.scalars(
        select(Disposition).where(Disposition.encounter_id == encounter.id, Disposition.kind == event.kind)
    ).first()
    reference = event.reference.strip()
    if existing is not None:
        if existing.occurred_on == event.occurred_on and existing.reference == reference:
            return existing, False
        raise DispositionConflict(
            f"booking {encounter.booking_number!r} already has a disposition {event.kind!r} of "
            f"{existing.occurred_on.isoformat()} ({existing.reference})"
        )
    row = Disposition(
        agency_id=encounter.agency_id,
        subject_id=encounter.subject_id,
        encounter_id=encounter.id,
        kind=event.kind,
        occurred_on=event.occurred_on,
        reference=reference,
        source=source,
        recorded_by=actor.username,
        recorded_by_user_id=actor.user_id,
    )
    session.add(row)
    session.flush()
    audit.record(session, actor, "disposition", f"disposition:{row.id}", audit.Outcome.OK,
                 details={"kind": event.kind, "subject_id": encounter.subject_id, "encounter_id": encounter.id,
                          "occurred_on": event.occurred_on.isoformat(), "source": source})  # fmt: skip
    return row, True


def find_encounter(session: Session, agency_id: int, booking_number: str) -> Encounter | None:
    """The agency's booking ``booking_number`` (other agencies' bookings are never looked at)."""
    return session.scalars(
        select(Encounter).where(Encounter.agency_id == agency_id, Encounter.booking_number == booking_number.strip())
    ).first()


__all__ = ["KINDS", "DispositionConflict", "DispositionInput", "find_encounter", "parse_kind", "record_in"]
