"""Web pages of the lawful gallery (``/lawful``): the agency's legal authorities (administrators add and withdraw),
the records awaiting review (records officers re-attribute them), disposition events and the destruction they
schedule, the disposition policy and the destruction eligibility criteria. Same services as the CLI and the API
(:mod:`faceleads.web.api.lawful`); each section is shown to the roles that may use it, and the services decide."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from faceleads.core.policy import Action
from faceleads.errors import ValidationError
from faceleads.gallery import authorities
from faceleads.gallery.dispositions import KINDS, parse_kind
from faceleads.governance import criteria, dispositions
from faceleads.web.deps import PageScope
from faceleads.web.render import render
from faceleads.web.security import check_csrf

router = APIRouter(include_in_schema=False)
Csrf = Annotated[str, Form(max_length=200)]


def _redirect(message: str = "") -> RedirectResponse:
    from urllib.parse import quote

    return RedirectResponse("/lawful" + (f"?message={quote(message[:300])}" if message else ""), status_code=303)


@router.get("/lawful", response_class=HTMLResponse)
def lawful_page(request: Request, scope: PageScope, message: str | None = None) -> Response:
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
        "message": message,
        "today": date.today().isoformat(),
    }
    return render(request, "lawful.html", context)


@router.post("/lawful/authorities")
def add_authority_post(
    request: Request, scope: PageScope, csrf: Csrf, code: Annotated[str, Form(max_length=64)],
    title: Annotated[str, Form(max_length=500)], description: Annotated[str, Form(max_length=2000)] = "",
) -> Response:  # fmt: skip
    """Add a legal authority (administrators)."""
    check_csrf(request, csrf)
    entry = authorities.add_authority(scope.rt, scope.actor, code, title, description)
    return _redirect(f"added {entry.code}")


@router.post("/lawful/authorities/withdraw")
def withdraw_authority_post(
    request: Request, scope: PageScope, csrf: Csrf, code: Annotated[str, Form(max_length=64)],
    reason: Annotated[str, Form(max_length=2000)],
) -> Response:  # fmt: skip
    """Withdraw a legal authority (administrators)."""
    check_csrf(request, csrf)
    entry = authorities.withdraw_authority(scope.rt, scope.actor, code, reason)
    return _redirect(f"withdrew {entry.code}: {entry.bookings} booking(s) now await review")


@router.post("/lawful/review")
def review_post(
    request: Request, scope: PageScope, csrf: Csrf, to: Annotated[str, Form(max_length=64)],
    reason: Annotated[str, Form(max_length=2000)], from_text: Annotated[str, Form(max_length=2000)] = "",
    booking: Annotated[str, Form(max_length=64)] = "",
) -> Response:  # fmt: skip
    """Re-attribute bookings awaiting review (records officers)."""
    check_csrf(request, csrf)
    count = authorities.reattribute(scope.rt, scope.actor, to, reason, from_text=from_text or None,
                                    booking=booking or None)  # fmt: skip
    return _redirect(f"{count} booking(s) now held under {to}")


@router.post("/lawful/dispositions")
def disposition_post(
    request: Request, scope: PageScope, csrf: Csrf, booking_number: Annotated[str, Form(max_length=64)],
    kind: Annotated[str, Form(max_length=32)], occurred_on: Annotated[str, Form(max_length=10)],
    reference: Annotated[str, Form(max_length=200)],
) -> Response:  # fmt: skip
    """Record a disposition event (records officers)."""
    check_csrf(request, csrf)
    try:
        day = date.fromisoformat(occurred_on.strip())
    except ValueError:
        raise ValidationError(f"the disposition date must be YYYY-MM-DD, got {occurred_on!r}") from None
    done = dispositions.record_disposition(scope.rt, scope.actor, booking_number, parse_kind(kind), day, reference,
                                           source="web")  # fmt: skip
    return _redirect(f"booking {done.booking_number}: {done.kind} recorded; subject {done.schedule.state}"
                     f" - {done.schedule.reason}")  # fmt: skip


@router.post("/lawful/dispositions/run")
def disposition_run_post(request: Request, scope: PageScope, csrf: Csrf) -> Response:
    """Open the destruction requests that have fallen due (records officers)."""
    check_csrf(request, csrf)
    done = dispositions.run(scope.rt, scope.actor)
    return _redirect(f"{done.opened} destruction request(s) opened")


@router.post("/lawful/policy")
def policy_post(
    request: Request, scope: PageScope, csrf: Csrf, kind: Annotated[str, Form(max_length=32)],
    action: Annotated[str, Form(max_length=16)], waiting_days: Annotated[int, Form(ge=0, le=36500)] = 0,
) -> Response:  # fmt: skip
    """Set the disposition policy for one kind (administrators)."""
    check_csrf(request, csrf)
    rule = dispositions.set_rule(scope.rt, scope.actor, parse_kind(kind), action, waiting_days)
    return _redirect(f"policy for {rule.kind}: {rule.action}")


@router.post("/lawful/criteria")
def criterion_post(
    request: Request, scope: PageScope, csrf: Csrf, code: Annotated[str, Form(max_length=64)],
    text: Annotated[str, Form(max_length=1000)], check: Annotated[str, Form(max_length=32)] = "manual",
    parameter: Annotated[str, Form(max_length=6)] = "",
) -> Response:  # fmt: skip
    """Add a destruction eligibility criterion (administrators)."""
    check_csrf(request, csrf)
    value = None
    if parameter.strip():
        if not parameter.strip().isdigit():
            raise ValidationError(f"the parameter must be a whole number, got {parameter!r}")
        value = int(parameter)
    item = criteria.add_criterion(scope.rt, scope.actor, code, text, check=check, parameter=value)
    return _redirect(f"added criterion {item.code}")


@router.post("/lawful/criteria/withdraw")
def criterion_withdraw_post(
    request: Request, scope: PageScope, csrf: Csrf, code: Annotated[str, Form(max_length=64)],
    reason: Annotated[str, Form(max_length=2000)],
) -> Response:  # fmt: skip
    """Withdraw a destruction eligibility criterion (administrators)."""
    check_csrf(request, csrf)
    criteria.withdraw_criterion(scope.rt, scope.actor, code, reason)
    return _redirect(f"withdrew criterion {code}")
