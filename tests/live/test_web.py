"""The live API and pages over the real runtime: prepare, authorise, start and stop through HTTP, the alert stream
(server-sent events read from the database), decisions, reports; and the refusals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from faceleads.db import utcnow
from faceleads.live import deployments
from faceleads.live.runner import DeploymentRunner
from faceleads.web.app import create_app
from tests.live.conftest import LiveEnv
from tests.security.identity_helpers import PASSWORD


@pytest.fixture(scope="module")
def client(live_env: LiveEnv) -> Iterator[TestClient]:
    with TestClient(create_app(live_env.settings, runtime=live_env.rt), base_url="http://127.0.0.1") as c:
        yield c


def token(client: TestClient, user: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/sign-in", json={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def body(env: LiveEnv, **overrides: Any) -> dict[str, Any]:
    now = utcnow()
    data: dict[str, Any] = {
        "watchlist_id": env.watchlist_id, "location": "Market Square", "legal_basis": "Force LFR policy v3",
        "purpose": "Wanted offenders at the hot spot", "start_at": (now - timedelta(seconds=5)).isoformat(),
        "end_at": (now + timedelta(hours=1)).isoformat(), "cameras": [{"name": "east", "source": str(env.video)}],
        "officers": ["officer"], "threshold": 0.4, "signage_confirmed": True, "signage_note": "signs on both corners",
    }  # fmt: skip
    data.update(overrides)
    return data


def events(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in text.split("\n\n"):
        kind, data = "", ""
        for line in block.splitlines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        if kind:
            out.append((kind, json.loads(data)))
    return out


def test_api_flow_with_alert_stream(live_env: LiveEnv, client: TestClient) -> None:
    env = live_env
    analyst, sup1, officer = token(client, "analyst"), token(client, "sup1"), token(client, "officer")
    r = client.post("/api/v1/live/deployments", json=body(env), headers=analyst)
    assert r.status_code == 201, r.text
    dep = r.json()
    assert dep["status"] == "draft" and dep["expected"]["false_alerts_per_1000"] is not None
    dep_id = dep["id"]
    assert client.post(f"/api/v1/live/deployments/{dep_id}/authorisation", json={}, headers=analyst).status_code == 403
    r = client.post(f"/api/v1/live/deployments/{dep_id}/authorisation", json={"note": "ok"}, headers=sup1)
    assert r.status_code == 200 and r.json()["status"] == "authorised"
    rate = client.get(f"/api/v1/live/watchlists/{env.watchlist_id}/expected-rate?threshold=0.4", headers=analyst)
    assert rate.status_code == 200 and "false alert" in rate.json()["sentence"]
    # Run the cameras as a separate process (as a second server would), not through this app.
    deployments.start_deployment(env.rt, env.actors["analyst"], dep_id)
    runner = DeploymentRunner(env.settings, realtime=False)
    runner.start(env.rt, dep_id)
    assert runner.join(dep_id, 240)
    runner.close()
    r = client.post(f"/api/v1/live/deployments/{dep_id}/stop", json={"note": "done"}, headers=analyst)
    assert r.status_code == 200 and r.json()["status"] == "ended"
    # The stream delivers every alert from the database, then the final status, then ends.
    with client.stream("GET", f"/api/v1/live/deployments/{dep_id}/alerts/stream", headers=officer) as s:
        assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
        got = events(s.read().decode())
    alerts = [d for k, d in got if k == "alert"]
    assert alerts and [k for k, _ in got][-1] == "end"
    assert any(k == "status" and d["status"] == "ended" for k, d in got)
    # Resuming after the last alert (Last-Event-ID) sends no alert again.
    last = str(alerts[-1]["id"])
    with client.stream("GET", f"/api/v1/live/deployments/{dep_id}/alerts/stream",
                       headers={**officer, "Last-Event-ID": last}) as s:  # fmt: skip
        assert not [k for k, _ in events(s.read().decode()) if k == "alert"]
    # Not a named officer: refused before any stream.
    assert client.get(f"/api/v1/live/deployments/{dep_id}/alerts/stream", headers=analyst).status_code == 403
    first = alerts[0]["id"]
    img = client.get(f"/api/v1/live/alerts/{first}/capture", headers=officer)
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    assert img.headers["cache-control"] == "no-store"
    assert client.get(f"/api/v1/live/alerts/{first}/capture", headers=analyst).status_code == 403
    r = client.post(f"/api/v1/live/alerts/{first}/decision", json={"decision": "false_alert"}, headers=officer)
    assert r.status_code == 200 and r.json()["decision"] == "false_alert"
    r = client.post(f"/api/v1/live/alerts/{first}/decision", json={"decision": "false_alert"}, headers=officer)
    assert r.status_code == 422 and "already decided" in r.json()["detail"]
    rep = client.get(f"/api/v1/live/deployments/{dep_id}/report", headers=token(client, "auditor"))
    assert rep.status_code == 200 and rep.json()["decisions"]["false_alert"] == 1
    pdf = client.get(f"/api/v1/live/deployments/{dep_id}/report.pdf", headers=analyst)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    stats = client.get("/api/v1/live/statistics", params={"since": "2020-01-01T00:00:00Z",
                                                          "until": "2100-01-01T00:00:00Z"},
                       headers=token(client, "auditor"))  # fmt: skip
    assert stats.status_code == 200 and stats.json()[0]["agency"] == "AGA"


def test_api_refusals(live_env: LiveEnv, client: TestClient) -> None:
    analyst = token(client, "analyst")
    too_long = body(live_env, end_at=(utcnow() + timedelta(hours=7)).isoformat())
    r = client.post("/api/v1/live/deployments", json=too_long, headers=analyst)
    assert r.status_code == 422 and "at most 6 h" in r.json()["detail"]
    r = client.post("/api/v1/live/deployments", json=body(live_env, threshold=2), headers=analyst)
    assert r.status_code == 422
    r = client.post("/api/v1/live/deployments", json=body(live_env), headers=token(client, "officer"))
    assert r.status_code == 403
    assert client.get("/api/v1/live/deployments").status_code == 401
    assert client.get("/api/v1/live/deployments", headers=token(client, "records")).status_code == 403


def test_pages(live_env: LiveEnv, client: TestClient) -> None:
    r = client.post("/sign-in", data={"username": "sup1", "password": PASSWORD, "csrf": "x"})
    page = client.get("/sign-in")
    csrf = page.cookies.get("fl_csrf") or client.cookies.get("fl_csrf")
    assert csrf
    r = client.post("/sign-in", data={"username": "sup1", "password": PASSWORD, "csrf": csrf},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    home = client.get("/live")
    assert home.status_code == 200 and "Live watch-list deployments" in home.text and 'href="/live"' in home.text
    assert client.get(f"/live/watchlists/{live_env.watchlist_id}").status_code == 200
    new = client.get("/live/deployments/new")
    assert new.status_code == 200 and 'name="officers"' in new.text
    info = deployments.create_deployment(live_env.rt, live_env.actors["analyst"], deployments.DeploymentInput(
        watchlist_id=live_env.watchlist_id, location="Bridge", legal_basis="policy", purpose="wanted",
        start_at=utcnow(), end_at=utcnow() + timedelta(hours=2), cameras=[deployments.CameraInput("c", "device:0")],
        officers=["officer"], threshold=0.45, signage_confirmed=True, signage_note="signs"))  # fmt: skip
    detail = client.get(f"/live/deployments/{info.id}")
    assert detail.status_code == 200 and "Expected false alert rate" in detail.text and "authorise-form" in detail.text
    r = client.post(f"/live/deployments/{info.id}/authorise", data={"csrf": csrf, "note": "ok"},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    assert "authorised by sup1" in client.get(f"/live/deployments/{info.id}").text
    report = client.get(f"/live/deployments/{info.id}/report")
    assert report.status_code == 200 and "False alert rate per 1,000 faces" in report.text
    # sup1 is not an alert officer of this deployment.
    assert client.get(f"/live/deployments/{info.id}/alerts").status_code == 403
