"""Web pages for legal regimes, exigent ratifications, separation-of-duties approvals, partner accesses and the
system operator's agencies (docs/regimes.md).

Like every page they check the CSRF token on each form and only call the domain services, which authorise (central
policy) and audit every read, change and refusal.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from faceleads.casework import regimes
from faceleads.core.actor import Role
from faceleads.core.policy import SYSTEM_ROLES, Action
from faceleads.core.regime import Regime
from faceleads.gallery import access
from faceleads.gallery.enrolment import parse_date
from faceleads.governance.audit_log import parse_when
from faceleads.security import approvals, users
from faceleads.web.api.schemas import Id
from faceleads.web.deps import PageScope
from faceleads.web.render import render
from faceleads.web.security import check_csrf

router = APIRouter(include_in_schema=False)

Csrf = Annotated[str, Form(max_length=200)]
Message = Annotated[str | None, Query(max_length=500)]


def _redirect(url: str, message: str | None = None) -> RedirectResponse:
    if message:
        url += ("&" if "?" in url else "?") + "message=" + quote(message[:400])
    return RedirectResponse(url, status_code=303)


# --- legal regimes ----------------------------------------------------------------------------------------------


@router.get("/regimes", response_class=HTMLResponse)
def regimes_page(request: Request, scope: PageScope, message: Message = None) -> Response:
    """The agency's regimes: each purpose's regime, the exigent window, the validity of prior authorisations."""
    info = regimes.show_regimes(scope.rt, scope.actor)
    return render(request, "regimes.html", {"info": info, "regimes": [r.value for r in Regime], "message": message,
                                            "can_edit": scope.may(Action.ADMIN_REGIMES, scope.actor.agency_id)})


@router.post("/regimes/purposes")
def regimes_purpose(
    request: Request,
    scope: PageScope,
    csrf: Csrf,
    purpose: Annotated[str, Form(max_length=64)],
    regime: Annotated[str, Form(max_length=32)],
) -> Response:
    """Put a purpose in a regime (administrators)."""
    check_csrf(request, csrf)
    regimes.set_purpose_regime(scope.rt, scope.actor, purpose, regime)
    return _redirect("/regimes", f"purpose {purpose.strip()} is now {regime.strip()}")


@router.post("/regimes/windows")
def regimes_windows(
    request: Request,
    scope: PageScope,
    csrf: Csrf,
    exigent_window_hours: Annotated[int, Form(ge=1, le=regimes.MAX_WINDOW_HOURS)],
    authorisation_hours: Annotated[int, Form(ge=1, le=regimes.MAX_AUTHORISATION_HOURS)],
) -> Response:
    """Set the exigent ratification window and the prior-authorisation validity (administrators)."""
    check_csrf(request, csrf)
    regimes.set_windows(scope.rt, scope.actor, exigent_window_hours=exigent_window_hours,
                        authorisation_hours=authorisation_hours)  # fmt: skip
    return _redirect("/regimes", "windows saved")


# --- exigent ratifications --------------------------------------------------------------------------------------


@router.get("/ratifications", response_class=HTMLResponse)
def ratifications_page(
    request: Request,
    scope: PageScope,
    state: Annotated[str, Query(pattern="^(open|pending|lapsed|decided|all)$")] = "open",
    agency: Annotated[str | None, Query(max_length=32)] = None,
    message: Message = None,
) -> Response:
    """Exigent searches and their ratification: pending ones to ratify, lapsed ones flagged and locked (supervisors,
    auditors; oversight across agencies)."""
    rows = regimes.list_ratifications(scope.rt, scope.actor, state=state, agency_code=agency or None)
    return render(request, "ratifications.html", {
        "rows": rows, "state": state, "agency": agency or "", "message": message,
        "can_ratify": scope.may(Action.AUTHORISE_EXCEPTION, scope.actor.agency_id),
    })  # fmt: skip


@router.post("/ratifications/{case_search_id}")
def ratify_page(
    request: Request,
    case_search_id: Id,
    scope: PageScope,
    csrf: Csrf,
    reason: Annotated[str, Form(max_length=2000)],
    decision: Annotated[str, Form(pattern="^(ratify|refuse)$")] = "ratify",
) -> Response:
    """A supervisor ratifies (or refuses to ratify) an exigent search."""
    check_csrf(request, csrf)
    info = regimes.ratify_search(scope.rt, scope.actor, case_search_id, reason, grant=decision == "ratify")
    return _redirect("/ratifications", f"case search {info.case_search_id}: {info.state.replace('_', ' ')}")


# --- separation of duties -----------------------------------------------------------------------------------------


@router.get("/approvals", response_class=HTMLResponse)
def approvals_page(
    request: Request,
    scope: PageScope,
    status: Annotated[str, Query(pattern="^(pending|approved|rejected|expired|all)$")] = "pending",
    message: Message = None,
) -> Response:
    """Requests waiting for a second person (and past decisions)."""
    rows = approvals.list_approvals(scope.rt.session_factory, scope.actor, status=None if status == "all" else status)
    return render(request, "approvals.html", {
        "rows": rows, "status": status, "message": message,
        "can_certify": scope.may(Action.ADMIN_CERTIFICATIONS, scope.actor.agency_id),
    })  # fmt: skip


@router.post("/approvals/certifications")
def request_certification(
    request: Request,
    scope: PageScope,
    csrf: Csrf,
    username: Annotated[str, Form(max_length=150)],
    expires_on: Annotated[str, Form(max_length=10)],
    reference: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Training officers: record a certification (valid to the end of ``expires_on``); a supervisor approves it."""
    check_csrf(request, csrf)
    day = parse_date(expires_on, "expiry date")
    change = users.certify(scope.rt.session_factory, scope.actor, username.strip(),
                           datetime.combine(day, time.max, tzinfo=UTC), reference=reference)  # fmt: skip
    return _redirect("/approvals", change.message)


