"""The lawful gallery (``/lawful``, docs/gallery.md "Lawful gallery"): the agency's legal authorities
(administrators add and withdraw), the records awaiting review (records officers re-attribute them), disposition
events and the destruction they schedule, the disposition policy and the destruction eligibility criteria.

Same services as the CLI and the API (:mod:`faceleads.web.api.lawful`); each section is shown to the roles that may
use it, and the services decide. CSRF is the page routers' dependency (:mod:`faceleads.web.pages`).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from faceleads.core.policy import Action
from faceleads.errors import ValidationError
from faceleads.gallery import authorities
from faceleads.gallery.dispositions import KINDS, parse_kind
from faceleads.governance import criteria, dispositions
from faceleads.web.deps import PageScope
from faceleads.web.pages.common import done, page_router
from faceleads.web.render import render

router = page_router()


@router.get("/lawful", response_class=HTMLResponse)
def lawful_page(request: Request, scope: PageScope) -> Response:
    """The lawful gallery of the agency: list, review, dispositions, policy, criteria."""
    rt, actor = scope.rt, scope.actor
    own = actor.agency_id
    listed = authorities.list_authorities(rt, actor)  # refuses (audited) anyone who may not read the records policy
    may: dict[str, bool] = {
        "admin": scope.may(Action.ADMIN_RECORDS_POLICY, own),
        "review": scope.may(Action.REVIEW_RECORDS, own),
        "schedule": scope.may(Action.VIEW_DESTRUCTION, own),
        "run": scope.may(Action.DESTRUCTION_REQUEST, own),
    }
    context: dict[str, Any] = {
        "authorities": [a.to_json() for a in listed],
        "compliance": authorities.compliance(rt, actor, details=may["review"]).to_json(),
        "rules": [r.to_json() for r in dispositions.list_rules(rt, actor)],
        "criteria": [c.to_json() for c in criteria.list_criteria(rt, actor)],
        "schedule": [s.to_json() for s in dispositions.schedule_report(rt, actor)] if may["schedule"] else [],
        "kinds": KINDS,
        "may": may,
        "today": date.today().isoformat(),
    }
    return render(request, "lawful.html", context)


@router.post("/lawful/authorities")
def add_authority_post(
    request: Request,
    scope: PageScope,
    code: Annotated[str, Form(max_length=64)],
    title: Annotated[str, Form(max_length=500)],
    description: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Add a legal authority (administrators)."""
    entry = authorities.add_authority(scope.rt, scope.actor, code, title, description)
    return done(request, "/lawful#authorities", f"Added {entry.code} to the list of legal authorities.")


@router.post("/lawful/authorities/withdraw")
def withdraw_authority_post(
    request: Request,
    scope: PageScope,
    code: Annotated[str, Form(max_length=64)],
    reason: Annotated[str, Form(max_length=2000)],
) -> Response:
    """Withdraw a legal authority (administrators)."""
    entry = authorities.withdraw_authority(scope.rt, scope.actor, code, reason)
    return done(request, "/lawful#authorities",
                f"Withdrew {entry.code}: {entry.bookings} booking(s) now await review.")  # fmt: skip


@router.post("/lawful/review")
def review_post(
    request: Request,
    scope: PageScope,
    to: Annotated[str, Form(max_length=64)],
    reason: Annotated[str, Form(max_length=2000)],
    from_text: Annotated[str, Form(max_length=2000)] = "",
    booking: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Re-attribute bookings awaiting review (records officers)."""
    count = authorities.reattribute(scope.rt, scope.actor, to, reason, from_text=from_text or None,
                                    booking=booking or None)  # fmt: skip
    return done(request, "/lawful#compliance", f"{count} booking(s) now held under {to.strip()}.")


@router.post("/lawful/dispositions")
def disposition_post(
    request: Request,
    scope: PageScope,
    booking_number: Annotated[str, Form(max_length=64)],
    kind: Annotated[str, Form(max_length=32)],
    occurred_on: Annotated[str, Form(max_length=10)],
    reference: Annotated[str, Form(max_length=200)],
) -> Response:
    """Record a disposition event (records officers)."""
    try:
        day = date.fromisoformat(occurred_on.strip())
    except ValueError:
        raise ValidationError(f"the disposition date must be YYYY-MM-DD, got {occurred_on!r}") from None
    recorded = dispositions.record_disposition(scope.rt, scope.actor, booking_number, parse_kind(kind), day,
                                               reference, source="web")  # fmt: skip
    return done(request, "/lawful#dispositions",
                f"Booking {recorded.booking_number}: {recorded.kind} recorded; subject {recorded.schedule.state} "
                f"- {recorded.schedule.reason}")  # fmt: skip


@router.post("/lawful/dispositions/run")
def disposition_run_post(request: Request, scope: PageScope) -> Response:
    """Open the destruction requests that have fallen due (records officers)."""
    ran = dispositions.run(scope.rt, scope.actor)
    return done(request, "/lawful#dispositions", f"{ran.opened} destruction request(s) opened.")


@router.post("/lawful/policy")
def policy_post(
    request: Request,
    scope: PageScope,
    kind: Annotated[str, Form(max_length=32)],
    action: Annotated[str, Form(max_length=16)],
    waiting_days: Annotated[int, Form(ge=0, le=36500)] = 0,
) -> Response:
    """Set the disposition policy for one kind (administrators)."""
    rule = dispositions.set_rule(scope.rt, scope.actor, parse_kind(kind), action, waiting_days)
    return done(request, "/lawful#dispositions", f"Policy for {rule.kind}: {rule.action}.")


@router.post("/lawful/criteria")
def criterion_post(
    request: Request,
    scope: PageScope,
    code: Annotated[str, Form(max_length=64)],
    text: Annotated[str, Form(max_length=1000)],
    check: Annotated[str, Form(max_length=32)] = "manual",
    parameter: Annotated[str, Form(max_length=6)] = "",
) -> Response:
    """Add a destruction eligibility criterion (administrators)."""
    value = None
    if parameter.strip():
        if not parameter.strip().isdigit():
            raise ValidationError(f"the parameter must be a whole number, got {parameter!r}")
        value = int(parameter)
    item = criteria.add_criterion(scope.rt, scope.actor, code, text, check=check, parameter=value)
    return done(request, "/lawful#criteria", f"Added criterion {item.code}.")


@router.post("/lawful/criteria/withdraw")
def criterion_withdraw_post(
    request: Request,
    scope: PageScope,
    code: Annotated[str, Form(max_length=64)],
    reason: Annotated[str, Form(max_length=2000)],
) -> Response:
    """Withdraw a destruction eligibility criterion (administrators)."""
    criteria.withdraw_criterion(scope.rt, scope.actor, code, reason)
    return done(request, "/lawful#criteria", f"Withdrew criterion {code.strip()}.")
