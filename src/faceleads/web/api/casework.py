"""Casework through :mod:`faceleads.casework`: cases and requests, probe evidence and its edits, searches for a
request, adjudication, blind verification, supervisor decisions, release and the lead report.

Every route is a thin adapter: the casework services authorise (central policy), validate and audit.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePath
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from faceleads.casework import adjudication, admin, cases, probes, reporting, searching
from faceleads.errors import ValidationError
from faceleads.web.api.schemas import DB_ID_MAX, ERRORS, Id
from faceleads.web.deps import ApiScope, run_blocking
from faceleads.web.security import read_upload, save_upload

router = APIRouter(tags=["casework"], responses=ERRORS)


class CaseIn(BaseModel):
    occurrence_number: str = Field(min_length=1, max_length=100)
    offence: str = Field(min_length=1, max_length=50)
    justification: str = Field(min_length=1, max_length=4000)
    investigator: str | None = Field(default=None, max_length=150)


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class RequestIn(BaseModel):
    purpose: str = Field(min_length=1, max_length=64)
    justification: str = Field(min_length=1, max_length=4000)
    priority: str = Field(default="routine", pattern="^(routine|urgent|threat_to_life)$")


class AuthoriseIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    grant: bool = True
    expires_at: datetime | None = Field(default=None, description="default: the agency's authorisation validity")
    galleries: list[int] | None = Field(default=None, max_length=100, description="gallery ids; default: all")


class EditsIn(BaseModel):
    edits: list[dict[str, Any]] = Field(default_factory=list, max_length=50)


class PickIn(BaseModel):
    face: int = Field(ge=1, le=1000)


class BoxIn(BaseModel):
    box: list[float] = Field(min_length=4, max_length=4)


class SearchIn(BaseModel):
    probe_ids: list[Annotated[int, Field(ge=1, le=DB_ID_MAX)]] = Field(min_length=1, max_length=20)
    top: int | None = Field(default=None, ge=2, le=50)
    floor: float | None = Field(default=None, ge=-1.0, le=1.0)


class ConclusionIn(BaseModel):
    conclusion: str = Field(pattern="^(excluded|possible_lead|inconclusive)$")
    reason_code: str | None = Field(default=None, max_length=32, description="see adjudication.REASON_CODES")
    notes: str = Field(default="", max_length=4000, description="required for a possible lead and reason 'other'")
    checklist: dict[str, str] = Field(default_factory=dict)


class ExclusionIn(BaseModel):
    reason_code: str = Field(min_length=1, max_length=32, description="an exclusion reason code")
    notes: str = Field(default="", max_length=4000)


class VerificationIn(BaseModel):
    result: str = Field(pattern="^(agree|disagree|possible_lead|inconclusive|excluded)$",
                        description="your own conclusion (possible_lead agrees; inconclusive/excluded disagree)")
    notes: str = Field(min_length=1, max_length=4000)
    checklist: dict[str, str] = Field(default_factory=dict)


class DecisionIn(BaseModel):
    decision: str = Field(pattern="^(verified|rejected)$")
    reason: str = Field(min_length=1, max_length=2000)


class OffenceIn(BaseModel):
    code: str = Field(min_length=1, max_length=50)
    title: str = Field(min_length=1, max_length=200)
    category: str = Field(min_length=1, max_length=50)


class PurposeIn(BaseModel):
    code: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=200)
    requires_authorisation: bool = False
    regime: str | None = Field(default=None, max_length=32,
                               description="also put it in this legal regime for your agency: investigative, exigent "
                                           "or live_deployment (docs/regimes.md)")


# --- cases and requests ----------------------------------------------------------------------------------------


@router.get("/cases")
def list_cases(scope: ApiScope, status: Annotated[str | None, Query(max_length=16)] = None) -> list[dict[str, Any]]:
    """Your agency's cases, newest first (optionally by status: open / closed)."""
    return [c.to_json() for c in cases.list_cases(scope.rt, scope.actor, status=status)]


@router.post("/cases", status_code=201)
def open_case(body: CaseIn, scope: ApiScope) -> dict[str, Any]:
    """Open a case: occurrence number, an offence from the approved list, justification."""
    return cases.open_case(scope.rt, scope.actor, body.occurrence_number, body.offence, body.justification,
                           investigator=body.investigator).to_json()  # fmt: skip


@router.get("/cases/{case_id}")
def show_case(case_id: Id, scope: ApiScope) -> dict[str, Any]:
    """A case with its requests, probes, searches and leads."""
    rt, actor = scope.rt, scope.actor
    return {
        **cases.show_case(rt, actor, case_id).to_json(),
        "requests": [r.to_json() for r in cases.list_requests(rt, actor, case_id)],
        "probes": [p.to_json() for p in probes.list_probes(rt, actor, case_id)],
        "searches": searching.list_case_searches(rt, actor, case_id),
        "leads": [lead.to_json() for lead in adjudication.list_leads(rt, actor, case_id)],
    }


