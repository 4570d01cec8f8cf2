"""Gallery records: galleries and their sharing agreements, subjects, encounters (bookings), images, face
templates, searches with their candidate lists, and bulk-enrolment batches (see docs/gallery.md).

Biometric content never sits in clear in these tables: originals are in the encrypted blob store (the image row
holds only its address) and embeddings are AES-GCM ciphertext bound to their record. A subject's ``key_id`` names
its data key in the separate keystore; destroying that key makes every blob and template of the subject unreadable.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from faceleads.db import Base, utcnow


def new_key_id() -> str:
    """A fresh random key id for a subject's data key (never derived from database ids, never reused)."""
    return f"subject:{uuid.uuid4()}"


class SubjectStatus(StrEnum):
    """Lifecycle of a subject: destroyed subjects keep a tombstone row but no readable data."""

    ACTIVE = "active"
    DESTROYED = "destroyed"
    # A destruction is under way (faceleads.governance.destruction): never searched, never shown, never enrolled.
    DESTROYING = "destroying"


class ImageFlag(StrEnum):
    """Why an enrolled photo deserves attention."""

    NO_FACE = "no_face"  # kept as an image without a template
    MULTIPLE_FACES = "multiple_faces"  # the most prominent face was enrolled


class RowStatus(StrEnum):
    """Outcome of one row of a bulk-enrolment batch."""

    ENROLLED = "enrolled"
    SKIPPED = "skipped"  # photo already enrolled for that subject
    ERROR = "error"


class DispositionKind(StrEnum):
    """How a booking's proceedings ended, when the end calls the holding of the photos into question."""

    WITHDRAWN = "withdrawn"  # charge withdrawn / discontinued
    DISMISSED = "dismissed"  # case dismissed by the court
    ACQUITTED = "acquitted"  # found not guilty
    PARDONED = "pardoned"  # conviction pardoned or quashed


