"""CSRF is a router-level dependency of every page router: this test enumerates EVERY state-changing route of the
app (from the app's own route table, so a route added later is covered without touching the test) and checks that
each refuses a missing or a wrong token before anything happens (the audit log does not move), while the REST API,
which takes bearer tokens only, refuses the session cookie altogether."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from faceleads.core.audit import AuditEntry
from faceleads.web.security import CSRF_HEADER, UNSAFE_METHODS
from tests.web.conftest import WebEnv
from tests.web.test_security import browser_sign_in, csrf_of, page_client

PARAMS = {"username": "analyst", "job_id": "0" * 32}


def _path(template: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PARAMS.get(m.group(1), "1"), template)


def state_changing_routes(web: WebEnv) -> list[tuple[str, str]]:
    """(method, path template) of every route of the app that is not a safe method."""
    from fastapi import routing

    # FastAPI >= 0.16x keeps included routers as lazy branches; iter_route_contexts flattens them with the prefix.
    contexts = routing.iter_route_contexts(web.client.app.routes)
    routes = []
    for route in contexts:
        if route.path is not None and route.methods:
            routes += [(method, route.path) for method in sorted(set(route.methods) & UNSAFE_METHODS)]
    return routes


def _audit_head(web: WebEnv) -> int:
    with web.rt.session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def test_every_state_changing_route_refuses_a_missing_or_wrong_csrf_token(web: WebEnv) -> None:
    routes = state_changing_routes(web)
    pages = [(m, p) for m, p in routes if not p.startswith("/api/")]
    api = [(m, p) for m, p in routes if p.startswith("/api/")]
    # The app has many of both; a test over an empty list could not fail.
    assert len(pages) >= 30 and len(api) >= 30, (len(pages), len(api))
    client = page_client(web)
    browser_sign_in(client, "supervisor")
    token = csrf_of(client.get("/").text)
    wrong = "w" * len(token)
    for method, template in pages:
        path = _path(template)
        before = _audit_head(web)
        attempts = {
            "no token": {"data": {"reason": "x"}},
            "wrong form token": {"data": {"csrf": wrong, "reason": "x"}},
            "wrong header token": {"headers": {CSRF_HEADER: wrong}, "json": {"box": [0, 0, 10, 10]}},
            "wrong multipart token": {"data": {"csrf": wrong}, "files": {"photo": ("x.jpg", b"\xff\xd8")}},
        }
        for what, kwargs in attempts.items():
            response = client.request(method, path, follow_redirects=False, **kwargs)  # type: ignore[arg-type]
            assert response.status_code == 403, (method, path, what, response.status_code)
            assert "security token" in response.text, (method, path, what)
        assert _audit_head(web) == before, f"{method} {path}: a forged request reached a service"
    # The session cookie alone never authenticates an API call: there is nothing for a forged form to ride on.
    for method, template in api:
        if template == "/api/v1/auth/sign-in":
            continue  # takes credentials, not a session
        response = client.request(method, _path(template), json={}, headers={CSRF_HEADER: token})
        assert response.status_code == 401, (method, template, response.status_code)


def test_the_right_token_passes(web: WebEnv) -> None:
    client = page_client(web)
    browser_sign_in(client, "auditor")
    page = client.get("/audit")
    verified = client.post("/audit/verify", data={"csrf": csrf_of(page.text)})
    assert verified.status_code == 200 and "Chain intact" in verified.text
    out = client.post("/sign-out", headers={CSRF_HEADER: csrf_of(page.text)}, follow_redirects=False)
    assert out.status_code == 303
