"""Gallery: enrol a booking record with photos, list visible galleries and subjects, subject photos."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel

from faceleads.core.policy import Action
from faceleads.errors import ValidationError
from faceleads.gallery import viewing
from faceleads.gallery.enrolment import RecordInput, enrol_record, parse_birth_year, parse_date, parse_sex
from faceleads.gallery.galleries import list_galleries
from faceleads.gallery.visibility import DEFAULT_PURPOSE
from faceleads.web.api.schemas import ERRORS, Id
from faceleads.web.deps import ApiScope, run_blocking
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


@router.get("/subjects", response_model=SubjectPage)
def subjects(
    scope: ApiScope,
    purpose: Annotated[str, Query(min_length=1, max_length=64)] = DEFAULT_PURPOSE,
    number: Annotated[str | None, Query(max_length=64, description="Subject number contains")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> SubjectPage:
    """Subjects your agency may see (own galleries and those shared with it for ``purpose``); the listing is audited."""
    page = viewing.list_subjects(scope.rt, scope.actor, purpose=purpose, number=number, limit=limit, offset=offset)
    return SubjectPage.model_validate(asdict(page))


@router.get("/subjects/{subject_id}", response_model=SubjectDetail)
def subject(
    subject_id: Id, scope: ApiScope, case: Annotated[str | None, Query(max_length=100)] = None
) -> SubjectDetail:
    """A subject's encounters (bookings) and photo ids (own agency or shared; the read is audited)."""
    return SubjectDetail.model_validate(asdict(viewing.subject_detail(scope.rt, scope.actor, subject_id, case=case)))


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
    body, media = await run_blocking(request, viewing.photo, scope.rt, scope.actor, image_id, view=view, case=case)
    return Response(body, media_type=media, headers={"Cache-Control": "no-store"})


@router.get("/images/{image_id}/landmarks")
def landmarks(
    image_id: Id, scope: ApiScope, case: Annotated[str | None, Query(max_length=100)] = None
) -> dict[str, Any]:
    """The enrolled face's five landmarks in aligned comparison-crop coordinates (no image content; audited)."""
    return {"image_id": image_id, "landmarks": viewing.landmarks(scope.rt, scope.actor, image_id, case=case)}
