"""Security by default for every response and request: headers, cookies, CSRF, sign-in rate limit, upload limits.

- **Headers** on every response: a Content-Security-Policy without inline script (``script-src 'self'``), no
  framing, no MIME sniffing, no referrer; ``Cache-Control: no-store`` on everything but static assets.
- **Cookies**: the session cookie is ``HttpOnly``, ``SameSite=Strict`` and ``Secure``. ``Secure`` is relaxed only in
  dev mode for plain http on a loopback address (``make run`` on http://127.0.0.1:8000).
- **CSRF**: double-submit. A random ``fl_csrf`` cookie (HttpOnly, SameSite=Strict) is set on the first page view;
  every form carries the same value in a hidden ``csrf`` field (scripts send it as ``X-CSRF-Token``, read from a
  ``<meta>`` tag). Unsafe page requests whose token does not match are refused. The API uses bearer tokens, which a
  browser never sends by itself, so it needs no CSRF token.
- **Rate limiting** of sign-in lives in :mod:`faceleads.security.throttle` (refusals are audited there).
- **Request size**: bodies larger than the limit are refused (413) before they are read.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import Request, Response, UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faceleads.config import Settings
from faceleads.errors import PermissionDenied, ValidationError
from faceleads.web.errors import PayloadTooLarge

SESSION_COOKIE = "fl_session"
CSRF_COOKIE = "fl_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


class SecurityHeadersMiddleware:
    """Adds the security headers (and ``no-store`` except for static assets) to every HTTP response.

    Written as plain ASGI middleware so that streamed responses and error responses get the headers too.
    """

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                present = {k.lower() for k, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.lower().encode() not in present:
                        headers.append((name.lower().encode(), value.encode()))
                if not static and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                if self.hsts:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimitMiddleware:
    """Refuses request bodies larger than ``limit`` bytes with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.limit:
                    await _send_413(scope, send, self.limit)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise PayloadTooLarge(f"request body larger than {self.limit} bytes")
            return message

        await self.app(scope, limited_receive, send)


async def _send_413(scope: Scope, send: Send, limit: int) -> None:
    import json

    path = str(scope.get("path", ""))
    body = json.dumps(
        {
            "type": "about:blank",
            "title": "Request too large",
            "status": 413,
            "detail": f"request body larger than {limit} bytes (or without a valid Content-Length)",
            "instance": path,
        }
    ).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
    headers.append((b"cache-control", b"no-store"))
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --- cookies ---------------------------------------------------------------------------------------------------


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` is a loopback address or ``localhost``."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def cookie_secure(request: Request, settings: Settings) -> bool:
    """Secure cookies always, except dev mode over plain http on a loopback address."""
    return not (settings.is_dev and request.url.scheme == "http" and is_loopback(request.url.hostname))


def set_cookie(response: Response, request: Request, settings: Settings, name: str, value: str, max_age: int) -> None:
    """Set a cookie HttpOnly, SameSite=Strict, Secure (see :func:`cookie_secure`), path /."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=cookie_secure(request, settings),
        httponly=True,
        samesite="strict",
    )


def clear_cookie(response: Response, request: Request, settings: Settings, name: str) -> None:
    """Remove a cookie (same attributes as when it was set)."""
    response.delete_cookie(
        name, path="/", secure=cookie_secure(request, settings), httponly=True, samesite="strict"
    )


# --- CSRF ------------------------------------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """The CSRF token for this browser: the ``fl_csrf`` cookie, or a fresh one (set on the response by the page
    middleware via ``request.state.new_csrf``)."""
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and 20 <= len(existing) <= 100:
        return existing
    token = getattr(request.state, "new_csrf", None)
    if token is None:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return str(token)


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse (403) unless ``submitted`` equals the browser's CSRF cookie."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted or not hmac.compare_digest(cookie.encode(), submitted.encode()):
        raise PermissionDenied("the form's security token is missing or stale: reload the page and try again")


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def csrf_protect(request: Request) -> None:
    """Router-level dependency of every page router: a state-changing request must carry the browser's CSRF token,
    in the ``X-CSRF-Token`` header (scripts) or the ``csrf`` form field (forms). Safe methods pass.

    It runs before the route's own dependencies (who is signed in, what the route does), so a forged request is
    refused before anything is read or changed. FastAPI has already parsed a form body by then; Starlette caches
    it, so reading it here costs nothing.
    """
    if request.method not in UNSAFE_METHODS:
        return
    submitted = request.headers.get(CSRF_HEADER)
    if not submitted and request.headers.get("content-type", "").startswith(FORM_TYPES):
        value = (await request.form()).get(CSRF_FIELD)
        submitted = value if isinstance(value, str) else None
    check_csrf(request, submitted)


def client_address(request: Request) -> str:
    """The client's address (the direct peer: no proxy headers are trusted by default)."""
    return request.client.host if request.client else "unknown"


# --- uploads ---------------------------------------------------------------------------------------------------


async def read_upload(upload: UploadFile, limit: int, what: str = "upload") -> bytes:
    """Read an uploaded file fully, refusing it as soon as it exceeds ``limit`` bytes; refuse empty files."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await upload.read(1024 * 1024)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"{what} is larger than {limit} bytes")
        chunks.append(chunk)
    if size == 0:
        raise ValidationError(f"{what} is empty")
    return b"".join(chunks)


PageHandler = Callable[[Request], Awaitable[Response]]


async def save_upload(upload: UploadFile, path: Path, limit: int, what: str = "upload") -> int:
    """Stream an uploaded file to ``path`` (created 0600), refusing it once it exceeds ``limit`` bytes."""
    size = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := await upload.read(1024 * 1024):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"{what} is larger than {limit} bytes")
            out.write(chunk)
    if size == 0:
        raise ValidationError(f"{what} is empty")
    return size
