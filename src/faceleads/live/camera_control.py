"""What a camera worker does in the database, as the system acting for an authorised deployment (no user).

- :func:`load_watchlist`: the frozen entries' templates, decrypted into memory (never written anywhere else).
- :func:`check_entries`: entries whose subject was destroyed (or is being destroyed) or whose entry expired since
  the freeze are marked dropped; the worker removes them from memory at once.
- :func:`heartbeat`: write the camera's counters and learn whether to go on (running, and before the stored end
  time; past it, the automatic stop is recorded here).
- :func:`record_alert`: the one path by which an alert is stored: refused unless the deployment is running and
  before its end time, and its entry still counts. The captured face is encrypted under the alert's own key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from faceleads.core import audit
from faceleads.core.uow import transaction
from faceleads.db import Agency, utcnow
from faceleads.errors import IntegrityError, KeyDestroyedError, NotFound
from faceleads.gallery.lawful import lawful_template_clause
from faceleads.gallery.models import FaceTemplate, Image, Subject, SubjectStatus
from faceleads.gallery.runtime import GalleryRuntime, template_context
from faceleads.live.common import as_utc, close_if_due, effective_status, get_deployment_row
from faceleads.live.matching import ListedPerson, WatchListMatrix
from faceleads.live.models import Deployment, DeploymentCamera, DeploymentStatus, FrozenEntry, LiveAlert
from faceleads.live.pipeline import AlertEvent, Counters
from faceleads.storage.crypto import decrypt_embedding
from faceleads.vision.imaging import encode_jpeg


def capture_context(alert_key_id: str) -> str:
    """Blob-store context of an alert's captured face."""
    return f"live-capture|{alert_key_id}"


def alert_retention_days(rt: GalleryRuntime, agency_code: str) -> int:
    """How long the agency keeps alert captures (``live_alert_retention_days[_by_agency]``)."""
    return rt.settings.live_alert_retention_days_by_agency.get(agency_code, rt.settings.live_alert_retention_days)


def load_watchlist(rt: GalleryRuntime, deployment_id: int) -> WatchListMatrix:
    """The deployment's frozen entries that still count, with every template of the running template version (the
    engine's ``model_version``: a template made with another model, fusion or without flip averaging is not
    comparable and is left out), in memory."""
    model = rt.model_version
    people: list[ListedPerson] = []
    with rt.session_factory() as session:
        frozen = session.scalars(
            select(FrozenEntry).where(FrozenEntry.deployment_id == deployment_id, FrozenEntry.dropped_at.is_(None))
            # Entry and template order is the matrix's row order, which decides exact ties (argmax takes the first):
            # fixed, so every camera worker and every restart matches alike.
            .order_by(FrozenEntry.id)
        ).all()
        for entry in frozen:
            subject = session.get(Subject, entry.subject_id)
            if subject is None or subject.status != SubjectStatus.ACTIVE.value:
                continue
            rows = session.execute(
                select(FaceTemplate.embedding, FaceTemplate.image_id, Image.sha256)
                .join(Image, Image.id == FaceTemplate.image_id)
                .where(FaceTemplate.subject_id == subject.id, FaceTemplate.model_version == model,
                       lawful_template_clause())
                .order_by(FaceTemplate.id)
            ).all()  # fmt: skip
            try:
                key = rt.keystore.get(subject.key_id)
            except (KeyDestroyedError, NotFound):
                continue
            vectors, refs = [], []
            for blob, image_id, sha in rows:
                try:
                    context = template_context(subject.key_id, sha, model)
                    vectors.append(decrypt_embedding(key, blob, context, dim=rt.embedding_dim))
                except IntegrityError:
                    continue  # a tampered template is never compared
                refs.append(int(image_id))
            if vectors:
                people.append(ListedPerson(entry.id, subject.subject_number, np.stack(vectors), tuple(refs)))
    return WatchListMatrix(people, model_version=model, dim=rt.embedding_dim)


def check_entries(rt: GalleryRuntime, deployment_id: int, now: datetime | None = None) -> list[int]:
    """Mark frozen entries dropped whose subject is no longer active or whose entry expired; returns their ids
    (also any dropped earlier, so a worker that missed a check catches up)."""
    moment = now or utcnow()
    with transaction(rt.session_factory) as session:
        rows = session.execute(
            select(FrozenEntry, Subject.status)
            .join(Subject, Subject.id == FrozenEntry.subject_id)
            .where(FrozenEntry.deployment_id == deployment_id)
            .order_by(FrozenEntry.id)  # the drops are audited in entry order
        ).all()
        dropped = []
        for entry, status in rows:
            if entry.dropped_at is not None:
                dropped.append(entry.id)
                continue
            reason = None
            if status != SubjectStatus.ACTIVE.value:
                reason = "destroyed"
            elif as_utc(entry.expires_at) <= moment:
                reason = "expired"
            if reason is None:
                continue
            entry.dropped_at = moment
            entry.drop_reason = reason
            dropped.append(entry.id)
            audit.record(session, None, "live_watchlist_drop", f"live_deployment:{deployment_id}", audit.Outcome.OK,
                         details={"frozen_entry_id": entry.id, "subject_id": entry.subject_id,
                                  "reason": reason})  # fmt: skip
        return dropped


@dataclass(frozen=True)
class Control:
    """What a heartbeat tells the worker."""

    go_on: bool
    status: str
    end_at: datetime


