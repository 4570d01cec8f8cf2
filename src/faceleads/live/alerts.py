"""Alert review by the deployment's named officers, and retention of alert data.

Every view (a list of alerts delivered to an officer, each image fetched) and every decision is audited. An officer
records one decision per alert: confirmed, false alert or not actioned, with a note. Alerts are reviewed before
anyone acts on them, also after the deployment has ended. Captured faces are kept until ``retention_until``
(the agency's period for alerts); :func:`purge_expired_alerts` destroys each expired alert's key (crypto-shredding:
backups become unreadable too), deletes the blob and redacts the note.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, enforce
from faceleads.core.uow import transaction
from faceleads.db import utcnow
from faceleads.errors import NotFound, ValidationError
from faceleads.gallery.models import Image, Subject
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.live.camera_control import capture_context
from faceleads.live.common import as_utc, close_if_due, get_deployment_row, require_officer
from faceleads.live.models import AlertDecision, DeploymentCamera, FrozenEntry, LiveAlert

REDACTED = "[purged under retention rules]"
DECISIONS = (AlertDecision.CONFIRMED.value, AlertDecision.FALSE_ALERT.value, AlertDecision.NOT_ACTIONED.value)


@dataclass(frozen=True)
class AlertInfo:
    """An alert as an officer sees it (the images are fetched separately, each fetch audited)."""

    id: int
    deployment_id: int
    camera: str
    track_number: int
    subject_number: str
    reason: str  # the watch-list entry's reason (e.g. warrant number)
    score: float
    seen_at: datetime
    video_time_s: float
    decision: str
    decision_note: str
    decided_by: str | None
    decided_at: datetime | None
    retention_until: datetime
    purged: bool

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("seen_at", "decided_at", "retention_until"):
            data[key] = data[key].isoformat() if data[key] else None
        data["capture_url"] = None if self.purged else f"/live/alerts/{self.id}/capture"
        data["watchlist_photo_url"] = None if self.purged else f"/live/alerts/{self.id}/watchlist-photo"
        return data


def _info(alert: LiveAlert, camera: str, subject_number: str, reason: str) -> AlertInfo:
    return AlertInfo(
        id=alert.id, deployment_id=alert.deployment_id, camera=camera, track_number=alert.track_number,
        subject_number=subject_number, reason=reason, score=round(alert.score, 4), seen_at=as_utc(alert.seen_at),
        video_time_s=round(alert.video_time_s, 2), decision=alert.decision, decision_note=alert.decision_note,
        decided_by=alert.decided_by, decided_at=as_utc(alert.decided_at) if alert.decided_at else None,
        retention_until=as_utc(alert.retention_until), purged=alert.purged_at is not None,
    )  # fmt: skip


def list_alerts(
    rt: GalleryRuntime, actor: Actor, deployment_id: int, *, after_id: int = 0, limit: int = 200
) -> list[AlertInfo]:
    """Alerts of a deployment after ``after_id`` (oldest first), for its named officers; each delivery audited."""
    if limit < 1 or limit > 1000:
        raise ValidationError("limit must be 1-1000")
    factory = rt.session_factory
    now = utcnow()
    with transaction(factory) as session:
        dep = get_deployment_row(session, deployment_id)
        if dep.agency_id != actor.agency_id:
            enforce(factory, actor, Action.LIVE_REVIEW_ALERT, f"live_deployment:{deployment_id}", dep.agency_id)
        require_officer(factory, session, actor, dep)
        close_if_due(session, dep, now)
        rows = session.execute(
            select(LiveAlert, DeploymentCamera.name, Subject.subject_number, FrozenEntry.reason)
            .join(DeploymentCamera, DeploymentCamera.id == LiveAlert.camera_id)
            .join(Subject, Subject.id == LiveAlert.subject_id)
            .join(FrozenEntry, FrozenEntry.id == LiveAlert.frozen_entry_id)
            .where(LiveAlert.deployment_id == dep.id, LiveAlert.id > after_id)
            .order_by(LiveAlert.id)
            .limit(limit)
        ).all()
        out = [_info(a, cam, number, reason) for a, cam, number, reason in rows]
        for alert in out:
            audit.record(session, actor, "live_alert_view", f"live_alert:{alert.id}", audit.Outcome.OK,
                         details={"deployment_id": dep.id})  # fmt: skip
        return out


def latest_alert_id(rt: GalleryRuntime, deployment_id: int) -> int:
    """The highest alert id of a deployment (0 if none): a cheap poll for the alert stream (no alert content)."""
    from sqlalchemy import func

    with rt.session_factory() as session:
        return int(session.scalar(select(func.max(LiveAlert.id)).where(LiveAlert.deployment_id == deployment_id)) or 0)


def _load_for_officer(rt: GalleryRuntime, session: Any, actor: Actor, alert_id: int) -> LiveAlert:
    alert = session.get(LiveAlert, alert_id)
    if alert is None or alert.agency_id != actor.agency_id:
        raise NotFound(f"no live alert {alert_id}")
    require_officer(rt.session_factory, session, actor, get_deployment_row(session, alert.deployment_id))
    return alert


def alert_image(rt: GalleryRuntime, actor: Actor, alert_id: int, which: str) -> bytes:
    """The captured face (``capture``) or the watch-list photo it matched (``watchlist``) of an alert; audited."""
    if which not in {"capture", "watchlist"}:
        raise ValidationError("which must be 'capture' or 'watchlist'")
    with transaction(rt.session_factory) as session:
        alert = _load_for_officer(rt, session, actor, alert_id)
        if alert.purged_at is not None or alert.capture_address is None:
            raise NotFound(f"alert {alert_id}'s images were deleted under the retention rules")
        if which == "capture":
            data = rt.store.get(alert.key_id, alert.capture_address, capture_context(alert.key_id))
        else:
            subject = session.get(Subject, alert.subject_id)
            image = session.get(Image, alert.image_id)
            if subject is None or image is None:
                raise NotFound(f"the watch-list photo of alert {alert_id} is no longer held")
            data = rt.read_photo(subject, image)
        audit.record(session, actor, "live_alert_image", f"live_alert:{alert.id}", audit.Outcome.OK,
                     details={"which": which, "deployment_id": alert.deployment_id})  # fmt: skip
        return data


def decide_alert(rt: GalleryRuntime, actor: Actor, alert_id: int, decision: str, note: str = "") -> AlertInfo:
    """Record the officer's decision on an alert (once): confirmed, false_alert or not_actioned, with a note."""
    if decision not in DECISIONS:
        raise ValidationError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    if not isinstance(note, str) or len(note.strip()) > 2000:
        raise ValidationError("note is limited to 2000 characters")
    note = note.strip()
    if decision == AlertDecision.CONFIRMED.value and not note:
        raise ValidationError("a confirmed alert needs a note of what was done (e.g. the stop's reference)")
    with transaction(rt.session_factory) as session:
        alert = _load_for_officer(rt, session, actor, alert_id)
        if alert.decision != AlertDecision.PENDING.value:
            raise ValidationError(f"alert {alert_id} was already decided ({alert.decision}) by {alert.decided_by}")
        alert.decision = decision
        alert.decision_note = note
        alert.decided_by = actor.username
        alert.decided_by_user_id = actor.user_id
        alert.decided_at = utcnow()
        audit.record(session, actor, "live_alert_decision", f"live_alert:{alert.id}", audit.Outcome.OK,
                     details={"decision": decision, "deployment_id": alert.deployment_id,
                              "score": round(alert.score, 4)})  # fmt: skip
        cam = session.get(DeploymentCamera, alert.camera_id)
        subject = session.get(Subject, alert.subject_id)
        entry = session.get(FrozenEntry, alert.frozen_entry_id)
        return _info(alert, cam.name if cam else "?", subject.subject_number if subject else "?",
                     entry.reason if entry else "")  # fmt: skip


