"""Cases and requests for facial recognition, and the supervisor's authorisation of a purpose."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from faceleads import identifiers
from faceleads.casework.admin import retention_days
from faceleads.casework.common import (
    as_utc,
    authorise,
    clean_text,
    get_case,
    get_request,
    require_open,
    same_person,
)
from faceleads.casework.models import (
    Authorisation,
    Case,
    CaseRequest,
    CaseStatus,
    Offence,
    Priority,
    Purpose,
    RequestStatus,
)
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action
from faceleads.core.uow import transaction
from faceleads.db import utcnow
from faceleads.errors import NotFound, PermissionDenied, ValidationError
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.identifiers import Kind


@dataclass(frozen=True)
class CaseInfo:
    id: int
    occurrence_number: str
    offence_code: str
    offence_title: str
    offence_category: str
    investigator: str
    justification: str
    status: str
    opened_by: str
    opened_at: datetime
    retention_until: datetime

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["opened_at"] = self.opened_at.isoformat()
        data["retention_until"] = self.retention_until.isoformat()
        return data


@dataclass(frozen=True)
class RequestInfo:
    id: int
    case_id: int
    purpose: str
    purpose_title: str
    justification: str
    requested_by: str
    requested_at: datetime
    status: str
    authorisation: str | None  # "by <user> at <time>: <reason>" when authorised
    priority: str = Priority.ROUTINE.value
    exigent: bool = False

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["requested_at"] = self.requested_at.isoformat()
        return data


def case_info(case: Case) -> CaseInfo:
    """The public view of a case row."""
    return CaseInfo(
        id=case.id,
        occurrence_number=case.occurrence_number,
        offence_code=case.offence.code,
        offence_title=case.offence.title,
        offence_category=case.offence.category,
        investigator=case.investigator,
        justification=case.justification,
        status=case.status,
        opened_by=case.opened_by,
        opened_at=as_utc(case.opened_at),
        retention_until=as_utc(case.retention_until),
    )


def describe_authorisation(auth: Authorisation | None) -> str | None:
    if auth is None:
        return None
    verdict = "" if auth.granted else "REFUSED "
    return f"{verdict}by {auth.by_username} at {as_utc(auth.at):%Y-%m-%d %H:%M:%S} UTC: {auth.reason}"


def _purpose_authorisation(session: Any, request_id: int) -> Authorisation | None:
    return session.scalars(
        select(Authorisation)
        .where(Authorisation.request_id == request_id, Authorisation.kind == "purpose")
        .order_by(Authorisation.id.desc())
    ).first()


def request_info(session: Any, req: CaseRequest) -> RequestInfo:
    return RequestInfo(
        id=req.id,
        case_id=req.case_id,
        purpose=req.purpose.code,
        purpose_title=req.purpose.title,
        justification=req.justification,
        requested_by=req.requested_by,
        requested_at=as_utc(req.requested_at),
        status=req.status,
        authorisation=describe_authorisation(_purpose_authorisation(session, req.id)),
        priority=req.priority or Priority.ROUTINE.value,
        exigent=bool(req.purpose.exigent),
    )


def open_case(
    rt: GalleryRuntime,
    actor: Actor,
    occurrence_number: str,
    offence: str,
    justification: str,
    *,
    investigator: str | None = None,
    now: datetime | None = None,
) -> CaseInfo:
    """Open a case of the actor's agency. The offence must be on the agency's approved, active list; the
    occurrence number must be new for the agency. ``investigator`` defaults to the actor.
    """
    number = identifiers.occurrence_number(occurrence_number)
    authorise(rt.session_factory, actor, Action.OPEN_CASE, f"case:{number}", actor.agency_id)
    code = identifiers.normalise(Kind.OFFENCE, offence)
    why = clean_text(justification, "justification", 4000)
    who = clean_text(investigator or actor.username, "investigator", 150)
    moment = as_utc(now or utcnow())
    with transaction(rt.session_factory) as session:
        off = session.scalars(
            select(Offence).where(Offence.agency_id == actor.agency_id, Offence.code == code)
        ).first()
        if off is None or not off.active:
            raise ValidationError(f"offence {code!r} is not on the agency's approved offence list")
        if session.scalars(
            select(Case).where(Case.agency_id == actor.agency_id, Case.occurrence_number == number)
        ).first():
            raise ValidationError(f"occurrence number {number!r} is already used by a case of this agency")
        case = Case(
            agency_id=actor.agency_id,
            occurrence_number=number,
            offence_id=off.id,
            investigator=who,
            justification=why,
            opened_by=actor.username,
            opened_at=moment,
            retention_until=moment + timedelta(days=retention_days(rt, off.category)),
        )
        case.offence = off
        session.add(case)
        session.flush()
        audit.record(session, actor, "case_open", f"case:{case.id}", audit.Outcome.OK, case=number,
                     details={"offence": code, "retention_days": retention_days(rt, off.category)})
        return case_info(case)


def show_case(rt: GalleryRuntime, actor: Actor, case_id: int) -> CaseInfo:
    """A case of the actor's agency."""
    with rt.session_factory() as session:
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"case:{case_id}", None)
        case = get_case(session, case_id)
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"case:{case_id}", case.agency_id,
                  case.occurrence_number)
        return case_info(case)


def find_case(rt: GalleryRuntime, actor: Actor, occurrence_number: str) -> CaseInfo:
    """The actor's agency's case with this occurrence number."""
    number = identifiers.occurrence_number(occurrence_number)
    authorise(rt.session_factory, actor, Action.VIEW_CASE, f"case:{number}", actor.agency_id)
    with rt.session_factory() as session:
        case = session.scalars(
            select(Case).where(Case.agency_id == actor.agency_id, Case.occurrence_number == number)
        ).first()
        if case is None:
            raise NotFound(f"no case with occurrence number {number!r}")
        return case_info(case)


