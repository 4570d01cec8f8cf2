"""Helpers shared by the live services: times, loading scoped records, the automatic stop at the end time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from faceleads.casework.common import as_utc
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, enforce
from faceleads.core.regime import in_force
from faceleads.errors import NotFound, PermissionDenied
from faceleads.live.models import (
    Deployment,
    DeploymentCamera,
    DeploymentOfficer,
    DeploymentStatus,
    StopReason,
    WatchList,
)

ACTIVE = (DeploymentStatus.AUTHORISED.value, DeploymentStatus.RUNNING.value)


def effective_status(dep: Deployment, now: datetime) -> DeploymentStatus:
    """The deployment's status at ``now``: an authorised or running deployment is over once its stored end time
    has passed, whatever any process did or failed to do (the authorisation's expiry: :func:`faceleads.core.regime.
    in_force`, the one expiry rule)."""
    if dep.status in ACTIVE and not in_force(as_utc(dep.end_at), as_utc(now)):
        return DeploymentStatus.ENDED
    return DeploymentStatus(dep.status)


def close_if_due(session: Session, dep: Deployment, now: datetime) -> bool:
    """Record the automatic stop of a deployment whose end time has passed (idempotent); True if it did.

    Every read and decision path calls this, so the stop holds even if the camera workers and the server that
    started them died: the stored end time is the authority.
    """
    if effective_status(dep, now) is not DeploymentStatus.ENDED or dep.status == DeploymentStatus.ENDED.value:
        return False
    was_running = dep.status == DeploymentStatus.RUNNING.value
    # Conditional update: of two processes closing it at once, one records the stop.
    changed = session.execute(
        update(Deployment)
        .where(Deployment.id == dep.id, Deployment.status.in_(ACTIVE))
        .values(
            status=DeploymentStatus.ENDED.value,
            stopped_at=dep.end_at,
            stopped_by="system",
            stop_reason=StopReason.END_TIME.value,
        )
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    session.refresh(dep)
    if not changed:
        return False
    session.execute(
        update(DeploymentCamera)
        .where(DeploymentCamera.deployment_id == dep.id, DeploymentCamera.status == "running")
        .values(status="stopped", stopped_at=dep.end_at)
    )
    audit.record(session, None, "live_deployment_end", f"live_deployment:{dep.id}", audit.Outcome.OK,
                 details={"reason": StopReason.END_TIME.value, "was_running": was_running,
                          "end_at": as_utc(dep.end_at).isoformat()})  # fmt: skip
    return True


def get_deployment_row(session: Session, deployment_id: int) -> Deployment:
    dep = session.get(Deployment, deployment_id)
    if dep is None:
        raise NotFound(f"no live deployment {deployment_id}")
    return dep


def get_watchlist_row(session: Session, watchlist_id: int) -> WatchList:
    wl = session.get(WatchList, watchlist_id)
    if wl is None:
        raise NotFound(f"no watch list {watchlist_id}")
    return wl


def officer_ids(session: Session, deployment_id: int) -> list[int]:
    return list(
        session.scalars(select(DeploymentOfficer.user_id).where(DeploymentOfficer.deployment_id == deployment_id))
    )


def require_officer(factory: sessionmaker[Session], session: Session, actor: Actor, dep: Deployment) -> None:
    """Alerts are for the officers named on the deployment (holding a role that may review alerts); refusals are
    audited."""
    ref = f"live_deployment:{dep.id}"
    enforce(factory, actor, Action.LIVE_REVIEW_ALERT, ref, dep.agency_id)
    if actor.user_id is None or actor.user_id not in officer_ids(session, dep.id):
        reason = f"user {actor.username!r} is not one of the alert officers named on deployment {dep.id}"
        audit.record_now(factory, actor, Action.LIVE_REVIEW_ALERT.value, ref, audit.Outcome.DENIED,
                         details={"reason": reason})  # fmt: skip
        raise PermissionDenied(reason)


def deny(factory: sessionmaker[Session], actor: Actor, action: Action, ref: str, reason: str) -> PermissionDenied:
    """Audit a refusal decided by a live rule (not by the role policy) and return the error to raise."""
    audit.record_now(factory, actor, action.value, ref, audit.Outcome.DENIED, details={"reason": reason[:500]})
    return PermissionDenied(reason)
