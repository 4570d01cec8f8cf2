"""Live watch-list deployments: watch lists, preparing and authorising a deployment (with the expected false alert
rate), starting and stopping it, the live alert review (server-sent events, our own script), and the report. Same
services and policy as the API (:mod:`faceleads.web.api.live`); CSRF is the router-level dependency of every page
router (:mod:`faceleads.web.pages`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from faceleads.core.policy import Action
from faceleads.errors import ValidationError
from faceleads.live import alerts, deployments, reports, watchlists
from faceleads.vision.imaging import media_type
from faceleads.web.api.schemas import Id
from faceleads.web.deps import PageScope, page_token, run_blocking
from faceleads.web.live_stream import alert_stream, last_event_id, session_check, start_cameras, stop_cameras
from faceleads.web.pages.common import NO_STORE, done, page_router
from faceleads.web.render import render

router = page_router()


def _when(text: str, what: str) -> datetime:
    """A datetime-local form value (interpreted as UTC, as the pages show every time in UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"{what} must be a date and time, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/live", response_class=HTMLResponse)
def live_home(request: Request, scope: PageScope) -> Response:
    """Deployments and watch lists of the agency."""
    deps = deployments.list_deployments(scope.rt, scope.actor)
    lists = watchlists.list_watchlists(scope.rt, scope.actor)
    may_prepare = scope.may(Action.LIVE_PREPARE, scope.actor.agency_id)
    return render(request, "live.html", {"deployments": deps, "watchlists": lists, "may_prepare": may_prepare})


@router.post("/live/watchlists")
def create_watchlist_page(
    request: Request, scope: PageScope, name: Annotated[str, Form(max_length=100)],
    description: Annotated[str, Form(max_length=2000)] = "",
) -> Response:  # fmt: skip
    """Create a watch list."""
    info = watchlists.create_watchlist(scope.rt, scope.actor, name, description)
    return done(request, f"/live/watchlists/{info.id}", f"Watch list {info.name} created.")


@router.get("/live/watchlists/{watchlist_id}", response_class=HTMLResponse)
def watchlist_page(request: Request, watchlist_id: Id, scope: PageScope) -> Response:
    """A watch list's entries with their states, and the form to add one."""
    info = watchlists.get_watchlist(scope.rt, scope.actor, watchlist_id)
    return render(request, "live_watchlist.html", {"wl": info,
                                                   "may_prepare": scope.may(Action.LIVE_PREPARE,
                                                                            scope.actor.agency_id)})  # fmt: skip


@router.post("/live/watchlists/{watchlist_id}/entries")
def add_entry_page(
    request: Request, watchlist_id: Id, scope: PageScope,
    subject_number: Annotated[str, Form(max_length=64)], reason: Annotated[str, Form(max_length=200)],
    expires_at: Annotated[str, Form(max_length=40)], owner_agency: Annotated[str, Form(max_length=32)] = "",
) -> Response:  # fmt: skip
    """Add an entry (subject number, reason, expiry)."""
    entry = watchlists.add_entry(scope.rt, scope.actor, watchlist_id, subject_number, reason,
                                 _when(expires_at, "expiry"), agency_code=owner_agency or None)  # fmt: skip
    return done(request, f"/live/watchlists/{watchlist_id}", f"Subject {entry.subject_number} added to the list.")


@router.post("/live/watchlist-entries/{entry_id}/remove")
def remove_entry_page(
    request: Request, entry_id: Id, scope: PageScope, watchlist_id: Annotated[int, Form(ge=1)]
) -> Response:
    """Remove an entry."""
    watchlists.remove_entry(scope.rt, scope.actor, entry_id)
    return done(request, f"/live/watchlists/{watchlist_id}", "Entry taken off the list.")


@router.get("/live/deployments/new", response_class=HTMLResponse)
def new_deployment_page(request: Request, scope: PageScope) -> Response:
    """The form to prepare a deployment."""
    lists = watchlists.list_watchlists(scope.rt, scope.actor)
    officers = deployments.eligible_officers(scope.rt, scope.actor)
    s = scope.rt.settings
    context = {"watchlists": lists, "officers": officers, "max_hours": s.live_max_hours,
               "threshold": s.live_default_threshold}  # fmt: skip
    return render(request, "live_new.html", context)


