"""Running deployments with real camera worker processes: alerts for listed people only, nothing kept of anyone
else (database, data directory, logs, temporary files), the automatic stop at the stored end time, and entries
dropping out of a running deployment's memory."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, inspect, select, text

from faceleads.core.audit import AuditEntry, head, verify_chain
from faceleads.core.uow import transaction
from faceleads.db import utcnow
from faceleads.errors import ValidationError
from faceleads.gallery.models import Subject, SubjectStatus
from faceleads.live import alerts, camera_control, deployments
from faceleads.live.camera_control import capture_context
from faceleads.live.models import Deployment, DeploymentCamera, FrozenEntry, LiveAlert
from faceleads.live.pipeline import AlertEvent
from faceleads.live.runner import DeploymentRunner
from faceleads.vision.imaging import load_image
from tests.live.conftest import LiveEnv, build_video
from tests.live.helpers import authorised

# The only log lines a camera worker may write: lifecycle and counts, never a face, box, score or frame.
ALLOWED_LOG = [
    re.compile(r"live deployment \d+ camera \d+ started \(\d+ listed people\)$"),
    re.compile(r"live deployment \d+ camera \d+ (stopped|failed): \{'frames': \d+, 'faces': \d+, "
               r"'faces_compared': \d+, 'tracks': \d+, 'alerts': \d+\}$"),
    re.compile(r"live deployment \d+ camera \d+: \d+ entries dropped from the list in memory$"),
]


def table_counts(env: LiveEnv) -> dict[str, int]:
    with env.rt.db_engine.connect() as conn:
        names = inspect(conn).get_table_names()
        return {n: conn.execute(text(f'SELECT COUNT(*) FROM "{n}"')).scalar_one() for n in names}


def data_files(env: LiveEnv) -> set[Path]:
    return {p for p in env.settings.data_dir.rglob("*") if p.is_file()}


def run_to_end(env: LiveEnv, deployment_id: int, timeout: float = 240.0) -> None:
    runner = DeploymentRunner(env.settings, realtime=False)
    assert runner.start(env.rt, deployment_id) == 1
    assert runner.join(deployment_id, timeout), "the camera worker did not finish"
    runner.close()


def test_nothing_is_kept_of_people_who_do_not_match(
    live_env: LiveEnv, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, engine: Any
) -> None:
    env = live_env
    info = authorised(env)
    started = deployments.start_deployment(env.rt, env.actors["analyst"], info.id)
    assert started.status == "running" and started.frozen_size == len(env.listed)
    worker_tmp = tmp_path / "worker-tmp"
    worker_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(worker_tmp))  # the spawned worker's temporary directory
    counts_before, files_before = table_counts(env), data_files(env)
    with env.rt.session_factory() as session:
        seq_before = head(session)[0]
    capfd.readouterr()
    run_to_end(env, info.id)
    logs = capfd.readouterr().err

    with env.rt.session_factory() as session:
        cam = session.scalars(select(DeploymentCamera).where(DeploymentCamera.deployment_id == info.id)).one()
        rows = session.scalars(select(LiveAlert).where(LiveAlert.deployment_id == info.id)).all()
        listed_ids = {env.subjects[n] for n in env.listed.values()}
        alerted = {a.subject_id for a in rows}
        new_audit = session.scalars(select(AuditEntry).where(AuditEntry.seq > seq_before)).all()
    # The pipeline saw everyone (7 people walked through), and alerted only on listed people, once per track.
    assert cam.status == "stopped" and cam.error == ""
    assert cam.frames_processed > 50 and cam.frames_dropped == 0
    assert cam.tracks >= len(env.listed) + len(env.unlisted)
    assert cam.faces >= cam.tracks and cam.faces_compared >= cam.tracks - 1
    assert alerted and alerted <= listed_ids, "an alert named someone not on the watch list"
    assert len(rows) == cam.alerts == len({(a.camera_id, a.track_number) for a in rows})

    # Database: only the deployment's own rows changed; the new rows are the alerts (listed people) and the audit.
    counts_after = table_counts(env)
    changed = {t for t in counts_after if counts_after[t] != counts_before.get(t)}
    assert changed <= {"live_alerts", "audit_log"}, changed
    assert counts_after["live_alerts"] - counts_before["live_alerts"] == len(rows)
    for entry in new_audit:
        if entry.action.startswith("live_"):
            for key, value in entry.details.items():
                assert not isinstance(value, str) or len(value) < 300, (key, value)
                assert key in {"deployment_id", "camera_id", "track_number", "frozen_entry_id", "subject_id",
                               "score", "width", "height", "fps", "final", "error", "dropped_count", "frames_count",
                               "faces_count", "faces_compared_count", "tracks_count", "alerts_count", "reason",
                               "was_running", "end_at"}, key  # fmt: skip
            if entry.action == "live_alert":
                assert entry.details["subject_id"] in listed_ids

    # Data directory: the only new files are the alert captures (plus SQLite's journal files).
    new_files = data_files(env) - files_before
    captures = {env.rt.store.path_for(a.capture_address) for a in rows if a.capture_address}
    journal = {p for p in new_files if p.name.endswith(("-wal", "-shm", "-journal"))}
    assert new_files - journal == captures, sorted(str(p) for p in new_files - journal - captures)
    # Each capture is the listed person: it decrypts, and its face matches the person's enrolled photo.
    for alert in rows:
        data = env.rt.store.get(alert.key_id, alert.capture_address, capture_context(alert.key_id))
        capture = engine.detect(load_image(data).pixels, embed=True, max_faces=1)
        assert capture, "the capture holds no face"
        who = next(w for w, n in env.listed.items() if env.subjects[n] == alert.subject_id)
        enrolled = engine.detect(load_image(env.photos[who][0]).pixels, embed=True, max_faces=1)[0]
        assert float(np.dot(capture[0].embedding, enrolled.embedding)) >= 0.3

    # Temporary files: none of ours. ONNX Runtime writes a telemetry session marker (".ses": a launch time and a
    # random id) when it is imported, before any frame: allowed only with exactly that content.
    for leftover in worker_tmp.iterdir():
        assert leftover.name == ".ses", leftover
        assert re.fullmatch(r"\d+\n[0-9a-f-]{36}\n", leftover.read_text()), leftover.read_text()[:80]
    # Logs: lifecycle and counts only.
    worker_lines = [line.split(" INFO ", 1)[-1] for line in logs.splitlines() if "faceleads.live" in line]
    assert worker_lines, "the worker logged nothing (capture failed?)"
    for line in worker_lines:
        assert any(p.search(line) for p in ALLOWED_LOG), f"unexpected worker log line: {line!r}"
    for who in env.unlisted:
        assert who not in logs

    with env.rt.session_factory() as session:
        assert verify_chain(session).ok


def test_the_worker_stops_at_the_end_time(live_env: LiveEnv, engine: Any, tmp_path: Path) -> None:
    """A deployment whose window ends while its (long) video still plays: the worker stops by itself."""
    env = live_env
    scene = build_video(env, engine, tmp_path / "long.avi", [*env.unlisted, *env.listed] * 3, width=352,
                        height=288, fps=5.0, dwell_s=2.0, concurrent=2, face_px=48)  # fmt: skip
    assert scene.truth[-1][1] > 20
    from faceleads.live import deployments as d
    from tests.live.helpers import deployment_input

    info = d.create_deployment(env.rt, env.actors["analyst"], deployment_input(
        env, end_at=utcnow() + timedelta(seconds=12), cameras=[d.CameraInput("cctv", str(scene.video))]))  # fmt: skip
    d.authorise_deployment(env.rt, env.actors["sup1"], info.id)
    d.start_deployment(env.rt, env.actors["analyst"], info.id)
    runner = DeploymentRunner(env.settings, realtime=True)  # played at its own rate, as a camera
    runner.start(env.rt, info.id)
    assert runner.join(info.id, 90), "the worker did not stop at the end time"
    with transaction(env.rt.session_factory) as session:
        dep = session.get(Deployment, info.id)
        assert dep is not None
        end_at = dep.end_at
        cam = session.scalars(select(DeploymentCamera).where(DeploymentCamera.deployment_id == info.id)).one()
        late = session.scalar(select(func.count(LiveAlert.id)).where(LiveAlert.deployment_id == info.id,
                                                                     LiveAlert.seen_at > end_at))  # fmt: skip
    shown = d.get_deployment(env.rt, env.actors["analyst"], info.id)
    assert shown.status == "ended" and shown.stop_reason == "end_time" and shown.stopped_by == "system"
    assert cam.status == "stopped"
    assert 0 < cam.video_seconds < scene.truth[-1][1] - 5  # it stopped well before the video ended
    assert late == 0


def test_end_time_holds_even_if_every_process_died(live_env: LiveEnv) -> None:
    """No worker at all: the stored end time alone ends the deployment in every read and refuses new alerts."""
    env = live_env
    info = authorised(env, end_in=timedelta(hours=1))
    deployments.start_deployment(env.rt, env.actors["analyst"], info.id)
    with transaction(env.rt.session_factory) as session:  # time passes; the workers and the server died
        dep = session.get(Deployment, info.id)
        assert dep is not None
        dep.start_at = utcnow() - timedelta(hours=2)
        dep.end_at = utcnow() - timedelta(seconds=1)
        camera_id = session.scalars(select(DeploymentCamera.id).where(DeploymentCamera.deployment_id == info.id)).one()
        entry = session.scalars(select(FrozenEntry).where(FrozenEntry.deployment_id == info.id)
                                .order_by(FrozenEntry.id)).first()  # fmt: skip
        assert entry is not None
        entry_id = entry.id
    listed = deployments.list_deployments(env.rt, env.actors["auditor"])
    assert next(x for x in listed if x.id == info.id).status == "ended"
    shown = deployments.get_deployment(env.rt, env.actors["sup1"], info.id)
    assert shown.status == "ended" and shown.stop_reason == "end_time"
    event = AlertEvent(1, _match(entry_id), 1.0, 10, np.zeros((40, 40, 3), np.uint8), 0.9)
    assert camera_control.record_alert(env.rt, camera_id, event) is None
    assert not camera_control.heartbeat(env.rt, camera_id, _counters(), frames_read=0, frames_dropped=0,
                                        video_seconds=0.0).go_on  # fmt: skip
    with pytest.raises(ValidationError, match="only a running deployment"):
        deployments.stop_deployment(env.rt, env.actors["analyst"], info.id)
    with env.rt.session_factory() as session:
        query = select(AuditEntry).where(AuditEntry.action == "live_deployment_end",
                                         AuditEntry.object_ref == f"live_deployment:{info.id}")  # fmt: skip
        ends = session.scalars(query).all()
        assert len(ends) == 1 and ends[0].details["reason"] == "end_time"


def test_an_authorised_deployment_cannot_start_after_its_end(live_env: LiveEnv) -> None:
    env = live_env
    info = authorised(env, end_in=timedelta(hours=1))
    with transaction(env.rt.session_factory) as session:
        dep = session.get(Deployment, info.id)
        assert dep is not None
        dep.end_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(ValidationError, match="only an authorised deployment"):
        deployments.start_deployment(env.rt, env.actors["analyst"], info.id)
    assert deployments.get_deployment(env.rt, env.actors["analyst"], info.id).status == "ended"


def test_destroyed_record_drops_out_of_a_running_deployment(live_env: LiveEnv) -> None:
    env = live_env
    info = authorised(env)
    deployments.start_deployment(env.rt, env.actors["analyst"], info.id)
    matrix = camera_control.load_watchlist(env.rt, info.id)
    assert matrix.people == len(env.listed)
    number = list(env.listed.values())[-1]
    with transaction(env.rt.session_factory) as session:  # a destruction starts executing (step 1 marks it)
        subject = session.get(Subject, env.subjects[number])
        assert subject is not None
        subject.status = SubjectStatus.DESTROYING.value
    try:
        dropped = camera_control.check_entries(env.rt, info.id)
        assert len(dropped) == 1
        assert matrix.drop(dropped) == 1 and matrix.people == len(env.listed) - 1
        with env.rt.session_factory() as session:
            entry = session.get(FrozenEntry, dropped[0])
            assert entry is not None and entry.drop_reason == "destroyed"
            camera_id = session.scalars(select(DeploymentCamera.id)
                                        .where(DeploymentCamera.deployment_id == info.id)).one()  # fmt: skip
        # Even a worker that missed the check cannot store an alert for a dropped entry.
        event = AlertEvent(9, _match(dropped[0]), 1.0, 10, np.zeros((40, 40, 3), np.uint8), 0.9)
        assert camera_control.record_alert(env.rt, camera_id, event) is None
        assert camera_control.load_watchlist(env.rt, info.id).people == len(env.listed) - 1
    finally:
        with transaction(env.rt.session_factory) as session:
            subject = session.get(Subject, env.subjects[number])
            assert subject is not None
            subject.status = SubjectStatus.ACTIVE.value
        deployments.stop_deployment(env.rt, env.actors["analyst"], info.id)


def _match(key: int) -> Any:
    from faceleads.live.matching import Match

    return Match(key, "x", 0.9, 1)


def _counters() -> Any:
    from faceleads.live.pipeline import Counters

    return Counters()


def test_alerts_are_visible_through_a_second_runtime(live_env: LiveEnv) -> None:
    """Alerts live in the database: an alert one runtime stores, another (a second app server) polls and lists."""
    from faceleads.gallery.runtime import GalleryRuntime

    env = live_env
    info = authorised(env)
    deployments.start_deployment(env.rt, env.actors["analyst"], info.id)
    other = GalleryRuntime(env.settings, face_engine=env.rt.face_engine, create=False)
    try:
        with env.rt.session_factory() as session:
            camera_id = session.scalars(select(DeploymentCamera.id)
                                        .where(DeploymentCamera.deployment_id == info.id)).one()  # fmt: skip
            entry = session.scalars(select(FrozenEntry).where(FrozenEntry.deployment_id == info.id)
                                    .order_by(FrozenEntry.id)).first()  # fmt: skip
            assert entry is not None
            entry_id = entry.id
        assert alerts.latest_alert_id(other, info.id) == 0
        event = AlertEvent(3, _match(entry_id), 2.5, 60, np.zeros((40, 40, 3), np.uint8), 0.8)
        stored = camera_control.record_alert(env.rt, camera_id, event)
        assert stored is not None
        assert alerts.latest_alert_id(other, info.id) == stored
        listed = alerts.list_alerts(other, env.actors["officer"], info.id)
        assert [(a.id, a.track_number) for a in listed] == [(stored, 3)]
        assert alerts.list_alerts(other, env.actors["officer"], info.id, after_id=stored) == []
    finally:
        other.close()
        deployments.stop_deployment(env.rt, env.actors["analyst"], info.id)


def test_cameras_of_a_running_deployment_restart_only_when_silent(live_env: LiveEnv) -> None:
    env = live_env
    info = authorised(env)
    deployments.start_deployment(env.rt, env.actors["analyst"], info.id)
    with transaction(env.rt.session_factory) as session:
        cam = session.scalars(select(DeploymentCamera).where(DeploymentCamera.deployment_id == info.id)).one()
        cam.status, cam.heartbeat_at = "running", utcnow()
    with pytest.raises(ValidationError, match="still running"):
        deployments.resume_cameras(env.rt, env.actors["analyst"], info.id)
    with transaction(env.rt.session_factory) as session:
        cam = session.scalars(select(DeploymentCamera).where(DeploymentCamera.deployment_id == info.id)).one()
        cam.heartbeat_at = utcnow() - timedelta(minutes=1)  # its worker died with the server
    assert deployments.resume_cameras(env.rt, env.actors["analyst"], info.id).status == "running"
    with pytest.raises(Exception, match="live operate"):
        deployments.resume_cameras(env.rt, env.actors["officer"], info.id)
    deployments.stop_deployment(env.rt, env.actors["analyst"], info.id)
    with pytest.raises(ValidationError, match="only a running deployment"):
        deployments.resume_cameras(env.rt, env.actors["analyst"], info.id)
