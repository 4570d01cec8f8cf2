"""Casework records: offences and purposes (administered lists), cases, requests, authorisations, evidence, probes,
searches made for a request, adjudications, leads with their verification, lead reports and retention runs.

Probe evidence is biometric: original bytes (and extracted video frames) are in the encrypted blob store under the
case's own data key (``Case.key_id`` = ``case:<uuid>``), and probe templates are AES-GCM ciphertext bound to their
probe. Destroying the case key at the end of the retention period makes all of it unreadable, backups included.
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
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from faceleads.db import Base, utcnow


def new_case_key_id() -> str:
    """A fresh random key id for a case's data key (never reused)."""
    return f"case:{uuid.uuid4()}"


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    PURGED = "purged"  # retention expired: probe data destroyed, the record kept as a tombstone


class RequestStatus(StrEnum):
    AWAITING_AUTHORISATION = "awaiting_authorisation"
    READY = "ready"  # may be searched
    REFUSED = "refused"


class Ratification(StrEnum):
    """Where an exigent search stands with its supervisor's ratification (``lapsed`` is computed from the time)."""

    PENDING = "pending"
    RATIFIED = "ratified"
    REFUSED = "refused"


class SearchStatus(StrEnum):
    ADJUDICATING = "adjudicating"
    SUBMITTED = "submitted"


class Conclusion(StrEnum):
    EXCLUDED = "excluded"
    POSSIBLE_LEAD = "possible_lead"
    INCONCLUSIVE = "inconclusive"


class FeatureFinding(StrEnum):
    SIMILAR = "similar"
    DISSIMILAR = "dissimilar"
    NOT_VISIBLE = "not_visible"


# The morphological feature checklist of facial examiners (FISWG-style), in report order.
FEATURES: tuple[str, ...] = (
    "face_shape",
    "hairline",
    "forehead",
    "eyebrows",
    "eyes",
    "nose",
    "ears",
    "mouth",
    "chin",
    "facial_hair",
    "scars_marks_tattoos",
)


class Priority(StrEnum):
    """How urgently a request (and the work that follows from it) must be handled."""

    ROUTINE = "routine"
    URGENT = "urgent"
    THREAT_TO_LIFE = "threat_to_life"  # exigent: handled before anything else


PRIORITY_ORDER: dict[str, int] = {Priority.THREAT_TO_LIFE.value: 0, Priority.URGENT.value: 1,
                                  Priority.ROUTINE.value: 2}  # fmt: skip


class VerificationResult(StrEnum):
    AGREE = "agree"
    DISAGREE = "disagree"


class LeadStatus(StrEnum):
    AWAITING_VERIFICATION = "awaiting_verification"
    DISPUTED = "disputed"  # the verifier disagreed: a supervisor decides
    VERIFIED = "verified"
    REJECTED = "rejected"
    RELEASED = "released"


