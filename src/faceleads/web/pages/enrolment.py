"""Enrolment: one booking record from a form, and bulk jobs (manifest + zip) with live progress."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response

from faceleads.core.policy import Action
from faceleads.errors import NotFound
from faceleads.gallery.enrolment import RecordInput, enrol_record, parse_birth_year, parse_date, parse_sex
from faceleads.web.api.jobs import start_bulk_job
from faceleads.web.deps import PageScope, get_jobs, run_blocking
from faceleads.web.jobs import JobRunner
from faceleads.web.pages.common import NO_STORE, done, page_router, redirect
from faceleads.web.render import render
from faceleads.web.security import read_upload

router = page_router()

Jobs = Annotated[JobRunner, Depends(get_jobs)]


@router.get("/enrol", response_class=HTMLResponse)
def enrol_page(request: Request, scope: PageScope, jobs: Jobs) -> Response:
    """Single record upload and bulk jobs."""
    scope.require(Action.ENROL, "enrol", scope.actor.agency_id)
    return render(request, "enrol.html", {"jobs": [j.to_json() for j in jobs.list(scope.actor)], "result": None})


@router.post("/enrol/record")
async def enrol_record_page(
    request: Request,
    scope: PageScope,
    subject_number: Annotated[str, Form(max_length=64)],
    booking_number: Annotated[str, Form(max_length=64)],
    booking_date: Annotated[str, Form(max_length=20)],
    legal_authority: Annotated[str, Form(max_length=2000)],
    photos: Annotated[list[UploadFile], File()],
    charge: Annotated[str, Form(max_length=2000)] = "",
    sex: Annotated[str, Form(max_length=1)] = "",
    birth_year: Annotated[str, Form(max_length=4)] = "",
) -> Response:
    """Enrol one booking record from the form."""
    scope.require(Action.ENROL, "subject:new", scope.actor.agency_id)
    record = RecordInput(
        subject_number=subject_number.strip(), booking_number=booking_number.strip(),
        booking_date=parse_date(booking_date, "booking date"), legal_authority=legal_authority.strip(),
        charge=charge.strip(), sex=parse_sex(sex), birth_year=parse_birth_year(birth_year),
    )  # fmt: skip
    data = [await read_upload(p, scope.rt.settings.max_file_bytes, f"photo {p.filename or ''}".strip()) for p in photos]
    result = await run_blocking(request, enrol_record, scope.rt, scope.actor, record, data, source="web form")
    summary = "; ".join(f"image {p.image_id}: {p.status}" + (f" ({p.warning})" if p.warning else "")
                       for p in result.photos)  # fmt: skip
    return done(request, "/enrol", f"Record enrolled: subject {result.subject_id}, booking "
                                   f"{result.encounter_booking}. {summary}.")


@router.post("/enrol/bulk")
async def enrol_bulk_page(
    scope: PageScope,
    jobs: Jobs,
    manifest: Annotated[UploadFile, File()],
    photos: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Start a bulk enrolment job from an uploaded manifest and zip of photos."""
    if photos is not None and not photos.filename:
        photos = None  # the browser sends an empty part when no file was chosen
    job = await start_bulk_job(scope, jobs, manifest, photos, None)
    return redirect(f"/enrol/jobs/{job.job_id}")


@router.get("/enrol/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str, scope: PageScope, jobs: Jobs) -> Response:
    """A bulk job's progress (updated live) and its error report."""
    scope.require(Action.ENROL, f"job:{job_id[:40]}", scope.actor.agency_id)
    return render(request, "job.html", {"job": jobs.get(scope.actor, job_id).to_json()})


@router.get("/enrol/jobs/{job_id}/status")
def job_status(job_id: str, scope: PageScope, jobs: Jobs) -> JSONResponse:
    """Job status as JSON for the page's progress bar."""
    scope.require(Action.ENROL, f"job:{job_id[:40]}", scope.actor.agency_id)
    return JSONResponse(jobs.get(scope.actor, job_id).to_json(), headers=NO_STORE)


@router.get("/enrol/jobs/{job_id}/errors.csv")
def job_errors(job_id: str, scope: PageScope, jobs: Jobs) -> Response:
    """The job's error report."""
    scope.require(Action.ENROL, f"job:{job_id[:40]}", scope.actor.agency_id)
    job = jobs.get(scope.actor, job_id)
    if job.error_report is None or not job.error_report.exists():
        raise NotFound("this job has no error report")
    return Response(job.error_report.read_bytes(), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="enrolment-{job_id}-errors.csv"', **NO_STORE})  # fmt: skip