class LegalAuthority(Base):
    """An entry of an agency's administered list of legal authorities under which booking photos may be held.

    Enrolment accepts only an active entry (by code or title); an encounter records the entry it was enrolled
    under (``Encounter.authority_id``). A withdrawn entry stays for the record, but encounters held under it are no
    longer lawful until reviewed (``faceleads.gallery.authorities``).
    """

    __tablename__ = "legal_authorities"
    __table_args__ = (UniqueConstraint("agency_id", "code", name="uq_legal_authorities_agency_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)  # the authority as cited, e.g. "PACE 1984 s.64A"
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    added_by: Mapped[str] = mapped_column(String(150))
    added_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    withdrawn_by: Mapped[str | None] = mapped_column(String(150), nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    withdrawal_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class GalleryState(Base):
    """One row: a counter bumped whenever which templates are lawful to search changes without a template being
    added or deleted (an authority withdrawn, records re-attributed). Every process's search index compares it
    before a search and re-checks its template set when it moved."""

    __tablename__ = "gallery_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    lawful_generation: Mapped[int] = mapped_column(Integer, default=0)


class Gallery(Base):
    """A named collection of booking records owned by one agency, held under a stated legal authority."""

    __tablename__ = "galleries"
    __table_args__ = (UniqueConstraint("agency_id", "name", name="uq_galleries_agency_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    legal_authority: Mapped[str] = mapped_column(Text)
    # Purposes the gallery may be searched for (e.g. "criminal-investigation").
    purposes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    shares: Mapped[list[GalleryShare]] = relationship(
        back_populates="gallery", cascade="all, delete-orphan", order_by="GalleryShare.id"
    )


class GalleryShare(Base):
    """A sharing agreement: ``gallery`` may be searched by ``agency`` for ``purposes`` between two dates.

    ``starts_on`` is inclusive, ``ends_on`` exclusive (None = open-ended); a revoked share stops at once.
    """

    __tablename__ = "gallery_shares"

    id: Mapped[int] = mapped_column(primary_key=True)
    gallery_id: Mapped[int] = mapped_column(ForeignKey("galleries.id", ondelete="CASCADE"), index=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    purposes: Mapped[list[str]] = mapped_column(JSON, default=list)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    agreement_ref: Mapped[str] = mapped_column(String(200), default="")
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    gallery: Mapped[Gallery] = relationship(back_populates="shares")


class Subject(Base):
    """A person as known to one agency (the agency's subject number), in one gallery.

    ``sex``, ``birth_year`` and ``population_group`` are optional and used only for fairness measurement.
    """

    __tablename__ = "subjects"
    __table_args__ = (UniqueConstraint("agency_id", "subject_number", name="uq_subjects_agency_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    gallery_id: Mapped[int] = mapped_column(ForeignKey("galleries.id"), index=True)
    subject_number: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(80), unique=True, default=new_key_id)
    sex: Mapped[str | None] = mapped_column(String(1), nullable=True)
    birth_year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    population_group: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=SubjectStatus.ACTIVE.value)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    destroyed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    encounters: Mapped[list[Encounter]] = relationship(back_populates="subject")


class Encounter(Base):
    """A booking: one arrest/custody event of a subject, with its date, charge and legal authority."""

    __tablename__ = "encounters"
    __table_args__ = (UniqueConstraint("agency_id", "booking_number", name="uq_encounters_agency_booking"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    booking_number: Mapped[str] = mapped_column(String(64))
    booking_date: Mapped[date] = mapped_column(Date)
    charge: Mapped[str] = mapped_column(Text, default="")
    legal_authority: Mapped[str] = mapped_column(Text)
    # The entry of the agency's list the booking is held under; None for a record enrolled before the list existed
    # (or re-enrolled text that matches no entry): such a record is not searched until reviewed.
    authority_id: Mapped[int | None] = mapped_column(ForeignKey("legal_authorities.id"), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    subject: Mapped[Subject] = relationship(back_populates="encounters")
    images: Mapped[list[Image]] = relationship(back_populates="encounter")


class Disposition(Base):
    """A disposition event of a booking (withdrawn, dismissed, acquitted, pardoned), with its date and reference.

    A fact about the booking; what the agency does about it (schedule the subject's destruction after a waiting
    period, or keep the record) is the agency's policy, applied by ``faceleads.governance.dispositions``. One event
    per kind per booking. Deleted with the subject's records when the subject is destroyed (the destruction request
    keeps the grounds).
    """

    __tablename__ = "dispositions"
    __table_args__ = (UniqueConstraint("encounter_id", "kind", name="uq_dispositions_encounter_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    occurred_on: Mapped[date] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(String(200))  # court or prosecution reference
    source: Mapped[str] = mapped_column(String(16))  # cli / api / web / manifest
    recorded_by: Mapped[str] = mapped_column(String(150))
    recorded_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Image(Base):
    """An enrolled photo. The original bytes are in the encrypted store at ``store_address``."""

    __tablename__ = "images"
    __table_args__ = (
        # The same photo twice for a subject is a duplicate (bulk re-runs are idempotent on this) ...
        UniqueConstraint("subject_id", "sha256", name="uq_images_subject_sha256"),
        # ... and one photo cannot belong to two subjects of the same gallery.
        UniqueConstraint("gallery_id", "sha256", name="uq_images_gallery_sha256"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id"), index=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    gallery_id: Mapped[int] = mapped_column(ForeignKey("galleries.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(8))
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    capture_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    source: Mapped[str] = mapped_column(String(300), default="")
    store_address: Mapped[str | None] = mapped_column(String(200), nullable=True)
    face_count: Mapped[int] = mapped_column(Integer, default=0)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    encounter: Mapped[Encounter] = relationship(back_populates="images")
    template: Mapped[FaceTemplate | None] = relationship(back_populates="image", uselist=False)


class FaceTemplate(Base):
    """The enrolled face of an image: encrypted geometry (box and landmarks), quality, model version and the
    encrypted embedding (see :mod:`faceleads.gallery.geometry`)."""

    __tablename__ = "face_templates"
    __table_args__ = (
        # Empty once every legacy row is sealed: lets the start-up check skip the table without scanning it.
        Index(
            "ix_face_templates_clear_geometry",
            "id",
            sqlite_where=text("box IS NOT NULL OR landmarks IS NOT NULL"),
            postgresql_where=text("box IS NOT NULL OR landmarks IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), unique=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    gallery_id: Mapped[int] = mapped_column(ForeignKey("galleries.id"), index=True)
    # AES-GCM ciphertext of {"box", "landmarks"} under the subject's key, bound like the embedding.
    geometry: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # Clear-text geometry of rows written before it was encrypted: sealed into ``geometry`` and set to NULL at the
    # first start after the upgrade (gallery.geometry.seal_legacy_geometry); never written any more.
    box: Mapped[list[float] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    landmarks: Mapped[list[list[float]] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    detector_score: Mapped[float] = mapped_column(Float)
    quality: Mapped[dict[str, float]] = mapped_column(JSON)
    quality_overall: Mapped[float] = mapped_column(Float)
    model_name: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(200), index=True)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # AES-GCM ciphertext (see template_context)
    embedding_norm: Mapped[float] = mapped_column(Float)
    # When model_version is a fusion of several recognition models: each model's own template, keyed by that
    # model's version, as {"ciphertext": base64 AES-GCM (bound like ``embedding``, with the member's version),
    # "norm": raw norm}. Kept so that a model can be added to or dropped from the fusion by `reindex` without
    # recomputing the others. Empty for a single-model template (``embedding`` is that model's template).
    member_templates: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Which detection path found the face (detector, upscaled, padded, whole_crop; docs/detection.md).
    found_by: Mapped[str] = mapped_column(String(16), default="detector")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    image: Mapped[Image] = relationship(back_populates="template")


class SearchRecord(Base):
    """One 1:N search with its justification and its result (the probe's hash, never the probe itself)."""

    __tablename__ = "searches"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    username: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    case_number: Mapped[str] = mapped_column(String(100), index=True)
    offence_code: Mapped[str] = mapped_column(String(50))
    reason: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(64))
    probe_sha256: Mapped[str] = mapped_column(String(64))
    face_index: Mapped[int] = mapped_column(Integer)
    probe_quality: Mapped[float | None] = mapped_column(Float, nullable=True)
    model_version: Mapped[str] = mapped_column(String(200))
    score_fusion: Mapped[str] = mapped_column(String(32))
    gallery_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    gallery_size: Mapped[int] = mapped_column(Integer)  # templates searched
    k: Mapped[int] = mapped_column(Integer)
    score_floor: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    candidates: Mapped[list[SearchCandidate]] = relationship(
        back_populates="search", order_by="SearchCandidate.rank", cascade="all, delete-orphan"
    )


class SearchCandidate(Base):
    """One row of a stored candidate list (one subject, at its best-matching photo)."""

    __tablename__ = "search_candidates"
    __table_args__ = (UniqueConstraint("search_id", "rank", name="uq_search_candidates_search_rank"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("encounters.id"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"))
    template_id: Mapped[int] = mapped_column(Integer)  # no FK: a reindex may replace the template later
    score: Mapped[float] = mapped_column(Float)

    search: Mapped[SearchRecord] = relationship(back_populates="candidates")
    # Read-only, loaded with the candidate list: a stored list shows a since-destroyed subject as destroyed.
    subject: Mapped[Subject] = relationship(lazy="selectin", viewonly=True)


class EnrolmentBatch(Base):
    """A bulk enrolment (manifest or NIST files), identified by the content hash of its input for resume."""

    __tablename__ = "enrolment_batches"
    __table_args__ = (UniqueConstraint("agency_id", "source_sha256", name="uq_enrolment_batches_agency_source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "manifest" or "nist"
    source: Mapped[str] = mapped_column(Text)
    source_sha256: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(100))
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class EnrolmentRow(Base):
    """The outcome of one row of a batch (written in the same transaction as the row's records)."""

    __tablename__ = "enrolment_rows"
    __table_args__ = (
        UniqueConstraint("batch_id", "row_number", name="uq_enrolment_rows_batch_row"),
        Index("ix_enrolment_rows_batch_status", "batch_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("enrolment_batches.id", ondelete="CASCADE"))
    row_number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    image_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class ChangeKind(StrEnum):
    """What an index change-feed entry says changed (``ref_id`` is a template id, or a subject id for SUBJECT)."""

    TEMPLATE_INSERT = "template_insert"
    TEMPLATE_UPDATE = "template_update"
    TEMPLATE_DELETE = "template_delete"
    SUBJECT = "subject"  # the subject's status changed (destruction): re-check all its templates


class IndexChange(Base):
    """The search-index change feed: one row per template insert, update or delete and per subject status change,
    written by database triggers in the writing transaction (so no writer can forget it), see
    :mod:`faceleads.gallery.changefeed`.

    ``id`` is allocated at insert time and never reused (AUTOINCREMENT on SQLite). ``seq`` is the commit-order
    sequence number: NULL until a sequencer, which only ever sees committed rows, numbers them densely under a
    lock. Every process applies the rows in ``seq`` order; a reader that has seen ``seq = n`` has seen every
    change committed before it.
    """

    __tablename__ = "index_changes"
    __table_args__ = (
        Index(
            "ix_index_changes_unsequenced",
            "id",
            sqlite_where=text("seq IS NULL"),
            postgresql_where=text("seq IS NULL"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True, unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    ref_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.current_timestamp())


class IndexFollower(Base):
    """A long-running process (server, job worker) that keeps a search index in memory and follows the feed.

    It beats every few seconds and records the last ``seq`` it applied, so that a destruction can wait until
    every live process has dropped the subject from its index before the subject's key is destroyed.
    """

    __tablename__ = "index_followers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    applied_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class PartnerAccess(Base):
    """A read of one agency's booking record by a user of another (partner) agency, through a sharing agreement.

    The owning agency sees every such access (``faceleads.gallery.access``): subject records and photos viewed,
    landmarks read, and its subjects returned as candidates of a partner's search. Written in the transaction of the
    access itself (beside its audit entry); ids only, nothing biometric. Rows stay after a destruction: they record
    that an access happened, like the audit log.
    """

    __tablename__ = "partner_accesses"
    __table_args__ = (Index("ix_partner_accesses_owner_at", "owner_agency_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_agency_id: Mapped[int] = mapped_column(Integer)
    accessor_agency_id: Mapped[int] = mapped_column(Integer, index=True)
    accessor_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    accessor_username: Mapped[str] = mapped_column(String(150))
    action: Mapped[str] = mapped_column(String(64))
    object_ref: Mapped[str] = mapped_column(String(300))
    subject_id: Mapped[int] = mapped_column(Integer)
    image_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    gallery_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    case_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
    purpose: Mapped[str | None] = mapped_column(String(100), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