@router.post("/approvals/{approval_id}")
def decide_approval(
    request: Request,
    approval_id: Id,
    scope: PageScope,
    csrf: Csrf,
    decision: Annotated[str, Form(pattern="^(approve|reject)$")],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Approve (the change takes effect) or reject a request."""
    check_csrf(request, csrf)
    if decision == "approve":
        info = approvals.approve(scope.rt.session_factory, scope.actor, approval_id, note)
    else:
        info = approvals.reject(scope.rt.session_factory, scope.actor, approval_id, note)
    return _redirect("/approvals", f"request {info.id} {info.status}: {info.description}")


# --- partner accesses -------------------------------------------------------------------------------------------


@router.get("/partner-access", response_class=HTMLResponse)
def partner_access_page(
    request: Request,
    scope: PageScope,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    partner: Annotated[str | None, Query(max_length=32)] = None,
    agency: Annotated[str | None, Query(max_length=32)] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """Every read of the agency's records by partner agencies (auditors, administrators; oversight: any agency)."""
    page = access.list_partner_accesses(
        scope.rt, scope.actor, since=parse_when(since, "since"), until=parse_when(until, "until", end=True),
        partner=partner or None, agency_code=agency or None, limit=100, offset=offset,
    )  # fmt: skip
    filters = {"since": since or "", "until": until or "", "partner": partner or "", "agency": agency or ""}
    return render(request, "partner_access.html", {"page": page, "filters": filters, "offset": offset})


# --- system operator ----------------------------------------------------------------------------------------------


@router.get("/operator", response_class=HTMLResponse)
def operator_page(request: Request, scope: PageScope, message: Message = None) -> Response:
    """Agencies (with a form to create one and its first administrator) and the system-level roles."""
    return render(request, "operator.html", {
        "agencies": users.list_agencies(scope.rt.session_factory, scope.actor), "message": message,
        "system_roles": sorted(r.value for r in SYSTEM_ROLES),
    })  # fmt: skip


@router.post("/operator/agencies")
def operator_create_agency(
    request: Request,
    scope: PageScope,
    csrf: Csrf,
    code: Annotated[str, Form(max_length=32)],
    name: Annotated[str, Form(max_length=200)],
    admin_username: Annotated[str, Form(max_length=150)],
    admin_password: Annotated[str, Form(max_length=1024)],
    admin_display_name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Create an agency with its first administrator."""
    check_csrf(request, csrf)
    info = users.create_agency(scope.rt.session_factory, scope.actor, code.strip(), name,
                               admin_username=admin_username.strip(), admin_password=admin_password,
                               admin_display_name=admin_display_name)  # fmt: skip
    return _redirect("/operator", f"agency {info.code} created with its first administrator {info.first_admin}")


@router.post("/operator/roles")
def operator_role(
    request: Request,
    scope: PageScope,
    csrf: Csrf,
    username: Annotated[str, Form(max_length=150)],
    role: Annotated[str, Form(pattern=f"^({Role.OVERSIGHT.value}|{Role.SYSTEM_OPERATOR.value})$")],
    change: Annotated[str, Form(pattern="^(grant|revoke)$")] = "grant",
) -> Response:
    """Grant or revoke a system-level role (oversight, system operator) to a user of any agency."""
    check_csrf(request, csrf)
    if change == "grant":
        message = users.grant_role(scope.rt.session_factory, scope.actor, username.strip(), role).message
    else:
        done = users.revoke_role(scope.rt.session_factory, scope.actor, username.strip(), role)
        message = f"{role} revoked from {username.strip()}" if done else f"{username.strip()} did not hold {role}"
    return _redirect("/operator", message)
