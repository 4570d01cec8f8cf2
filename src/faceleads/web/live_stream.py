"""Shared by the live API and pages: the camera runner of this server, and the alert stream (server-sent events).

The stream reads the database, never this process's memory: a second application server (or one restarted)
streams the same alerts. It polls a cheap "highest alert id" query every ``live_stream_poll_seconds`` and, when
something is new, fetches the new alerts through :func:`faceleads.live.alerts.list_alerts` (which checks that the
user is a named officer and audits each delivery). Every few seconds it also sends the deployment's counts, and it
re-checks the sign-in session, closing the stream when the session ends. It closes by itself once the deployment is
over and every alert has been delivered.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

import anyio.to_thread
from fastapi import Request
from fastapi.responses import StreamingResponse

from faceleads.core.actor import Actor
from faceleads.core.uow import transaction
from faceleads.errors import AuthenticationError, FaceleadsError
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.live import alerts, deployments
from faceleads.live.runner import DeploymentRunner
from faceleads.security import auth

STATUS_EVERY_S = 2.0
SESSION_CHECK_EVERY_S = 30.0
FINISHED = ("ended", "refused", "cancelled")


def live_runner(request: Request) -> DeploymentRunner:
    """This server's camera runner (created on first use; the app's lifespan closes it)."""
    runner: DeploymentRunner | None = getattr(request.app.state, "live_runner", None)
    if runner is None:
        runner = DeploymentRunner(request.app.state.settings)
        request.app.state.live_runner = runner
    return runner


def start_cameras(request: Request, rt: GalleryRuntime, actor: Actor, deployment_id: int) -> dict[str, Any]:
    """Start a deployment (freezing its list) and its camera processes on this server; for a deployment already
    running whose workers died (server restart), start its cameras again."""
    current = deployments.get_deployment(rt, actor, deployment_id)
    if current.status == "running":
        info = deployments.resume_cameras(rt, actor, deployment_id)
    else:
        info = deployments.start_deployment(rt, actor, deployment_id)
    started = live_runner(request).start(rt, deployment_id)
    data = info.to_json()
    data["camera_processes"] = started
    return data


def stop_cameras(request: Request, rt: GalleryRuntime, actor: Actor, deployment_id: int, note: str) -> dict[str, Any]:
    """Record the stop (every worker, on any server, sees it); wait for this server's workers in the background."""
    info = deployments.stop_deployment(rt, actor, deployment_id, note)
    return info.to_json()


def _status(info: deployments.DeploymentInfo) -> dict[str, Any]:
    keys = ("frames_processed", "frames_dropped", "faces", "tracks", "alerts")
    return {
        "status": info.status,
        "end_at": info.end_at.isoformat(),
        **{k: sum(getattr(c, k) for c in info.cameras) for k in keys},
        "cameras": [{"name": c.name, "status": c.status, "error": c.error} for c in info.cameras],
    }


def alert_stream(
    request: Request, rt: GalleryRuntime, actor: Actor, deployment_id: int, last_id: int,
    still_signed_in: Callable[[], Actor],
) -> StreamingResponse:  # fmt: skip
    """The server-sent event stream of a deployment's alerts for a named officer."""
    # Authorisation up front (named officer), so a refusal is a plain 403 rather than a broken stream.
    first = alerts.list_alerts(rt, actor, deployment_id, after_id=last_id)
    poll = rt.settings.live_stream_poll_seconds

    async def events() -> AsyncIterator[str]:
        nonlocal last_id
        yield "retry: 3000\n\n"
        pending = first
        last_status = last_session = 0.0
        while True:
            for alert in pending:
                last_id = max(last_id, alert.id)
                yield f"id: {alert.id}\nevent: alert\ndata: {json.dumps(alert.to_json())}\n\n"
            pending = []
            now = time.monotonic()
            if now - last_session >= SESSION_CHECK_EVERY_S:
                last_session = now
                try:
                    await anyio.to_thread.run_sync(still_signed_in)
                except AuthenticationError:
                    yield "event: end\ndata: {\"reason\": \"signed out\"}\n\n"
                    return
            if now - last_status >= STATUS_EVERY_S:
                last_status = now
                try:
                    info = await anyio.to_thread.run_sync(deployments.get_deployment, rt, actor, deployment_id)
                except FaceleadsError:
                    return
                yield f"event: status\ndata: {json.dumps(_status(info))}\n\n"
                if info.status in FINISHED:
                    newest = await anyio.to_thread.run_sync(alerts.latest_alert_id, rt, deployment_id)
                    if newest <= last_id:
                        yield "event: end\ndata: {\"reason\": \"deployment over\"}\n\n"
                        return
            if await request.is_disconnected():
                return
            newest = await anyio.to_thread.run_sync(alerts.latest_alert_id, rt, deployment_id)
            if newest > last_id:
                fetch = partial(alerts.list_alerts, rt, actor, deployment_id, after_id=last_id)
                pending = await anyio.to_thread.run_sync(fetch)
                continue
            await anyio.sleep(poll)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def session_check(rt: GalleryRuntime, token: str) -> Callable[[], Any]:
    """The stream's periodic re-check of the sign-in session ``token`` (cookie or bearer): the actor, or an
    :class:`AuthenticationError` once the session has ended."""

    def still_signed_in() -> Any:
        with transaction(rt.session_factory) as session:
            return auth.actor_for_session(session, token, settings=rt.settings)

    return still_signed_in


def last_event_id(request: Request, after: int) -> int:
    """Resume point: the ``Last-Event-ID`` header a reconnecting browser sends, else ``after``."""
    header = request.headers.get("last-event-id", "")
    return int(header) if header.isdigit() and len(header) < 12 else after
