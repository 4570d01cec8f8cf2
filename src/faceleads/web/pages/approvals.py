"""Separation of duties (docs/regimes.md): the requests waiting for a second person — a biometric role, a
certification, a credential reset of a biometric user — with their decision, and the training officer's form to
record a certification. The services (``security.approvals``, ``security.users``) decide who may approve and audit;
CSRF is the page routers' dependency."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from faceleads.core.policy import Action
from faceleads.gallery.enrolment import parse_date
from faceleads.security import approvals, users
from faceleads.web.api.schemas import Id
from faceleads.web.deps import PageScope
from faceleads.web.pages.common import done, page_router
from faceleads.web.render import render

router = page_router()


@router.get("/approvals", response_class=HTMLResponse)
def approvals_page(
    request: Request,
    scope: PageScope,
    status: Annotated[str, Query(pattern="^(pending|approved|rejected|expired|all)$")] = "pending",
) -> Response:
    """Requests waiting for a second person (and past decisions)."""
    rows = approvals.list_approvals(scope.rt.session_factory, scope.actor, status=None if status == "all" else status)
    decide = scope.may(Action.APPROVE_ACCESS, scope.actor.agency_id) or scope.may(Action.APPROVE_ACCESS_BOOTSTRAP)
    return render(request, "approvals.html", {
        "rows": rows, "status": status, "can_decide": decide,
        "can_certify": scope.may(Action.ADMIN_CERTIFICATIONS, scope.actor.agency_id),
    })  # fmt: skip


@router.post("/approvals/certifications")
def request_certification(
    request: Request,
    scope: PageScope,
    username: Annotated[str, Form(max_length=150)],
    expires_on: Annotated[str, Form(max_length=10)],
    reference: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Training officers: record a certification (valid to the end of ``expires_on``); a supervisor approves it."""
    day = parse_date(expires_on, "expiry date")
    change = users.certify(scope.rt.session_factory, scope.actor, username.strip(),
                           datetime.combine(day, time.max, tzinfo=UTC), reference=reference)  # fmt: skip
    return done(request, "/approvals", change.message)


@router.post("/approvals/{approval_id}")
def decide_approval(
    request: Request,
    approval_id: Id,
    scope: PageScope,
    decision: Annotated[str, Form(pattern="^(approve|reject)$")],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Approve (the change takes effect) or reject a request; there is no default decision."""
    if decision == "approve":
        info = approvals.approve(scope.rt.session_factory, scope.actor, approval_id, note)
    else:
        info = approvals.reject(scope.rt.session_factory, scope.actor, approval_id, note)
    return done(request, "/approvals", f"Request {info.id} {info.status}: {info.description}.")
