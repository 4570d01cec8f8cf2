"""Background jobs in a queue stored in the database, run by any server or worker process on any host.

A job is a row of ``jobs``: its kind, the agency and user it runs for, a JSON payload, its progress, and its
outcome. Workers (:class:`JobWorker`: a thread of ``faceleads serve``, or ``faceleads worker`` processes) *claim*
the oldest runnable job — on PostgreSQL with ``SELECT ... FOR UPDATE SKIP LOCKED`` so concurrent workers never
take the same row and never wait for each other; on the embedded SQLite default with a conditional ``UPDATE``
(one writer at a time) — and beat while they run it. A job whose worker stopped beating for
``Settings.job_lease_seconds`` (killed, crashed, host lost) is claimed again by another worker, which resumes it:
job handlers are written to be resumable and idempotent (bulk enrolment records every row's outcome in the
database as it goes, so the second worker skips what the first finished). A worker that finds its job taken over
stops working on it. After ``MAX_ATTEMPTS`` claims a job is failed rather than retried forever.

Nothing about a job lives only in a process: its state, progress, report and error report are in the row, its
input in the database or the shared blob store.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, delete, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from faceleads.core.actor import Actor
from faceleads.core.uow import transaction
from faceleads.db import Base, is_postgres, utcnow
from faceleads.errors import FaceleadsError, NotFound

log = logging.getLogger("faceleads.jobs")

MAX_ATTEMPTS = 5


class JobStatus:
    """Job states (a queued or running job whose lease expired is runnable again)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Job(Base):
    """One background job (see the module docstring)."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    username: Mapped[str] = mapped_column(String(150))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(100), nullable=True)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    error_report: Mapped[str | None] = mapped_column(Text, nullable=True)  # CSV
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@dataclass(frozen=True)
class JobView:
    """What a client may see of a job."""

    job_id: str
    kind: str
    agency_id: int
    username: str
    status: str
    done: int
    total: int
    attempts: int
    created_at: datetime
    finished_at: datetime | None
    error: str
    report: dict[str, Any]
    error_report: str | None

    @classmethod
    def of(cls, job: Job) -> JobView:
        return cls(job.id, job.kind, job.agency_id, job.username, job.status, job.done, job.total, job.attempts,
                   job.created_at, job.finished_at, job.error, dict(job.report or {}), job.error_report)  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "status": self.status,
            "done": self.done,
            "total": self.total,
            "progress": round(self.done / self.total, 4) if self.total else (1.0 if self.status == "done" else 0.0),
            "attempts": self.attempts,
            "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "error": self.error,
            "report": self.report,
            "has_error_report": bool(self.error_report),
        }


class JobLost(FaceleadsError):
    """This worker's claim on a job expired and another worker took it over: stop working on it."""


# --------------------------------------------------------------------------------------------- the queue


def new_job_id() -> str:
    """A fresh, unguessable job id."""
    return secrets.token_hex(8)


def new_job(session: Session, kind: str, actor: Actor, payload: dict[str, Any], job_id: str | None = None) -> Job:
    """Queue a job in the caller's transaction (it becomes visible to workers when that commits)."""
    job = Job(id=job_id or new_job_id(), kind=kind, agency_id=actor.agency_id, user_id=actor.user_id,
              username=actor.username, status=JobStatus.QUEUED, payload=payload)  # fmt: skip
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, actor: Actor, job_id: str) -> JobView:
    """A job of the actor's agency (NotFound for any other)."""
    job = session.get(Job, job_id[:32])
    if job is None or job.agency_id != actor.agency_id:
        raise NotFound(f"no job {job_id!r}")
    return JobView.of(job)


def list_jobs(session: Session, actor: Actor, limit: int = 100) -> list[JobView]:
    """The actor's agency's jobs, newest first."""
    rows = session.scalars(
        select(Job).where(Job.agency_id == actor.agency_id)
        .order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    ).all()
    return [JobView.of(j) for j in rows]


