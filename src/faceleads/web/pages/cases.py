"""Cases: the list and the form to open one, the case page, requests and their authorisation, evidence intake."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from faceleads.casework import adjudication, admin, cases, custody, dashboard, probes, reporting, searching
from faceleads.core.policy import Action
from faceleads.errors import ValidationError
from faceleads.web.api.schemas import Id
from faceleads.web.deps import PageScope, run_blocking
from faceleads.web.pages.common import NO_STORE, done, page_router
from faceleads.web.render import render
from faceleads.web.security import read_upload

router = page_router()


def parse_obtained_at(value: str) -> datetime:
    """The evidence form's "obtained at" (a local date and time, taken as UTC)."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(f"when the evidence was obtained ({value!r}) is not a date and time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@router.get("/cases", response_class=HTMLResponse)
def cases_page(
    request: Request,
    scope: PageScope,
    status: Annotated[str | None, Query(pattern="^(open|closed|purged)?$")] = None,
    mine: Annotated[bool, Query()] = False,
    overdue: Annotated[bool, Query()] = False,
) -> Response:
    """The agency's cases with their counts, priority and the actor's waiting work; filters; the form to open one."""
    listed = dashboard.case_overviews(scope.rt, scope.actor, status=status or None, mine=mine)
    if overdue:
        listed = [c for c in listed if c.overdue]
    offences = [o for o in admin.list_offences(scope.rt, scope.actor) if o.active]
    return render(request, "cases.html", {"cases": listed, "offences": offences, "status": status or "",
                                          "mine": mine, "overdue": overdue,
                                          "can_open": scope.may(Action.OPEN_CASE, scope.actor.agency_id)})  # fmt: skip


@router.post("/cases")
def open_case_page(
    request: Request,
    scope: PageScope,
    occurrence_number: Annotated[str, Form(max_length=100)],
    offence: Annotated[str, Form(max_length=50)],
    justification: Annotated[str, Form(max_length=4000)],
    investigator: Annotated[str, Form(max_length=150)] = "",
) -> Response:
    """Open a case."""
    info = cases.open_case(scope.rt, scope.actor, occurrence_number, offence, justification,
                           investigator=investigator.strip() or None)  # fmt: skip
    return done(request, f"/cases/{info.id}", f"Case {info.occurrence_number} opened.")


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, case_id: Id, scope: PageScope) -> Response:
    """A case: requests, probes, searches and leads, with the actions the actor's roles allow."""
    rt, actor = scope.rt, scope.actor
    info = cases.show_case(rt, actor, case_id)
    # Live-deployment purposes serve authorised live deployments only: a request for one is refused.
    purposes = [p for p in admin.list_purposes(rt, actor.agency_id) if p.active and p.regime != "live_deployment"]
    may = {name: scope.may(action, actor.agency_id) for name, action in (
        ("request", Action.OPEN_CASE), ("evidence", Action.SUBMIT_EVIDENCE), ("authorise", Action.AUTHORISE_EXCEPTION),
        ("release", Action.RELEASE_LEAD), ("search", Action.SEARCH), ("report", Action.VIEW_REPORT),
        ("export", Action.EXPORT_REPORT), ("edit", Action.EDIT_PROBE), ("decide", Action.DECIDE_DISAGREEMENT),
        ("images", Action.VIEW_PROBE_IMAGE))}  # fmt: skip
    overview = next((c for c in dashboard.case_overviews(rt, actor) if c.id == case_id), None)
    timeline, total = custody.case_timeline(rt, actor, case_id, limit=200)
    searches = searching.list_case_searches(rt, actor, case_id)
    return render(request, "case.html", {
        "case": info, "overview": overview, "requests": cases.list_requests(rt, actor, case_id),
        "probes": probes.list_probes(rt, actor, case_id), "searches": searches,
        "leads": adjudication.list_leads(rt, actor, case_id), "purposes": purposes, "may": may,
        "reports": reporting.list_reports(rt, actor, case_id), "timeline": timeline, "timeline_total": total,
        "work": [i for i in dashboard.work_items(rt, actor) if i.case_id == case_id],
    })  # fmt: skip


