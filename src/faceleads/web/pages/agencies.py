"""Agencies and oversight (docs/regimes.md): the system operator's agencies (create one with its first
administrator) and system-level roles, and the partner-access page — every read of the agency's records by partner
agencies, for its auditors and administrators, and across agencies for oversight. The services
(``security.users``, ``gallery.access``) authorise and audit; CSRF is the page routers' dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from faceleads.core.actor import Role
from faceleads.core.policy import SYSTEM_ROLES, Action
from faceleads.gallery import access
from faceleads.governance.audit_log import parse_when
from faceleads.security import users
from faceleads.web.deps import PageScope
from faceleads.web.pages.common import done, page_router
from faceleads.web.render import render

router = page_router()
PAGE = 100


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
        partner=partner or None, agency_code=agency or None, limit=PAGE, offset=offset,
    )  # fmt: skip
    filters = {"since": since or "", "until": until or "", "partner": partner or "", "agency": agency or ""}
    return render(request, "partner_access.html", {
        "page": page, "filters": filters, "offset": offset, "page_size": PAGE,
        "cross_agency": Role.OVERSIGHT in scope.actor.roles,
    })  # fmt: skip


@router.get("/operator", response_class=HTMLResponse)
def operator_page(request: Request, scope: PageScope) -> Response:
    """Agencies (with a form to create one and its first administrator) and the system-level roles."""
    return render(request, "operator.html", {
        "agencies": users.list_agencies(scope.rt.session_factory, scope.actor),
        "system_roles": sorted(r.value for r in SYSTEM_ROLES),
        "can_agencies": scope.may(Action.ADMIN_AGENCIES),
    })  # fmt: skip


@router.post("/operator/agencies")
def operator_create_agency(
    request: Request,
    scope: PageScope,
    code: Annotated[str, Form(max_length=32)],
    name: Annotated[str, Form(max_length=200)],
    admin_username: Annotated[str, Form(max_length=150)],
    admin_password: Annotated[str, Form(max_length=1024)],
    admin_display_name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Create an agency with its first administrator."""
    info = users.create_agency(scope.rt.session_factory, scope.actor, code.strip(), name,
                               admin_username=admin_username.strip(), admin_password=admin_password,
                               admin_display_name=admin_display_name)  # fmt: skip
    return done(request, "/operator", f"Agency {info.code} created with its first administrator {info.first_admin}.")


@router.post("/operator/roles")
def operator_role(
    request: Request,
    scope: PageScope,
    username: Annotated[str, Form(max_length=150)],
    role: Annotated[str, Form(pattern=f"^({Role.OVERSIGHT.value}|{Role.SYSTEM_OPERATOR.value})$")],
    change: Annotated[str, Form(pattern="^(grant|revoke)$")],
) -> Response:
    """Grant or revoke a system-level role (oversight, system operator) to a user of any agency."""
    who = username.strip()
    if change == "grant":
        message = users.grant_role(scope.rt.session_factory, scope.actor, who, role).message
    else:
        revoked = users.revoke_role(scope.rt.session_factory, scope.actor, who, role)
        message = f"{role} revoked from {who}" if revoked else f"{who} did not hold {role}"
    return done(request, "/operator", message[:1].upper() + message[1:] + ".")
