"""Deployments: prepare, authorise (or refuse), start (freezing the watch list), stop; the automatic stop.

Rules (each refusal names the rule; refusals by a live rule are audited like the policy's):

- Preparing needs ``live_prepare``; authorising needs ``live_authorise`` (supervisors) under the live-deployment
  regime, and never by the user who prepared the deployment.
- A deployment lasts at most ``Settings.live_max_hours`` (default 6 h), must end in the future, names at least one
  camera and one alert officer (users of the agency holding a role that may review alerts), and cannot be
  authorised before public notice/signage is confirmed, nor without the agency's threshold calibration (the
  authorising officer is shown, and the record keeps, the expected false alert rate at the chosen threshold for
  the list's size).
- Starting freezes the watch list (entries that count at that moment): its size and the SHA-256 of its contents go
  into the deployment row and the audit log, the contents into ``live_frozen_entries``.
- The stored end time is the authority: every read path records the automatic stop (:func:`common.close_if_due`)
  and reports the deployment as ended once it has passed, whether or not any worker is still alive.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceleads.casework.common import same_person
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, enforce, roles_for
from faceleads.core.uow import transaction
from faceleads.db import Agency, utcnow
from faceleads.errors import NotFound, ValidationError
from faceleads.evaluation.stored import ExpectedRate, expected_rate, latest_calibration
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.live.common import (
    as_utc,
    close_if_due,
    deny,
    effective_status,
    get_deployment_row,
    get_watchlist_row,
    officer_ids,
)
from faceleads.live.models import (
    LIVE_REGIME,
    Deployment,
    DeploymentCamera,
    DeploymentOfficer,
    DeploymentStatus,
    FrozenEntry,
    StopReason,
)
from faceleads.live.sources import parse_source
from faceleads.live.watchlists import usable_entries
from faceleads.security.models import RoleGrant, User

MAX_CAMERAS = 16
START_GRACE = timedelta(minutes=5)  # a deployment may be started this long before its authorised start
RESUME_QUIET = timedelta(seconds=10)  # a camera silent this long has no worker (heartbeats come every second)


@dataclass(frozen=True)
class CameraInput:
    name: str
    source: str


@dataclass(frozen=True)
class DeploymentInput:
    """What is prepared for a deployment (everything the authorising officer decides on)."""

    watchlist_id: int
    location: str
    legal_basis: str
    purpose: str
    start_at: datetime
    end_at: datetime
    cameras: Sequence[CameraInput]
    officers: Sequence[str]  # usernames
    threshold: float
    signage_confirmed: bool = False
    signage_note: str = ""


@dataclass
class CameraInfo:
    id: int
    position: int
    name: str
    source: str  # credentials removed
    status: str
    error: str
    frames_read: int
    frames_processed: int
    frames_dropped: int
    faces: int
    faces_compared: int
    tracks: int
    alerts: int
    video_seconds: float
    heartbeat_at: str | None


@dataclass
class DeploymentInfo:
    """A deployment as shown to people (no face, no biometric content)."""

    id: int
    agency: str
    status: str  # the effective status (ended once the end time has passed)
    watchlist_id: int
    watchlist_name: str
    location: str
    legal_basis: str
    purpose: str
    start_at: datetime
    end_at: datetime
    threshold: float
    signage_confirmed: bool
    signage_note: str
    created_by: str
    created_at: datetime
    officers: list[str]
    cameras: list[CameraInfo]
    regime: str
    scope: str | None
    authorised_by: str | None
    authorised_at: datetime | None
    expires_at: datetime | None
    authorisation_note: str
    expected_false_alerts_per_1000: float | None
    calibration_id: int | None
    started_at: datetime | None
    started_by: str | None
    stopped_at: datetime | None
    stopped_by: str | None
    stop_reason: str | None
    frozen_at: datetime | None
    frozen_size: int | None
    frozen_sha256: str | None
    expected: ExpectedRate | None = None  # at the current threshold and list size, from the latest calibration
    usable_entries: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def duration_hours(self) -> float:
        return (self.end_at - self.start_at).total_seconds() / 3600

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in list(data.items()):
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        data["expected"] = self.expected.to_json() if self.expected else None
        data["duration_hours"] = round(self.duration_hours, 3)
        return data


def _text(value: object, name: str, limit: int, *, required: bool = True) -> str:
    from faceleads.live.watchlists import _text as text

    return text(value, name, limit, required=required)


def _camera_info(c: DeploymentCamera) -> CameraInfo:
    try:
        shown = parse_source(c.source).display()
    except ValidationError:
        shown = "(invalid source)"
    return CameraInfo(c.id, c.position, c.name, shown, c.status, c.error, c.frames_read, c.frames_processed,
                      c.frames_dropped, c.faces, c.faces_compared, c.tracks, c.alerts, round(c.video_seconds, 2),
                      as_utc(c.heartbeat_at).isoformat() if c.heartbeat_at else None)  # fmt: skip


def _opt(moment: datetime | None) -> datetime | None:
    return as_utc(moment) if moment is not None else None


def build_info(session: Session, dep: Deployment, now: datetime) -> DeploymentInfo:
    """The :class:`DeploymentInfo` of a loaded deployment (after :func:`close_if_due`)."""
    agency = session.get(Agency, dep.agency_id)
    wl = get_watchlist_row(session, dep.watchlist_id)
    users = officer_ids(session, dep.id)
    names = sorted(session.scalars(select(User.username).where(User.id.in_(users)))) if users else []
    cameras = session.scalars(
        select(DeploymentCamera).where(DeploymentCamera.deployment_id == dep.id).order_by(DeploymentCamera.position)
    ).all()
    return DeploymentInfo(
        id=dep.id, agency=agency.code if agency else str(dep.agency_id),
        status=effective_status(dep, now).value, watchlist_id=wl.id, watchlist_name=wl.name,
        location=dep.location, legal_basis=dep.legal_basis, purpose=dep.purpose,
        start_at=as_utc(dep.start_at), end_at=as_utc(dep.end_at), threshold=dep.alert_threshold,
        signage_confirmed=dep.signage_confirmed, signage_note=dep.signage_note, created_by=dep.created_by,
        created_at=as_utc(dep.created_at), officers=names, cameras=[_camera_info(c) for c in cameras],
        regime=dep.regime, scope=dep.scope, authorised_by=dep.authorised_by, authorised_at=_opt(dep.authorised_at),
        expires_at=_opt(dep.expires_at), authorisation_note=dep.authorisation_note,
        expected_false_alerts_per_1000=dep.expected_false_alerts_per_1000, calibration_id=dep.calibration_id,
        started_at=_opt(dep.started_at), started_by=dep.started_by, stopped_at=_opt(dep.stopped_at),
        stopped_by=dep.stopped_by, stop_reason=dep.stop_reason, frozen_at=_opt(dep.frozen_at),
        frozen_size=dep.frozen_size, frozen_sha256=dep.frozen_sha256,
    )  # fmt: skip


def _officer_users(session: Session, agency_id: int, usernames: Sequence[str]) -> list[User]:
    """The named alert officers: active users of the agency holding a role that may review alerts."""
    eligible = {r.value for r in roles_for(Action.LIVE_REVIEW_ALERT)}
    wanted = sorted({_text(u, "officer user name", 150) for u in usernames})
    if not wanted:
        raise ValidationError("name at least one officer to receive the alerts")
    out = []
    for name in wanted:
        user = session.scalars(select(User).where(User.username == name)).first()
        if user is None or user.agency_id != agency_id or not user.active:
            raise ValidationError(f"alert officer {name!r} is not an active user of the deployment's agency")
        roles = set(session.scalars(select(RoleGrant.role).where(RoleGrant.user_id == user.id)))
        if not roles & eligible:
            raise ValidationError(
                f"alert officer {name!r} holds none of the roles that may review alerts ({', '.join(sorted(eligible))})"
            )
        out.append(user)
    return out


def _check_times(rt: GalleryRuntime, start_at: datetime, end_at: datetime, now: datetime) -> tuple[datetime, datetime]:
    start, end = as_utc(start_at), as_utc(end_at)
    if end <= start:
        raise ValidationError("the deployment must end after it starts")
    limit = rt.settings.live_max_hours
    hours = (end - start).total_seconds() / 3600
    if hours > limit + 1e-9:
        raise ValidationError(f"a deployment may last at most {limit:g} h (FACELEADS_LIVE_MAX_HOURS); "
                              f"this one would last {hours:.2f} h")  # fmt: skip
    if end <= now:
        raise ValidationError("the deployment's end time has already passed")
    return start, end


def create_deployment(rt: GalleryRuntime, actor: Actor, inp: DeploymentInput) -> DeploymentInfo:
    """Prepare a deployment (status draft) for a supervisor to authorise."""
    factory = rt.session_factory
    enforce(factory, actor, Action.LIVE_PREPARE, "live_deployment:new", actor.agency_id)
    now = utcnow()
    start, end = _check_times(rt, inp.start_at, inp.end_at, now)
    location = _text(inp.location, "location", 300)
    legal_basis = _text(inp.legal_basis, "legal basis", 4000)
    purpose = _text(inp.purpose, "purpose", 4000)
    signage_note = _text(inp.signage_note, "signage note", 2000, required=False)
    if not isinstance(inp.threshold, int | float) or not 0.0 < float(inp.threshold) <= 1.0:
        raise ValidationError(f"alert threshold must be in (0, 1], got {inp.threshold!r}")
    if not inp.cameras:
        raise ValidationError("name at least one camera source")
    if len(inp.cameras) > MAX_CAMERAS:
        raise ValidationError(f"a deployment has at most {MAX_CAMERAS} cameras")
    cameras = []
    for i, cam in enumerate(inp.cameras, start=1):
        name = _text(cam.name, f"camera {i} name", 100, required=False) or f"camera {i}"
        parse_source(cam.source)  # refuses a malformed source now, not when the camera starts
        cameras.append((name, cam.source.strip()))
    if len({n for n, _ in cameras}) != len(cameras):
        raise ValidationError("camera names must differ")
    with transaction(factory) as session:
        wl = get_watchlist_row(session, inp.watchlist_id)
        if wl.agency_id != actor.agency_id:
            raise NotFound(f"no watch list {inp.watchlist_id}")
        officers = _officer_users(session, actor.agency_id, inp.officers)
        dep = Deployment(
            agency_id=actor.agency_id, watchlist_id=wl.id, status=DeploymentStatus.DRAFT.value,
            legal_basis=legal_basis, purpose=purpose, location=location, start_at=start, end_at=end,
            alert_threshold=float(inp.threshold), signage_confirmed=bool(inp.signage_confirmed),
            signage_note=signage_note, created_by=actor.username, created_by_user_id=actor.user_id,
            regime=LIVE_REGIME,
        )  # fmt: skip
        session.add(dep)
        session.flush()
        for position, (name, source) in enumerate(cameras, start=1):
            session.add(DeploymentCamera(deployment_id=dep.id, position=position, name=name, source=source))
        for user in officers:
            session.add(DeploymentOfficer(deployment_id=dep.id, user_id=user.id))
        session.flush()
        audit.record(session, actor, "live_deployment_create", f"live_deployment:{dep.id}", audit.Outcome.OK,
                     details={"watchlist_id": wl.id, "location": location[:200], "start_at": start.isoformat(),
                              "end_at": end.isoformat(), "threshold": float(inp.threshold),
                              "camera_count": len(cameras), "officer_count": len(officers),
                              "signage_confirmed": bool(inp.signage_confirmed)})  # fmt: skip
        return _with_expectation(rt, session, dep, now)


def _with_expectation(rt: GalleryRuntime, session: Session, dep: Deployment, now: datetime) -> DeploymentInfo:
    info = build_info(session, dep, now)
    if info.status in (DeploymentStatus.DRAFT.value, DeploymentStatus.AUTHORISED.value):
        info.expected, info.usable_entries, notes = expectation(rt, session, dep.agency_id, dep.watchlist_id,
                                                                dep.alert_threshold, now)  # fmt: skip
        info.notes.extend(notes)
    return info


def expectation(
    rt: GalleryRuntime, session: Session, agency_id: int, watchlist_id: int, threshold: float, now: datetime
) -> tuple[ExpectedRate | None, int, list[str]]:
    """(expected false alert rate, usable entries, notes) for a list and threshold, from the agency's latest
    calibration of the current model."""
    model = rt.model_version
    entries = usable_entries(session, agency_id, watchlist_id, now, model)
    templates = sum(t for _, _, t in entries)
    notes: list[str] = []
    cal = latest_calibration(session, agency_id, model)
    if cal is None:
        notes.append(
            "no threshold calibration of the current model is stored for this agency: run "
            "`faceleads evaluate calibrate --save` (or `faceleads evaluate live --save-calibration`)"
        )
        return None, len(entries), notes
    if not entries:
        notes.append("the watch list has no usable entry (expired, destroyed, not shared for live use, or no template)")
    return expected_rate(cal, threshold, templates, rt.settings.live_embeds_per_track), len(entries), notes


def expected_for(rt: GalleryRuntime, actor: Actor, watchlist_id: int, threshold: float) -> ExpectedRate | None:
    """The expected false alert rate of ``threshold`` for a watch list (None without a calibration)."""
    enforce(rt.session_factory, actor, Action.LIVE_VIEW, f"live_watchlist:{watchlist_id}", actor.agency_id)
    if not -1.0 <= threshold <= 1.0:
        raise ValidationError(f"threshold {threshold} is outside [-1, 1]")
    with rt.session_factory() as session:
        wl = get_watchlist_row(session, watchlist_id)
        if wl.agency_id != actor.agency_id:
            raise NotFound(f"no watch list {watchlist_id}")
        rate, _entries, _notes = expectation(rt, session, actor.agency_id, watchlist_id, threshold, utcnow())
        return rate


def _load_own(session: Session, actor: Actor, deployment_id: int) -> Deployment:
    dep = get_deployment_row(session, deployment_id)
    if dep.agency_id != actor.agency_id:
        raise NotFound(f"no live deployment {deployment_id}")
    return dep


def confirm_signage(rt: GalleryRuntime, actor: Actor, deployment_id: int, note: str) -> DeploymentInfo:
    """Record that public notice/signage is in place (before authorisation)."""
    factory = rt.session_factory
    enforce(factory, actor, Action.LIVE_PREPARE, f"live_deployment:{deployment_id}", actor.agency_id)
    note = _text(note, "signage note (what notice is in place, where)", 2000)
    with transaction(factory) as session:
        dep = _load_own(session, actor, deployment_id)
        if dep.status != DeploymentStatus.DRAFT.value:
            raise ValidationError(f"deployment {dep.id} is {dep.status}; signage is confirmed before authorisation")
        dep.signage_confirmed = True
        dep.signage_note = note
        audit.record(session, actor, "live_signage_confirm", f"live_deployment:{dep.id}", audit.Outcome.OK)
        return _with_expectation(rt, session, dep, utcnow())


def authorise_deployment(rt: GalleryRuntime, actor: Actor, deployment_id: int, note: str = "") -> DeploymentInfo:
    """A supervisor authorises a prepared deployment under the live-deployment regime (never their own)."""
    factory = rt.session_factory
    ref = f"live_deployment:{deployment_id}"
    enforce(factory, actor, Action.LIVE_AUTHORISE, ref, actor.agency_id)
    note = _text(note, "authorisation note", 4000, required=False)
    now = utcnow()
    with factory() as session:
        dep = _load_own(session, actor, deployment_id)
        if same_person(actor, dep.created_by, dep.created_by_user_id):
            raise deny(factory, actor, Action.LIVE_AUTHORISE, ref,
                       "a deployment cannot be authorised by the user who prepared it")  # fmt: skip
        if not dep.signage_confirmed:
            raise deny(factory, actor, Action.LIVE_AUTHORISE, ref,
                       "public notice/signage has not been confirmed for this deployment")  # fmt: skip
    with transaction(factory) as session:
        dep = _load_own(session, actor, deployment_id)
        if dep.status != DeploymentStatus.DRAFT.value:
            raise ValidationError(f"deployment {dep.id} is {dep.status}; only a prepared (draft) one is authorised")
        try:
            _check_times(rt, dep.start_at, dep.end_at, now)
        except ValidationError as exc:
            raise deny(factory, actor, Action.LIVE_AUTHORISE, ref, str(exc)) from None
        rate, usable, notes = expectation(rt, session, dep.agency_id, dep.watchlist_id, dep.alert_threshold, now)
        if usable == 0:
            raise ValidationError("the watch list has no usable entry: nothing to deploy")
        if rate is None:
            raise ValidationError("; ".join(notes))
        dep.status = DeploymentStatus.AUTHORISED.value
        dep.regime = LIVE_REGIME
        dep.scope = (
            f"deployment {dep.id}: watch list {dep.watchlist_id} ({usable} entries) at {dep.location}, "
            f"{len(_cameras(session, dep.id))} camera(s), threshold {dep.alert_threshold:.3f}"
        )[:2000]
        dep.authorised_by = actor.username
        dep.authorised_by_user_id = actor.user_id
        dep.authorised_at = now
        dep.expires_at = dep.end_at
        dep.authorisation_note = note
        dep.expected_false_alerts_per_1000 = rate.false_alerts_per_1000
        dep.calibration_id = int(rate.calibration["id"])
        audit.record(session, actor, "live_deployment_authorise", ref, audit.Outcome.OK,
                     purpose=LIVE_REGIME,
                     details={"regime": LIVE_REGIME, "threshold": dep.alert_threshold, "entry_count": usable,
                              "expected_false_alerts_per_1000": round(rate.false_alerts_per_1000, 6),
                              "calibration_id": dep.calibration_id, "start_at": as_utc(dep.start_at).isoformat(),
                              "expires_at": as_utc(dep.end_at).isoformat()})  # fmt: skip
        return _with_expectation(rt, session, dep, now)


def refuse_deployment(rt: GalleryRuntime, actor: Actor, deployment_id: int, reason: str) -> DeploymentInfo:
    """A supervisor refuses a prepared deployment, with the reason."""
    ref = f"live_deployment:{deployment_id}"
    enforce(rt.session_factory, actor, Action.LIVE_AUTHORISE, ref, actor.agency_id)
    reason = _text(reason, "reason for refusal", 4000)
    with transaction(rt.session_factory) as session:
        dep = _load_own(session, actor, deployment_id)
        if dep.status != DeploymentStatus.DRAFT.value:
            raise ValidationError(f"deployment {dep.id} is {dep.status}; only a prepared (draft) one can be refused")
        dep.status = DeploymentStatus.REFUSED.value
        dep.authorisation_note = reason
        dep.authorised_by = actor.username
        dep.authorised_by_user_id = actor.user_id
        dep.authorised_at = utcnow()
        audit.record(session, actor, "live_deployment_refuse", ref, audit.Outcome.OK, details={"reason": reason[:500]})
        return build_info(session, dep, utcnow())


def cancel_deployment(rt: GalleryRuntime, actor: Actor, deployment_id: int) -> DeploymentInfo:
    """Withdraw a deployment that has not started."""
    ref = f"live_deployment:{deployment_id}"
    enforce(rt.session_factory, actor, Action.LIVE_PREPARE, ref, actor.agency_id)
    now = utcnow()
    with transaction(rt.session_factory) as session:
        dep = _load_own(session, actor, deployment_id)
        close_if_due(session, dep, now)
        if dep.status not in (DeploymentStatus.DRAFT.value, DeploymentStatus.AUTHORISED.value):
            raise ValidationError(f"deployment {dep.id} is {dep.status}; only one that has not started is cancelled")
        dep.status = DeploymentStatus.CANCELLED.value
        audit.record(session, actor, "live_deployment_cancel", ref, audit.Outcome.OK)
        return build_info(session, dep, now)


def _cameras(session: Session, deployment_id: int) -> list[DeploymentCamera]:
    return list(
        session.scalars(
            select(DeploymentCamera)
            .where(DeploymentCamera.deployment_id == deployment_id)
            .order_by(DeploymentCamera.position)
        )
    )


def frozen_digest(rows: Sequence[tuple[int, int, str, datetime]]) -> str:
    """SHA-256 of the frozen list's canonical contents: sorted lines ``entry_id|subject_id|reason|expires_at``."""
    lines = sorted(f"{e}|{s}|{r}|{as_utc(x).isoformat()}" for e, s, r, x in rows)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def start_deployment(rt: GalleryRuntime, actor: Actor, deployment_id: int) -> DeploymentInfo:
    """Start an authorised deployment within its authorised window: freeze the watch list, mark it running.

    The cameras are started by the caller (:mod:`faceleads.live.runner`); this records the start and the list.
    """
    factory = rt.session_factory
    ref = f"live_deployment:{deployment_id}"
    enforce(factory, actor, Action.LIVE_OPERATE, ref, actor.agency_id)
    model = rt.model_version
    now = utcnow()
    with transaction(factory) as session:
        dep = _load_own(session, actor, deployment_id)
        close_if_due(session, dep, now)
        if dep.status != DeploymentStatus.AUTHORISED.value:
            raise ValidationError(f"deployment {dep.id} is {dep.status}; only an authorised deployment is started")
        if now < as_utc(dep.start_at) - START_GRACE:
            raise ValidationError(f"deployment {dep.id} is authorised from {as_utc(dep.start_at).isoformat()}; "
                                  "it cannot start earlier")  # fmt: skip
        entries = usable_entries(session, dep.agency_id, dep.watchlist_id, now, model)
        if not entries:
            raise ValidationError("the watch list has no usable entry any more: nothing to deploy")
        rows = [(e.id, s.id, e.reason, e.expires_at) for e, s, _ in entries]
        for entry, subject, templates in entries:
            session.add(FrozenEntry(deployment_id=dep.id, entry_id=entry.id, subject_id=subject.id,
                                    reason=entry.reason, expires_at=as_utc(entry.expires_at),
                                    templates=templates))  # fmt: skip
        dep.frozen_at = now
        dep.frozen_size = len(entries)
        dep.frozen_sha256 = frozen_digest(rows)
        dep.status = DeploymentStatus.RUNNING.value
        dep.started_at = now
        dep.started_by = actor.username
        for cam in _cameras(session, dep.id):
            cam.status = "idle"
            cam.error = ""
        subject_ids = ",".join(str(s.id) for _, s, _ in entries)
        audit.record(session, actor, "live_deployment_start", ref, audit.Outcome.OK, purpose=LIVE_REGIME,
                     details={"watchlist_id": dep.watchlist_id, "entry_count": len(entries),
                              "template_count": sum(t for _, _, t in entries),
                              "entries_sha256": dep.frozen_sha256,
                              "subject_ids": subject_ids if len(subject_ids) <= 450 else subject_ids[:440] + ",...",
                              "model_version": model[:200], "end_at": as_utc(dep.end_at).isoformat()})  # fmt: skip
        session.flush()
        return build_info(session, dep, now)


