"""Disposition events and the destruction they schedule under the agency's policy.

A booking whose proceedings ended in the person's favour (withdrawn, dismissed, acquitted, pardoned) is recorded
with its date and reference — through :func:`record_disposition` (CLI, API, web) or a bulk manifest's disposition
columns (:mod:`faceleads.gallery.bulk`). The agency's **disposition policy** (:func:`set_rule`, administrators) says
for each kind whether the subject's records are destroyed and after how many days (default: destroyed, no waiting
period).

Destruction is per subject (a subject's photos go together), so a subject is **due** when *every* one of its bookings
has a disposition whose rule is "destroy" and the latest waiting period has passed; a booking without one (say, a
conviction) keeps the subject. When a subject falls due, a destruction request is opened (origin ``disposition``,
its grounds naming the events) and then goes through the usual eligibility checklist, decision and execution
(docs/destruction.md): the policy schedules, people decide.

- :func:`record_disposition` opens the request at once when the subject is due already;
- :func:`run` (``faceleads disposition run``, daily or after a manifest import) opens every request that has
  fallen due since;
- :func:`schedule_report` (``faceleads disposition report``) lists what is scheduled, when, and what was opened.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, allowed, enforce
from faceleads.core.uow import transaction
from faceleads.db import utcnow
from faceleads.errors import NotFound, ValidationError
from faceleads.gallery.dispositions import KINDS, DispositionInput, find_encounter, record_in
from faceleads.gallery.models import Disposition, Encounter, Subject, SubjectStatus
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.governance.destruction import open_request
from faceleads.governance.models import DestructionRequest, DispositionRule, RequestStatus

DESTROY, RETAIN = "destroy", "retain"
DEFAULT_RULE = (DESTROY, 0)
MAX_WAITING_DAYS = 36500


@dataclass(frozen=True)
class Rule:
    """What the policy does for one kind of disposition."""

    kind: str
    action: str  # destroy / retain
    waiting_days: int
    default: bool  # True when the agency has not set it

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Schedule:
    """Where one subject with disposition events stands.

    ``state``: ``due`` (every booking disposed of, waiting period over, no request yet), ``scheduled`` (due on
    ``due_on``), ``retained`` (a booking without a qualifying disposition, or a kind the policy keeps: ``reason``),
    ``request_open`` / ``destroyed`` / ``denied`` (a request exists: ``request_id``, ``request_status``).
    """

    subject_id: int
    subject_number: str
    state: str
    due_on: date | None
    reason: str
    events: list[dict[str, Any]] = field(default_factory=list)
    request_id: int | None = None
    request_status: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["due_on"] = self.due_on.isoformat() if self.due_on else None
        return data


@dataclass(frozen=True)
class RecordedDisposition:
    """What recording one event did: the event, and the subject's schedule afterwards."""

    disposition_id: int
    booking_number: str
    kind: str
    occurred_on: date
    reference: str
    new: bool
    schedule: Schedule

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["occurred_on"] = self.occurred_on.isoformat()
        data["schedule"] = self.schedule.to_json()
        return data


# --------------------------------------------------------------------------------------------- policy


def rules(session: Session, agency_id: int) -> dict[str, Rule]:
    """The agency's rule for every kind (the default where none is set)."""
    stored = {r.kind: r for r in session.scalars(select(DispositionRule).where(DispositionRule.agency_id == agency_id))}
    out = {}
    for kind in KINDS:
        row = stored.get(kind)
        out[kind] = (Rule(kind, row.action, row.waiting_days, False) if row is not None
                     else Rule(kind, DEFAULT_RULE[0], DEFAULT_RULE[1], True))  # fmt: skip
    return out


def list_rules(rt: GalleryRuntime, actor: Actor) -> list[Rule]:
    """The agency's disposition policy (anyone who may read the records policy)."""
    enforce(rt.session_factory, actor, Action.VIEW_RECORDS_POLICY, "disposition_rules", actor.agency_id)
    with rt.session_factory() as session:
        return list(rules(session, actor.agency_id).values())