@dataclass
class AlertRetentionReport:
    at: datetime
    dry_run: bool
    alerts: int = 0
    blobs_deleted: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "dry_run": self.dry_run, "alerts": self.alerts,
                "blobs_deleted": self.blobs_deleted}  # fmt: skip


def purge_expired_alerts(
    rt: GalleryRuntime, actor: Actor, *, now: datetime | None = None, dry_run: bool = False
) -> AlertRetentionReport:
    """Delete the captures of the agency's alerts whose retention period has passed (records officers)."""
    enforce(rt.session_factory, actor, Action.APPLY_RETENTION, "live_alert:retention", actor.agency_id)
    moment = as_utc(now or utcnow())
    report = AlertRetentionReport(moment, dry_run)
    with rt.session_factory() as session:
        due = list(
            session.scalars(
                select(LiveAlert.id).where(
                    LiveAlert.agency_id == actor.agency_id,
                    LiveAlert.purged_at.is_(None),
                    LiveAlert.retention_until <= moment,
                ).order_by(LiveAlert.id)  # purged (and audited) oldest first
            )
        )
    for alert_id in due:
        with transaction(rt.session_factory) as session:
            alert = session.get(LiveAlert, alert_id)
            if alert is None or alert.purged_at is not None:
                continue
            report.alerts += 1
            if dry_run:
                continue
            # The key first: from here on every copy of the capture (backups included) is unreadable.
            rt.keystore.destroy(alert.key_id)
            if alert.capture_address and rt.store.delete(alert.capture_address):
                report.blobs_deleted += 1
            alert.capture_address = None
            alert.purged_at = moment
            if alert.decision_note:
                alert.decision_note = REDACTED
            audit.record(session, actor, "live_alert_purge", f"live_alert:{alert.id}", audit.Outcome.OK,
                         details={"deployment_id": alert.deployment_id})  # fmt: skip
    if not dry_run:
        audit.record_now(rt.session_factory, actor, "live_alert_retention_run", "live_alert:retention",
                         audit.Outcome.OK, details={"alert_count": report.alerts,
                                                    "blob_count": report.blobs_deleted})  # fmt: skip
    return report
