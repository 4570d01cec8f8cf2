"""The user's own account: change the password, add an authenticator app (TOTP, with a QR code) and get recovery
codes. Every signed-in user has these pages, whatever their roles; the services in ``faceleads.security.users``
authorise (own account only) and audit."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from faceleads.errors import ValidationError
from faceleads.security import auth, users
from faceleads.web.deps import PageScope, page_token
from faceleads.web.pages.common import done, page_router
from faceleads.web.render import render

router = page_router()


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, scope: PageScope) -> Response:
    """The account's roles, certification and second factor, with the forms to change them. After a sign-in
    refused for want of a required authenticator app, this is where the enrolment-only session lands."""
    return render(request, "account.html", {"me": users.own_account(scope.rt.session_factory, scope.actor),
                                            "enrolment_only": _enrolment_only(request, scope)})


def _enrolment_only(request: Request, scope: PageScope) -> bool:
    with scope.rt.session_factory() as session:
        return auth.is_enrolment_session(session, page_token(request) or "", settings=scope.rt.settings)


@router.post("/account/password")
def change_password_page(
    request: Request,
    scope: PageScope,
    current_password: Annotated[str, Form(max_length=1024)],
    new_password: Annotated[str, Form(max_length=1024)],
    repeat_password: Annotated[str, Form(max_length=1024)],
) -> Response:
    """Change the own password (the current one is needed; the rules are the service's)."""
    if new_password != repeat_password:
        raise ValidationError("the new password and its repetition differ: type the same new password twice")
    users.change_own_password(scope.rt.session_factory, scope.actor, current_password, new_password)
    return done(request, "/account", "Password changed.")


@router.post("/account/totp", response_class=HTMLResponse)
def begin_totp_page(request: Request, scope: PageScope) -> Response:
    """Start adding an authenticator app: a new secret as a QR code (and as text), to be confirmed with a code."""
    enrolment = users.begin_totp_enrolment(scope.rt.session_factory, scope.actor, settings=scope.rt.settings)
    qr = "data:image/png;base64," + base64.b64encode(enrolment.qr_png).decode()
    secret = " ".join(enrolment.secret[i:i + 4] for i in range(0, len(enrolment.secret), 4))
    return render(request, "account_totp.html", {"qr": qr, "secret": secret})


@router.post("/account/totp/confirm", response_class=HTMLResponse)
def confirm_totp_page(request: Request, scope: PageScope, code: Annotated[str, Form(max_length=16)]) -> Response:
    """Turn TOTP on once the app shows the right code; the recovery codes are shown once. An enrolment-only session
    ends here (the service revokes it): the page says to sign in again with the app's code."""
    enrolment_only = _enrolment_only(request, scope)
    codes = users.confirm_totp_enrolment(scope.rt.session_factory, scope.actor, code.replace(" ", ""),
                                         settings=scope.rt.settings)  # fmt: skip
    return render(request, "account_codes.html", {"codes": codes, "new": True, "sign_in_again": enrolment_only})


@router.post("/account/recovery-codes", response_class=HTMLResponse)
def recovery_codes_page(request: Request, scope: PageScope) -> Response:
    """Replace the recovery codes (the old ones stop working); the new ones are shown once."""
    codes = users.regenerate_recovery_codes(scope.rt.session_factory, scope.actor)
    return render(request, "account_codes.html", {"codes": codes, "new": False})