def list_cases(rt: GalleryRuntime, actor: Actor, *, status: str | None = None) -> list[CaseInfo]:
    """The actor's agency's cases, newest first."""
    authorise(rt.session_factory, actor, Action.VIEW_CASE, "cases", actor.agency_id)
    with rt.session_factory() as session:
        query = select(Case).where(Case.agency_id == actor.agency_id)
        if status:
            query = query.where(Case.status == status)
        return [case_info(c) for c in session.scalars(query.order_by(Case.id.desc()))]


def close_case(rt: GalleryRuntime, actor: Actor, case_id: int, reason: str) -> CaseInfo:
    """Close a case (its data stays until the retention period ends)."""
    why = clean_text(reason, "reason", 2000)
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.OPEN_CASE, f"case:{case_id}", None)
        case = get_case(session, case_id)
        authorise(rt.session_factory, actor, Action.OPEN_CASE, f"case:{case_id}", case.agency_id,
                  case.occurrence_number)
        require_open(case)
        case.status = CaseStatus.CLOSED.value
        audit.record(session, actor, "case_close", f"case:{case.id}", audit.Outcome.OK,
                     case=case.occurrence_number, details={"reason": why[:400]})
        return case_info(case)


def check_priority(priority: str | None) -> Priority:
    """A request priority (routine when not given)."""
    try:
        return Priority((priority or Priority.ROUTINE.value).strip())
    except ValueError:
        raise ValidationError("priority must be routine, urgent or threat_to_life") from None


def open_request(
    rt: GalleryRuntime, actor: Actor, case_id: int, purpose: str, justification: str, *, priority: str | None = None
) -> RequestInfo:
    """Request facial recognition on a case for ``purpose``. A purpose that requires a supervisor's authorisation
    leaves the request awaiting it; searches are refused until then. ``priority`` orders the work in every queue
    (routine, urgent, threat_to_life); an exigent purpose is always threat-to-life priority.
    """
    code = identifiers.normalise(Kind.PURPOSE, purpose)
    why = clean_text(justification, "justification", 4000)
    level = check_priority(priority)
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.OPEN_CASE, f"case:{case_id}", None)
        case = get_case(session, case_id)
        authorise(rt.session_factory, actor, Action.OPEN_CASE, f"case:{case_id}", case.agency_id,
                  case.occurrence_number)
        require_open(case)
        p = session.scalars(select(Purpose).where(Purpose.code == code)).first()
        if p is None or not p.active:
            raise ValidationError(f"purpose {code!r} is not on the list of purposes")
        status = RequestStatus.AWAITING_AUTHORISATION if p.requires_authorisation else RequestStatus.READY
        if p.exigent:
            level = Priority.THREAT_TO_LIFE
        req = CaseRequest(case_id=case.id, purpose_id=p.id, justification=why, requested_by=actor.username,
                          status=status.value, priority=level.value)
        req.purpose = p
        session.add(req)
        session.flush()
        audit.record(session, actor, "request_open", f"request:{req.id}", audit.Outcome.OK,
                     case=case.occurrence_number, purpose=code,
                     details={"status": status.value, "priority": level.value})
        return request_info(session, req)


def show_request(rt: GalleryRuntime, actor: Actor, request_id: int) -> RequestInfo:
    """A request of the actor's agency."""
    with rt.session_factory() as session:
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"request:{request_id}", None)
        req, case = get_request(session, request_id)
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"request:{request_id}", case.agency_id,
                  case.occurrence_number)
        return request_info(session, req)


def list_requests(rt: GalleryRuntime, actor: Actor, case_id: int) -> list[RequestInfo]:
    """The requests of a case."""
    with rt.session_factory() as session:
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"case:{case_id}", None)
        case = get_case(session, case_id)
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"case:{case_id}", case.agency_id,
                  case.occurrence_number)
        rows = session.scalars(select(CaseRequest).where(CaseRequest.case_id == case_id).order_by(CaseRequest.id))
        return [request_info(session, r) for r in rows]


def authorise_request(
    rt: GalleryRuntime, actor: Actor, request_id: int, reason: str, *, grant: bool = True
) -> RequestInfo:
    """A supervisor authorises (or refuses) a request's purpose, recording who, when and why.

    The supervisor may not authorise their own request.
    """
    why = clean_text(reason, "reason", 2000)
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.AUTHORISE_EXCEPTION, f"request:{request_id}", None)
        req, case = get_request(session, request_id)
        authorise(rt.session_factory, actor, Action.AUTHORISE_EXCEPTION, f"request:{request_id}", case.agency_id,
                  case.occurrence_number)
        require_open(case)
        if req.status != RequestStatus.AWAITING_AUTHORISATION.value:
            raise ValidationError(f"request {request_id} is {req.status}; it is not awaiting authorisation")
        if same_person(actor, req.requested_by, None):
            raise PermissionDenied("a supervisor cannot authorise their own request")
        session.add(Authorisation(case_id=case.id, kind="purpose", request_id=req.id, granted=grant,
                                  by_username=actor.username, by_user_id=actor.user_id, reason=why))
        req.status = (RequestStatus.READY if grant else RequestStatus.REFUSED).value
        session.flush()
        audit.record(session, actor, "request_authorise", f"request:{req.id}",
                     audit.Outcome.OK if grant else "refused", case=case.occurrence_number,
                     purpose=req.purpose.code, details={"granted": grant})
        return request_info(session, req)