def set_rule(rt: GalleryRuntime, actor: Actor, kind: str, action: str, waiting_days: int = 0) -> Rule:
    """Set what the policy does for ``kind`` (administrators; audited). Applies to every schedule not yet opened."""
    enforce(rt.session_factory, actor, Action.ADMIN_RECORDS_POLICY, "disposition_rules", actor.agency_id)
    if kind not in KINDS:
        raise ValidationError(f"bad disposition {kind!r}: expected one of {', '.join(KINDS)}")
    if action not in (DESTROY, RETAIN):
        raise ValidationError(f"bad policy action {action!r}: expected {DESTROY} or {RETAIN}")
    if isinstance(waiting_days, bool) or not isinstance(waiting_days, int) or not 0 <= waiting_days <= MAX_WAITING_DAYS:
        raise ValidationError(f"waiting days must be 0 to {MAX_WAITING_DAYS}, got {waiting_days!r}")
    if action == RETAIN:
        waiting_days = 0
    with transaction(rt.session_factory) as session:
        row = session.scalars(
            select(DispositionRule).where(DispositionRule.agency_id == actor.agency_id, DispositionRule.kind == kind)
        ).first()
        if row is None:
            row = DispositionRule(agency_id=actor.agency_id, kind=kind, action=action, waiting_days=waiting_days,
                                  updated_by=actor.username)  # fmt: skip
            session.add(row)
        else:
            row.action, row.waiting_days, row.updated_by = action, waiting_days, actor.username
        session.flush()
        audit.record(session, actor, "disposition_rule", f"disposition_rule:{kind}", audit.Outcome.OK,
                     details={"kind": kind, "policy_action": action, "waiting_days": waiting_days})  # fmt: skip
        return Rule(kind, action, waiting_days, False)


# --------------------------------------------------------------------------------------------- schedules


def _events(session: Session, subject_id: int) -> list[tuple[Disposition, Encounter]]:
    return list(
        session.execute(
            select(Disposition, Encounter)
            .join(Encounter, Encounter.id == Disposition.encounter_id)
            .where(Disposition.subject_id == subject_id)
            .order_by(Disposition.occurred_on, Disposition.id)
        )
    )


