"""Enrolment of booking records: one photo (or one record) is written all-or-nothing in one transaction.

Order of writes for a photo: the subject's data key is created (idempotent) in the keystore, the image row is
flushed, the encrypted original is written to the blob store, the template with its encrypted embedding is added,
and the transaction commits. Killed at any point, the database holds the whole photo or nothing; a blob written
before a commit that never happened is an orphan that the next bulk run sweeps (``BlobStore.remove_orphans``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from faceleads import identifiers
from faceleads.config import Settings
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, require
from faceleads.core.uow import transaction
from faceleads.db import Agency, system_lock, utcnow
from faceleads.errors import ImageError, NotFound, PermissionDenied, ValidationError
from faceleads.gallery import geometry
from faceleads.gallery.authorities import listed_authority, refusal_reason, require_listed
from faceleads.gallery.models import (
    Encounter,
    FaceTemplate,
    Gallery,
    Image,
    ImageFlag,
    LegalAuthority,
    Subject,
    SubjectStatus,
)
from faceleads.gallery.runtime import GalleryRuntime, image_context, template_context
from faceleads.gallery.templates import encrypt_members
from faceleads.gallery.visibility import DEFAULT_PURPOSE
from faceleads.identifiers import Kind
from faceleads.storage.crypto import encrypt_embedding

DEFAULT_GALLERY = "bookings"
SEXES = {"M", "F", "X"}


class EnrolmentConflict(ValidationError):
    """The input contradicts what is already enrolled (e.g. a booking number reused with other data)."""


# --------------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class RecordInput:
    """The record-level fields of a booking (everything except the photos)."""

    subject_number: str
    booking_number: str
    booking_date: date
    legal_authority: str
    charge: str = ""
    gallery: str | None = None
    sex: str | None = None
    birth_year: int | None = None
    population_group: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.legal_authority, str) or not self.legal_authority.strip():
            raise ValidationError("legal authority is required")
        # One normal form and alphabet for the numbers people type (look-alikes would be a second record).
        object.__setattr__(self, "subject_number", identifiers.normalise(Kind.SUBJECT, self.subject_number))
        object.__setattr__(self, "booking_number", identifiers.normalise(Kind.BOOKING, self.booking_number))
        object.__setattr__(self, "legal_authority", identifiers.free_text(self.legal_authority, "legal authority"))
        if self.gallery is not None and self.gallery.strip():
            object.__setattr__(self, "gallery", identifiers.normalise(Kind.GALLERY, self.gallery))
        if self.sex is not None and self.sex not in SEXES:
            raise ValidationError(f"sex must be one of {', '.join(sorted(SEXES))} or empty, got {self.sex!r}")
        if self.booking_date > utcnow().date():
            raise ValidationError(f"booking date {self.booking_date.isoformat()} is in the future")
        if self.birth_year is not None and not 1900 <= self.birth_year <= utcnow().year:
            raise ValidationError(f"birth year {self.birth_year} is outside 1900..{utcnow().year}")


def parse_date(text: str, what: str = "date") -> date:
    """Parse an ISO date (YYYY-MM-DD) or a compact NIST date (YYYYMMDD) with a clear error."""
    value = (text or "").strip()
    try:
        if len(value) == 8 and value.isdigit():
            return date(int(value[:4]), int(value[4:6]), int(value[6:]))
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"bad {what} {text!r}: expected YYYY-MM-DD") from None


def parse_birth_year(text: str | None) -> int | None:
    """An optional four-digit year."""
    value = (text or "").strip()
    if not value:
        return None
    if not (len(value) == 4 and value.isdigit()):
        raise ValidationError(f"bad birth year {text!r}: expected a four-digit year")
    return int(value)


def parse_sex(text: str | None) -> str | None:
    """Optional sex code M, F or X (case-insensitive)."""
    value = (text or "").strip().upper()
    if not value:
        return None
    if value not in SEXES:
        raise ValidationError(f"bad sex {text!r}: expected M, F, X or empty")
    return value


# --------------------------------------------------------------------------------------------- analysis


@dataclass
class FaceData:
    """The enrolled face of a photo, as computed by the engine (picklable: crosses process boundaries)."""

    box: list[float]
    landmarks: list[list[float]]
    score: float
    quality: dict[str, float]
    embedding: np.ndarray
    embedding_norm: float
    found_by: str = "detector"
    # Each recognition model's own unit template and raw norm, by model version (several models fused).
    members: dict[str, tuple[np.ndarray, float]] = field(default_factory=dict)


@dataclass
class PhotoAnalysis:
    """Everything enrolment needs to know about one photo."""

    sha256: str
    format: str
    size_bytes: int
    width: int
    height: int
    face_count: int
    face: FaceData | None  # the most prominent face, or None when no usable face was found
    model_name: str
    model_version: str

    @property
    def flags(self) -> list[str]:
        if self.face is None:
            return [ImageFlag.NO_FACE.value]
        if self.face_count > 1:
            return [ImageFlag.MULTIPLE_FACES.value]
        return []

    @property
    def warning(self) -> str:
        """A human-readable note on the flags ('' when the photo is clean)."""
        if self.face is None:
            return "no usable face found: image kept without a template and flagged no_face"
        if self.face_count > 1:
            return f"{self.face_count} faces found: the most prominent was enrolled and the photo flagged"
        return ""


def analyse_photo(engine: Any, data: bytes, settings: Settings) -> PhotoAnalysis:
    """Load ``data`` through the safe intake, detect faces and embed the most prominent one.

    Raises :class:`ImageError` for unreadable photos. ``engine`` is a :class:`faceleads.vision.engine.FaceEngine`.
    """
    from faceleads.vision.imaging import load_image

    # Large photos are decoded reduced (boxes and landmarks still refer to the original, hashed bytes).
    image = load_image(data, settings, reduce_to=settings.decode_reduce_pixels)
    faces = engine.detect_loaded(image)
    face: FaceData | None = None
    if faces:
        best = faces[0]  # most prominent first
        engine.embed_faces(image.pixels, [best])
        assert best.embedding is not None and best.embedding_norm is not None
        face = FaceData(
            box=[float(v) for v in best.box],
            landmarks=[[float(x), float(y)] for x, y in best.landmarks],
            score=float(best.score),
            quality=best.quality.as_dict(),
            embedding=np.asarray(best.embedding, dtype=np.float32),
            embedding_norm=float(best.embedding_norm),
            found_by=best.found_by,
            members=member_templates(best),
        )
    return PhotoAnalysis(
        sha256=image.sha256,
        format=image.format,
        size_bytes=image.size_bytes,
        width=image.width,
        height=image.height,
        face_count=len(faces),
        face=face,
        model_name=engine.model_name,
        model_version=engine.model_version,
    )


def member_templates(face: Any) -> dict[str, tuple[np.ndarray, float]]:
    """Per-model templates of an embedded face to store beside a fused template ({} for a single model)."""
    members = face.model_embeddings
    if len(members) < 2:
        return {}
    norms = face.extra.get("member_norms", {})
    return {v: (np.asarray(vec, dtype=np.float32), float(norms.get(v, 0.0))) for v, vec in members.items()}


# --------------------------------------------------------------------------------------------- writing


@dataclass
class PhotoOutcome:
    """Result of writing one photo."""

    status: str  # "enrolled" or "skipped"
    image_id: int
    template_id: int | None = None
    warning: str = ""
    subject_id: int = 0
    gallery_id: int = 0
    embedding: np.ndarray | None = field(default=None, repr=False)


def agency_by_code(session: Session, code: str) -> Agency:
    """The agency with ``code`` (NotFound otherwise)."""
    agency = session.scalars(select(Agency).where(Agency.code == identifiers.agency_code(code))).first()
    if agency is None:
        raise NotFound(f"unknown agency {code!r}")
    return agency


def resolve_gallery(session: Session, actor: Actor, agency_id: int, name: str | None, authority: str) -> Gallery:
    """The enrolment gallery: the named one of the agency, or its default gallery (created on first use)."""
    gallery_name = identifiers.normalise(Kind.GALLERY, name) if name and name.strip() else DEFAULT_GALLERY
    gallery = session.scalars(
        select(Gallery).where(Gallery.agency_id == agency_id, Gallery.name == gallery_name)
    ).first()
    if gallery is not None:
        return gallery
    if gallery_name != DEFAULT_GALLERY:
        raise NotFound(f"unknown gallery {gallery_name!r} (create it first with: faceleads gallery create)")
    # The default gallery exists implicitly; its legal authority is that of the first record enrolled into it.
    gallery = Gallery(agency_id=agency_id, name=DEFAULT_GALLERY, legal_authority=authority, purposes=[DEFAULT_PURPOSE])
    session.add(gallery)
    session.flush()
    return gallery


def find_enrolled(session: Session, agency_id: int, subject_number: str, sha256: str) -> int | None:
    """Image id if this photo is already enrolled for this subject (idempotency check), else None."""
    return session.execute(
        select(Image.id)
        .join(Subject, Subject.id == Image.subject_id)
        .where(Subject.agency_id == agency_id, Subject.subject_number == subject_number, Image.sha256 == sha256)
    ).scalar_one_or_none()


def _upsert_subject(
    rt: GalleryRuntime, session: Session, agency_id: int, gallery: Gallery, rec: RecordInput
) -> Subject:
    subject = session.scalars(
        select(Subject).where(Subject.agency_id == agency_id, Subject.subject_number == rec.subject_number)
    ).first()
    if subject is None:
        subject = Subject(
            agency_id=agency_id,
            gallery_id=gallery.id,
            subject_number=rec.subject_number,
            sex=rec.sex,
            birth_year=rec.birth_year,
            population_group=rec.population_group,
        )
        session.add(subject)
        session.flush()
    else:
        if subject.status != SubjectStatus.ACTIVE.value:
            raise EnrolmentConflict(f"subject {rec.subject_number!r} was destroyed and cannot be re-enrolled")
        if subject.gallery_id != gallery.id:
            raise EnrolmentConflict(
                f"subject {rec.subject_number!r} is enrolled in another gallery (id {subject.gallery_id})"
            )
        for attr, label in (("sex", "sex"), ("birth_year", "birth year"), ("population_group", "group")):
            new, old = getattr(rec, attr), getattr(subject, attr)
            if new is not None and old is not None and new != old:
                raise EnrolmentConflict(
                    f"subject {rec.subject_number!r} is recorded with {label} {old!r}, this record says {new!r}"
                )
            if new is not None and old is None:
                setattr(subject, attr, new)
    # Idempotent; done before commit so a committed subject always has its key.
    rt.keystore.create(subject.key_id)
    return subject


def _upsert_encounter(
    session: Session, agency_id: int, subject: Subject, rec: RecordInput, authority: LegalAuthority
) -> Encounter:
    encounter = session.scalars(
        select(Encounter).where(Encounter.agency_id == agency_id, Encounter.booking_number == rec.booking_number)
    ).first()
    if encounter is None:
        encounter = Encounter(
            agency_id=agency_id,
            subject_id=subject.id,
            booking_number=rec.booking_number,
            booking_date=rec.booking_date,
            charge=rec.charge,
            legal_authority=authority.title,
            authority_id=authority.id,
        )
        session.add(encounter)
        session.flush()
        return encounter
    problems = []
    if encounter.subject_id != subject.id:
        other = session.get(Subject, encounter.subject_id)
        problems.append(f"subject {other.subject_number if other else '?'!s}")
    if encounter.booking_date != rec.booking_date:
        problems.append(f"date {encounter.booking_date.isoformat()}")
    if rec.charge and encounter.charge and encounter.charge != rec.charge:
        problems.append(f"charge {encounter.charge!r}")
    if encounter.authority_id is None:
        problems.append(
            f"authority {encounter.legal_authority!r}, which is not on the list and awaits review "
            "(faceleads authority review)"
        )
    elif encounter.authority_id != authority.id:
        problems.append(f"authority {encounter.legal_authority!r}")
    if problems:
        raise EnrolmentConflict(
            f"duplicate booking number {rec.booking_number!r} with conflicting data: "
            f"already recorded with {', '.join(problems)}"
        )
    if rec.charge and not encounter.charge:
        encounter.charge = rec.charge
    return encounter


def write_photo(
    rt: GalleryRuntime,
    session: Session,
    actor: Actor,
    agency_id: int,
    rec: RecordInput,
    analysis: PhotoAnalysis,
    data: bytes,
    *,
    capture_date: date | None = None,
    source: str = "",
) -> PhotoOutcome:
    """Write one analysed photo of ``rec`` inside ``session`` (the caller commits or rolls back).

    Returns ``skipped`` if the photo (by SHA-256) is already enrolled for this subject. Raises
    :class:`EnrolmentConflict` for contradictions with enrolled data.
    """
    require(actor, Action.ENROL, agency_id)
    # The entry points check the authority first (and audit a refusal); this catches a withdrawal in between.
    authority = listed_authority(session, agency_id, rec.legal_authority)
    if authority is None:
        raise PermissionDenied(refusal_reason(actor.agency_code or str(agency_id), rec.legal_authority))
    gallery = resolve_gallery(session, actor, agency_id, rec.gallery, authority.title)
    existing = find_enrolled(session, agency_id, rec.subject_number, analysis.sha256)
    if existing is not None:
        # Same photo, same subject: still check the record fields agree, so a conflicting re-run is reported.
        subject = _upsert_subject(rt, session, agency_id, gallery, rec)
        _upsert_encounter(session, agency_id, subject, rec, authority)
        return PhotoOutcome("skipped", existing, subject_id=subject.id, gallery_id=gallery.id)
    clash = session.execute(
        select(Subject.subject_number)
        .join(Image, Image.subject_id == Subject.id)
        .where(Image.gallery_id == gallery.id, Image.sha256 == analysis.sha256)
    ).scalar_one_or_none()
    if clash is not None:
        raise EnrolmentConflict(
            f"this photo is already enrolled in gallery {gallery.name!r} for another subject ({clash!r})"
        )
    subject = _upsert_subject(rt, session, agency_id, gallery, rec)
    encounter = _upsert_encounter(session, agency_id, subject, rec, authority)
    image = Image(
        encounter_id=encounter.id,
        subject_id=subject.id,
        gallery_id=gallery.id,
        sha256=analysis.sha256,
        format=analysis.format,
        size_bytes=analysis.size_bytes,
        width=analysis.width,
        height=analysis.height,
        capture_date=capture_date or rec.booking_date,
        source=source[:300],
        face_count=analysis.face_count,
        flags=analysis.flags,
    )
    session.add(image)
    session.flush()
    # The blob is written before the commit: a crash now leaves an orphan blob (swept), never a dangling row.
    image.store_address = rt.store.put(subject.key_id, data, image_context(analysis.sha256))
    outcome = PhotoOutcome("enrolled", image.id, warning=analysis.warning, subject_id=subject.id, gallery_id=gallery.id)
    if analysis.face is not None:
        face = analysis.face
        key = rt.keystore.get(subject.key_id)
        context = template_context(subject.key_id, analysis.sha256, analysis.model_version)
        template = FaceTemplate(
            image_id=image.id,
            subject_id=subject.id,
            gallery_id=gallery.id,
            geometry=geometry.seal(
                key, face.box, face.landmarks, geometry.geometry_context(subject.key_id, analysis.sha256)
            ),
            detector_score=face.score,
            quality=face.quality,
            quality_overall=float(face.quality.get("overall", 0.0)),
            model_name=analysis.model_name,
            model_version=analysis.model_version,
            embedding=encrypt_embedding(key, face.embedding, context, dim=face.embedding.size),
            embedding_norm=face.embedding_norm,
            member_templates=encrypt_members(key, subject.key_id, analysis.sha256, face.members),
            found_by=face.found_by,
        )
        session.add(template)
        session.flush()
        outcome.template_id = template.id
        outcome.embedding = face.embedding
    return outcome


def index_outcomes(rt: GalleryRuntime, outcomes: Sequence[PhotoOutcome]) -> None:
    """After commit: bring this process's index up to date (if it is built) through the change feed, the one path
    from the database to every process's index; other processes follow the same feed.

    A shared engine (Milvus) is also written at once with the embeddings in hand, by a process that has not built
    its index too (the CLI): every server searches that engine, and their feed followers then find the templates
    already there instead of decrypting and uploading them again.
    """
    items = [
        (o.template_id, o.subject_id, o.gallery_id, o.embedding)
        for o in outcomes
        if o.template_id is not None and o.embedding is not None
    ]
    if rt.shared_index and items:
        rt.add_templates(items)
    if rt.index_built and any(o.template_id is not None for o in outcomes):
        rt.sync_index()


# --------------------------------------------------------------------------------------------- locking


@contextlib.contextmanager
def enrolment_lock(rt: GalleryRuntime, exclusive: bool, blocking: bool = True) -> Iterator[bool]:
    """The store-writer lock, agreed on by every process of the deployment (:func:`faceleads.db.system_lock`).

    Writers hold it shared; the orphan sweep needs it exclusive, so it never deletes the blob of a photo another
    process (on any host sharing the blob store) is about to commit. Yields whether the lock was obtained (always
    True when ``blocking``). Released when its holder dies, even by ``kill -9``.
    """
    with system_lock(
        rt.db_engine, "store-writers", lock_dir=rt.settings.data_dir, shared=not exclusive, blocking=blocking
    ) as got:
        yield got


# --------------------------------------------------------------------------------------------- one record


@dataclass
class RecordResult:
    """Outcome of :func:`enrol_record`."""

    subject_id: int
    encounter_booking: str
    photos: list[PhotoOutcome]


def enrol_record(
    rt: GalleryRuntime,
    actor: Actor,
    rec: RecordInput,
    photos: Sequence[Path | bytes],
    *,
    source: str = "",
) -> RecordResult:
    """Enrol one booking record with its photos, all-or-nothing (one transaction for the whole record).

    The record's legal authority must be the code or title of an active entry of the agency's list
    (:mod:`faceleads.gallery.authorities`); otherwise the record is refused (:class:`PermissionDenied`, audited).
    Photos are analysed in this process. An unreadable photo refuses the whole record with :class:`ImageError`
    naming it; photos without a usable face are kept and flagged; with several faces the most prominent is used.
    """
    require(actor, Action.ENROL, actor.agency_id)
    if not photos:
        raise ValidationError("a record needs at least one photo")
    # Only records held under a listed legal authority enter the gallery (refusal audited, nothing analysed).
    require_listed(rt, actor, rec.legal_authority, f"booking:{rec.booking_number}")
    analysed: list[tuple[PhotoAnalysis, bytes, str]] = []
    for photo in photos:
        label = str(photo) if isinstance(photo, Path) else "photo bytes"
        if isinstance(photo, Path):
            try:
                data = photo.read_bytes()
            except FileNotFoundError:
                raise ImageError(f"photo {photo} does not exist") from None
            except OSError as exc:
                raise ImageError(f"cannot read photo {photo}: {exc.strerror}") from None
        else:
            data = bytes(photo)
        try:
            analysed.append((analyse_photo(rt.face_engine, data, rt.settings), data, label))
        except ImageError as exc:
            raise ImageError(f"{label}: {exc}") from None
    outcomes: list[PhotoOutcome] = []
    with enrolment_lock(rt, exclusive=False), transaction(rt.session_factory) as session:
        for analysis, data, label in analysed:
            outcomes.append(
                write_photo(
                    rt,
                    session,
                    actor,
                    actor.agency_id,
                    rec,
                    analysis,
                    data,
                    source=source or (label if label != "photo bytes" else ""),
                )
            )
        subject_id = outcomes[0].subject_id
        audit.record(
            session,
            actor,
            audit.AuditAction.ENROL,
            f"subject:{subject_id}",
            audit.Outcome.OK,
            details={"booking_number": rec.booking_number, "photo_count": len(outcomes)},
        )
    index_outcomes(rt, outcomes)
    return RecordResult(subject_id, rec.booking_number, outcomes)
