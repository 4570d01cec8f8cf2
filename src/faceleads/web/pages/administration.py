"""Administration: users of the agency with roles and certifications, unlocks, offence and purpose lists,
galleries and sharing agreements, agencies.

Separation of duties is the services': a biometric role, a certification or a credential reset of a biometric user
asked for here is only *requested* (``users.Change.approvals``); the message says which request waits, and a second
person decides it on the Approvals page (``web.pages.approvals``)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated
from urllib.parse import quote

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from faceleads.casework import admin as lists
from faceleads.core.actor import Role
from faceleads.core.policy import Action
from faceleads.core.regime import Regime
from faceleads.gallery.enrolment import parse_date
from faceleads.gallery.galleries import create_gallery, share_gallery
from faceleads.security import users
from faceleads.web.deps import PageScope
from faceleads.web.pages.common import page_router, redirect
from faceleads.web.render import render

router = page_router()


def _done(message: str) -> Response:
    return redirect("/admin?message=" + quote(message))


@router.get("/admin", response_class=HTMLResponse)
def admin_page(
    request: Request, scope: PageScope, message: Annotated[str | None, Query(max_length=500)] = None
) -> Response:
    """Users of the agency with roles and certifications; forms to create users, grant roles, certify."""
    rt, actor = scope.rt, scope.actor
    people = users.list_users(rt.session_factory, actor)
    agencies = users.list_agencies(rt.session_factory, actor) if scope.may(Action.ADMIN_AGENCIES) else []
    can_lists = scope.may(Action.ADMIN_OFFENCES, actor.agency_id)
    return render(request, "admin.html", {"users": people, "agencies": agencies, "message": message,
                                          "can_admin": scope.may(Action.ADMIN_USERS, actor.agency_id),
                                          "can_certify": scope.may(Action.ADMIN_CERTIFICATIONS, actor.agency_id),
                                          "can_regimes": scope.may(Action.ADMIN_REGIMES, actor.agency_id),
                                          "can_lists": can_lists,
                                          "can_galleries": scope.may(Action.MANAGE_GALLERY, actor.agency_id),
                                          "offences": lists.list_offences(rt, actor) if can_lists else [],
                                          "purposes": lists.list_purposes(rt, actor.agency_id) if can_lists else [],
                                          "regimes": [r.value for r in Regime],
                                          "categories": sorted(scope.rt.settings.retention_days),
                                          "roles": [r.value for r in Role]})  # fmt: skip


@router.post("/admin/users")
def admin_create_user(
    scope: PageScope,
    username: Annotated[str, Form(max_length=150)],
    password: Annotated[str, Form(max_length=1024)],
    display_name: Annotated[str, Form(max_length=200)] = "",
    roles: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Create a user in the administrator's agency (biometric roles wait for a second person's approval)."""
    change = users.create_user(scope.rt.session_factory, scope.actor, scope.actor.agency_code, username.strip(),
                               password, display_name=display_name, roles=roles or [])  # fmt: skip
    return _done(change.message)


@router.post("/admin/users/{username}/roles")
def admin_role(
    username: str,
    scope: PageScope,
    role: Annotated[str, Form(max_length=32)],
    change: Annotated[str, Form(pattern="^(grant|revoke)$")] = "grant",
) -> Response:
    """Grant (a biometric role: request) or revoke a role."""
    if change == "grant":
        return _done(users.grant_role(scope.rt.session_factory, scope.actor, username, role).message)
    revoked = users.revoke_role(scope.rt.session_factory, scope.actor, username, role)
    return _done(f"{role} revoked from {username}" if revoked else f"{username} did not hold {role}")


@router.post("/admin/users/{username}/certify")
def admin_certify(
    username: str,
    scope: PageScope,
    expires_on: Annotated[str, Form(max_length=10)],
    reference: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Training officers: record a certification valid to the end of ``expires_on`` (a supervisor approves it)."""
    day = parse_date(expires_on, "expiry date")
    change = users.certify(scope.rt.session_factory, scope.actor, username,
                           datetime.combine(day, time.max, tzinfo=UTC), reference=reference)  # fmt: skip
    return _done(change.message)


@router.post("/admin/offences")
def admin_offence(
    scope: PageScope,
    code: Annotated[str, Form(max_length=50)],
    title: Annotated[str, Form(max_length=200)],
    category: Annotated[str, Form(max_length=50)],
) -> Response:
    """Add an offence to the agency's approved list."""
    lists.add_offence(scope.rt, scope.actor, code, title, category)
    return _done(f"offence {code.strip()} added")


@router.post("/admin/purposes")
def admin_purpose(
    scope: PageScope,
    code: Annotated[str, Form(max_length=64)],
    title: Annotated[str, Form(max_length=200)],
    requires_authorisation: Annotated[bool, Form()] = False,
    regime: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Add a search purpose, optionally putting it in a legal regime for the agency (exigent: threat to life)."""
    info = lists.add_purpose(scope.rt, scope.actor, code, title, requires_authorisation=requires_authorisation,
                             regime=regime or None)  # fmt: skip
    return _done(f"purpose {info.code} added ({(info.regime or 'investigative').replace('_', ' ')} regime)")


@router.post("/admin/galleries")
def admin_gallery(
    scope: PageScope,
    name: Annotated[str, Form(max_length=100)],
    legal_authority: Annotated[str, Form(max_length=2000)],
    purposes: Annotated[str, Form(max_length=1000, description="comma-separated purpose codes")],
) -> Response:
    """Create a gallery with its legal authority and purposes."""
    create_gallery(scope.rt, scope.actor, name, legal_authority, [p.strip() for p in purposes.split(",") if p.strip()])
    return _done(f"gallery {name.strip()} created")


@router.post("/admin/shares")
def admin_share(
    scope: PageScope,
    gallery: Annotated[str, Form(max_length=100)],
    agency_code: Annotated[str, Form(max_length=32)],
    purposes: Annotated[str, Form(max_length=1000)],
    starts_on: Annotated[str, Form(max_length=10)],
    ends_on: Annotated[str, Form(max_length=10)] = "",
    agreement_ref: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Record a sharing agreement: one of the agency's galleries searchable by another agency."""
    share_gallery(scope.rt, scope.actor, gallery, agency_code, [p.strip() for p in purposes.split(",") if p.strip()],
                  parse_date(starts_on, "start date"), parse_date(ends_on, "end date") if ends_on.strip() else None,
                  agreement_ref)  # fmt: skip
    return _done(f"gallery {gallery.strip()} shared with {agency_code.strip()}")


@router.post("/admin/users/{username}/unlock")
def admin_unlock(username: str, scope: PageScope) -> Response:
    """Lift a lockout."""
    users.unlock(scope.rt.session_factory, scope.actor, username)
    return _done(f"{username} unlocked")
