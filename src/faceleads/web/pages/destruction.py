"""Destruction requests: request, eligibility checklist, decision, execution and the certificate."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from faceleads.core.policy import Action
from faceleads.governance import destruction
from faceleads.web.api.schemas import Id
from faceleads.web.deps import PageScope, run_blocking
from faceleads.web.pages.common import NO_STORE, done, page_router
from faceleads.web.render import render

router = page_router()


@router.get("/destruction", response_class=HTMLResponse)
def destruction_page(request: Request, scope: PageScope) -> Response:
    """Destruction requests of the agency: request, checklist, decision, execution, certificate."""
    listed = destruction.list_requests(scope.rt, scope.actor)
    may = {name: scope.may(action, scope.actor.agency_id) for name, action in (
        ("request", Action.DESTRUCTION_REQUEST), ("decide", Action.DESTRUCTION_DECIDE),
        ("execute", Action.DESTRUCTION_EXECUTE))}  # fmt: skip
    return render(request, "destruction.html", {"requests": [r.to_json() for r in listed], "may": may})


@router.post("/destruction")
def destruction_request_post(
    request: Request,
    scope: PageScope,
    subject_number: Annotated[str, Form(max_length=64)],
    requester: Annotated[str, Form(max_length=200)],
    grounds: Annotated[str, Form(max_length=4000)],
) -> Response:
    """Record a destruction request."""
    subject_id = destruction.find_subject_id(scope.rt, scope.actor, subject_number)
    view = destruction.request_destruction(scope.rt, scope.actor, subject_id, requester=requester, grounds=grounds)
    return done(request, f"/destruction#destruction-{view.id}", f"Destruction request {view.id} recorded.")


@router.post("/destruction/{request_id}/checklist")
def destruction_checklist_post(
    request: Request,
    request_id: Id,
    scope: PageScope,
    item: Annotated[str, Form(max_length=64)],
    satisfied: Annotated[str, Form(pattern="^(yes|no)$")],
    note: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Record one checklist item."""
    destruction.record_checklist(scope.rt, scope.actor, request_id, item, satisfied == "yes", note)
    verdict = "satisfied" if satisfied == "yes" else "NOT satisfied"
    return done(request, f"/destruction#destruction-{request_id}", f"Checklist item recorded as {verdict}.")


@router.post("/destruction/{request_id}/decision")
def destruction_decision_post(
    request: Request,
    request_id: Id,
    scope: PageScope,
    decision: Annotated[str, Form(pattern="^(approve|deny)$")],
    reason: Annotated[str, Form(max_length=4000)],
) -> Response:
    """Approve or deny."""
    destruction.decide(scope.rt, scope.actor, request_id, approve=decision == "approve", reason=reason)
    verdict = "approved" if decision == "approve" else "denied"
    return done(request, f"/destruction#destruction-{request_id}", f"Destruction request {request_id} {verdict}.")


@router.post("/destruction/{request_id}/execute")
async def destruction_execute_post(request: Request, request_id: Id, scope: PageScope) -> Response:
    """Carry out an approved destruction."""
    await run_blocking(request, destruction.execute, scope.rt, scope.actor, request_id)
    return done(request, f"/destruction#destruction-{request_id}",
                f"Destruction {request_id} carried out: the record's images, templates and key are destroyed; "
                "the certificate is ready.")


@router.get("/destruction/{request_id}/certificate.json")
def destruction_certificate(request_id: Id, scope: PageScope) -> JSONResponse:
    """The destruction certificate."""
    return JSONResponse(destruction.certificate(scope.rt, scope.actor, request_id), headers={
        "Content-Disposition": f'attachment; filename="destruction-certificate-{request_id}.json"', **NO_STORE})


@router.get("/destruction/{request_id}/certificate.pdf")
async def destruction_certificate_pdf(request: Request, request_id: Id, scope: PageScope) -> Response:
    """The destruction certificate as a readable PDF (restating the JSON document and its recorded SHA-256)."""
    pdf, _ = await run_blocking(request, destruction.certificate_pdf, scope.rt, scope.actor, request_id)
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="destruction-certificate-{request_id}.pdf"', **NO_STORE})
