"""FastAPI dependencies: the runtime, database sessions, who is asking, and the one agency-scope helper.

- API requests authenticate with ``Authorization: Bearer <token>`` (a session from :func:`faceleads.security.auth.
  authenticate`); web pages with the ``fl_session`` cookie holding the same kind of token.
- :class:`Scope` carries the actor and the runtime to the domain services, which authorise and audit every read
  and change themselves. Routes use :meth:`Scope.may` only to show or hide links, and :meth:`Scope.require` only as
  an early, audited refusal before reading a large upload; they never test roles themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from faceleads.core.actor import Actor
from faceleads.core.policy import Action, allowed, enforce
from faceleads.core.uow import transaction
from faceleads.errors import AuthenticationError
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.security import auth
from faceleads.web.security import SESSION_COOKIE

T = TypeVar("T")


def get_runtime(request: Request) -> GalleryRuntime:
    """The process-wide gallery runtime owned by the app's lifespan."""
    rt: GalleryRuntime = request.app.state.rt
    return rt


Runtime = Annotated[GalleryRuntime, Depends(get_runtime)]


def db_session(rt: Runtime) -> Iterator[Session]:
    """A read-mostly database session for one request (writes go through domain services' own transactions)."""
    with rt.session_factory() as session:
        yield session


DbSession = Annotated[Session, Depends(db_session)]


async def run_blocking(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking work (face inference, enrolment, search) in the bounded inference thread pool.

    The limiter (``Settings.web_inference_threads``) keeps concurrent inference from starving the event loop's
    default thread pool and from oversubscribing the CPU.
    """
    limiter = request.app.state.inference_limiter
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=limiter)


def bearer_token(request: Request) -> str | None:
    """The bearer token of the Authorization header, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _actor_for(rt: GalleryRuntime, token: str | None) -> Actor:
    if not token:
        raise AuthenticationError("not signed in: send Authorization: Bearer <token> from POST /api/v1/auth/sign-in")
    if len(token) > 200:
        raise AuthenticationError("not signed in (malformed token)")
    with transaction(rt.session_factory) as session:
        return auth.actor_for_session(session, token, settings=rt.settings)


def api_actor(request: Request, rt: Runtime) -> Actor:
    """The signed-in user of an API request (bearer token); 401 otherwise."""
    actor = _actor_for(rt, bearer_token(request))
    request.state.actor = actor
    return actor


ApiActor = Annotated[Actor, Depends(api_actor)]


def page_token(request: Request) -> str | None:
    """The session token of a web page request (cookie)."""
    return request.cookies.get(SESSION_COOKIE) or None


def page_actor(request: Request, rt: Runtime) -> Actor:
    """The signed-in user of a web page (session cookie); pages redirect to sign-in on 401."""
    actor = _actor_for(rt, page_token(request))
    request.state.actor = actor
    return actor


PageActor = Annotated[Actor, Depends(page_actor)]


@dataclass(frozen=True)
class Scope:
    """The actor and the runtime a route hands to the domain services (which authorise and audit)."""

    actor: Actor
    rt: GalleryRuntime

    def require(
        self,
        action: Action,
        object_ref: str,
        agency_id: int | None = None,
        *,
        case: str | None = None,
    ) -> None:
        """An early refusal (audited, 403) before an upload is read; the service called next decides again."""
        enforce(self.rt.session_factory, self.actor, action, object_ref, agency_id, case=case)

    def may(self, action: Action, agency_id: int | None = None) -> bool:
        """Whether the policy allows ``action`` (for showing or hiding links; never instead of :meth:`require`)."""
        return allowed(self.actor, action, agency_id)


def api_scope(actor: ApiActor, rt: Runtime) -> Scope:
    """The :class:`Scope` of an API request."""
    return Scope(actor, rt)


def page_scope(actor: PageActor, rt: Runtime) -> Scope:
    """The :class:`Scope` of a web page request."""
    return Scope(actor, rt)


ApiScope = Annotated[Scope, Depends(api_scope)]
PageScope = Annotated[Scope, Depends(page_scope)]


def get_jobs(request: Request) -> Any:
    """The app's job runner (:class:`faceleads.web.jobs.JobRunner`)."""
    return request.app.state.jobs
