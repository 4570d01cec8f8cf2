"""Errors as RFC 9457 problem details for the API, and as an HTML page (or a sign-in redirect) for the web pages.

Every expected error is a :class:`faceleads.errors.FaceleadsError` subclass; each maps to one HTTP status here, so
bad input is a 4xx naming the problem and never a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from faceleads.errors import (
    AuthenticationError,
    ConfigurationError,
    FaceleadsError,
    ImageError,
    IntegrityError,
    KeyDestroyedError,
    ModelError,
    NoFaceError,
    NotFound,
    PermissionDenied,
    TooManyRequests,
    ValidationError,
)

log = logging.getLogger("faceleads.web")

PROBLEM_JSON = "application/problem+json"

# Most specific first: the first matching class decides the status.
STATUS_FOR: tuple[tuple[type[FaceleadsError], int, str], ...] = (
    (AuthenticationError, 401, "Not signed in"),
    (PermissionDenied, 403, "Forbidden"),
    (NotFound, 404, "Not found"),
    (KeyDestroyedError, 410, "Destroyed"),
    (IntegrityError, 409, "Integrity check failed"),
    (NoFaceError, 422, "No face"),
    (ImageError, 422, "Image refused"),
    (ValidationError, 422, "Invalid input"),
    (ConfigurationError, 503, "Server misconfigured"),
    (ModelError, 503, "Face models unavailable"),
)


class PayloadTooLarge(ValidationError):
    """The request body exceeds the configured limit."""


class Conflict(ValidationError):
    """The request contradicts stored state (e.g. a duplicate)."""


def status_for(exc: FaceleadsError) -> tuple[int, str]:
    """HTTP status and short title for an expected error."""
    if isinstance(exc, TooManyRequests):
        return 429, "Too many requests"
    if isinstance(exc, PayloadTooLarge):
        return 413, "Request too large"
    if isinstance(exc, Conflict) or type(exc).__name__ == "EnrolmentConflict":
        return 409, "Conflict"
    for cls, status, title in STATUS_FOR:
        if isinstance(exc, cls):
            return status, title
    return 400, "Bad request"


def is_api(request: Request) -> bool:
    """Whether the request is for the JSON API (problem details) rather than a web page."""
    return request.url.path.startswith("/api/")


def problem(status: int, title: str, detail: str, request: Request, **extra: Any) -> JSONResponse:
    """A problem-details response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    body.update(extra)
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _page_error(request: Request, status: int, title: str, detail: str, **extra: Any) -> Response:
    from faceleads.web.forms import is_fetch

    if is_fetch(request):
        # The page script keeps the form as typed and shows the problem beside it.
        if status == 401:
            extra["redirect"] = "/sign-in"
        return problem(status, title, _sentence(detail), request, **extra)
    if status == 401:
        return RedirectResponse("/sign-in?next=" + _safe_next(request), status_code=303)
    from faceleads.web.render import render_error

    return render_error(request, status, title, _sentence(detail))


def _sentence(detail: str) -> str:
    """Service messages start in lower case (they are also log lines); on a page they start a sentence."""
    text = detail.strip()
    return text[:1].upper() + text[1:] if text else text


def _safe_next(request: Request) -> str:
    from urllib.parse import quote

    path = request.url.path
    return quote(path if path.startswith("/") and not path.startswith("//") else "/", safe="/")


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""

    @app.exception_handler(FaceleadsError)
    async def _expected(request: Request, exc: FaceleadsError) -> Response:
        status, title = status_for(exc)
        response: Response
        if is_api(request):
            response = problem(status, title, str(exc), request)
        else:
            response = _page_error(request, status, title, str(exc))
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", ""))} for err in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(e['loc'][1:]) or e['loc'][0] if e['loc'] else '?'}: {e['msg']}" for e in errors)
        if is_api(request):
            return problem(422, "Invalid input", detail or "invalid request", request, errors=errors)
        from faceleads.web.forms import field_errors

        fields = field_errors(errors)
        return _page_error(request, 422, "Please check the form", "; ".join(f["message"] for f in fields),
                           fields=fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        title = {404: "Not found", 405: "Method not allowed", 413: "Request too large"}.get(exc.status_code, "Error")
        detail = str(exc.detail) if exc.detail else title
        if is_api(request):
            response: Response = problem(exc.status_code, title, detail, request)
        else:
            response = _page_error(request, exc.status_code, title, detail)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # A bug, not bad input: log it with the traceback, tell the client nothing internal.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        if is_api(request):
            return problem(500, "Internal error", "an unexpected error occurred; it has been logged", request)
        return _page_error(request, 500, "Internal error", "an unexpected error occurred; it has been logged")
