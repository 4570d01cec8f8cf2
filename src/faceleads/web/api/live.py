"""Live watch-list deployments through :mod:`faceleads.live`: watch lists, deployments (prepare, authorise,
start, stop), alerts (list, stream, images, decisions), reports and statistics (docs/live.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from faceleads.live import alerts, deployments, reports, watchlists
from faceleads.vision.imaging import media_type
from faceleads.web.api.schemas import ERRORS, Id
from faceleads.web.deps import ApiScope, bearer_token, run_blocking
from faceleads.web.live_stream import alert_stream, last_event_id, session_check, start_cameras, stop_cameras

router = APIRouter(prefix="/live", tags=["live"], responses=ERRORS)
NO_STORE = {"Cache-Control": "no-store"}


class WatchListIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)


class EntryIn(BaseModel):
    subject_number: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=200)
    expires_at: datetime
    owner_agency: str | None = Field(default=None, max_length=32)


class CameraIn(BaseModel):
    name: str = Field(default="", max_length=100)
    source: str = Field(min_length=1, max_length=2000)


class DeploymentIn(BaseModel):
    watchlist_id: int = Field(ge=1)
    location: str = Field(min_length=1, max_length=300)
    legal_basis: str = Field(min_length=1, max_length=4000)
    purpose: str = Field(min_length=1, max_length=4000)
    start_at: datetime
    end_at: datetime
    cameras: list[CameraIn] = Field(min_length=1, max_length=16)
    officers: list[str] = Field(min_length=1, max_length=100)
    threshold: float = Field(gt=0.0, le=1.0)
    signage_confirmed: bool = False
    signage_note: str = Field(default="", max_length=2000)


class NoteIn(BaseModel):
    note: str = Field(default="", max_length=4000)


class DecisionIn(BaseModel):
    decision: str = Field(pattern="^(confirmed|false_alert|not_actioned)$")
    note: str = Field(default="", max_length=2000)


@router.get("/watchlists")
def list_watchlists(scope: ApiScope) -> list[dict[str, Any]]:
    """The agency's watch lists."""
    return [w.to_json() for w in watchlists.list_watchlists(scope.rt, scope.actor)]


@router.post("/watchlists", status_code=201)
def create_watchlist(body: WatchListIn, scope: ApiScope) -> dict[str, Any]:
    """Create a watch list."""
    return watchlists.create_watchlist(scope.rt, scope.actor, body.name, body.description).to_json()


@router.get("/watchlists/{watchlist_id}")
def get_watchlist(watchlist_id: Id, scope: ApiScope) -> dict[str, Any]:
    """A watch list with each entry's state."""
    return watchlists.get_watchlist(scope.rt, scope.actor, watchlist_id).to_json()


@router.post("/watchlists/{watchlist_id}/entries", status_code=201)
def add_entry(watchlist_id: Id, body: EntryIn, scope: ApiScope) -> dict[str, Any]:
    """Put a gallery subject the agency may use for live watch lists on the list."""
    return watchlists.add_entry(scope.rt, scope.actor, watchlist_id, body.subject_number, body.reason,
                                body.expires_at, agency_code=body.owner_agency).to_json()  # fmt: skip


@router.delete("/watchlist-entries/{entry_id}", status_code=204)
def remove_entry(entry_id: Id, scope: ApiScope) -> Response:
    """Take an entry off its list."""
    watchlists.remove_entry(scope.rt, scope.actor, entry_id)
    return Response(status_code=204)


@router.get("/deployments")
def list_deployments(
    scope: ApiScope, status: Annotated[str | None, Query(max_length=16)] = None
) -> list[dict[str, Any]]:
    """The agency's deployments (effective status: ended once the end time has passed)."""
    return [d.to_json() for d in deployments.list_deployments(scope.rt, scope.actor, status)]


@router.post("/deployments", status_code=201)
async def create_deployment(body: DeploymentIn, request: Request, scope: ApiScope) -> dict[str, Any]:
    """Prepare a deployment; the answer shows the expected false alert rate."""
    inp = deployments.DeploymentInput(
        watchlist_id=body.watchlist_id, location=body.location, legal_basis=body.legal_basis, purpose=body.purpose,
        start_at=body.start_at, end_at=body.end_at,
        cameras=[deployments.CameraInput(c.name, c.source) for c in body.cameras], officers=body.officers,
        threshold=body.threshold, signage_confirmed=body.signage_confirmed, signage_note=body.signage_note,
    )  # fmt: skip
    info = await run_blocking(request, deployments.create_deployment, scope.rt, scope.actor, inp)
    return info.to_json()


@router.get("/deployments/{deployment_id}")
async def get_deployment(deployment_id: Id, request: Request, scope: ApiScope) -> dict[str, Any]:
    """One deployment."""
    return (await run_blocking(request, deployments.get_deployment, scope.rt, scope.actor, deployment_id)).to_json()


@router.get("/watchlists/{watchlist_id}/expected-rate")
async def expected_rate(
    watchlist_id: Id, request: Request, scope: ApiScope, threshold: Annotated[float, Query(ge=-1.0, le=1.0)]
) -> dict[str, Any]:
    """Expected false alert rate of a threshold for this list, from the agency's latest calibration."""
    rate = await run_blocking(request, deployments.expected_for, scope.rt, scope.actor, watchlist_id, threshold)
    return {"expected": rate.to_json() if rate else None, "sentence": rate.sentence() if rate else None}