class Offence(Base):
    """An offence on an agency's approved list; its category sets the retention period of its cases."""

    __tablename__ = "offences"
    __table_args__ = (UniqueConstraint("agency_id", "code", name="uq_offences_agency_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    code: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(50))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Purpose(Base):
    """A purpose a search may be made for (system-wide list). Galleries name the purposes they allow."""

    __tablename__ = "purposes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    requires_authorisation: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AgencyRegimeSettings(Base):
    """An agency's administered regime windows (absent: the defaults of ``Settings``)."""

    __tablename__ = "agency_regime_settings"

    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), primary_key=True, autoincrement=False)
    exigent_window_hours: Mapped[int] = mapped_column(Integer)
    authorisation_hours: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(150))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PurposeRegime(Base):
    """The legal regime a purpose belongs to for one agency (absent: investigative)."""

    __tablename__ = "purpose_regimes"
    __table_args__ = (UniqueConstraint("agency_id", "purpose_id", name="uq_purpose_regimes_agency_purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    purpose_id: Mapped[int] = mapped_column(ForeignKey("purposes.id"))
    regime: Mapped[str] = mapped_column(String(32))
    updated_by: Mapped[str] = mapped_column(String(150))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Case(Base):
    """An investigation: occurrence number (unique per agency), offence, investigator, justification."""

    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("agency_id", "occurrence_number", name="uq_cases_agency_occurrence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    occurrence_number: Mapped[str] = mapped_column(String(100))
    offence_id: Mapped[int] = mapped_column(ForeignKey("offences.id"))
    investigator: Mapped[str] = mapped_column(String(150))
    justification: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.OPEN.value)
    key_id: Mapped[str] = mapped_column(String(80), unique=True, default=new_case_key_id)
    opened_by: Mapped[str] = mapped_column(String(150))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    retention_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    offence: Mapped[Offence] = relationship()


class CaseRequest(Base):
    """A request for facial recognition on a case, for one purpose, with its justification."""

    __tablename__ = "case_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    purpose_id: Mapped[int] = mapped_column(ForeignKey("purposes.id"))
    justification: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(150))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status: Mapped[str] = mapped_column(String(32))
    # The legal regime of the purpose for the agency when the request was opened (docs/regimes.md).
    regime: Mapped[str] = mapped_column(String(32), default="investigative")
    priority: Mapped[str] = mapped_column(String(16), default=Priority.ROUTINE.value,
                                          server_default=Priority.ROUTINE.value)  # fmt: skip

    purpose: Mapped[Purpose] = relationship()


class Authorisation(Base):
    """A supervisor's recorded decision: who, when, why (purpose authorisation, quality override, or ratification of
    an exigent search), with its scope (case, request's purpose, galleries) and, for a purpose authorisation, its
    expiry: after ``expires_at`` it no longer authorises anything (checked at use)."""

    __tablename__ = "case_authorisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # "purpose", "quality_override" or "ratification"
    request_id: Mapped[int | None] = mapped_column(ForeignKey("case_requests.id"), nullable=True)
    probe_id: Mapped[int | None] = mapped_column(ForeignKey("probes.id"), nullable=True)
    case_search_id: Mapped[int | None] = mapped_column(ForeignKey("case_searches.id"), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    gallery_ids: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)  # None: every gallery allowed
    granted: Mapped[bool] = mapped_column(Boolean, default=True)
    by_username: Mapped[str] = mapped_column(String(150))
    by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Evidence(Base):
    """An evidence file as received (photo or video): hashed on intake, stored encrypted, never altered."""

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # "photo" or "video"
    filename: Mapped[str] = mapped_column(String(300), default="")
    sha256: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(16))
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    fps: Mapped[float | None] = mapped_column(Float, nullable=True)
    store_address: Mapped[str | None] = mapped_column(String(200), nullable=True)
    source: Mapped[str] = mapped_column(Text)  # where it came from (camera, seizure, witness phone ...)
    obtained_by: Mapped[str] = mapped_column(String(200))
    obtained_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    legal_basis: Mapped[str] = mapped_column(Text)
    received_by: Mapped[str] = mapped_column(String(150))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Probe(Base):
    """An image to search: an evidence photo or a frame of an evidence video, its edit list and chosen face.

    The face geometry refers to the *edited* image; changing the edits clears the face, its template and any
    quality override (they no longer describe what would be searched).
    """

    __tablename__ = "probes"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id"), index=True)
    frame_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    frame_time_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    track_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # A video frame is stored (encrypted, PNG) so that the probe never depends on re-decoding the video.
    frame_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    frame_address: Mapped[str | None] = mapped_column(String(200), nullable=True)
    edits: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    edits_version: Mapped[int] = mapped_column(Integer, default=0)
    face_source: Mapped[str | None] = mapped_column(String(16), nullable=True)  # "detected" or "drawn"
    face_index: Mapped[int | None] = mapped_column(Integer, nullable=True)  # 1-based among detected faces
    faces_found: Mapped[int | None] = mapped_column(Integer, nullable=True)
    face_box: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
    face_landmarks: Mapped[list[list[float]] | None] = mapped_column(JSON, nullable=True)
    quality: Mapped[dict[str, float] | None] = mapped_column(JSON, nullable=True)
    quality_overall: Mapped[float | None] = mapped_column(Float, nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(200), nullable=True)
    template: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # AES-GCM ciphertext
    quality_override_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(String(150))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    evidence: Mapped[Evidence] = relationship()