@router.post("/live/deployments")
async def create_deployment_page(request: Request, scope: PageScope) -> Response:
    """Prepare a deployment from the form (repeated officer fields, one camera per line)."""
    form = await request.form()

    def field(name: str, limit: int = 4000) -> str:
        value = form.get(name, "")
        if not isinstance(value, str) or len(value) > limit:
            raise ValidationError(f"{name.replace('_', ' ')} is missing or too long")
        return value

    cameras = []
    for line in field("cameras", 20000).splitlines():
        if line.strip():
            name, sep, source = line.partition("=")
            cameras.append(deployments.CameraInput(name.strip(), source.strip()) if sep and "://" not in name
                           else deployments.CameraInput("", line.strip()))  # fmt: skip
    try:
        watchlist_id, threshold = int(field("watchlist_id", 12)), float(field("threshold", 12))
    except ValueError:
        raise ValidationError("choose a watch list and give the threshold as a number") from None
    inp = deployments.DeploymentInput(
        watchlist_id=watchlist_id, location=field("location", 300), legal_basis=field("legal_basis"),
        purpose=field("purpose"), start_at=_when(field("start_at", 40), "start"),
        end_at=_when(field("end_at", 40), "end"), cameras=cameras,
        officers=[o for o in form.getlist("officers") if isinstance(o, str)][:100], threshold=threshold,
        signage_confirmed=form.get("signage_confirmed") == "yes", signage_note=field("signage_note", 2000),
    )  # fmt: skip
    info = await run_blocking(request, deployments.create_deployment, scope.rt, scope.actor, inp)
    return done(request, f"/live/deployments/{info.id}",
                f"Deployment {info.id} prepared: a supervisor other than you authorises it.")


@router.get("/live/deployments/{deployment_id}", response_class=HTMLResponse)
async def deployment_page(request: Request, deployment_id: Id, scope: PageScope) -> Response:
    """A deployment: authorisation, expected false alert rate, cameras and counts, and the actions allowed."""
    info = await run_blocking(request, deployments.get_deployment, scope.rt, scope.actor, deployment_id)
    a = scope.actor.agency_id
    may = {"authorise": scope.may(Action.LIVE_AUTHORISE, a), "operate": scope.may(Action.LIVE_OPERATE, a),
           "prepare": scope.may(Action.LIVE_PREPARE, a),
           "review": scope.actor.username in info.officers and scope.may(Action.LIVE_REVIEW_ALERT, a)}  # fmt: skip
    return render(request, "live_deployment.html", {"d": info, "may": may})


@router.post("/live/deployments/{deployment_id}/{action}")
async def deployment_action_page(
    request: Request, deployment_id: Id, action: str, scope: PageScope,
    note: Annotated[str, Form(max_length=4000)] = "",
) -> Response:  # fmt: skip
    """authorise / refuse / signage / cancel / start / stop."""
    rt, actor = scope.rt, scope.actor
    if action == "authorise":
        await run_blocking(request, deployments.authorise_deployment, rt, actor, deployment_id, note)
        message = f"Deployment {deployment_id} authorised."
    elif action == "refuse":
        deployments.refuse_deployment(rt, actor, deployment_id, note)
        message = f"Deployment {deployment_id} refused."
    elif action == "signage":
        deployments.confirm_signage(rt, actor, deployment_id, note)
        message = "Signage confirmed."
    elif action == "cancel":
        deployments.cancel_deployment(rt, actor, deployment_id)
        message = f"Deployment {deployment_id} cancelled."
    elif action == "start":
        await run_blocking(request, start_cameras, request, rt, actor, deployment_id)
        message = f"Deployment {deployment_id} running: its cameras are started."
    elif action == "stop":
        stop_cameras(request, rt, actor, deployment_id, note)
        message = f"Deployment {deployment_id} stopped."
    else:
        raise ValidationError(f"unknown action {action[:30]!r}")
    return done(request, f"/live/deployments/{deployment_id}", message)