def camera_started(rt: GalleryRuntime, camera_id: int, width: int, height: int, fps: float) -> None:
    with transaction(rt.session_factory) as session:
        cam = session.get(DeploymentCamera, camera_id)
        if cam is None:
            raise NotFound(f"no camera {camera_id}")
        cam.status = "running"
        cam.started_at = utcnow()
        cam.heartbeat_at = cam.started_at
        cam.error = ""
        audit.record(session, None, "live_camera_start", f"live_deployment:{cam.deployment_id}", audit.Outcome.OK,
                     details={"camera_id": cam.id, "width": width, "height": height, "fps": round(fps, 3)})  # fmt: skip


def heartbeat(
    rt: GalleryRuntime,
    camera_id: int,
    counters: Counters,
    *,
    frames_read: int,
    frames_dropped: int,
    video_seconds: float,
    final: str | None = None,
    error: str = "",
) -> Control:
    """Store the camera's counters; ``final`` (stopped / failed) closes the camera. Tells whether to go on."""
    now = utcnow()
    with transaction(rt.session_factory) as session:
        cam = session.get(DeploymentCamera, camera_id)
        if cam is None:
            raise NotFound(f"no camera {camera_id}")
        dep = get_deployment_row(session, cam.deployment_id)
        close_if_due(session, dep, now)
        cam.heartbeat_at = now
        cam.frames_read = frames_read
        cam.frames_processed = counters.frames
        cam.frames_dropped = frames_dropped
        cam.faces = counters.faces
        cam.faces_compared = counters.faces_compared
        cam.tracks = counters.tracks
        cam.alerts = counters.alerts
        cam.video_seconds = float(video_seconds)
        if final is not None:
            cam.status = final
            cam.stopped_at = now
            cam.error = error[:1000]
            audit.record(session, None, "live_camera_stop", f"live_deployment:{dep.id}", audit.Outcome.OK,
                         details={"camera_id": cam.id, "final": final, "error": error[:300],
                                  **{f"{k}_count": v for k, v in counters.as_dict().items()},
                                  "dropped_count": frames_dropped})  # fmt: skip
        status = effective_status(dep, now)
        return Control(status is DeploymentStatus.RUNNING, status.value, as_utc(dep.end_at))


def record_alert(rt: GalleryRuntime, camera_id: int, event: AlertEvent) -> int | None:
    """Store an alert with its captured face (encrypted); None when the deployment may no longer alert."""
    now = utcnow()
    jpeg = encode_jpeg(event.capture, quality=90)
    with transaction(rt.session_factory) as session:
        cam = session.get(DeploymentCamera, camera_id)
        if cam is None:
            raise NotFound(f"no camera {camera_id}")
        dep = get_deployment_row(session, cam.deployment_id)
        if close_if_due(session, dep, now) or effective_status(dep, now) is not DeploymentStatus.RUNNING:
            return None
        entry = session.get(FrozenEntry, int(event.match.key))  # type: ignore[call-overload]
        if entry is None or entry.deployment_id != dep.id or entry.dropped_at is not None:
            return None
        subject = session.get(Subject, entry.subject_id)
        if subject is None or subject.status != SubjectStatus.ACTIVE.value or as_utc(entry.expires_at) <= now:
            return None
        agency = session.get(Agency, dep.agency_id)
        days = alert_retention_days(rt, agency.code if agency else "")
        alert = LiveAlert(
            deployment_id=dep.id, agency_id=dep.agency_id, camera_id=cam.id, track_number=event.track_number,
            frozen_entry_id=entry.id, subject_id=entry.subject_id, image_id=event.match.ref,
            score=float(event.match.score), seen_at=now, video_time_s=float(event.time_s),
            retention_until=now + timedelta(days=days),
            capture_meta={"width": int(event.capture.shape[1]), "height": int(event.capture.shape[0]),
                          "quality": round(float(event.quality), 4)},
        )  # fmt: skip
        session.add(alert)
        session.flush()
        rt.keystore.create(alert.key_id)
        alert.capture_address = rt.store.put(alert.key_id, jpeg, capture_context(alert.key_id))
        audit.record(session, None, "live_alert", f"live_alert:{alert.id}", audit.Outcome.OK, purpose="live_deployment",
                     details={"deployment_id": dep.id, "camera_id": cam.id, "track_number": event.track_number,
                              "frozen_entry_id": entry.id, "subject_id": entry.subject_id,
                              "score": round(float(event.match.score), 4)})  # fmt: skip
        return alert.id


def deployment_for_camera(session: Session, camera_id: int) -> Deployment:
    cam = session.get(DeploymentCamera, camera_id)
    if cam is None:
        raise NotFound(f"no camera {camera_id}")
    return get_deployment_row(session, cam.deployment_id)


def mark_failed(rt: GalleryRuntime, camera_id: int, error: str) -> None:
    """A camera could not start (bad source, no frames): record why."""
    with transaction(rt.session_factory) as session:
        session.execute(
            update(DeploymentCamera)
            .where(DeploymentCamera.id == camera_id)
            .values(status="failed", error=error[:1000], stopped_at=utcnow())
        )
        dep = deployment_for_camera(session, camera_id)
        audit.record(session, None, "live_camera_stop", f"live_deployment:{dep.id}", audit.Outcome.FAILED,
                     details={"camera_id": camera_id, "error": error[:300]})  # fmt: skip
