"""Reading booking records: the subjects an agency may see, one subject's bookings, an enrolled photo (original or
aligned comparison crop) and its face landmarks.

Every read is authorised and audited here, in the service function that does it; the web pages, the REST API and
the CLI only call these functions. Authorisation is the central policy (:mod:`faceleads.core.policy`): the role
first (before anything is read), then the record's agency — its own, or a gallery shared with the actor's agency by
an agreement in force (:func:`faceleads.gallery.visibility.gallery_shared`; the check fails closed). A record of
another agency that is not shared is answered exactly like a missing one (:class:`NotFound`), and the refusal is
audited. A subject under destruction (or destroyed) is never shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, enforce
from faceleads.core.uow import transaction
from faceleads.db import Agency
from faceleads.errors import NotFound, ValidationError
from faceleads.gallery.access import record_access
from faceleads.gallery.geometry import template_geometry
from faceleads.gallery.models import Encounter, FaceTemplate, Image, Subject, SubjectStatus
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.gallery.visibility import DEFAULT_PURPOSE, gallery_shared, visible_gallery_ids
from faceleads.vision.compare import compare_crop, crop_landmarks
from faceleads.vision.imaging import load_image, media_type

MAX_PAGE = 500
VIEWS = ("original", "aligned")


@dataclass(frozen=True)
class SubjectSummary:
    subject_id: int
    subject_number: str
    agency: str
    gallery_id: int
    photo_count: int
    latest_booking: date | None


@dataclass(frozen=True)
class SubjectPage:
    total: int
    subjects: list[SubjectSummary] = field(default_factory=list)


@dataclass(frozen=True)
class EncounterView:
    encounter_id: int
    booking_number: str
    booking_date: date
    charge: str
    image_ids: list[int]


@dataclass(frozen=True)
class SubjectDetail:
    subject_id: int
    subject_number: str
    agency: str
    gallery_id: int
    encounters: list[EncounterView]

    @property
    def image_ids(self) -> list[int]:
        return [i for e in self.encounters for i in e.image_ids]


@dataclass(frozen=True)
class PhotoView:
    """One held photo of a subject for the comparison filmstrip: its booking, size and face geometry."""

    image_id: int
    booking_number: str
    booking_date: date
    capture_date: date | None
    width: int
    height: int
    box: list[float] | None  # the enrolled face's box in the original's pixels (None: no face enrolled)
    landmarks: list[list[float]] | None  # five landmarks in comparison-crop coordinates (384 x 384)
    landmarks_original: list[list[float]] | None  # the same landmarks in the original's pixels

    def to_json(self) -> dict[str, object]:
        return {"image_id": self.image_id, "booking_number": self.booking_number,
                "booking_date": self.booking_date.isoformat(),
                "capture_date": self.capture_date.isoformat() if self.capture_date else None,
                "width": self.width, "height": self.height, "box": self.box, "landmarks": self.landmarks,
                "landmarks_original": self.landmarks_original}  # fmt: skip


def photo_views(rt: GalleryRuntime, session: Session, subject_id: int) -> list[PhotoView]:
    """Every photo of a subject still held (destroyed ones have no store address), newest booking first.

    Internal: callers authorise and audit the read (:func:`subject_photos`, or a casework service scoped to a lead).
    """
    subject = session.get(Subject, subject_id)
    if subject is None:
        return []
    rows = session.execute(
        select(Image, Encounter.booking_number, Encounter.booking_date, FaceTemplate)
        .join(Encounter, Encounter.id == Image.encounter_id)
        .outerjoin(FaceTemplate, FaceTemplate.image_id == Image.id)
        .where(Image.subject_id == subject_id, Image.store_address.is_not(None))
        .order_by(Encounter.booking_date.desc(), Image.id)
    ).all()
    out = []
    for image, booking, day, template in rows:
        # Box and landmarks are sealed with the subject's key (gallery.geometry), like the embedding.
        geometry = template_geometry(rt.keystore, subject, image, template) if template is not None else None
        points = geometry.landmarks if geometry is not None else None
        out.append(PhotoView(image.id, booking, day, image.capture_date, image.width, image.height,
                             geometry.box if geometry is not None else None,
                             crop_landmarks(points) if points else None, points))  # fmt: skip
    return out


def subject_photos(rt: GalleryRuntime, actor: Actor, subject_id: int, *, case: str | None = None) -> list[PhotoView]:
    """Every held photo of a subject with its booking and face geometry (the comparison filmstrip); authorised
    like the subject's record and audited."""
    ref, missing, case_ref = f"subject:{subject_id}", f"no subject {subject_id}", _case_ref(case)
    enforce(rt.session_factory, actor, Action.VIEW_GALLERY_RECORD, ref, case=case_ref)
    with rt.session_factory() as session:
        found = session.get(Subject, subject_id)
        _authorise_item(rt, session, actor, Action.VIEW_GALLERY_RECORD, ref, found,
                        found.gallery_id if found else None, missing, case_ref)  # fmt: skip
        photos = photo_views(rt, session, subject_id)
    audit.record_now(rt.session_factory, actor, "view_landmarks", ref, audit.Outcome.OK, case=case_ref,
                     details={"photo_count": len(photos), "view": "filmstrip"})  # fmt: skip
    return photos


