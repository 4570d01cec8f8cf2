"""The web app's view of the background-job queue (bulk enrolment from the API or the web pages).

Jobs live in the database queue (:mod:`faceleads.core.jobs`), so every server shows the same jobs and any worker —
this server's own job thread (``FACELEADS_WEB_RUN_JOBS``, on by default) or a ``faceleads worker`` process on
another host — may run them; a server restart or a killed worker loses nothing (the job is taken over and the
batch resumes). Uploaded input goes to the shared blob store, encrypted, until the job ends.
"""

from __future__ import annotations

from faceleads.core.actor import Actor
from faceleads.core.jobs import JobView, JobWorker
from faceleads.gallery import bulk_jobs
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.security.auth import actor_for_user_id


class JobService:
    """Submits and shows jobs; runs them too when ``run_jobs`` (a :class:`~faceleads.core.jobs.JobWorker` thread)."""

    def __init__(self, rt: GalleryRuntime, *, run_jobs: bool = True) -> None:
        self.rt = rt
        self.worker: JobWorker | None = None
        if run_jobs:
            self.worker = JobWorker(
                rt.session_factory,
                {bulk_jobs.BULK_KIND: bulk_jobs.bulk_job_handler(rt, actor_for_user_id)},
                lease=rt.settings.job_lease_seconds,
                poll=rt.settings.job_poll_seconds,
                role="serve",
                retention_days=rt.settings.job_retention_days,
            ).start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop this server's job thread (a job it was running is resumed by another worker, or at restart)."""
        if self.worker is not None:
            self.worker.stop(timeout)

    def get(self, actor: Actor, job_id: str) -> JobView:
        """A job of the actor's agency (NotFound otherwise)."""
        return bulk_jobs.bulk_job(self.rt, actor, job_id)

    def list(self, actor: Actor) -> list[JobView]:
        """The jobs of the actor's agency, newest first."""
        return bulk_jobs.bulk_jobs(self.rt, actor)

    def submit_upload(self, actor: Actor, manifest: bytes, photos_zip: bytes | None,
                      filename: str = "manifest.csv") -> JobView:  # fmt: skip
        """Queue a bulk enrolment of an uploaded manifest and zip of photos."""
        job = bulk_jobs.submit_bulk_upload(self.rt, actor, manifest, photos_zip, filename)
        self._wake()
        return job

    def submit_path(self, actor: Actor, server_path: str) -> JobView:
        """Queue a bulk enrolment of a manifest in the import folder."""
        job = bulk_jobs.submit_bulk_path(self.rt, actor, server_path)
        self._wake()
        return job

    def _wake(self) -> None:
        if self.worker is not None:
            self.worker.wake()
