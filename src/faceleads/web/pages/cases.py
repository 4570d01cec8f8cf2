"""Cases: the list and the form to open one, the case page, requests and their authorisation, evidence intake."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from faceleads.casework import adjudication, admin, cases, probes, searching
from faceleads.core.policy import Action
from faceleads.errors import ValidationError
from faceleads.web.api.schemas import Id
from faceleads.web.deps import PageScope, Scope, run_blocking
from faceleads.web.pages.common import page_router, redirect
from faceleads.web.render import render
from faceleads.web.security import read_upload

router = page_router()


def work_queue(scope: Scope) -> dict[str, Any]:
    """What waits for the actor: leads to verify, requests to authorise, disputes to decide, released reports."""
    rt, actor = scope.rt, scope.actor
    queue: dict[str, Any] = {"verify": [], "authorise": [], "disputed": [], "released": [], "verified": [],
                             "cases": []}  # fmt: skip
    if scope.may(Action.VERIFY, actor.agency_id):
        queue["verify"] = adjudication.verification_queue(rt, actor)
    if not scope.may(Action.VIEW_CASE, actor.agency_id):
        return queue
    open_cases = cases.list_cases(rt, actor, status="open")[:50]
    queue["cases"] = open_cases[:10]
    for case in open_cases:
        if scope.may(Action.AUTHORISE_EXCEPTION, actor.agency_id):
            queue["authorise"] += [(case, r) for r in cases.list_requests(rt, actor, case.id)
                                   if r.status == "awaiting_authorisation"]  # fmt: skip
        for lead in adjudication.list_leads(rt, actor, case.id):
            if lead.status == "disputed" and scope.may(Action.DECIDE_DISAGREEMENT, actor.agency_id):
                queue["disputed"].append((case, lead))
            elif lead.status == "released":
                queue["released"].append((case, lead))
            elif lead.status == "verified" and scope.may(Action.RELEASE_LEAD, actor.agency_id):
                queue["verified"].append((case, lead))
    return queue


def parse_obtained_at(value: str) -> datetime:
    """The evidence form's "obtained at" (a local date and time, taken as UTC)."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(f"when the evidence was obtained ({value!r}) is not a date and time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@router.get("/cases", response_class=HTMLResponse)
def cases_page(
    request: Request, scope: PageScope, status: Annotated[str | None, Query(pattern="^(open|closed)?$")] = None
) -> Response:
    """Cases of the agency (filter by status) and the form to open one."""
    listed = cases.list_cases(scope.rt, scope.actor, status=status or None)
    offences = [o for o in admin.list_offences(scope.rt, scope.actor) if o.active]
    return render(request, "cases.html", {"cases": listed, "offences": offences, "status": status or "",
                                          "can_open": scope.may(Action.OPEN_CASE, scope.actor.agency_id)})  # fmt: skip


@router.post("/cases")
def open_case_page(
    scope: PageScope,
    occurrence_number: Annotated[str, Form(max_length=100)],
    offence: Annotated[str, Form(max_length=50)],
    justification: Annotated[str, Form(max_length=4000)],
    investigator: Annotated[str, Form(max_length=150)] = "",
) -> Response:
    """Open a case."""
    info = cases.open_case(scope.rt, scope.actor, occurrence_number, offence, justification,
                           investigator=investigator.strip() or None)  # fmt: skip
    return redirect(f"/cases/{info.id}")


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, case_id: Id, scope: PageScope) -> Response:
    """A case: requests, probes, searches and leads, with the actions the actor's roles allow."""
    rt, actor = scope.rt, scope.actor
    info = cases.show_case(rt, actor, case_id)
    purposes = [p for p in admin.list_purposes(rt) if p.active]
    may = {name: scope.may(action, actor.agency_id) for name, action in (
        ("request", Action.OPEN_CASE), ("evidence", Action.SUBMIT_EVIDENCE), ("authorise", Action.AUTHORISE_EXCEPTION),
        ("release", Action.RELEASE_LEAD), ("search", Action.SEARCH), ("report", Action.VIEW_REPORT),
        ("edit", Action.EDIT_PROBE), ("decide", Action.DECIDE_DISAGREEMENT))}  # fmt: skip
    return render(request, "case.html", {
        "case": info, "requests": cases.list_requests(rt, actor, case_id),
        "probes": probes.list_probes(rt, actor, case_id), "searches": searching.list_case_searches(rt, actor, case_id),
        "leads": adjudication.list_leads(rt, actor, case_id), "purposes": purposes, "may": may,
    })  # fmt: skip


@router.post("/cases/{case_id}/requests")
def open_request_page(
    case_id: Id,
    scope: PageScope,
    purpose: Annotated[str, Form(max_length=64)],
    justification: Annotated[str, Form(max_length=4000)],
) -> Response:
    """Request facial recognition for a purpose."""
    cases.open_request(scope.rt, scope.actor, case_id, purpose, justification)
    return redirect(f"/cases/{case_id}")


@router.post("/requests/{request_id}/authorise")
def authorise_page(
    request_id: Id,
    scope: PageScope,
    reason: Annotated[str, Form(max_length=2000)],
    grant: Annotated[str, Form(pattern="^(grant|refuse)$")] = "grant",
    back: Annotated[str, Form(pattern="^(case|decisions)$")] = "case",
) -> Response:
    """A supervisor authorises or refuses a request's purpose."""
    info = cases.authorise_request(scope.rt, scope.actor, request_id, reason, grant=grant == "grant")
    return redirect("/decisions" if back == "decisions" else f"/cases/{info.case_id}")


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
    if scope.may(Action.EDIT_PROBE, scope.actor.agency_id):
        return redirect(f"/case-probes/{info.id}")
    return redirect(f"/cases/{case_id}")


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
    await add_video(case_id, request, scope, video, source, obtained_by, legal_basis, when)
    return redirect(f"/cases/{case_id}")