@router.post("/cases/{case_id}/close")
def close_case(case_id: Id, body: ReasonIn, scope: ApiScope) -> dict[str, Any]:
    """Close a case (data kept until its retention period ends)."""
    return cases.close_case(scope.rt, scope.actor, case_id, body.reason).to_json()


@router.post("/cases/{case_id}/requests", status_code=201)
def open_request(case_id: Id, body: RequestIn, scope: ApiScope) -> dict[str, Any]:
    """Request facial recognition for a purpose (some purposes need a supervisor's authorisation first)."""
    return cases.open_request(scope.rt, scope.actor, case_id, body.purpose, body.justification,
                              priority=body.priority).to_json()  # fmt: skip


@router.post("/requests/{request_id}/authorisation")
def authorise_request(request_id: Id, body: AuthoriseIn, scope: ApiScope) -> dict[str, Any]:
    """A supervisor authorises (or refuses) a request's purpose; who, when and why are recorded."""
    return cases.authorise_request(scope.rt, scope.actor, request_id, body.reason, grant=body.grant,
                                   expires_at=body.expires_at, galleries=body.galleries).to_json()


# --- probes ----------------------------------------------------------------------------------------------------


@router.post("/cases/{case_id}/probes", status_code=201)
async def add_probe(
    case_id: Id,
    request: Request,
    scope: ApiScope,
    photo: Annotated[UploadFile, File(description="Evidence photo (hashed, stored encrypted, never altered)")],
    source: Annotated[str, Form(min_length=1, max_length=300)],
    obtained_by: Annotated[str, Form(min_length=1, max_length=150)],
    legal_basis: Annotated[str, Form(min_length=1, max_length=2000)],
    obtained_at: Annotated[datetime, Form(description="When the evidence was obtained (ISO time)")],
) -> dict[str, Any]:
    """Take in an evidence photo as a probe of the case."""
    data = await read_upload(photo, scope.rt.settings.max_file_bytes, "evidence photo")
    info = await run_blocking(request, probes.add_photo, scope.rt, scope.actor, case_id, data, source=source,
                              obtained_by=obtained_by, obtained_at=obtained_at, legal_basis=legal_basis,
                              filename=photo.filename or "")  # fmt: skip
    return info.to_json()


@router.post("/cases/{case_id}/videos", status_code=201)
async def add_video(
    case_id: Id,
    request: Request,
    scope: ApiScope,
    video: Annotated[UploadFile, File(description="Recorded video evidence (hashed, stored encrypted)")],
    source: Annotated[str, Form(min_length=1, max_length=300)],
    obtained_by: Annotated[str, Form(min_length=1, max_length=150)],
    legal_basis: Annotated[str, Form(min_length=1, max_length=2000)],
    obtained_at: Annotated[datetime, Form(description="When the evidence was obtained (ISO time)")],
    shots_per_track: Annotated[int, Form(ge=1, le=20)] = 3,
) -> dict[str, Any]:
    """Take in a recorded video: faces are tracked and each track's best shots become probes."""
    import secrets
    import shutil

    tmp = scope.rt.settings.data_dir / "jobs" / f"video-{secrets.token_hex(8)}"
    tmp.mkdir(parents=True, mode=0o700)
    try:
        # The video reader goes by the file's extension; keep the uploaded one (only a known suffix, never a path).
        suffix = PurePath(video.filename or "").suffix.lower()
        path = tmp / ("evidence" + (suffix if suffix.isascii() and suffix[1:].isalnum() else ".bin"))
        await save_upload(video, path, scope.rt.settings.max_video_bytes, "video")
        intake = await run_blocking(request, probes.add_video, scope.rt, scope.actor, case_id, path, source=source,
                                    obtained_by=obtained_by, obtained_at=obtained_at, legal_basis=legal_basis,
                                    shots_per_track=shots_per_track)  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return intake.to_json()


@router.get("/probes/{probe_id}")
def show_probe(probe_id: Id, scope: ApiScope) -> dict[str, Any]:
    """A probe's metadata: edits, chosen face, quality, override, whether it is searchable."""
    return probes.show_probe(scope.rt, scope.actor, probe_id).to_json()


@router.get("/probes/{probe_id}/faces")
async def probe_faces(probe_id: Id, request: Request, scope: ApiScope) -> list[dict[str, Any]]:
    """Faces found in the edited probe, most prominent first, with quality."""
    faces = await run_blocking(request, probes.detect_faces, scope.rt, scope.actor, probe_id)
    return [f.to_json() for f in faces]


