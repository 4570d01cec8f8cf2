"""Security by default: headers, cookies, CSRF, rate limiting, request size limits, error pages, open redirects."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from faceleads.security.throttle import SignInLimiter, TokenBucketLimiter
from tests.security.identity_helpers import PASSWORD
from tests.web.conftest import PEOPLE, WebEnv


def page_client(web: WebEnv, base_url: str = "http://127.0.0.1") -> TestClient:
    """A second browser-like client on the same app (its own cookie jar)."""
    return TestClient(web.client.app, base_url=base_url)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "every form carries a CSRF token"
    return match.group(1)


def browser_sign_in(client: TestClient, username: str) -> None:
    form = client.get("/sign-in")
    response = client.post("/sign-in", data={"csrf": csrf_of(form.text), "username": username, "password": PASSWORD},
                           follow_redirects=False)  # fmt: skip
    assert response.status_code == 303, response.text


def test_security_headers_everywhere(web: WebEnv) -> None:
    for path in ("/sign-in", "/api/v1/openapi.json", "/api/v1/auth/me", "/no-such-page", "/static/app.js"):
        response = web.client.get(path)
        headers = response.headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert "server" not in headers
        if not path.startswith("/static/"):
            assert headers["cache-control"] == "no-store", path


def test_no_inline_script_in_pages(web: WebEnv) -> None:
    client = page_client(web)
    browser_sign_in(client, "analyst")
    for path in ("/", "/probes", "/gallery"):
        html = client.get(path).text
        assert "<script>" not in html and " on" + "click=" not in html and "style=" not in html, path
        assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/app.js" defer>']


def test_session_cookie_attributes(web: WebEnv) -> None:
    client = page_client(web)
    form = client.get("/sign-in")
    csrf_cookie = form.headers["set-cookie"]
    assert "HttpOnly" in csrf_cookie and "SameSite=strict" in csrf_cookie
    response = client.post("/sign-in", data={"csrf": csrf_of(form.text), "username": "analyst", "password": PASSWORD},
                           follow_redirects=False)  # fmt: skip
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("fl_session=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    # Dev mode over plain http on loopback is the only case where Secure is left off ...
    assert "Secure" not in cookie
    # ... anywhere else the cookie is Secure.
    remote = page_client(web, "http://faceleads.example")
    form = remote.get("/sign-in")
    response = remote.post("/sign-in", data={"csrf": csrf_of(form.text), "username": "analyst",
                                             "password": PASSWORD}, follow_redirects=False)  # fmt: skip
    assert "Secure" in response.headers["set-cookie"]


def test_csrf_is_required_on_every_form(web: WebEnv) -> None:
    client = page_client(web)
    client.get("/sign-in")
    no_token = client.post("/sign-in", data={"username": "analyst", "password": PASSWORD}, follow_redirects=False)
    assert no_token.status_code == 403 and "security token" in no_token.text
    wrong = client.post("/sign-in", data={"csrf": "x" * 43, "username": "analyst", "password": PASSWORD},
                        follow_redirects=False)  # fmt: skip
    assert wrong.status_code == 403 and "security token" in wrong.text
    browser_sign_in(client, "analyst")
    token = csrf_of(client.get("/search").text)
    form = {"case": "OCC-1", "reason": "r", "legal_basis": "b"}
    with open(PEOPLE["AJ_Cook"][0], "rb") as fh:
        forged = client.post("/search", data={**form, "csrf": "forged-token-forged-token"}, files={"probe": fh},
                             follow_redirects=False)  # fmt: skip
    assert forged.status_code == 403 and "security token" in forged.text
    # A cross-site attacker's browser would not send the cookie, so the token cannot be matched without it.
    fresh = page_client(web)
    fresh.cookies.set("fl_session", client.cookies.get("fl_session") or "")
    with open(PEOPLE["AJ_Cook"][0], "rb") as fh:
        stolen = fresh.post("/search", data={**form, "csrf": token}, files={"probe": fh}, follow_redirects=False)
    assert stolen.status_code == 403
    draw = client.post("/case-probes/1/box", json={"box": [0, 0, 10, 10]})
    assert draw.status_code == 403, "JSON posts from scripts need the X-CSRF-Token header"


def test_pages_redirect_to_sign_in_and_no_open_redirect(web: WebEnv) -> None:
    client = page_client(web)
    response = client.get("/gallery", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/sign-in?next=/gallery"
    form = client.get("/sign-in?next=//evil.example/x")
    assert 'name="next" value="/"' in form.text
    response = client.post("/sign-in", data={"csrf": csrf_of(form.text), "username": "analyst", "password": PASSWORD,
                                             "next": "https://evil.example/"}, follow_redirects=False)  # fmt: skip
    assert response.headers["location"] == "/"


def test_sign_out_ends_the_session(web: WebEnv) -> None:
    client = page_client(web)
    browser_sign_in(client, "auditor")
    assert client.get("/audit").status_code == 200
    out = client.post("/sign-out", data={"csrf": csrf_of(client.get("/audit").text)}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/audit", follow_redirects=False).status_code == 303


def test_request_size_limit(web: WebEnv) -> None:
    limit = web.settings.web_max_request_bytes
    headers = {**web.headers("analyst"), "content-length": str(limit + 1)}
    response = web.client.post("/api/v1/faces/detect", headers=headers, content=b"x")
    assert response.status_code == 413 and response.json()["status"] == 413
    big = b"\xff\xd8" + b"0" * (web.settings.max_file_bytes + 10)
    response = web.client.post("/api/v1/faces/detect", headers=web.headers("analyst"), files={"image": ("b.jpg", big)})
    assert response.status_code == 413 and "larger than" in response.json()["detail"]


def test_token_bucket() -> None:
    now = [0.0]
    bucket = TokenBucketLimiter(2, 6, clock=lambda: now[0])  # 2 at once, one every 10 s
    assert bucket.take("k") == 0 and bucket.take("k") == 0
    assert bucket.take("k") == pytest.approx(10.0)
    assert bucket.take("other") == 0
    now[0] = 10.0
    assert bucket.take("k") == 0
    limiter = SignInLimiter(clock=lambda: now[0])
    for _ in range(5):
        limiter.check("1.2.3.4", "Bob")
    with pytest.raises(Exception, match="too many sign-in attempts"):
        limiter.check("1.2.3.4", " bob ")  # same user whatever the case and spaces
    limiter.check("5.6.7.8", "bob")


def test_error_pages_are_html_and_api_errors_json(web: WebEnv) -> None:
    client = page_client(web)
    browser_sign_in(client, "auditor")
    page = client.get("/gallery")
    assert page.status_code == 403 and "text/html" in page.headers["content-type"] and "may not" in page.text
    missing = client.get("/no-such-page")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    api = web.client.get("/api/v1/no-such-route")
    assert api.status_code == 404 and api.headers["content-type"] == "application/problem+json"
