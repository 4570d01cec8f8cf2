"""Jinja2 rendering of the web pages: autoescaped templates, the CSRF token and the signed-in user in every page."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from faceleads.core.actor import Actor, Role
from faceleads.core.policy import Action, allowed
from faceleads.web.security import CSRF_COOKIE, clear_cookie, csrf_token, set_cookie

TEMPLATES_DIR = __import__("pathlib").Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.autoescape = True

NAV: tuple[tuple[str, str, Action | tuple[Action, ...] | None], ...] = (
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
    ("Examiner QA", "/qa", Action.VIEW_STATISTICS),  # per examiner for supervisors, per agency for auditors
    ("Ratifications", "/ratifications", Action.VIEW_RATIFICATIONS),
    ("Partner access", "/partner-access", Action.VIEW_PARTNER_ACCESS),
    ("Administration", "/admin", Action.VIEW_USERS),
    ("Approvals", "/approvals", (Action.VIEW_USERS, Action.APPROVE_ACCESS_BOOTSTRAP)),
    ("Regimes", "/regimes", (Action.ADMIN_REGIMES, Action.VIEW_CASE, Action.VIEW_RATIFICATIONS)),
    ("Agencies", "/operator", Action.ADMIN_AGENCIES),
)

FLASH_COOKIE = "fl_flash"

# Words for the codes the services use (statuses, conclusions, priorities), so that no page shows a raw code.
LABELS: dict[str, str] = {
    "awaiting_verification": "Awaiting blind verification",
    "awaiting_authorisation": "Awaiting a supervisor's authorisation",
    "disputed": "Disputed: a supervisor decides",
    "verified": "Verified",
    "rejected": "Rejected",
    "released": "Released to the investigator",
    "ready": "Ready to search",
    "refused": "Refused",
    "adjudicating": "Being adjudicated",
    "submitted": "Conclusions submitted",
    "open": "Open",
    "closed": "Closed",
    "purged": "Purged (retention)",
    "excluded": "Excluded",
    "possible_lead": "Possible lead",
    "inconclusive": "Inconclusive",
    "agree": "Agreed",
    "disagree": "Disagreed",
    "similar": "Similar",
    "dissimilar": "Dissimilar",
    "not_visible": "Not visible",
    "routine": "Routine",
    "urgent": "Urgent",
    "threat_to_life": "Threat to life",
    "requested": "Requested",
    "approved": "Approved",
    "denied": "Denied",
    "executing": "Being executed",
    "completed": "Completed",
    "photo": "Photo",
    "video_frame": "Video frame",
}


def label(code: object) -> str:
    """The words for a status or conclusion code (the code itself, made readable, when unknown)."""
    text = str(code or "")
    return LABELS.get(text, text.replace("_", " ").capitalize())


def when(value: object, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A time for people: UTC, to the minute."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        return str(value)
    return moment.strftime(fmt) + " UTC"


def percent(value: object) -> str:
    """0.8333 -> '83%' ('—' for no value)."""
    return "—" if value is None else f"{float(value) * 100:.0f}%"  # type: ignore[arg-type]


def duration(seconds: object) -> str:
    """Seconds for people: '45 s', '3.5 min', '2.1 h' ('—' for no value)."""
    if seconds is None:
        return "—"
    value = float(seconds)  # type: ignore[arg-type]
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


WORK_LINKS: dict[str, str] = {
    "authorise": "/decisions#request-{ref}",
    "override": "/case-probes/{ref}",
    "prepare": "/case-probes/{ref}",
    "adjudicate": "/case-searches/{ref}",
    "verify": "/leads/{ref}/verify",
    "decide": "/leads/{ref}/dispute",
    "release": "/cases/{case}#leads",
    "receive": "/cases/{case}#leads",
}


def work_href(item: Any) -> str:
    """Where a work item (:class:`faceleads.casework.dashboard.WorkItem`) is done."""
    return WORK_LINKS.get(item.kind, "/cases/{case}").format(ref=item.ref_id, case=item.case_id)


templates.env.filters.update(label=label, when=when, percent=percent, duration=duration, work_href=work_href)


def set_flash(response: Any, request: Request, message: str) -> None:
    """Show ``message`` on the next page the browser renders (a short-lived, HttpOnly cookie set by the server)."""
    set_cookie(response, request, request.app.state.settings, FLASH_COOKIE, quote(message[:400]), 120)


def nav_for(actor: Actor | None) -> list[tuple[str, str]]:
    """Navigation links the actor's roles make useful (the routes still ask the policy)."""
    if actor is None:
        return []
    def shown(action: Action | tuple[Action, ...] | None) -> bool:
        if action is None:
            return True
        return any(allowed(actor, a) for a in (action if isinstance(action, tuple) else (action,)))

    return [(text, href) for text, href, action in NAV if shown(action)]


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    """Render a template with the common context; sets the CSRF cookie when the browser has none yet."""
    actor: Actor | None = getattr(request.state, "actor", None)
    flash = unquote(request.cookies.get(FLASH_COOKIE, ""))[:400]
    ctx: dict[str, Any] = {
        "actor": actor,
        "roles": sorted(r.value for r in actor.roles) if actor else [],
        "nav": nav_for(actor),
        "csrf": csrf_token(request),
        "path": request.url.path,
        "Role": Role,
        "Action": Action,
        "flash": flash,
    }
    ctx.update(context or {})
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    new = getattr(request.state, "new_csrf", None)
    if new:
        set_cookie(response, request, request.app.state.settings, CSRF_COOKIE, new, 12 * 3600)
    if flash:
        clear_cookie(response, request, request.app.state.settings, FLASH_COOKIE)
    return response


def render_error(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    """An error page naming the problem."""
    return render(request, "error.html", {"status": status, "title": title, "detail": detail}, status_code=status)
