"""Small helpers shared by the page modules."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from faceleads.web.render import set_flash

NO_STORE = {"Cache-Control": "no-store"}


def page_router() -> APIRouter:
    """A router for pages (not in the OpenAPI schema; CSRF is attached when the app includes it)."""
    return APIRouter(include_in_schema=False)


def redirect(url: str) -> RedirectResponse:
    """Post/redirect/get: 303 to ``url``."""
    return RedirectResponse(url, status_code=303)


def done(request: Request, url: str, message: str) -> RedirectResponse:
    """Redirect after a change, with a success message shown (and announced) on the next page."""
    response = redirect(url)
    set_flash(response, request, message)
    return response
