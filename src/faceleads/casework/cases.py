"""Cases and requests for facial recognition, and the supervisor's authorisation of a purpose.

A request is opened under the legal regime its purpose has for the agency (``casework.regimes``): investigative
(ready at once, or awaiting a supervisor's prior authorisation when the purpose requires one), exigent (ready at
once; each search is ratified afterwards) or live deployment (refused here: those purposes serve live deployments
only). A supervisor's authorisation carries its scope (this case and request, the request's purpose, optionally a
subset of galleries) and an expiry, checked when a search uses it.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from faceleads.casework.regimes import MAX_AUTHORISATION_HOURS, regime_of, windows
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action
from faceleads.core.regime import Regime
from faceleads.core.uow import transaction
from faceleads.db import utcnow
from faceleads.errors import NotFound, PermissionDenied, ValidationError
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.gallery.visibility import visible_gallery_ids
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
    regime: str = Regime.INVESTIGATIVE.value  # exigent requests are always threat-to-life priority
    authorised_until: datetime | None = None  # a purpose authorisation's expiry
    authorised_galleries: list[int] | None = None  # its gallery scope (None: every gallery for the purpose)
    priority: str = Priority.ROUTINE.value

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["requested_at"] = self.requested_at.isoformat()
        data["authorised_until"] = self.authorised_until.isoformat() if self.authorised_until else None
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
    text = f"{verdict}by {auth.by_username} at {as_utc(auth.at):%Y-%m-%d %H:%M:%S} UTC: {auth.reason}"
    if auth.granted and auth.expires_at is not None:
        text += f" (valid until {as_utc(auth.expires_at):%Y-%m-%d %H:%M} UTC"
        text += f"; galleries {', '.join(f'#{g}' for g in auth.gallery_ids)})" if auth.gallery_ids else ")"
    return text


def purpose_authorisation(session: Any, request_id: int) -> Authorisation | None:
    """The latest supervisor decision on a request's purpose (None when there was none)."""
    return _purpose_authorisation(session, request_id)


def _purpose_authorisation(session: Any, request_id: int) -> Authorisation | None:
    return session.scalars(
        select(Authorisation)
        .where(Authorisation.request_id == request_id, Authorisation.kind == "purpose")
        .order_by(Authorisation.id.desc())
    ).first()


def request_info(session: Any, req: CaseRequest) -> RequestInfo:
    auth = _purpose_authorisation(session, req.id)
    granted = auth is not None and auth.granted
    return RequestInfo(
        id=req.id,
        case_id=req.case_id,
        purpose=req.purpose.code,
        purpose_title=req.purpose.title,
        justification=req.justification,
        requested_by=req.requested_by,
        requested_at=as_utc(req.requested_at),
        status=req.status,
        authorisation=describe_authorisation(auth),
        regime=req.regime,
        authorised_until=as_utc(auth.expires_at) if granted and auth and auth.expires_at else None,
        authorised_galleries=list(auth.gallery_ids) if granted and auth and auth.gallery_ids else None,
        priority=req.priority or Priority.ROUTINE.value,
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
    """Request facial recognition on a case for ``purpose``, under the purpose's regime for the agency.

    Investigative: a purpose that requires a supervisor's authorisation leaves the request awaiting it; searches
    are refused until then. Exigent: ready at once (``justification`` is the declared reason); each search on it is
    ratified afterwards. Live deployment: refused (and audited), those purposes serve live deployments only.
    ``priority`` orders the work in every queue (routine, urgent, threat_to_life); a request of the exigent regime
    is always threat-to-life priority, whatever was asked.
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
        regime = regime_of(session, case.agency_id, p)
        if regime is Regime.LIVE_DEPLOYMENT:
            reason = (f"purpose {code!r} belongs to the live deployment regime of agency "
                      f"{actor.agency_code or actor.agency_id}: it serves authorised live deployments only, never a "
                      "retrospective search")
            audit.record_now(rt.session_factory, actor, "request_open", f"case:{case.id}", audit.Outcome.DENIED,
                             case=case.occurrence_number, purpose=code,
                             details={"reason": reason, "regime": regime.value})
            raise PermissionDenied(reason)
        needs_authorisation = p.requires_authorisation and regime is Regime.INVESTIGATIVE
        status = RequestStatus.AWAITING_AUTHORISATION if needs_authorisation else RequestStatus.READY
        if regime is Regime.EXIGENT:
            level = Priority.THREAT_TO_LIFE
        req = CaseRequest(case_id=case.id, purpose_id=p.id, justification=why, requested_by=actor.username,
                          status=status.value, regime=regime.value, priority=level.value)
        req.purpose = p
        session.add(req)
        session.flush()
        audit.record(session, actor, "request_open", f"request:{req.id}", audit.Outcome.OK,
                     case=case.occurrence_number, purpose=code,
                     details={"status": status.value, "regime": regime.value, "priority": level.value})
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
    rt: GalleryRuntime,
    actor: Actor,
    request_id: int,
    reason: str,
    *,
    grant: bool = True,
    expires_at: datetime | None = None,
    galleries: Sequence[int] | None = None,
) -> RequestInfo:
    """A supervisor authorises (or refuses) a request's purpose, recording who, when and why.

    The authorisation's scope is the request's case and purpose and, when ``galleries`` is given, only those of the
    galleries the agency may search for the purpose. It expires at ``expires_at`` (default: the agency's
    authorisation validity, 7 days unless administered otherwise; at most 90 days); a search after that is refused.
    The supervisor may not authorise their own request.
    """
    why = clean_text(reason, "reason", 2000)
    if galleries is not None and any(isinstance(g, bool) or not isinstance(g, int) for g in galleries):
        raise ValidationError("galleries must be gallery ids")
    scope = sorted(set(galleries)) if galleries else None
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
        now = as_utc(utcnow())
        _, validity = windows(session, rt.settings, case.agency_id)
        until = as_utc(expires_at) if expires_at is not None else now + timedelta(hours=validity)
        if grant and until <= now:
            raise ValidationError(f"the authorisation's expiry {until:%Y-%m-%d %H:%M} UTC is not in the future")
        if grant and until > now + timedelta(hours=MAX_AUTHORISATION_HOURS):
            raise ValidationError(f"an authorisation lasts at most {MAX_AUTHORISATION_HOURS // 24} days")
        if grant and scope:
            searchable = set(visible_gallery_ids(session, case.agency_id, req.purpose.code))
            outside = [g for g in scope if g not in searchable]
            if outside:
                raise ValidationError(
                    f"gallery {', '.join(f'#{g}' for g in outside)} may not be searched by the agency for purpose "
                    f"{req.purpose.code!r}: an authorisation cannot widen what the agency may search"
                )
        session.add(Authorisation(case_id=case.id, kind="purpose", request_id=req.id, granted=grant,
                                  by_username=actor.username, by_user_id=actor.user_id, reason=why, at=now,
                                  expires_at=until if grant else None, gallery_ids=scope if grant else None))
        req.status = (RequestStatus.READY if grant else RequestStatus.REFUSED).value
        session.flush()
        audit.record(session, actor, "request_authorise", f"request:{req.id}",
                     audit.Outcome.OK if grant else "refused", case=case.occurrence_number,
                     purpose=req.purpose.code,
                     details={"granted": grant, "expires": until.isoformat() if grant else None,
                              "gallery_ids": ",".join(map(str, scope)) if grant and scope else None,
                              "regime": req.regime})
        return request_info(session, req)
