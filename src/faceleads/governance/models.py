"""Governance records: destruction requests with their eligibility checklist, decision, execution progress and
certificate (see docs/destruction.md); the agency-administered eligibility criteria and disposition policy.

Nothing here is biometric: a request names a subject by its database id; the certificate counts what was destroyed
and names the destroyed key id (a random identifier, not personal data).
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from faceleads.db import Base, utcnow


class RequestStatus(StrEnum):
    """Lifecycle of a destruction request."""

    REQUESTED = "requested"  # recorded, checklist being completed
    APPROVED = "approved"  # decision: approve (every checklist item satisfied)
    DENIED = "denied"  # decision: deny (final)
    EXECUTING = "executing"  # execution started; a re-run resumes at ``step``
    COMPLETED = "completed"  # subject destroyed, certificate issued


class Step(IntEnum):
    """Execution steps; ``DestructionRequest.step`` holds the last one completed (and committed)."""

    NOT_STARTED = 0
    MARKED = 1  # subject marked ``destroying`` (out of search) and its blob addresses recorded
    KEY_DESTROYED = 2  # the subject's data key crypto-shredded in the keystore
    BLOBS_DELETED = 3  # encrypted originals removed from the blob store
    RECORDS_DELETED = 4  # templates and image rows deleted or scrubbed; subject reduced to a tombstone
    COMPLETED = 5  # subject ``destroyed``, certificate issued


class DestructionRequest(Base):
    """A request to destroy one subject's biometric records, from its recording to its certificate."""

    __tablename__ = "destruction_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    # Who asked (the person, their lawyer, a court, the agency's own retention review) and on what grounds.
    requester: Mapped[str] = mapped_column(String(200))
    grounds: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(150))
    recorded_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Eligibility checklist: item -> {"satisfied": bool, "note": str, "by": username, "at": iso time}.
    checklist: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=RequestStatus.REQUESTED.value, index=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(150), nullable=True)
    decided_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Execution progress (crash-safe resume).
    step: Mapped[int] = mapped_column(Integer, default=int(Step.NOT_STARTED))
    executed_by: Mapped[str | None] = mapped_column(String(150), nullable=True)
    executed_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    execution_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    key_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    # Blob addresses to delete, recorded at step 1 (the image rows are gone by step 4); emptied at completion.
    pending_blobs: Mapped[list[str]] = mapped_column(JSON, default=list)
    # What was destroyed: images, templates, blobs, blobs_absent, encounters; filled in as the steps run.
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    certificate_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    certificate_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The agency's eligibility criteria in force when the request was recorded (a snapshot: later changes to the
    # list do not move the goalposts of an open request): [{"code", "text", "check", "parameter"}]. None for a
    # request recorded before criteria were administered: the four default items apply.
    criteria: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    # "request" (someone asked) or "disposition" (opened by the agency's disposition policy).
    origin: Mapped[str] = mapped_column(String(16), default="request")
    disposition_ids: Mapped[list[int]] = mapped_column(JSON, default=list)


class CriterionCheck(StrEnum):
    """How an eligibility criterion is assessed. Every criterion is recorded by a person; for the computed kinds the
    system also works out the answer from the records and refuses a recording that contradicts it."""

    MANUAL = "manual"
    MAX_AGE_AT_BOOKING = "max_age_at_booking"  # parameter: years; the subject was younger at every booking
    WAITING_PERIOD = "waiting_period"  # parameter: days since the latest disposition (discharge) have passed


class DestructionCriterion(Base):
    """An item of an agency's destruction eligibility checklist (administered by the agency's administrators)."""

    __tablename__ = "destruction_criteria"
    __table_args__ = (UniqueConstraint("agency_id", "code", name="uq_destruction_criteria_agency_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    check: Mapped[str] = mapped_column(String(32), default=CriterionCheck.MANUAL.value)
    parameter: Mapped[int | None] = mapped_column(Integer, nullable=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(150))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    withdrawn_by: Mapped[str | None] = mapped_column(String(150), nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class DispositionRule(Base):
    """What an agency's policy does when a booking is disposed of in a given way: destroy the subject's records
    after a waiting period (days from the disposition date), or keep them. Kinds without a rule use the default
    (destroy, no waiting period)."""

    __tablename__ = "disposition_rules"
    __table_args__ = (UniqueConstraint("agency_id", "kind", name="uq_disposition_rules_agency_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))  # "destroy" or "retain"
    waiting_days: Mapped[int] = mapped_column(Integer, default=0)
    updated_by: Mapped[str] = mapped_column(String(150))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
