"""Destruction eligibility criteria: the checklist each agency administers, and what the records say about them.

An agency's administrators keep the list (:func:`add_criterion`, :func:`withdraw_criterion`); until they change it,
the four default items apply (:data:`DEFAULT_CRITERIA`). A destruction request takes a snapshot of the list in force
when it is recorded (a later change does not move the goalposts of an open request), and approval needs every item
of its snapshot recorded as satisfied by a person (docs/destruction.md).

Most criteria are judged by a person (``manual``). Two kinds can also be worked out from the records, and a recording
that contradicts the records is refused:

- ``max_age_at_booking`` (parameter: years) — the subject was younger than N at every booking. Only the birth year is
  held, so the age at a booking is known to within one year: clearly under, clearly not, or undetermined (then the
  person recording it says how it was checked).
- ``waiting_period`` (parameter: days) — N days have passed since the latest disposition (discharge: withdrawn,
  dismissed, acquitted, pardoned) of any of the subject's bookings.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, enforce
from faceleads.core.uow import transaction
from faceleads.db import utcnow
from faceleads.errors import NotFound, ValidationError
from faceleads.gallery.models import Disposition, Encounter, Subject
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.governance.models import CriterionCheck, DestructionCriterion

CODE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
MIN_REASON_CHARS = 10
PARAMETER_RANGE: dict[str, tuple[int, int, str]] = {
    CriterionCheck.MAX_AGE_AT_BOOKING.value: (1, 120, "years"),
    CriterionCheck.WAITING_PERIOD.value: (0, 36500, "days"),
}


@dataclass(frozen=True)
class Criterion:
    """One item of a checklist: its code, the text the officer reads, how it is assessed."""

    code: str
    text: str
    check: str = CriterionCheck.MANUAL.value
    parameter: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


#: The checklist of an agency that has not administered its own (and of requests recorded before criteria existed).
DEFAULT_CRITERIA: tuple[Criterion, ...] = (
    Criterion("requester_identity_verified",
              "The requester's identity (and, for a representative, their authority to act) was verified."),
    Criterion("no_pending_proceedings",
              "No pending charge, prosecution, court order or litigation hold concerns the subject."),
    Criterion("retention_rules_allow",
              "No retention rule or statutory period requires the records to be kept longer."),
    Criterion("legal_authority_reviewed",
              "The legal grounds for destruction (acquittal, no further action, expiry, court order) were reviewed."),
)  # fmt: skip


@dataclass(frozen=True)
class Assessment:
    """What the records say about a criterion: True / False / None (not determinable), and why."""

    verdict: bool | None
    explanation: str


@dataclass(frozen=True)
class Facts:
    """The records a computed criterion looks at (no biometric data)."""

    today: date
    birth_year: int | None
    booking_dates: tuple[date, ...]
    latest_disposition: date | None


@dataclass(frozen=True)
class CriterionView:
    """An entry of the agency's list as administrators see it."""

    code: str
    text: str
    check: str
    parameter: int | None
    active: bool
    default: bool  # True while the agency uses the default list (nothing stored yet)
    created_by: str | None
    created_at: datetime | None
    withdrawn_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("created_at", "withdrawn_at"):
            data[key] = audit.iso_utc(data[key]) if data[key] else None
        return data


def _stored(session: Session, agency_id: int) -> list[DestructionCriterion]:
    return list(
        session.scalars(
            select(DestructionCriterion)
            .where(DestructionCriterion.agency_id == agency_id)
            .order_by(DestructionCriterion.position, DestructionCriterion.id)
        )
    )


def agency_criteria(session: Session, agency_id: int) -> list[Criterion]:
    """The agency's checklist in force: its active entries, or the defaults if it never administered one."""
    rows = _stored(session, agency_id)
    if not rows:
        return list(DEFAULT_CRITERIA)
    return [Criterion(r.code, r.text, r.check, r.parameter) for r in rows if r.active]


def snapshot(criteria: list[Criterion]) -> list[dict[str, Any]]:
    """The JSON form stored on a destruction request."""
    return [c.to_json() for c in criteria]


