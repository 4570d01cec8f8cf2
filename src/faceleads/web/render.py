"""Jinja2 rendering of the web pages: autoescaped templates, the CSRF token and the signed-in user in every page."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from faceleads.core.actor import Actor, Role
from faceleads.core.policy import Action, allowed
from faceleads.web.security import CSRF_COOKIE, csrf_token, set_cookie

TEMPLATES_DIR = __import__("pathlib").Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.autoescape = True

NAV: tuple[tuple[str, str, Action | None], ...] = (
    ("Home", "/", None),
    ("Cases", "/cases", Action.VIEW_CASE),
    ("Verification", "/verification", Action.VERIFY),
    ("Decisions", "/decisions", Action.AUTHORISE_EXCEPTION),
    ("Quick search", "/search", Action.SEARCH),
    ("Gallery", "/gallery", Action.VIEW_GALLERY_RECORD),
    ("Enrolment", "/enrol", Action.ENROL),
    ("Destruction", "/destruction", Action.VIEW_DESTRUCTION),
    ("Lawful gallery", "/lawful", Action.VIEW_RECORDS_POLICY),
    ("Outcomes", "/outcomes", Action.VIEW_CASE),
    ("Transparency", "/transparency", Action.TRANSPARENCY_REPORT),
    ("Live", "/live", Action.LIVE_VIEW),
    ("Audit log", "/audit", Action.AUDIT_READ),
    ("Statistics", "/statistics", Action.VIEW_STATISTICS),
    ("Administration", "/admin", Action.VIEW_USERS),
)


def nav_for(actor: Actor | None) -> list[tuple[str, str]]:
    """Navigation links the actor's roles make useful (the routes still ask the policy)."""
    if actor is None:
        return []
    return [(label, href) for label, href, action in NAV if action is None or allowed(actor, action)]


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    """Render a template with the common context; sets the CSRF cookie when the browser has none yet."""
    actor: Actor | None = getattr(request.state, "actor", None)
    ctx: dict[str, Any] = {
        "actor": actor,
        "roles": sorted(r.value for r in actor.roles) if actor else [],
        "nav": nav_for(actor),
        "csrf": csrf_token(request),
        "path": request.url.path,
        "Role": Role,
    }
    ctx.update(context or {})
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    new = getattr(request.state, "new_csrf", None)
    if new:
        set_cookie(response, request, request.app.state.settings, CSRF_COOKIE, new, 12 * 3600)
    return response


def render_error(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    """An error page naming the problem."""
    return render(request, "error.html", {"status": status, "title": title, "detail": detail}, status_code=status)