@router.post("/cases/{case_id}/requests")
def open_request_page(
    request: Request,
    case_id: Id,
    scope: PageScope,
    purpose: Annotated[str, Form(max_length=64)],
    justification: Annotated[str, Form(max_length=4000)],
    priority: Annotated[str, Form(pattern="^(routine|urgent|threat_to_life)$")] = "routine",
) -> Response:
    """Request facial recognition for a purpose, with a priority."""
    info = cases.open_request(scope.rt, scope.actor, case_id, purpose, justification, priority=priority)
    return done(request, f"/cases/{case_id}#requests", f"Request {info.id} recorded: {info.status.replace('_', ' ')}.")


@router.post("/requests/{request_id}/authorise")
def authorise_page(
    request: Request,
    request_id: Id,
    scope: PageScope,
    reason: Annotated[str, Form(max_length=2000)],
    grant: Annotated[str, Form(pattern="^(grant|refuse)$")],
    back: Annotated[str, Form(pattern="^(case|decisions)$")] = "case",
) -> Response:
    """A supervisor authorises or refuses a request's purpose (no default: the choice is explicit)."""
    info = cases.authorise_request(scope.rt, scope.actor, request_id, reason, grant=grant == "grant")
    verdict = "authorised" if grant == "grant" else "refused"
    return done(request, "/decisions" if back == "decisions" else f"/cases/{info.case_id}#requests",
                f"Request {info.id} {verdict}; your reason is recorded.")


@router.post("/cases/{case_id}/probes")
async def add_probe_page(
    request: Request,
    case_id: Id,
    scope: PageScope,
    photo: Annotated[UploadFile, File()],
    source: Annotated[str, Form(max_length=300)],
    obtained_by: Annotated[str, Form(max_length=150)],
    legal_basis: Annotated[str, Form(max_length=2000)],
    obtained_at: Annotated[str, Form(max_length=40, description="YYYY-MM-DDTHH:MM (UTC)")],
) -> Response:
    """Take in an evidence photo as a probe."""
    when = parse_obtained_at(obtained_at)
    data = await read_upload(photo, scope.rt.settings.max_file_bytes, "evidence photo")
    info = await run_blocking(request, probes.add_photo, scope.rt, scope.actor, case_id, data, source=source,
                              obtained_by=obtained_by, obtained_at=when, legal_basis=legal_basis,
                              filename=photo.filename or "")  # fmt: skip
    # Analysts go on to prepare the probe; an investigator returns to the case.
    message = f"Evidence received: SHA-256 {info.evidence_sha256[:16]}…, stored encrypted as probe {info.id}."
    if scope.may(Action.EDIT_PROBE, scope.actor.agency_id):
        return done(request, f"/case-probes/{info.id}", message)
    return done(request, f"/cases/{case_id}#evidence", message)


@router.post("/cases/{case_id}/videos")
async def add_video_page(
    request: Request,
    case_id: Id,
    scope: PageScope,
    video: Annotated[UploadFile, File()],
    source: Annotated[str, Form(max_length=300)],
    obtained_by: Annotated[str, Form(max_length=150)],
    legal_basis: Annotated[str, Form(max_length=2000)],
    obtained_at: Annotated[str, Form(max_length=40)],
) -> Response:
    """Take in a recorded video: each face track's best shots become probes."""
    from faceleads.web.api.casework import add_video

    when = parse_obtained_at(obtained_at)
    intake = await add_video(case_id, request, scope, video, source, obtained_by, legal_basis, when)
    return done(request, f"/cases/{case_id}#evidence",
                f"Video received: {len(intake.get('probe_ids', []))} best shot(s) of the tracked faces became probes.")


@router.get("/case-probes/{probe_id}/thumb")
async def probe_thumbnail_page(request: Request, probe_id: Id, scope: PageScope) -> Response:
    """A small image of the evidence as edited, for the case page (audited)."""
    body = await run_blocking(request, probes.probe_thumbnail, scope.rt, scope.actor, probe_id)
    return Response(body, media_type="image/jpeg", headers=NO_STORE)
