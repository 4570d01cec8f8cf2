"""Administration through :mod:`faceleads.security.users`: agencies, users, roles, certifications, unlocks.

Changes that give access to biometric content (biometric roles, certifications, credential resets of biometric
users) answer 202 with the pending approval request: a second person approves it (``/api/v1/approvals``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from faceleads.gallery import galleries
from faceleads.security import users
from faceleads.web.api.schemas import DB_ID_MAX, ERRORS
from faceleads.web.deps import ApiScope

router = APIRouter(prefix="/admin", tags=["admin"], responses=ERRORS)

Username = Annotated[str, Path(min_length=1, max_length=150)]


class AgencyIn(BaseModel):
    """A new agency and its first administrator (system operators)."""

    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=200)
    admin_username: str = Field(min_length=1, max_length=150)
    admin_password: str = Field(min_length=1, max_length=1024)
    admin_display_name: str = Field(default="", max_length=200)


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=1024)
    display_name: str = Field(default="", max_length=200)
    roles: list[str] = Field(default_factory=list, max_length=10)


class RoleIn(BaseModel):
    role: str = Field(min_length=1, max_length=32)


class CertificationIn(BaseModel):
    expires_on: date
    reference: str = Field(default="", max_length=200)


class GalleryIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    legal_authority: str = Field(min_length=1, max_length=2000)
    purposes: list[str] = Field(min_length=1, max_length=20)


class ShareIn(BaseModel):
    agency_code: str = Field(min_length=1, max_length=32)
    purposes: list[str] = Field(min_length=1, max_length=20)
    starts_on: date
    ends_on: date | None = None
    agreement_ref: str = Field(default="", max_length=200)


class PasswordIn(BaseModel):
    password: str = Field(min_length=1, max_length=1024)


class ActiveIn(BaseModel):
    active: bool


def user_json(info: users.UserInfo) -> dict[str, Any]:
    """A user as administration screens show it (never secrets)."""
    return {
        "id": info.id,
        "username": info.username,
        "display_name": info.display_name,
        "agency_code": info.agency_code,
        "roles": list(info.roles),
        "effective_roles": list(info.effective_roles),
        "active": info.active,
        "locked_until": info.locked_until.isoformat() if info.locked_until else None,
        "totp_enabled": info.totp_enabled,
        "certified_until": info.certified_until.isoformat() if info.certified_until else None,
    }


def change_response(change: users.Change, status: int = 200) -> JSONResponse:
    """A change applied (``status``) or waiting for a second person's approval (202), with the request."""
    return JSONResponse(change.to_json(), status_code=202 if change.pending and not change.done else status)


@router.get("/agencies")
def agencies(scope: ApiScope) -> list[dict[str, Any]]:
    """Every agency (system operators)."""
    return [{"id": a.id, "code": a.code, "name": a.name} for a in users.list_agencies(scope.rt.session_factory,
                                                                                        scope.actor)]


@router.post("/agencies", status_code=201)
def create_agency(body: AgencyIn, scope: ApiScope) -> dict[str, Any]:
    """Create an agency with its first administrator (system operators); audited."""
    info = users.create_agency(scope.rt.session_factory, scope.actor, body.code.strip(), body.name,
                               admin_username=body.admin_username.strip(), admin_password=body.admin_password,
                               admin_display_name=body.admin_display_name)  # fmt: skip
    return {"id": info.id, "code": info.code, "name": info.name, "first_admin": info.first_admin}


@router.get("/users")
def list_users(scope: ApiScope) -> list[dict[str, Any]]:
    """Users of your agency (administrators, supervisors)."""
    return [user_json(u) for u in users.list_users(scope.rt.session_factory, scope.actor)]


@router.post("/users", status_code=201)
def create_user(body: UserIn, scope: ApiScope) -> JSONResponse:
    """Create a user in your agency with initial roles; biometric roles wait for a second person's approval
    (listed in ``approvals``)."""
    change = users.create_user(
        scope.rt.session_factory, scope.actor, scope.actor.agency_code, body.username, body.password,
        display_name=body.display_name, roles=body.roles,
    )  # fmt: skip
    return JSONResponse({**change.to_json(), "username": body.username}, status_code=201)