class ProbeEditEvent(Base):
    """The log of edit-list changes of a probe (each version, who, when)."""

    __tablename__ = "probe_edit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    probe_id: Mapped[int] = mapped_column(ForeignKey("probes.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    edits: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    by_username: Mapped[str] = mapped_column(String(150))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CaseSearch(Base):
    """A search made for a request: the gallery search record, the probe(s) with the edits used, fusion weights."""

    __tablename__ = "case_searches"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("case_requests.id"), index=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id"), unique=True)
    # [{"probe_id", "edits", "edits_version", "quality", "weight", "face_box"}] as searched.
    probes_used: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    quality_override_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    analyst: Mapped[str] = mapped_column(String(150))
    analyst_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=SearchStatus.ADJUDICATING.value)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    regime: Mapped[str] = mapped_column(String(32), default="investigative", index=True)
    # Exigent searches: a supervisor ratifies by ``ratify_by``; unratified after it, the search is flagged and its
    # candidates are locked until ratified (Ratification; "lapsed" is computed from the time).
    ratify_by: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ratification: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    ratification_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Adjudication(Base):
    """The analyst's conclusion on one candidate of a stored candidate list."""

    __tablename__ = "adjudications"
    __table_args__ = (UniqueConstraint("case_search_id", "candidate_id", name="uq_adjudications_search_candidate"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_search_id: Mapped[int] = mapped_column(ForeignKey("case_searches.id"), index=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("search_candidates.id"))
    conclusion: Mapped[str] = mapped_column(String(16))
    reason_code: Mapped[str | None] = mapped_column(String(32), nullable=True)  # adjudication.REASON_CODES
    notes: Mapped[str] = mapped_column(Text)
    checklist: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    analyst: Mapped[str] = mapped_column(String(150))
    analyst_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Lead(Base):
    """A possible lead going through blind verification, supervisor resolution and release."""

    __tablename__ = "leads"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    case_search_id: Mapped[int] = mapped_column(ForeignKey("case_searches.id"), index=True)
    adjudication_id: Mapped[int] = mapped_column(ForeignKey("adjudications.id"), unique=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("search_candidates.id"))
    status: Mapped[str] = mapped_column(String(32), default=LeadStatus.AWAITING_VERIFICATION.value)
    verifier: Mapped[str | None] = mapped_column(String(150), nullable=True)
    verifier_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    verification: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The verifier's own conclusion on the same scale as the analyst's (agree = possible_lead), their feature
    # checklist, and when they first opened the task (for examiner QA: time per verification).
    verifier_conclusion: Mapped[str | None] = mapped_column(String(16), nullable=True)
    verification_checklist: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    verification_notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    verification_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    supervisor: Mapped[str | None] = mapped_column(String(150), nullable=True)
    supervisor_decision: Mapped[str | None] = mapped_column(String(16), nullable=True)  # verified / rejected
    supervisor_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    released_by: Mapped[str | None] = mapped_column(String(150), nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LeadOutcomeKind(StrEnum):
    """What became of a released lead, as the investigator signs it off."""

    CORROBORATED = "corroborated"  # independent evidence supports the lead
    ELIMINATED = "eliminated"  # the person was eliminated from the inquiry
    NO_FURTHER_ACTION = "no_further_action"
    CHARGED = "charged"


class LeadOutcome(Base):
    """The investigator's signed-off outcome of a released lead. A later entry supersedes an earlier one (the
    inquiry moved on); every entry is kept."""

    __tablename__ = "lead_outcomes"

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(32))
    notes: Mapped[str] = mapped_column(Text)
    signed_off_by: Mapped[str] = mapped_column(String(150))
    signed_off_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    signed_off_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class LeadReport(Base):
    """An exported lead report: its SHA-256 and the encrypted PDF (every export and download is audited)."""

    __tablename__ = "lead_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    case_search_id: Mapped[int] = mapped_column(ForeignKey("case_searches.id"), index=True)
    lead_ids: Mapped[list[int]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    # The PDF, encrypted under the case key (so the page that shows the hash can deliver the very same bytes, and
    # the retention purge's key destruction makes it unreadable with the rest of the case).
    store_address: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_by: Mapped[str] = mapped_column(String(150))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RetentionRun(Base):
    """What one retention run did."""

    __tablename__ = "retention_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_by: Mapped[str] = mapped_column(String(150))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    cases_purged: Mapped[int] = mapped_column(Integer, default=0)
    evidence_purged: Mapped[int] = mapped_column(Integer, default=0)
    probes_purged: Mapped[int] = mapped_column(Integer, default=0)
    blobs_deleted: Mapped[int] = mapped_column(Integer, default=0)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