def _runnable(now: datetime, lease: float) -> Any:
    stale = now - timedelta(seconds=lease)
    return or_(
        Job.status == JobStatus.QUEUED,
        (Job.status == JobStatus.RUNNING) & (Job.heartbeat_at < stale),
    )


def claim(session_factory: Any, worker: str, lease: float, kinds: set[str] | None = None) -> Job | None:
    """Take the oldest runnable job for ``worker`` (or None); the row says who runs it from now on."""
    now = utcnow()
    with transaction(session_factory) as session:
        query = select(Job).where(_runnable(now, lease)).order_by(Job.created_at, Job.id).limit(1)
        if kinds:
            query = query.where(Job.kind.in_(sorted(kinds)))
        if is_postgres(session):
            # Concurrent workers skip each other's locked candidates instead of queueing behind them.
            job = session.scalars(query.with_for_update(skip_locked=True)).first()
            if job is None:
                return None
            job_id, previous = job.id, job.worker
        else:
            job = session.scalars(query).first()
            if job is None:
                return None
            job_id, previous = job.id, job.worker
            # SQLite serialises writers; the condition makes a lost race a no-op.
            won = session.execute(
                update(Job)
                .where(Job.id == job_id, _runnable(now, lease), or_(Job.worker.is_(None), Job.worker == previous))
                .values(worker=worker)
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
            if not won:
                return None
            session.refresh(job)
        job.attempts += 1
        if job.attempts > MAX_ATTEMPTS:
            job.status = JobStatus.FAILED
            job.error = f"gave up after {MAX_ATTEMPTS} attempts (its workers kept dying or losing their lease)"
            job.finished_at = now
            log.error("job %s failed: %s", job_id, job.error)
            return None
        if previous and previous != worker:
            log.warning("job %s taken over from %s by %s (lease expired)", job_id, previous, worker)
        job.status = JobStatus.RUNNING
        job.worker = worker
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        session.flush()
        session.expunge(job)
        return job


def heartbeat(session_factory: Any, job_id: str, worker: str, done: int | None = None,
              total: int | None = None) -> None:  # fmt: skip
    """Extend ``worker``'s lease on a job (and record progress); :class:`JobLost` if another worker owns it now."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if done is not None:
        values["done"] = done
    if total is not None:
        values["total"] = total
    with transaction(session_factory) as session:
        changed = session.execute(
            update(Job).where(Job.id == job_id, Job.worker == worker, Job.status == JobStatus.RUNNING).values(**values)
        ).rowcount  # type: ignore[attr-defined]
    if not changed:
        raise JobLost(f"job {job_id} is no longer held by {worker}")


def finish(session_factory: Any, job_id: str, worker: str, *, report: dict[str, Any] | None = None,
           error: str = "", error_report: str | None = None) -> bool:  # fmt: skip
    """Record a job's outcome (done, or failed with ``error``) if ``worker`` still holds it; returns whether so.

    NUL characters are dropped from the texts: they often come from the hostile input being reported (a photo name
    in a manifest), and PostgreSQL text cannot hold them — the outcome must be recorded all the same.
    """
    error = error.replace("\x00", "")
    error_report = error_report.replace("\x00", "") if error_report is not None else None
    with transaction(session_factory) as session:
        changed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.worker == worker, Job.status == JobStatus.RUNNING)
            .values(
                status=JobStatus.FAILED if error else JobStatus.DONE,
                report=report or {},
                error=error[:4000],
                error_report=error_report,
                finished_at=utcnow(),
                heartbeat_at=utcnow(),
            )
        ).rowcount  # type: ignore[attr-defined]
    return bool(changed)


def prune_finished(session_factory: Any, retention_days: int) -> int:
    """Delete jobs that ended more than ``retention_days`` ago (their reports and error reports with them)."""
    cutoff = utcnow() - timedelta(days=retention_days)
    with transaction(session_factory) as session:
        removed = session.execute(
            delete(Job).where(Job.status.in_([JobStatus.DONE, JobStatus.FAILED]), Job.finished_at < cutoff)
        ).rowcount  # type: ignore[attr-defined]
    return int(removed or 0)


# --------------------------------------------------------------------------------------------- workers


@dataclass
class JobContext:
    """What a handler gets: the job row, a progress callback (which also renews the lease) and the worker id."""

    job: Job
    worker: str
    progress: Callable[[int, int], None]


Handler = Callable[[JobContext], tuple[dict[str, Any], str | None]]  # -> (report, error report CSV or None)


def worker_name(role: str) -> str:
    """A worker id naming the host and process (shown on jobs taken over)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{role}:{secrets.token_hex(3)}"


class JobWorker:
    """Runs queued jobs one at a time on a thread, claiming them from the database (see the module docstring)."""

    def __init__(self, session_factory: Any, handlers: dict[str, Handler], *, lease: float, poll: float,
                 role: str = "worker", retention_days: int = 30) -> None:  # fmt: skip
        self.session_factory = session_factory
        self.retention_days = retention_days
        self._last_prune = 0.0
        self.handlers = handlers
        self.lease = lease
        self.poll = poll
        self.name = worker_name(role)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"faceleads-jobs-{role}", daemon=True)
        self.completed = 0

    def start(self) -> JobWorker:
        self._thread.start()
        return self

    def wake(self) -> None:
        """Look for work now (a job was just queued by this process)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current job's next progress report (the job is resumed by another worker later)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def run_once(self) -> bool:
        """Claim and run one job; returns whether there was one."""
        job = claim(self.session_factory, self.name, self.lease, set(self.handlers))
        if job is None:
            return False
        self._run(job)
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.run_once():
                    continue
                if time.monotonic() - self._last_prune > 3600:
                    self._last_prune = time.monotonic()
                    prune_finished(self.session_factory, self.retention_days)
            except Exception:  # the database went away...: keep the worker alive
                log.exception("job worker %s: claiming failed", self.name)
            self._wake.wait(self.poll)
            self._wake.clear()

    def _run(self, job: Job) -> None:
        last = [0.0]
        lock = threading.Lock()
        beat_every = max(0.2, self.lease / 6)

        def progress(done: int, total: int) -> None:
            if self._stop.is_set():
                raise JobLost(f"worker {self.name} is stopping")
            now = time.monotonic()
            with lock:
                if now - last[0] < min(beat_every, 1.0) and done < total:
                    return
                last[0] = now
            heartbeat(self.session_factory, job.id, self.name, done, total)

        # The lease is renewed by a side thread too, so that a long step between progress reports never loses it.
        stop_beating = threading.Event()

        def keep_alive() -> None:
            while not stop_beating.wait(beat_every):
                try:
                    heartbeat(self.session_factory, job.id, self.name)
                except JobLost:
                    return
                except Exception:
                    log.exception("job %s: heartbeat failed", job.id)

        beater = threading.Thread(target=keep_alive, name=f"faceleads-job-{job.id}", daemon=True)
        beater.start()
        try:
            handler = self.handlers[job.kind]
            report, error_report = handler(JobContext(job, self.name, progress))
            finish(self.session_factory, job.id, self.name, report=report, error_report=error_report)
            self.completed += 1
        except JobLost as exc:
            log.warning("job %s: %s", job.id, exc)
        except FaceleadsError as exc:
            finish(self.session_factory, job.id, self.name, error=str(exc))
        except Exception as exc:  # a bug: report it on the job, keep the worker alive
            log.exception("job %s failed", job.id)
            finish(self.session_factory, job.id, self.name, error=f"internal error: {type(exc).__name__}")
        finally:
            stop_beating.set()
            beater.join(5)


__all__ = [
    "MAX_ATTEMPTS",
    "Job",
    "JobContext",
    "JobLost",
    "JobStatus",
    "JobView",
    "JobWorker",
    "claim",
    "finish",
    "get_job",
    "heartbeat",
    "list_jobs",
    "new_job",
    "new_job_id",
    "prune_finished",
    "worker_name",
]