@router.post("/users/{username}/roles", responses={202: {"description": "Waiting for a second person's approval"}})
def grant_role(username: Username, body: RoleIn, scope: ApiScope) -> JSONResponse:
    """Grant a role (nobody changes their own roles); a biometric role is requested (202) for approval."""
    return change_response(users.grant_role(scope.rt.session_factory, scope.actor, username, body.role))


@router.delete("/users/{username}/roles/{role}")
def revoke_role(username: Username, role: Annotated[str, Path(max_length=32)], scope: ApiScope) -> dict[str, Any]:
    """Revoke a role."""
    return {"changed": users.revoke_role(scope.rt.session_factory, scope.actor, username, role)}


@router.post("/users/{username}/certifications", status_code=202,
             responses={202: {"description": "Waiting for a second person's approval"}})
def certify(username: Username, body: CertificationIn, scope: ApiScope) -> JSONResponse:
    """Record a facial-comparison certification valid until the end of ``expires_on`` (UTC) (training officers);
    it takes effect once a second person approves it."""
    expires = datetime.combine(body.expires_on, time.max, tzinfo=UTC)
    change = users.certify(scope.rt.session_factory, scope.actor, username, expires, reference=body.reference)
    return change_response(change)


@router.delete("/users/{username}/certifications")
def revoke_certifications(username: Username, scope: ApiScope) -> dict[str, Any]:
    """Revoke every current certification of a user."""
    return {"revoked": users.revoke_certifications(scope.rt.session_factory, scope.actor, username)}


@router.post("/users/{username}/password", responses={202: {"description": "Waiting for a second person's approval"}})
def reset_password(username: Username, body: PasswordIn, scope: ApiScope) -> JSONResponse:
    """Set a new password (the user's sessions end); for a biometric user it waits for approval (202)."""
    return change_response(users.reset_password(scope.rt.session_factory, scope.actor, username, body.password))


@router.post("/users/{username}/unlock", status_code=204)
def unlock(username: Username, scope: ApiScope) -> Response:
    """Lift a sign-in lockout."""
    users.unlock(scope.rt.session_factory, scope.actor, username)
    return Response(status_code=204)


@router.post("/users/{username}/active", status_code=204)
def set_active(username: Username, body: ActiveIn, scope: ApiScope) -> Response:
    """Deactivate (sessions end) or reactivate a user."""
    users.set_active(scope.rt.session_factory, scope.actor, username, body.active)
    return Response(status_code=204)


@router.post("/users/{username}/totp-reset", responses={202: {"description": "Waiting for a second person's approval"}})
def reset_totp(username: Username, scope: ApiScope) -> JSONResponse:
    """Remove a user's TOTP and recovery codes (lost device); for a biometric user it waits for approval (202)."""
    return change_response(users.reset_totp(scope.rt.session_factory, scope.actor, username))


@router.post("/galleries", status_code=201)
def create_gallery(body: GalleryIn, scope: ApiScope) -> dict[str, Any]:
    """Create a gallery of your agency with its legal authority and the purposes it may be searched for."""
    gallery_id = galleries.create_gallery(scope.rt, scope.actor, body.name, body.legal_authority, body.purposes)
    return {"id": gallery_id, "name": body.name.strip()}


@router.post("/galleries/{name}/shares", status_code=201)
def share_gallery(name: Annotated[str, Path(min_length=1, max_length=100)], body: ShareIn,
                  scope: ApiScope) -> dict[str, Any]:  # fmt: skip
    """Share one of your agency's galleries with another agency (sharing agreement) for purposes and dates."""
    share_id = galleries.share_gallery(scope.rt, scope.actor, name, body.agency_code, body.purposes, body.starts_on,
                                       body.ends_on, body.agreement_ref)  # fmt: skip
    return {"id": share_id}


@router.delete("/shares/{share_id}", status_code=204)
def revoke_share(share_id: Annotated[int, Path(ge=1, le=DB_ID_MAX)], scope: ApiScope) -> Response:
    """End a sharing agreement at once."""
    galleries.revoke_share(scope.rt, scope.actor, share_id)
    return Response(status_code=204)
