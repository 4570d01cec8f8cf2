"""Small helpers shared by the page modules."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

NO_STORE = {"Cache-Control": "no-store"}


def page_router() -> APIRouter:
    """A router for pages (not in the OpenAPI schema; CSRF is attached when the app includes it)."""
    return APIRouter(include_in_schema=False)


def redirect(url: str) -> RedirectResponse:
    """Post/redirect/get: 303 to ``url``."""
    return RedirectResponse(url, status_code=303)