def from_snapshot(data: list[dict[str, Any]] | None) -> list[Criterion]:
    """A request's checklist (the defaults for a request recorded before criteria were administered)."""
    if not data:
        return list(DEFAULT_CRITERIA)
    return [Criterion(str(d["code"]), str(d["text"]), str(d.get("check") or "manual"), d.get("parameter"))
            for d in data]  # fmt: skip


def subject_facts(session: Session, subject_id: int, today: date | None = None) -> Facts:
    """The facts computed criteria use, read from the subject's records."""
    subject = session.get(Subject, subject_id)
    dates = tuple(session.execute(select(Encounter.booking_date).where(Encounter.subject_id == subject_id)).scalars())
    latest = session.scalar(select(func.max(Disposition.occurred_on)).where(Disposition.subject_id == subject_id))
    return Facts(today or utcnow().date(), subject.birth_year if subject else None, dates, latest)


def assess(criterion: Criterion, facts: Facts) -> Assessment:
    """What the records say about ``criterion`` (a pure function of the facts)."""
    n = criterion.parameter
    if criterion.check == CriterionCheck.MAX_AGE_AT_BOOKING.value and n is not None:
        if facts.birth_year is None:
            return Assessment(None, "no birth year is recorded: check the age at booking from the paper record")
        if not facts.booking_dates:
            return Assessment(None, "no booking is recorded")
        # Born in year Y, booked in year B: the age at the booking was B-Y-1 or B-Y.
        oldest = max(d.year for d in facts.booking_dates) - facts.birth_year
        if oldest < n:
            return Assessment(True, f"at most {oldest} at every booking (birth year {facts.birth_year})")
        if oldest - 1 >= n:
            born = facts.birth_year
            return Assessment(False, f"at least {oldest - 1} at a booking (birth year {born}): not under {n}")
        return Assessment(None, f"{oldest - 1} or {oldest} at the latest booking (birth year {facts.birth_year}): "
                                f"check the date of birth")  # fmt: skip
    if criterion.check == CriterionCheck.WAITING_PERIOD.value and n is not None:
        if facts.latest_disposition is None:
            return Assessment(None, "no disposition is recorded for the subject's bookings")
        due = facts.latest_disposition + timedelta(days=n)
        if facts.today >= due:
            return Assessment(True, f"{n} days since the disposition of {facts.latest_disposition.isoformat()} "
                                    f"passed on {due.isoformat()}")  # fmt: skip
        return Assessment(False, f"{n} days after the disposition of {facts.latest_disposition.isoformat()}: "
                                 f"not before {due.isoformat()}")  # fmt: skip
    return Assessment(None, "assessed by the person recording it")


# --------------------------------------------------------------------------------------------- administration


def _stored_or_seeded(session: Session, actor: Actor) -> list[DestructionCriterion]:
    """The agency's stored items; on its first change, the default items are stored first (so they stay listed)."""
    rows = _stored(session, actor.agency_id)
    if rows:
        return rows
    for i, item in enumerate(DEFAULT_CRITERIA):
        session.add(DestructionCriterion(agency_id=actor.agency_id, code=item.code, text=item.text, check=item.check,
                                         parameter=item.parameter, position=i, created_by=actor.username))  # fmt: skip
    session.flush()
    return _stored(session, actor.agency_id)


def _clean_check(check: str, parameter: int | None) -> tuple[str, int | None]:
    valid = {c.value for c in CriterionCheck}
    if check not in valid:
        raise ValidationError(f"bad criterion check {check!r}: expected one of {', '.join(sorted(valid))}")
    if check == CriterionCheck.MANUAL.value:
        if parameter is not None:
            raise ValidationError("a manual criterion takes no parameter")
        return check, None
    low, high, unit = PARAMETER_RANGE[check]
    if parameter is None or isinstance(parameter, bool) or not low <= parameter <= high:
        raise ValidationError(f"a {check} criterion needs a parameter in {unit} between {low} and {high}")
    return check, int(parameter)


