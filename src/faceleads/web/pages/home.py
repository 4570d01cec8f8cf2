"""Sign-in, sign-out and the home page (the user's queue)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from faceleads.casework import dashboard, regimes, searching
from faceleads.core.policy import Action
from faceleads.core.uow import transaction
from faceleads.errors import AuthenticationError, SecondFactorEnrolmentRequired
from faceleads.security import auth
from faceleads.web.deps import PageScope, Runtime, page_token, run_blocking
from faceleads.web.pages.common import done, page_router, redirect
from faceleads.web.render import render
from faceleads.web.security import SESSION_COOKIE, clear_cookie, client_address, set_cookie

router = page_router()


def safe_next(target: str | None) -> str:
    """Only local absolute paths are followed after sign-in (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, next: Annotated[str | None, Query(max_length=500)] = None) -> Response:
    """The sign-in form (username, password, second factor)."""
    return render(request, "sign_in.html", {"next": safe_next(next), "error": None})


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(
    request: Request,
    rt: Runtime,
    username: Annotated[str, Form(max_length=150)],
    password: Annotated[str, Form(max_length=1024)],
    second_factor: Annotated[str, Form(max_length=64)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    """Check the credentials (rate limited), open a session and set the session cookie."""
    try:
        result = await run_blocking(
            request, auth.authenticate, rt.session_factory, username, password, second_factor or None,
            settings=rt.settings, client=f"web {client_address(request)}",
            limiter=request.app.state.sign_in_limiter, address=client_address(request),
        )  # fmt: skip
    except SecondFactorEnrolmentRequired as exc:
        # The password was right (only then is this answer given), but a role of the account requires an
        # authenticator app and none is enrolled: the short enrolment-only session can do nothing but add one, on
        # the account page; the user then signs in again with its code.
        response = done(request, "/account#totp", "Your roles require an authenticator app: add one below, then "
                                                  "sign in again with its code.")
        set_cookie(response, request, rt.settings, SESSION_COOKIE, exc.enrolment_token, auth.ENROLMENT_MINUTES * 60)
        return response
    except AuthenticationError as exc:
        return render(request, "sign_in.html", {"next": safe_next(next), "error": str(exc), "username": username},
                      status_code=401)  # fmt: skip
    response = redirect(safe_next(next))
    set_cookie(response, request, rt.settings, SESSION_COOKIE, result.token, rt.settings.session_max_hours * 3600)
    return response


@router.post("/sign-out")
def sign_out(request: Request, rt: Runtime) -> Response:
    """End the session and clear the cookie."""
    token = page_token(request)
    if token:
        with transaction(rt.session_factory) as session:
            auth.logout(session, token)
    response = redirect("/sign-in")
    clear_cookie(response, request, rt.settings, SESSION_COOKIE)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, scope: PageScope) -> Response:
    """The user's dashboard: the work awaiting them (overdue first, then by priority), their open cases, their
    latest searches, and what else they can do."""
    rt, actor = scope.rt, scope.actor
    recent = searching.recent_case_searches(rt, actor) if scope.may(Action.SEARCH) else []
    can_cases = scope.may(Action.VIEW_CASE, actor.agency_id)
    work = dashboard.work_items(rt, actor) if can_cases else []
    mine = dashboard.case_overviews(rt, actor, status="open", mine=True) if can_cases else []
    # Exigent searches awaiting ratification (lapsed ones flagged): supervisors, auditors, oversight. Audited only
    # when there is one to show (see regimes.list_ratifications).
    ratify = (regimes.list_ratifications(rt, actor, state="open", audit_when_empty=False)
              if scope.may(Action.VIEW_RATIFICATIONS, actor.agency_id) else [])
    return render(request, "home.html", {"searches": recent, "scope": scope, "work": work, "can_cases": can_cases,
                                         "overdue": [i for i in work if i.overdue], "mine": mine,
                                         "ratify": ratify})  # fmt: skip