@router.post("/probes/{probe_id}/face")
async def pick_face(probe_id: Id, body: PickIn, request: Request, scope: ApiScope) -> dict[str, Any]:
    """Choose a detected face (1 = most prominent) and compute its template."""
    info = await run_blocking(request, probes.pick_face, scope.rt, scope.actor, probe_id, body.face)
    return info.to_json()


@router.post("/probes/{probe_id}/box")
async def draw_box(probe_id: Id, body: BoxIn, request: Request, scope: ApiScope) -> dict[str, Any]:
    """Use a face inside an analyst-drawn box (x1, y1, x2, y2 in edited-image pixels)."""
    info = await run_blocking(request, probes.draw_box, scope.rt, scope.actor, probe_id, body.box)
    return info.to_json()


@router.put("/probes/{probe_id}/edits")
async def set_edits(probe_id: Id, body: EditsIn, request: Request, scope: ApiScope) -> dict[str, Any]:
    """Replace the non-destructive edit list (crop, rotate, flip, brightness, contrast, gamma, equalize, denoise,
    sharpen); logged with a new version. The face must be picked again afterwards."""
    info = await run_blocking(request, probes.set_edits, scope.rt, scope.actor, probe_id, body.edits)
    return info.to_json()


@router.get("/probes/{probe_id}/edits")
def edit_history(probe_id: Id, scope: ApiScope) -> list[dict[str, Any]]:
    """Every version of the probe's edit list."""
    return probes.edit_history(scope.rt, scope.actor, probe_id)


@router.post("/probes/{probe_id}/quality-override")
def override_quality(probe_id: Id, body: ReasonIn, scope: ApiScope) -> dict[str, Any]:
    """A supervisor allows a below-floor probe to be searched (recorded)."""
    return probes.override_quality(scope.rt, scope.actor, probe_id, body.reason).to_json()


@router.get("/probes/{probe_id}/image", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "Probe image (never cached)"}})  # fmt: skip
async def probe_image(
    probe_id: Id, request: Request, scope: ApiScope, edited: Annotated[bool, Query()] = True
) -> Response:
    """The probe image (edited, or the original) as PNG; every view is audited."""
    png = await run_blocking(request, probes.probe_image, scope.rt, scope.actor, probe_id, edited=edited)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


# --- search, adjudication, verification, release, report ---------------------------------------------------------


@router.post("/requests/{request_id}/searches", status_code=201)
async def run_search(request_id: Id, body: SearchIn, request: Request, scope: ApiScope) -> dict[str, Any]:
    """Search the gallery for a request with one probe or several fused probes of the same person."""
    info = await run_blocking(request, searching.run_search, scope.rt, scope.actor, request_id, body.probe_ids,
                              top=body.top, floor=body.floor)  # fmt: skip
    return info.to_json()


@router.get("/case-searches/{case_search_id}")
def show_case_search(case_search_id: Id, scope: ApiScope) -> dict[str, Any]:
    """A case search with its stored candidate list."""
    return searching.show_case_search(scope.rt, scope.actor, case_search_id).to_json()


@router.get("/case-searches/{case_search_id}/candidates")
def candidates(case_search_id: Id, scope: ApiScope) -> list[dict[str, Any]]:
    """The candidate list with the analyst's marks so far."""
    return [c.to_json() for c in adjudication.candidate_list(scope.rt, scope.actor, case_search_id)]


@router.put("/case-searches/{case_search_id}/candidates/{rank}/conclusion")
def conclude(case_search_id: Id, rank: Id, body: ConclusionIn, scope: ApiScope) -> dict[str, Any]:
    """Mark a candidate excluded / possible_lead / inconclusive with a reason code and/or notes and the feature
    checklist."""
    return adjudication.adjudicate(scope.rt, scope.actor, case_search_id, rank, body.conclusion, body.notes,
                                   body.checklist, reason_code=body.reason_code).to_json()  # fmt: skip


@router.post("/case-searches/{case_search_id}/exclusions")
def exclude_remaining(case_search_id: Id, body: ExclusionIn, scope: ApiScope) -> dict[str, Any]:
    """Mark every candidate not yet marked as excluded with one reason code (and optional notes)."""
    ranks = adjudication.exclude_remaining(scope.rt, scope.actor, case_search_id, body.reason_code, body.notes)
    return {"excluded_ranks": ranks}


@router.post("/case-searches/{case_search_id}/submission")
def submit(case_search_id: Id, scope: ApiScope) -> list[dict[str, Any]]:
    """Submit the conclusions (every candidate marked); possible leads go to blind verification."""
    return [lead.to_json() for lead in adjudication.submit_adjudication(scope.rt, scope.actor, case_search_id)]