def subject_schedule(session: Session, subject: Subject, policy: dict[str, Rule], today: date) -> Schedule:
    """Where ``subject`` stands under ``policy`` on ``today`` (see :class:`Schedule`); reads only."""
    events = _events(session, subject.id)
    shown = [{"disposition_id": d.id, "booking_number": e.booking_number, "kind": d.kind,
              "occurred_on": d.occurred_on.isoformat(), "reference": d.reference} for d, e in events]  # fmt: skip
    # In the order recorded: the first booking that keeps the records is the one the reason names.
    bookings = list(
        session.scalars(select(Encounter).where(Encounter.subject_id == subject.id).order_by(Encounter.id))
    )
    requests = list(
        session.scalars(
            select(DestructionRequest)
            .where(DestructionRequest.subject_id == subject.id)
            .order_by(DestructionRequest.id.desc())
        )
    )

    def result(state: str, due: date | None, reason: str, req: DestructionRequest | None = None) -> Schedule:
        return Schedule(subject.id, subject.subject_number, state, due, reason, shown,
                        req.id if req else None, req.status if req else None)  # fmt: skip

    if subject.status != SubjectStatus.ACTIVE.value:
        done = next((r for r in requests if r.status == RequestStatus.COMPLETED.value), None)
        return result("destroyed", None, f"subject {subject.status}", done)
    open_ = next((r for r in requests if r.status in (RequestStatus.REQUESTED.value, RequestStatus.APPROVED.value,
                                                      RequestStatus.EXECUTING.value)), None)  # fmt: skip
    if open_ is not None:
        return result("request_open", None, f"destruction request {open_.id} is {open_.status}", open_)
    by_booking: dict[int, list[Disposition]] = {}
    for d, e in events:
        by_booking.setdefault(e.id, []).append(d)
    due_dates = []
    for booking in bookings:
        qualifying = [d for d in by_booking.get(booking.id, []) if policy[d.kind].action == DESTROY]
        if not qualifying:
            kept = by_booking.get(booking.id)
            why = (f"the policy keeps records of {', '.join(sorted({d.kind for d in kept}))} bookings" if kept
                   else "has no disposition calling for destruction")  # fmt: skip
            return result("retained", None, f"booking {booking.booking_number}: {why}")
        # The earliest qualifying event of the booking starts its waiting period.
        due_dates.append(min(d.occurred_on + timedelta(days=policy[d.kind].waiting_days) for d in qualifying))
    if not due_dates:
        return result("retained", None, "no booking")
    due = max(due_dates)
    latest_event = max((_aware(d.recorded_at) for d, _ in events), default=None)
    # A request opened by the policy and denied is final for these events: only a later event re-opens the question.
    denied = next((r for r in requests if r.status == RequestStatus.DENIED.value and r.origin == "disposition"), None)
    if denied is not None and (latest_event is None or denied.decided_at is None
                               or _aware(denied.decided_at) >= latest_event):
        return result("denied", due, f"destruction request {denied.id} was denied: {denied.decision_reason}", denied)
    if due > today:
        return result("scheduled", due, f"waiting period until {due.isoformat()}")
    return result("due", due, "every booking disposed of; waiting period over")


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _grounds(schedule: Schedule, policy: dict[str, Rule]) -> str:
    parts = [f"{e['kind']} on {e['occurred_on']} (ref {e['reference']}) for booking {e['booking_number']}"
             for e in schedule.events]  # fmt: skip
    waits = ", ".join(sorted({f"{r.kind}: destroy after {r.waiting_days} day(s)" for r in policy.values()
                              if r.action == DESTROY and r.kind in {e["kind"] for e in schedule.events}}))  # fmt: skip
    return (f"Disposition: {'; '.join(parts)}. Agency disposition policy ({waits}); due on "
            f"{schedule.due_on.isoformat() if schedule.due_on else '?'}.")[:4000]  # fmt: skip


def _open_if_due(
    session: Session, actor: Actor, subject: Subject, policy: dict[str, Rule], today: date
) -> tuple[Schedule, bool]:
    """The subject's schedule, opening its destruction request when it is due; (schedule, whether opened)."""
    schedule = subject_schedule(session, subject, policy, today)
    if schedule.state != "due" or not allowed(actor, Action.DESTRUCTION_REQUEST, subject.agency_id):
        return schedule, False
    req = open_request(session, actor, subject, requester="agency disposition policy",
                       grounds=_grounds(schedule, policy), origin="disposition",
                       disposition_ids=[int(e["disposition_id"]) for e in schedule.events])  # fmt: skip
    opened = Schedule(subject.id, subject.subject_number, "request_open", schedule.due_on,
                      f"destruction request {req.id} opened now", schedule.events, req.id, req.status)  # fmt: skip
    return opened, True


# --------------------------------------------------------------------------------------------- services