def add_criterion(
    rt: GalleryRuntime, actor: Actor, code: str, text: str, *, check: str = "manual", parameter: int | None = None
) -> CriterionView:
    """Add an item to the agency's checklist (administrators; audited). The first change stores the default items
    first, so that they stay unless withdrawn."""
    enforce(rt.session_factory, actor, Action.ADMIN_RECORDS_POLICY, "destruction_criteria", actor.agency_id)
    code = (code or "").strip()
    if not CODE_PATTERN.match(code):
        raise ValidationError(f"bad criterion code {code!r}: lower-case letters, digits and _ (2 to 64)")
    text = (text or "").strip()
    if not 10 <= len(text) <= 1000:
        raise ValidationError("a criterion's text (what the officer checks) needs 10 to 1000 characters")
    check, parameter = _clean_check(check, parameter)
    with transaction(rt.session_factory) as session:
        rows = _stored_or_seeded(session, actor)
        if any(r.code == code for r in rows):
            raise ValidationError(f"criterion {code!r} is already on the list (codes are not reused)")
        row = DestructionCriterion(agency_id=actor.agency_id, code=code, text=text, check=check, parameter=parameter,
                                   position=len(rows), created_by=actor.username)  # fmt: skip
        session.add(row)
        session.flush()
        audit.record(session, actor, "destruction_criterion_add", f"destruction_criterion:{row.id}", audit.Outcome.OK,
                     details={"code": code, "check": check, "parameter": parameter})  # fmt: skip
        return _criterion_view(row, default=False)


def withdraw_criterion(rt: GalleryRuntime, actor: Actor, code: str, reason: str) -> CriterionView:
    """Withdraw an item (administrators; audited). Open requests keep the checklist they were recorded with."""
    enforce(rt.session_factory, actor, Action.ADMIN_RECORDS_POLICY, "destruction_criteria", actor.agency_id)
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON_CHARS:
        raise ValidationError(f"a withdrawal reason needs at least {MIN_REASON_CHARS} characters")
    with transaction(rt.session_factory) as session:
        _stored_or_seeded(session, actor)
        row = session.scalars(
            select(DestructionCriterion).where(DestructionCriterion.agency_id == actor.agency_id,
                                               DestructionCriterion.code == code)
        ).first()  # fmt: skip
        if row is None:
            raise NotFound(f"no destruction criterion {code!r} on your agency's list")
        if not row.active:
            raise ValidationError(f"criterion {code!r} was already withdrawn")
        if sum(1 for r in _stored(session, actor.agency_id) if r.active) <= 1:
            raise ValidationError("the checklist cannot be empty: add another criterion before withdrawing this one")
        row.active = False
        row.withdrawn_by, row.withdrawn_at = actor.username, utcnow()
        audit.record(session, actor, "destruction_criterion_withdraw", f"destruction_criterion:{row.id}",
                     audit.Outcome.OK, details={"code": code, "reason": reason[:500]})  # fmt: skip
        return _criterion_view(row, default=False)


def _criterion_view(row: DestructionCriterion, *, default: bool) -> CriterionView:
    return CriterionView(row.code, row.text, row.check, row.parameter, row.active, default, row.created_by,
                         row.created_at, row.withdrawn_at)  # fmt: skip


def list_criteria(rt: GalleryRuntime, actor: Actor) -> list[CriterionView]:
    """The agency's checklist, withdrawn items included (anyone who may read the records policy)."""
    enforce(rt.session_factory, actor, Action.VIEW_RECORDS_POLICY, "destruction_criteria", actor.agency_id)
    with rt.session_factory() as session:
        rows = _stored(session, actor.agency_id)
        if not rows:
            return [CriterionView(c.code, c.text, c.check, c.parameter, True, True, None, None, None)
                    for c in DEFAULT_CRITERIA]  # fmt: skip
        return [_criterion_view(r, default=False) for r in rows]


__all__ = [
    "DEFAULT_CRITERIA",
    "Assessment",
    "Criterion",
    "CriterionView",
    "Facts",
    "add_criterion",
    "agency_criteria",
    "assess",
    "from_snapshot",
    "list_criteria",
    "snapshot",
    "subject_facts",
    "withdraw_criterion",
]
