"""A small in-process job runner for long work started from the API or the web pages (bulk enrolment).

One worker thread runs jobs one at a time, in submission order, through the domain's bulk API
(:func:`faceleads.gallery.bulk.enrol_manifest`), which records every row's outcome in the database and is
resumable. A job's progress (rows done / total), its report and its error-report CSV are kept here; the batch
itself is in the database, so nothing is lost when the server restarts (re-submitting resumes the batch).

Uploaded bulk input (a manifest CSV and a zip of photos) is unpacked into ``<data_dir>/jobs/<id>/`` with zip-slip,
member-count and total-size checks, and deleted when the job ends; only the error report is kept.
"""

from __future__ import annotations

import io
import logging
import os
import queue
import secrets
import shutil
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from faceleads.core.actor import Actor
from faceleads.db import utcnow
from faceleads.errors import FaceleadsError, NotFound, ValidationError
from faceleads.gallery.bulk import BatchReport, enrol_manifest, write_error_report
from faceleads.gallery.runtime import GalleryRuntime

log = logging.getLogger("faceleads.web.jobs")

MAX_ZIP_MEMBERS = 100_000


@dataclass
class Job:
    """A unit of long work and what the client may see of it."""

    job_id: str
    kind: str
    agency_id: int
    username: str
    user_id: int | None
    status: str = "queued"  # queued / running / done / failed
    done: int = 0
    total: int = 0
    created_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None
    error: str = ""
    report: dict[str, Any] = field(default_factory=dict)
    error_report: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "status": self.status,
            "done": self.done,
            "total": self.total,
            "progress": round(self.done / self.total, 4) if self.total else (1.0 if self.status == "done" else 0.0),
            "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "error": self.error,
            "report": self.report,
            "has_error_report": self.error_report is not None and self.error_report.exists(),
        }


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


class JobRunner:
    """Runs submitted jobs one at a time on a daemon thread."""

    def __init__(self, rt: GalleryRuntime) -> None:
        self.rt = rt
        self.root = rt.settings.data_dir / "jobs"
        self._jobs: dict[str, Job] = {}
        self._queue: queue.Queue[tuple[Job, Callable[[Job], None]] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="faceleads-jobs", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop after the running job (queued ones are dropped; their batches resume when re-submitted)."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            job, work = item
            job.status = "running"
            try:
                work(job)
                job.status = "done"
            except FaceleadsError as exc:
                job.status, job.error = "failed", str(exc)
            except Exception as exc:  # a bug: keep the runner alive, report it on the job
                log.exception("job %s failed", job.job_id)
                job.status, job.error = "failed", f"internal error: {type(exc).__name__}"
            finally:
                job.finished_at = utcnow()

    def get(self, actor: Actor, job_id: str) -> Job:
        """A job of the actor's agency (NotFound otherwise)."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.agency_id != actor.agency_id:
            raise NotFound(f"no job {job_id!r}")
        return job

    def list(self, actor: Actor) -> list[Job]:
        """The jobs of the actor's agency, newest first."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.agency_id == actor.agency_id]
        return sorted(jobs, key=lambda j: j.created_at, reverse=True)

    def submit_manifest(
        self, actor: Actor, manifest: Path, workdir: Path | None = None, *, photo_root: Path, label: str
    ) -> Job:
        """Queue a bulk enrolment of ``manifest`` whose photos must lie inside ``photo_root``; ``workdir`` (uploaded
        input) is deleted when the job ends. ``label`` names the manifest in errors (never a server path)."""
        job = Job(secrets.token_hex(8), "bulk_enrolment", actor.agency_id, actor.username, actor.user_id)
        job_dir = self.root / job.job_id
        job_dir.mkdir(parents=True, exist_ok=True)

        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        def work(job: Job) -> None:
            try:
                report: BatchReport = enrol_manifest(
                    self.rt, actor, manifest, photo_root=photo_root, label=label, workers=0, progress=progress
                )
            finally:
                if workdir is not None:
                    shutil.rmtree(workdir, ignore_errors=True)
            job.report = report.as_dict()
            if report.error_rows:
                job.error_report = job_dir / "errors.csv"
                write_error_report(report, job.error_report)

        with self._lock:
            self._jobs[job.job_id] = job
        self._queue.put((job, work))
        return job

    def new_upload_dir(self) -> Path:
        """A fresh private directory for an uploaded bulk input."""
        path = self.root / f"upload-{secrets.token_hex(8)}"
        path.mkdir(parents=True, exist_ok=False)
        path.chmod(0o700)
        return path
