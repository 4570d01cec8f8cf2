"""Gallery: enrol a booking record with photos, list visible galleries and subjects, subject photos."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import func, select

from faceleads.core.policy import Action
from faceleads.db import Agency
from faceleads.errors import NotFound, ValidationError
from faceleads.gallery.enrolment import RecordInput, enrol_record, parse_birth_year, parse_date, parse_sex
from faceleads.gallery.galleries import list_galleries
from faceleads.gallery.models import Encounter, Image, Subject, SubjectStatus
from faceleads.gallery.visibility import DEFAULT_PURPOSE
from faceleads.web.api.schemas import ERRORS, Id
from faceleads.web.deps import ApiScope, DbSession, Scope, run_blocking
from faceleads.web.media import gallery_image, gallery_landmarks
from faceleads.web.security import read_upload

router = APIRouter(prefix="/gallery", tags=["gallery"], responses=ERRORS)

MAX_PHOTOS = 20


class PhotoResult(BaseModel):
    status: str
    image_id: int
    template_id: int | None
    warning: str


class EnrolResponse(BaseModel):
    subject_id: int
    booking_number: str
    photos: list[PhotoResult]


class SubjectSummary(BaseModel):
    subject_id: int
    subject_number: str
    agency: str
    gallery_id: int
    photo_count: int
    latest_booking: date | None


class SubjectPage(BaseModel):
    total: int
    subjects: list[SubjectSummary]


class EncounterOut(BaseModel):
    encounter_id: int
    booking_number: str
    booking_date: date
    charge: str
    image_ids: list[int]


class SubjectDetail(BaseModel):
    subject_id: int
    subject_number: str
    agency: str
    gallery_id: int
    encounters: list[EncounterOut]


@router.get("/galleries")
def galleries(scope: ApiScope) -> list[dict[str, Any]]:
    """Your agency's galleries and those shared with it, with template counts."""
    return list_galleries(scope.rt, scope.actor)


@router.post("/records", response_model=EnrolResponse, status_code=201)
async def enrol(
    request: Request,
    scope: ApiScope,
    subject_number: Annotated[str, Form(min_length=1, max_length=64)],
    booking_number: Annotated[str, Form(min_length=1, max_length=64)],
    booking_date: Annotated[str, Form(description="YYYY-MM-DD", max_length=20)],
    legal_authority: Annotated[str, Form(min_length=1, max_length=2000)],
    photos: Annotated[list[UploadFile], File(description="One or more photos of this booking")],
    charge: Annotated[str, Form(max_length=2000)] = "",
    gallery: Annotated[str, Form(max_length=100)] = "",
    sex: Annotated[str, Form(max_length=1)] = "",
    birth_year: Annotated[str, Form(max_length=4)] = "",
) -> EnrolResponse:
    """Enrol one booking record with its photos, all-or-nothing (records officers)."""
    scope.require(Action.ENROL, "subject:new", scope.actor.agency_id)
    if not photos or len(photos) > MAX_PHOTOS:
        raise ValidationError(f"a record needs 1 to {MAX_PHOTOS} photos")
    record = RecordInput(
        subject_number=subject_number.strip(),
        booking_number=booking_number.strip(),
        booking_date=parse_date(booking_date, "booking date"),
        legal_authority=legal_authority.strip(),
        charge=charge.strip(),
        gallery=gallery.strip() or None,
        sex=parse_sex(sex),
        birth_year=parse_birth_year(birth_year),
    )
    data = [await read_upload(p, scope.rt.settings.max_file_bytes, f"photo {p.filename or ''}".strip()) for p in photos]
    result = await run_blocking(request, enrol_record, scope.rt, scope.actor, record, data, source="web upload")
    return EnrolResponse(
        subject_id=result.subject_id,
        booking_number=result.encounter_booking,
        photos=[PhotoResult(status=p.status, image_id=p.image_id, template_id=p.template_id, warning=p.warning)
                for p in result.photos],
    )  # fmt: skip


