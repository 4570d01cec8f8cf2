"""Audit log: entries of your agency with filters, chain verification, statistics for public reporting."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from faceleads.governance import audit_log
from faceleads.web.api.schemas import ERRORS
from faceleads.web.deps import ApiScope, Scope
from faceleads.web.errors import Conflict

router = APIRouter(prefix="/audit", tags=["audit"], responses=ERRORS)

MAX_PAGE = audit_log.MAX_PAGE


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


def audit_page(
    scope: Scope,
    *,
    since: str | None = None,
    until: str | None = None,
    username: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    limit: int = 100,
    offset: int = 0,
    agency: str | None = None,
) -> AuditPage:
    """Entries of the actor's agency, newest first (auditors; oversight: every agency's, or ``agency``'s); the
    governance service authorises and audits."""
    flt = audit_log.AuditFilter(since=audit_log.parse_when(since, "since"),
                                until=audit_log.parse_when(until, "until", end=True),
                                username=username or None, action=action or None)  # fmt: skip
    page = audit_log.read_entries(scope.rt.session_factory, scope.actor, flt, outcome=outcome or None, limit=limit,
                                  offset=offset, agency_code=agency or None)  # fmt: skip
    return AuditPage(total=page.total, entries=page.entries)


@router.get("/entries", response_model=AuditPage)
def entries(
    scope: ApiScope,
    since: Annotated[str | None, Query(max_length=40, description="YYYY-MM-DD or ISO time (UTC)")] = None,
    until: Annotated[str | None, Query(max_length=40, description="Day inclusive, or ISO time exclusive")] = None,
    username: Annotated[str | None, Query(max_length=150)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    agency: Annotated[str | None, Query(max_length=32, description="oversight: one agency's code")] = None,
) -> AuditPage:
    """Audit entries of your agency (oversight: of every agency), newest first, with filters (the read is itself
    audited)."""
    return audit_page(scope, since=since, until=until, username=username, action=action,
                      outcome=outcome, limit=limit, offset=offset, agency=agency)  # fmt: skip


def verify(scope: Scope) -> VerifyOut:
    """Walk the whole hash chain and check it against older data and the anchors; the governance service audits
    the verification after making the verdict (a failure to record it is reported, never hides the verdict)."""
    verdict = audit_log.verify(scope.rt.session_factory, scope.actor, scope.rt.settings)
    return VerifyOut(**verdict.to_json())


@router.post("/anchor")
def anchor_route(scope: ApiScope) -> dict[str, Any]:
    """Verify, then write and return a signed anchor of the chain head (auditors, administrators): keep it outside
    the system (an oversight body); a broken chain is not anchored (409 with the verdict)."""
    verdict, document = audit_log.anchor(scope.rt.session_factory, scope.actor, scope.rt.settings)
    if document is None:
        raise Conflict(f"audit chain broken at entry {verdict.result.first_bad_seq}: {verdict.result.reason}")
    return document


@router.post("/verify", response_model=VerifyOut)
def verify_route(scope: ApiScope) -> VerifyOut:
    """Verify the audit chain (auditors, administrators): names the first modified, deleted or inserted entry."""
    return verify(scope)


def statistics(scope: Scope, since: str | None, until: str | None) -> list[dict[str, Any]]:
    """Searches, leads, verified leads, outcomes and exigent ratifications by agency, regime, offence and month."""
    flt = audit_log.AuditFilter(since=audit_log.parse_when(since, "since"),
                                until=audit_log.parse_when(until, "until", end=True))  # fmt: skip
    return audit_log.statistics(scope.rt.session_factory, scope.actor, flt)


@router.get("/stats")
def stats(
    scope: ApiScope,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
) -> list[dict[str, Any]]:
    """Statistics for public reporting (auditors, supervisors)."""
    return statistics(scope, since, until)


EXPORT_CONTENT: dict[str, dict[str, Any]] = {"text/csv": {}, "application/json": {}}


@router.get("/export", response_class=Response, responses={200: {"content": EXPORT_CONTENT, "description": "Entries"}})
def export(
    scope: ApiScope,
    format: Annotated[str, Query(pattern="^(csv|json)$")] = "csv",
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    username: Annotated[str | None, Query(max_length=150)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    agency: Annotated[str | None, Query(max_length=32, description="oversight: one agency's code")] = None,
) -> Response:
    """Export your agency's audit entries (oversight: every agency's) as CSV or JSON (the export is audited)."""
    flt = audit_log.AuditFilter(since=audit_log.parse_when(since, "since"),
                                until=audit_log.parse_when(until, "until", end=True),
                                username=username or None, action=action or None)  # fmt: skip
    body, _ = audit_log.export(scope.rt.session_factory, scope.actor, format, flt, agency_code=agency or None)
    media = "text/csv" if format == "csv" else "application/json"
    return Response(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="audit-{scope.actor.agency_code}.{format}"'})  # fmt: skip
