"""Audit log: entries of your agency with filters, chain verification, statistics for public reporting."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from faceleads.errors import ValidationError
from faceleads.governance import audit, audit_integrity
from faceleads.security.policy import Action
from faceleads.web.api.schemas import ERRORS
from faceleads.web.deps import ApiScope, DbSession, Scope
from faceleads.web.errors import Conflict

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
    highest_seq: int = 0
    anchors_checked: int = 0
    notes: list[str] = []
    recorded: bool = True


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
    flt = audit.AuditFilter(
        since=parse_day(since, "since"),
        until=parse_day(until, "until", end=True),
        username=username or None,
        action=action or None,
        agency_id=agency_id,
    )
    rows = [e for e in audit.query_entries(session, flt) if not outcome or e.outcome == outcome]
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
    """Walk the whole hash chain and check it against older data and the anchors; the verification is audited
    after the verdict is made (a failure to record it is reported, never hides the verdict)."""
    scope.require(Action.AUDIT_VERIFY, "audit_log")
    verdict = audit_integrity.verify(scope.rt.session_factory, scope.rt.settings)
    problem = audit_integrity.record_verification(scope.rt.session_factory, scope.actor, verdict)
    notes = verdict.notes + ([problem] if problem else [])
    return VerifyOut(**{**verdict.to_json(), "notes": notes, "recorded": problem is None})


@router.post("/anchor")
def anchor_route(scope: ApiScope) -> dict[str, Any]:
    """Verify, then write and return a signed anchor of the chain head (auditors, administrators): keep it outside
    the system (an oversight body); a broken chain is not anchored (409 with the verdict)."""
    scope.require(Action.AUDIT_VERIFY, "audit_log")
    verdict, document = audit_integrity.anchor_now(scope.rt.session_factory, scope.rt.settings)
    if document is None:
        raise Conflict(f"audit chain broken at entry {verdict.result.first_bad_seq}: {verdict.result.reason}")
    audit.record_now(scope.rt.session_factory, scope.actor, "audit_anchor", "audit_log",
                     details={"anchored_seq": document["seq"], "anchor_sha256": document["sha256"]})  # fmt: skip
    return document


@router.post("/verify", response_model=VerifyOut)
def verify_route(scope: ApiScope) -> VerifyOut:
    """Verify the audit chain (auditors, administrators): names the first modified, deleted or inserted entry."""
    return verify(scope)


def statistics(scope: Scope, session: DbSession, since: str | None, until: str | None) -> list[dict[str, Any]]:
    """Searches, leads, verified leads and outcomes by agency, offence and month."""
    scope.require(Action.VIEW_STATISTICS, "audit_log/statistics")
    flt = audit.AuditFilter(since=parse_day(since, "since"), until=parse_day(until, "until", end=True))
    return audit.compute_stats(session, flt).rows()


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
    flt = audit.AuditFilter(since=parse_day(since, "since"), until=parse_day(until, "until", end=True),
                            username=username or None, action=action or None, agency_id=agency_id)  # fmt: skip
    entries = list(audit.query_entries(session, flt))
    body = "".join(audit.export_entries(entries, format))
    audit.record_now(scope.rt.session_factory, scope.actor, audit.AuditAction.AUDIT_EXPORT,
                     f"audit_log/agency:{scope.actor.agency_code}",
                     details={"format": format, "entries": len(entries), "since": since, "until": until,
                              "user": username, "action": action})  # fmt: skip
    media = "text/csv" if format == "csv" else "application/json"
    return Response(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="audit-{scope.actor.agency_code}.{format}"'})  # fmt: skip