def record_disposition(
    rt: GalleryRuntime,
    actor: Actor,
    booking_number: str,
    kind: str,
    occurred_on: date,
    reference: str,
    *,
    source: str = "cli",
    today: date | None = None,
) -> RecordedDisposition:
    """Record a disposition event of one of the agency's bookings (records officers), and schedule the subject's
    destruction under the policy: when the subject is due already, the destruction request is opened in the same
    transaction. Another agency's booking is answered like a missing one (the refusal is audited)."""
    booking_number = (booking_number or "").strip()
    ref = f"booking:{booking_number[:64]}"
    enforce(rt.session_factory, actor, Action.REVIEW_RECORDS, ref, actor.agency_id)
    event = DispositionInput(kind, occurred_on, reference)
    moment = today or utcnow().date()
    with rt.session_factory() as session:
        found = find_encounter(session, actor.agency_id, booking_number) if booking_number else None
    if found is None:
        # Only the agency's own bookings are looked at: another agency's number is answered like an unknown one.
        missing = f"no booking {booking_number!r} in {actor.agency_code or actor.agency_id}"
        audit.record_now(rt.session_factory, actor, "disposition", ref, audit.Outcome.DENIED,
                         details={"reason": missing[:500]})  # fmt: skip
        raise NotFound(missing)
    with transaction(rt.session_factory) as session:
        encounter = session.get(Encounter, found.id)
        assert encounter is not None
        subject = session.get(Subject, encounter.subject_id)
        assert subject is not None
        if subject.status != SubjectStatus.ACTIVE.value:
            raise ValidationError(f"booking {booking_number!r} belongs to a subject that is {subject.status}")
        row, new = record_in(session, actor, encounter, event, source)
        schedule, _ = _open_if_due(session, actor, subject, rules(session, actor.agency_id), moment)
        return RecordedDisposition(row.id, encounter.booking_number, row.kind, row.occurred_on, row.reference, new,
                                   schedule)  # fmt: skip


def _subjects_with_events(session: Session, agency_id: int) -> list[Subject]:
    ids = select(Disposition.subject_id).where(Disposition.agency_id == agency_id).distinct()
    return list(session.scalars(select(Subject).where(Subject.id.in_(ids)).order_by(Subject.id)))


def schedule_report(rt: GalleryRuntime, actor: Actor, *, today: date | None = None) -> list[Schedule]:
    """Every subject of the agency with disposition events, and where it stands (records officers, supervisors,
    auditors: ``view_destruction``); the read is audited."""
    enforce(rt.session_factory, actor, Action.VIEW_DESTRUCTION, "disposition_schedule", actor.agency_id)
    moment = today or utcnow().date()
    with rt.session_factory() as session:
        policy = rules(session, actor.agency_id)
        out = [subject_schedule(session, s, policy, moment) for s in _subjects_with_events(session, actor.agency_id)]
    audit.record_now(rt.session_factory, actor, "disposition_report", "disposition_schedule", audit.Outcome.OK,
                     details={"subject_count": len(out), "today": moment.isoformat()})  # fmt: skip
    return out


@dataclass(frozen=True)
class RunReport:
    """What a run did: the schedules of the agency's subjects with events, after the run, and how many requests it
    opened."""

    schedules: list[Schedule]
    opened: int
    dry_run: bool

    def to_json(self) -> dict[str, Any]:
        return {"opened": self.opened, "dry_run": self.dry_run, "schedules": [s.to_json() for s in self.schedules]}


def run(rt: GalleryRuntime, actor: Actor, *, today: date | None = None, dry_run: bool = False) -> RunReport:
    """Open a destruction request for every subject that has fallen due (records officers). ``dry_run`` opens
    nothing. Audited with the counts."""
    enforce(rt.session_factory, actor, Action.DESTRUCTION_REQUEST, "disposition_schedule", actor.agency_id)
    moment = today or utcnow().date()
    out: list[Schedule] = []
    opened = 0
    with transaction(rt.session_factory) as session:
        policy = rules(session, actor.agency_id)
        for subject in _subjects_with_events(session, actor.agency_id):
            if dry_run:
                out.append(subject_schedule(session, subject, policy, moment))
                continue
            schedule, new = _open_if_due(session, actor, subject, policy, moment)
            out.append(schedule)
            opened += int(new)
        audit.record(session, actor, "disposition_run", "disposition_schedule", audit.Outcome.OK,
                     details={"dry_run": dry_run, "today": moment.isoformat(), "subject_count": len(out),
                              "opened_count": opened,
                              "due_count": sum(1 for s in out if s.state == "due")})  # fmt: skip
    return RunReport(out, opened, dry_run)


__all__ = [
    "RecordedDisposition",
    "Rule",
    "RunReport",
    "Schedule",
    "list_rules",
    "record_disposition",
    "rules",
    "run",
    "schedule_report",
    "set_rule",
    "subject_schedule",
]
