"""Alert review by named officers (audited views and decisions), the deployment report (JSON, PDF), per-agency
statistics and alert retention (crypto-shredding)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from faceleads.core.audit import AuditEntry
from faceleads.db import utcnow
from faceleads.errors import KeyDestroyedError, NotFound, PermissionDenied, ValidationError
from faceleads.live import alerts, deployments, reports
from faceleads.live.models import LiveAlert
from faceleads.live.runner import DeploymentRunner
from tests.live.conftest import LiveEnv
from tests.live.helpers import authorised


@pytest.fixture(scope="module")
def ran(live_env: LiveEnv) -> int:
    """A deployment run to the end of the street video (officers: officer, sup2)."""
    info = authorised(live_env, officers=["officer", "sup2"])
    deployments.start_deployment(live_env.rt, live_env.actors["analyst"], info.id)
    runner = DeploymentRunner(live_env.settings, realtime=False)
    runner.start(live_env.rt, info.id)
    assert runner.join(info.id, 240)
    runner.close()
    deployments.stop_deployment(live_env.rt, live_env.actors["analyst"], info.id, "video ended")
    return info.id


def audit_count(env: LiveEnv, action: str, outcome: str = "ok") -> int:
    with env.rt.session_factory() as session:
        return len(session.scalars(select(AuditEntry).where(AuditEntry.action == action,
                                                            AuditEntry.outcome == outcome)).all())  # fmt: skip


def test_named_officers_review_alerts(live_env: LiveEnv, ran: int) -> None:
    env = live_env
    views = audit_count(env, "live_alert_view")
    listed = alerts.list_alerts(env.rt, env.actors["officer"], ran)
    assert listed, "the run raised no alert"
    assert audit_count(env, "live_alert_view") == views + len(listed)
    assert {a.subject_number for a in listed} <= set(env.listed.values())
    first = listed[0]
    assert first.reason.startswith("WARRANT-") and first.score >= 0.40 and first.decision == "pending"
    images = audit_count(env, "live_alert_image")
    capture = alerts.alert_image(env.rt, env.actors["officer"], first.id, "capture")
    photo = alerts.alert_image(env.rt, env.actors["officer"], first.id, "watchlist")
    assert capture[:2] == b"\xff\xd8" and len(photo) > 1000
    assert audit_count(env, "live_alert_image") == images + 2
    # Not named on the deployment, or not allowed to see alerts at all: refused and audited.
    denied = audit_count(env, "live_review_alert", "denied")
    for who in ("officer2", "analyst", "sup1"):
        with pytest.raises(PermissionDenied, match="not one of the alert officers"):
            alerts.list_alerts(env.rt, env.actors[who], ran)
    with pytest.raises(PermissionDenied):
        alerts.alert_image(env.rt, env.actors["officer2"], first.id, "capture")
    with pytest.raises(PermissionDenied, match="live review alert"):
        alerts.list_alerts(env.rt, env.actors["auditor"], ran)
    with pytest.raises(NotFound):
        alerts.alert_image(env.rt, env.actors["sup-b"], first.id, "capture")
    assert audit_count(env, "live_review_alert", "denied") >= denied + 4
    assert alerts.list_alerts(env.rt, env.actors["sup2"], ran, after_id=listed[-1].id) == []


def test_decisions(live_env: LiveEnv, ran: int) -> None:
    env = live_env
    pending = [a for a in alerts.list_alerts(env.rt, env.actors["officer"], ran) if a.decision == "pending"]
    assert pending
    alert = pending[0]
    with pytest.raises(ValidationError, match="needs a note"):
        alerts.decide_alert(env.rt, env.actors["officer"], alert.id, "confirmed", "")
    with pytest.raises(ValidationError, match="decision must be"):
        alerts.decide_alert(env.rt, env.actors["officer"], alert.id, "arrested", "x")
    with pytest.raises(PermissionDenied):
        alerts.decide_alert(env.rt, env.actors["officer2"], alert.id, "false_alert", "")
    before = audit_count(env, "live_alert_decision")
    done = alerts.decide_alert(env.rt, env.actors["officer"], alert.id, "confirmed", "stopped and spoken to, ref 55")
    assert done.decision == "confirmed" and done.decided_by == "officer"
    assert audit_count(env, "live_alert_decision") == before + 1
    with pytest.raises(ValidationError, match="already decided"):
        alerts.decide_alert(env.rt, env.actors["sup2"], alert.id, "false_alert", "")
    for other in pending[1:]:
        alerts.decide_alert(env.rt, env.actors["sup2"], other.id, "false_alert", "not the person")


def test_report_and_pdf(live_env: LiveEnv, ran: int) -> None:
    env = live_env
    data = reports.report_data(env.rt, env.actors["auditor"], ran)
    assert data["deployment"]["status"] == "ended" and data["deployment"]["stop_reason"] == "operator"
    assert data["frames"] > 50 and data["frames_dropped"] == 0
    assert data["tracks"] >= len(env.listed) + len(env.unlisted)
    assert data["faces_detected"] >= data["tracks"]
    assert data["alerts"] == sum(data["decisions"].values()) >= 1
    assert data["decisions"]["confirmed"] == 1
    expected_rate = round(1000 * data["decisions"]["false_alert"] / data["tracks"], 4)
    assert data["false_alert_rate_per_1000_faces"] == expected_rate
    assert data["watchlist_frozen_size"] == len(env.listed) and len(data["watchlist_frozen_sha256"]) == 64
    assert data["duration_s"] > 0 and data["expected_false_alerts_per_1000"] is not None
    pdf = reports.render_pdf(data)
    from pypdf import PdfReader

    content = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert f"deployment {ran}" in content and "False alert rate per 1,000" in content
    assert "never identifications" in content
    with pytest.raises(PermissionDenied):
        reports.report_data(env.rt, env.actors["records"], ran)
    with pytest.raises(NotFound):
        reports.report_data(env.rt, env.actors["sup-b"], ran)


def test_statistics_for_the_transparency_report(live_env: LiveEnv, ran: int) -> None:
    env = live_env
    since, until = utcnow() - timedelta(days=1), utcnow() + timedelta(minutes=1)
    rows = reports.deployment_statistics(env.rt, env.actors["auditor"], since, until)
    aga = next(r for r in rows if r.agency == "AGA")
    assert aga.deployments >= 1 and aga.alerts >= 1 and aga.confirmed >= 1 and aga.faces_passing > 0
    assert aga.to_json()["false_alert_rate_per_1000_faces"] is not None
    assert reports.deployment_statistics(env.rt, env.actors["auditor"], until, until + timedelta(days=1)) == []
    with pytest.raises(PermissionDenied):
        reports.deployment_statistics(env.rt, env.actors["officer"], since, until)


def test_alert_retention_deletes_captures(live_env: LiveEnv, ran: int) -> None:
    env = live_env
    with env.rt.session_factory() as session:
        rows = session.scalars(select(LiveAlert).where(LiveAlert.deployment_id == ran)).all()
        keys = {a.id: (a.key_id, a.capture_address) for a in rows}
        horizon = max(a.retention_until for a in rows)
    assert all(address for _, address in keys.values())
    early = alerts.purge_expired_alerts(env.rt, env.actors["records"])
    assert early.alerts == 0  # nothing is due yet (the agency keeps alerts 31 days)
    with pytest.raises(PermissionDenied):
        alerts.purge_expired_alerts(env.rt, env.actors["officer"])
    dry = alerts.purge_expired_alerts(env.rt, env.actors["records"], now=horizon + timedelta(seconds=1), dry_run=True)
    assert dry.alerts >= len(keys)
    report = alerts.purge_expired_alerts(env.rt, env.actors["records"], now=horizon + timedelta(seconds=1))
    assert report.alerts >= len(keys) and report.blobs_deleted >= len(keys)
    for key_id, address in keys.values():
        with pytest.raises(KeyDestroyedError):
            env.rt.keystore.get(key_id)
        assert not env.rt.store.path_for(address).exists()
    first = next(iter(keys))
    with pytest.raises(NotFound, match="retention"):
        alerts.alert_image(env.rt, env.actors["officer"], first, "capture")
    listed = alerts.list_alerts(env.rt, env.actors["officer"], ran)
    assert all(a.purged for a in listed)
    assert all(a.decision_note in ("", "[purged under retention rules]") for a in listed)
    # The counts stay for the report and the statistics.
    assert reports.report_data(env.rt, env.actors["auditor"], ran)["alerts"] == len(keys)