def _case_ref(case: str | None) -> str | None:
    return case.strip()[:100] or None if isinstance(case, str) else None


def _authorise_item(
    rt: GalleryRuntime,
    session: Session,
    actor: Actor,
    action: Action,
    object_ref: str,
    subject: Subject | None,
    gallery_id: int | None,
    missing: str,
    case: str | None,
) -> Subject:
    """Scope check of one record (after the role check): own agency or shared; otherwise 'missing', audited."""
    if subject is None or gallery_id is None or subject.status != SubjectStatus.ACTIVE.value:
        raise NotFound(missing)
    shared = gallery_shared(session, actor.agency_id, gallery_id)
    enforce(rt.session_factory, actor, action, object_ref, subject.agency_id, shared=shared, case=case,
            not_found=missing)  # fmt: skip
    return subject


def list_subjects(
    rt: GalleryRuntime,
    actor: Actor,
    *,
    purpose: str = DEFAULT_PURPOSE,
    number: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> SubjectPage:
    """Active subjects in the galleries the actor's agency may see for ``purpose`` (own galleries and those shared
    with it by an agreement in force), by subject number and then id (numbers repeat across agencies), so pages
    neither overlap nor skip; ``number`` filters on a part of it. The listing is audited.
    """
    enforce(rt.session_factory, actor, Action.VIEW_GALLERY_RECORD, "gallery:subjects")
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE or not isinstance(offset, int) or offset < 0:
        raise ValidationError(f"limit must be 1 to {MAX_PAGE} and offset 0 or more")
    purpose = (purpose or DEFAULT_PURPOSE).strip()[:64]
    with rt.session_factory() as session:
        ids = visible_gallery_ids(session, actor.agency_id, purpose)
        page = SubjectPage(total=0, subjects=[])
        if ids:
            where = [Subject.gallery_id.in_(ids), Subject.status == SubjectStatus.ACTIVE.value]
            if number:
                where.append(Subject.subject_number.contains(number.strip()[:64]))
            total = session.scalar(select(func.count()).select_from(Subject).where(*where)) or 0
            photos = select(Image.subject_id, func.count(Image.id).label("n")).group_by(Image.subject_id).subquery()
            latest = (
                select(Encounter.subject_id, func.max(Encounter.booking_date).label("d"))
                .group_by(Encounter.subject_id)
                .subquery()
            )
            rows = session.execute(
                select(Subject, Agency.code, photos.c.n, latest.c.d)
                .join(Agency, Agency.id == Subject.agency_id)
                .outerjoin(photos, photos.c.subject_id == Subject.id)
                .outerjoin(latest, latest.c.subject_id == Subject.id)
                .where(*where)
                # Subject numbers are unique only within an agency (shared galleries list several): the id breaks
                # ties, so that pages never overlap or skip a subject.
                .order_by(Subject.subject_number, Subject.id)
                .limit(limit)
                .offset(offset)
            ).all()
            summaries = []
            for row in rows:
                # Indexed, not unpacked: the subquery columns leave the row untyped, and unpacking it yields `object`.
                subject: Subject = row[0]
                summaries.append(SubjectSummary(subject.id, subject.subject_number, row[1], subject.gallery_id,
                                                row[2] or 0, row[3]))  # fmt: skip
            page = SubjectPage(total=total, subjects=summaries)
    audit.record_now(rt.session_factory, actor, "view_gallery_records", "gallery:subjects", audit.Outcome.OK,
                     purpose=purpose, details={"listed": len(page.subjects), "total": page.total, "offset": offset,
                                               "filtered": bool(number)})  # fmt: skip
    return page


def subject_detail(rt: GalleryRuntime, actor: Actor, subject_id: int, *, case: str | None = None) -> SubjectDetail:
    """One subject's encounters (bookings, newest first; one day's in the order recorded, as in the filmstrip)
    and photo ids; the read is audited."""
    ref, missing, case_ref = f"subject:{subject_id}", f"no subject {subject_id}", _case_ref(case)
    enforce(rt.session_factory, actor, Action.VIEW_GALLERY_RECORD, ref, case=case_ref)
    with rt.session_factory() as session:
        found = session.get(Subject, subject_id)
        subject = _authorise_item(rt, session, actor, Action.VIEW_GALLERY_RECORD, ref, found,
                                  found.gallery_id if found else None, missing, case_ref)  # fmt: skip
        agency = session.get(Agency, subject.agency_id)
        encounters = session.scalars(
            select(Encounter).where(Encounter.subject_id == subject.id)
            .order_by(Encounter.booking_date.desc(), Encounter.id)
        ).all()
        views = []
        for enc in encounters:
            image_ids = session.scalars(select(Image.id).where(Image.encounter_id == enc.id).order_by(Image.id)).all()
            views.append(EncounterView(enc.id, enc.booking_number, enc.booking_date, enc.charge, list(image_ids)))
        detail = SubjectDetail(subject.id, subject.subject_number, agency.code if agency else "", subject.gallery_id,
                               views)  # fmt: skip
        owner = subject.agency_id
    with transaction(rt.session_factory) as session:
        audit.record(session, actor, "view_gallery_record", ref, audit.Outcome.OK, case=case_ref,
                     details={"encounter_count": len(views)})  # fmt: skip
        record_access(session, actor, owner_agency_id=owner, action="view_gallery_record", object_ref=ref,
                      subject_id=detail.subject_id, gallery_id=detail.gallery_id, case=case_ref)  # fmt: skip
    return detail


def _load_image(
    rt: GalleryRuntime, session: Session, actor: Actor, action: Action, image_id: int, case: str | None
) -> tuple[Subject, Image]:
    ref, missing = f"image:{image_id}", f"no image {image_id}"
    enforce(rt.session_factory, actor, action, ref, case=case)
    image = session.get(Image, image_id)
    subject = session.get(Subject, image.subject_id) if image is not None else None
    if image is not None and image.store_address is None:
        subject = None  # its subject was destroyed: nothing is held any more
    checked = _authorise_item(rt, session, actor, action, ref, subject, image.gallery_id if image else None,
                              missing, case)  # fmt: skip
    assert image is not None
    return checked, image


def photo(
    rt: GalleryRuntime, actor: Actor, image_id: int, *, view: str = "original", case: str | None = None
) -> tuple[bytes, str]:
    """An enrolled photo: the decrypted original (``view`` 'original') or its aligned comparison crop ('aligned').

    Returns (bytes, media type). Every view is audited, with the case it was made for when given.
    """
    if view not in VIEWS:
        raise ValidationError("view must be 'original' or 'aligned'")
    case_ref = _case_ref(case)
    with rt.session_factory() as session:
        subject, image = _load_image(rt, session, actor, Action.VIEW_GALLERY_IMAGE, image_id, case_ref)
        data = rt.read_photo(subject, image)
        template = session.scalars(select(FaceTemplate).where(FaceTemplate.image_id == image_id)).first()
        # Box and landmarks are sealed with the subject's key (gallery.geometry), like the embedding.
        landmarks = template_geometry(rt.keystore, subject, image, template).landmarks if template else None
        subject_id, owner, gallery_id = subject.id, subject.agency_id, image.gallery_id
    if view == "aligned":
        if landmarks is None:
            raise NotFound(f"image {image_id} has no enrolled face to align")
        # Decoded reduced when large (the crop is 384 pixels); landmarks are in the original photo's pixels.
        loaded = load_image(data, rt.settings, reduce_to=rt.settings.decode_reduce_pixels)
        body, _ = compare_crop(loaded.pixels, loaded.to_decoded(landmarks))
        media = "image/jpeg"
    else:
        body, media = data, media_type(data)
    with transaction(rt.session_factory) as session:
        audit.record(session, actor, audit.AuditAction.VIEW_GALLERY_IMAGE, f"image:{image_id}",
                     audit.Outcome.OK, case=case_ref, details={"subject_id": subject_id, "view": view})  # fmt: skip
        record_access(session, actor, owner_agency_id=owner, action=audit.AuditAction.VIEW_GALLERY_IMAGE,
                      object_ref=f"image:{image_id}", subject_id=subject_id, image_id=image_id, gallery_id=gallery_id,
                      case=case_ref)  # fmt: skip
    return body, media


def landmarks(rt: GalleryRuntime, actor: Actor, image_id: int, *, case: str | None = None) -> list[list[float]] | None:
    """The enrolled face's five landmarks in comparison-crop coordinates (None when no face was enrolled from the
    photo). Landmarks are biometric: the read is authorised like the photo's record and audited."""
    case_ref = _case_ref(case)
    with rt.session_factory() as session:
        subject, image = _load_image(rt, session, actor, Action.VIEW_GALLERY_RECORD, image_id, case_ref)
        template = session.scalars(select(FaceTemplate).where(FaceTemplate.image_id == image_id)).first()
        geometry = template_geometry(rt.keystore, subject, image, template) if template is not None else None
        points = crop_landmarks(geometry.landmarks) if geometry is not None else None
        subject_id, owner, gallery_id = subject.id, subject.agency_id, image.gallery_id
    with transaction(rt.session_factory) as session:
        audit.record(session, actor, "view_landmarks", f"image:{image_id}", audit.Outcome.OK,
                     case=case_ref, details={"subject_id": subject_id, "found": points is not None})  # fmt: skip
        record_access(session, actor, owner_agency_id=owner, action="view_landmarks", object_ref=f"image:{image_id}",
                      subject_id=subject_id, image_id=image_id, gallery_id=gallery_id, case=case_ref)  # fmt: skip
    return points