@router.get("/live/deployments/{deployment_id}/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, deployment_id: Id, scope: PageScope) -> Response:
    """Alert review: alerts arrive live; captured face beside the watch-list photo, score, time, decision."""
    listed = alerts.list_alerts(scope.rt, scope.actor, deployment_id)
    info = deployments.get_deployment(scope.rt, scope.actor, deployment_id)
    return render(request, "live_alerts.html", {"d": info, "alerts": listed,
                                                "last_id": max((a.id for a in listed), default=0)})  # fmt: skip


@router.get("/live/deployments/{deployment_id}/alerts/events", response_class=StreamingResponse)
def alert_events_page(
    request: Request, deployment_id: Id, scope: PageScope, after: Annotated[int, Query(ge=0)] = 0
) -> StreamingResponse:
    """The alert stream for the review page (session cookie)."""
    still_signed_in = session_check(scope.rt, page_token(request) or "")
    return alert_stream(request, scope.rt, scope.actor, deployment_id, last_event_id(request, after), still_signed_in)


@router.get("/live/alerts/{alert_id}/capture")
def capture_page(alert_id: Id, scope: PageScope) -> Response:
    """The captured face (audited, never cached)."""
    return Response(alerts.alert_image(scope.rt, scope.actor, alert_id, "capture"), media_type="image/jpeg",
                    headers=NO_STORE)  # fmt: skip


@router.get("/live/alerts/{alert_id}/watchlist-photo")
def watchlist_photo_page(alert_id: Id, scope: PageScope) -> Response:
    """The watch-list photo (audited, never cached)."""
    data = alerts.alert_image(scope.rt, scope.actor, alert_id, "watchlist")
    return Response(data, media_type=media_type(data), headers=NO_STORE)


@router.post("/live/alerts/{alert_id}/decision")
def decide_page(
    request: Request, alert_id: Id, scope: PageScope,
    decision: Annotated[str, Form(max_length=20)], note: Annotated[str, Form(max_length=2000)] = "",
    deployment_id: Annotated[int, Form(ge=1)] = 0,
) -> Response:  # fmt: skip
    """Record the decision on an alert (from the review page's form or script)."""
    info = alerts.decide_alert(scope.rt, scope.actor, alert_id, decision, note)
    if request.headers.get("accept", "").startswith("application/json"):
        return JSONResponse(info.to_json(), headers=NO_STORE)
    return done(request, f"/live/deployments/{deployment_id or info.deployment_id}/alerts",
                f"Decision on alert {alert_id} recorded.")


@router.get("/live/deployments/{deployment_id}/report", response_class=HTMLResponse)
def report_page(request: Request, deployment_id: Id, scope: PageScope) -> Response:
    """The deployment's report."""
    data = reports.report_data(scope.rt, scope.actor, deployment_id)
    return render(request, "live_report.html", {"r": data, "d": data["deployment"]})


@router.get("/live/deployments/{deployment_id}/report.pdf")
def report_pdf_page(deployment_id: Id, scope: PageScope) -> Response:
    """The report as PDF."""
    data = reports.report_data(scope.rt, scope.actor, deployment_id)
    return Response(reports.render_pdf(data), media_type="application/pdf", headers={
        **NO_STORE, "Content-Disposition": f'attachment; filename="live-deployment-{deployment_id}.pdf"'})  # fmt: skip


@router.get("/live/deployments/{deployment_id}/report.json")
def report_json_page(deployment_id: Id, scope: PageScope) -> dict[str, Any]:
    """The report as JSON."""
    return reports.report_data(scope.rt, scope.actor, deployment_id)


@router.get("/live/watchlists/{watchlist_id}/expected-rate")
async def expected_rate_page(
    request: Request, watchlist_id: Id, scope: PageScope, threshold: Annotated[float, Query(ge=-1.0, le=1.0)]
) -> dict[str, Any]:
    """The expected false alert rate for the preparation form's script (JSON)."""
    rate = await run_blocking(request, deployments.expected_for, scope.rt, scope.actor, watchlist_id, threshold)
    return {"expected": rate.to_json() if rate else None, "sentence": rate.sentence() if rate else None}