def visible_subjects(
    scope: Scope, session: DbSession, purpose: str, number: str | None, limit: int, offset: int
) -> SubjectPage:
    """Active subjects in the galleries visible to the actor's agency for ``purpose``."""
    scope.require(Action.VIEW_GALLERY_RECORD, "gallery:subjects")
    ids = scope.visible_galleries(session, purpose)
    if not ids:
        return SubjectPage(total=0, subjects=[])
    where = [Subject.gallery_id.in_(ids), Subject.status == SubjectStatus.ACTIVE.value]
    if number:
        where.append(Subject.subject_number.contains(number.strip()))
    total = session.scalar(select(func.count()).select_from(Subject).where(*where)) or 0
    photos = select(Image.subject_id, func.count(Image.id).label("n")).group_by(Image.subject_id).subquery()
    latest = (
        select(Encounter.subject_id, func.max(Encounter.booking_date).label("d")).group_by(Encounter.subject_id)
    ).subquery()
    rows = session.execute(
        select(Subject, Agency.code, photos.c.n, latest.c.d)
        .join(Agency, Agency.id == Subject.agency_id)
        .outerjoin(photos, photos.c.subject_id == Subject.id)
        .outerjoin(latest, latest.c.subject_id == Subject.id)
        .where(*where)
        .order_by(Subject.subject_number)
        .limit(limit)
        .offset(offset)
    ).tuples().all()
    return SubjectPage(
        total=total,
        subjects=[
            SubjectSummary(subject_id=s.id, subject_number=s.subject_number, agency=code, gallery_id=s.gallery_id,
                           photo_count=n or 0, latest_booking=d)
            for s, code, n, d in rows
        ],
    )  # fmt: skip


@router.get("/subjects", response_model=SubjectPage)
def subjects(
    scope: ApiScope,
    session: DbSession,
    purpose: Annotated[str, Query(min_length=1, max_length=64)] = DEFAULT_PURPOSE,
    number: Annotated[str | None, Query(max_length=64, description="Subject number contains")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> SubjectPage:
    """Subjects your agency may see (own galleries and those shared with it for ``purpose``)."""
    return visible_subjects(scope, session, purpose, number, limit, offset)


def subject_detail(scope: Scope, session: DbSession, subject_id: int) -> SubjectDetail:
    """One subject with encounters and photo ids (policy-checked: own agency or shared)."""
    subject = session.get(Subject, subject_id)
    if subject is None or subject.status != SubjectStatus.ACTIVE.value:
        raise NotFound(f"no subject {subject_id}")
    scope.require_gallery_item(session, Action.VIEW_GALLERY_RECORD, f"subject:{subject_id}", subject.agency_id,
                               subject.gallery_id)  # fmt: skip
    agency = session.get(Agency, subject.agency_id)
    encounters = session.scalars(
        select(Encounter).where(Encounter.subject_id == subject.id).order_by(Encounter.booking_date.desc())
    ).all()
    out = []
    for enc in encounters:
        image_ids = session.scalars(select(Image.id).where(Image.encounter_id == enc.id).order_by(Image.id)).all()
        out.append(EncounterOut(encounter_id=enc.id, booking_number=enc.booking_number,
                                booking_date=enc.booking_date, charge=enc.charge,
                                image_ids=list(image_ids)))  # fmt: skip
    return SubjectDetail(subject_id=subject.id, subject_number=subject.subject_number,
                         agency=agency.code if agency else "", gallery_id=subject.gallery_id,
                         encounters=out)  # fmt: skip


@router.get("/subjects/{subject_id}", response_model=SubjectDetail)
def subject(subject_id: Id, scope: ApiScope, session: DbSession) -> SubjectDetail:
    """A subject's encounters (bookings) and photo ids."""
    return subject_detail(scope, session, subject_id)


@router.get(
    "/images/{image_id}",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "The image (never cached)"}},
)
async def image(
    image_id: Id,
    request: Request,
    scope: ApiScope,
    view: Annotated[str, Query(pattern="^(original|aligned)$")] = "original",
    case: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """An enrolled photo (original, or aligned comparison crop). Every view is audited."""
    body, media = await run_blocking(request, gallery_image, scope, image_id, view=view, case=case)
    return Response(body, media_type=media, headers={"Cache-Control": "no-store"})


@router.get("/images/{image_id}/landmarks")
def landmarks(image_id: Id, scope: ApiScope) -> dict[str, Any]:
    """The enrolled face's five landmarks in aligned comparison-crop coordinates (no image content)."""
    return {"image_id": image_id, "landmarks": gallery_landmarks(scope, image_id)}