def resume_cameras(rt: GalleryRuntime, actor: Actor, deployment_id: int) -> DeploymentInfo:
    """Allow a running deployment's cameras to be started again (after a server restart killed its workers).

    Refused while any camera reported within the last ``RESUME_QUIET`` (a worker, here or on another server,
    still runs it: two workers on one camera would double its counts and alerts).
    """
    ref = f"live_deployment:{deployment_id}"
    enforce(rt.session_factory, actor, Action.LIVE_OPERATE, ref, actor.agency_id)
    now = utcnow()
    with transaction(rt.session_factory) as session:
        dep = _load_own(session, actor, deployment_id)
        close_if_due(session, dep, now)
        if dep.status != DeploymentStatus.RUNNING.value:
            raise ValidationError(f"deployment {dep.id} is {dep.status}; only a running deployment's cameras restart")
        for cam in _cameras(session, dep.id):
            if cam.status == "running" and cam.heartbeat_at and now - as_utc(cam.heartbeat_at) < RESUME_QUIET:
                raise ValidationError(f"camera {cam.name!r} is still running (it reported "
                                      f"{(now - as_utc(cam.heartbeat_at)).total_seconds():.0f} s ago)")  # fmt: skip
        audit.record(session, actor, "live_cameras_restart", ref, audit.Outcome.OK)
        return build_info(session, dep, now)


