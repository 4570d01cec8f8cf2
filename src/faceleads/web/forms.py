"""Forms that keep what was typed: the page script submits a form with ``fetch`` (header ``X-Requested-With:
fetch``) and this module makes the answer something the script can act on without leaving the page.

- A success is a redirect (post/redirect/get); :class:`FetchRedirectMiddleware` turns it into ``200 {"redirect":
  url}`` so the script navigates there (cookies such as the success message set on the redirect still apply).
- A refusal or bad input is answered as problem details (``web.errors``) with a sentence for the user and, for
  fields, which field and why; the script shows it next to the form and leaves every field as it was.

Without JavaScript the forms post normally and errors show on an error page.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FETCH_HEADER = "x-requested-with"
FETCH_VALUE = "fetch"


def is_fetch(request: Request) -> bool:
    """Whether a page request comes from the page script's form submission."""
    return request.headers.get(FETCH_HEADER, "").lower() == FETCH_VALUE


class FetchRedirectMiddleware:
    """Answers a script-submitted form's redirect with ``200 {"redirect": location}`` (other headers kept)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", [])) if scope["type"] == "http" else {}
        if scope["type"] != "http" or headers.get(FETCH_HEADER.encode(), b"").lower() != FETCH_VALUE.encode():
            await self.app(scope, receive, send)
            return
        state: dict[str, object] = {}

        async def send_json_redirect(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (301, 302, 303, 307, 308):
                raw = dict(message.get("headers", []))
                location = raw.get(b"location", b"/").decode("latin-1")
                body = json.dumps({"redirect": location}).encode()
                kept = [(k, v) for k, v in message.get("headers", [])
                        if k.lower() not in (b"location", b"content-length", b"content-type")]  # fmt: skip
                kept += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                state["body"] = body
                await send({"type": "http.response.start", "status": 200, "headers": kept})
                return
            if message["type"] == "http.response.body" and "body" in state:
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": state["body"]})
                return
            await send(message)

        await self.app(scope, receive, send_json_redirect)


_MESSAGES: tuple[tuple[str, str], ...] = (
    (r"^Field required$", "is required"),
    (r"^String should have at most (\d+) characters?$", r"is too long (at most \1 characters)"),
    (r"^String should have at least (\d+) characters?$", r"is too short (at least \1 characters)"),
    (r"^Input should be a valid integer.*$", "must be a whole number"),
    (r"^Input should be a valid number.*$", "must be a number"),
    (r"^Input should be greater than or equal to (.+)$", r"must be at least \1"),
    (r"^Input should be less than or equal to (.+)$", r"must be at most \1"),
    (r"^String should match pattern .*$", "is not one of the choices offered"),
    (r"^Input should be a valid boolean.*$", "must be yes or no"),
    (r"^Value error, (.*)$", r"\1"),
)


def field_label(name: str) -> str:
    """'legal_basis' -> 'Legal basis'."""
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else "A field"


def friendly(msg: str) -> str:
    """A validation message for people ('Field required' -> 'is required')."""
    for pattern, replacement in _MESSAGES:
        if re.match(pattern, msg):
            return re.sub(pattern, replacement, msg)
    return msg[:1].lower() + msg[1:]


def field_errors(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    """[{"field": name, "message": "Notes is required"}] from FastAPI's validation errors of a form."""
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) or ()]
        name = loc[-1] if len(loc) > 1 else (loc[0] if loc else "")
        out.append({"field": name, "message": f"{field_label(name)} {friendly(str(err.get('msg', '')))}"})
    return out


__all__ = ["FetchRedirectMiddleware", "field_errors", "friendly", "is_fetch"]
