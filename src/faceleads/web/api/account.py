"""Your own account: password, TOTP second factor and recovery codes (:mod:`faceleads.security.users`).

These work with an ordinary session and with the *enrolment session* a sign-in returns when your roles require a
second factor you have not enrolled yet (403 from ``/auth/sign-in`` with ``enrolment_token``): enrol, confirm, then
sign in again with a code.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from faceleads.security import totp, users
from faceleads.web.api.schemas import ERRORS
from faceleads.web.deps import ApiScope

router = APIRouter(prefix="/account", tags=["account"], responses=ERRORS)


class PasswordChangeIn(BaseModel):
    old_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class CodeIn(BaseModel):
    code: str = Field(min_length=1, max_length=16)


@router.post("/password", status_code=204)
def change_password(body: PasswordChangeIn, scope: ApiScope) -> Response:
    """Change your own password (needs the current one)."""
    users.change_own_password(scope.rt.session_factory, scope.actor, body.old_password, body.new_password)
    return Response(status_code=204)


@router.post("/totp/enrol")
def totp_enrol(scope: ApiScope) -> dict[str, Any]:
    """Start TOTP enrolment: the secret, its ``otpauth://`` URI and the QR code (SVG) for an authenticator app."""
    enrolment = users.begin_totp_enrolment(scope.rt.session_factory, scope.actor, settings=scope.rt.settings)
    return {"secret": enrolment.secret, "uri": enrolment.uri, "qr_svg": totp.qr_svg(enrolment.uri)}


@router.post("/totp/confirm")
def totp_confirm(body: CodeIn, scope: ApiScope) -> dict[str, Any]:
    """Turn TOTP on with the code the app shows now; returns the recovery codes once (store them offline). An
    enrolment session ends here: sign in again with a code."""
    codes = users.confirm_totp_enrolment(scope.rt.session_factory, scope.actor, body.code,
                                         settings=scope.rt.settings)  # fmt: skip
    return {"recovery_codes": codes}


@router.post("/recovery-codes")
def recovery_codes(scope: ApiScope) -> dict[str, Any]:
    """Replace your recovery codes (the old ones stop working)."""
    return {"recovery_codes": users.regenerate_recovery_codes(scope.rt.session_factory, scope.actor)}