def stop_deployment(rt: GalleryRuntime, actor: Actor, deployment_id: int, note: str = "") -> DeploymentInfo:
    """Stop a running (or authorised, not started) deployment now. The camera workers see it within a second."""
    ref = f"live_deployment:{deployment_id}"
    enforce(rt.session_factory, actor, Action.LIVE_OPERATE, ref, actor.agency_id)
    note = _text(note, "note", 1000, required=False)
    now = utcnow()
    with transaction(rt.session_factory) as session:
        dep = _load_own(session, actor, deployment_id)
        if close_if_due(session, dep, now):
            return build_info(session, dep, now)
        if dep.status != DeploymentStatus.RUNNING.value:
            raise ValidationError(f"deployment {dep.id} is {dep.status}; only a running deployment is stopped")
        dep.status = DeploymentStatus.ENDED.value
        dep.stopped_at = now
        dep.stopped_by = actor.username
        dep.stop_reason = StopReason.OPERATOR.value
        audit.record(session, actor, "live_deployment_stop", ref, audit.Outcome.OK,
                     details={"reason": StopReason.OPERATOR.value, "note": note[:300]})  # fmt: skip
        return build_info(session, dep, now)


def get_deployment(rt: GalleryRuntime, actor: Actor, deployment_id: int) -> DeploymentInfo:
    """One deployment of the actor's agency (recording its automatic stop if its end time has passed)."""
    enforce(rt.session_factory, actor, Action.LIVE_VIEW, f"live_deployment:{deployment_id}", actor.agency_id)
    now = utcnow()
    with transaction(rt.session_factory) as session:
        dep = _load_own(session, actor, deployment_id)
        close_if_due(session, dep, now)
        return _with_expectation(rt, session, dep, now)


