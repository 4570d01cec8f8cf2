"""Live deployment records: watch lists and their entries, deployments with their authorisation, named alert
officers, cameras with their counters, the frozen watch list of each deployment, and alerts.

Nothing here describes a person who did not match: the cameras' counters are plain counts. An alert's captured face
is in the encrypted blob store under the alert's own data key (``LiveAlert.key_id`` = ``alert:<uuid>``), which
retention destroys (crypto-shredding).

The authorisation of a deployment is modelled on the general shape "regime, scope, authorised by/at, expires at"
(``regime`` is always ``live_deployment``) so that it can move onto a general authorisations table later.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from faceleads.core.regime import LIVE_PURPOSE as LIVE_PURPOSE  # re-exported: live code imports it from here
from faceleads.core.regime import Regime
from faceleads.db import Base, utcnow

# The legal-regime vocabulary is core's (faceleads.core.regime): a deployment is authorised under the live
# deployment regime, and LIVE_PURPOSE — the purpose galleries (and sharing agreements) must list for their subjects to
# be put on a watch list — is in that regime for every agency, so it never serves a retrospective search.
LIVE_REGIME = Regime.LIVE_DEPLOYMENT.value


def new_alert_key_id() -> str:
    """A fresh random key id for one alert's captured face (destroyed by retention; never reused)."""
    return f"alert:{uuid.uuid4()}"


class DeploymentStatus(StrEnum):
    """Lifecycle of a deployment. ``ENDED`` is also what any read reports once the stored end time has passed."""

    DRAFT = "draft"  # prepared, awaiting a supervisor's authorisation
    AUTHORISED = "authorised"
    REFUSED = "refused"
    RUNNING = "running"
    ENDED = "ended"
    CANCELLED = "cancelled"  # withdrawn before it ran


class StopReason(StrEnum):
    OPERATOR = "operator"
    END_TIME = "end_time"  # the system stopped it at its end time


class AlertDecision(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    FALSE_ALERT = "false_alert"
    NOT_ACTIONED = "not_actioned"


class WatchList(Base):
    """A named list of wanted people of one agency."""

    __tablename__ = "live_watchlists"
    __table_args__ = (UniqueConstraint("agency_id", "name", name="uq_live_watchlists_agency_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(150))
    created_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WatchListEntry(Base):
    """One wanted person on a list: a gallery subject the agency may use, with the reason and an expiry."""

    __tablename__ = "live_watchlist_entries"
    __table_args__ = (UniqueConstraint("watchlist_id", "subject_id", name="uq_live_watchlist_entries_list_subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    watchlist_id: Mapped[int] = mapped_column(ForeignKey("live_watchlists.id", ondelete="CASCADE"), index=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    reason: Mapped[str] = mapped_column(String(200))  # e.g. the warrant number
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    added_by: Mapped[str] = mapped_column(String(150))
    added_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Deployment(Base):
    """One authorised, time-boxed use of live recognition at one place."""

    __tablename__ = "live_deployments"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    watchlist_id: Mapped[int] = mapped_column(ForeignKey("live_watchlists.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=DeploymentStatus.DRAFT.value, index=True)
    legal_basis: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(Text)
    location: Mapped[str] = mapped_column(String(300))
    start_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    alert_threshold: Mapped[float] = mapped_column(Float)
    signage_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    signage_note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(150))
    created_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Authorisation (regime, scope, by, at, expiry): see the module docstring.
    regime: Mapped[str] = mapped_column(String(32), default=LIVE_REGIME)
    scope: Mapped[str | None] = mapped_column(Text, nullable=True)
    authorised_by: Mapped[str | None] = mapped_column(String(150), nullable=True)
    authorised_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    authorised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    authorisation_note: Mapped[str] = mapped_column(Text, default="")
    # What the authorising officer was shown: the expected false alert rate and the calibration it came from.
    expected_false_alerts_per_1000: Mapped[float | None] = mapped_column(Float, nullable=True)
    calibration_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Running.
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    started_by: Mapped[str | None] = mapped_column(String(150), nullable=True)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    stopped_by: Mapped[str | None] = mapped_column(String(150), nullable=True)
    stop_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The frozen watch list: its size, the SHA-256 of its canonical contents (also in the audit log).
    frozen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    frozen_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    frozen_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)


class DeploymentOfficer(Base):
    """A user of the deployment's agency who receives and reviews its alerts."""

    __tablename__ = "live_deployment_officers"
    __table_args__ = (UniqueConstraint("deployment_id", "user_id", name="uq_live_deployment_officers_dep_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("live_deployments.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)


class DeploymentCamera(Base):
    """A camera source of a deployment and its counters (counts only: nothing about the people it saw)."""

    __tablename__ = "live_cameras"
    __table_args__ = (UniqueConstraint("deployment_id", "position", name="uq_live_cameras_dep_position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("live_deployments.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(Text)  # file path, rtsp://, http(s)://, or device:N
    status: Mapped[str] = mapped_column(String(16), default="idle")  # idle / running / stopped / failed
    error: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    frames_read: Mapped[int] = mapped_column(Integer, default=0)
    frames_processed: Mapped[int] = mapped_column(Integer, default=0)
    frames_dropped: Mapped[int] = mapped_column(Integer, default=0)
    faces: Mapped[int] = mapped_column(Integer, default=0)
    faces_compared: Mapped[int] = mapped_column(Integer, default=0)
    tracks: Mapped[int] = mapped_column(Integer, default=0)
    alerts: Mapped[int] = mapped_column(Integer, default=0)
    video_seconds: Mapped[float] = mapped_column(Float, default=0.0)


class FrozenEntry(Base):
    """The watch list as frozen when its deployment started (one row per entry), and when an entry dropped out."""

    __tablename__ = "live_frozen_entries"
    __table_args__ = (UniqueConstraint("deployment_id", "subject_id", name="uq_live_frozen_entries_dep_subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("live_deployments.id", ondelete="CASCADE"), index=True)
    entry_id: Mapped[int] = mapped_column(Integer)  # no FK: the list may change after the freeze
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    templates: Mapped[int] = mapped_column(Integer, default=0)
    dropped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    drop_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)  # destroyed / expired


class LiveAlert(Base):
    """A track whose score reached the threshold: at most one per track. The officers review it."""

    __tablename__ = "live_alerts"
    __table_args__ = (UniqueConstraint("camera_id", "track_number", name="uq_live_alerts_camera_track"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("live_deployments.id"), index=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("live_cameras.id"), index=True)
    track_number: Mapped[int] = mapped_column(Integer)
    frozen_entry_id: Mapped[int] = mapped_column(ForeignKey("live_frozen_entries.id"))
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    image_id: Mapped[int] = mapped_column(Integer)  # the watch-list photo that matched best (no FK: destruction)
    score: Mapped[float] = mapped_column(Float)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    video_time_s: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    key_id: Mapped[str] = mapped_column(String(80), unique=True, default=new_alert_key_id)
    capture_address: Mapped[str | None] = mapped_column(String(200), nullable=True)
    capture_meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # width, height, quality
    decision: Mapped[str] = mapped_column(String(16), default=AlertDecision.PENDING.value, index=True)
    decision_note: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str | None] = mapped_column(String(150), nullable=True)
    decided_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    retention_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
