"""The web application and REST API: :func:`create_app` builds one FastAPI app serving both.

- ``/api/v1/...``: the REST API (JSON; bearer-token sessions; errors as problem details); OpenAPI schema at
  ``/api/v1/openapi.json``.
- ``/...``: server-rendered pages (Jinja2, our own CSS and JavaScript under ``/static``; session cookie + CSRF).

The app's lifespan owns the heavy resources: the :class:`~faceleads.gallery.runtime.GalleryRuntime` (database,
keystore, blob store, face models, search index), the bounded inference thread pool, the thread that keeps the
search index in step with the database's change feed, and the job thread. Nothing two servers must agree on is
kept in memory: jobs and sign-in rate limits are in the database, and a quick search's photo is case evidence
(docs/deployment.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import APIRouter, Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker

from faceleads import __version__
from faceleads.config import Settings, get_settings
from faceleads.gallery.changefeed import FeedFollower
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.governance.audit_integrity import periodic_anchor
from faceleads.security.auth import totp_required_roles
from faceleads.security.throttle import SignInLimiter
from faceleads.web import errors
from faceleads.web.forms import FetchRedirectMiddleware
from faceleads.web.jobs import JobService
from faceleads.web.security import BodyLimitMiddleware, SecurityHeadersMiddleware, csrf_protect

log = logging.getLogger("faceleads.web")

WEB_DIR = Path(__file__).resolve().parent
API_PREFIX = "/api/v1"


def api_routers() -> list[APIRouter]:
    """The REST API's routers (imported here, not at module level: they import the app's dependencies)."""
    import faceleads.web.api.account
    import faceleads.web.api.admin
    import faceleads.web.api.approvals
    import faceleads.web.api.audit_routes
    import faceleads.web.api.auth_routes
    import faceleads.web.api.casework
    import faceleads.web.api.destruction
    import faceleads.web.api.faces
    import faceleads.web.api.gallery
    import faceleads.web.api.jobs
    import faceleads.web.api.lawful
    import faceleads.web.api.live
    import faceleads.web.api.oversight
    import faceleads.web.api.regimes
    import faceleads.web.api.search
    import faceleads.web.api.transparency

    api = faceleads.web.api
    return [api.auth_routes.router, api.faces.router, api.gallery.router, api.search.router, api.jobs.router,
            api.audit_routes.router, api.admin.router, api.casework.router,
            api.destruction.router, api.live.router, api.account.router, api.approvals.router, api.regimes.router,
            api.oversight.router, api.lawful.router, api.transparency.router]  # fmt: skip


def pages_routers() -> list[APIRouter]:
    """The web pages' routers (every one is included with the CSRF dependency, see :func:`create_app`)."""
    import faceleads.web.pages

    return faceleads.web.pages.routers()


class AnchorTimer:
    """The server's periodic audit anchor (``Settings.audit_anchor_minutes``; 0 = off): at start, then every period,
    the entries since the last anchor are verified and a signed anchor of the head is appended to the anchor file
    outside the database; a broken chain is logged as a critical operator alert instead (docs/audit.md)."""

    def __init__(self, session_factory: sessionmaker[Session], settings: Settings) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.minutes = settings.audit_anchor_minutes
        if self.minutes:
            self._thread = threading.Thread(target=self._loop, args=(session_factory, settings),
                                            name="faceleads-audit-anchor", daemon=True)  # fmt: skip
            self._thread.start()

    def _loop(self, session_factory: sessionmaker[Session], settings: Settings) -> None:
        while not self._stop.is_set():
            try:
                periodic_anchor(session_factory, settings)
            except Exception:  # never let the timer die: the next period tries again
                log.exception("periodic audit anchor failed")
            self._stop.wait(self.minutes * 60)

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def create_app(
    settings: Settings | None = None,
    *,
    runtime: GalleryRuntime | None = None,
    warm: bool = False,
    follow: bool = False,
) -> FastAPI:
    """Build the application.

    ``runtime``: an existing runtime to serve (tests share one face engine); otherwise the lifespan creates one
    from ``settings`` and closes it at shutdown. ``warm``: load the face models and build the search index at
    start-up instead of on the first request, and follow the change feed (as ``follow`` does: ``faceleads serve``
    always follows it).
    """
    settings = settings or (runtime.settings if runtime else get_settings())
    settings.check_safe()
    totp_required_roles(settings)  # a misspelt FACELEADS_TOTP_REQUIRED_ROLES stops the start, not a sign-in

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or GalleryRuntime(settings)
        app.state.rt = rt
        # Local references: a second lifespan of the same app (a test client) must not make this one close the
        # other's services and leak its own.
        jobs = app.state.jobs = JobService(rt, run_jobs=settings.web_run_jobs)
        app.state.sign_in_limiter = SignInLimiter(
            rt.session_factory,
            per_address=settings.sign_in_attempts_per_address,
            per_account=settings.sign_in_attempts_per_account,
        )
        anchors = AnchorTimer(rt.session_factory, rt.settings)
        follower: FeedFollower | None = None
        if warm or follow:
            # Builds the index now and keeps it in step with the change feed, so that other servers' enrolments
            # and destructions reach this one at once and destructions can count on it (docs/deployment.md).
            follower = await anyio.to_thread.run_sync(FeedFollower(rt, "server").start)
        try:
            yield
        finally:
            anchors.close()
            if follower is not None:
                await anyio.to_thread.run_sync(follower.stop)
            await anyio.to_thread.run_sync(jobs.close)
            if getattr(app.state, "live_runner", None) is not None:
                app.state.live_runner.close()  # camera processes of live deployments started here
            if runtime is None:
                rt.close()

    app = FastAPI(
        title="faceleads",
        version=__version__,
        description=(
            "Retrospective facial recognition for investigations. Every candidate is an investigative lead, "
            "never an identification. Authenticate with POST /api/v1/auth/sign-in and send "
            "`Authorization: Bearer <token>`."
        ),
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        # The interactive docs pages load scripts from a CDN, which the Content-Security-Policy (rightly) forbids.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.inference_limiter = anyio.CapacityLimiter(settings.web_inference_threads)

    errors.install(app)
    app.add_middleware(FetchRedirectMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit=settings.web_max_request_bytes)
    app.add_middleware(SecurityHeadersMiddleware, hsts=not settings.is_dev)

    for router in api_routers():
        app.include_router(router, prefix=API_PREFIX)
    # CSRF is a router-level dependency of every page router: no page route can forget it (tests/web/test_csrf.py
    # enumerates every state-changing route of the app). The API needs none: it takes only bearer tokens.
    for router in pages_routers():
        app.include_router(router, dependencies=[Depends(csrf_protect)])
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    return app