@router.post("/deployments/{deployment_id}/signage")
async def confirm_signage(deployment_id: Id, body: NoteIn, request: Request, scope: ApiScope) -> dict[str, Any]:
    """Record that public notice/signage is in place."""
    return (await run_blocking(request, deployments.confirm_signage, scope.rt, scope.actor, deployment_id,
                               body.note)).to_json()  # fmt: skip


@router.post("/deployments/{deployment_id}/authorisation")
async def authorise(deployment_id: Id, body: NoteIn, request: Request, scope: ApiScope) -> dict[str, Any]:
    """Authorise (supervisors; never the user who prepared it)."""
    return (await run_blocking(request, deployments.authorise_deployment, scope.rt, scope.actor, deployment_id,
                               body.note)).to_json()  # fmt: skip


@router.post("/deployments/{deployment_id}/refusal")
def refuse(deployment_id: Id, body: NoteIn, scope: ApiScope) -> dict[str, Any]:
    """Refuse, with the reason."""
    return deployments.refuse_deployment(scope.rt, scope.actor, deployment_id, body.note).to_json()


@router.post("/deployments/{deployment_id}/cancellation")
def cancel(deployment_id: Id, scope: ApiScope) -> dict[str, Any]:
    """Withdraw a deployment that has not started."""
    return deployments.cancel_deployment(scope.rt, scope.actor, deployment_id).to_json()


@router.post("/deployments/{deployment_id}/start")
async def start(deployment_id: Id, request: Request, scope: ApiScope) -> dict[str, Any]:
    """Start an authorised deployment (freezes the watch list) and its cameras on this server."""
    return await run_blocking(request, start_cameras, request, scope.rt, scope.actor, deployment_id)


@router.post("/deployments/{deployment_id}/stop")
def stop(deployment_id: Id, body: NoteIn, request: Request, scope: ApiScope) -> dict[str, Any]:
    """Stop a running deployment now."""
    return stop_cameras(request, scope.rt, scope.actor, deployment_id, body.note)


@router.get("/deployments/{deployment_id}/alerts")
def list_alerts(
    deployment_id: Id, scope: ApiScope, after: Annotated[int, Query(ge=0)] = 0
) -> list[dict[str, Any]]:
    """Alerts after ``after`` (named alert officers; each delivery audited)."""
    return [a.to_json() for a in alerts.list_alerts(scope.rt, scope.actor, deployment_id, after_id=after)]


@router.get("/deployments/{deployment_id}/alerts/stream", response_class=StreamingResponse)
def alert_events(
    deployment_id: Id, request: Request, scope: ApiScope, after: Annotated[int, Query(ge=0)] = 0
) -> StreamingResponse:
    """Server-sent events: ``alert`` (each new alert), ``status`` (counts), ``end``."""
    still_signed_in = session_check(scope.rt, bearer_token(request) or "")
    return alert_stream(request, scope.rt, scope.actor, deployment_id, last_event_id(request, after), still_signed_in)


@router.get("/alerts/{alert_id}/capture")
def capture(alert_id: Id, scope: ApiScope) -> Response:
    """The captured face of an alert (audited)."""
    return Response(alerts.alert_image(scope.rt, scope.actor, alert_id, "capture"), media_type="image/jpeg",
                    headers=NO_STORE)  # fmt: skip


@router.get("/alerts/{alert_id}/watchlist-photo")
def watchlist_photo(alert_id: Id, scope: ApiScope) -> Response:
    """The watch-list photo the alert matched (audited)."""
    data = alerts.alert_image(scope.rt, scope.actor, alert_id, "watchlist")
    return Response(data, media_type=media_type(data), headers=NO_STORE)


@router.post("/alerts/{alert_id}/decision")
def decide(alert_id: Id, body: DecisionIn, scope: ApiScope) -> dict[str, Any]:
    """Record the officer's decision (once)."""
    return alerts.decide_alert(scope.rt, scope.actor, alert_id, body.decision, body.note).to_json()


@router.get("/deployments/{deployment_id}/report")
def report(deployment_id: Id, scope: ApiScope) -> dict[str, Any]:
    """The deployment's report (JSON)."""
    return reports.report_data(scope.rt, scope.actor, deployment_id)


@router.get("/deployments/{deployment_id}/report.pdf")
def report_pdf(deployment_id: Id, scope: ApiScope) -> Response:
    """The deployment's report (PDF)."""
    data = reports.report_data(scope.rt, scope.actor, deployment_id)
    return Response(reports.render_pdf(data), media_type="application/pdf", headers={
        **NO_STORE, "Content-Disposition": f'attachment; filename="live-deployment-{deployment_id}.pdf"'})  # fmt: skip


@router.get("/statistics")
def statistics(
    scope: ApiScope, since: datetime, until: datetime, agency: Annotated[str | None, Query(max_length=32)] = None
) -> list[dict[str, Any]]:
    """Per-agency deployment statistics for a period (transparency reporting)."""
    return [s.to_json() for s in reports.deployment_statistics(scope.rt, scope.actor, since, until,
                                                               agency_code=agency)]  # fmt: skip
