"""Audit log: entries of your agency with filters, chain verification, statistics for public reporting."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from faceleads.core import audit
from faceleads.core.policy import Action
from faceleads.errors import ValidationError
from faceleads.governance import audit_log
from faceleads.web.api.schemas import ERRORS
from faceleads.web.deps import ApiScope, DbSession, Scope

router = APIRouter(prefix="/audit", tags=["audit"], responses=ERRORS)

MAX_PAGE = 500


class AuditPage(BaseModel):
    total: int
    entries: list[dict[str, Any]]


class VerifyOut(BaseModel):
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None
    reason: str | None


def parse_day(text: str | None, name: str, *, end: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` (an ``end`` day includes the whole day) or an ISO time; None passes through."""
    if not text:
        return None
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time.min, tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{name} {text!r} is not a date (YYYY-MM-DD) or ISO time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def audit_page(
    scope: Scope,
    session: DbSession,
    *,
    since: str | None = None,
    until: str | None = None,
    username: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> AuditPage:
    """Entries of the actor's agency, newest first (auditors)."""
    agency_id = scope.own_agency(Action.AUDIT_READ, f"audit_log/agency:{scope.actor.agency_code}")
    flt = audit_log.AuditFilter(
        since=parse_day(since, "since"),
        until=parse_day(until, "until", end=True),
        username=username or None,
        action=action or None,
        agency_id=agency_id,
    )
    rows = [e for e in audit_log.query_entries(session, flt) if not outcome or e.outcome == outcome]
    rows.reverse()
    return AuditPage(total=len(rows), entries=[e.as_dict() for e in rows[offset : offset + limit]])


@router.get("/entries", response_model=AuditPage)
def entries(
    scope: ApiScope,
    session: DbSession,
    since: Annotated[str | None, Query(max_length=40, description="YYYY-MM-DD or ISO time (UTC)")] = None,
    until: Annotated[str | None, Query(max_length=40, description="Day inclusive, or ISO time exclusive")] = None,
    username: Annotated[str | None, Query(max_length=150)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AuditPage:
    """Audit entries of your agency, newest first, with filters."""
    return audit_page(scope, session, since=since, until=until, username=username, action=action,
                      outcome=outcome, limit=limit, offset=offset)  # fmt: skip


def verify(scope: Scope) -> VerifyOut:
    """Walk the whole hash chain; the verification itself is audited."""
    scope.require(Action.AUDIT_VERIFY, "audit_log")
    with scope.rt.session_factory() as session:
        result = audit.verify_chain(session)
    audit.record_now(
        scope.rt.session_factory, scope.actor, audit.AuditAction.AUDIT_VERIFY, "audit_log",
        audit.Outcome.OK if result.ok else audit.Outcome.FAILED,
        details={"entries": result.entries, "first_bad_seq": result.first_bad_seq},
    )  # fmt: skip
    return VerifyOut(ok=result.ok, entries=result.entries, head_seq=result.head_seq, head_hash=result.head_hash,
                     first_bad_seq=result.first_bad_seq, reason=result.reason)  # fmt: skip


@router.post("/verify", response_model=VerifyOut)
def verify_route(scope: ApiScope) -> VerifyOut:
    """Verify the audit chain (auditors, administrators): names the first modified, deleted or inserted entry."""
    return verify(scope)


def statistics(scope: Scope, session: DbSession, since: str | None, until: str | None) -> list[dict[str, Any]]:
    """Searches, leads, verified leads and outcomes by agency, offence and month."""
    scope.require(Action.VIEW_STATISTICS, "audit_log/statistics")
    flt = audit_log.AuditFilter(since=parse_day(since, "since"), until=parse_day(until, "until", end=True))
    return audit_log.compute_stats(session, flt).rows()


@router.get("/stats")
def stats(
    scope: ApiScope,
    session: DbSession,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
) -> list[dict[str, Any]]:
    """Statistics for public reporting (auditors, supervisors)."""
    return statistics(scope, session, since, until)


EXPORT_CONTENT: dict[str, dict[str, Any]] = {"text/csv": {}, "application/json": {}}


@router.get("/export", response_class=Response, responses={200: {"content": EXPORT_CONTENT, "description": "Entries"}})
def export(
    scope: ApiScope,
    session: DbSession,
    format: Annotated[str, Query(pattern="^(csv|json)$")] = "csv",
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    username: Annotated[str | None, Query(max_length=150)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Export your agency's audit entries as CSV or JSON (the export itself is audited)."""
    agency_id = scope.actor.agency_id
    scope.require(Action.AUDIT_EXPORT, f"audit_log/agency:{scope.actor.agency_code}", agency_id)
    flt = audit_log.AuditFilter(since=parse_day(since, "since"), until=parse_day(until, "until", end=True),
                            username=username or None, action=action or None, agency_id=agency_id)  # fmt: skip
    entries = list(audit_log.query_entries(session, flt))
    body = "".join(audit_log.export_entries(entries, format))
    audit.record_now(scope.rt.session_factory, scope.actor, audit.AuditAction.AUDIT_EXPORT,
                     f"audit_log/agency:{scope.actor.agency_code}",
                     details={"format": format, "entries": len(entries), "since": since, "until": until,
                              "user": username, "action": action})  # fmt: skip
    media = "text/csv" if format == "csv" else "application/json"
    return Response(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="audit-{scope.actor.agency_code}.{format}"'})  # fmt: skip
