"""``faceleads worker`` (runs queued background jobs) and ``faceleads migrate`` (brings the schema up to date).

Both are for multi-host deployments (docs/deployment.md): job workers run on any host that can reach the database
and the blob store; ``migrate`` runs the migrations once before new application servers start (they would run
them too, one at a time, under the migration lock).
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from faceleads.cli.common import JsonOpt, cli_errors, emit, err_console
from faceleads.config import get_settings


def worker(
    once: Annotated[bool, typer.Option("--once", help="Run at most one queued job, then exit.")] = False,
) -> None:
    """Run queued background jobs (bulk enrolment) until stopped (SIGTERM/SIGINT finish the current step)."""
    from faceleads.core.jobs import JobWorker
    from faceleads.gallery import bulk_jobs
    from faceleads.gallery.runtime import GalleryRuntime
    from faceleads.security.auth import actor_for_user_id

    settings = get_settings()
    with cli_errors():
        rt = GalleryRuntime(settings)
        runner = JobWorker(
            rt.session_factory,
            {bulk_jobs.BULK_KIND: bulk_jobs.bulk_job_handler(rt, actor_for_user_id)},
            lease=settings.job_lease_seconds,
            poll=settings.job_poll_seconds,
            role="worker",
            retention_days=settings.job_retention_days,
        )
        if once:
            ran = runner.run_once()
            err_console.print("ran one job" if ran else "no job was waiting")
            rt.close()
            return
        stopped = threading.Event()

        def stop(signum: int, _frame: object) -> None:
            err_console.print(f"signal {signum}: stopping after the current step")
            stopped.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        err_console.print(f"job worker {runner.name} waiting for jobs (lease {settings.job_lease_seconds:g} s)")
        runner.start()
        stopped.wait()
        runner.stop(timeout=settings.job_lease_seconds)
        rt.close()


def migrate(as_json: JsonOpt = False) -> None:
    """Bring the database schema up to date (one migrator at a time; safe while servers run)."""
    from alembic.migration import MigrationContext

    from faceleads.db import create_schema, make_engine

    settings = get_settings()
    with cli_errors():
        engine = make_engine(settings.effective_database_url)
        create_schema(engine)
        with engine.connect() as conn:
            revision = MigrationContext.configure(conn).get_current_revision()
        url = engine.url.render_as_string(hide_password=True)
        engine.dispose()
    emit({"database": url, "revision": revision}, as_json,
         lambda: err_console.print(f"{url}: schema at revision {revision}", highlight=False))


def register(app: typer.Typer) -> None:
    """Attach ``worker`` and ``migrate`` to the main ``faceleads`` app."""
    app.command("worker")(worker)
    app.command("migrate")(migrate)
