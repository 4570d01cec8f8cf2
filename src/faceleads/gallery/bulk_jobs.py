"""Bulk enrolment as a background job in the database queue (:mod:`faceleads.core.jobs`), run by any worker.

Submission (:func:`submit_bulk_upload`, :func:`submit_bulk_path`) checks the input at once — an unsafe or broken
zip is refused with the reason while the user waits — then stores it where every worker can read it: the uploaded
manifest and zip of photos go into the shared blob store, encrypted under a key of their own (``job:<id>``), and
the job row names them. A worker (:func:`bulk_job_handler`) unpacks them into a private temporary folder and runs
:func:`faceleads.gallery.bulk.enrol_manifest`, which records every row's outcome in the database as it goes; a
worker that takes the job over after another died simply runs it again and the batch resumes where it stopped.
When the job ends the input blobs are deleted and their key destroyed (they are photographs of people).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.jobs import Job, JobContext, JobLost, JobStatus, JobView, get_job, list_jobs, new_job, new_job_id
from faceleads.core.policy import Action, require
from faceleads.core.uow import transaction
from faceleads.errors import FaceleadsError, KeyDestroyedError, NotFound, PermissionDenied, ValidationError
from faceleads.gallery.bulk import enrol_manifest, error_report_csv
from faceleads.gallery.enrolment import enrolment_lock
from faceleads.gallery.runtime import GalleryRuntime

BULK_KIND = "bulk_enrolment"
MAX_ZIP_MEMBERS = 100_000


def unpack_bulk_upload(manifest: bytes, photos_zip: bytes | None, target: Path, max_total: int) -> Path:
    """Write ``manifest`` and the zip's files into ``target`` safely; returns the manifest path.

    Refuses absolute paths, ``..`` components, NUL bytes, links, device files and other special entries, too many
    members and more than ``max_total`` bytes uncompressed (a zip bomb), each with a :class:`ValidationError`
    naming the problem. The manifest is written last, so no zip entry can replace it.
    """
    target.mkdir(parents=True, exist_ok=True)
    path = target / "manifest.csv"
    if photos_zip is not None:
        _unpack_zip(photos_zip, target, max_total)
    path.write_bytes(manifest)
    return path


def _unpack_zip(photos_zip: bytes, target: Path, max_total: int) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(photos_zip))
    except zipfile.BadZipFile:
        raise ValidationError("the photos upload is not a zip archive") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise ValidationError(f"the zip holds {len(members)} entries; at most {MAX_ZIP_MEMBERS} are accepted")
        total = sum(m.file_size for m in members)
        if total > max_total:
            raise ValidationError(f"the zip expands to {total} bytes; at most {max_total} are accepted")
        root = target.resolve()
        for member in members:
            name = PurePosixPath(member.filename)
            if member.is_dir():
                continue
            if name.is_absolute() or ".." in name.parts or "\\" in member.filename or "\x00" in member.filename:
                raise ValidationError(f"zip entry {member.filename!r} has an unsafe path")
            kind = (member.external_attr >> 16) & 0o170000
            if kind == 0o120000:
                raise ValidationError(f"zip entry {member.filename!r} is a symbolic link")
            if kind not in (0, 0o100000):  # devices, FIFOs, sockets: only plain files are unpacked
                raise ValidationError(f"zip entry {member.filename!r} is not a regular file")
            dest = (target / Path(*name.parts)).resolve()
            if root not in dest.parents:
                raise ValidationError(f"zip entry {member.filename!r} points outside the upload")
            written = 0
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                # O_EXCL + O_NOFOLLOW: never write through a link or over an entry already unpacked.
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            except OSError:
                raise ValidationError(f"zip entry {member.filename!r} clashes with another entry") from None
            with archive.open(member) as src, os.fdopen(fd, "wb") as out:
                while chunk := src.read(1024 * 1024):
                    written += len(chunk)
                    if written > member.file_size or written > max_total:
                        raise ValidationError(f"zip entry {member.filename!r} is larger than it declares")
                    out.write(chunk)


def _unpack_limit(rt: GalleryRuntime) -> int:
    return rt.settings.web_max_request_bytes * 4


def import_root(rt: GalleryRuntime) -> Path:
    """The only server folder bulk enrolment may read by path: ``<data_dir>/imports`` (shared by the hosts)."""
    return (rt.settings.data_dir / "imports").resolve()


def resolve_server_manifest(rt: GalleryRuntime, server_path: str) -> Path:
    """A manifest path inside the import folder (anything else is refused, without naming server paths)."""
    root = import_root(rt)
    candidate = None if "\x00" in server_path else (root / server_path).resolve()
    if candidate is None or root not in candidate.parents or not candidate.is_file():
        raise ValidationError(
            "server_path must name a manifest file inside the import folder <data_dir>/imports (relative path)"
        )
    return candidate


def _queue(rt: GalleryRuntime, actor: Actor, payload: dict[str, Any], job_id: str) -> JobView:
    with transaction(rt.session_factory) as session:
        job = new_job(session, BULK_KIND, actor, payload, job_id)
        source = "upload" if "upload" in payload else "server_path"
        audit.record(session, actor, "job_submit", f"job:{job.id}", audit.Outcome.OK,
                     details={"kind": BULK_KIND, "source": source})  # fmt: skip
        return JobView.of(job)


def submit_bulk_upload(rt: GalleryRuntime, actor: Actor, manifest: bytes, photos_zip: bytes | None,
                       filename: str = "manifest.csv") -> JobView:  # fmt: skip
    """Queue a bulk enrolment of an uploaded manifest (and zip of photos) for any worker to run.

    ``filename`` (the uploaded manifest's name) labels the batch and its errors instead of any server path.
    """
    require(actor, Action.ENROL, actor.agency_id)
    if not manifest:
        raise ValidationError("the manifest is empty")
    scratch = Path(tempfile.mkdtemp(prefix="faceleads-upload-check-"))
    try:  # refuse a bad upload now, with the reason, rather than in a worker later
        unpack_bulk_upload(manifest, photos_zip, scratch, _unpack_limit(rt))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    job_id = new_job_id()
    key_id = f"job:{job_id}"
    rt.keystore.create(key_id)
    # As a store writer (shared lock): an orphan sweep elsewhere must not take these blobs for orphans before the
    # job row that references them is committed.
    with enrolment_lock(rt, exclusive=False):
        upload: dict[str, Any] = {"key_id": key_id, "filename": (filename or "manifest.csv")[:100],
                                  "manifest": rt.store.put(key_id, manifest, f"job-manifest|{job_id}")}  # fmt: skip
        if photos_zip is not None:
            upload["photos"] = rt.store.put(key_id, photos_zip, f"job-photos|{job_id}")
        return _queue(rt, actor, {"upload": upload}, job_id)


def submit_bulk_path(rt: GalleryRuntime, actor: Actor, server_path: str) -> JobView:
    """Queue a bulk enrolment of a manifest inside the import folder."""
    require(actor, Action.ENROL, actor.agency_id)
    path = resolve_server_manifest(rt, server_path)
    return _queue(rt, actor, {"server_path": str(path.relative_to(import_root(rt)))}, new_job_id())


def bulk_job(rt: GalleryRuntime, actor: Actor, job_id: str) -> JobView:
    """A job of the actor's agency (records officers)."""
    require(actor, Action.ENROL, actor.agency_id)
    with rt.session_factory() as session:
        return get_job(session, actor, job_id)


def bulk_jobs(rt: GalleryRuntime, actor: Actor) -> list[JobView]:
    """The agency's jobs, newest first."""
    require(actor, Action.ENROL, actor.agency_id)
    with rt.session_factory() as session:
        return list_jobs(session, actor)


def job_input_addresses(session: Session) -> set[str]:
    """Blob addresses of the input of jobs that have not finished (the orphan sweep must keep them)."""
    payloads: Iterable[dict[str, Any] | None] = session.execute(
        select(Job.payload).where(Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
    ).scalars()
    found: set[str] = set()
    for payload in payloads:
        upload = (payload or {}).get("upload") or {}
        found.update(str(upload[k]) for k in ("manifest", "photos") if upload.get(k))
    return found


ActorOf = Callable[[Session, int], Actor | None]
"""The current identity of an active user by id, or None (``faceleads.security.auth.actor_for_user_id``).

Passed in by the entry point that runs the worker: the gallery domain does not import the security domain."""


def _job_actor(rt: GalleryRuntime, job: Job, actor_of: ActorOf) -> Actor:
    """The submitting user as they are now (a user who lost the right to enrol meanwhile is refused)."""
    with rt.session_factory() as session:
        actor = actor_of(session, job.user_id) if job.user_id is not None else None
    if actor is None:
        raise PermissionDenied(f"the user who submitted job {job.id} no longer exists or is deactivated")
    return actor


def _discard_input(rt: GalleryRuntime, upload: dict[str, Any]) -> None:
    for name in ("manifest", "photos"):
        if upload.get(name):
            rt.store.delete(str(upload[name]))
    if upload.get("key_id"):
        rt.keystore.destroy(str(upload["key_id"]))


def bulk_job_handler(rt: GalleryRuntime, actor_of: ActorOf) -> Any:
    """The worker's handler for bulk-enrolment jobs (see :class:`faceleads.core.jobs.JobWorker`).

    Photos must lie inside the upload (uploads) or the import folder (server paths); errors name the manifest by
    its upload name or its path under ``imports/``, never by a server path.
    """

    def handle(ctx: JobContext) -> tuple[dict[str, Any], str | None]:
        job = ctx.job
        actor = _job_actor(rt, job, actor_of)
        upload = (job.payload or {}).get("upload")
        if upload is None:
            manifest = resolve_server_manifest(rt, str(job.payload.get("server_path", "")))
            label = f"imports/{manifest.relative_to(import_root(rt)).as_posix()}"
            report = enrol_manifest(rt, actor, manifest, photo_root=import_root(rt), label=label, workers=0,
                                    progress=ctx.progress)  # fmt: skip
        else:
            key_id = str(upload["key_id"])
            try:
                manifest_bytes = rt.store.get(key_id, upload["manifest"], f"job-manifest|{job.id}")
                photos = None
                if upload.get("photos"):
                    photos = rt.store.get(key_id, upload["photos"], f"job-photos|{job.id}")
            except (NotFound, KeyDestroyedError):
                raise ValidationError(f"the input of job {job.id} is gone (the job was already finished)") from None
            workdir = Path(tempfile.mkdtemp(prefix=f"faceleads-job-{job.id}-"))
            try:
                path = unpack_bulk_upload(manifest_bytes, photos, workdir / "input", _unpack_limit(rt))
                label = f"uploaded {str(upload.get('filename') or 'manifest.csv')!r}"
                report = enrol_manifest(rt, actor, path, photo_root=path.parent, label=label, workers=0,
                                        progress=ctx.progress)  # fmt: skip
            except JobLost:
                raise  # another worker resumes the job: its input stays
            except FaceleadsError:
                with contextlib.suppress(Exception):
                    _discard_input(rt, upload)
                raise
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            with contextlib.suppress(Exception):  # best effort: an orphan blob is swept later
                _discard_input(rt, upload)
        return report.as_dict(), (error_report_csv(report) if report.error_rows else None)

    return handle


__all__ = [
    "BULK_KIND",
    "bulk_job",
    "bulk_job_handler",
    "bulk_jobs",
    "import_root",
    "job_input_addresses",
    "resolve_server_manifest",
    "submit_bulk_path",
    "submit_bulk_upload",
    "unpack_bulk_upload",
]