def list_deployments(rt: GalleryRuntime, actor: Actor, status: str | None = None) -> list[DeploymentInfo]:
    """The agency's deployments, newest first (``status``: only those with that effective status)."""
    enforce(rt.session_factory, actor, Action.LIVE_VIEW, "live_deployment:list", actor.agency_id)
    now = utcnow()
    with transaction(rt.session_factory) as session:
        rows = session.scalars(
            select(Deployment).where(Deployment.agency_id == actor.agency_id).order_by(Deployment.id.desc())
        ).all()
        out = []
        for dep in rows:
            close_if_due(session, dep, now)
            info = build_info(session, dep, now)
            if status is None or info.status == status:
                out.append(info)
        return out


def sweep_due(rt: GalleryRuntime, now: datetime | None = None) -> int:
    """Record the automatic stop of every deployment whose end time has passed (system; run by the workers and
    the web app). Returns how many it stopped."""
    moment = now or utcnow()
    with transaction(rt.session_factory) as session:
        due = session.scalars(
            select(Deployment).where(Deployment.status.in_(
                (DeploymentStatus.AUTHORISED.value, DeploymentStatus.RUNNING.value)), Deployment.end_at <= moment)
            .order_by(Deployment.id)  # the automatic stops are audited in deployment order
        ).all()  # fmt: skip
        return sum(1 for dep in due if close_if_due(session, dep, moment))


def eligible_officers(rt: GalleryRuntime, actor: Actor) -> list[str]:
    """Users of the actor's agency who may be named as alert officers."""
    enforce(rt.session_factory, actor, Action.LIVE_PREPARE, "live_deployment:officers", actor.agency_id)
    eligible = {r.value for r in roles_for(Action.LIVE_REVIEW_ALERT)}
    with rt.session_factory() as session:
        rows = session.execute(
            select(User.username, RoleGrant.role)
            .join(RoleGrant, RoleGrant.user_id == User.id)
            .where(User.agency_id == actor.agency_id, User.active.is_(True))
        ).all()
        return sorted({name for name, role in rows if role in eligible})


__all__ = [
    "CameraInput",
    "DeploymentInfo",
    "DeploymentInput",
    "authorise_deployment",
    "cancel_deployment",
    "confirm_signage",
    "create_deployment",
    "expected_for",
    "get_deployment",
    "list_deployments",
    "refuse_deployment",
    "start_deployment",
    "stop_deployment",
    "sweep_due",
]
