"""Long work as jobs: bulk enrolment from an uploaded manifest + zip of photos or a server-side import folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import Response

from faceleads.core.policy import Action
from faceleads.errors import NotFound, ValidationError
from faceleads.web.api.schemas import ERRORS
from faceleads.web.deps import ApiScope, Scope, get_jobs
from faceleads.web.jobs import Job, JobRunner, unpack_bulk_upload
from faceleads.web.security import read_upload

Jobs = Annotated[JobRunner, Depends(get_jobs)]

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=ERRORS)

MAX_MANIFEST_UPLOAD = 64 * 1024 * 1024


def import_root(scope: Scope) -> Path:
    """The only server folder bulk enrolment may read by path: ``<data_dir>/imports``."""
    return (scope.rt.settings.data_dir / "imports").resolve()


def resolve_server_manifest(scope: Scope, server_path: str) -> Path:
    """A manifest path inside the import folder (anything else is refused, without naming server paths)."""
    root = import_root(scope)
    candidate = None if "\x00" in server_path else (root / server_path).resolve()
    if candidate is None or root not in candidate.parents or not candidate.is_file():
        raise ValidationError(
            "server_path must name a manifest file inside the import folder <data_dir>/imports (relative path)"
        )
    return candidate


@router.post("/bulk-enrolment", status_code=202)
async def bulk_enrolment(
    scope: ApiScope,
    runner: Jobs,
    manifest: Annotated[UploadFile | None, File(description="Manifest CSV (columns in docs/gallery.md)")] = None,
    photos: Annotated[UploadFile | None, File(description="Zip of the photos the manifest names")] = None,
    server_path: Annotated[str | None, Form(max_length=500, description="Manifest inside <data_dir>/imports")] = None,
) -> dict[str, Any]:
    """Start a bulk enrolment job; poll GET /jobs/{job_id} for progress."""
    job = await start_bulk_job(scope, runner, manifest, photos, server_path)
    return job.to_json()


async def start_bulk_job(
    scope: Scope, runner: JobRunner, manifest: UploadFile | None, photos: UploadFile | None, server_path: str | None
) -> Job:
    """Validate the input and queue the job (shared by the API and the web page)."""
    scope.require(Action.ENROL, "enrolment_batch:new", scope.actor.agency_id)
    if (manifest is None) == (not server_path):
        raise ValidationError("give either an uploaded manifest (with an optional photos zip) or a server_path")
    if server_path:
        manifest_path = resolve_server_manifest(scope, server_path)
        label = f"imports/{manifest_path.relative_to(import_root(scope)).as_posix()}"
        return runner.submit_manifest(scope.actor, manifest_path, photo_root=import_root(scope), label=label)
    assert manifest is not None
    settings = scope.rt.settings
    manifest_bytes = await read_upload(manifest, MAX_MANIFEST_UPLOAD, "manifest")
    zip_bytes = await read_upload(photos, settings.web_max_request_bytes, "photos zip") if photos else None
    workdir = runner.new_upload_dir()
    try:
        path = unpack_bulk_upload(manifest_bytes, zip_bytes, workdir, settings.web_max_request_bytes * 4)
    except BaseException:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
        raise
    name = (manifest.filename or "manifest.csv")[:100]
    return runner.submit_manifest(scope.actor, path, workdir, photo_root=workdir, label=f"uploaded {name!r}")


@router.get("")
def list_jobs(scope: ApiScope, runner: Jobs) -> list[dict[str, Any]]:
    """Your agency's jobs since the server started, newest first."""
    scope.require(Action.ENROL, "jobs", scope.actor.agency_id)
    return [j.to_json() for j in runner.list(scope.actor)]


@router.get("/{job_id}")
def job_status(job_id: str, scope: ApiScope, runner: Jobs) -> dict[str, Any]:
    """A job's status, progress and report."""
    scope.require(Action.ENROL, f"job:{job_id[:40]}", scope.actor.agency_id)
    return runner.get(scope.actor, job_id).to_json()


@router.get("/{job_id}/errors.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "Error report"}})  # fmt: skip
def job_errors(job_id: str, scope: ApiScope, runner: Jobs) -> Response:
    """The job's error report (row, status, subject, booking, photo, reason) as CSV."""
    scope.require(Action.ENROL, f"job:{job_id[:40]}", scope.actor.agency_id)
    job = runner.get(scope.actor, job_id)
    if job.error_report is None or not job.error_report.exists():
        raise NotFound(f"job {job_id} has no error report (no row failed, or it is still running)")
    return Response(
        job.error_report.read_bytes(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="enrolment-{job_id}-errors.csv"'},
    )
