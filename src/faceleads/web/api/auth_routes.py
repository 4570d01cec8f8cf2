"""Sign-in (password + TOTP or recovery code) for a bearer token, sign-out, and who am I."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from faceleads.core.uow import transaction
from faceleads.errors import SecondFactorEnrolmentRequired
from faceleads.security import auth
from faceleads.web.api.schemas import ERRORS, Me, SignInRequest, SignInResponse
from faceleads.web.deps import ApiActor, Runtime, bearer_token, run_blocking
from faceleads.web.errors import problem
from faceleads.web.security import client_address

router = APIRouter(prefix="/auth", tags=["auth"], responses=ERRORS)


@router.post(
    "/sign-in",
    response_model=SignInResponse,
    responses={
        429: {"description": "Too many attempts"},
        403: {"description": "A second factor is required and not enrolled: the problem carries `enrolment_token`, "
              "a short session for POST /api/v1/account/totp/enrol and /confirm only"},
    },
)
async def sign_in(body: SignInRequest, request: Request, rt: Runtime) -> SignInResponse | JSONResponse:
    """Exchange username, password and second factor for a session token (rate limited per address and user)."""
    try:
        result = await run_blocking(
            request,
            auth.authenticate,
            rt.session_factory,
            body.username,
            body.password,
            body.second_factor,
            settings=rt.settings,
            client=f"api {client_address(request)}",
            limiter=request.app.state.sign_in_limiter,
            address=client_address(request),
        )
    except SecondFactorEnrolmentRequired as exc:
        return problem(403, "Second factor required", str(exc), request, enrolment_token=exc.enrolment_token)
    return SignInResponse(
        token=result.token, expires_at=result.expires_at, second_factor=result.second_factor, user=Me.of(result.actor)
    )


@router.post("/sign-out", status_code=204)
def sign_out(request: Request, actor: ApiActor, rt: Runtime) -> Response:
    """End the current session (the token stops working at once)."""
    token = bearer_token(request)
    assert token is not None  # ApiActor already required it
    with transaction(rt.session_factory) as session:
        auth.logout(session, token)
    return Response(status_code=204)


@router.get("/me", response_model=Me)
def me(actor: ApiActor) -> Me:
    """The signed-in user, agency and effective roles."""
    return Me.of(actor)