@router.get("/case-searches/{case_search_id}/report", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}, "description": "Lead report"}})  # fmt: skip
async def report(case_search_id: Id, request: Request, scope: ApiScope) -> Response:
    """The lead report PDF (verified/released leads; investigators receive released leads only)."""
    export = await run_blocking(request, reporting.export_report, scope.rt, scope.actor, case_search_id)
    return Response(export.pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="lead-report-{case_search_id}.pdf"',
        "X-Report-SHA256": export.sha256, "Cache-Control": "no-store"})  # fmt: skip


@router.get("/leads/queue")
def verification_queue(scope: ApiScope) -> list[int]:
    """Leads awaiting blind verification that you may verify (never your own)."""
    return adjudication.verification_queue(scope.rt, scope.actor)


@router.get("/leads/queue/items")
def verification_items(scope: ApiScope) -> list[dict[str, Any]]:
    """The same queue with each lead's case, offence, priority and waiting time (most urgent first)."""
    return [i.to_json() for i in adjudication.verification_items(scope.rt, scope.actor)]


@router.get("/leads/{lead_id}")
def show_lead(lead_id: Id, scope: ApiScope) -> dict[str, Any]:
    """A lead's state."""
    return adjudication.show_lead(scope.rt, scope.actor, lead_id).to_json()


@router.get("/leads/{lead_id}/verification-task")
def verification_task(lead_id: Id, scope: ApiScope) -> dict[str, Any]:
    """The blind verifier's view: probe and candidate, never the first analyst's conclusion."""
    return adjudication.verification_task(scope.rt, scope.actor, lead_id).to_json()


@router.post("/leads/{lead_id}/verification")
def verify(lead_id: Id, body: VerificationIn, scope: ApiScope) -> dict[str, Any]:
    """Record your own conclusion (possible_lead agrees; inconclusive or excluded disagree and go to a supervisor)
    with notes and your feature checklist."""
    return adjudication.verify_lead(scope.rt, scope.actor, lead_id, body.result, body.notes,
                                    body.checklist).to_json()  # fmt: skip


@router.get("/leads/{lead_id}/dispute")
def dispute(lead_id: Id, scope: ApiScope) -> dict[str, Any]:
    """A supervisor's view of a disputed lead: both examiners' conclusions, reasons, checklists and notes."""
    return adjudication.disagreement_view(scope.rt, scope.actor, lead_id)


@router.get("/leads/{lead_id}/photos/{image_id}", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}, "description": "Candidate photo (never cached)"}})
async def lead_photo(
    lead_id: Id, image_id: Id, request: Request, scope: ApiScope,
    view: Annotated[str, Query(pattern="^(aligned|original)$")] = "aligned",
) -> Response:
    """A photo of the lead's candidate for its blind verifier or the supervisor deciding its dispute (audited)."""
    body, media = await run_blocking(request, adjudication.lead_photo, scope.rt, scope.actor, lead_id, image_id,
                                     view=view)  # fmt: skip
    return Response(body, media_type=media, headers={"Cache-Control": "no-store"})


@router.post("/leads/{lead_id}/decision")
def decide(lead_id: Id, body: DecisionIn, scope: ApiScope) -> dict[str, Any]:
    """A supervisor decides a disputed lead: verified or rejected, with the reason."""
    return adjudication.resolve_disagreement(scope.rt, scope.actor, lead_id, body.decision, body.reason).to_json()


@router.post("/leads/{lead_id}/release")
def release(lead_id: Id, scope: ApiScope) -> dict[str, Any]:
    """Release a verified lead to the investigator."""
    return adjudication.release_lead(scope.rt, scope.actor, lead_id).to_json()


# --- administered lists ----------------------------------------------------------------------------------------


@router.get("/offences")
def offences(scope: ApiScope) -> list[dict[str, Any]]:
    """Your agency's offence list."""
    return [o.to_json() for o in admin.list_offences(scope.rt, scope.actor)]


@router.post("/offences", status_code=201)
def add_offence(body: OffenceIn, scope: ApiScope) -> dict[str, Any]:
    """Add an offence with its retention category (administrators)."""
    return admin.add_offence(scope.rt, scope.actor, body.code, body.title, body.category).to_json()


@router.get("/purposes")
def purposes(scope: ApiScope) -> list[dict[str, Any]]:
    """The search purposes, each with its legal regime for your agency."""
    return [p.to_json() for p in admin.list_purposes(scope.rt, scope.actor.agency_id)]


@router.post("/purposes", status_code=201)
def add_purpose(body: PurposeIn, scope: ApiScope) -> dict[str, Any]:
    """Add a search purpose (administrators)."""
    if not body.code.strip():
        raise ValidationError("purpose code is required")
    return admin.add_purpose(scope.rt, scope.actor, body.code, body.title,
                             requires_authorisation=body.requires_authorisation,
                             regime=body.regime).to_json()  # fmt: skip
