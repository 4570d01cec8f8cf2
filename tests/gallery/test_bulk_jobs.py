"""Background jobs in the database queue: each job is claimed by one worker at a time, a job whose worker died is
taken over after its lease, and a bulk enrolment killed mid-way in one worker process is finished by another with
nothing lost or duplicated."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from faceleads.core.actor import Actor, Role
from faceleads.core.jobs import MAX_ATTEMPTS, Job, JobLost, JobStatus, claim, finish, heartbeat, new_job
from faceleads.db import utcnow
from faceleads.errors import ValidationError
from faceleads.gallery import bulk_jobs
from faceleads.gallery.bulk import referenced_addresses
from faceleads.gallery.models import EnrolmentBatch, EnrolmentRow, Image, Subject
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.security.auth import actor_for_user_id
from tests.conftest import lfw_identities
from tests.dbs import database_env
from tests.lawful import list_authorities
from tests.security.identity_helpers import add_user

PEOPLE = lfw_identities()
AUTH = "Custody Records Act s.12"


@pytest.fixture
def rt(settings, engine):  # type: ignore[no-untyped-def]
    runtime = GalleryRuntime(settings, face_engine=engine)
    yield runtime
    runtime.close()


def _records_officer(rt: GalleryRuntime) -> Actor:
    agency = list_authorities(rt, "MET")  # the agency, with the test authorities listed
    user = add_user(rt.session_factory, agency, "rob.records", {Role.RECORDS_OFFICER})
    return Actor("rob.records", agency, frozenset({Role.RECORDS_OFFICER}), user, "MET")


def _upload(names: list[str]) -> tuple[bytes, bytes]:
    """A manifest and a zip holding one photo of each person (as a records officer would upload them)."""
    lines = ["agency,subject,booking,date,authority,photo"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for i, name in enumerate(names):
            zf.write(PEOPLE[name][0], f"photos/{name}.jpg")
            lines.append(f"MET,{name},BK{i:03d},2020-06-01,{AUTH},photos/{name}.jpg")
    return ("\n".join(lines) + "\n").encode(), buffer.getvalue()


def test_each_job_is_claimed_once_and_taken_over_only_after_its_lease(rt) -> None:  # type: ignore[no-untyped-def]
    actor = _records_officer(rt)
    with rt.session_factory.begin() as session:
        ids = [new_job(session, "noop", actor, {"n": i}).id for i in range(12)]
    claimed: list[tuple[str, str]] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (job := claim(rt.session_factory, name, lease=60.0)) is not None:
            with lock:
                claimed.append((job.id, name))

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(j for j, _ in claimed) == sorted(ids), "every job claimed exactly once"
    # Nothing is runnable while the leases hold; the worker holding a job keeps it.
    assert claim(rt.session_factory, "late", lease=60.0) is None
    first, holder = claimed[0]
    heartbeat(rt.session_factory, first, holder, done=1, total=3)
    # Its worker stops beating (killed): after the lease another worker takes the job over ...
    with rt.session_factory.begin() as session:
        session.execute(update(Job).where(Job.id == first).values(heartbeat_at=utcnow() - timedelta(seconds=120)))
    taken = claim(rt.session_factory, "rescuer", lease=60.0)
    assert taken is not None and taken.id == first and taken.attempts == 2
    # ... and the first worker, should it wake up, is told it lost the job and cannot record an outcome.
    with pytest.raises(JobLost):
        heartbeat(rt.session_factory, first, holder)
    assert not finish(rt.session_factory, first, holder, report={"x": 1})
    assert finish(rt.session_factory, first, "rescuer", report={"ok": True})
    # A job whose workers keep dying is failed, not retried forever.
    second = claimed[1][0]
    for attempt in range(MAX_ATTEMPTS):
        with rt.session_factory.begin() as session:
            session.execute(update(Job).where(Job.id == second).values(heartbeat_at=utcnow() - timedelta(hours=1)))
        got = claim(rt.session_factory, f"doomed{attempt}", lease=60.0)
        assert (got is not None) == (attempt < MAX_ATTEMPTS - 1)
    with rt.session_factory() as session:
        job = session.get(Job, second)
        assert job is not None and job.status == JobStatus.FAILED and "gave up" in job.error


def test_finished_jobs_are_deleted_after_their_retention(rt) -> None:  # type: ignore[no-untyped-def]
    from faceleads.core.jobs import prune_finished

    actor = _records_officer(rt)
    with rt.session_factory.begin() as session:
        old, recent, waiting = (new_job(session, "noop", actor, {}) for _ in range(3))
        for job, age in ((old, 40), (recent, 5)):
            job.status, job.finished_at = JobStatus.DONE, utcnow() - timedelta(days=age)
        waiting.created_at = utcnow() - timedelta(days=90)  # queued long ago: kept until it has run
    assert prune_finished(rt.session_factory, retention_days=30) == 1
    with rt.session_factory() as session:
        assert set(session.scalars(select(Job.id))) == {recent.id, waiting.id}


def test_bad_upload_is_refused_at_submission(rt) -> None:  # type: ignore[no-untyped-def]
    actor = _records_officer(rt)
    manifest, _ = _upload(["AJ_Cook"])
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../etc/passwd", b"x")
    with pytest.raises(ValidationError, match="unsafe path"):
        bulk_jobs.submit_bulk_upload(rt, actor, manifest, evil.getvalue())
    with rt.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0


def _worker(settings, name: str) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        **database_env(settings.data_dir),
        "FACELEADS_JOB_LEASE_SECONDS": "3",
        "FACELEADS_JOB_POLL_SECONDS": "0.2",
        "FACELEADS_ORT_THREADS": "1",
    }
    log = open(settings.data_dir.parent / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", "faceleads.cli.main", "worker"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def _job(rt: GalleryRuntime, job_id: str) -> Job:
    with rt.session_factory() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def _rows(rt: GalleryRuntime) -> int:
    with rt.session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(EnrolmentRow)) or 0)


@pytest.mark.slow
def test_worker_killed_during_a_bulk_job_and_the_other_finishes_it(rt, settings) -> None:  # type: ignore[no-untyped-def]
    actor = _records_officer(rt)
    names = [n for n in PEOPLE if PEOPLE[n]][:40]
    manifest, photos = _upload(names)
    job = bulk_jobs.submit_bulk_upload(rt, actor, manifest, photos)
    workers = {name: _worker(settings, name) for name in ("worker-a", "worker-b")}
    try:
        deadline = time.monotonic() + 300
        while _rows(rt) < 5:  # one worker claimed the job and has committed a few photos
            assert all(p.poll() is None for p in workers.values()), "a worker died on its own"
            assert time.monotonic() < deadline, "the job made no progress"
            time.sleep(0.05)
        running = _job(rt, job.job_id)
        assert running.status == JobStatus.RUNNING and running.worker is not None
        victim_pid = int(running.worker.split(":")[1])
        victim = next(name for name, p in workers.items() if p.pid == victim_pid)
        os.killpg(victim_pid, signal.SIGKILL)  # mid-job, mid-photo perhaps: no chance to clean up
        workers[victim].wait(30)
        done_at_kill = _rows(rt)
        assert done_at_kill < len(names), "the kill must land before the end of the job"
        while (finished := _job(rt, job.job_id)).status in (JobStatus.QUEUED, JobStatus.RUNNING):
            assert time.monotonic() < deadline, f"the other worker did not finish the job ({_rows(rt)} rows)"
            time.sleep(0.2)
    finally:
        for proc in workers.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(60)
    survivor_pid = next(p.pid for name, p in workers.items() if name != victim)
    assert finished.status == JobStatus.DONE, finished.error
    assert finished.attempts == 2 and finished.worker is not None
    assert int(finished.worker.split(":")[1]) == survivor_pid
    assert finished.report["enrolled"] == len(names) and finished.report["errors"] == 0
    with rt.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Image)) == len(names)  # nothing lost or duplicated
        assert session.scalar(select(func.count()).select_from(Subject)) == len(names)
        statuses = session.execute(select(EnrolmentRow.status, func.count()).group_by(EnrolmentRow.status)).all()
        assert dict(statuses) == {"enrolled": len(names)}
        batch = session.scalars(select(EnrolmentBatch)).one()
        assert batch.runs == 2 and batch.finished_at is not None
        referenced = referenced_addresses(session)
        images = set(session.scalars(select(Image.store_address)))
    # The job's input (photos of people) is gone and its key destroyed; no orphan blob of the killed worker stays.
    assert referenced == images
    assert set(rt.store.addresses()) == images
    assert rt.keystore.is_destroyed(f"job:{job.job_id}")
    print(f"\nkilled worker after {done_at_kill} of {len(names)} photos; the other finished the job")


def test_job_of_a_deactivated_user_fails_with_the_reason(rt) -> None:  # type: ignore[no-untyped-def]
    from faceleads.core.jobs import JobWorker
    from faceleads.security.models import User

    actor = _records_officer(rt)
    manifest, photos = _upload(["AJ_Cook"])
    job = bulk_jobs.submit_bulk_upload(rt, actor, manifest, photos)
    with rt.session_factory.begin() as session:
        session.execute(update(User).values(active=False))
    handler = bulk_jobs.bulk_job_handler(rt, actor_for_user_id)
    runner = JobWorker(rt.session_factory, {bulk_jobs.BULK_KIND: handler}, lease=30, poll=1)
    assert runner.run_once()
    failed = _job(rt, job.job_id)
    assert failed.status == JobStatus.FAILED and "deactivated" in failed.error
    assert _rows(rt) == 0


def test_server_path_jobs_stay_inside_the_import_folder(rt, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    actor = _records_officer(rt)
    with pytest.raises(ValidationError, match="import folder"):
        bulk_jobs.submit_bulk_path(rt, actor, "../../etc/passwd")
